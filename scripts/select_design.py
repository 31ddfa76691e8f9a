"""Compare trained refiners on the validation split, under every D0 regime, to pick a design.

The project's departures from the paper (pre-filling D0, the decoder's upsampling, training
choices) are switches stored in the checkpoints' configs; whether one is taken is decided
here, on scenes that neither training (seeds below 9,000,000) nor the reported evaluation
(seeds from 10,000,000) uses: the validation split starts at ``VALIDATION_SEED_START``.

Every run refines the same D0 and sparse inputs per scene. For each regime of D0 (``mde``:
the bundled MDE; ``simulated``: a poor MDE; ``metric``: a good metric MDE), the table gives
MSPN's RMSE per level next to D0 alone and every classical method (the least-squares baselines
and the edge-aware and bilateral propagation of ``sdr_core.classical``), the best classical
method's RMSE and MSPN's ratio to it, and the mask-shape diagnostic (one centre point, 6
first-layer iterations). The quality bar of ``scripts/quality_bar.py`` (``check_quality_bar``)
is checked on this split too.

    python scripts/select_design.py --runs runs/a runs/b \
        --mde-checkpoint checkpoints/mde.safetensors
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

# Run as `python scripts/<name>.py` from the repository root without installing the package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from quality_bar import check_quality_bar  # noqa: E402  (scripts/ is this script's sys.path[0])

from sdr_core import load_pipeline  # noqa: E402
from sdr_core.data.datasets import VALIDATION_SEED_START  # noqa: E402
from sdr_core.evaluate import (  # noqa: E402
    BASELINE_METHODS,
    INIT_SOURCES,
    EvalConfig,
    best_classical,
    evaluate_scenes,
    heldout_scenes,
    mask_shape,
)

METHODS = ("mspn", *BASELINE_METHODS)


def _rmse_table(results: dict, levels: list[tuple[str, int]]) -> list[str]:
    """Markdown rows: every method's RMSE per level, then MSPN / the best classical method."""
    header = " | ".join(f"{s[0]}{n}" for s, n in levels)
    rows = [f"| method | {header} |", "|---|" + "---:|" * len(levels)]
    for method in METHODS:
        cells = " | ".join(f"{results[s][method][n]['rmse']:.3f}" for s, n in levels)
        rows.append(f"| {method} | {cells} |")
    best = best_classical(results)
    cells = " | ".join(f"{best[s][n]['ratio']:.2f} ({best[s][n]['method']})" for s, n in levels)
    rows.append(f"| mspn / best classical | {cells} |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", nargs="+", required=True, help="folders of guidance + MSPN")
    parser.add_argument("--mde-checkpoint", default="checkpoints/mde.safetensors")
    parser.add_argument("--n-scenes", type=int, default=12)
    parser.add_argument("--points", default="1,5,20,200,1000")
    parser.add_argument("--lines", default="4,16")
    parser.add_argument(
        "--regimes",
        default="mde,harsh,metric",  # the three D0 sources of earlier releases
        help=f"comma-separated D0 sources of {','.join(INIT_SOURCES)} (sdr_core.d0_sources)",
    )
    parser.add_argument("--out", default="outputs/design.md")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(message)s")

    scenes = heldout_scenes(args.n_scenes, seed_start=VALIDATION_SEED_START)
    points = tuple(int(v) for v in args.points.split(",") if v)
    lines_ = tuple(int(v) for v in args.lines.split(",") if v)
    out_lines = [
        f"Validation split: {args.n_scenes} scenes from seed {VALIDATION_SEED_START}. "
        "RMSE (m), means over scenes.",
        "",
    ]
    summary: dict[str, dict] = {}
    for run in args.runs:
        pipe = load_pipeline(device="cpu", checkpoint_dir=run, mde_checkpoint=args.mde_checkpoint)
        cfg = pipe.config
        out_lines += [
            f"## {run}",
            "",
            f"init_alignment={cfg.mspn.init_alignment}, upsample={cfg.guidance.upsample}, "
            f"schedule={cfg.mspn.second_layer_schedule}",
            "",
        ]
        for regime in args.regimes.split(","):
            config = EvalConfig(
                points=points, lines=lines_, hole=False, n_scenes=0, middlebury=False,
                methods=METHODS, init_source=regime,
            )  # fmt: skip
            results = evaluate_scenes(pipe, scenes, config)
            shape = mask_shape(pipe, scenes[:6], init_source=regime)
            levels = [("points", n) for n in points] + [("lines", k) for k in lines_]
            start = len(out_lines)
            out_lines += [f"D0: {regime}", "", *_rmse_table(results, levels)]
            report = {
                "meta": {"config": {"init_source": regime}},
                "heldout": results,
                "middlebury": results,
                "mask_shape": {"heldout": shape},
            }
            failures = [f for f in check_quality_bar(report) if f.startswith("heldout")]
            out_lines += [
                "",
                f"mask fill {shape['mean_fill']:.3f}, {shape['distinct']}/{shape['n']} distinct; "
                f"bar failures: {len(failures)}",
                *[f"- {f}" for f in failures if "ablation" not in f and "no_mask" not in f],
                "",
            ]
            summary.setdefault(run, {})[regime] = {
                "rmse": {f"{s} {n}": results[s]["mspn"][n]["rmse"] for s, n in levels},
                "mask_fill": shape["mean_fill"],
            }
            print("\n".join(out_lines[start:]), flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(out_lines) + "\n", encoding="utf-8")
    out.with_suffix(".json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
