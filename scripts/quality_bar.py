"""The project's quality bar for an evaluation: an acceptance policy, kept out of the library.

``python -m sdr_core evaluate`` writes the facts (``results.json``: the sparsity sweep, the
paired differences, the best classical method, the mask shape); this script holds them to
the bar the project set for its shipped refiner and prints the criteria they miss:

    python scripts/quality_bar.py outputs/eval/results.json

It prints the "## Quality bar" markdown section (one line per failure, or "Met at every
level.") and exits with 1 when the bar is missed, 0 when it is met. Import
:func:`check_quality_bar` to apply the bar to a report in memory (scripts/select_design.py
does, on the validation split).
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Run as `python scripts/<name>.py` from the repository root without installing the package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sdr_core.eval_report import CLASSICAL_METHODS, read_json  # noqa: E402

__all__ = ["check_quality_bar", "main", "quality_bar_section"]

# The quality bar: no-mask ablation must lose to MSPN at this many points or fewer.
_NO_MASK_MAX_POINTS = 20
# The bar with a good metric D0: MSPN beats the best classical method from this many points
# on, and from _METRIC_MARGIN_POINTS on with RMSE at most _METRIC_MARGIN times its.
_METRIC_BEAT_CLASSICAL_POINTS = 20
_METRIC_MARGIN_POINTS = 200
_METRIC_MARGIN = 0.85
# The mask must follow the image: from one centre point, it fills at most this share of its
# bounding box (a square flood fills all of it).
_MASK_MAX_FILL = 0.85


def _rmse(results: Mapping[str, Any], setting: str, method: str, level: int) -> float | None:
    """A method's mean RMSE at one level of a split's results; None when it has none."""
    try:
        return float(results[setting][method][level]["rmse"])
    except KeyError:
        return None


def _ratio(ours: float, theirs: float) -> float:
    """``ours / theirs``; inf for a rival with RMSE 0 (only in hand-made reports)."""
    return ours / theirs if theirs > 0 else math.inf


@dataclass
class _Bar:
    """The report under check and the failures found so far."""

    report: Mapping[str, Any]
    failures: list[str] = field(default_factory=list)

    @property
    def init_source(self) -> str:
        """Where the report's D0 came from (``"mde"`` when it does not say)."""
        return self.report.get("meta", {}).get("config", {}).get("init_source", "mde")

    def levels(self, split: str, setting: str) -> list[int]:
        """The levels of a setting with an MSPN result."""
        return sorted(self.report[split].get(setting, {}).get("mspn", {}))

    def compare(
        self, split: str, setting: str, level: int, rivals: tuple[str, ...], factor: float = 1.0
    ) -> None:
        """``mspn`` must be below ``factor`` x the best rival (at most, for factor 1 of D0)."""
        results = self.report[split]
        where = f"{split} {setting} @ {level} {setting}"
        ours = _rmse(results, setting, "mspn", level)
        found = {rival: _rmse(results, setting, rival, level) for rival in rivals}
        missing = [m for m, v in {"mspn": ours, **found}.items() if v is None]
        if missing:
            self.failures.append(f"{where}: no {missing[0]} result")
            return
        best = min(found, key=lambda m: found[m])
        target = factor * found[best]
        # "Never worse than D0" and "better by at least 15 %" allow equality; "beats" does not.
        never_worse = rivals == ("mde",) and self.init_source == "metric"
        at_most = never_worse or factor != 1
        if (ours <= target) if at_most else (ours < target):
            return
        relation = "above" if at_most else "not below"
        scaled = f"{factor:g} x " if factor != 1 else ""
        kind = "best classical method; " if rivals == CLASSICAL_METHODS else ""
        self.failures.append(
            f"{where}: mspn RMSE {ours:.4f} m is {relation} {scaled}{best} {found[best]:.4f} m "
            f"({kind}ratio {_ratio(ours, found[best]):.3f})"
            f"{_interval_note(self.report, split, setting, best, level)}"
        )


def _check_split(bar: _Bar, split: str) -> None:
    """The bar's RMSE comparisons with D0 and the best classical method on one split."""
    if split not in bar.report:
        bar.failures.append(f"{split}: no results, so the bar cannot be checked")
        return
    if not any(bar.levels(split, s) for s in ("points", "lines")):
        bar.failures.append(f"{split}: no mspn results for points or lines")
    for setting in ("points", "lines"):
        for level in bar.levels(split, setting):
            bar.compare(split, setting, level, ("mde",))
            if bar.init_source != "metric":
                bar.compare(split, setting, level, CLASSICAL_METHODS)
            elif setting == "points" and level >= _METRIC_BEAT_CLASSICAL_POINTS:
                factor = _METRIC_MARGIN if level >= _METRIC_MARGIN_POINTS else 1.0
                bar.compare(split, setting, level, CLASSICAL_METHODS, factor)


