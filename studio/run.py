"""A refinement in the studio: streamed frames, the metrics table, the downloads.

- :func:`run_steps` streams one :class:`RunUpdate` per frame of the run (the initial state
  D0 with the measurements and M0, then every iteration): depth, mask and, with ground
  truth, error map side by side, each with its colour bar, titled
  "layer 1 · iteration 7 / 28" (:mod:`sdr_core.viz.run_frames` decides which states are
  frames, their titles and scales, and draws them, as for the command line). It records
  every state in the session, says when the closing work starts and ends with a
  :class:`~studio.session.RunSummary`: the metrics table (MSPN vs the baselines of
  :mod:`sdr_core.methods`, the classical propagation methods included, hole region
  separately) and the metric-per-iteration chart with every baseline as a reference line.
  That closing work runs no network; its largest part is the edge-aware method's sparse
  solve (about 0.4 s at 228 x 304 and 2-3 s at 480 x 640 on a 2-core CPU, BENCHMARKS.md).
- What is slower waits until asked: :func:`run_extras` writes the downloads
  (:mod:`sdr_core.report`, the files the command line writes), :func:`point_cloud` builds
  the point cloud figure (only for a page that shows it), :func:`add_ablation` runs the
  other mask setting (Fig. 10d) for the table.
- :func:`show_frame` puts any stored frame on screen and remembers which one is shown
  (``Session.frame``): scrubbing, playback and the teaching view follow that one index.

These functions never touch globals, so one read-only pipeline can serve many users.
"""

from __future__ import annotations

import ctypes
import dataclasses
import math
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sdr_core import methods, report, viz
from sdr_core.metrics import compute_metrics
from studio import prefetch
from studio.prefetch import Prefetch
from studio.scene import Scene
from studio.session import (
    RunExtras,
    RunRecord,
    RunSummary,
    Session,
    SparseInputs,
    no_points_message,
    require_scene,
)
from studio.worker import POLL_S, Background, RunWorker

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from sdr_core.pipeline import RefineState, SDRPipeline

