"""The teaching view: one pixel's 13 x 13 attention window at the frame shown.

Frame ``n`` of a run shows the state *after* an iteration; the teaching view explains the
iteration that produced it, with the weights the library computes for that pixel from the
state the iteration started from (:meth:`sdr_core.pipeline.SDRPipeline.window_weights`).
Frame 0 (the initial state) shows the weights of layer 1's first iteration.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from sdr_core import viz
from sdr_core.mspn import AttentionWindow
from studio.scene import Scene
from studio.session import RunRecord, Session, display_factor, require_scene, upscale

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from sdr_core.pipeline import SDRPipeline

__all__ = ["Inspection", "attention_figure", "inspect_pixel", "inspect_view", "inspection_text"]


@dataclass(frozen=True)
class Inspection:
    """The teaching view of one pixel at one iteration."""

    window: AttentionWindow
    image: np.ndarray  # the frame's depth with the window outlined, display size
    figure: go.Figure  # heatmaps: attention weights, mask, depth of the window
    text: str  # markdown


def inspect_view(
    scene: Scene, record: RunRecord, index: int, window: AttentionWindow | None = None
) -> np.ndarray:
    """The clickable teaching image: frame ``index``'s depth with the inspected window.

    The map is upscaled to display size (:func:`~studio.session.display_factor`) and its
    colour bar (the run's depth scale, metres) sits to its right; clicks beyond the map's
    width fall on the bar.

    Returns:
        (H f) x (W f + bar) x 3 uint8.
    """
    index = min(max(int(index), 0), len(record.states) - 1)
    vmin, vmax = record.depth_range
    image = viz.colorize_depth(record.states[index].depth, vmin, vmax)
    if window is not None:
        p = window.window
        box = np.zeros(scene.shape, dtype=bool)
        box[window.top : window.top + p, window.left : window.left + p] = True
        image = viz.draw_hole(image, box, alpha=0.15)
        query = np.zeros(scene.shape, dtype=np.float32)
        query[window.y, window.x] = 1.0
        image = viz.draw_points(image, query, radius=0, color=(255, 255, 255))
    return viz.depth_with_colorbar(upscale(image, display_factor(scene.shape)), vmin, vmax)


def inspect_pixel(
    pipeline: SDRPipeline, session: Session, index: int, x: int, y: int
) -> Inspection:
    """Attention weights and mask values of pixel (x, y) at frame ``index`` of the last run.

    Frame ``index`` shows the state *after* an iteration; the weights shown are the ones
    that produced it. Frame 0 (the initial state) shows the weights of layer 1, iteration 1.
    The guidance feature G is computed once per run and kept in the run's record.
    """
    scene = require_scene(session)
    record = session.run
    if record is None or not record.states:
        raise ValueError("Run the refinement first; then click a pixel to inspect it.")
    index = min(max(int(index), 0), len(record.states) - 1)
    height, width = scene.shape
    if not (0 <= x < width and 0 <= y < height):
        raise ValueError(f"pixel (x={x}, y={y}) is outside the {width}x{height} image")
    if record.guidance is None:
        record.guidance = pipeline.guidance_feature(scene.image, record.sparse, scene.init_depth)
    source = record.sources[index]
    window = pipeline.window_weights(
        scene.image, record.sparse, scene.init_depth, source, y, x,
        use_mask=record.use_mask, guidance=record.guidance,
    )  # fmt: skip
    return Inspection(
        window=window,
        image=inspect_view(scene, record, index, window),
        figure=attention_figure(window, record.depth_range),
        text=inspection_text(window, source.iterations_in_layer, index == 0),
    )


def inspection_text(window: AttentionWindow, iterations_in_layer: int, initial: bool) -> str:
    """Markdown explaining the numbers of one :class:`AttentionWindow`."""
    where = f"pixel (x={window.x}, y={window.y})"
    when = viz.caption(window.layer, window.iteration, iterations_in_layer)
    lines = [f"**{where} · {when}**" + (" (the first iteration, from D0)" if initial else "")]
    if window.measured:
        lines.append(
            f"A measured pixel: its depth stays at S = {window.depth_after:.3f} m and its mask "
            f"at {window.mask_after:.2f}."
        )
    elif window.domain == "ratio":
        lines.append(
            f"Before: D = {window.depth_before:.3f} m, M = {window.mask_before:.3f}. This "
            "layer propagates the correction rho = log(D / D0), not the depth: the "
            "attention-weighted rho of the window, applied to this pixel's D0, gives "
            f"R = {window.refined:.3f} m (eq. 9); the new depth blends D and R by M: "
            f"{window.depth_after:.3f} m (eq. 10); the new mask is the attention-weighted "
            f"mask of the window: {window.mask_after:.3f} (eq. 11)."
        )
    else:
        lines.append(
            f"Before: D = {window.depth_before:.3f} m, M = {window.mask_before:.3f}. "
            f"The attention-weighted depth of the window is R = {window.refined:.3f} m (eq. 9); "
            f"the new depth blends D and R by M: {window.depth_after:.3f} m (eq. 10); the new "
            f"mask is the attention-weighted mask of the window: {window.mask_after:.3f} (eq. 11)."
        )
    trusted = float((window.weights * window.mask).sum())
    lines.append(
        "Each key is multiplied by its mask (eq. 7): a key with M = 0 is zero, so its logit is "
        f"only the position bias. {100 * trusted:.0f} % of the attention falls on trusted "
        "keys; that share is the pixel's next mask (eq. 11)."
    )
    return "\n\n".join(lines)


def attention_figure(
    window: AttentionWindow, depth_range: tuple[float, float] | None = None
) -> go.Figure:
    """Three p x p heatmaps: attention weights, mask M_n and depth D~_n of the window.

    Each has its colour bar; the depth uses the frame panels' colours and, given
    ``depth_range`` (the run's scale, metres), their scale too, so a colour means the same
    depth here as in the frame.
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    p = window.window
    rows = list(range(window.top, window.top + p))
    cols = list(range(window.left, window.left + p))
    fig = make_subplots(
        rows=1,
        cols=3,
        horizontal_spacing=0.11,
        subplot_titles=("attention weight (eq. 8)", "mask M of keys (eq. 7)", "depth D (m)"),
    )
    dmin, dmax = depth_range or (float(window.depth.min()), float(window.depth.max()))
    viridis = viz.plotly_colorscale("viridis")
    panels = (
        (window.weights, viridis, 0.0, float(window.weights.max()), ".3f", ""),
        (window.mask, viridis, 0.0, 1.0, ".2f", ""),
        (window.depth, viz.plotly_colorscale("turbo", reverse=True), dmin, dmax, ".2f", " m"),
    )
    for column, (values, scale, zmin, zmax, fmt, unit) in enumerate(panels, start=1):
        fig.add_trace(
            go.Heatmap(
                z=values,
                x=cols,
                y=rows,
                colorscale=scale,
                zmin=zmin,
                zmax=zmax if zmax > zmin else zmin + 1e-6,
                colorbar={
                    "x": fig.layout[f"xaxis{'' if column == 1 else column}"].domain[1] + 0.005,
                    "xanchor": "left",
                    "len": 0.8,
                    "thickness": 10,
                    "ticksuffix": unit,
                    "tickfont": {"size": 10},
                },
                hovertemplate=f"x=%{{x}}, y=%{{y}}: %{{z:{fmt}}}{unit}<extra></extra>",
            ),
            row=1,
            col=column,
        )
        fig.add_trace(
            go.Scatter(
                x=[window.x],
                y=[window.y],
                mode="markers",
                showlegend=False,
                marker={"symbol": "x-thin", "size": 12, "line": {"width": 2, "color": "red"}},
                hoverinfo="skip",
            ),
            row=1,
            col=column,
        )
        fig.update_yaxes(
            autorange="reversed", scaleanchor=f"x{'' if column == 1 else column}", row=1, col=column
        )
    fig.update_layout(
        template="plotly_white", height=330, margin={"l": 30, "r": 10, "t": 40, "b": 30}
    )
    return fig
