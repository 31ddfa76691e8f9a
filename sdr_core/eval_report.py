"""An evaluation report: the best classical method, JSON / markdown / HTML.

:mod:`sdr_core.evaluate` runs the sparsity sweep and builds the report
``{"meta", "heldout", "middlebury", "paired", "mask_shape", "best_classical"}``; this module
reads it (every public name is importable from :mod:`sdr_core.evaluate` too):

- :func:`best_classical` picks, per setting and level, the classical method (every baseline
  of :mod:`sdr_core.methods` that uses the measurements, i.e. all but D0 alone) with the
  lowest mean RMSE, and MSPN's RMSE ratio to it: MSPN is always compared with the best
  training-free method, not with a weak one;
- :func:`write_json` / :func:`read_json`, :func:`markdown_report` (with
  :func:`markdown_table`, :func:`paired_table`, :func:`best_classical_table`) and
  :func:`write_plot_html` write and read the files.

The report states facts; whether they meet the project's quality bar is an acceptance policy,
checked outside the library by ``scripts/quality_bar.py``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from sdr_core import methods as method_table
from sdr_core.d0_sources import ALIASES, D0_SOURCES

__all__ = [
    "BASELINE_METHODS",
    "CLASSICAL_METHODS",
    "INIT_LABELS",
    "METHOD_LABELS",
    "SETTINGS",
    "best_classical",
    "best_classical_table",
    "markdown_report",
    "markdown_table",
    "paired_table",
    "read_json",
    "write_json",
    "write_plot_html",
]

SETTINGS = ("points", "lines", "hole")
# mde, ls_align, ls_interp, edge_aware, ls_interp_bilateral
BASELINE_METHODS = method_table.BASELINES
# The baselines that use the measurements; MSPN is held to the best of them per level.
CLASSICAL_METHODS = method_table.CLASSICAL
METHOD_LABELS = {name: method.label for name, method in method_table.METHODS.items()}
# What each D0 source gives (sdr_core.d0_sources' descriptions), for the report; aliases
# too, so results files written under an older name ("simulated") still read right.
INIT_LABELS: Mapping[str, str] = MappingProxyType(
    {
        **{name: source.description for name, source in D0_SOURCES.items()},
        **{alias: D0_SOURCES[name].description for alias, name in ALIASES.items()},
    }
)
# Metrics where larger is better (threshold accuracies); all others are errors.
_HIGHER_IS_BETTER = frozenset({"d1", "d2", "d3"})
_METRIC_UNITS = {"rmse": "m", "mae": "m", "irmse": "1/km", "imae": "1/km"}
_SETTING_TITLES = {
    "points": "random points",
    "lines": "LiDAR lines",
    "hole": "hole filling (metrics inside the hole)",
}
# Top-level keys of a report that are not splits.
_NOT_SPLITS = ("meta", "paired", "mask_shape", "best_classical")


# ----------------------------------------------------------------------------- best classical


def _rmse(results: Mapping[str, Any], setting: str, method: str, level: int) -> float | None:
    try:
        return float(results[setting][method][level]["rmse"])
    except KeyError:
        return None


def best_classical(
    results: Mapping[str, Any], classical: tuple[str, ...] = CLASSICAL_METHODS
) -> dict[str, dict[int, dict[str, Any]]]:
    """Per setting and level, the classical method with the lowest mean RMSE, and MSPN's ratio.

    Args:
        results: one split's results ``{setting: {method: {level: {"rmse": ...}}}}``.
        classical: the methods to choose from; those the results lack are skipped (the
            quality bar of ``scripts/quality_bar.py``, not this table, says that a method is
            missing).

    Returns:
        ``{setting: {level: {"method", "rmse", "mspn", "ratio"}}}``: the best method's key
        and RMSE (m), MSPN's RMSE and ``mspn / rmse`` (< 1: MSPN better); the last two are
        None without an MSPN result (the ratio also for a rival of RMSE 0). Levels without
        any classical result are left out.
    """
    out: dict[str, dict[int, dict[str, Any]]] = {}
    for setting in (s for s in SETTINGS if s in results):
        by_method = results[setting]
        levels = sorted({level for m in classical for level in by_method.get(m, {})})
        for level in levels:
            values = {m: _rmse(results, setting, m, level) for m in classical}
            found = {m: v for m, v in values.items() if v is not None}
            if not found:
                continue
            best = min(found, key=lambda m: found[m])
            ours = _rmse(results, setting, "mspn", level)
            out.setdefault(setting, {})[level] = {
                "method": best,
                "rmse": found[best],
                "mspn": ours,
                # None rather than inf for a perfect rival: the report is strict JSON
                "ratio": None if ours is None or found[best] <= 0 else ours / found[best],
            }
    return out


def best_classical_table(results: Mapping[str, Any], setting: str) -> str:
    """Markdown table of :func:`best_classical` for one setting of one split.

    Columns are levels; rows the best classical method, its RMSE, MSPN's RMSE and their
    ratio (bold where MSPN is better). Empty when the setting has no classical result.
    """
    rows = best_classical(results).get(setting, {})
    if not rows:
        return ""
    levels = sorted(rows)

    def cells(value: Any) -> str:
        return " | ".join(value(rows[level]) for level in levels)

    def ratio(row: Mapping[str, Any]) -> str:
        if row["ratio"] is None:
            return ""
        text = f"{row['ratio']:.2f}"
        return f"**{text}**" if row["ratio"] < 1 else text

    lines = [
        "| | " + " | ".join(str(level) for level in levels) + " |",
        "|---|" + "---:|" * len(levels),
        "| best classical method | " + cells(lambda r: METHOD_LABELS.get(r["method"], "?")) + " |",
        "| its RMSE (m) | " + cells(lambda r: _format(r["rmse"])) + " |",
        "| MSPN RMSE (m) | "
        + cells(lambda r: "" if r["mspn"] is None else _format(r["mspn"]))
        + " |",
        "| MSPN / best | " + cells(ratio) + " |",
    ]
    return "\n".join(lines) + "\n"


def _best_classical_section(results: Mapping[str, Any]) -> list[str]:
    """Markdown lines comparing MSPN with the best classical method in every setting."""
    present = [m for m in CLASSICAL_METHODS if any(m in results[s] for s in results)]
    if not present:
        return []
    names = ", ".join(METHOD_LABELS.get(m, m) for m in present)
    parts = [
        f"MSPN against the best classical method per level (lowest mean RMSE of: {names}); "
        "MSPN / best below 1 (bold): MSPN better.",
        "",
    ]
    for setting in (s for s in SETTINGS if s in results):
        table = best_classical_table(results, setting)
        if table:
            parts += [f"{_SETTING_TITLES[setting]}:", "", table]
    return parts


# ----------------------------------------------------------------------------- writers


def _split_items(results: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    """``[(split, results)]`` for a report, or ``[("", results)]`` for one split's results."""
    if set(results) <= set(SETTINGS):
        return [("", results)]
    return [(k, v) for k, v in results.items() if k not in _NOT_SPLITS and isinstance(v, Mapping)]


