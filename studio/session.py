"""One user's state in the studio, and what changes it before a run: points and hole.

- :class:`Session`: the scene, the clicked and removed points, the hole mask, the last run
  (:class:`RunRecord`) and the frame on screen. The app keeps it in ``gr.State``; nothing
  here is global or shared between users.
- :func:`build_sparse`: the sparse depth S from the points widgets (random points, LiDAR
  lines, clicks), the clicks and the hole, with the point count and the eq. 13 plan.
- Clicks (:func:`toggle_point`, :func:`set_point_depth`), holes (:func:`set_hole`) and the
  clickable points view (:func:`points_preview`).

Every problem with the user's input raises ``ValueError`` with a message written for the
user; the page shows it as it is.
"""

from __future__ import annotations

import dataclasses
import math
import threading
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from sdr_core import methods, viz
from sdr_core import sparse as sparse_lib
from studio.prefetch import PrefetchSlot
from studio.scene import Scene, depth_scale

if TYPE_CHECKING:
    import plotly.graph_objects as go
    import torch

    from sdr_core.pipeline import RefineState, SDRPipeline

__all__ = [
    "MAX_LINES",
    "MAX_POINTS",
    "MIN_LINES",
    "SPARSE_MODES",
    "RunExtras",
    "RunRecord",
    "RunSummary",
    "Session",
    "SparseChoice",
    "SparseInputs",
    "build_sparse",
    "clear_points",
    "current_estimate",
    "default_mode",
    "display_factor",
    "editor_background",
    "new_session",
    "no_points_message",
    "points_preview",
    "require_scene",
    "set_centre_hole",
    "set_hole",
    "set_point_depth",
    "toggle_point",
    "upscale",
]

MAX_POINTS = 5000
MIN_LINES, MAX_LINES = 4, 64
MAX_DEPTH_M = 1000.0  # largest depth a user may type for a clicked point

SparseMode = Literal["random points", "LiDAR lines", "clicks only"]
SPARSE_MODES: tuple[str, ...] = ("random points", "LiDAR lines", "clicks only")

_DISPLAY_LONG_SIDE = 640  # the points view is upscaled (nearest) to about this size


# ----------------------------------------------------------------------------- data types
@dataclass
class Session:
    """One user's state between UI events (kept in ``gr.State``, never shared).

    Points are in processing-resolution pixels, ``(x, y)`` = (column, row).
    """

    scene: Scene | None = None
    clicks: dict[tuple[int, int], float | None] = field(default_factory=dict)  # None = GT
    removed: frozenset[tuple[int, int]] = frozenset()  # generated points the user removed
    hole: np.ndarray | None = None  # H x W bool, True = measurements dropped
    selected: tuple[int, int] | None = None  # last clicked point whose depth can be typed
    run: RunRecord | None = None
    inspected: tuple[int, int] | None = None  # (x, y) of the teaching view's pixel
    frame: int = 0  # the frame on screen: slider, Play and the teaching view all follow it
    # G and baselines of the plan on show, computed before Refine (one slot per user, shared
    # by this session's successive copies)
    prefetched: PrefetchSlot = field(default_factory=PrefetchSlot, repr=False, compare=False)


@dataclass(frozen=True)
class SparseChoice:
    """The sparse-depth widgets: how points are generated from the ground truth."""

    mode: str = "random points"  # one of SPARSE_MODES
    n_points: int = 100  # random points, 1 .. MAX_POINTS
    n_lines: int = 16  # LiDAR lines, MIN_LINES .. MAX_LINES
    seed: int = 0