__all__ = [
    "ANIMATION_FPS",
    "TABLE_HEADERS",
    "RunUpdate",
    "add_ablation",
    "frame_at",
    "frame_caption",
    "halt",
    "metrics_table",
    "recorded_frames",
    "forget",
    "release",
    "return_freed_memory",
    "render_frame",
    "run_duration_s",
    "point_cloud",
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
FRAME_INTERVAL_S = 0.2  # the least time between two streamed frames (5 a second)
CLOSING_NOTE = "⏳ Last frame reached: computing the metrics table and chart…"


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
def frame_caption(record: RunRecord, index: int) -> str:
    """The caption of stored frame ``index``, with its metrics when there is ground truth.

    The frame's title (:func:`sdr_core.viz.frame_title`), then RMSE, REL and delta1.
    """
    text = viz.frame_title(record.states[index])
    metrics = record.frame_metrics[index] if index < len(record.frame_metrics) else None
    if metrics is not None:
        text += f" — RMSE {metrics['rmse']:.3f} m, REL {metrics['rel']:.3f}, δ1 {metrics['d1']:.3f}"
    return text


def _scales(record: RunRecord) -> viz.RunScales:
    """The run's colour scales, as :func:`_new_record` stored them."""
    return viz.RunScales(record.depth_range, record.error_vmax)


def render_frame(scene: Scene, record: RunRecord, index: int) -> tuple[np.ndarray, str]:
    """Depth | mask | (with GT) error of a stored frame, with colour bars; and its caption.

    Drawn on demand by :func:`sdr_core.viz.render_frame`, as the command line draws its
    frames: all frames of a run share one depth scale and one error scale.

    Raises:
        ValueError: no stored frame ``index``.
    """
    image = viz.render_frame(
        record.states, index, _scales(record), scene.gt, record.hole, record.use_mask
    )
    return image, frame_caption(record, index)


def frame_at(session: Session, index: int) -> tuple[np.ndarray, str]:
    """Re-render frame ``index`` (clamped to the stored frames) of the last run."""
    scene = require_scene(session)
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


def _record_state(scene: Scene, record: RunRecord, state: RefineState) -> dict[str, float] | None:
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
    min_interval_s: float | None = None,
    prefetched: Prefetch | None = None,
) -> Iterator[RunUpdate]:
    """Refine the session's scene and yield its states as ready-to-show frames.

    The first update is the initial state (D0 with the measurements, mask M0), the others
    the iterations of both layers; layer 2's starting state (the restart from M0) has the
    depth of the frame before it and is kept for the teaching view, not shown. The states
    are computed and recorded by a thread of their own, ahead of the stream; a frame is
    rendered and yielded only when ``min_interval_s`` has passed since the last one (the
    newest then; always the first and the last): a 1-point run of 177 iterations streams
    about 5 frames a second instead of spending its time drawing frames nobody can see;
    each frame can be scrubbed to afterwards (rendered on demand). The run is
    recorded in ``session.run`` as it goes (the caller owns ``session``), and
    ``session.frame`` follows the frame last yielded. The last frame's update carries a
    progress ``note`` (:data:`CLOSING_NOTE`); one more update then carries the
    :class:`~studio.session.RunSummary`. Downloads, point cloud and the ablation are left
    to :func:`run_extras` and :func:`add_ablation`.

    Args:
        pipeline: the shared, read-only pipeline.
        session: the user's session; its ``run`` is replaced.
        inputs: sparse depth from :func:`studio.session.build_sparse`.
        use_mask: False runs the paper's no-mask ablation (mask fixed to 1).
        out_dir: where the downloads go; a new temporary folder by default.
        min_interval_s: the least time between two streamed frames; 0 streams every frame,
            None takes :data:`FRAME_INTERVAL_S`.
        prefetched: G and the baselines already computed (or under way) for exactly these
            inputs (:meth:`studio.prefetch.PrefetchSlot.take`); computed here when None.

    Raises:
        ValueError: no scene, or no measurement (with the reason, e.g. the hole covers all).
    """
    scene = require_scene(session)
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
    interval = FRAME_INTERVAL_S if min_interval_s is None else min_interval_s
    worker = _start_worker(pipeline, scene, record, inputs, use_mask, prefetched)
    try:
        yield from _stream(scene, record, session, worker, interval)
    finally:
        worker.abandon()  # closed, stopped or done: nothing is computed after this


def halt(record: RunRecord) -> int:
    """Stop a run: no state is recorded once this returns. Returns how many frames it has."""
    with record.progress:
        record.stopped = True
        record.progress.notify_all()
        return len(record.states)


def _stream(
    scene: Scene, record: RunRecord, session: Session, worker: RunWorker, interval: float
) -> Iterator[RunUpdate]:
    """The page's side of a run: frames as the worker records them, then the summary.

    Each time the page asks, the newest recorded frame is drawn once ``interval`` has
    passed since the last one (every frame in order when ``interval`` is 0); the last frame
    is always drawn, with :data:`CLOSING_NOTE`, and the summary follows when it is ready.
    """
    shown, shown_at, update = -1, -math.inf, None
    last = record.total_frames - 1
    while True:
        index = _next_frame(record, worker, shown, shown_at, interval)
        if index is None:
            break
        shown, shown_at = index, time.perf_counter()
        update = _frame_update(scene, record, index, record.frame_metrics[index], session)
        yield dataclasses.replace(update, note=CLOSING_NOTE) if index == last else update
    if record.stopped or worker.summary is None or update is None:
        return  # stopped: the page already shows the last recorded frame
    record.summary = worker.summary
    yield dataclasses.replace(update, summary=record.summary, note=record.summary.note)


def _next_frame(
    record: RunRecord, worker: RunWorker, shown: int, shown_at: float, interval: float
) -> int | None:
    """Wait for the next frame to draw; None once the run is stopped or every frame is drawn.

    Raises:
        Exception: what the worker's computation raised.
    """
    with record.progress:
        worker.asked()
        while not record.stopped:
            if worker.error is not None:
                raise worker.error
            newest = len(record.states) - 1
            if newest > shown:
                if interval <= 0:
                    return shown + 1
                wait_s = interval - (time.perf_counter() - shown_at)
                if wait_s <= 0 or worker.done or newest == record.total_frames - 1:
                    return newest
                record.progress.wait(wait_s)  # a newer frame may be recorded meanwhile
            elif worker.done:
                return None
            else:
                record.progress.wait(POLL_S)
        return None


