"""Torch datasets of synthetic RGB-D scenes (`sdr_core.data.synthetic`).

Seeds identify scenes, so splits are ranges of seeds:

- training streams seeds upward from `TRAIN_SEED_START` (0) and never reaches
  `EVAL_SEED_START`;
- evaluation uses seeds from `EVAL_SEED_START` (10_000_000) upward,

so the two never share a scene. `SyntheticSceneDataset` is an endless (or fixed-length)
stream for training; each DataLoader worker (and each distributed rank) draws a disjoint,
interleaved share of the seeds. `SyntheticSceneSplit` is a map-style dataset over a fixed
range of seeds for evaluation.

Every sample is a dict of tensors::

    image         3 x H x W float32 in [0, 1]  (RGB)
    depth         1 x H x W float32, metres, exact and dense (> 0)
    sensor_depth  1 x H x W float32, metres; 0 = missing (Kinect-like holes and noise
                  when config.sensor_effects, otherwise equal to depth)
    intrinsics    (4,) float32: fx, fy, cx, cy in pixels
    seed          int
"""

from __future__ import annotations

import numbers
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, IterableDataset, get_worker_info

from sdr_core.data.synthetic import Scene, SceneConfig, generate_scene

__all__ = [
    "EVAL_SEED_START",
    "TRAIN_SEED_START",
    "VALIDATION_SEED_START",
    "SyntheticSceneDataset",
    "SyntheticSceneSplit",
    "evaluation_split",
    "scene_to_sample",
]

TRAIN_SEED_START = 0
"""First seed of the training stream."""

EVAL_SEED_START = 10_000_000
"""First seed of evaluation splits; training streams stop before it."""

VALIDATION_SEED_START = 9_000_000
"""First seed of the validation split (choices made after training, e.g. the iteration
schedule): `sdr_core.train` draws scene seeds below it, evaluation starts at
`EVAL_SEED_START`."""


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def scene_to_sample(scene: Scene) -> dict[str, Any]:
    """Convert a `Scene` to the dict of tensors the datasets yield (see module docstring)."""
    image = torch.from_numpy(np.ascontiguousarray(scene.rgb.transpose(2, 0, 1))).float() / 255.0
    return {
        "image": image,
        "depth": torch.from_numpy(scene.depth.copy())[None],
        "sensor_depth": torch.from_numpy(scene.sensor_depth.copy())[None],
        "intrinsics": torch.tensor(scene.intrinsics, dtype=torch.float32),
        "seed": scene.seed,
    }


class SyntheticSceneDataset(IterableDataset):
    """A stream of freshly rendered scenes for training.

    Seeds run from `base_seed` upward. With `length=None` the stream is endless, except
    that a stream starting below `EVAL_SEED_START` stops there, so training never sees an
    evaluation scene. Work is split by interleaving: of `world_size` ranks with
    `num_workers` DataLoader workers each, the stream with global index
    g = rank * num_workers + worker_id takes seeds base_seed + g, base_seed + g + n, ...
    (n = world_size * num_workers), so shares are disjoint and together cover the range.

    Args:
        config: what to render.
        base_seed: first seed (>= 0).
        length: number of seeds in the whole stream (all ranks and workers together), or
            None for endless.
        rank: this process's rank for distributed training.
        world_size: number of distributed processes.
    """

    def __init__(
        self,
        config: SceneConfig = SceneConfig(),  # noqa: B008
        base_seed: int = TRAIN_SEED_START,
        length: int | None = None,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        super().__init__()
        if not isinstance(config, SceneConfig):
            raise ValueError(f"config must be a SceneConfig, got {type(config).__name__}")
        self.config = config
        self.base_seed = _check_int("base_seed", base_seed, 0)
        self.length = None if length is None else _check_int("length", length, 0)
        self.world_size = _check_int("world_size", world_size, 1)
        self.rank = _check_int("rank", rank, 0)
        if self.rank >= self.world_size:
            raise ValueError(f"rank must be < world_size={self.world_size}, got {self.rank}")
        if self.length is not None and self.base_seed < EVAL_SEED_START < self.stop:
            raise ValueError(
                f"seeds {self.base_seed}..{self.stop - 1} would run into the evaluation "
                f"seeds (>= {EVAL_SEED_START}); shorten length"
            )

    @property
    def stop(self) -> int:
        """One past the last seed of the whole stream."""
        if self.length is not None:
            return self.base_seed + self.length
        if self.base_seed < EVAL_SEED_START:
            return EVAL_SEED_START
        return np.iinfo(np.int64).max

    def seeds(self, worker_id: int = 0, num_workers: int = 1) -> range:
        """The seeds one worker of this rank yields, in order."""
        stream = self.rank * num_workers + worker_id
        return range(self.base_seed + stream, self.stop, self.world_size * num_workers)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        info = get_worker_info()
        worker_id, num_workers = (0, 1) if info is None else (info.id, info.num_workers)
        for seed in self.seeds(worker_id, num_workers):
            yield scene_to_sample(generate_scene(seed, self.config))

    def __len__(self) -> int:
        """Samples this rank yields (all its workers together); endless streams raise."""
        if self.length is None:
            raise TypeError("an endless SyntheticSceneDataset has no length")
        return len(range(self.base_seed + self.rank, self.stop, self.world_size))


class SyntheticSceneSplit(Dataset):
    """A fixed set of scenes, indexable: item i is the scene of seeds[i].

    Args:
        seeds: the scene seeds, e.g. range(EVAL_SEED_START, EVAL_SEED_START + 500).
        config: what to render.
    """

    def __init__(self, seeds: Sequence[int], config: SceneConfig = SceneConfig()) -> None:  # noqa: B008
        if not isinstance(config, SceneConfig):
            raise ValueError(f"config must be a SceneConfig, got {type(config).__name__}")
        self.seeds = seeds
        for seed in (seeds[0], seeds[-1]) if len(seeds) else ():
            _check_int("seeds", seed, 0)
        self.config = config

    def __len__(self) -> int:
        return len(self.seeds)

    def __getitem__(self, index: int) -> dict[str, Any]:
        """The sample of seeds[index]."""
        return scene_to_sample(generate_scene(self.seeds[index], self.config))


def evaluation_split(size: int, config: SceneConfig = SceneConfig()) -> SyntheticSceneSplit:  # noqa: B008
    """The first `size` evaluation scenes (seeds EVAL_SEED_START onward)."""
    size = _check_int("size", size, 0)
    return SyntheticSceneSplit(range(EVAL_SEED_START, EVAL_SEED_START + size), config)
