"""Everything the interactive demo does that can be tested without a browser: the run.

- :func:`run_steps` streams one :class:`RunUpdate` per MSPN iteration (depth, mask and,
  with ground truth, error map side by side, each with its colour bar, titled
  "layer 1 · iteration 7 / 28"), records every state in the session, says when the closing
  work starts and ends with a :class:`RunSummary`: metrics table (MSPN vs MDE vs
  baselines, hole region separately) and the metric-per-iteration chart. That closing work
  is small (no network runs), so the page is complete right after the last frame.
- What is slower waits until asked: :func:`run_extras` writes the downloads and builds the
  point cloud (the app calls it once the run has ended), :func:`add_ablation` runs the
  no-mask ablation (Fig. 10d) for the metrics table when the user asks for it.
- :func:`show_frame` puts any stored frame on screen and remembers which one is shown
  (``Session.frame``): scrubbing, playback and the teaching view follow that one index.
- :func:`inspect_pixel` explains one pixel at one iteration: its 13 x 13 attention weights
  and mask values (:mod:`sdr_core.inspect`).

The app keeps the :class:`~sdr_core.demo.Session` in ``gr.State``; these functions never
touch globals, so one read-only pipeline can serve many users.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from . import baselines, report, viz
from .demo import (
    Scene,
    Session,
    SparseInputs,
    _require_scene,
    _upscale,
    depth_scale,
    display_factor,
    no_points_message,
)
from .inspect import AttentionWindow, attention_window, guidance_feature
from .metrics import compute_metrics

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from .pipeline import SDRPipeline

logger = logging.getLogger(__name__)

__all__ = [
    "ABLATION",
    "TABLE_HEADERS",
    "FrameState",
    "Inspection",
    "RunExtras",
    "RunRecord",
    "RunSummary",
    "RunUpdate",
    "add_ablation",
    "attention_figure",
    "frame_at",
    "frame_caption",
    "inspect_pixel",
    "inspect_view",
    "inspection_text",
    "metrics_table",
    "recorded_frames",
    "release",
    "render_frame",
    "run_duration_s",
    "run_extras",
    "run_note",
    "run_steps",
    "show_frame",
    "summarize",
    "write_downloads",
]

TABLE_METRICS = ("rmse", "mae", "rel", "irmse", "d1", "d2", "d3")
TABLE_HEADERS = [
    "method",
    "region",
    "RMSE (m)",
    "MAE (m)",
    "REL",
    "iRMSE (1/km)",
    "δ<1.25",
    "δ<1.25²",
    "δ<1.25³",
]
ANIMATION_FPS = 8
MSPN = "MSPN"
ABLATION = "MSPN without mask (ablation)"
CLOSING_NOTE = "⏳ Last frame reached: computing the metrics table and chart…"


@dataclass(frozen=True)
class FrameState:
    """One stored frame: the state after an iteration (iteration 0 = before layer 1)."""

    layer: int
    iteration: int
    iterations_in_layer: int
    depth: np.ndarray  # H x W float32 metres
    mask: np.ndarray  # H x W float32 in [0, 1]


@dataclass
class RunRecord:
    """What one run leaves in the session: inputs, every state, metrics per iteration."""

    sparse: np.ndarray  # H x W float32 metres, S after the hole
    hole: np.ndarray | None  # H x W bool
    use_mask: bool
    schedule: tuple[int, int]
    depth_range: tuple[float, float]  # one colour scale for every frame
    error_vmax: float | None  # one error scale (None without ground truth)
    clicked: tuple[tuple[int, int, float], ...] = ()  # (x, y, S in metres) of clicked points
    states: list[FrameState] = field(default_factory=list)
    frame_metrics: list[dict[str, float] | None] = field(default_factory=list)  # per state
    history: list[dict[str, float]] = field(default_factory=list)  # whole image, per frame
    hole_history: list[dict[str, float]] = field(default_factory=list)
    frames: list[np.ndarray] = field(default_factory=list)  # rendered, until the downloads
    seconds: float = 0.0  # wall time of the iterations
    summary: RunSummary | None = None
    extras: RunExtras | None = None
    guidance: np.ndarray | None = None  # 1 x C x H x W, cached by inspect_pixel
    out_dir: Path | None = None  # where the downloads are written
    owns_out_dir: bool = False  # a temporary folder of this run, removed by release()

    @property
    def total_frames(self) -> int:
        """Frames of the finished run: the initial state and every iteration."""
        return 1 + sum(self.schedule)


@dataclass(frozen=True)
class RunSummary:
    """What the page shows as soon as a run ends (no network runs to build it)."""

    table: list[list[Any]]  # rows under TABLE_HEADERS; empty without ground truth
    metrics: dict[str, dict[str, dict[str, float]]]  # method -> region -> metric -> value
    iteration_figure: go.Figure | None  # None without ground truth
    seconds: float  # wall time of the iterations
    note: str  # one line for the page: frames, time, the measurements used

    @property
    def has_ablation(self) -> bool:
        """Whether the table holds the other mask setting (see :func:`add_ablation`)."""
        return ABLATION in self.metrics and MSPN in self.metrics


@dataclass(frozen=True)
class RunExtras:
    """The slower products of a finished run, made once the page is complete."""

    point_cloud: go.Figure
    files: list[Path]  # downloads


@dataclass(frozen=True)
class RunUpdate:
    """One item streamed by :func:`run_steps`."""

    index: int  # frame index (0 = initial state)
    total: int  # frames the run will have
    image: np.ndarray  # rendered frame, H' x W' x 3 uint8
    caption: str  # with the frame's metrics when there is ground truth
    metrics: dict[str, float] | None  # whole-image metrics of this frame (with GT)
    summary: RunSummary | None = None  # set on the last update only
    note: str = ""  # progress for the page (the closing work), or the summary's note


# ----------------------------------------------------------------------------- frames
def _caption(state: FrameState, schedule: tuple[int, int]) -> str:
    if state.iteration == 0:
        return f"initial depth D0 · plan {schedule[0]} + {schedule[1]} iterations"
    return viz.caption(state.layer, state.iteration, state.iterations_in_layer)


def frame_caption(record: RunRecord, index: int) -> str:
    """The caption of stored frame ``index``, with its metrics when there is ground truth."""
    text = _caption(record.states[index], record.schedule)
    metrics = record.frame_metrics[index] if index < len(record.frame_metrics) else None
    if metrics is not None:
        text += f" — RMSE {metrics['rmse']:.3f} m, REL {metrics['rel']:.3f}, δ1 {metrics['d1']:.3f}"
    return text


def render_frame(scene: Scene, record: RunRecord, index: int) -> tuple[np.ndarray, str]:
    """Depth | mask | (with GT) error of a stored frame, with colour bars; and its caption.

    All frames of a run share one depth scale and one error scale
    (:func:`sdr_core.viz.refinement_frame` draws them, as the command line does).
    """
    if not 0 <= index < len(record.states):
        raise ValueError(f"frame {index} does not exist; the run has {len(record.states)} frames")
    state = record.states[index]
    image = viz.refinement_frame(
        state.depth,
        state.mask,
        _caption(state, record.schedule),
        record.depth_range,
        gt_m=scene.gt if record.error_vmax is not None else None,
        error_vmax=record.error_vmax,
        hole_mask=record.hole,
        mask_label="propagation mask" if record.use_mask else "mask (off: ablation)",
    )
    return image, frame_caption(record, index)


def frame_at(session: Session, index: int) -> tuple[np.ndarray, str]:
    """Re-render frame ``index`` (clamped to the stored frames) of the last run."""
    scene = _require_scene(session)
    if session.run is None or not session.run.states:
        raise ValueError("Run the refinement first; then its frames can be scrubbed.")
    index = min(max(int(index), 0), len(session.run.states) - 1)
    return render_frame(scene, session.run, index)


def show_frame(session: Session, index: int) -> tuple[int, np.ndarray, str]:
    """Put frame ``index`` (clamped) on screen: remembers it as ``session.frame``.

    The one place the displayed frame changes after a run (slider, its number box, arrow
    keys, Play): the teaching view reads ``session.frame``, so it explains the frame shown.

    Returns:
        ``(index, image, caption)`` with the clamped index.

    Raises:
        ValueError: no scene or no run yet.
    """
    image, caption = frame_at(session, index)
    assert session.run is not None
    session.frame = min(max(int(index), 0), len(session.run.states) - 1)
    return session.frame, image, caption


def recorded_frames(session: Session | None) -> int:
    """How many frames the session's last run has stored (0 without a run).

    After Stop the run is cancelled between two iterations; the frames computed so far stay
    scrubbable, and this is how many there are.
    """
    if session is None or session.run is None:
        return 0
    return len(session.run.states)


def _frame_metrics(
    scene: Scene, depth: np.ndarray, region: np.ndarray | None = None
) -> dict[str, float] | None:
    if scene.gt is None:
        return None
    try:
        return compute_metrics(depth, scene.gt, region)
    except ValueError:  # no valid ground truth inside the region
        return None


def _record_state(scene: Scene, record: RunRecord, state: FrameState) -> dict[str, float] | None:
    record.states.append(state)
    position = {"layer": state.layer, "iteration": state.iteration}
    metrics = _frame_metrics(scene, state.depth)
    record.frame_metrics.append(metrics)
    if metrics is not None:
        record.history.append({**position, **metrics})
    if record.hole is not None:
        hole_metrics = _frame_metrics(scene, state.depth, record.hole)
        if hole_metrics is not None:
            record.hole_history.append({**position, **hole_metrics})
    return metrics


# ----------------------------------------------------------------------------- the run
def run_steps(
    pipeline: SDRPipeline,
    session: Session,
    inputs: SparseInputs,
    use_mask: bool = True,
    out_dir: str | Path | None = None,
) -> Iterator[RunUpdate]:
    """Refine the session's scene and yield every iteration as a ready-to-show frame.

    The first update (the initial state D0 with the measurements, mask M0) comes before any
    network runs, since D0 was computed when the scene was loaded. The run is recorded in
    ``session.run`` as it goes (the caller owns ``session``), and ``session.frame`` follows
    the frame last yielded. The last frame's update carries a progress ``note``
    (:data:`CLOSING_NOTE`); one more update then carries the :class:`RunSummary`. Downloads,
    point cloud and the ablation are left to :func:`run_extras` and :func:`add_ablation`.

    Args:
        pipeline: the shared, read-only pipeline.
        session: the user's session; its ``run`` is replaced.
        inputs: sparse depth from :func:`sdr_core.demo.build_sparse`.
        use_mask: False runs the paper's no-mask ablation (mask fixed to 1).
        out_dir: where the downloads go; a new temporary folder by default.

    Raises:
        ValueError: no scene, or no measurement (with the reason, e.g. the hole covers all).
    """
    scene = _require_scene(session)
    if inputs.sparse.shape != scene.shape:
        raise ValueError("The points belong to another image; set them again.")
    if inputs.n_points == 0:
        raise ValueError(no_points_message(inputs))
    record = _new_record(scene, session, inputs, use_mask)
    record.owns_out_dir = out_dir is None
    record.out_dir = (
        Path(tempfile.mkdtemp(prefix="mspn_run_")) if out_dir is None else Path(out_dir)
    )
    release(session)  # the previous run's downloads have been served by now
    session.run = record
    session.inspected = None
    session.frame = 0
    total = record.total_frames
    measured = inputs.sparse > 0
    initial_mask = measured.astype(np.float32) if use_mask else np.ones(scene.shape, np.float32)
    initial = FrameState(
        1, 0, inputs.schedule[0], np.where(measured, inputs.sparse, scene.init_depth), initial_mask
    )
    yield _frame_update(scene, record, initial, session, total)

    started = time.perf_counter()
    steps = pipeline.refine_steps(
        scene.image,
        inputs.sparse,
        init_depth=scene.init_depth,
        use_mask=use_mask,
        schedule=inputs.schedule,  # the plan shown to the user (LiDAR lines: per line, eq. 13)
    )
    for state in _each_in_inference_mode(steps):
        if state.iteration == 0:  # drawn above (layer 1) or shown by the teaching view
            continue
        frame = FrameState(
            state.layer, state.iteration, state.iterations_in_layer, state.depth, state.mask
        )
        update = _frame_update(scene, record, frame, session, total)
        if update.index == total - 1:
            update = dataclasses.replace(update, note=CLOSING_NOTE)
        yield update
    record.seconds = time.perf_counter() - started
    record.summary = summarize(scene, record)
    yield dataclasses.replace(update, summary=record.summary, note=record.summary.note)


def _frame_update(
    scene: Scene, record: RunRecord, state: FrameState, session: Session, total: int
) -> RunUpdate:
    """Record ``state``, render it, and make it the frame on screen."""
    metrics = _record_state(scene, record, state)
    index = len(record.states) - 1
    image, caption = render_frame(scene, record, index)
    record.frames.append(image)
    session.frame = index
    return RunUpdate(index, total, image, caption, metrics)


def _each_in_inference_mode(steps: Iterator[Any]) -> Iterator[Any]:
    """Resume ``steps`` under ``torch.inference_mode()`` every time.

    A web server may resume a generator on a different thread each time. Grad mode is
    thread-local, so an inference-mode block entered inside the pipeline's generator on one
    thread does not cover its next step on another; entering it around every resume does.
    """
    import torch

    while True:
        with torch.inference_mode():
            state = next(steps, None)
        if state is None:
            return
        yield state


def _clicked_values(session: Session, sparse: np.ndarray) -> tuple[tuple[int, int, float], ...]:
    """(x, y, S) of the clicked points that the run measures (typed or ground truth)."""
    return tuple(
        (x, y, float(sparse[y, x])) for (x, y) in sorted(session.clicks) if sparse[y, x] > 0
    )


def _new_record(scene: Scene, session: Session, inputs: SparseInputs, use_mask: bool) -> RunRecord:
    error_vmax = None
    if scene.gt is not None:
        error_vmax = viz.error_range([scene.init_depth], scene.gt)
    hole = session.hole
    return RunRecord(
        sparse=inputs.sparse,
        hole=None if hole is None or not hole.any() else hole.copy(),
        use_mask=use_mask,
        schedule=inputs.schedule,
        depth_range=depth_scale(scene),
        error_vmax=error_vmax,
        clicked=_clicked_values(session, inputs.sparse),
    )


def release(session: Session | None) -> None:
    """Delete the temporary download folder of the session's last run (if it made one).

    Called before a new run replaces the record and when the app drops a session; the
    rendered frames kept for the downloads are dropped too.
    """
    record = None if session is None else session.run
    if record is None:
        return
    record.frames = []
    if record.owns_out_dir and record.out_dir is not None:
        shutil.rmtree(record.out_dir, ignore_errors=True)
        record.owns_out_dir = False


# ----------------------------------------------------------------------------- summary
def _baseline_predictions(scene: Scene, record: RunRecord) -> dict[str, np.ndarray]:
    """Final depth of the run, the MDE and the classical baselines (all fast, no network)."""
    d0, s = scene.init_depth, record.sparse
    return {
        MSPN if record.use_mask else ABLATION: record.states[-1].depth,
        "MDE only": baselines.mde_only(d0, s),
        "LS scale + shift": baselines.least_squares_scale_shift(d0, s),
        "LS + IDW residuals": baselines.residual_interpolation(d0, s, "idw"),
    }


def _metrics_by_method(
    scene: Scene, record: RunRecord, predictions: dict[str, np.ndarray]
) -> dict[str, dict[str, dict[str, float]]]:
    result: dict[str, dict[str, dict[str, float]]] = {}
    for method, depth in predictions.items():
        regions = {"whole image": _frame_metrics(scene, depth)}
        if record.hole is not None:
            regions["hole"] = _frame_metrics(scene, depth, record.hole)
        result[method] = {name: m for name, m in regions.items() if m is not None}
    return result


def metrics_table(metrics: dict[str, dict[str, dict[str, float]]]) -> list[list[Any]]:
    """Rows under :data:`TABLE_HEADERS`: every method on the whole image, then the hole."""
    rows = []
    for region in ("whole image", "hole"):
        for method, regions in metrics.items():
            if region in regions:
                values = regions[region]
                rows.append([method, region, *(round(values[k], 4) for k in TABLE_METRICS)])
    return rows


def _iteration_figure(
    record: RunRecord, metrics: dict[str, dict[str, dict[str, float]]]
) -> go.Figure | None:
    if not record.history:
        return None
    references = {
        method: regions["whole image"]
        for method, regions in metrics.items()
        if not method.startswith("MSPN") and "whole image" in regions
    }
    return viz.iteration_metrics_figure(record.history, references, metric=viz.ITERATION_METRICS)


def run_note(record: RunRecord) -> str:
    """One line about a finished run: frames, time, and the measurements it used."""
    n_points = int(np.count_nonzero(record.sparse > 0))
    word = "point" if n_points == 1 else "points"
    text = f"{len(record.states)} frames in {record.seconds:.1f} s · {n_points} depth {word}"
    if record.clicked:
        shown = ", ".join(f"(x={x}, y={y}) S = {value:.3f} m" for x, y, value in record.clicked[:4])
        more = f" and {len(record.clicked) - 4} more" if len(record.clicked) > 4 else ""
        text += f" · clicked: {shown}{more}"
    return text + "."


def summarize(scene: Scene, record: RunRecord) -> RunSummary:
    """Metrics table and chart of a finished run (baselines only; no network runs)."""
    metrics = (
        _metrics_by_method(scene, record, _baseline_predictions(scene, record))
        if scene.gt is not None
        else {}
    )
    figure = _iteration_figure(record, metrics)
    return RunSummary(metrics_table(metrics), metrics, figure, record.seconds, run_note(record))


def add_ablation(pipeline: SDRPipeline, session: Session) -> RunSummary:
    """Run the other mask setting on the same inputs and add it to the run's metrics.

    A run with the mask gets "MSPN without mask (ablation)" (the paper's Fig. 10d); a run
    of the ablation gets MSPN. Done once per run, when the user asks for it; the
    downloaded metrics.json is rewritten when it exists.

    Raises:
        ValueError: no finished run, or a scene without ground truth (nothing to compare).
    """
    scene = _require_scene(session)
    record = session.run
    if record is None or record.summary is None:
        raise ValueError("Run the refinement to the end first; then compare with the ablation.")
    if scene.gt is None:
        raise ValueError("The comparison needs ground truth, which this scene lacks.")
    if record.summary.has_ablation:
        return record.summary
    other = pipeline.refine(
        scene.image,
        record.sparse,
        init_depth=scene.init_depth,
        use_mask=not record.use_mask,
        schedule=record.schedule,
    ).depth
    name = ABLATION if record.use_mask else MSPN
    metrics = {**record.summary.metrics, **_metrics_by_method(scene, record, {name: other})}
    record.summary = dataclasses.replace(
        record.summary,
        table=metrics_table(metrics),
        metrics=metrics,
        iteration_figure=_iteration_figure(record, metrics),
    )
    if record.extras is not None and record.out_dir is not None:
        report.write_metrics_json(record.out_dir, _report(scene, record))
    return record.summary


# ----------------------------------------------------------------------------- downloads
def _report(scene: Scene, record: RunRecord) -> dict[str, Any]:
    """The content of metrics.json."""
    return {
        "scene": scene.name,
        "size_hw": list(scene.shape),
        "initial_depth": scene.init_source,
        "n_points": int(np.count_nonzero(record.sparse > 0)),
        "clicked_points": [{"x": x, "y": y, "depth_m": v} for x, y, v in record.clicked],
        "hole_pixels": 0 if record.hole is None else int(record.hole.sum()),
        "use_mask": record.use_mask,
        "schedule": list(record.schedule),
        "seconds": record.seconds,
        "metrics": {} if record.summary is None else record.summary.metrics,
        "per_iteration": record.history,
        "per_iteration_hole": record.hole_history,
    }


def write_downloads(
    scene: Scene, record: RunRecord, frames: Sequence[np.ndarray], out_dir: str | Path
) -> list[Path]:
    """Write a run's downloads into ``out_dir`` with :func:`sdr_core.report.write_run_files`.

    Files (the command line writes the same): the animation (GIF, and MP4 when ffmpeg is
    available), the refined depth as a 16-bit PNG in millimetres, as .npy in metres and as
    a coloured preview with its scale, the point cloud (.ply) and the metrics (.json).

    Returns:
        The files written, in that order.
    """
    return report.write_run_files(
        out_dir,
        record.states[-1].depth,
        frames,
        _report(scene, record),
        image=scene.image,
        intrinsics=scene.intrinsics,
        depth_scale=record.depth_range,
        fps=ANIMATION_FPS,
    )


def run_extras(session: Session) -> RunExtras:
    """Downloads and point cloud of the finished run (made once, then reused).

    Raises:
        ValueError: no finished run.
    """
    scene = _require_scene(session)
    record = session.run
    if record is None or record.summary is None:
        raise ValueError("Run the refinement to the end first; then its downloads are ready.")
    if record.extras is None:
        if record.out_dir is None:
            record.out_dir, record.owns_out_dir = Path(tempfile.mkdtemp(prefix="mspn_run_")), True
        frames = record.frames or [
            render_frame(scene, record, i)[0] for i in range(len(record.states))
        ]
        files = write_downloads(scene, record, frames, record.out_dir)
        cloud = viz.point_cloud_figure(record.states[-1].depth, scene.image, scene.intrinsics)
        record.extras = RunExtras(cloud, files)
        record.frames = []  # written; no need to hold them in memory
    return record.extras


# ----------------------------------------------------------------------------- teaching view
@dataclass(frozen=True)
class Inspection:
    """The teaching view of one pixel at one iteration."""

    window: AttentionWindow
    image: np.ndarray  # the frame's depth with the window outlined, display size
    figure: go.Figure  # heatmaps: attention weights, mask, depth of the window
    text: str  # markdown


def _state_entering(record: RunRecord, index: int) -> tuple[np.ndarray, np.ndarray]:
    """(D_n, M_n) entering the iteration that produced frame ``index`` (>= 1)."""
    state, previous = record.states[index], record.states[index - 1]
    if state.layer == 2 and state.iteration == 1:  # layer 2 restarts from M0
        return previous.depth, record.states[0].mask
    return previous.depth, previous.mask


def inspect_view(
    scene: Scene, record: RunRecord, index: int, window: AttentionWindow | None = None
) -> np.ndarray:
    """The clickable teaching image: frame ``index``'s depth with the inspected window.

    The map is upscaled to display size (:func:`~sdr_core.demo.display_factor`) and its
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
    return viz.depth_with_colorbar(_upscale(image, display_factor(scene.shape)), vmin, vmax)


def inspect_pixel(
    pipeline: SDRPipeline, session: Session, index: int, x: int, y: int
) -> Inspection:
    """Attention weights and mask values of pixel (x, y) at frame ``index`` of the last run.

    Frame ``index`` shows the state *after* an iteration; the weights shown are the ones
    that produced it. Frame 0 (the initial state) shows the weights of layer 1, iteration 1.
    The guidance feature is computed once per run and cached in the session.
    """
    scene = _require_scene(session)
    record = session.run
    if record is None or not record.states:
        raise ValueError("Run the refinement first; then click a pixel to inspect it.")
    if len(record.states) < 2:
        raise ValueError(
            "The run stopped before its first iteration, so no attention was computed yet; "
            "run it again to inspect a pixel."
        )
    index = min(max(int(index), 0), len(record.states) - 1)
    height, width = scene.shape
    if not (0 <= x < width and 0 <= y < height):
        raise ValueError(f"pixel (x={x}, y={y}) is outside the {width}x{height} image")
    target = max(index, 1)
    state = record.states[target]
    if record.guidance is None:
        record.guidance = (
            guidance_feature(pipeline, scene.image, record.sparse, scene.init_depth)
            .float()
            .cpu()
            .numpy()
        )
    import torch

    guidance = torch.from_numpy(record.guidance).to(pipeline.device)
    window = attention_window(
        pipeline,
        scene.image,
        record.sparse,
        scene.init_depth,
        y,
        x,
        state.layer,
        state.iteration,
        use_mask=record.use_mask,
        before=_state_entering(record, target),
        guidance=guidance,
    )
    return Inspection(
        window=window,
        image=inspect_view(scene, record, index, window),
        figure=attention_figure(window, record.depth_range),
        text=inspection_text(window, state.iterations_in_layer, index == 0),
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


def run_duration_s(schedule: tuple[int, int], pixels: int, seconds_per_mpx_iteration: float) -> int:
    """A time budget for a run (e.g. ZeroGPU's ``duration``) from its iteration count."""
    iterations = sum(schedule) * 2 + 2  # the run, the ablation, the networks
    return int(min(300, 15 + iterations * seconds_per_mpx_iteration * pixels / 1e6))
