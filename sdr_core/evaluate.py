"""Sparsity-sweep evaluation: MSPN, its ablations and the baselines (Fig. 5, Fig. 6, Table 4).

Every scene is refined at each sparsity level of three settings:

* ``"points"``: ``n`` ground-truth pixels drawn uniformly (NYUv2 protocol, Fig. 5);
* ``"lines"``: ``k`` simulated LiDAR scan lines of a 64-line scanner (KITTI protocol, Fig. 6);
* ``"hole"``: the centre region of half the height and width is masked and ``hole_points``
  random points are drawn outside it; metrics are computed inside the hole only (Table 4,
  where a 114 x 152 centre of a 228 x 304 map is masked).

The methods (keys of the results) are ``"mspn"`` (both layers), ``"mspn_layer1"`` (first
layer only, Fig. 10a), ``"mspn_no_mask"`` (mask fixed to 1, Fig. 10d), ``"mde"`` (D0 alone),
``"ls_align"`` (D0 with one least-squares scale and shift) and ``"ls_interp"`` (LS-aligned D0
plus inverse-distance-weighted residuals). All methods of a scene refine the *same* D0: the
pipeline's MDE runs once per scene and its output is passed as ``init_depth``. With
``init_source="simulated"`` D0 is instead the ground truth with the simulated MDE errors of
training (seeded per scene): the paper's Fig. 10b question, does the refinement also help a
different depth estimator.

Results are nested dicts ``{setting: {method: {level: {metric: mean over scenes}}}}`` with
integer levels (points, lines, or the hole's outside point count) and the metrics of
:func:`sdr_core.metrics.compute_metrics` plus ``n_points`` (measurements used).
:func:`run_evaluation` does the held-out synthetic split and the Middlebury scene and writes
``results.json``, ``results.md`` and ``results.html``; :func:`check_quality_bar` lists where
the results fall short of the project's quality bar. The report also holds, under
``"paired"``, every method's scene-by-scene RMSE difference to MSPN with a 95 % bootstrap
interval (:func:`sdr_core.metrics.paired_difference`): whether a gap is larger than the scene
draw moves it.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
import warnings
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from sdr_core import methods as method_table
from sdr_core import sparse
from sdr_core.metrics import compute_metrics, paired_difference
from sdr_core.sparse import centre_hole_mask  # in __all__: still importable from here

if TYPE_CHECKING:
    from sdr_core.pipeline import SDRPipeline

__all__ = [
    "ABLATION_SUBDIR",
    "BASELINE_METHODS",
    "DEFAULT_LINES",
    "DEFAULT_POINTS",
    "INIT_SOURCES",
    "METHODS",
    "METHOD_LABELS",
    "SETTINGS",
    "EvalConfig",
    "EvalScene",
    "FAITHFUL_SUBDIR",
    "SceneLike",
    "centre_hole_mask",
    "centre_point",
    "check_quality_bar",
    "evaluate_scenes",
    "heldout_scenes",
    "initial_depth",
    "markdown_report",
    "markdown_table",
    "mask_shape",
    "middlebury_scenes",
    "paired_rmse",
    "read_json",
    "run_evaluation",
    "write_json",
    "write_plot_html",
]

logger = logging.getLogger(__name__)

DEFAULT_POINTS = (1, 5, 10, 20, 50, 100, 200, 500, 1000)  # Fig. 5 x-axis
DEFAULT_LINES = (4, 8, 16, 32, 64)  # Fig. 6 x-axis
SETTINGS = ("points", "lines", "hole")
METHODS = ("mspn", "mspn_layer1", "mspn_no_mask", "mde", "ls_align", "ls_interp")
BASELINE_METHODS = method_table.BASELINES  # ("mde", "ls_align", "ls_interp")
# Where every method's D0 comes from: the pipeline's MDE, or GT + simulated MDE errors.
# "simulated" is the harsh preset of sdr_core.data.mde_errors (its name in earlier releases),
# "metric" the error model of a good metric indoor MDE.
INIT_SOURCES = ("mde", "simulated", "metric")
_INIT_PRESETS = {"simulated": "harsh", "metric": "metric"}
_INIT_LABELS = {
    "mde": "the pipeline's MDE",
    "simulated": "ground truth with simulated errors of a poor MDE (harsh preset)",
    "metric": "ground truth with simulated errors of a good metric MDE (metric preset)",
}
METHOD_LABELS = {name: method.label for name, method in method_table.METHODS.items()}
# Metrics where larger is better (threshold accuracies); all others are errors.
_HIGHER_IS_BETTER = frozenset({"d1", "d2", "d3"})
_METRIC_UNITS = {"rmse": "m", "mae": "m", "irmse": "1/km", "imae": "1/km"}
# Stable per-setting tags mixed into the sampling seeds (never reorder: results would move).
_SETTING_TAGS = {"points": 1, "lines": 2, "hole": 3, "init": 4}
# Where the shipped mask ablation (trained without the mask) lives, under the checkpoints.
ABLATION_SUBDIR = "ablation_no_mask"
# Where the model trained by the same recipe without the project's departures lives.
FAITHFUL_SUBDIR = "faithful"
# The quality bar: no-mask ablation must lose to MSPN at this many points or fewer.
_NO_MASK_MAX_POINTS = 20
# The bar with a good metric D0: MSPN beats the better least-squares baseline from this many
# points on, and from _METRIC_MARGIN_POINTS on with RMSE at most _METRIC_MARGIN times its.
_METRIC_BEAT_LS_POINTS = 20
_METRIC_MARGIN_POINTS = 200
_METRIC_MARGIN = 0.85
# The mask must follow the image: from one centre point, it fills at most this share of its
# bounding box (a square flood fills all of it).
_MASK_MAX_FILL = 0.85
_SETTING_TITLES = {
    "points": "random points",
    "lines": "LiDAR lines",
    "hole": "hole filling (metrics inside the hole)",
}


class SceneLike(Protocol):
    """What :func:`evaluate_scenes` reads from a scene."""

    name: str
    rgb: np.ndarray  # H x W x 3 uint8
    depth: np.ndarray  # H x W float32 metres, 0 = no ground truth


@dataclass(frozen=True)
class EvalScene:
    """One evaluation scene.

    Attributes:
        name: identifier, also hashed into the sampling seeds (so keep it stable).
        rgb: H x W x 3 uint8.
        depth: H x W float32, metres; 0 = no ground truth.
    """

    name: str
    rgb: np.ndarray
    depth: np.ndarray


@dataclass(frozen=True)
class EvalConfig:
    """What to evaluate; defaults are the paper's sweeps at an affordable CPU cost."""

    points: tuple[int, ...] = DEFAULT_POINTS  # random-point levels (Fig. 5)
    lines: tuple[int, ...] = DEFAULT_LINES  # LiDAR-line levels out of 64 (Fig. 6)
    hole: bool = True  # run the hole-filling setting (Table 4)
    hole_points: int = 500  # random points drawn outside the hole in that setting
    # Lengthen MSPN's first layer in the hole setting so the mask can reach the hole centre
    # (see _hole_schedule_points); False uses eq. 13 with the outside point count as is.
    hole_reach: bool = True
    # Held-out synthetic scenes (0 skips the split). Fewer are noisy: with 8 scenes the
    # few-point ranking of MSPN and LS + IDW flipped between draws of the sparse points.
    n_scenes: int = 24
    size: tuple[int, int] = (228, 304)  # (H, W) of the synthetic scenes, NYUv2 crop size
    middlebury: bool = True  # also evaluate the Middlebury 2014 "Motorcycle" scene
    # (H, W) of the Middlebury scene: 741 x 500 shrunk to height 228 keeps its aspect ratio.
    middlebury_size: tuple[int, int] = (228, 338)
    seed: int = 0  # mixed into every sampling seed
    methods: tuple[str, ...] = METHODS  # which methods to run, keys of METHOD_LABELS
    # Folder with guidance + MSPN trained without the mask (train --no-mask): the method
    # "mspn_no_mask_trained", the paper's Fig. 10d ablation. None: not evaluated.
    no_mask_checkpoints: str | None = None
    # Folder with guidance + MSPN trained in the paper's configuration (no departures): the
    # method "mspn_faithful". None: not evaluated.
    faithful_checkpoints: str | None = None
    init_source: str = "mde"  # one of INIT_SOURCES: where D0 comes from
    mask_shape: bool = True  # run the mask-shape diagnostic (one centre point, 6 iterations)

    def __post_init__(self) -> None:
        for name in ("points", "lines"):
            levels = getattr(self, name)
            if any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in levels):
                raise ValueError(f"{name} must be positive integers, got {levels!r}")
            if len(set(levels)) != len(levels):
                raise ValueError(f"{name} has repeated levels: {levels!r}")
        if any(v > 64 for v in self.lines):
            raise ValueError(
                f"lines must be <= 64 (lines of the simulated scanner), got {self.lines}"
            )
        if not (self.points or self.lines or self.hole):
            raise ValueError("nothing to evaluate: points and lines are empty and hole is False")
        if self.hole_points < 1:
            raise ValueError(f"hole_points must be >= 1, got {self.hole_points}")
        if self.n_scenes < 0:
            raise ValueError(f"n_scenes must be >= 0, got {self.n_scenes}")
        for name in ("size", "middlebury_size"):
            value = getattr(self, name)
            if len(value) != 2 or min(value) < 8:
                raise ValueError(f"{name} must be (H, W) with both >= 8, got {value!r}")
        unknown = [m for m in self.methods if m not in METHOD_LABELS]
        if unknown or not self.methods:
            raise ValueError(f"methods must be a non-empty subset of {METHODS}, got {self.methods}")
        if len(set(self.methods)) != len(self.methods):
            raise ValueError(f"methods has repeats: {self.methods!r}")
        if ("mspn_no_mask_trained" in self.methods) != bool(self.no_mask_checkpoints):
            raise ValueError(
                "method 'mspn_no_mask_trained' and no_mask_checkpoints go together: give both "
                "or neither"
            )
        if ("mspn_faithful" in self.methods) != bool(self.faithful_checkpoints):
            raise ValueError(
                "method 'mspn_faithful' and faithful_checkpoints go together: give both or neither"
            )
        if self.init_source not in INIT_SOURCES:
            raise ValueError(f"init_source must be one of {INIT_SOURCES}, got {self.init_source!r}")


