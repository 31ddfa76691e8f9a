"""A scene of the studio: an image at processing resolution, its ground truth, D0 and camera.

- :class:`Scene` and :func:`load_scene` (files, read with the project's own readers: 16-bit
  PNG, KITTI, .npy, NYUv2 .h5, ...), :class:`Example` and :func:`load_examples` /
  :func:`load_example` (the gallery, ``assets/examples.json`` plus Middlebury).
- The initial depth D0: the bundled MDE, a user's file, D0 simulated from the ground truth,
  or an optional estimator loaded once at start-up in the background
  (:class:`EstimatorLoader`, :func:`load_optional_estimators`: Depth Anything V2), offered
  only once it has loaded (:func:`init_sources`). The choices are sources of
  :mod:`sdr_core.d0_sources`, shown by their labels and made by their builders.

Every problem with the user's files raises ``ValueError`` with a message written for the
user; the page shows it as it is.
"""

from __future__ import annotations

import json
import logging
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from sdr_core import camera, viz
from sdr_core.d0_sources import D0_SOURCES, SIMULATED_SOURCES, d0_source
from sdr_core.data import io
from sdr_core.validation import as_depth_map

if TYPE_CHECKING:
    import torch

    from sdr_core.mde import DepthEstimator
    from sdr_core.pipeline import SDRPipeline

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_LONG_SIDE_CPU",
    "DEFAULT_LONG_SIDE_GPU",
    "INIT_BUNDLED",
    "INIT_DEPTH_ANYTHING",
    "INIT_SIMULATED",
    "INIT_UPLOADED",
    "MAX_LONG_SIDE",
    "MIN_LONG_SIDE",
    "EstimatorLoader",
    "Example",
    "Scene",
    "default_init_source",
    "depth_scale",
    "init_sources",
    "load_example",
    "load_examples",
    "load_optional_estimators",
    "load_scene",
    "pick_estimator",
    "processing_size",
    "start_optional_estimators",
    "valid_init_source",
    "warning_notes",
]


DEFAULT_LONG_SIDE_CPU = 304  # 228 x 304 for a 4:3 image, the paper's NYUv2 crop
DEFAULT_LONG_SIDE_GPU = 640
MIN_LONG_SIDE = 64
MAX_LONG_SIDE = 1024  # keeps one refinement and the stored frames within a few GB

# Choices of the initial depth D0 in the UI: labels of sdr_core.d0_sources' sources.
# Optional estimators sit between the bundled MDE and the simulated ones.
INIT_BUNDLED = D0_SOURCES["mde"].label
INIT_UPLOADED = D0_SOURCES["uploaded"].label
INIT_DEPTH_ANYTHING = D0_SOURCES["depth_anything"].label  # offered only when it loaded
# D0 simulated from the ground truth, by label: the paper's Fig. 10b question, does the
# refinement help a better or a worse depth estimator? Scenes with GT only.
INIT_SIMULATED: Mapping[str, str] = MappingProxyType(
    {D0_SOURCES[name].label: name for name in ("metric", "harsh")}
)
SIMULATION_SEED = 0  # one fixed draw per scene, so a class sees the same D0 every time


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


def _uploaded_init_depth(path: Path, original: tuple[int, int], image: np.ndarray) -> np.ndarray:
    """The user's initial depth ("bring your own MDE"), dense, at the image's (processing) size.

    ``original`` is the image file's (height, width), which the depth file must match.
    """
    depth = io.read_depth(path).depth
    if depth.shape != original:
        raise ValueError(
            f"{path.name} is {depth.shape[1]}x{depth.shape[0]} pixels but the image is "
            f"{original[1]}x{original[0]}; the initial depth must have the image's size"
        )
    if not np.any(depth > 0):
        raise ValueError(f"{path.name} has no valid depth value to start from")
    return D0_SOURCES["uploaded"].build(image, depth=depth)


def _simulated_init_depth(gt: np.ndarray, name: str) -> tuple[np.ndarray, str]:
    """D0 = the ground truth with one simulated MDE's errors (Fig. 10b), and its label.

    ``name`` is a simulated source of :mod:`sdr_core.d0_sources` (or an alias of one).
    """
    source = d0_source(name, SIMULATED_SOURCES)
    return source.build(gt=gt, seed=SIMULATION_SEED), source.label