@dataclass(frozen=True)
class SparseInputs:
    """The sparse depth S of a run and what the UI says about it."""

    sparse: np.ndarray  # H x W float32 metres, after removing points and the hole
    n_points: int  # measurements in `sparse`
    n_in_hole: int  # measurements the hole dropped
    schedule: tuple[int, int]  # iterations of (layer 1, layer 2), eq. 13
    schedule_points: int  # s of eq. 13 behind `schedule`: per line for LiDAR lines
    notes: tuple[str, ...] = ()


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
    schedule_points: int = 0  # s of eq. 13 behind `schedule` (per line for LiDAR lines)
    states: list[RefineState] = field(default_factory=list)  # the frames: every state shown
    # per frame, the state its iteration started from (itself for a layer's starting
    # state): what the teaching view explains; layer 2's first iteration starts from the
    # restart, which is not a frame
    sources: list[RefineState] = field(default_factory=list)
    frame_metrics: list[dict[str, float] | None] = field(default_factory=list)  # per state
    history: list[dict[str, float]] = field(default_factory=list)  # whole image, per frame
    hole_history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0  # wall time of the iterations
    summary: RunSummary | None = None
    stopped: bool = False  # Stop was pressed: the run yields nothing more
    # Guards ``states`` (and the lists beside it) and ``stopped``: the run is computed in a
    # thread of its own (studio.run.run_steps), which records each state under it and
    # notifies the page's stream; set ``stopped`` with studio.run.halt, under it too.
    progress: threading.Condition = field(
        default_factory=threading.Condition, repr=False, compare=False
    )
    # The page's stream of this run is open (between two frames or computing one); it
    # closes at its first step after ``stopped`` is set, see studio.run.release
    streaming: bool = False
    extras: RunExtras | None = None
    point_cloud: go.Figure | None = None  # made when its tab is open (studio.run.point_cloud)
    guidance: torch.Tensor | None = None  # 1 x C x H x W, G of eq. 3, cached by the teaching view
    out_dir: Path | None = None  # where the downloads are written
    owns_out_dir: bool = False  # a temporary folder of this run, removed by release()

    @property
    def total_frames(self) -> int:
        """Frames of the finished run: the initial state and every iteration."""
        return plan_frames(self.schedule)


def plan_frames(schedule: tuple[int, int]) -> int:
    """Frames a run of ``schedule`` shows: D0 with S, then one per iteration of each layer.

    Layer 2's starting state (the restart from M0) is not a frame of its own.
    """
    return 1 + sum(schedule)


@dataclass(frozen=True)
class RunSummary:
    """What the page shows as soon as a run ends (no network runs to build it)."""

    table: list[list[Any]]  # rows under studio.run.TABLE_HEADERS; empty without ground truth
    metrics: dict[str, dict[str, dict[str, float]]]  # method -> region -> metric -> value
    iteration_figure: go.Figure | None  # None without ground truth
    seconds: float  # wall time of the iterations
    note: str  # one line for the page: frames, time, the measurements used

    @property
    def has_ablation(self) -> bool:
        """Whether the table holds the other mask setting (:func:`studio.run.add_ablation`)."""
        labels = (methods.METHODS[name].label for name in ("mspn", "mspn_no_mask"))
        return all(label in self.metrics for label in labels)


@dataclass(frozen=True)
class RunExtras:
    """The slower products of a finished run, made once the page is complete."""

    files: list[Path]  # downloads