# ----------------------------------------------------------------------------- scenes


def heldout_scenes(
    n: int, size: tuple[int, int] = (228, 304), seed_start: int | None = None
) -> list[EvalScene]:
    """The held-out synthetic split: scenes whose seeds training never uses.

    Args:
        n: number of scenes.
        size: (H, W) in pixels.
        seed_start: first scene seed; default ``sdr_core.data.datasets.EVAL_SEED_START``,
            the start of the range reserved for evaluation.

    Returns:
        ``n`` scenes named ``synthetic_<seed>`` with seeds ``seed_start .. seed_start + n - 1``.
    """
    from sdr_core.data.synthetic import SceneConfig, generate_scene

    if seed_start is None:
        from sdr_core.data.datasets import EVAL_SEED_START

        seed_start = EVAL_SEED_START
    scene_config = SceneConfig(height=size[0], width=size[1])
    scenes = []
    for seed in range(seed_start, seed_start + n):
        scene = generate_scene(seed, scene_config)
        scenes.append(EvalScene(f"synthetic_{seed}", scene.rgb, scene.depth))
    return scenes


def middlebury_scenes(size: tuple[int, int] | None = (228, 338)) -> list[EvalScene]:
    """The Middlebury 2014 "Motorcycle" scene as a one-scene split.

    Args:
        size: (H, W) to resize to; ``None`` keeps the shipped 500 x 741.
    """
    from sdr_core.data.middlebury import load_middlebury_motorcycle

    scene = load_middlebury_motorcycle(size=size)
    return [EvalScene(scene.name, scene.rgb, scene.depth)]