def _check_mask(bar: _Bar) -> None:
    """The held-out mask-shape diagnostic and the no-mask ablation at few points."""
    shape = bar.report.get("mask_shape", {}).get("heldout")
    if shape is not None:
        if shape["mean_fill"] > _MASK_MAX_FILL:
            bar.failures.append(
                f"heldout mask shape: from one centre point the mask > {shape['threshold']} "
                f"region fills {100 * shape['mean_fill']:.1f} % of its bounding box after "
                f"{shape['iterations']} iterations on average (at most "
                f"{100 * _MASK_MAX_FILL:.0f} %)"
            )
        if shape["distinct"] < shape["n"]:
            bar.failures.append(
                f"heldout mask shape: only {shape['distinct']} different masks in "
                f"{shape['n']} scenes"
            )
    if "heldout" not in bar.report:
        return
    few = [n for n in bar.levels("heldout", "points") if n <= _NO_MASK_MAX_POINTS]
    if not few:
        bar.failures.append(
            f"heldout: no points level <= {_NO_MASK_MAX_POINTS} to check the no-mask ablation"
        )
    ablation = "mspn_no_mask"
    if bar.report["heldout"].get("points", {}).get("mspn_no_mask_trained"):
        ablation = "mspn_no_mask_trained"
    for level in few:
        bar.compare("heldout", "points", level, (ablation,))


def check_quality_bar(report: Mapping[str, Any]) -> list[str]:
    """Where the results miss the project's quality bar (RMSE of the means over scenes).

    The bar depends on where D0 came from (``report["meta"]["config"]["init_source"]``), on
    the held-out synthetic split and on Middlebury alike. The *classical methods* are
    :data:`sdr_core.eval_report.CLASSICAL_METHODS` (``ls_align``, ``ls_interp``, ``edge_aware``,
    ``ls_interp_bilateral``), compared through the best of them per level
    (:func:`sdr_core.eval_report.best_classical`); every one must be in the report.

    * D0 from the bundled MDE (``"mde"``) or a poor simulated MDE (``"simulated"``): at every
      level of ``points`` and ``lines``, ``mspn`` beats D0 (``mde``) and the best classical
      method.
    * D0 from a good metric MDE (``"metric"``): ``mspn`` is never worse than D0 (``mde``)
      at any level of ``points`` and ``lines``; from 20 points on it beats the best
      classical method, and from 200 points on by at least 15 % (RMSE at most 0.85 times
      its).
    * Every regime, held-out split, ``points`` levels <= 20: the mask ablation is worse
      than ``mspn``. The paper's ablation (Fig. 10d) is a network trained without the mask,
      so ``mspn_no_mask_trained`` is checked when the report has it; otherwise the
      inference-time stand-in ``mspn_no_mask`` (the same weights run with the mask fixed
      to 1).

    The hole setting is reported but not part of the bar. A split, method or setting the
    bar needs but the report lacks is a failure too: an unchecked bar is not a passed one.
    Failures give MSPN's RMSE ratio to the method it misses and carry the paired 95 %
    interval over scenes where the report has one.

    Args:
        report: ``{"heldout": results, "middlebury": results, "meta": ..., "paired": ...}``
            as from :func:`sdr_core.evaluate.run_evaluation` (other keys are ignored).

    Returns:
        One human-readable line per failure; empty when the bar is met.
    """
    bar = _Bar(report)
    for split in ("heldout", "middlebury"):
        _check_split(bar, split)
    _check_mask(bar)
    return bar.failures


def _interval_note(
    report: Mapping[str, Any], split: str, setting: str, method: str, level: int
) -> str:
    """`` (difference ..., 95 % CI [...] over n scenes)`` when the report has it, else ''."""
    try:
        diff = report["paired"][split][setting][method][level]
    except KeyError:
        return ""
    return (
        f" (paired difference {diff['mean']:+.4f} m, 95 % CI [{diff['low']:+.4f}, "
        f"{diff['high']:+.4f}] over {diff['n']} scenes)"
    )


def quality_bar_section(failures: Sequence[str]) -> str:
    """The verdict as a markdown section: one bullet per failure, or "Met at every level."."""
    lines = ["## Quality bar", ""]
    lines += [f"- {line}" for line in failures] if failures else ["Met at every level."]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Check one ``results.json``; print the failed criteria; 1 when the bar is missed."""
    parser = argparse.ArgumentParser(
        description="Check an evaluation's results.json against the project's quality bar."
    )
    parser.add_argument(
        "results",
        type=Path,
        metavar="RESULTS_JSON",
        help="results.json written by `python -m sdr_core evaluate`",
    )
    args = parser.parse_args(argv)
    if not args.results.is_file():
        parser.error(f"no such file: {args.results.resolve()}")
    failures = check_quality_bar(read_json(args.results))
    print(quality_bar_section(failures), end="")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