def _start_worker(
    pipeline: SDRPipeline,
    scene: Scene,
    record: RunRecord,
    inputs: SparseInputs,
    use_mask: bool,
    prefetched: Prefetch | None = None,
) -> RunWorker:
    """Compute the run in a thread of its own (:mod:`studio.worker`), recording every frame.

    The metrics table's baselines need only the run's inputs: they are computed meanwhile,
    at a lower priority, unless ``prefetched`` has them (or G) already.
    """
    baselines: Callable[[], dict[str, np.ndarray]] | None = None
    if prefetched is not None and prefetched.has_baselines:
        baselines = prefetched.baselines
    elif scene.gt is not None:
        baselines = Background(lambda: baseline_predictions(pipeline, scene, record)).result
    steps = pipeline.refine_steps(
        scene.image,
        inputs.sparse,
        init_depth=scene.init_depth,
        use_mask=use_mask,
        schedule=inputs.schedule,  # the plan shown to the user (LiDAR lines: per line, eq. 13)
        guidance=prefetched.guidance
        if prefetched is not None and prefetched.has_guidance
        else None,
    )

    def finish(seconds: float) -> RunSummary:
        record.seconds = seconds
        return summarize(pipeline, scene, record, None if baselines is None else baselines())

    return RunWorker(record, steps, _Recorder(scene, record), finish)


class _Recorder:
    """Keeps each frame of a run with the state its iteration started from."""

    def __init__(self, scene: Scene, record: RunRecord) -> None:
        self.scene, self.record = scene, record
        self.source: RefineState | None = None  # the state the next iteration starts from

    def __call__(self, state: RefineState) -> None:
        if viz.is_frame(state):
            _record(self.scene, self.record, state, self.source or state)
        self.source = state  # layer 2's restart is no frame: its first iteration's source


def _record(
    scene: Scene, record: RunRecord, state: RefineState, source: RefineState
) -> dict[str, float] | None:
    """Keep ``state`` (computed from ``source``) and its metrics in the run's record."""
    record.sources.append(source)
    return _record_state(scene, record, state)


def _frame_update(
    scene: Scene,
    record: RunRecord,
    index: int,
    metrics: dict[str, float] | None,
    session: Session,
) -> RunUpdate:
    """Render recorded frame ``index`` and make it the frame on screen."""
    image, caption = render_frame(scene, record, index)
    session.frame = index
    return RunUpdate(index, record.total_frames, image, caption, metrics)


def _clicked_values(session: Session, sparse: np.ndarray) -> tuple[tuple[int, int, float], ...]:
    """(x, y, S) of the clicked points that the run measures (typed or ground truth)."""
    return tuple(
        (x, y, float(sparse[y, x])) for (x, y) in sorted(session.clicks) if sparse[y, x] > 0
    )


def _new_record(scene: Scene, session: Session, inputs: SparseInputs, use_mask: bool) -> RunRecord:
    """An empty record of a run on ``inputs``, with the run's colour scales (from D0, GT)."""
    scales = viz.run_scales(scene.init_depth, scene.gt)
    hole = session.hole
    return RunRecord(
        sparse=inputs.sparse,
        hole=None if hole is None or not hole.any() else hole.copy(),
        use_mask=use_mask,
        schedule=inputs.schedule,
        depth_range=scales.depth_range,
        error_vmax=scales.error_vmax,
        clicked=_clicked_values(session, inputs.sparse),
        schedule_points=inputs.schedule_points,
    )


def release(session: Session | None) -> None:
    """Delete the temporary download folder of the session's last run (if it made one).

    Called before a new run replaces the record, when another scene is loaded or the image
    cleared, and when the app drops a session; a run still going on is stopped: it yields
    nothing more, so its frames and results never show under another scene.
    """
    record = None if session is None else session.run
    if record is None:
        return
    if record.summary is None:  # still running: it belongs to a scene that is leaving
        halt(record)
        _wait_until_closed(record)
    if record.owns_out_dir and record.out_dir is not None:
        shutil.rmtree(record.out_dir, ignore_errors=True)
        record.owns_out_dir = False