def _bundled_init_depth(pipeline: SDRPipeline, image: np.ndarray) -> tuple[np.ndarray, str]:
    """D0 from the pipeline's own MDE, and where it came from in words."""
    name = getattr(pipeline.mde, "name", "bundled")
    depth = D0_SOURCES["mde"].build(image, estimate=pipeline.estimate_depth)
    return depth, f"{INIT_BUNDLED} ({name})"


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
        # Depth Anything V2 today; any optional estimator is built the same way.
        estimated = D0_SOURCES["depth_anything"].build(image, estimate=estimator.estimate)
        depth = as_depth_map(estimated, f"{name} depth")
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
        simulated_quality: the name of a simulated source of :mod:`sdr_core.d0_sources`
            (``"metric"``: a good metric MDE, ``"harsh"``: a poor one; an alias such as
            ``"simulated"`` too): D0 is the ground truth with that MDE's simulated errors
            (seed :data:`SIMULATION_SEED`). Needs ground truth; without it the bundled MDE
            is used and a note says so.

    Returns:
        The :class:`Scene`.

    Raises:
        ValueError: unreadable or oversized image, bad initial depth, resolution out of range.
    """
    image_path = Path(image_path)
    rgb, gt, notes = _read_scene_files(image_path, Path(depth_path) if depth_path else None, units)
    original = (rgb.shape[0], rgb.shape[1])
    size = processing_size(*original, long_side, pipeline.config.mspn.window)
    image = io.resize_rgb(rgb, size) if size != original else rgb
    if gt is not None and size != original:
        gt = io.resize_depth_nearest(gt, size)
    if init_depth_path:
        init_depth = _uploaded_init_depth(Path(init_depth_path), original, image)
        init_source = f"uploaded ({Path(init_depth_path).name})"
    elif simulated_quality is not None and gt is not None:
        init_depth, init_source = _simulated_init_depth(gt, simulated_quality)
    else:
        if simulated_quality is not None:
            notes.append(
                "A simulated initial depth needs ground truth, which this scene lacks; "
                "the bundled MDE was used."
            )
        init_depth, init_source, init_notes = _estimated_init_depth(pipeline, image, estimator)
        notes += init_notes
    intrinsics_px = _intrinsics_at(intrinsics, original, size, notes)
    return Scene(
        name=name or image_path.stem,
        image=np.ascontiguousarray(image),
        gt=None if gt is None else gt.astype(np.float32),
        init_depth=init_depth.astype(np.float32),
        init_source=init_source,
        intrinsics=tuple(float(v) for v in intrinsics_px),
        original_size=original,
        notes=tuple(notes),
    )


def _read_scene_files(
    image_path: Path, depth_path: Path | None, units: io.DepthUnits | None
) -> tuple[np.ndarray, np.ndarray | None, list[str]]:
    """The image, its ground truth (None when absent or unusable) and notes on what was read."""
    notes: list[str] = []
    if image_path.suffix.lower() not in (".h5", ".hdf5"):
        rgb = io.read_image(image_path)
        gt, gt_notes = _read_gt(image_path, depth_path, rgb.shape[:2], units)
        return rgb, gt, notes + gt_notes
    rgb, result = io.read_nyu_h5(image_path, units=units)
    gt = result.depth if np.any(result.depth > 0) else None
    if gt is None:
        notes.append(f"Ground truth ignored: {image_path.name} holds no valid depth.")
    if depth_path is not None and depth_path != image_path:
        notes.append(f"{depth_path.name} ignored: the .h5 file already holds the depth.")
    return rgb, gt, notes


def _intrinsics_at(
    intrinsics: Sequence[float] | None,
    original: tuple[int, int],
    size: tuple[int, int],
    notes: list[str],
) -> Sequence[float]:
    """(fx, fy, cx, cy) at processing size; NYUv2's camera (with a note) when unknown."""
    if intrinsics is None:
        notes.append("Camera unknown: NYUv2 intrinsics assumed for the point cloud.")
        return camera.default_intrinsics(*size)
    return camera.scale_intrinsics(intrinsics, size[1] / original[1], size[0] / original[0])


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
    from sdr_core.data.middlebury import load_middlebury_motorcycle

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


# ----------------------------------------------------------------------------- initial depth
def init_sources(
    estimators: Mapping[str, DepthEstimator] | None = None,
    has_gt: bool = False,
    uploaded: bool = False,
) -> list[str]:
    """The initial-depth choices of the UI.

    Bundled MDE, each loaded optional MDE, (with ground truth) a good and a poor MDE
    simulated from it, and (once uploaded) the user's own file.

    Args:
        estimators: optional MDEs that loaded, by UI label (see
            :func:`load_optional_estimators`); one that failed to load is simply absent.
        has_gt: whether the scene has ground truth, which the simulated choices need.
        uploaded: whether an initial-depth file is uploaded; no file, no such choice.
    """
    simulated = list(INIT_SIMULATED) if has_gt else []
    own = [INIT_UPLOADED] if uploaded else []
    return [INIT_BUNDLED, *(estimators or {}), *simulated, *own]


def default_init_source(estimators: Mapping[str, DepthEstimator] | None = None) -> str:
    """The initial depth a new page starts with: Depth Anything V2 once loaded, else bundled."""
    return INIT_DEPTH_ANYTHING if INIT_DEPTH_ANYTHING in (estimators or {}) else INIT_BUNDLED


def valid_init_source(
    source: str,
    estimators: Mapping[str, DepthEstimator] | None,
    has_gt: bool,
    uploaded: bool = False,
) -> str:
    """``source`` if a scene with(out) ground truth (and file) can use it, else the default."""
    if source in init_sources(estimators, has_gt, uploaded):
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
    from sdr_core.mde import depth_anything

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


def start_optional_estimators(
    device: torch.device | str, depth_anything_id: str | None = None
) -> EstimatorLoader:
    """Start loading the optional MDEs in the background; why one is missing is logged.

    Args:
        device: where the models run (the pipeline's device).
        depth_anything_id: as in :func:`load_optional_estimators`.
    """

    def log(notes: tuple[str, ...]) -> None:
        for note in notes:
            logger.warning("%s; it is not offered in the app", note)

    return EstimatorLoader(lambda: load_optional_estimators(device, depth_anything_id), log).start()


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


def depth_scale(scene: Scene) -> tuple[float, float]:
    """One depth colour scale for a scene: ground truth and D0 pooled."""
    maps = [scene.init_depth] if scene.gt is None else [scene.gt, scene.init_depth]
    return viz.depth_range(*maps)