# ----------------------------------------------------------------------------- display
def display_factor(shape: Sequence[int]) -> int:
    """Integer upscaling of the clickable views so that points stay crisp."""
    return max(1, _DISPLAY_LONG_SIDE // max(int(shape[0]), int(shape[1])))


def upscale(image: np.ndarray, factor: int) -> np.ndarray:
    """``image`` (H x W or H x W x C) repeated ``factor`` times along both axes (nearest)."""
    if factor == 1:
        return image
    return np.repeat(np.repeat(image, factor, axis=0), factor, axis=1)


def new_session(scene: Scene) -> Session:
    """A fresh session for a newly loaded scene (points, hole and run cleared)."""
    return Session(scene=scene)


# ----------------------------------------------------------------------------- sparse depth
def require_scene(session: Session) -> Scene:
    """The session's scene; a ``ValueError`` telling the user to load one if there is none."""
    if session.scene is None:
        raise ValueError("Load an image first: pick an example or upload one.")
    return session.scene


def _generated(scene: Scene, choice: SparseChoice, notes: list[str]) -> np.ndarray:
    """Points drawn from the ground truth (random or LiDAR lines); zeros without GT."""
    empty = np.zeros(scene.shape, dtype=np.float32)
    if choice.mode not in SPARSE_MODES:
        raise ValueError(
            f"sparse mode must be one of {', '.join(SPARSE_MODES)}, got {choice.mode!r}"
        )
    if choice.mode == "clicks only":
        return empty
    if scene.gt is None:
        notes.append(
            f"{choice.mode.capitalize()} are sampled from the ground truth, which this scene "
            "lacks; only clicked points are used (click the image, then type each depth)."
        )
        return empty
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", sparse_lib.SparsityWarning)
        if choice.mode == "random points":
            n_points = min(max(int(choice.n_points), 1), MAX_POINTS)
            generated = sparse_lib.random_points(scene.gt, n_points, seed=int(choice.seed))
        else:
            n_lines = min(max(int(choice.n_lines), MIN_LINES), MAX_LINES)
            generated = sparse_lib.lidar_lines(scene.gt, n_lines, seed=int(choice.seed))
    notes += [str(w.message) for w in caught if issubclass(w.category, sparse_lib.SparsityWarning)]
    return generated


def _clicked(scene: Scene, session: Session) -> np.ndarray:
    points = list(session.clicks)
    values = [session.clicks[p] for p in points]
    return sparse_lib.from_clicks(points, scene.shape, gt_depth=scene.gt, values=values)


def _before_hole(session: Session, choice: SparseChoice, notes: list[str]) -> np.ndarray:
    scene = require_scene(session)
    depth = _generated(scene, choice, notes)
    for x, y in session.removed:
        depth[y, x] = 0.0
    clicked = _clicked(scene, session)
    return np.where(clicked > 0, clicked, depth).astype(np.float32)


def build_sparse(pipeline: SDRPipeline, session: Session, choice: SparseChoice) -> SparseInputs:
    """The sparse depth S for the current widgets, clicks and hole, with its eq. 13 plan.

    Generated points come from the ground truth; points the user removed are dropped and
    clicked points added (a click takes the ground-truth value where there is one, else its
    typed depth); finally every measurement inside the hole is dropped.
    """
    scene = require_scene(session)
    notes: list[str] = []
    before = _before_hole(session, choice, notes)
    sparse = before if session.hole is None else sparse_lib.apply_hole_mask(before, session.hole)
    n_points = sparse_lib.count_points(sparse)
    n_in_hole = sparse_lib.count_points(before) - n_points
    # LiDAR lines: eq. 13 counts the mean measurements per line (section 4.3)
    n_lines = min(max(int(choice.n_lines), MIN_LINES), MAX_LINES)
    lines = n_lines if choice.mode == "LiDAR lines" else None
    points = sparse_lib.schedule_points(sparse, lines)
    schedule = pipeline.schedule(*scene.shape, points)
    return SparseInputs(sparse, n_points, n_in_hole, schedule, points, tuple(notes))


def default_mode(scene: Scene, mode: str) -> str:
    """The points mode after loading ``scene``: clicks without ground truth.

    Random points and LiDAR lines are sampled from the ground truth, so a scene without it
    starts with "clicks only"; a scene with ground truth keeps the user's mode, except that
    "clicks only" left over from such a scene goes back to random points.
    """
    if scene.gt is None:
        return "clicks only"
    return "random points" if mode == "clicks only" else mode


def no_points_message(inputs: SparseInputs) -> str:
    """Why a run cannot start with ``inputs`` (which hold no measurement)."""
    if inputs.n_in_hole:
        return (
            f"The hole covers all {inputs.n_in_hole} depth points, so nothing is left to "
            "propagate. Make the hole smaller or add points outside it."
        )
    return (
        "There are no depth points to propagate. Choose random points or LiDAR lines "
        "(they need ground truth), or click on the image to add points."
    )


# ----------------------------------------------------------------------------- clicks
def current_estimate(session: Session, x: int, y: int) -> float:
    """The latest depth estimate at (x, y): the last run's final depth, else D0 (metres)."""
    scene = require_scene(session)
    run = session.run
    if run is not None and run.states:
        return float(run.states[-1].depth[y, x])
    return float(scene.init_depth[y, x])


def pick_radius(shape: Sequence[int]) -> int:
    """How close (px) a click must be to an existing point to remove it."""
    return max(2, round(max(int(shape[0]), int(shape[1])) / 100))


def toggle_point(session: Session, choice: SparseChoice, x: int, y: int) -> tuple[Session, str]:
    """A click at processing pixel (x, y): remove the nearest point there, or add one.

    A new point takes the ground-truth depth when the scene has it at that pixel; otherwise
    it starts at the current estimate and becomes the *selected* point whose depth the user
    can type (:func:`set_point_depth`).

    Returns:
        The updated session and a one-line message for the UI.
    """
    scene = require_scene(session)
    height, width = scene.shape
    if not (0 <= x < width and 0 <= y < height):
        raise ValueError(f"pixel (x={x}, y={y}) is outside the {width}x{height} image")
    existing = _before_hole(session, choice, [])
    ys, xs = np.nonzero(existing > 0)
    if ys.size:
        distance = np.hypot(xs - x, ys - y)
        nearest = int(np.argmin(distance))
        if distance[nearest] <= pick_radius(scene.shape):
            point = (int(xs[nearest]), int(ys[nearest]))
            clicks = dict(session.clicks)
            removed = session.removed
            if point in clicks:
                del clicks[point]
            else:
                removed = removed | {point}
            selected = None if session.selected == point else session.selected
            updated = dataclasses.replace(
                session, clicks=clicks, removed=removed, selected=selected
            )
            return updated, f"Removed the point at (x={point[0]}, y={point[1]})."
    clicks = dict(session.clicks)
    in_hole = session.hole is not None and bool(session.hole[y, x])
    suffix = " It lies inside the hole, so the run will drop it." if in_hole else ""
    if scene.gt is not None and scene.gt[y, x] > 0:
        clicks[(x, y)] = None
        updated = dataclasses.replace(session, clicks=clicks, removed=session.removed - {(x, y)})
        return updated, f"Added a point at (x={x}, y={y}): {scene.gt[y, x]:.3f} m from GT.{suffix}"
    value = current_estimate(session, x, y)
    clicks[(x, y)] = value
    updated = dataclasses.replace(session, clicks=clicks, selected=(x, y))
    where = "No ground truth at this pixel" if scene.gt is not None else "No ground truth"
    return updated, (
        f"Added a point at (x={x}, y={y}). {where}: it starts at the current estimate, "
        f"{value:.3f} m; type its measured depth below.{suffix}"
    )


def set_point_depth(session: Session, depth_m: float | None) -> Session:
    """Set the typed depth (metres) of the selected clicked point."""
    if session.selected is None or session.selected not in session.clicks:
        raise ValueError("Click on the image to add a point first; then type its depth.")
    if depth_m is None or not (math.isfinite(depth_m) and 0 < depth_m <= MAX_DEPTH_M):
        raise ValueError(f"A depth must be a number of metres in (0, {MAX_DEPTH_M:g}].")
    clicks = dict(session.clicks)
    clicks[session.selected] = float(depth_m)
    return dataclasses.replace(session, clicks=clicks)


def clear_points(session: Session) -> Session:
    """Forget clicked and removed points."""
    return dataclasses.replace(session, clicks={}, removed=frozenset(), selected=None)


# ----------------------------------------------------------------------------- holes
def set_hole(session: Session, hole: np.ndarray | None) -> Session:
    """Store a hole mask (None clears it)."""
    scene = require_scene(session)
    if hole is not None:
        hole = np.asarray(hole, dtype=bool)
        if hole.shape != scene.shape:
            raise ValueError(
                f"the hole mask is {hole.shape[1]}x{hole.shape[0]} but the image is "
                f"{scene.shape[1]}x{scene.shape[0]}"
            )
        if not hole.any():
            hole = None
    return dataclasses.replace(session, hole=hole)


def set_centre_hole(session: Session) -> Session:
    """Store the paper's hole-filling region (Table 4) as the hole."""
    scene = require_scene(session)
    return set_hole(session, sparse_lib.centre_hole_mask(*scene.shape))


# ----------------------------------------------------------------------------- previews
def points_preview(session: Session, inputs: SparseInputs) -> np.ndarray:
    """The clickable view: image, hole (tinted) and points (coloured by depth), upscaled.

    Returns:
        (H f) x (W f) x 3 uint8, f = :func:`display_factor`.
    """
    scene = require_scene(session)
    factor = display_factor(scene.shape)
    canvas = scene.image
    if session.hole is not None:
        canvas = viz.draw_hole(canvas, session.hole, alpha=0.45)
    vmin, vmax = depth_scale(scene)
    radius = 1 if factor > 1 else 2
    canvas = viz.draw_points(canvas, inputs.sparse, radius=radius, vmin=vmin, vmax=vmax)
    return upscale(canvas, factor)


def editor_background(scene: Scene) -> np.ndarray:
    """Background of the brush editor: the image at display size."""
    return upscale(scene.image, display_factor(scene.shape))