STREAM_CLOSE_WAIT_S = 1.0  # at most this long for a stopped run's stream to close


def _wait_until_closed(record: RunRecord) -> None:
    """Wait (briefly) until the page's stream of a stopped run has closed.

    A frame the stream yielded just before the stop may still be on its way to the page;
    the stream closes only when the page asks for the next one, so once it has closed that
    frame went out, and what the caller shows next arrives after it, not under it.
    """
    deadline = time.monotonic() + STREAM_CLOSE_WAIT_S
    while record.streaming and time.monotonic() < deadline:
        time.sleep(0.005)


def forget(session: Session | None) -> None:
    """A session the server drops (closed tab, expired): release it, give the memory back.

    Dropping the session frees its run's states, but the C heap keeps the freed pages for
    later allocations; without :func:`return_freed_memory` a server that saw 30 visitors
    stays about 700 MiB larger though none of them is left (BENCHMARKS.md).
    """
    release(session)
    if session is not None:  # the server may hold the object a moment longer: empty it now
        session.prefetched.clear()
        session.run, session.scene, session.inspected = None, None, None
    return_freed_memory()


def return_freed_memory() -> None:
    """Hand freed heap pages back to the system (glibc's ``malloc_trim``; a no-op elsewhere)."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc (macOS, musl, Windows)
        return
    libc.malloc_trim(0)


# ----------------------------------------------------------------------------- summary
def _method_inputs(scene: Scene, record: RunRecord) -> methods.MethodInputs:
    """The run's inputs as every method of the table takes them (the same D0 and S)."""
    return methods.MethodInputs(
        scene.image, record.sparse, scene.init_depth, record.schedule_points
    )


def _run_method(record: RunRecord) -> str:
    """The method key of the run itself: MSPN, or its no-mask ablation."""
    return "mspn" if record.use_mask else "mspn_no_mask"


def baseline_predictions(
    pipeline: SDRPipeline, scene: Scene, record: RunRecord
) -> dict[str, np.ndarray]:
    """Every baseline of the method table on the run's inputs (no network runs)."""
    return prefetch.baseline_predictions(pipeline, scene, record.sparse, record.schedule_points)


