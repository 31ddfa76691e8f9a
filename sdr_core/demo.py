"""Everything the interactive demo does that can be tested without a browser: inputs.

The Gradio app (``app.py``) is a thin layer over this module and :mod:`sdr_core.demo_run`:
each UI action converts widget values, calls one function here and formats the result.
This module covers the inputs side:

- :class:`Scene`: an image at processing resolution with optional ground truth, the initial
  depth D0 and the camera; :func:`load_scene` reads it from files with the project's own
  readers (16-bit PNG, KITTI, .npy, NYUv2 .h5, ...), :func:`load_example` from the gallery.
- Initial-depth sources: the bundled MDE, a user's file, or an optional estimator loaded once
  at start-up (:func:`load_optional_estimators`, Depth Anything V2) and offered only when it
  loaded (:func:`init_sources`).
- :class:`Session`: one user's state (scene, clicked / removed points, hole mask, last run).
  The app keeps it in ``gr.State``; nothing here is global or shared between users.
- :func:`build_sparse`: the sparse depth S from the UI choices (random points, LiDAR lines,
  clicks, hole), with the point count and the eq. 13 iteration plan.
- Click handling (:func:`toggle_point`, :func:`set_point_depth`), hole masks from the brush
  editor (:func:`hole_from_layers`) and the points preview (:func:`points_preview`).

Every problem with the user's input raises ``ValueError`` with a message written for the
user; the app shows it as it is.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import tempfile
import threading
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from PIL import Image

from . import sparse as sparse_lib
from . import viz
from .data import io
from .mde.from_file import StaticDepthEstimator
from .validation import as_depth_map

if TYPE_CHECKING:
    import torch

    from .demo_run import RunRecord
    from .mde import DepthEstimator
    from .pipeline import SDRPipeline

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_LONG_SIDE_CPU",
    "DEFAULT_LONG_SIDE_GPU",
    "INIT_BUNDLED",
    "INIT_DEPTH_ANYTHING",
    "INIT_SIMULATED",
    "INIT_UPLOADED",
    "MAX_LINES",
    "MAX_LONG_SIDE",
    "MAX_POINTS",
    "MIN_LINES",
    "MIN_LONG_SIDE",
    "UNIT_CHOICES",
    "EstimatorLoader",
    "Example",
    "Scene",
    "Session",
    "SparseChoice",
    "SparseInputs",
    "build_sparse",
    "current_estimate",
    "default_init_source",
    "default_mode",
    "display_factor",
    "hole_from_layers",
    "init_sources",
    "load_example",
    "load_examples",
    "load_optional_estimators",
    "load_scene",
    "pick_estimator",
    "plan_text",
    "points_from_slider",
    "points_preview",
    "processing_size",
    "scene_text",
    "set_point_depth",
    "slider_from_points",
    "to_processing",
    "toggle_point",
    "unit_choice",
    "valid_init_source",
    "warning_notes",
]

DEFAULT_LONG_SIDE_CPU = 304  # 228 x 304 for a 4:3 image, the paper's NYUv2 crop
DEFAULT_LONG_SIDE_GPU = 640
MIN_LONG_SIDE = 64
MAX_LONG_SIDE = 1024  # keeps one refinement and the stored frames within a few GB
MAX_POINTS = 5000
MIN_LINES, MAX_LINES = 4, 64
MAX_DEPTH_M = 1000.0  # largest depth a user may type for a clicked point

#: Units radio of the UI -> ``units`` of :func:`sdr_core.data.io.read_depth` (None = by format).
UNIT_CHOICES: dict[str, io.DepthUnits | None] = {
    "auto (by file type)": None,
    "mm (16-bit PNG)": "mm",
    "KITTI (16-bit PNG / 256)": "kitti",
    "metres (.npy, NYUv2 .h5)": "m",
}

# Choices of the initial depth D0 in the UI; optional estimators sit between these two.
INIT_BUNDLED = "bundled MDE"
INIT_UPLOADED = "uploaded initial depth"
INIT_DEPTH_ANYTHING = "Depth Anything V2"  # offered only when it could be loaded
# D0 simulated from the ground truth (sdr_core.data.mde_errors presets): the paper's Fig. 10b
# question, does the refinement help a better or a worse depth estimator? Scenes with GT only.
INIT_SIMULATED: dict[str, str] = {
    "good metric MDE (simulated from ground truth)": "metric",
    "poor MDE (simulated from ground truth)": "harsh",
}
SIMULATION_SEED = 0  # one fixed draw per scene, so a class sees the same D0 every time

SparseMode = Literal["random points", "LiDAR lines", "clicks only"]
SPARSE_MODES: tuple[str, ...] = ("random points", "LiDAR lines", "clicks only")

_DISPLAY_LONG_SIDE = 640  # the points view is upscaled (nearest) to about this size


# ----------------------------------------------------------------------------- data types
@dataclass(frozen=True)
class Example:
    """One scene of the examples gallery."""

    name: str
    title: str
    description: str
    image: Path
    depth: Path | None
    intrinsics: tuple[float, float, float, float] | None  # (fx, fy, cx, cy) px at file size
    units: io.DepthUnits | None = None  # of the depth file; None = by file type


@dataclass(frozen=True)
class Scene:
    """The inputs of one refinement at processing resolution.

    Attributes:
        name: short name shown in the UI and written to metrics.json.
        image: H x W x 3 uint8 RGB.
        gt: H x W float32 metres (0 = missing) or None when no ground truth was given.
        init_depth: H x W float32 metres, dense D0 (bundled MDE or the user's file).
        init_source: where D0 came from, in words.
        intrinsics: (fx, fy, cx, cy) in pixels at H x W.
        original_size: (height, width) of the image file.
        notes: remarks for the user (ignored ground truth, assumed camera, ...).
    """

    name: str
    image: np.ndarray
    gt: np.ndarray | None
    init_depth: np.ndarray
    init_source: str
    intrinsics: tuple[float, float, float, float]
    original_size: tuple[int, int]
    notes: tuple[str, ...] = ()

    @property
    def shape(self) -> tuple[int, int]:
        """(H, W) at processing resolution."""
        return self.image.shape[0], self.image.shape[1]


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
    notes: tuple[str, ...] = ()


# ----------------------------------------------------------------------------- sizes
def processing_size(height: int, width: int, long_side: int, window: int = 13) -> tuple[int, int]:
    """(h, w) with the long side at most ``long_side`` and the aspect ratio kept.

    Images already within ``long_side`` keep their size (never upscaled).

    Raises:
        ValueError: ``long_side`` outside [MIN_LONG_SIDE, MAX_LONG_SIDE], or the short side
            would fall below the MSPN window.
    """
    if not MIN_LONG_SIDE <= long_side <= MAX_LONG_SIDE:
        raise ValueError(
            f"processing resolution must be between {MIN_LONG_SIDE} and {MAX_LONG_SIDE} "
            f"pixels on the long side, got {long_side}"
        )
    if min(height, width) < window:
        raise ValueError(
            f"the image is {width}x{height} pixels, smaller than the {window}x{window} MSPN "
            f"window; images are never upscaled, so use an image at least {window} pixels "
            "on each side"
        )
    scale = min(1.0, long_side / max(height, width))
    h, w = max(1, round(height * scale)), max(1, round(width * scale))
    if min(h, w) < window:
        raise ValueError(
            f"the image ({width}x{height} pixels) would be {w}x{h} at this resolution, "
            f"narrower than the {window}x{window} MSPN window; use a less elongated image or "
            "a larger processing resolution"
        )
    return h, w


def display_factor(shape: Sequence[int]) -> int:
    """Integer upscaling of the clickable views so that points stay crisp."""
    return max(1, _DISPLAY_LONG_SIDE // max(int(shape[0]), int(shape[1])))


def to_processing(index: Sequence[float], factor: int, shape: Sequence[int]) -> tuple[int, int]:
    """Map a click ``(x, y)`` on a view upscaled by ``factor`` to a processing pixel.

    Gradio's ``SelectData.index`` is in pixels of the image it displays, i.e. the
    upscaled view; this undoes the upscaling and clamps to the image.
    """
    if len(index) != 2:
        raise ValueError(f"a click position must be (x, y), got {index!r}")
    x, y = (int(math.floor(float(v) / factor)) for v in index)
    height, width = int(shape[0]), int(shape[1])
    return min(max(x, 0), width - 1), min(max(y, 0), height - 1)


def _upscale(image: np.ndarray, factor: int) -> np.ndarray:
    if factor == 1:
        return image
    return np.repeat(np.repeat(image, factor, axis=0), factor, axis=1)


def points_from_slider(value: float) -> int:
    """The log-scale points slider (log10 N, 0 .. log10 5000) -> N in [1, MAX_POINTS]."""
    return int(min(max(round(10.0 ** float(value)), 1), MAX_POINTS))


def slider_from_points(n_points: int) -> float:
    """Inverse of :func:`points_from_slider`, rounded to the slider's step (0.01)."""
    n_points = min(max(int(n_points), 1), MAX_POINTS)
    return round(math.log10(n_points), 2)


# ----------------------------------------------------------------------------- loading
def _read_gt(
    image_path: Path, depth_path: Path | None, image_shape: tuple[int, int], units: Any
) -> tuple[np.ndarray | None, list[str]]:
    """Ground truth at file resolution, or None with a note saying why it was ignored."""
    if depth_path is None:
        return None, []
    try:
        result = io.read_depth(depth_path, units=units)
    except ValueError as error:
        return None, [f"Ground truth ignored: {error}"]
    notes = []
    if result.depth.shape != image_shape:
        (h, w), (dh, dw) = image_shape, result.depth.shape
        return None, [
            f"Ground truth ignored: {image_path.name} is {w}x{h} pixels but "
            f"{depth_path.name} is {dw}x{dh}; an image and its depth map must be the same size."
        ]
    if not np.any(result.depth > 0):
        return None, [
            f"Ground truth ignored: {depth_path.name} has no valid depth (every value is 0, "
            "NaN, negative or out of range)."
        ]
    if result.n_invalid:
        notes.append(f"{depth_path.name}: {result.n_invalid} invalid values treated as missing.")
    return result.depth, notes


def _read_init_depth(path: Path, shape: tuple[int, int], size: tuple[int, int]) -> np.ndarray:
    """The user's initial depth ("bring your own MDE"), dense, at processing size."""
    depth = io.read_depth(path).depth
    if depth.shape != shape:
        raise ValueError(
            f"{path.name} is {depth.shape[1]}x{depth.shape[0]} pixels but the image is "
            f"{shape[1]}x{shape[0]}; the initial depth must have the image's size"
        )
    if not np.any(depth > 0):
        raise ValueError(f"{path.name} has no valid depth value to start from")
    estimator = StaticDepthEstimator(io.resize_depth_nearest(depth, size))
    return estimator.depth.copy()


def _simulated_init_depth(gt: np.ndarray, quality: str) -> np.ndarray:
    """D0 = the ground truth with simulated MDE errors of one quality preset (Fig. 10b)."""
    from .data.mde_errors import simulate_init_depth

    return simulate_init_depth(gt, quality, SIMULATION_SEED)


def _bundled_init_depth(pipeline: SDRPipeline, image: np.ndarray) -> tuple[np.ndarray, str]:
    name = getattr(pipeline.mde, "name", "bundled")
    return pipeline.estimate_depth(image), f"bundled MDE ({name})"


def _estimated_init_depth(
    pipeline: SDRPipeline, image: np.ndarray, estimator: DepthEstimator | None
) -> tuple[np.ndarray, str, list[str]]:
    """D0 from ``estimator`` (default the pipeline's MDE), its source in words, and notes.

    An optional estimator that fails (out of memory, a broken model) or returns an unusable
    map must not cost the user the scene: the bundled MDE stands in, and a note says so.
    """
    if estimator is None:
        return *_bundled_init_depth(pipeline, image), []
    name = getattr(estimator, "name", type(estimator).__name__)
    try:
        depth = as_depth_map(estimator.estimate(image), f"{name} depth")
        if depth.shape != image.shape[:2] or not (depth > 0).all():
            raise ValueError("its depth map is not positive everywhere at the image's size")
    except (RuntimeError, ValueError) as error:
        logger.warning("%s failed; falling back to the bundled MDE: %s", name, error)
        depth, source = _bundled_init_depth(pipeline, image)
        return depth, source, [f"{name} failed on this image ({error}); the bundled MDE was used."]
    return depth, name, []


def load_scene(
    pipeline: SDRPipeline,
    image_path: str | Path,
    depth_path: str | Path | None = None,
    *,
    units: io.DepthUnits | None = None,
    init_depth_path: str | Path | None = None,
    long_side: int = DEFAULT_LONG_SIDE_CPU,
    intrinsics: Sequence[float] | None = None,
    name: str | None = None,
    estimator: DepthEstimator | None = None,
    simulated_quality: str | None = None,
) -> Scene:
    """Read an image (and optional ground truth) and prepare it at processing resolution.

    Args:
        pipeline: supplies the bundled MDE (D0) and the MSPN window size.
        image_path: PNG / JPEG / WebP / BMP / TIFF, or a NYUv2 .h5 file holding RGB and depth.
        depth_path: optional ground truth; problems with it are reported in ``notes`` and the
            scene loads without ground truth.
        units: units of the ground truth (None = by file type).
        init_depth_path: optional initial depth replacing the MDE ("bring your own MDE");
            read with its file type's default units (16-bit PNG = mm, .npy = metres).
        long_side: processing resolution (long side in pixels).
        intrinsics: (fx, fy, cx, cy) at file resolution; None assumes NYUv2's camera.
        name: scene name for the UI; default the image file's stem.
        estimator: an MDE to use instead of the pipeline's (e.g. Depth Anything V2) when no
            ``init_depth_path`` is given; if it fails, the bundled MDE is used and a note
            says so.
        simulated_quality: a preset of :func:`sdr_core.data.mde_errors.simulate_init_depth`
            (``"metric"``: a good metric MDE, ``"harsh"``: a poor one): D0 is the ground
            truth with that MDE's simulated errors (seed :data:`SIMULATION_SEED`). Needs
            ground truth; without it the bundled MDE is used and a note says so.

    Returns:
        The :class:`Scene`.

    Raises:
        ValueError: unreadable or oversized image, bad initial depth, resolution out of range.
    """
    image_path = Path(image_path)
    depth_path = Path(depth_path) if depth_path else None
    notes: list[str] = []
    if image_path.suffix.lower() in (".h5", ".hdf5"):
        rgb, result = io.read_nyu_h5(image_path, units=units)
        gt = result.depth if np.any(result.depth > 0) else None
        if gt is None:
            notes.append(f"Ground truth ignored: {image_path.name} holds no valid depth.")
        if depth_path is not None and depth_path != image_path:
            notes.append(f"{depth_path.name} ignored: the .h5 file already holds the depth.")
    else:
        rgb = io.read_image(image_path)
        gt, gt_notes = _read_gt(image_path, depth_path, rgb.shape[:2], units)
        notes += gt_notes
    original = (rgb.shape[0], rgb.shape[1])
    size = processing_size(*original, long_side, pipeline.config.mspn.window)
    image = io.resize_rgb(rgb, size) if size != original else rgb
    if gt is not None and size != original:
        gt = io.resize_depth_nearest(gt, size)
    if init_depth_path:
        init_depth = _read_init_depth(Path(init_depth_path), original, size)
        init_source = f"uploaded ({Path(init_depth_path).name})"
    elif simulated_quality is not None and gt is not None:
        init_depth, init_source = (
            _simulated_init_depth(gt, simulated_quality),
            next(
                (k for k, v in INIT_SIMULATED.items() if v == simulated_quality), simulated_quality
            ),
        )
    else:
        if simulated_quality is not None:
            notes.append(
                "A simulated initial depth needs ground truth, which this scene lacks; "
                "the bundled MDE was used."
            )
        init_depth, init_source, init_notes = _estimated_init_depth(pipeline, image, estimator)
        notes += init_notes
    if intrinsics is not None:
        camera = io.scale_intrinsics(intrinsics, size[1] / original[1], size[0] / original[0])
    else:
        camera = io.default_intrinsics(*size)
        notes.append("Camera unknown: NYUv2 intrinsics assumed for the point cloud.")
    return Scene(
        name=name or image_path.stem,
        image=np.ascontiguousarray(image),
        gt=None if gt is None else gt.astype(np.float32),
        init_depth=init_depth.astype(np.float32),
        init_source=init_source,
        intrinsics=tuple(float(v) for v in camera),
        original_size=original,
        notes=tuple(notes),
    )


def _example_from_json(item: Any, folder: Path) -> Example:
    if not isinstance(item, dict) or "image" not in item:
        raise ValueError(f"example entry {item!r} needs at least an 'image' path")

    def path(key: str) -> Path | None:
        value = item.get(key)
        return None if not value else (folder / value).resolve()

    units = item.get("depth_units")
    if units is not None and units not in ("mm", "kitti", "m"):
        raise ValueError(f"depth_units must be 'mm', 'kitti' or 'm', got {units!r}")
    intrinsics = item.get("intrinsics")
    if isinstance(intrinsics, dict):
        intrinsics = [intrinsics[k] for k in ("fx", "fy", "cx", "cy")]
    image = path("image")
    assert image is not None
    return Example(
        name=str(item.get("name") or image.stem),
        title=str(item.get("title") or item.get("name") or image.stem),
        description=str(item.get("description", "")),
        image=image,
        depth=path("depth"),
        intrinsics=None if intrinsics is None else tuple(float(v) for v in intrinsics),
        units=units,
    )


def _middlebury_example(folder: Path) -> Example:
    """Write the Middlebury 'Motorcycle' scene (from scikit-image) as files in `folder`."""
    from .data.middlebury import load_middlebury_motorcycle

    scene = load_middlebury_motorcycle()
    folder.mkdir(parents=True, exist_ok=True)
    image, depth = folder / "middlebury_motorcycle.png", folder / "middlebury_motorcycle_depth.png"
    if not (image.exists() and depth.exists()):
        Image.fromarray(scene.rgb).save(image)
        io.write_depth_png(depth, scene.depth, units="mm")
    return Example(
        name=scene.name,
        title="Middlebury Motorcycle",
        description=scene.description,
        image=image,
        depth=depth,
        intrinsics=scene.intrinsics,
        units="mm",
    )


def load_examples(
    assets_dir: str | Path, scratch_dir: str | Path | None = None, middlebury: bool = True
) -> list[Example]:
    """The examples gallery: ``assets_dir/examples.json`` plus the Middlebury scene.

    ``examples.json`` is a list (or ``{"examples": [...]}``) of objects with ``name``,
    ``title``, ``description``, ``image``, ``depth`` (paths relative to the JSON file) and
    ``intrinsics`` ([fx, fy, cx, cy] or a dict). Entries whose image is missing are skipped
    with a log message. The Middlebury scene is added unless the JSON already has it; its
    files are written to ``scratch_dir`` (a new temporary folder by default).
    """
    assets_dir = Path(assets_dir)
    examples: list[Example] = []
    index = assets_dir / "examples.json"
    if index.is_file():
        data = json.loads(index.read_text(encoding="utf-8"))
        items = data.get("examples", []) if isinstance(data, dict) else data
        for item in items:
            try:
                example = _example_from_json(item, assets_dir)
            except (ValueError, KeyError, TypeError) as error:
                logger.warning("skipping example in %s: %s", index, error)
                continue
            if not example.image.is_file():
                logger.warning("skipping example %s: %s is missing", example.name, example.image)
                continue
            examples.append(example)
    else:
        logger.info("no %s; the gallery holds only the Middlebury scene", index)
    if middlebury and not any("middlebury" in e.name.lower() for e in examples):
        folder = Path(scratch_dir) if scratch_dir else Path(tempfile.mkdtemp(prefix="mspn_ex_"))
        try:
            examples.append(_middlebury_example(folder))
        except (ImportError, OSError, ValueError) as error:
            logger.warning("Middlebury example unavailable: %s", error)
    return examples


def load_example(
    pipeline: SDRPipeline,
    example: Example,
    long_side: int = DEFAULT_LONG_SIDE_CPU,
    *,
    estimator: DepthEstimator | None = None,
    simulated_quality: str | None = None,
) -> Scene:
    """Load a gallery scene (image, ground truth and camera) at processing resolution.

    ``estimator`` and ``simulated_quality`` choose the initial depth as in :func:`load_scene`.
    """
    return load_scene(
        pipeline,
        example.image,
        example.depth,
        units=example.units,
        long_side=long_side,
        intrinsics=example.intrinsics,
        name=example.title,
        estimator=estimator,
        simulated_quality=simulated_quality,
    )


def unit_choice(units: io.DepthUnits | None) -> str:
    """The units radio label for ``units`` (inverse of :data:`UNIT_CHOICES`)."""
    return next(label for label, value in UNIT_CHOICES.items() if value == units)


def new_session(scene: Scene) -> Session:
    """A fresh session for a newly loaded scene (points, hole and run cleared)."""
    return Session(scene=scene)


# ----------------------------------------------------------------------------- initial depth
def init_sources(
    estimators: Mapping[str, DepthEstimator] | None = None, has_gt: bool = False
) -> list[str]:
    """The initial-depth choices of the UI.

    Bundled MDE, each loaded optional MDE, (with ground truth) a good and a poor MDE
    simulated from it, and the user's own file.

    Args:
        estimators: optional MDEs that loaded, by UI label (see
            :func:`load_optional_estimators`); one that failed to load is simply absent.
        has_gt: whether the scene has ground truth, which the simulated choices need.
    """
    simulated = list(INIT_SIMULATED) if has_gt else []
    return [INIT_BUNDLED, *(estimators or {}), *simulated, INIT_UPLOADED]


def default_init_source(estimators: Mapping[str, DepthEstimator] | None = None) -> str:
    """The initial depth a new page starts with: Depth Anything V2 once loaded, else bundled."""
    return INIT_DEPTH_ANYTHING if INIT_DEPTH_ANYTHING in (estimators or {}) else INIT_BUNDLED


def valid_init_source(
    source: str, estimators: Mapping[str, DepthEstimator] | None, has_gt: bool
) -> str:
    """``source`` if a scene with(out) ground truth can use it, else the default."""
    if source in init_sources(estimators, has_gt):
        return source
    return default_init_source(estimators)


class EstimatorLoader:
    """Loads the optional MDEs on a background thread, so the page never waits for them.

    Shared read-only by every session once loaded; :meth:`available` is empty until the
    load finished (or when it failed: offline, no ``transformers``), then the estimators
    that loaded. The thread only ever writes its result once.

    Args:
        load: returns ``({label: estimator}, notes)``, e.g. a
            :func:`load_optional_estimators` call.
        on_notes: receives the notes (why an estimator is missing) when loading ends.
    """

    def __init__(
        self,
        load: Callable[[], tuple[dict[str, DepthEstimator], tuple[str, ...]]],
        on_notes: Callable[[tuple[str, ...]], None] | None = None,
    ) -> None:
        self._load = load
        self._on_notes = on_notes
        self._result: dict[str, DepthEstimator] = {}
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> EstimatorLoader:
        """Start loading in a daemon thread; returns self."""
        self._thread = threading.Thread(target=self._run, name="optional-mde", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            estimators, notes = self._load()
        except Exception as error:  # an optional extra must never stop the app
            logger.exception("loading the optional depth estimators failed")
            estimators, notes = {}, (f"optional depth estimators unavailable: {error}",)
        self._result = dict(estimators)
        self._done.set()
        if notes and self._on_notes is not None:
            self._on_notes(tuple(notes))

    def available(self) -> Mapping[str, DepthEstimator]:
        """The estimators that loaded so far (empty while loading)."""
        return MappingProxyType(self._result) if self._done.is_set() else MappingProxyType({})

    def wait(self, timeout_s: float | None = None) -> bool:
        """Block until loading ended (tests, scripts); True if it did."""
        return self._done.wait(timeout_s)


def load_optional_estimators(
    device: torch.device | str = "cpu",
    depth_anything_id: str | None = None,
    timeout_s: float | None = None,
) -> tuple[dict[str, DepthEstimator], tuple[str, ...]]:
    """Load the optional MDEs once, for every session to share read-only.

    Today that is Depth Anything V2 (needs ``transformers`` and its weights). Failing to load
    is normal (no ``transformers``, no network) and never raises: the estimator is left out
    and a note says why, for the server log.

    Args:
        device: where the models run (the pipeline's device).
        depth_anything_id: Hugging Face model id or local folder of a metric Depth Anything
            model; default :data:`sdr_core.mde.depth_anything.DEFAULT_MODEL_ID`.
        timeout_s: how long the Hub may take to answer; default that module's
            ``HUB_TIMEOUT_S``.

    Returns:
        ``({label: estimator}, notes)``; labels are the UI choices, e.g.
        :data:`INIT_DEPTH_ANYTHING`.
    """
    from .mde import depth_anything

    model_id = depth_anything_id or depth_anything.DEFAULT_MODEL_ID
    timeout = depth_anything.HUB_TIMEOUT_S if timeout_s is None else timeout_s
    try:
        estimator = depth_anything.load_depth_anything(model_id, device, timeout_s=timeout)
    except depth_anything.DepthAnythingUnavailable as error:
        return {}, (str(error),)
    except Exception as error:  # an optional extra must never stop the app from starting
        logger.exception("unexpected error while loading %s", model_id)
        return {}, (f"Depth Anything V2 could not be loaded: {type(error).__name__}: {error}",)
    return {INIT_DEPTH_ANYTHING: estimator}, ()


def pick_estimator(
    source: str, estimators: Mapping[str, DepthEstimator] | None = None
) -> tuple[DepthEstimator | None, str | None]:
    """The estimator for an initial-depth choice, and a warning if that choice is unknown.

    None means the pipeline's bundled MDE (or, for :data:`INIT_UPLOADED`, the user's file).
    A choice naming an estimator this server could not load (say, Depth Anything V2 asked
    for through the API) falls back to the bundled MDE with a plain-words warning.
    """
    estimators = estimators or {}
    if source in (INIT_BUNDLED, INIT_UPLOADED) or source in INIT_SIMULATED:
        return None, None
    if source in estimators:
        return estimators[source], None
    return None, (
        f"{source!r} is not available on this server (it needs the optional `transformers` "
        "package and downloadable weights); the bundled MDE was used instead."
    )


def warning_notes(scene: Scene) -> list[str]:
    """The notes of ``scene`` worth a pop-up: ignored ground truth, a failed optional MDE."""
    return [
        note
        for note in scene.notes
        if note.startswith("Ground truth ignored") or "the bundled MDE was used" in note
    ]


# ----------------------------------------------------------------------------- sparse depth
def _require_scene(session: Session) -> Scene:
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
    scene = _require_scene(session)
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
    scene = _require_scene(session)
    notes: list[str] = []
    before = _before_hole(session, choice, notes)
    sparse = before if session.hole is None else sparse_lib.apply_hole_mask(before, session.hole)
    n_points = sparse_lib.count_points(sparse)
    n_in_hole = sparse_lib.count_points(before) - n_points
    # LiDAR lines: eq. 13 counts the mean measurements per line (section 4.3)
    n_lines = min(max(int(choice.n_lines), MIN_LINES), MAX_LINES)
    lines = n_lines if choice.mode == "LiDAR lines" else None
    schedule = pipeline.schedule(*scene.shape, sparse_lib.schedule_points(sparse, lines))
    return SparseInputs(sparse, n_points, n_in_hole, schedule, tuple(notes))


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


def plan_text(inputs: SparseInputs) -> str:
    """Markdown: point count and the eq. 13 iteration plan."""
    first, second = inputs.schedule
    hole = f" ({inputs.n_in_hole} dropped by the hole)" if inputs.n_in_hole else ""
    if inputs.n_points == 0:
        lines = [f"**0 depth points**{hole}: nothing to propagate yet."]
    else:
        word = "point" if inputs.n_points == 1 else "points"
        lines = [
            f"**{inputs.n_points} depth {word}**{hole} · iteration plan (eq. 13): "
            f"layer 1 = **{first}**, layer 2 = **{second}** → {first + second} frames"
        ]
    lines += [f"⚠️ {note}" for note in inputs.notes]
    return "\n\n".join(lines)


def scene_text(scene: Scene) -> str:
    """Markdown summary of a loaded scene."""
    h, w = scene.shape
    oh, ow = scene.original_size
    gt = "yes" if scene.gt is not None else "no (error map and metrics are hidden)"
    text = (
        f"**{scene.name}** · {ow}x{oh} px, processed at **{w}x{h}** · ground truth: {gt} · "
        f"initial depth: {scene.init_source}"
    )
    return "\n\n".join([text, *(f"ℹ️ {note}" for note in scene.notes)])


# ----------------------------------------------------------------------------- clicks
def current_estimate(session: Session, x: int, y: int) -> float:
    """The latest depth estimate at (x, y): the last run's final depth, else D0 (metres)."""
    scene = _require_scene(session)
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
    scene = _require_scene(session)
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
def hole_from_layers(
    layers: Sequence[np.ndarray] | None, shape: Sequence[int]
) -> np.ndarray | None:
    """The hole mask painted in the brush editor, at processing resolution.

    Args:
        layers: the editor's paint layers (h x w x 4 RGBA or h x w x 3 / h x w), any size;
            painted = non-transparent (or non-zero without alpha).
        shape: (H, W) of the processing resolution.

    Returns:
        H x W bool (True where at least half of a processing pixel is painted), or None when
        nothing is painted.
    """
    height, width = int(shape[0]), int(shape[1])
    painted = None
    for layer in layers or []:
        array = np.asarray(layer)
        if array.ndim == 3:
            alpha = array[..., 3] if array.shape[2] == 4 else array.max(axis=2)
        elif array.ndim == 2:
            alpha = array
        else:
            raise ValueError(f"a brush layer must be an image, got shape {array.shape}")
        mask = alpha > 0
        if painted is not None and painted.shape != mask.shape:
            raise ValueError(
                "the brush layers have different sizes; clear the hole and paint again"
            )
        painted = mask if painted is None else painted | mask
    if painted is None or not painted.any():
        return None
    coverage = Image.fromarray(painted.astype(np.uint8) * 255).resize(
        (width, height), Image.Resampling.BOX
    )
    hole = np.asarray(coverage) >= 128
    return hole if hole.any() else None


def set_hole(session: Session, hole: np.ndarray | None) -> Session:
    """Store a hole mask (None clears it)."""
    scene = _require_scene(session)
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


def centre_hole(shape: Sequence[int]) -> np.ndarray:
    """The paper's hole-filling region (Table 4): the centre half in each axis."""
    height, width = int(shape[0]), int(shape[1])
    hole = np.zeros((height, width), dtype=bool)
    top, left = height // 4, width // 4
    hole[top : top + height // 2, left : left + width // 2] = True
    return hole


def hole_layer(hole: np.ndarray | None, factor: int) -> np.ndarray:
    """An RGBA paint layer showing ``hole`` on the editor (upscaled by ``factor``)."""
    if hole is None:
        raise ValueError("no hole to draw")
    layer = np.zeros((*hole.shape, 4), dtype=np.uint8)
    layer[hole] = (255, 255, 255, 180)  # translucent, like the brush
    return _upscale(layer, factor)


# ----------------------------------------------------------------------------- previews
def depth_scale(scene: Scene) -> tuple[float, float]:
    """One depth colour scale for a scene: ground truth and D0 pooled."""
    maps = [scene.init_depth] if scene.gt is None else [scene.gt, scene.init_depth]
    return viz.depth_range(*maps)


def points_preview(session: Session, inputs: SparseInputs) -> np.ndarray:
    """The clickable view: image, hole (tinted) and points (coloured by depth), upscaled.

    Returns:
        (H f) x (W f) x 3 uint8, f = :func:`display_factor`.
    """
    scene = _require_scene(session)
    factor = display_factor(scene.shape)
    canvas = scene.image
    if session.hole is not None:
        canvas = viz.draw_hole(canvas, session.hole, alpha=0.45)
    vmin, vmax = depth_scale(scene)
    radius = 1 if factor > 1 else 2
    canvas = viz.draw_points(canvas, inputs.sparse, radius=radius, vmin=vmin, vmax=vmax)
    return _upscale(canvas, factor)


def editor_background(scene: Scene) -> np.ndarray:
    """Background of the brush editor: the image at display size."""
    return _upscale(scene.image, display_factor(scene.shape))