# ----------------------------------------------------------------------------- evaluation


def _sampling_seed(base_seed: int, scene_name: str, setting: str, level: int) -> int:
    """Seed of one (scene, setting, level): stable across runs, scene order and methods."""
    key = [base_seed, zlib.crc32(scene_name.encode()), _SETTING_TAGS[setting], level]
    return int(np.random.SeedSequence(key).generate_state(1)[0])


def _hole_schedule_points(height: int, width: int, hole: np.ndarray) -> int:
    """Point count whose eq. 12 spacing equals the hole's shorter side.

    The farthest pixel of the hole is half its shorter side from the nearest measurement,
    as the farthest pixel between points of spacing nu_s is about nu_s / 2 from one; so a
    hole behaves like points spaced by its shorter side, sqrt(H W / s) - 1 = side, i.e.
    s = H W / (side + 1)^2. At 228 x 304 with the 114 x 152 hole, s = 5 and N = 39 (p = 13),
    where 500 outside points alone would give N = 6 and the mask would stop ~36 px short.
    """
    rows, cols = np.nonzero(hole)
    side = min(int(np.ptp(rows)) + 1, int(np.ptp(cols)) + 1)
    return max(1, math.floor(height * width / (side + 1) ** 2))


def _levels(config: EvalConfig) -> list[tuple[str, int]]:
    pairs = [("points", n) for n in config.points] + [("lines", k) for k in config.lines]
    if config.hole:
        pairs.append(("hole", config.hole_points))
    return pairs


