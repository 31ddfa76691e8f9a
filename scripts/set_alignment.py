"""Set how an MSPN checkpoint aligns D0 to the measurements, keeping its weights.

``init_alignment`` and ``alignment_prior_points`` are stored in the MSPN file's config
(:class:`sdr_core.mspn.MSPNConfig`): they decide the D0 the guidance network and the layers
see, not the weights. This rewrites them in place, keeps every tensor and every other
metadata field (the training command, steps) and records what was changed, so a choice made
on the validation split at inference is reproducible from the trained file:

    python scripts/set_alignment.py checkpoints/mspn.safetensors \\
        --init-alignment shrunk_median_scale --prior-points 1
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

# Run as `python scripts/<name>.py` from the repository root without installing the package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from safetensors.torch import load_file, save_file  # noqa: E402

from sdr_core.baselines import SHRINK_PRIOR_POINTS  # noqa: E402
from sdr_core.checkpoints import config_from_dict, read_metadata  # noqa: E402
from sdr_core.mspn import MSPNConfig  # noqa: E402
from sdr_core.prefill import ALIGNMENTS  # noqa: E402


def set_alignment(path: str | Path, init_alignment: str, prior_points: float) -> MSPNConfig:
    """Rewrite the alignment of the MSPN checkpoint at ``path``; return its new config.

    Raises:
        ValueError: not an MSPN checkpoint, or an invalid alignment (MSPNConfig's message).
    """
    metadata = read_metadata(path)
    if metadata.get("kind") != "mspn":
        raise ValueError(f"{path}: not an MSPN checkpoint (kind {metadata.get('kind')!r})")
    old = config_from_dict(MSPNConfig, json.loads(metadata["config"]))
    new = dataclasses.replace(
        old, init_alignment=init_alignment, alignment_prior_points=prior_points
    )
    tensors = load_file(str(path))
    change = (
        f"init_alignment {old.init_alignment!r} -> {new.init_alignment!r}, "
        f"alignment_prior_points {old.alignment_prior_points} -> {new.alignment_prior_points}"
    )
    notes = [note for note in [metadata.get("alignment_changed"), change] if note]
    metadata.update(config=json.dumps(dataclasses.asdict(new)), alignment_changed="; ".join(notes))
    save_file(tensors, str(path), metadata=metadata)
    return new


def main(argv: list[str] | None = None) -> int:
    """Command line: the checkpoint, the alignment and its prior points."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", help="an mspn.safetensors file (rewritten in place)")
    parser.add_argument("--init-alignment", required=True, choices=list(ALIGNMENTS))
    parser.add_argument(
        "--prior-points", type=float, default=SHRINK_PRIOR_POINTS, help="k (default %(default)s)"
    )
    args = parser.parse_args(argv)
    try:
        config = set_alignment(args.checkpoint, args.init_alignment, args.prior_points)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(
        f"{args.checkpoint}: {config.init_alignment}, prior points {config.alignment_prior_points}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
