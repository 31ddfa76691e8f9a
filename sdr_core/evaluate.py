"""Sparsity-sweep evaluation: MSPN, its ablations and the baselines (Fig. 5, Fig. 6, Table 4).

Every scene is refined at each sparsity level of three settings:

* ``"points"``: ``n`` ground-truth pixels drawn uniformly (NYUv2 protocol, Fig. 5);
* ``"lines"``: ``k`` simulated LiDAR scan lines of a 64-line scanner (KITTI protocol, Fig. 6);
* ``"hole"``: the centre region of half the height and width is masked and ``hole_points``
  random points are drawn outside it; metrics are computed inside the hole only (Table 4,
  where a 114 x 152 centre of a 228 x 304 map is masked).

The methods (keys of the results) are ``"mspn"`` (both layers), ``"mspn_layer1"`` (first
layer only, Fig. 10a), ``"mspn_no_mask"`` (mask fixed to 1, Fig. 10d), ``"mde"`` (D0 alone),
``"ls_align"`` (D0 with one least-squares scale and shift), ``"ls_interp"`` (LS-aligned D0
plus inverse-distance-weighted residuals), and two training-free propagation methods guided
by the image (:mod:`sdr_core.classical`): ``"edge_aware"`` (the log-ratio S / D0 spread
along the image's edges, Levin et al. 2004) and ``"ls_interp_bilateral"`` (``"ls_interp"``
then a joint bilateral pass). Every baseline but ``"mde"`` is a *classical method*
(:data:`CLASSICAL_METHODS`); :func:`best_classical` picks the best of them per level and
MSPN's RMSE ratio to it. All methods of a scene refine the *same* D0: the
pipeline's MDE runs once per scene and its output is passed as ``init_depth``. With
``init_source="metric"``, ``"harsh"`` (earlier ``"simulated"``) or ``"relative"`` D0 is
instead the ground truth with the simulated errors of a good, a poor or a relative MDE
(seeded per scene; the sources of :mod:`sdr_core.d0_sources`): the paper's Fig. 10b
question, does the refinement also help a different depth estimator. The scenes, D0 and the
seeds live in :mod:`sdr_core.eval_scenes`.

Results are nested dicts ``{setting: {method: {level: {metric: mean over scenes}}}}`` with
integer levels (points, lines, or the hole's outside point count) and the metrics of
:func:`sdr_core.metrics.compute_metrics` plus ``n_points`` (measurements used).
:func:`run_evaluation` does the held-out synthetic split and the Middlebury scene and writes
``results.json``, ``results.md`` and ``results.html`` (with, under ``"best_classical"``, the
comparison with the best classical method; the writers live in :mod:`sdr_core.eval_report`).
The report also holds, under ``"paired"``, every method's scene-by-scene RMSE difference to
MSPN with a 95 % bootstrap interval (:func:`sdr_core.metrics.paired_difference`): whether a
gap is larger than the scene draw moves it; and, under ``"mask_shape"``, the mask-shape
diagnostic of :mod:`sdr_core.eval_mask_shape`. The names of those three modules are
importable from here too.

The report states facts and holds no acceptance policy: whether the results meet the
project's quality bar is checked by ``scripts/quality_bar.py`` on ``results.json``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sdr_core import methods as method_table
from sdr_core import sparse
from sdr_core.d0_sources import d0_source, with_aliases
from sdr_core.eval_mask_shape import centre_point, mask_shape  # importable from here
from sdr_core.eval_report import (  # the report's readers and writers, importable from here
    BASELINE_METHODS,
    CLASSICAL_METHODS,
    METHOD_LABELS,
    SETTINGS,
    best_classical,
    best_classical_table,
    markdown_report,
    markdown_table,
    paired_table,
    read_json,
    write_json,
    write_plot_html,
)
from sdr_core.eval_scenes import (  # importable from here
    INIT_SOURCES,
    EvalScene,
    SceneLike,
    _sampling_seed,
    heldout_scenes,
    initial_depth,
    middlebury_scenes,
)
from sdr_core.metrics import compute_metrics, paired_difference
from sdr_core.sparse import centre_hole_mask  # in __all__: still importable from here

if TYPE_CHECKING:
    from sdr_core.pipeline import SDRPipeline

__all__ = [
    "ABLATION_SUBDIR",
    "BASELINE_METHODS",
    "CLASSICAL_METHODS",
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
    "best_classical",
    "best_classical_table",
    "centre_hole_mask",
    "centre_point",
    "evaluate_scenes",
    "heldout_scenes",
    "initial_depth",
    "markdown_report",
    "markdown_table",
    "mask_shape",
    "middlebury_scenes",
    "paired_rmse",
    "paired_table",
    "read_json",
    "run_evaluation",
    "write_json",
    "write_plot_html",
]

logger = logging.getLogger(__name__)

DEFAULT_POINTS = (1, 5, 10, 20, 50, 100, 200, 500, 1000)  # Fig. 5 x-axis
DEFAULT_LINES = (4, 8, 16, 32, 64)  # Fig. 6 x-axis
METHODS = ("mspn", "mspn_layer1", "mspn_no_mask", *BASELINE_METHODS)
# Where the shipped mask ablation (trained without the mask) lives, under the checkpoints.
ABLATION_SUBDIR = "ablation_no_mask"
# Where the model trained by the same recipe without the project's departures lives.
FAITHFUL_SUBDIR = "faithful"


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
    init_source: str = "mde"  # one of INIT_SOURCES (or an alias): where D0 comes from
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
        if self.init_source not in with_aliases(INIT_SOURCES):
            raise ValueError(f"init_source must be one of {INIT_SOURCES}, got {self.init_source!r}")
        # One vocabulary in results files: an alias ("simulated") is stored by its name.
        object.__setattr__(self, "init_source", d0_source(self.init_source).name)


# ----------------------------------------------------------------------------- evaluation


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
        ``{"meta": {...}, "heldout": results, "middlebury": results, "paired": {...},
        "best_classical": {...}, "mask_shape": {...}}`` where each ``results`` is as
        returned by :func:`evaluate_scenes` (a split is absent when the config skips it),
        ``paired`` maps each split to :func:`paired_rmse`, ``best_classical`` to
        :func:`best_classical`, ``mask_shape`` (unless the config skips it) to
        :func:`mask_shape`, and ``meta`` holds the config and scene names. No verdict:
        ``scripts/quality_bar.py`` checks a report against the project's quality bar.
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
        report.setdefault("best_classical", {})[split] = best_classical(report[split])
        if config.mask_shape:
            report.setdefault("mask_shape", {})[split] = mask_shape(
                pipe, scenes, init_source=config.init_source, seed=config.seed
            )
    write_json(report, out / "results.json")
    (out / "results.md").write_text(markdown_report(report), encoding="utf-8")
    write_plot_html(report, out / "results.html")
    logger.info("wrote results.json, results.md and results.html to %s", out)
    return report