def initial_depth(
    pipe: SDRPipeline, scene: SceneLike, source: str = "mde", seed: int = 0
) -> np.ndarray:
    """D0 of a scene, shared by every method and level (H x W float32 metres).

    Args:
        pipe: the pipeline whose MDE runs for ``source="mde"``.
        scene: the scene (its ``rgb``, and its ``depth`` for ``"simulated"``).
        source: ``"mde"`` (the pipeline's estimator on the image), ``"simulated"`` (the
            ground truth with the harsh preset of simulated MDE errors: global scale and
            shift, low-frequency warp, blur across edges, sometimes a wrong region) or
            ``"metric"`` (the error model of a good metric indoor MDE: scale within about
            10 %, smooth relative errors of a few per cent, softened edges; see
            :mod:`sdr_core.data.mde_errors`). Pixels without ground truth take the nearest
            valid depth first, so D0 stays dense.
        seed: mixed with the scene name into the simulation seed.

    Returns:
        H x W float32 metres; deterministic for a (scene name, source, seed).

    Raises:
        ValueError: for an unknown source, or ``"simulated"`` on a scene without any ground
            truth.
    """
    if source == "mde":
        return pipe.estimate_depth(np.asarray(scene.rgb))
    if source not in _INIT_PRESETS:
        raise ValueError(f"init source must be one of {INIT_SOURCES}, got {source!r}")
    from sdr_core.data.mde_errors import simulate_init_depth

    gt = np.asarray(scene.depth, dtype=np.float32)
    if not (gt > 0).any():
        raise ValueError(f"scene {scene.name!r} has no ground truth to simulate a D0 from")
    simulation_seed = _sampling_seed(seed, scene.name, "init", 0)
    return simulate_init_depth(gt, _INIT_PRESETS[source], simulation_seed)


def _evaluate_scene(
    pipe: SDRPipeline,
    scene: SceneLike,
    config: EvalConfig,
    others: Mapping[str, SDRPipeline] | None = None,
) -> dict[tuple[str, str, int], dict[str, float]]:
    """Metrics of every (setting, method, level) on one scene."""
    gt = np.asarray(scene.depth, dtype=np.float32)
    rgb = np.asarray(scene.rgb)
    height, width = gt.shape
    init = initial_depth(pipe, scene, config.init_source, config.seed)  # shared by all
    hole = centre_hole_mask(height, width)
    out: dict[tuple[str, str, int], dict[str, float]] = {}
    for setting, level in _levels(config):
        seed = _sampling_seed(config.seed, scene.name, setting, level)
        region = None
        with warnings.catch_warnings():
            # Asking for more points than a tiny scene has is logged, not raised, here.
            warnings.simplefilter("ignore", sparse.SparsityWarning)
            if setting == "points":
                sparse_depth = sparse.random_points(gt, level, seed=seed)
            elif setting == "lines":
                sparse_depth = sparse.lidar_lines(gt, level, seed=seed)
            else:
                sparse_depth = sparse.random_points(gt, level, seed=seed, hole_mask=hole)
                region = hole
        n_points = sparse.count_points(sparse_depth)
        if setting == "points" and n_points < level:
            logger.warning("%s: only %d valid pixels for %d points", scene.name, n_points, level)
        if setting == "lines":
            # The paper sets N from the mean number of measurements per line (section 4).
            schedule_points = sparse.schedule_points(sparse_depth, n_lines=level)
        elif setting == "hole" and config.hole_reach:
            schedule_points = min(n_points, _hole_schedule_points(height, width, hole))
        else:
            schedule_points = n_points
        inputs = method_table.MethodInputs(rgb, sparse_depth, init, schedule_points)
        predictions = method_table.predict(config.methods, pipe, inputs, others)
        for method, pred in predictions.items():
            metrics = compute_metrics(pred, gt, region=region)
            metrics["n_points"] = float(n_points)
            out[(setting, method, level)] = metrics
    return out