def _metrics_by_method(
    scene: Scene, record: RunRecord, predictions: dict[str, np.ndarray]
) -> dict[str, dict[str, dict[str, float]]]:
    """Metrics by the method's label (the table's row name), then region."""
    result: dict[str, dict[str, dict[str, float]]] = {}
    for method, depth in predictions.items():
        regions = {"whole image": _frame_metrics(scene, depth)}
        if record.hole is not None:
            regions["hole"] = _frame_metrics(scene, depth, record.hole)
        label = methods.METHODS[method].label
        result[label] = {name: m for name, m in regions.items() if m is not None}
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
    baselines = {methods.METHODS[name].label for name in methods.BASELINES}
    references = {
        method: regions["whole image"]
        for method, regions in metrics.items()
        if method in baselines and "whole image" in regions
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


def summarize(
    pipeline: SDRPipeline,
    scene: Scene,
    record: RunRecord,
    baselines: dict[str, np.ndarray] | None = None,
) -> RunSummary:
    """Metrics table and chart of a finished run (baselines only; no network runs).

    ``baselines`` are :func:`baseline_predictions` when already computed (the run's worker
    computes them while the MSPN runs); computed here otherwise.
    """
    metrics = {}
    if scene.gt is not None:
        if baselines is None:
            baselines = baseline_predictions(pipeline, scene, record)
        predictions = {_run_method(record): record.states[-1].depth, **baselines}
        metrics = _metrics_by_method(scene, record, predictions)
    figure = _iteration_figure(record, metrics)
    note = " ".join(filter(None, [run_note(record), verdict_note(metrics, _run_method(record))]))
    return RunSummary(metrics_table(metrics), metrics, figure, record.seconds, note)


def verdict_note(metrics: dict[str, dict[str, dict[str, float]]], method: str) -> str:
    """One sentence on how the run did against D0 and the best classical method (RMSE).

    Said plainly when the refinement made D0 worse: that is what a user inspecting a failure
    case needs to see first. Empty without ground truth.
    """
    label = methods.METHODS[method].label
    whole = {name: regions["whole image"]["rmse"] for name, regions in metrics.items()
             if "whole image" in regions}  # fmt: skip
    d0 = whole.get(methods.METHODS["mde"].label)
    if label not in whole or d0 is None:
        return ""
    ours = whole[label]
    if ours > d0:
        text = f"{label} is worse than D0 here: {ours:.3f} vs {d0:.3f} m RMSE."
    else:
        text = f"{label} improves on D0: {d0:.3f} → {ours:.3f} m RMSE."
    classical = {methods.METHODS[name].label for name in methods.CLASSICAL}
    rivals = {name: value for name, value in whole.items() if name in classical}
    if rivals:
        best = min(rivals, key=rivals.__getitem__)
        relation = "behind" if rivals[best] < ours else "ahead of"
        text += f" It is {relation} the best classical method, {best} ({rivals[best]:.3f} m)."
    return text


def add_ablation(pipeline: SDRPipeline, session: Session) -> RunSummary:
    """Run the other mask setting on the same inputs and add it to the run's metrics.

    A run with the mask gets MSPN without the mask (the paper's Fig. 10d); a run of the
    ablation gets MSPN. Done once per run, when the user asks for it; the downloaded
    metrics.json is rewritten when it exists.

    Raises:
        ValueError: no finished run, or a scene without ground truth (nothing to compare).
    """
    scene = require_scene(session)
    record = session.run
    if record is None or record.summary is None:
        raise ValueError("Run the refinement to the end first; then compare with the ablation.")
    if scene.gt is None:
        raise ValueError("The comparison needs ground truth, which this scene lacks.")
    if record.summary.has_ablation:
        return record.summary
    other = "mspn_no_mask" if record.use_mask else "mspn"
    prediction = methods.predict([other], pipeline, _method_inputs(scene, record))
    metrics = {**record.summary.metrics, **_metrics_by_method(scene, record, prediction)}
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


def _finished_run(session: Session, product: str) -> tuple[Scene, RunRecord]:
    """The session's scene and finished run, or a ValueError saying ``product`` must wait."""
    scene = require_scene(session)
    record = session.run
    if record is None or record.summary is None:
        raise ValueError(f"Run the refinement to the end first; then its {product} will be ready.")
    return scene, record


def run_extras(session: Session) -> RunExtras:
    """Downloads of the finished run (made once, then reused).

    Raises:
        ValueError: no finished run.
    """
    scene, record = _finished_run(session, "downloads")
    if record.extras is None:
        if record.out_dir is None:
            record.out_dir, record.owns_out_dir = Path(tempfile.mkdtemp(prefix="mspn_run_")), True
        frames = viz.render_frames(
            record.states, _scales(record), scene.gt, record.hole, record.use_mask
        )
        record.extras = RunExtras(write_downloads(scene, record, frames, record.out_dir))
    return record.extras


def point_cloud(session: Session) -> go.Figure:
    """The finished run's refined depth as a point cloud figure (made once, then reused).

    Made only for a page that shows it: about 60,000 coloured points are a few MB of
    plotly JSON that a browser keeps; sent after every run to a page that never opens the
    point cloud, they made each later run slower (BENCHMARKS.md, issue 22).

    Raises:
        ValueError: no finished run.
    """
    scene, record = _finished_run(session, "point cloud")
    if record.point_cloud is None:
        depth = record.states[-1].depth
        record.point_cloud = viz.point_cloud_figure(depth, scene.image, scene.intrinsics)
    return record.point_cloud


def run_duration_s(schedule: tuple[int, int], pixels: int, seconds_per_mpx_iteration: float) -> int:
    """A time budget for a run (e.g. ZeroGPU's ``duration``) from its iteration count."""
    iterations = sum(schedule) * 2 + 2  # the run, the ablation, the networks
    return int(min(300, 15 + iterations * seconds_per_mpx_iteration * pixels / 1e6))