def write_json(results: Mapping[str, Any], path: str | Path) -> None:
    """Write results (one split's or a whole report) as indented JSON; levels become strings.

    Read it back with :func:`read_json`, which restores the integer levels.
    """
    Path(path).write_text(json.dumps(results, indent=2, allow_nan=False) + "\n", encoding="utf-8")


def _int_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            (int(k) if isinstance(k, str) and k.isdigit() else k): _int_keys(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_int_keys(v) for v in value]
    return value


def read_json(path: str | Path) -> dict[str, Any]:
    """Read what :func:`write_json` wrote, with the levels as ints again."""
    return _int_keys(json.loads(Path(path).read_text(encoding="utf-8")))


def _format(value: float) -> str:
    return f"{value:.3f}"


def markdown_table(
    results: Mapping[str, Any], metric: str = "rmse", setting: str | None = None
) -> str:
    """Markdown tables of one metric: rows are methods, columns levels, best in bold.

    Args:
        results: one split's results, as from :func:`evaluate_scenes`.
        metric: a key of the metric dicts, e.g. ``"rmse"``; for ``d1``-``d3`` the largest
            value is best, for every other metric the smallest.
        setting: one setting only; default every setting, each under a caption line.

    Returns:
        The table(s), ending in a newline. Ties for the best are all bold.
    """
    settings = [setting] if setting is not None else [s for s in SETTINGS if s in results]
    pick = max if metric in _HIGHER_IS_BETTER else min
    unit = f" ({_METRIC_UNITS[metric]})" if metric in _METRIC_UNITS else ""
    blocks = []
    for name in settings:
        by_method = results[name]
        methods = list(by_method)
        levels = sorted({level for m in methods for level in by_method[m]})
        best = {
            level: pick(by_method[m][level][metric] for m in methods if level in by_method[m])
            for level in levels
        }
        header = "| method | " + " | ".join(str(level) for level in levels) + " |"
        rule = "|---|" + "---:|" * len(levels)
        rows = []
        for method in methods:
            cells = []
            for level in levels:
                if level not in by_method[method]:
                    cells.append("")
                    continue
                value = by_method[method][level][metric]
                text = _format(value)
                cells.append(f"**{text}**" if value == best[level] else text)
            rows.append(f"| {METHOD_LABELS.get(method, method)} | " + " | ".join(cells) + " |")
        lines = [header, rule, *rows]
        if setting is None:
            lines = [f"{metric.upper()}{unit}, {_SETTING_TITLES.get(name, name)}:", "", *lines]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def paired_table(paired: Mapping[str, Any], setting: str) -> str:
    """Markdown table of :func:`paired_rmse` for one setting of one split.

    Rows are methods, columns levels; each cell is the mean RMSE difference to MSPN (m,
    > 0: MSPN better) and its interval, bold where the interval excludes 0 (the sign holds
    for any likely draw of scenes).
    """
    by_method = paired[setting]
    levels = sorted({level for rows in by_method.values() for level in rows})
    lines = [
        "| method | " + " | ".join(str(level) for level in levels) + " |",
        "|---|" + "---:|" * len(levels),
    ]
    for method, rows in by_method.items():
        cells = []
        for level in levels:
            if level not in rows:
                cells.append("")
                continue
            diff = rows[level]
            text = f"{diff['mean']:+.3f} [{diff['low']:+.3f}, {diff['high']:+.3f}]"
            clear = diff["low"] > 0 or diff["high"] < 0
            cells.append(f"**{text}**" if clear else text)
        lines.append(f"| {METHOD_LABELS.get(method, method)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _paired_section(report: Mapping[str, Any], split: str) -> list[str]:
    """Markdown lines of a split's paired differences; none for a single scene."""
    paired = report.get("paired", {}).get(split, {})
    n_scenes = len(report.get("meta", {}).get("scenes", {}).get(split, []))
    if not paired or n_scenes < 2:
        return []
    parts = [
        f"RMSE difference to MSPN, scene by scene (m; method minus MSPN, > 0: MSPN better), "
        f"mean and 95 % bootstrap interval over the {n_scenes} scenes; bold: the interval "
        "excludes 0.",
        "",
    ]
    for setting in SETTINGS:
        if setting in paired:
            parts += [f"{_SETTING_TITLES[setting]}:", "", paired_table(paired, setting)]
    return parts


def _mask_shape_section(report: Mapping[str, Any], split: str) -> list[str]:
    """Markdown lines of a split's mask-shape diagnostic; none when it was not run."""
    shape = report.get("mask_shape", {}).get(split)
    if not shape:
        return []
    fills = ", ".join(f"{v['fill']:.2f}" for v in shape["scenes"].values())
    return [
        f"Mask shape (one measurement at the centre, {shape['iterations']} first-layer "
        f"iterations): the mask > {shape['threshold']} region fills "
        f"{100 * shape['mean_fill']:.1f} % of its bounding box on average (1 scene each: "
        f"{fills}); {shape['distinct']} different masks in {shape['n']} scenes.",
        "",
    ]


def markdown_report(report: Mapping[str, Any], metric: str = "rmse") -> str:
    """A markdown page: one section per split with its tables (no quality-bar verdict)."""
    parts = ["# MSPN evaluation", ""]
    meta = report.get("meta", {})
    config = meta.get("config", {})
    if config:
        parts += [
            f"Held-out synthetic scenes: {config.get('n_scenes')} at {config.get('size')}; "
            f"hole setting: {config.get('hole_points')} random points outside a centre hole "
            "of half the height and width, metrics inside the hole. Every method refines the "
            f"same D0 ({INIT_LABELS.get(config.get('init_source', 'mde'), '?')}) per scene; "
            "values are means over scenes.",
            "",
        ]
    for split, results in _split_items(report):
        if split:
            names = meta.get("scenes", {}).get(split)
            parts += [f"## {split}" + (f" ({len(names)} scene(s))" if names else ""), ""]
        parts.append(markdown_table(results, metric))
        parts += _best_classical_section(results)
        parts += _paired_section(report, split)
        parts += _mask_shape_section(report, split)
    return "\n".join(parts)


def _figure(results: Mapping[str, Any], setting: str, title: str) -> Any:
    """A plotly figure of RMSE per method: lines over a log x axis, bars for the hole."""
    by_method = results[setting]
    labels = {method: METHOD_LABELS.get(method, method) for method in by_method}
    if setting == "hole":
        import plotly.graph_objects as go

        fig = go.Figure()
        for method, by_level in by_method.items():
            level = max(by_level)
            fig.add_trace(
                go.Bar(x=[labels[method]], y=[by_level[level]["rmse"]], name=labels[method])
            )
        fig.update_layout(title=title, xaxis_title="method", yaxis_title="RMSE (m)")
        return fig

    from sdr_core.viz import sparsity_figure

    rmse = {
        labels[method]: {level: metrics["rmse"] for level, metrics in by_level.items()}
        for method, by_level in by_method.items()
    }
    xlabel = {"points": "sparse depth points", "lines": "LiDAR lines"}[setting]
    fig = sparsity_figure(rmse, title=title, xlabel=xlabel)
    for method in by_method:
        if method.startswith("mspn_"):  # ablations dashed, as in Fig. 10
            fig.update_traces(line_dash="dash", selector={"name": labels[method]})
    return fig


def write_plot_html(
    results: Mapping[str, Any], path: str | Path, include_plotlyjs: bool | str = True
) -> None:
    """One HTML page of RMSE-vs-sparsity figures (log x, like Fig. 5), one per setting.

    Args:
        results: one split's results or a whole report (one group of figures per split).
        path: output ``.html`` file.
        include_plotlyjs: ``True`` embeds plotly.js (works offline, ~4 MB); ``"cdn"``
            links it instead.
    """
    blocks = []
    for split, split_results in _split_items(results):
        for setting in SETTINGS:
            if setting not in split_results:
                continue
            title = f"{split + ': ' if split else ''}{_SETTING_TITLES[setting]}"
            fig = _figure(split_results, setting, title)
            blocks.append(fig.to_html(full_html=False, include_plotlyjs=include_plotlyjs))
            include_plotlyjs = False  # once per page
    body = "\n".join(blocks)
    html = (
        '<!DOCTYPE html>\n<html>\n<head><meta charset="utf-8"><title>MSPN evaluation</title>'
        f"</head>\n<body>\n{body}\n</body>\n</html>\n"
    )
    Path(path).write_text(html, encoding="utf-8")