PerScene = dict[tuple[str, str, int], list[dict[str, float]]]


def _other_pipelines(pipe: SDRPipeline, config: EvalConfig) -> dict[str, SDRPipeline]:
    """The separately trained variants the config asks for, on this pipeline's MDE."""
    folders = {
        "mspn_no_mask_trained": config.no_mask_checkpoints,
        "mspn_faithful": config.faithful_checkpoints,
    }
    return {
        method: pipe.with_networks_from(folder)
        for method, folder in folders.items()
        if folder and method in config.methods
    }


def _collect(pipe: SDRPipeline, scenes: Iterable[SceneLike], config: EvalConfig) -> PerScene:
    """Every scene's metrics per (setting, method, level), in scene order."""
    others = _other_pipelines(pipe, config)
    per_scene: PerScene = {}
    names: set[str] = set()
    for scene in scenes:
        if scene.name in names:
            raise ValueError(f"scene name {scene.name!r} is repeated (it seeds the sampling)")
        names.add(scene.name)
        start = time.perf_counter()
        for key, metrics in _evaluate_scene(pipe, scene, config, others).items():
            per_scene.setdefault(key, []).append(metrics)
        logger.info("evaluated %s in %.1f s", scene.name, time.perf_counter() - start)
    if not names:
        raise ValueError("no scene to evaluate")
    return per_scene


def _means(
    per_scene: PerScene, config: EvalConfig
) -> dict[str, dict[str, dict[int, dict[str, float]]]]:
    results: dict[str, dict[str, dict[int, dict[str, float]]]] = {}
    for setting, level in _levels(config):
        for method in config.methods:
            rows = per_scene[(setting, method, level)]
            mean = {k: float(np.mean([row[k] for row in rows])) for k in rows[0]}
            results.setdefault(setting, {}).setdefault(method, {})[level] = mean
    return results


def paired_rmse(
    per_scene: Mapping[tuple[str, str, int], list[Mapping[str, float]]],
    confidence: float = 0.95,
) -> dict[str, dict[str, dict[int, dict[str, float]]]]:
    """Every method's scene-by-scene RMSE minus MSPN's, with a bootstrap interval.

    Args:
        per_scene: ``{(setting, method, level): [metrics of scene 1, scene 2, ...]}`` with
            the scenes in the same order for every key; must include ``"mspn"``.
        confidence: coverage of the interval.

    Returns:
        ``{setting: {method: {level: {"mean", "low", "high", "n", "share_positive"}}}}``
        (metres; > 0 means MSPN has the lower RMSE), for every method other than MSPN;
        empty when MSPN was not run.
    """
    out: dict[str, dict[str, dict[int, dict[str, float]]]] = {}
    for (setting, method, level), rows in per_scene.items():
        reference = per_scene.get((setting, "mspn", level))
        if method == "mspn" or reference is None:
            continue
        diff = paired_difference(
            [row["rmse"] for row in reference], [row["rmse"] for row in rows], confidence
        )
        out.setdefault(setting, {}).setdefault(method, {})[level] = dataclasses.asdict(diff)
    return out


def evaluate_scenes(
    pipe: SDRPipeline, scenes: Iterable[SceneLike], config: EvalConfig | None = None
) -> dict[str, dict[str, dict[int, dict[str, float]]]]:
    """Run every method at every level of every setting and average over scenes.

    Args:
        pipe: the pipeline; its MDE gives D0 (once per scene, unless the config simulates
            it) and its MSPN refines it.
        scenes: objects with ``name`` (str, unique), ``rgb`` (H x W x 3 uint8) and ``depth``
            (H x W float32 metres, 0 = no ground truth).
        config: levels, methods and seeds; default :class:`EvalConfig`.

    Returns:
        ``{setting: {method: {level: {metric: mean}}}}``; settings in ``("points", "lines",
        "hole")`` order, those without levels left out; levels are ints (points, lines, or
        the hole setting's outside point count); metrics as in
        :func:`~sdr_core.metrics.compute_metrics` plus ``n_points``, the mean number of
        measurements. Hole metrics cover the hole only.

    Raises:
        ValueError: if ``scenes`` is empty or two scenes share a name.
    """
    config = config or EvalConfig()
    return _means(_collect(pipe, scenes, config), config)


