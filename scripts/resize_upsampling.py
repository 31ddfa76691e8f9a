"""Give a trained guidance network the decoder's resize upsampling: the start of a fine-tune.

The paper's decoder upsamples with 3x3 stride-2 transposed convolutions, whose kernel overlaps
output pixels of different parity a different number of times: G carries a stride-2
checkerboard. While the mask saturates at 1 it does not show; a mask trained to stop where
propagation harms (``train --mask-confidence-weight``) takes values between 0 and 1, and the
checkerboard comes through as dots along and behind the front (model card, stage MC3).
``GuidanceConfig(upsample="resize")`` (a 3x3 convolution on the input grid, then bilinear x2)
has none. This writes such a network from a trained transposed one, every other weight kept:
each upsampling convolution starts as the transposed convolution's kernel seen as a plain
convolution (input and output swapped, flipped in space: exactly the transposed convolution
at stride 1; at stride 2 it sums the taps that the four output parities split between them,
a scale the LayerNorm after it removes). Not equal to the original (shipped weights: G within
35 %, 0.99 correlated after 2 x 2 pooling, 7x less stride-2 checkerboard); a fine-tune from
it (``train --init-dir <out>``) learns the rest. The MSPN file is copied unchanged.

    python scripts/resize_upsampling.py --src checkpoints --out runs/resize_init
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import sys
from pathlib import Path

# Run as `python scripts/<name>.py` from the repository root without installing the package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sdr_core.checkpoints import load_module, save_module  # noqa: E402
from sdr_core.guidance import GuidanceConfig, GuidanceNet  # noqa: E402


def with_resize_upsampling(net: GuidanceNet) -> GuidanceNet:
    """A copy of ``net`` whose decoder blocks upsample by conv + resize (see the docstring).

    Raises:
        ValueError: ``net`` already upsamples by resizing.
    """
    if net.config.upsample != "transposed":
        raise ValueError(f"the network already upsamples by {net.config.upsample!r}")
    out = GuidanceNet(dataclasses.replace(net.config, upsample="resize"))
    state = net.state_dict()
    for index in range(len(net.blocks)):
        prefix = f"blocks.{index}.up."
        weight = state.pop(prefix + "weight")  # in x out x 3 x 3 (transposed convolution)
        state[prefix + "conv.weight"] = weight.transpose(0, 1).flip(-1, -2).contiguous()
        state[prefix + "conv.bias"] = state.pop(prefix + "bias")
    out.load_state_dict(state, strict=True)
    return out.train(net.training)


def main(argv: list[str] | None = None) -> int:
    """Command line: the trained folder and the folder to write."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", default="checkpoints", help="folder with guidance + MSPN")
    parser.add_argument("--out", required=True, help="folder to write")
    args = parser.parse_args(argv)
    src, out = Path(args.src), Path(args.out)
    net = load_module(src / "guidance.safetensors", "guidance", GuidanceConfig, GuidanceNet)
    try:
        converted = with_resize_upsampling(net)
    except ValueError as error:
        print(f"{src / 'guidance.safetensors'}: {error}", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    note = {"note": f"decoder upsampling converted from the transposed convolutions of {src}"}
    save_module(out / "guidance.safetensors", converted, converted.config, "guidance", note)
    shutil.copy(src / "mspn.safetensors", out / "mspn.safetensors")
    print(
        f"wrote {out / 'guidance.safetensors'} (upsample='resize') and {out / 'mspn.safetensors'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
