"""Plotly figures: a metric per MSPN iteration, a coloured point cloud, the sparsity sweep.

plotly is imported only when a figure is made (:func:`_plotly`), with a clear error when it
is missing; nothing else in :mod:`sdr_core.viz` needs it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import numpy as np

from ..camera import (
    NYU_INTRINSICS_640X480,
    back_project,
    check_intrinsics,
    default_intrinsics,
)
from ..validation import as_depth_map, as_rgb_image, check_same_shape

if TYPE_CHECKING:
    import plotly.graph_objects as go

__all__ = [
    "ITERATION_METRICS",
    "NYU_INTRINSICS",
    "iteration_metrics_figure",
    "point_cloud_figure",
    "sparsity_figure",
]

#: NYUv2 Kinect colour intrinsics (fx, fy, cx, cy) in pixels at 640 x 480.
NYU_INTRINSICS = NYU_INTRINSICS_640X480

#: Metrics that :func:`iteration_metrics_figure` plots in one call with ``metric=...``.
ITERATION_METRICS = ("rmse", "rel", "d1")


def _plotly() -> tuple[Any, Any]:
    """(plotly.graph_objects, plotly.subplots.make_subplots), with a clear error if absent."""
    try:
        import plotly.graph_objects as go
        from plotly.subplots import make_subplots
    except ImportError as error:
        raise ImportError(
            "plotly is needed for sdr_core.viz figures: pip install plotly"
        ) from error
    return go, make_subplots


_METRIC_TITLES = MappingProxyType(
    {
        "rmse": "RMSE (m) \u2193",
        "mae": "MAE (m) \u2193",
        "rel": "REL \u2193",
        "irmse": "iRMSE (1/km) \u2193",
        "imae": "iMAE (1/km) \u2193",
        "d1": "\u03b4 < 1.25 \u2191",
        "d2": "\u03b4 < 1.25\u00b2 \u2191",
        "d3": "\u03b4 < 1.25\u00b3 \u2191",
    }
)
_LAYER_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd")
_REFERENCE_COLORS = ("#555555", "#d62728", "#8c564b", "#e377c2", "#17becf", "#7f7f7f")
_REFERENCE_DASHES = ("dash", "dot", "dashdot", "longdash")
_METHOD_COLORS = _LAYER_COLORS + _REFERENCE_COLORS


def _history_item(item: Any, index: int, metrics: Sequence[str]) -> tuple[int, int, list[float]]:
    if not isinstance(item, Mapping):
        raise ValueError(f"history[{index}] must be a dict, got {type(item).__name__}")
    for key in ("layer", "iteration", *metrics):
        if key not in item:
            raise ValueError(f"history[{index}] is missing key {key!r}")
    layer, iteration = int(item["layer"]), int(item["iteration"])
    if layer < 1 or iteration < 0:
        raise ValueError(
            f"history[{index}] needs layer >= 1 and iteration >= 0, "
            f"got layer={layer}, iteration={iteration}"
        )
    values = [float(item[m]) for m in metrics]
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"history[{index}] has a non-finite metric value: {values}")
    return layer, iteration, values


def _reference_value(
    label: str, value: float | Mapping[str, float], metric: str, n_metrics: int
) -> float | None:
    """The y of reference line `label` in the `metric` subplot, None if it has none."""
    if isinstance(value, Mapping):
        return float(value[metric]) if metric in value else None
    if n_metrics > 1:
        raise ValueError(
            f"reference_lines[{label!r}] is one number but {n_metrics} metrics are plotted; "
            "pass {metric: value}, e.g. {'rmse': 0.5, 'rel': 0.1}"
        )
    return float(value)


_HistoryRow = tuple[int, int, list[float]]  # (layer, iteration, one value per metric)


@dataclass(frozen=True)
class _LayerAxis:
    """Where the layers sit on the figure's one x axis.

    Layer ``L``'s iteration ``i`` is at ``x = offsets[L] + i``; the reference lines run
    from ``x_min`` to ``x_max``.
    """

    layers: list[int]
    offsets: dict[int, int]
    x_min: int
    x_max: int


def _layer_axis(rows: Sequence[_HistoryRow]) -> _LayerAxis:
    """Each layer starts after the largest iteration of the layers before it."""
    layers = sorted({layer for layer, _, _ in rows})
    last_iteration = {lay: max(it for layer, it, _ in rows if layer == lay) for lay in layers}
    offsets, total = {}, 0
    for layer in layers:
        offsets[layer], total = total, total + last_iteration[layer]
    x_min = min(offsets[layer] + it for layer, it, _ in rows)
    return _LayerAxis(layers, offsets, x_min, max(x_min + 1, total))


def _add_layer_traces(
    fig: go.Figure, rows: Sequence[_HistoryRow], axis: _LayerAxis, k: int, row: int
) -> None:
    """One line per layer through metric ``k`` of its iterations, in subplot ``row``."""
    go, _ = _plotly()
    offsets = axis.offsets
    for layer in axis.layers:
        points = sorted((offsets[lay] + it, vals[k]) for lay, it, vals in rows if lay == layer)
        fig.add_trace(
            go.Scatter(
                x=[p[0] for p in points],
                y=[p[1] for p in points],
                mode="lines+markers",
                name=f"layer {layer}",
                legendgroup=f"layer {layer}",
                showlegend=row == 1,
                line={"color": _LAYER_COLORS[(layer - 1) % len(_LAYER_COLORS)]},
                marker={"size": 5},
            ),
            row=row,
            col=1,
        )


def _add_reference_traces(
    fig: go.Figure,
    reference_lines: Mapping[str, float | Mapping[str, float]],
    metric: str,
    n_metrics: int,
    axis: _LayerAxis,
    row: int,
    in_legend: set[str],
) -> None:
    """A horizontal line per reference with a value for ``metric``; each name once in the legend.

    ``in_legend`` holds the names already shown; the ones drawn here are added to it.
    """
    go, _ = _plotly()
    for j, (label, value) in enumerate(reference_lines.items()):
        y = _reference_value(str(label), value, metric, n_metrics)
        if y is None:
            continue
        fig.add_trace(
            go.Scatter(
                x=[axis.x_min, axis.x_max],
                y=[y, y],
                mode="lines",
                name=str(label),
                legendgroup=f"reference {label}",
                showlegend=str(label) not in in_legend,
                line={
                    "color": _REFERENCE_COLORS[j % len(_REFERENCE_COLORS)],
                    "dash": _REFERENCE_DASHES[j % len(_REFERENCE_DASHES)],
                    "width": 1.5,
                },
            ),
            row=row,
            col=1,
        )
        in_legend.add(str(label))


def _mark_layers(fig: go.Figure, axis: _LayerAxis) -> None:
    """A dashed line where each later layer starts, every other layer shaded, a label each."""
    layers, offsets = axis.layers, axis.offsets
    for i, layer in enumerate(layers[1:], start=1):
        start = offsets[layer] + 0.5  # between the previous layer's last and this one's first
        fig.add_vline(x=start, line={"dash": "dash", "color": "#444444", "width": 1})
        if i % 2 == 1:
            end = offsets[layers[i + 1]] + 0.5 if i + 1 < len(layers) else axis.x_max + 0.5
            fig.add_vrect(x0=start, x1=end, fillcolor="#888888", opacity=0.1, line_width=0)
    for layer in layers:  # label each layer inside the top subplot, clear of the legend
        fig.add_annotation(
            x=offsets[layer] + 0.6, y=1.0, xref="x", yref="y domain", xanchor="left",
            yanchor="top", text=f"layer {layer}", showarrow=False, font={"size": 11},
        )  # fmt: skip


def iteration_metrics_figure(
    history: Sequence[Mapping[str, float]],
    reference_lines: Mapping[str, float | Mapping[str, float]] | None = None,
    metric: str | Sequence[str] = "rmse",
) -> go.Figure:
    """A metric after every MSPN iteration, both layers on one global x axis.

    Layer ``L``'s iteration ``i`` sits at ``x = i + (iterations of layers before L)``, the
    latter taken as the largest iteration in the history per layer; ``iteration = 0`` may
    be used for the state before the layer (e.g. D0). The region after layer 1 is shaded
    and the boundary drawn as a dashed vertical line.

    Args:
        history: Items ``{"layer": int, "iteration": int, "rmse": float, "rel": float,
            "d1": float, ...}`` (any key of :func:`~sdr_core.metrics.compute_metrics`).
        reference_lines: Horizontal lines such as ``{"MDE only": 0.52}`` (for a single
            metric) or ``{"MDE only": {"rmse": 0.52, "rel": 0.14, "d1": 0.83}}`` (per
            metric, required when several are plotted; metrics a line lacks are skipped).
        metric: One metric name, or several (e.g. :data:`ITERATION_METRICS`) for stacked
            subplots sharing the x axis.

    Returns:
        A plotly Figure with, per subplot, one line trace per layer present plus one trace
        per reference line that has a value for that metric.

    Raises:
        ValueError: On an empty history, a missing key, a bad layer / iteration, an
            empty metric list, or a plain-number reference line with several metrics.
        ImportError: If plotly is not installed.
    """
    _, make_subplots = _plotly()
    metrics = [metric] if isinstance(metric, str) else list(metric)
    if not metrics:
        raise ValueError("metric must name at least one metric, e.g. 'rmse'")
    if not history:
        raise ValueError("history is empty; record at least one iteration")
    rows = [_history_item(item, i, metrics) for i, item in enumerate(history)]
    axis = _layer_axis(rows)
    fig = make_subplots(rows=len(metrics), cols=1, shared_xaxes=True, vertical_spacing=0.05)
    references = reference_lines or {}
    in_legend: set[str] = set()
    for k, name in enumerate(metrics):
        row = k + 1
        _add_layer_traces(fig, rows, axis, k, row)
        _add_reference_traces(fig, references, name, len(metrics), axis, row, in_legend)
        fig.update_yaxes(title_text=_METRIC_TITLES.get(name, name), row=row, col=1)
    _mark_layers(fig, axis)
    fig.update_xaxes(title_text="MSPN iteration (both layers)", row=len(metrics), col=1)
    fig.update_layout(
        template="plotly_white",
        height=260 * len(metrics) + 80,
        margin={"l": 70, "r": 20, "t": 40, "b": 50},
        legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 0},
    )
    return fig


def _intrinsics_for(
    height: int, width: int, intrinsics: Sequence[float] | None
) -> tuple[float, float, float, float]:
    if intrinsics is None:
        return default_intrinsics(height, width)
    return check_intrinsics(intrinsics)


def point_cloud_figure(
    depth_m: np.ndarray,
    rgb: np.ndarray,
    intrinsics: Sequence[float] | None = None,
    max_points: int = 60_000,
) -> go.Figure:
    """Back-project a depth map to a 3D scatter coloured by the image.

    Camera frame (pinhole): ``X = (u - cx) Z / fx``, ``Y = (v - cy) Z / fy``, ``Z = depth``
    with x right, y down and the camera looking along +Z. Plotted as scene axes
    ``(x, y, z) = (X, Z, -Y)``: the scene's z axis is "up" (plotly's default up vector),
    so the cloud stands upright and unmirrored, and the initial view looks from behind the
    camera along the optical axis.

    Args:
        depth_m: HxW depth in metres; 0 / NaN / inf / negative pixels are skipped.
        rgb: HxWx3 uint8 image (or anything :func:`~sdr_core.validation.as_rgb_image`
            takes) of the same H, W.
        intrinsics: ``(fx, fy, cx, cy)`` in pixels for this image size. None -> NYUv2
            Kinect (518.8579, 519.4696, 325.5824, 253.7362 at 640x480) scaled to H x W,
            i.e. as if the image were a resize of the full frame.
        max_points: Upper bound on points; the valid pixels are subsampled on a regular
            pixel grid (deterministic), then evenly if still too many.

    Returns:
        A plotly Figure with one Scatter3d trace.

    Raises:
        ValueError: On a shape mismatch, bad intrinsics, ``max_points < 1`` or no valid
            depth.
        ImportError: If plotly is not installed.
    """
    go, _ = _plotly()
    depth = as_depth_map(depth_m, "depth_m")
    image = as_rgb_image(rgb, "rgb")
    check_same_shape(image, depth, "rgb", "depth_m")
    if int(max_points) != max_points or max_points < 1:
        raise ValueError(f"max_points must be an integer >= 1, got {max_points}")
    height, width = depth.shape
    intrinsics_px = _intrinsics_for(height, width, intrinsics)
    n_valid = int(np.count_nonzero(depth > 0))
    if n_valid == 0:
        raise ValueError("depth_m has no valid pixel (finite and > 0) to plot")
    stride = max(1, math.ceil(math.sqrt(n_valid / max_points)))
    v, u = np.mgrid[0:height:stride, 0:width:stride]  # pixel rows, columns
    z = depth[v, u]
    keep = z > 0
    v, u, z = v[keep], u[keep], z[keep]
    if z.size > max_points:
        pick = np.linspace(0, z.size - 1, max_points).round().astype(np.intp)
        v, u, z = v[pick], u[pick], z[pick]
    x, y = back_project(v, u, z, intrinsics_px)
    rgb_packed = image[v, u].astype(np.int64) @ np.array([1 << 16, 1 << 8, 1])
    colors = [f"#{c:06x}" for c in rgb_packed.tolist()]
    # A plain dict is validated once; a go.Scatter3d would be validated again by the
    # Figure (~0.35 s each for 34k colour strings).
    trace = {
        "type": "scatter3d",
        "x": x,
        "y": z,
        "z": -y,
        "mode": "markers",
        "marker": {"size": 1.5, "color": colors},
        "hoverinfo": "skip",
        "name": "points",
    }
    fig = go.Figure(data=[trace])
    fig.update_layout(
        template="plotly_white",
        margin={"l": 0, "r": 0, "t": 30, "b": 0},
        scene={
            "aspectmode": "data",
            "xaxis_title": "x (m)",
            "yaxis_title": "depth (m)",
            "zaxis_title": "up (m)",
            "camera": {"eye": {"x": 0.0, "y": -1.6, "z": 0.35}, "up": {"x": 0, "y": 0, "z": 1}},
        },
    )
    return fig


def sparsity_figure(
    results: Mapping[str, Mapping[int, float]],
    title: str = "Error vs. number of sparse points",
    xlabel: str = "sparse points",
    ylabel: str = "RMSE (m)",
) -> go.Figure:
    """Fig. 5-style chart: one line per method over the sparsity levels, log x axis.

    Args:
        results: ``{method: {sparsity level (> 0, e.g. points): metric value}}``.
        title: Figure title.
        xlabel: X axis title.
        ylabel: Y axis title.

    Returns:
        A plotly Figure with one trace per method; the x ticks are the levels used.

    Raises:
        ValueError: If `results` or a method's dict is empty, or a level is <= 0.
        ImportError: If plotly is not installed.
    """
    go, _ = _plotly()
    if not results:
        raise ValueError("results is empty; pass {method: {level: value}}")
    fig = go.Figure()
    levels: set[float] = set()
    for j, (method, by_level) in enumerate(results.items()):
        if not by_level:
            raise ValueError(f"results[{method!r}] is empty")
        points = sorted((float(k), float(v)) for k, v in by_level.items())
        if points[0][0] <= 0:
            raise ValueError(f"results[{method!r}] has level {points[0][0]:g}; levels must be > 0")
        levels.update(p[0] for p in points)
        fig.add_trace(
            go.Scatter(
                x=[p[0] for p in points],
                y=[p[1] for p in points],
                mode="lines+markers",
                name=str(method),
                line={"color": _METHOD_COLORS[j % len(_METHOD_COLORS)]},
            )
        )
    ticks = sorted(levels)
    fig.update_xaxes(
        type="log", title_text=xlabel, tickvals=ticks, ticktext=[f"{t:g}" for t in ticks]
    )
    fig.update_yaxes(title_text=ylabel)
    fig.update_layout(template="plotly_white", title=title, margin={"t": 60})
    return fig