def run_evaluation(
    pipe: SDRPipeline, config: EvalConfig | None = None, out_dir: str | Path = "eval_results"
) -> dict[str, Any]:
    """Held-out synthetic split + Middlebury scene; writes results.json/.md/.html.

    Args:
        pipe: the pipeline to evaluate.
        config: what to run; default :class:`EvalConfig`.
        out_dir: folder for ``results.json``, ``results.md`` and ``results.html``; created.

    Returns:
        ``{"meta": {...}, "heldout": results, "middlebury": results, "paired": {...}}``
        where each ``results`` is as returned by :func:`evaluate_scenes` (a split is absent
        when the config skips it), ``paired`` maps each split to :func:`paired_rmse`, and
        ``meta`` holds the config, scene names and quality-bar failures.
    """
    config = config or EvalConfig()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    # Through JSON so the returned report equals what read_json gives back (tuples -> lists).
    config_json = json.loads(json.dumps(dataclasses.asdict(config)))
    report: dict[str, Any] = {"meta": {"config": config_json, "scenes": {}}}
    splits: list[tuple[str, list[EvalScene]]] = []
    if config.n_scenes:
        splits.append(("heldout", heldout_scenes(config.n_scenes, config.size)))
    if config.middlebury:
        splits.append(("middlebury", middlebury_scenes(config.middlebury_size)))
    for split, scenes in splits:
        logger.info("evaluating %d %s scene(s)", len(scenes), split)
        report["meta"]["scenes"][split] = [scene.name for scene in scenes]
        per_scene = _collect(pipe, scenes, config)
        report[split] = _means(per_scene, config)
        report.setdefault("paired", {})[split] = paired_rmse(per_scene)
        if config.mask_shape:
            report.setdefault("mask_shape", {})[split] = mask_shape(
                pipe, scenes, init_source=config.init_source, seed=config.seed
            )
    report["meta"]["quality_bar_failures"] = check_quality_bar(report)
    write_json(report, out / "results.json")
    (out / "results.md").write_text(markdown_report(report), encoding="utf-8")
    write_plot_html(report, out / "results.html")
    logger.info("wrote results.json, results.md and results.html to %s", out)
    return report


# ----------------------------------------------------------------------------- mask shape


