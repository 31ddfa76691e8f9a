"""Choose the MSPN iteration schedule on a validation split, and optionally ship it.

The schedule (eq. 13's margin kappa, and how many iterations the second layer runs) does not
change the weights, so it is chosen after training, on scenes that neither training nor the
reported evaluation uses: seeds from ``VALIDATION_SEED_START`` (9,000,000; training seeds
stay below it, the held-out evaluation split starts at 10,000,000).

Every candidate refines the same D0 and the same sparse inputs of every scene at the
validation levels (random points, LiDAR lines, hole filling, as ``sdr_core.evaluate``).
The score of a candidate is its RMSE divided by the paper schedule's (kappa 2, second layer
6 iterations), averaged over all levels: below 1 is better. The lowest score wins; the
paper schedule wins ties.

    python scripts/select_schedule.py --checkpoints checkpoints --out-dir outputs/schedule
    python scripts/select_schedule.py ... --write runs/selected   # mspn.safetensors with it

``--write`` saves the MSPN weights unchanged with the winning schedule in the file's config.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from pathlib import Path

import numpy as np

# Run as `python scripts/<name>.py` from the repository root without installing the package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sdr_core import load_pipeline  # noqa: E402
from sdr_core.checkpoints import read_metadata, save_module  # noqa: E402
from sdr_core.data.datasets import VALIDATION_SEED_START  # noqa: E402
from sdr_core.evaluate import EvalConfig, evaluate_scenes, heldout_scenes  # noqa: E402

PAPER = {"kappa": 2.0, "second_layer_schedule": "fixed"}


def candidates(kappas: list[float]) -> list[dict[str, object]]:
    """Every (kappa, second-layer rule) pair; the paper's schedule first."""
    grid = [PAPER] + [
        {"kappa": k, "second_layer_schedule": rule}
        for k in kappas
        for rule in ("fixed", "eq13")
        if {"kappa": k, "second_layer_schedule": rule} != PAPER
    ]
    return grid


def name(candidate: dict[str, object]) -> str:
    return f"kappa {candidate['kappa']:g}, layer 2 {candidate['second_layer_schedule']}"


def rmse_by_level(results: dict) -> dict[str, float]:
    """{"points 10": rmse, ...} of the MSPN from ``evaluate_scenes`` output."""
    return {
        f"{setting} {level}": row["rmse"]
        for setting, methods in results.items()
        for level, row in methods["mspn"].items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoints", default="checkpoints")
    parser.add_argument("--n-scenes", type=int, default=16)
    parser.add_argument("--kappas", type=float, nargs="+", default=[2.0])
    parser.add_argument("--out-dir", default="outputs/schedule")
    parser.add_argument("--write", help="folder for mspn.safetensors with the chosen schedule")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    pipe = load_pipeline(device="cpu", checkpoint_dir=args.checkpoints)
    scenes = heldout_scenes(args.n_scenes, seed_start=VALIDATION_SEED_START)
    config = EvalConfig(points=(1, 5, 10, 20, 50, 100, 1000), lines=(4, 16, 64), methods=("mspn",))
    table: dict[str, dict[str, float]] = {}
    for candidate in candidates(args.kappas):
        variant = pipe.with_mspn_config(**candidate)
        table[name(candidate)] = rmse_by_level(evaluate_scenes(variant, scenes, config))
        logging.info("%s: %s", name(candidate), table[name(candidate)])
    reference = table[name(PAPER)]
    scores = {
        label: float(np.mean([rmse[key] / reference[key] for key in reference]))
        for label, rmse in table.items()
    }
    best = min(candidates(args.kappas), key=lambda c: (round(scores[name(c)], 4), c != PAPER))

    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    levels = list(reference)
    lines = [
        f"Validation split: {args.n_scenes} scenes from seed {VALIDATION_SEED_START}, "
        f"checkpoints {args.checkpoints}. MSPN RMSE (m); score = mean RMSE ratio to the paper "
        "schedule.",
        "",
        "| schedule | " + " | ".join(levels) + " | score |",
        "|---|" + "---:|" * (len(levels) + 1),
    ]
    for label, rmse in table.items():
        cells = " | ".join(f"{rmse[key]:.3f}" for key in levels)
        lines.append(f"| {label} | {cells} | {scores[label]:.3f} |")
    lines += ["", f"Chosen: {name(best)}."]
    (out / "schedule.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (out / "schedule.json").write_text(
        json.dumps({"rmse": table, "scores": scores, "chosen": best}, indent=1), encoding="utf-8"
    )
    print("\n".join(lines))

    if args.write:
        source = Path(args.checkpoints) / "mspn.safetensors"
        extra = {
            k: v
            for k, v in read_metadata(source).items()
            if k not in ("config", "kind", "format_version")
        }
        extra["schedule_selection"] = json.dumps({"chosen": best, "scores": scores})
        mspn_config = dataclasses.replace(pipe.mspn.config, **best)
        target = Path(args.write) / "mspn.safetensors"
        target.parent.mkdir(parents=True, exist_ok=True)
        save_module(target, pipe.mspn, mspn_config, "mspn", extra)
        print(f"wrote {target}")


if __name__ == "__main__":
    main()
