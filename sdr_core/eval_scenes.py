"""The evaluation's scenes and their D0: the held-out split, Middlebury, seeded draws.

What every evaluation refines (:mod:`sdr_core.evaluate`'s sparsity sweep and the
mask-shape diagnostic of :mod:`sdr_core.eval_mask_shape` alike): the held-out synthetic
scenes (seeds that training never uses), the Middlebury scene, the D0 shared by every method
of a scene (:func:`initial_depth`: the pipeline's MDE or the ground truth with simulated
MDE errors, sources of :mod:`sdr_core.d0_sources`) and the seeds of every random draw,
stable across runs, scene order and methods.
Every name here is importable from :mod:`sdr_core.evaluate` too.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

from .d0_sources import SCENE_SOURCES, d0_source

if TYPE_CHECKING:
    from sdr_core.pipeline import SDRPipeline

__all__ = [
    "INIT_SOURCES",
    "EvalScene",
    "SceneLike",
    "heldout_scenes",
    "initial_depth",
    "middlebury_scenes",
]

# Where every method's D0 can come from: the sources of sdr_core.d0_sources that a scene and
# the pipeline alone make ("mde", "metric", "harsh", "relative"). Their aliases are accepted
# too: "simulated", this option's name of "harsh" in earlier releases.
INIT_SOURCES = SCENE_SOURCES
# Stable per-setting tags mixed into the sampling seeds (never reorder: results would move).
_SETTING_TAGS = {"points": 1, "lines": 2, "hole": 3, "init": 4}


class SceneLike(Protocol):
    """What :func:`sdr_core.evaluate.evaluate_scenes` reads from a scene."""

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


def _sampling_seed(base_seed: int, scene_name: str, setting: str, level: int) -> int:
    """Seed of one (scene, setting, level): stable across runs, scene order and methods."""
    key = [base_seed, zlib.crc32(scene_name.encode()), _SETTING_TAGS[setting], level]
    return int(np.random.SeedSequence(key).generate_state(1)[0])


def initial_depth(
    pipe: SDRPipeline, scene: SceneLike, source: str = "mde", seed: int = 0
) -> np.ndarray:
    """D0 of a scene, shared by every method and level (H x W float32 metres).

    Args:
        pipe: the pipeline whose MDE runs for ``source="mde"``.
        scene: the scene (its ``rgb``, and its ``depth`` for a simulated source).
        source: one of :data:`INIT_SOURCES` or an alias (:mod:`sdr_core.d0_sources`):
            ``"mde"`` (the pipeline's estimator on the image), ``"harsh"`` (alias
            ``"simulated"``: the ground truth with the errors of a poor MDE: global scale
            and shift, low-frequency warp, blur across edges, sometimes a wrong region),
            ``"metric"`` (the error model of a good metric indoor MDE: scale within about
            10 %, smooth relative errors of a few per cent, softened edges) or
            ``"relative"`` (a relative MDE's unknown scale and shift; see
            :mod:`sdr_core.data.mde_errors`). Pixels without ground truth take the nearest
            valid depth first, so D0 stays dense.
        seed: mixed with the scene name into the simulation seed.

    Returns:
        H x W float32 metres; deterministic for a (scene name, source, seed).

    Raises:
        ValueError: for an unknown source, or a simulated one on a scene without any
            ground truth.
    """
    d0 = d0_source(source, INIT_SOURCES)
    rgb = np.asarray(scene.rgb)
    if not d0.needs_gt:
        return d0.build(rgb, estimate=pipe.estimate_depth)
    gt = np.asarray(scene.depth, dtype=np.float32)
    if not (gt > 0).any():
        raise ValueError(f"scene {scene.name!r} has no ground truth to simulate a D0 from")
    simulation_seed = _sampling_seed(seed, scene.name, "init", 0)
    return d0.build(rgb, gt, seed=simulation_seed)