def centre_point(depth: np.ndarray) -> np.ndarray:
    """Sparse depth with one measurement: the valid pixel nearest the image centre.

    Args:
        depth: H x W ground truth, metres; 0 = missing; at least one valid pixel.

    Returns:
        H x W float32 metres, 0 everywhere but that pixel.
    """
    gt = np.asarray(depth, dtype=np.float32)
    rows, cols = np.nonzero(gt > 0)
    if rows.size == 0:
        raise ValueError("the depth map has no valid pixel for the centre point")
    height, width = gt.shape
    nearest = int(np.argmin((rows - height // 2) ** 2 + (cols - width // 2) ** 2))
    out = np.zeros_like(gt)
    out[rows[nearest], cols[nearest]] = gt[rows[nearest], cols[nearest]]
    return out


def mask_shape(
    pipe: SDRPipeline,
    scenes: Iterable[SceneLike],
    iterations: int = 6,
    threshold: float = 0.5,
    init_source: str = "mde",
    seed: int = 0,
) -> dict[str, Any]:
    """Does the propagation mask follow the image? The shape grown from one centre point.

    Each scene gets one measurement at its centre (:func:`centre_point`) and ``iterations``
    first-layer iterations. A mask that grows as a square flood of one window radius per
    iteration, whatever the image, fills its bounding box completely and is the same in
    every scene; the paper's masks follow image structure (Fig. 9).

    Args:
        pipe: the pipeline.
        scenes: scenes with ground truth at (or near) the centre.
        iterations: first-layer iterations to run (second layer skipped).
        threshold: the mask level that counts as reached.
        init_source: D0 as in :func:`initial_depth`.
        seed: mixed into a simulated D0's seed.

    Returns:
        ``{"scenes": {name: {"fill", "area_px", "bbox_px"}}, "mean_fill", "distinct",
        "n", "iterations", "threshold"}``: ``fill`` is the share of the reached region's
        bounding box that it covers (1 = a filled rectangle), ``distinct`` the number of
        different reached regions (as boolean maps) among the ``n`` scenes.
    """
    per_scene: dict[str, dict[str, Any]] = {}
    shapes: set[bytes] = set()
    for scene in scenes:
        rgb = np.asarray(scene.rgb)
        init = initial_depth(pipe, scene, init_source, seed)
        sparse_depth = centre_point(scene.depth)
        mask = np.asarray(sparse_depth > 0, dtype=np.float32)
        for state in pipe.refine_steps(
            rgb, sparse_depth, init_depth=init, schedule=(iterations, 0)
        ):
            mask = state.mask
        reached = mask > threshold
        rows, cols = np.nonzero(reached)
        box = (int(np.ptp(rows)) + 1, int(np.ptp(cols)) + 1)
        per_scene[scene.name] = {
            "fill": float(rows.size / (box[0] * box[1])),
            "area_px": int(rows.size),
            "bbox_px": list(box),
        }
        shapes.add(np.packbits(reached).tobytes() + bytes(str(reached.shape), "ascii"))
    if not per_scene:
        raise ValueError("no scene for the mask-shape diagnostic")
    return {
        "scenes": per_scene,
        "mean_fill": float(np.mean([v["fill"] for v in per_scene.values()])),
        "distinct": len(shapes),
        "n": len(per_scene),
        "iterations": iterations,
        "threshold": threshold,
    }


# ----------------------------------------------------------------------------- quality bar


def _rmse(results: Mapping[str, Any], setting: str, method: str, level: int) -> float | None:
    try:
        return float(results[setting][method][level]["rmse"])
    except KeyError:
        return None


def check_quality_bar(report: Mapping[str, Any]) -> list[str]:
    """Where the results miss the project's quality bar (RMSE of the means over scenes).

    The bar depends on where D0 came from (``report["meta"]["config"]["init_source"]``), on
    the held-out synthetic split and on Middlebury alike:

    * D0 from the bundled MDE (``"mde"``) or a poor simulated MDE (``"simulated"``): at every
      level of ``points`` and ``lines``, ``mspn`` beats every baseline (``mde``,
      ``ls_align``, ``ls_interp``).
    * D0 from a good metric MDE (``"metric"``): ``mspn`` is never worse than D0 (``mde``)
      at any level of ``points`` and ``lines``; from 20 points on it beats the better of
      ``ls_align`` and ``ls_interp``, and from 200 points on by at least 15 % (RMSE at most
      0.85 times the better one's).
    * Every regime, held-out split, ``points`` levels <= 20: the mask ablation is worse
      than ``mspn``. The paper's ablation (Fig. 10d) is a network trained without the mask,
      so ``mspn_no_mask_trained`` is checked when the report has it; otherwise the
      inference-time stand-in ``mspn_no_mask`` (the same weights run with the mask fixed
      to 1).

    The hole setting is reported but not part of the bar. A split, method or setting the
    bar needs but the report lacks is a failure too: an unchecked bar is not a passed one.
    Failures carry the paired 95 % interval over scenes where the report has one.

    Args:
        report: ``{"heldout": results, "middlebury": results, "meta": ..., "paired": ...}``
            as from :func:`run_evaluation` (other keys are ignored).

    Returns:
        One human-readable line per failure; empty when the bar is met.
    """
    failures: list[str] = []
    init_source = report.get("meta", {}).get("config", {}).get("init_source", "mde")

    def compare(
        split: str, setting: str, level: int, rivals: tuple[str, ...], unit: str, factor: float
    ) -> None:
        """``mspn`` must be below ``factor`` x the best rival (at most, for factor 1 of D0)."""
        results = report[split]
        ours = _rmse(results, setting, "mspn", level)
        found = {rival: _rmse(results, setting, rival, level) for rival in rivals}
        missing = [m for m, v in {"mspn": ours, **found}.items() if v is None]
        if missing:
            failures.append(f"{split} {setting} @ {level} {unit}: no {missing[0]} result")
            return
        best = min(found, key=lambda m: found[m])
        target = factor * found[best]
        # "Never worse than D0" and "better by at least 15 %" allow equality; "beats" does not.
        never_worse = rivals == ("mde",) and init_source == "metric"
        at_most = never_worse or factor != 1
        if (ours <= target) if at_most else (ours < target):
            return
        relation = "above" if at_most else "not below"
        scaled = f"{factor:g} x " if factor != 1 else ""
        failures.append(
            f"{split} {setting} @ {level} {unit}: mspn RMSE {ours:.4f} m is {relation} "
            f"{scaled}{best} {found[best]:.4f} m"
            f"{_interval_note(report, split, setting, best, level)}"
        )

    def levels(split: str, setting: str) -> list[int]:
        return sorted(report[split].get(setting, {}).get("mspn", {}))

    for split in ("heldout", "middlebury"):
        if split not in report:
            failures.append(f"{split}: no results, so the bar cannot be checked")
            continue
        if not any(levels(split, s) for s in ("points", "lines")):
            failures.append(f"{split}: no mspn results for points or lines")
        for setting in ("points", "lines"):
            for level in levels(split, setting):
                if init_source != "metric":
                    for rival in BASELINE_METHODS:
                        compare(split, setting, level, (rival,), setting, 1.0)
                    continue
                compare(split, setting, level, ("mde",), setting, 1.0)
                if setting == "points" and level >= _METRIC_BEAT_LS_POINTS:
                    factor = _METRIC_MARGIN if level >= _METRIC_MARGIN_POINTS else 1.0
                    compare(split, setting, level, ("ls_align", "ls_interp"), setting, factor)
    shape = report.get("mask_shape", {}).get("heldout")
    if shape is not None:
        if shape["mean_fill"] > _MASK_MAX_FILL:
            failures.append(
                f"heldout mask shape: from one centre point the mask > {shape['threshold']} "
                f"region fills {100 * shape['mean_fill']:.1f} % of its bounding box after "
                f"{shape['iterations']} iterations on average (at most "
                f"{100 * _MASK_MAX_FILL:.0f} %)"
            )
        if shape["distinct"] < shape["n"]:
            failures.append(
                f"heldout mask shape: only {shape['distinct']} different masks in "
                f"{shape['n']} scenes"
            )
    if "heldout" in report:
        few = [n for n in levels("heldout", "points") if n <= _NO_MASK_MAX_POINTS]
        if not few:
            failures.append(
                f"heldout: no points level <= {_NO_MASK_MAX_POINTS} to check the no-mask ablation"
            )
        ablation = "mspn_no_mask"
        if report["heldout"].get("points", {}).get("mspn_no_mask_trained"):
            ablation = "mspn_no_mask_trained"
        for level in few:
            compare("heldout", "points", level, (ablation,), "points", 1.0)
    return failures


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


# ----------------------------------------------------------------------------- writers


def _split_items(results: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    """``[(split, results)]`` for a report, or ``[("", results)]`` for one split's results."""
    if set(results) <= set(SETTINGS):
        return [("", results)]
    return [
        (k, v)
        for k, v in results.items()
        if k not in ("meta", "paired", "mask_shape") and isinstance(v, Mapping)
    ]


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
    """A markdown page: one section per split with its tables, then the quality bar."""
    parts = ["# MSPN evaluation", ""]
    meta = report.get("meta", {})
    config = meta.get("config", {})
    if config:
        parts += [
            f"Held-out synthetic scenes: {config.get('n_scenes')} at {config.get('size')}; "
            f"hole setting: {config.get('hole_points')} random points outside a centre hole "
            "of half the height and width, metrics inside the hole. Every method refines the "
            f"same D0 ({_INIT_LABELS.get(config.get('init_source', 'mde'), '?')}) per scene; "
            "values are means over scenes.",
            "",
        ]
    for split, results in _split_items(report):
        if split:
            names = meta.get("scenes", {}).get(split)
            parts += [f"## {split}" + (f" ({len(names)} scene(s))" if names else ""), ""]
        parts.append(markdown_table(results, metric))
        parts += _paired_section(report, split)
        parts += _mask_shape_section(report, split)
    if "heldout" in report or "middlebury" in report:
        failures = check_quality_bar(report)
        parts += ["## Quality bar", ""]
        parts += [f"- {line}" for line in failures] if failures else ["Met at every level."]
        parts.append("")
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
