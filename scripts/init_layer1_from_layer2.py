"""Copy MSPN layer 2's weights into layer 1: the starting point of the full-backprop run.

The first CPU run (truncated backpropagation, one iteration per layer) left layer 1 untrained
in effect: its mask never grew beyond 0.04 from a measurement, so it did not propagate.
Layer 2 had learned to propagate (its mask passes 0.5 within a few iterations). Both layers
compute the same iteration (eq. 4), so layer 2's weights are a working initialisation for
layer 1; the full-backprop run then trains both. This script writes that starting point.

    python scripts/init_layer1_from_layer2.py --src checkpoints --out runs/init_copy
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

# Run as `python scripts/<name>.py` from the repository root without installing the package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sdr_core.checkpoints import load_module, save_module  # noqa: E402
from sdr_core.mspn import MSPN, MSPNConfig  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", default="checkpoints", help="folder with the trained files")
    parser.add_argument("--out", default="runs/init_copy", help="folder to write")
    args = parser.parse_args()
    src, out = Path(args.src), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    mspn = load_module(src / "mspn.safetensors", "mspn", MSPNConfig, MSPN)
    mspn.layers[0].load_state_dict(mspn.layers[1].state_dict())
    note = {"note": "layer 1 initialised from layer 2"}
    save_module(out / "mspn.safetensors", mspn, mspn.config, "mspn", note)
    shutil.copy(src / "guidance.safetensors", out / "guidance.safetensors")
    print(f"wrote {out / 'mspn.safetensors'} and {out / 'guidance.safetensors'}")


if __name__ == "__main__":
    main()
