"""Training of the bundled depth estimator (stage "mde") and of guidance + MSPN (stage "sdr").

Sections 3.6 and 4.3 of the paper: AdamW (lr 1e-3, weight decay 1e-2), L1 + L2 loss over valid
pixels (eq. 14; SILog, eq. 15, selectable), learning rate halved at fixed fractions of the run,
variable sparsity per sample, iteration count from eq. 13 per batch. One deliberate departure:
the paper samples 10-1000 points uniformly; here the count is log-uniform in 1-1000 (and
4-64 LiDAR lines for a share of the samples), because the demo and the evaluation go down to a
single point and a uniform draw would almost never show the model fewer than 50.

D0 is drawn per sample from a mix of qualities (``TrainConfig.init_sources``, sources of
:mod:`sdr_core.d0_sources`): the bundled MDE's prediction (``mde``), or the ground truth with
simulated errors of a good metric MDE (``metric``), a poor one (``harsh``), or a relative one
with unknown scale (``relative``). A network that only ever sees an uninformative D0 learns
to discard it (checkpoints/README.md); with a spread of qualities it must judge D0 by its
agreement with S and the image.
``iteration_loss_weight`` adds the loss of every intermediate iteration, so no iteration may
make the depth worse (what the app animates).

Runs in one process (CPU or GPU) or under ``torchrun`` (DistributedDataParallel: gloo on CPU,
nccl on CUDA). Data are rendered on the fly; sample seeds derive from (seed, step, rank), so a
resumed run sees exactly the data it would have seen.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import json
import logging
import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.distributed as dist
from safetensors.torch import load_file, save_file
from torch import nn

from .attention import BACKENDS, resolve_backend
from .checkpoints import load_module, save_module
from .d0_sources import D0_SOURCES, SCENE_SOURCES
from .data.datasets import VALIDATION_SEED_START
from .data.synthetic import SceneConfig, generate_scene
from .distill import distillation_loss, load_teacher
from .guidance import GuidanceConfig, GuidanceNet
from .losses import depth_edge_weights, l1_l2_loss, mask_confidence_loss, silog_loss
from .mde.bundled import MonoDepthConfig, MonoDepthNet
from .mspn import MSPN, MSPNConfig, iteration_schedule
from .prefill import align_init_depth
from .sparse import count_points, lidar_lines, random_points, schedule_points

__all__ = ["INIT_KINDS", "SDRModel", "TrainConfig", "sample_sparse", "train"]

# Where a training sample's D0 can come from: the D0 sources a scene and the bundled MDE make
# (sdr_core.d0_sources: "mde", "metric", "harsh", "relative"); the names stored in
# TrainConfig.init_sources, and so in every checkpoint's train_config.
INIT_KINDS = SCENE_SOURCES
# D0 of "mde" samples when no MDE checkpoint is there: the first release's simulation.
MDE_FALLBACK = "harsh"

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run depends on (stored in its checkpoints)."""

    stage: Literal["mde", "sdr"] = "sdr"  # which networks to train
    out_dir: str = "runs/sdr"  # checkpoints, state for resuming, logs
    steps: int = 2000  # optimiser steps
    batch_size: int = 4  # per process
    height: int = 228  # scenes are rendered at this size (NYUv2 crop size) ...
    width: int = 304
    crop: tuple[int, int] | None = None  # ... then randomly cropped to (H, W) for speed
    lr: float = 1e-3  # AdamW, section 4.3
    weight_decay: float = 1e-2
    lr_milestones: tuple[float, ...] = (0.5, 0.67, 0.83)  # fractions of steps; lr halves at each
    grad_clip: float = 1.0  # max global gradient norm
    loss: Literal["l1l2", "silog"] = "l1l2"  # eq. 14 or eq. 15 (stage "sdr")
    min_points: int = 1  # random points per sample: log-uniform in [min, max]
    max_points: int = 1000
    lines_fraction: float = 0.25  # share of samples with LiDAR lines instead of points
    min_lines: int = 4
    max_lines: int = 64
    # D0 of each sample: (kind, weight) pairs, kinds from INIT_KINDS (sdr_core.d0_sources'
    # names), drawn per sample with probability proportional to the weight. ("mde", 1) and
    # ("harsh", 1) is the first release's mix (there drawn per batch).
    init_sources: tuple[tuple[str, float], ...] = (("mde", 1.0), ("harsh", 1.0))
    # Weight of the mean loss over every intermediate iteration (both layers), added to the
    # final depth's loss; 0 = final depth only (the paper).
    iteration_loss_weight: float = 0.0
    # Weight of a loss on where the first layer's mask has not reached by its last iteration
    # (mean of 1 - M_N): eq. 13 sizes N so the mask covers the image (section 3.5); 0 = none.
    mask_coverage_weight: float = 0.0
    # Weight of losses.mask_confidence_loss on layer 1's masks after every iteration with a
    # graph: 1 where its depth beats D0, else 0. Eq. 11 averages masks, so it acts at the
    # front, asking it to stop at the edges a correction should not cross.
    mask_confidence_weight: float = 0.0
    # Extra weight of eq. 14 within 2 px of a ground-truth depth edge (losses.
    # depth_edge_weights: weight 1 + this there, 1 elsewhere); 0 = the paper's plain mean.
    edge_loss_weight: float = 0.0
    # Distillation (stage "sdr"): a folder holding a trained guidance + MSPN (the teacher).
    # The run then trains a fresh guidance network of ``guidance``'s (lighter) configuration
    # to give the teacher MSPN layers' queries and keys (eq. 7) what the teacher's guidance
    # gives them; the teacher's MSPN is copied, frozen, and exported with the student, so the
    # output folder is a complete checkpoint folder (and an --init-dir for a fine-tune).
    distill_from: str | None = None
    # How a fresh MSPN starts: "default" (PyTorch's initialisation) or "refiner"
    # (MSPNLayer.init_as_refiner: flooding mask, near-identity refinement). Ignored with
    # init_dir, whose weights are loaded.
    mspn_init: Literal["default", "refiner"] = "default"
    mde_checkpoint: str | None = "checkpoints/mde.safetensors"  # frozen MDE for stage "sdr"
    init_dir: str | None = None  # start from guidance/mspn (or mde) weights in this folder
    grad_iterations: int | None = 4  # backprop through the last k iterations per layer
    # False trains the paper's mask ablation (Fig. 10d): the propagation mask is fixed to 1.
    use_mask: bool = True
    guidance: GuidanceConfig = dataclasses.field(default_factory=GuidanceConfig)
    mspn: MSPNConfig = dataclasses.field(default_factory=lambda: MSPNConfig(backend="auto"))
    mde: MonoDepthConfig = dataclasses.field(default_factory=MonoDepthConfig)
    seed: int = 0  # data and initialisation
    log_every: int = 10
    checkpoint_every: int = 100
    amp: bool = True  # bfloat16 autocast on CUDA (ignored on CPU)
    num_threads: int | None = None  # torch CPU threads; None keeps torch's default
    # Density-matched crops (with ``crop``): one point count (or line count) per step, drawn
    # for the whole rendered scene, sampled there and cropped with the image, so a crop holds
    # points at the density of that count and runs the full-size schedule (eq. 13's N depends
    # only on the spacing). A step whose crop would hold fewer than about 4 points (or 2
    # lines) takes a crop twice as large, or the whole scene, with the batch shrunk to keep
    # the pixels per step. Every sample of a step shares its schedule: none is wasted.
    density_matched: bool = False
    crops_per_scene: int = 1  # crops taken from each rendered scene (density_matched only)
    # Stop after the first step that ends past this many seconds of this process's run, and
    # save and export there (a run on a lent machine with a fixed time); None: run all steps.
    time_limit_s: float | None = None

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1:
            raise ValueError("steps and batch_size must be >= 1")
        if self.crop is not None and not (
            self.crop[0] <= self.height and self.crop[1] <= self.width
        ):
            raise ValueError(
                f"crop {self.crop} is larger than the scenes ({self.height}, {self.width})"
            )
        if not 1 <= self.min_points <= self.max_points:
            raise ValueError(
                f"need 1 <= min_points <= max_points, got {self.min_points}, {self.max_points}"
            )
        if not 1 <= self.min_lines <= self.max_lines <= 64:
            raise ValueError("need 1 <= min_lines <= max_lines <= 64")
        if not 0.0 <= self.lines_fraction <= 1.0:
            raise ValueError(f"lines_fraction must be in [0, 1], got {self.lines_fraction}")
        if self.crops_per_scene < 1:
            raise ValueError(f"crops_per_scene must be >= 1, got {self.crops_per_scene}")
        if self.density_matched and self.crop is None:
            raise ValueError("density_matched needs a crop size (crop=(H, W))")
        kinds = [kind for kind, _ in self.init_sources]
        if (
            not kinds
            or any(kind not in INIT_KINDS for kind in kinds)
            or len(set(kinds)) != len(kinds)
        ):
            raise ValueError(
                f"init_sources must name distinct kinds of {INIT_KINDS}, got {self.init_sources}"
            )
        weights = [weight for _, weight in self.init_sources]
        if any(not weight >= 0 for weight in weights) or not sum(weights) > 0:
            raise ValueError(f"init_sources weights must be >= 0, sum > 0: {self.init_sources}")
        if self.mspn_init not in ("default", "refiner"):
            raise ValueError(f"mspn_init must be 'default' or 'refiner', got {self.mspn_init!r}")
        if self.mask_coverage_weight < 0:
            raise ValueError(f"mask_coverage_weight must be >= 0, got {self.mask_coverage_weight}")
        if not self.mask_confidence_weight >= 0:
            raise ValueError(f"mask_confidence_weight must be >= 0: {self.mask_confidence_weight}")
        if self.mask_confidence_weight > 0 and (self.stage != "sdr" or not self.use_mask):
            raise ValueError("mask_confidence_weight trains the mask: it needs stage 'sdr', a mask")
        if self.iteration_loss_weight < 0:
            raise ValueError(
                f"iteration_loss_weight must be >= 0, got {self.iteration_loss_weight}"
            )
        if not self.edge_loss_weight >= 0:
            raise ValueError(f"edge_loss_weight must be >= 0, got {self.edge_loss_weight}")
        if self.edge_loss_weight > 0 and (self.stage != "sdr" or self.loss != "l1l2"):
            raise ValueError("edge_loss_weight weights eq. 14: it needs stage 'sdr', loss 'l1l2'")
        if self.distill_from is not None and (self.stage != "sdr" or self.init_dir is not None):
            raise ValueError("distill_from needs stage 'sdr' and no init_dir (the student is new)")


class SDRModel(nn.Module):
    """Guidance network + two-layer MSPN as one module (one DDP wrapper, one optimiser)."""

    def __init__(self, guidance: GuidanceNet, mspn: MSPN) -> None:
        super().__init__()
        self.guidance = guidance
        self.mspn = mspn

    def forward(
        self,
        image: torch.Tensor,
        sparse: torch.Tensor,
        init_depth: torch.Tensor,
        schedule: tuple[int, int],
        grad_iterations: int | None = None,
        use_mask: bool = True,
        all_iterations: bool = False,
        coverage: bool = False,
        confidence: bool = False,
    ) -> list[torch.Tensor]:
        """Refined depth from image, S and D0, and optionally every intermediate one.

        D0 is first aligned to S as the MSPN config says (``init_alignment``), exactly as
        :class:`~sdr_core.pipeline.SDRPipeline` does at inference.

        Returns:
            B x 1 x H x W depths (metres): ``[final]``, or with ``all_iterations`` the depth
            after every iteration that carries a graph (all of them at inference), in order,
            the final last. ``[D0 with S imposed]`` when the schedule runs no iteration. With
            ``coverage``, one more B x 1 x H x W map is appended: 1 minus the first layer's
            last mask (where the mask did not reach). With ``confidence``, three K B x 1 x H x W
            more: layer 1's masks after its K iterations with a graph (else its last), their
            depths and D0 as aligned, iteration-major. DDP expects every output in the loss.
        """
        grad_enabled = torch.is_grad_enabled()
        mspn = self.mspn.config
        init_depth = align_init_depth(
            init_depth, sparse, mspn.init_alignment, mspn.alignment_prior_points
        )
        guidance = self.guidance(image, sparse, init_depth)
        # The propagation runs in float32 even under mixed precision: the logits carry no
        # 1/sqrt(d) scaling and reach tens, where bfloat16's ~0.4 % error shifts the softmax.
        with torch.autocast(image.device.type, enabled=False):
            states = self.mspn.refine_steps(
                init_depth.float(),
                sparse.float(),
                guidance.float(),
                schedule,
                use_mask,
                grad_iterations,
            )
            depths, layer1_mask, layer1_depth, fronts = [], None, None, []
            for state in states:
                if state.iteration == 0:  # a layer's starting state: an input, not an output
                    continue
                depths.append(state.depth)
                if state.layer == 1:
                    layer1_mask, layer1_depth = state.mask, state.depth
                    if confidence and (state.mask.requires_grad or not grad_enabled):
                        fronts.append((state.mask, state.depth.detach()))
        if not depths:
            depths = [torch.where(sparse > 0, sparse, init_depth).float()]
        if all_iterations:
            tracked = [d for d in depths[:-1] if d.requires_grad or not grad_enabled]
            depths = [*tracked, depths[-1]]
        else:
            depths = depths[-1:]
        reached = (sparse > 0).float() if layer1_mask is None else layer1_mask
        if coverage:
            depths.append(1.0 - reached)
        if confidence:
            start = torch.where(sparse > 0, sparse, init_depth).float()
            fronts = fronts or [(reached, (start if layer1_depth is None else layer1_depth))]
            masks, layer1_depths = zip(*fronts, strict=True)
            aligned = init_depth.detach().float().repeat(len(fronts), 1, 1, 1)
            depths.extend([torch.cat(masks), torch.cat(layer1_depths), aligned])
        return depths


def sample_sparse(
    gt: np.ndarray, rng: np.random.Generator, config: TrainConfig
) -> tuple[np.ndarray, int]:
    """Sparse depth for one training sample and its effective count for eq. 13.

    Returns:
        (sparse H x W metres, s) where s is the number of points, or for LiDAR lines the mean
        number of points per line (how the paper sets N for KITTI, section 4.3).
    """
    seed = int(rng.integers(2**31))
    if rng.random() < config.lines_fraction:
        n_lines = int(rng.integers(config.min_lines, config.max_lines + 1))
        sparse = lidar_lines(gt, n_lines, seed=seed)
        return sparse, max(1, schedule_points(sparse, n_lines))
    lo, hi = math.log(config.min_points), math.log(config.max_points)
    n_points = int(round(math.exp(rng.uniform(lo, hi))))
    sparse = random_points(gt, n_points, seed=seed)
    return sparse, max(1, count_points(sparse))


def _random_crop(
    rgb: np.ndarray, depth: np.ndarray, crop: tuple[int, int] | None, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """The same random (H, W) window of image and depth; no-op when ``crop`` is None."""
    if crop is None:
        return rgb, depth
    window = _crop_window(rgb.shape[:2], crop, rng)
    return np.ascontiguousarray(rgb[window]), np.ascontiguousarray(depth[window])


# Fewest expected points (lines) in a density-matched crop before a larger crop is taken.
_MIN_POINTS_PER_CROP = 4.0
_MIN_LINES_PER_CROP = 2.0


def density_matched_crop(
    config: TrainConfig, count: int, lines: bool
) -> tuple[tuple[int, int], int]:
    """(crop size, batch size) of a density-matched step with ``count`` points (or lines).

    The smallest of ``config.crop``, twice it and the whole scene that is expected to hold
    at least 4 of the scene's points (2 of its lines); the batch shrinks with the crop's
    area so a step costs about the same number of pixels.
    """
    assert config.crop is not None
    full = (config.height, config.width)
    base_area = config.crop[0] * config.crop[1]
    candidates = [config.crop, (2 * config.crop[0], 2 * config.crop[1]), full]
    for crop in candidates:
        crop = (min(crop[0], full[0]), min(crop[1], full[1]))
        if lines:
            expected = count * crop[0] / full[0]
            enough = expected >= _MIN_LINES_PER_CROP
        else:
            enough = count * crop[0] * crop[1] / (full[0] * full[1]) >= _MIN_POINTS_PER_CROP
        if enough or crop == full:
            break
    batch = max(1, round(config.batch_size * base_area / (crop[0] * crop[1])))
    return crop, batch


def _draw_count(config: TrainConfig, rng: np.random.Generator) -> tuple[int, bool]:
    """(count, whether it counts lines) of one step.

    Lines with probability ``lines_fraction``, else points log-uniform in
    [min_points, max_points].
    """
    if rng.random() < config.lines_fraction:
        return int(rng.integers(config.min_lines, config.max_lines + 1)), True
    lo, hi = math.log(config.min_points), math.log(config.max_points)
    return int(round(math.exp(rng.uniform(lo, hi)))), False


def _density_matched_samples(
    config: TrainConfig,
    step: int,
    rank: int,
    rng: np.random.Generator,
    mde: MonoDepthNet | None,
) -> tuple[list[np.ndarray], ...]:
    """(images, depths, sparse maps, D0 maps, eq. 13 counts) of a density-matched step.

    D0 is made on the whole scene, as at inference, and cropped with the rest.
    """
    count, lines = _draw_count(config, rng)
    crop, batch_size = density_matched_crop(config, count, lines)
    draws = _init_draws(config, rng, batch_size)
    scene_config = SceneConfig(height=config.height, width=config.width)
    images, depths, sparses, inits, counts = [], [], [], [], []
    scene, estimate = None, None
    for i in range(batch_size):
        if i % config.crops_per_scene == 0:
            mixed = config.seed * 1_000_003 + step * 9973 + rank * 101 + i
            scene = generate_scene(mixed % VALIDATION_SEED_START, scene_config)
            estimate = None if mde is None else _once(lambda rgb: _predict_depth(mde, rgb))
        assert scene is not None
        kind = draws["init_kinds"][i]
        init = _initial_depth(kind, draws["init_seeds"][i], scene.rgb, scene.depth, estimate)
        seed = int(rng.integers(2**31))
        if lines:
            sparse = lidar_lines(scene.depth, count, seed=seed)
            counts.append(max(1, schedule_points(sparse, count)))
        else:
            sparse = random_points(scene.depth, count, seed=seed)
            counts.append(max(1, count_points(sparse)))
        window = _crop_window(scene.depth.shape, crop, rng)
        images.append(np.ascontiguousarray(scene.rgb[window]))
        for out, full in ((depths, scene.depth), (sparses, sparse), (inits, init)):
            out.append(np.ascontiguousarray(full[window], dtype=np.float32))
    return images, depths, sparses, inits, counts


def _predict_depth(mde: MonoDepthNet, rgb: np.ndarray) -> np.ndarray:
    """The frozen MDE's D0 of one whole H x W x 3 uint8 image (H x W metres)."""
    device = next(mde.parameters()).device
    image = torch.from_numpy(rgb).permute(2, 0, 1)[None].float().to(device) / 255
    with torch.no_grad():
        return mde(image)[0, 0].float().cpu().numpy()


def _once(estimate: Callable[[np.ndarray], np.ndarray]) -> Callable[[np.ndarray], np.ndarray]:
    """``estimate`` run on its first call only: the crops of one scene share its MDE depth."""
    done: list[np.ndarray] = []

    def call(rgb: np.ndarray) -> np.ndarray:
        if not done:
            done.append(estimate(rgb))
        return done[0]

    return call


def _initial_depth(
    kind: str,
    seed: int,
    rgb: np.ndarray,
    gt: np.ndarray,
    estimate: Callable[[np.ndarray], np.ndarray] | None,
) -> np.ndarray:
    """One sample's D0 (H x W metres) of ``kind``, made by its D0 source's builder.

    ``estimate`` is the frozen MDE on a whole image (None: no MDE, and "mde" samples take
    :data:`MDE_FALLBACK`); simulated kinds use ``seed``.
    """
    if kind == "mde" and estimate is None:
        kind = MDE_FALLBACK
    return D0_SOURCES[kind].build(rgb, gt, seed=seed, estimate=estimate)


def _crop_window(
    shape: tuple[int, int], crop: tuple[int, int], rng: np.random.Generator
) -> tuple[slice, slice]:
    """A random (H, W) window inside an image of ``shape``."""
    top = int(rng.integers(0, shape[0] - crop[0] + 1))
    left = int(rng.integers(0, shape[1] - crop[1] + 1))
    return slice(top, top + crop[0]), slice(left, left + crop[1])


def _batch(
    config: TrainConfig, step: int, rank: int, mde: MonoDepthNet | None = None
) -> dict[str, Any]:
    """Render the batch of ``step`` for process ``rank`` (deterministic).

    A density-matched batch carries its D0 (``"init"``, made on the whole scene with
    ``mde``); the others carry each sample's D0 kind and seed, made from the crop.
    """
    if config.stage == "sdr" and config.density_matched:
        return _density_matched_batch(config, step, rank, mde)
    scene_config = SceneConfig(height=config.height, width=config.width)
    rng = np.random.default_rng([config.seed, step, rank])
    images, depths, sparses, counts = [], [], [], []
    for i in range(config.batch_size):
        mixed = config.seed * 1_000_003 + step * 9973 + rank * 101 + i
        scene_seed = mixed % VALIDATION_SEED_START  # validation and evaluation never seen
        scene = generate_scene(scene_seed, scene_config)
        rgb, depth = _random_crop(scene.rgb, scene.depth, config.crop, rng)
        images.append(torch.from_numpy(rgb).permute(2, 0, 1).float() / 255)
        depths.append(torch.from_numpy(depth)[None])
        if config.stage == "sdr":
            sparse, s = sample_sparse(depth, rng, config)
            sparses.append(torch.from_numpy(sparse)[None])
            counts.append(s)
    batch: dict[str, Any] = {
        "image": torch.stack(images),
        "depth": torch.stack(depths),
    }
    if config.stage == "sdr":
        batch["sparse"] = torch.stack(sparses)
        height, width = depths[0].shape[-2:]
        batch["schedule"] = iteration_schedule(height, width, min(counts), config.mspn)
        batch.update(_init_draws(config, rng, config.batch_size))
    return batch


def _density_matched_batch(
    config: TrainConfig, step: int, rank: int, mde: MonoDepthNet | None
) -> dict[str, Any]:
    """A step of density-matched crops; the schedule is the whole scene's (eq. 13)."""
    rng = np.random.default_rng([config.seed, step, rank])
    images, depths, sparses, inits, counts = _density_matched_samples(config, step, rank, rng, mde)
    return {
        "image": torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 255,
        "depth": torch.from_numpy(np.stack(depths))[:, None],
        "sparse": torch.from_numpy(np.stack(sparses))[:, None],
        "init": torch.from_numpy(np.stack(inits))[:, None],
        "schedule": iteration_schedule(config.height, config.width, min(counts), config.mspn),
    }


def _init_draws(config: TrainConfig, rng: np.random.Generator, n: int) -> dict[str, list]:
    """Each sample's D0 kind (drawn by ``init_sources`` weight) and its simulation seed."""
    kinds = [kind for kind, _ in config.init_sources]
    weights = np.array([weight for _, weight in config.init_sources], dtype=np.float64)
    picks = rng.choice(len(kinds), size=n, p=weights / weights.sum())
    return {
        "init_kinds": [kinds[int(i)] for i in picks],
        "init_seeds": [int(v) for v in rng.integers(2**31, size=n)],
    }


def _setup_distributed(device: torch.device) -> tuple[int, int]:
    """(rank, world size); initialises the process group under torchrun."""
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return 0, 1
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return dist.get_rank(), dist.get_world_size()


def _lr_factor(step: int, config: TrainConfig) -> float:
    """Step schedule: halve the learning rate at each milestone fraction of the run."""
    return 0.5 ** sum(step >= m * config.steps for m in config.lr_milestones)


def _save_state(
    path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, step: int, config: TrainConfig
) -> None:
    """Resumable state as safetensors (no pickle): weights, optimiser moments, step."""
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    opt = optimizer.state_dict()
    for index, state in opt["state"].items():
        for name, value in state.items():
            tensors[f"optim.{index}.{name}"] = torch.as_tensor(value).detach().cpu().contiguous()
    metadata = {
        "step": str(step),
        "param_groups": json.dumps(opt["param_groups"]),
        "config": json.dumps(dataclasses.asdict(config)),
    }
    tmp = path.with_suffix(".tmp")
    save_file(tensors, str(tmp), metadata=metadata)
    tmp.replace(path)


def _load_state(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer) -> int:
    """Restore what :func:`_save_state` wrote; returns the step to continue from."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata()
    tensors = load_file(str(path))
    model.load_state_dict(
        {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}, strict=True
    )
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, index, name = key.split(".", 2)
            state.setdefault(int(index), {})[name] = value
    groups = json.loads(metadata["param_groups"])
    for group in groups:
        group["betas"] = tuple(group["betas"])  # JSON turned the tuple into a list
    optimizer.load_state_dict({"state": state, "param_groups": groups})
    return int(metadata["step"])


def _build(config: TrainConfig, device: torch.device) -> tuple[nn.Module, MonoDepthNet | None]:
    """The trainable module and (stage "sdr") the frozen MDE."""
    torch.manual_seed(config.seed)
    if config.stage == "mde":
        net = MonoDepthNet(config.mde)
        if config.init_dir:
            net = load_module(
                Path(config.init_dir) / "mde.safetensors", "mde", MonoDepthConfig, MonoDepthNet
            )
        return net.to(device), None
    guidance, mspn = GuidanceNet(config.guidance), MSPN(config.mspn)
    if config.mspn_init == "refiner":
        for layer in mspn.layers:
            layer.init_as_refiner()
    if config.init_dir:
        folder = Path(config.init_dir)
        guidance = load_module(
            folder / "guidance.safetensors", "guidance", GuidanceConfig, GuidanceNet
        )
        if config.guidance not in (GuidanceConfig(), guidance.config):
            raise ValueError(
                f"the guidance network in {folder} has its own configuration "
                f"({guidance.config}); drop the guidance options or the init_dir"
            )
    if config.init_dir or config.distill_from:
        folder = Path(config.init_dir or config.distill_from)
        # The run's MSPNConfig (schedule, backend) governs; the weights must fit it.
        mspn.load_state_dict(
            load_module(folder / "mspn.safetensors", "mspn", MSPNConfig, MSPN).state_dict()
        )
    if config.distill_from:
        mspn.requires_grad_(False)  # the teacher's layers: what the student must serve
    mde = None
    if config.mde_checkpoint and Path(config.mde_checkpoint).is_file():
        mde = load_module(config.mde_checkpoint, "mde", MonoDepthConfig, MonoDepthNet, device)
        mde.requires_grad_(False)
    elif any(kind == "mde" and weight > 0 for kind, weight in config.init_sources):
        logger.warning(
            "no MDE checkpoint at %s: D0 of 'mde' samples is simulated (%r)",
            config.mde_checkpoint,
            MDE_FALLBACK,
        )
    return SDRModel(guidance, mspn).to(device), mde


def _loss_step(
    model: nn.Module,
    mde: MonoDepthNet | None,
    batch: dict,
    config: TrainConfig,
    device: torch.device,
    teacher: GuidanceNet | None = None,
) -> torch.Tensor:
    """Forward one batch and return the loss (with ``teacher``: the distillation loss)."""
    image = batch["image"].to(device)
    gt = batch["depth"].to(device)
    if config.stage == "mde":
        pred = model(image)
        return silog_loss(pred, gt) + l1_l2_loss(pred, gt)
    sparse = batch["sparse"].to(device)
    if "init" in batch:
        init = batch["init"].to(device)
    else:
        init = _initial_depths(mde, image, gt, batch["init_kinds"], batch["init_seeds"])
    if teacher is not None:
        return distillation_loss(model, teacher, image, sparse, init)
    every = config.iteration_loss_weight > 0
    coverage = config.mask_coverage_weight > 0 and config.use_mask
    confidence = config.mask_confidence_weight > 0
    depths = model(
        image, sparse, init, batch["schedule"], config.grad_iterations, config.use_mask, every,
        coverage, confidence,
    )  # fmt: skip
    if config.loss == "silog":
        loss_fn = silog_loss
    elif config.edge_loss_weight > 0:
        loss_fn = functools.partial(
            l1_l2_loss, weight=depth_edge_weights(gt, config.edge_loss_weight)
        )
    else:
        loss_fn = l1_l2_loss
    loss = torch.zeros((), device=device)
    if confidence:
        mask, layer1, aligned = depths[-3:]
        del depths[-3:]
        k = mask.shape[0] // gt.shape[0]  # masks of k iterations, iteration-major
        term = mask_confidence_loss(
            mask, layer1, aligned, gt.repeat(k, 1, 1, 1), sparse.repeat(k, 1, 1, 1)
        )
        loss = loss + config.mask_confidence_weight * term
    if coverage:
        uncovered = depths.pop()
        loss = loss + config.mask_coverage_weight * uncovered.mean()
    loss = loss + loss_fn(depths[-1], gt)
    if every:
        loss = (
            loss
            + config.iteration_loss_weight
            * torch.stack([loss_fn(depth, gt) for depth in depths]).mean()
        )
    return loss


def _initial_depths(
    mde: MonoDepthNet | None,
    image: torch.Tensor,
    gt: torch.Tensor,
    kinds: list[str],
    seeds: list[int],
) -> torch.Tensor:
    """D0 of every sample (B x 1 x H x W metres) by its drawn kind.

    ``"mde"`` runs the frozen bundled MDE, once on the whole batch on the device (the
    ``"mde"`` source's estimator, batched; :data:`MDE_FALLBACK` when there is none); the
    other kinds are their D0 source's simulation from the ground truth with the sample's seed.
    """
    predicted = None
    if mde is not None and "mde" in kinds:
        with torch.no_grad():
            predicted = mde(image).float()
    out = []
    for i, (kind, seed) in enumerate(zip(kinds, seeds, strict=True)):
        if kind == "mde" and predicted is not None:
            out.append(predicted[i : i + 1])
            continue
        source = D0_SOURCES[MDE_FALLBACK if kind == "mde" else kind]
        d0 = source.build(gt=gt[i, 0].float().cpu().numpy(), seed=seed)
        out.append(torch.from_numpy(d0)[None, None].to(gt))
    return torch.cat(out, dim=0)


def _export(module: nn.Module, config: TrainConfig, out: Path, step: int, wall_s: float) -> None:
    """Write the shippable per-component safetensors files.

    Each file records its module's own configuration: with ``init_dir`` that is the one the
    weights came with, which the run's options may not repeat.
    """
    extra = {
        "steps": str(step),
        "wall_time_s": f"{wall_s:.0f}",
        "train_config": json.dumps(dataclasses.asdict(config)),
    }
    if config.stage == "mde":
        assert isinstance(module, MonoDepthNet)
        save_module(out / "mde.safetensors", module, module.config, "mde", extra)
    else:
        assert isinstance(module, SDRModel)
        guidance = module.guidance
        save_module(out / "guidance.safetensors", guidance, guidance.config, "guidance", extra)
        save_module(out / "mspn.safetensors", module.mspn, module.mspn.config, "mspn", extra)


def _out_of_time(config: TrainConfig, began: float, world: int, device: torch.device) -> bool:
    """Whether the run's time limit has passed; under DDP every rank gets rank 0's answer."""
    if config.time_limit_s is None:
        return False
    flag = torch.tensor([float(time.perf_counter() - began > config.time_limit_s)], device=device)
    if world > 1:  # every rank must stop after the same step
        dist.broadcast(flag, src=0)
    return bool(flag.item())


def _steps_iter(start: int, total: int, show: bool) -> Iterator[int]:
    try:
        from tqdm import tqdm
    except ImportError:
        return iter(range(start, total))
    return iter(tqdm(range(start, total), initial=start, total=total, disable=not show))


def train(config: TrainConfig, device: torch.device | str | None = None) -> Path:
    """Run (or resume) training; returns the output folder.

    Args:
        config: the run's settings.
        device: None picks CUDA when available, else CPU.

    Returns:
        ``out_dir``, holding the exported safetensors, ``state.safetensors`` and ``log.csv``.
    """
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    rank, world = _setup_distributed(device)
    if device.type == "cuda" and world > 1:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    out = Path(config.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model, mde = _build(config, device)
    teacher = None if config.distill_from is None else load_teacher(config.distill_from, device)
    if config.stage == "sdr":
        # A backend with its own backward (native_grad) keeps only each iteration's small
        # inputs; the torch backends store p^2 x H x W tensors per iteration and recompute them.
        backend = resolve_backend(config.mspn.backend, device, requires_grad=True)
        model.mspn.set_grad_checkpointing(not BACKENDS[backend].custom_backward)
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad],
        lr=config.lr,
        weight_decay=config.weight_decay,
    )
    state_path = out / "state.safetensors"
    start = _load_state(state_path, model, optimizer) if state_path.is_file() else 0
    trained = model
    if world > 1:
        # static_graph: every MSPN iteration reuses the layer's parameters inside its own
        # activation checkpoint, so their gradient hooks fire several times per step.
        trained = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None, static_graph=True
        )
    log_path = out / "log.csv"
    began = time.perf_counter()
    if rank == 0 and not log_path.exists():
        log_path.write_text("step,loss,lr,seconds\n")
    running: list[float] = []
    for step in _steps_iter(start, config.steps, show=rank == 0):
        for group in optimizer.param_groups:
            group["lr"] = config.lr * _lr_factor(step, config)
        batch = _batch(config, step, rank, mde)
        use_amp = config.amp and device.type == "cuda"
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
            loss = _loss_step(trained, mde, batch, config, device, teacher)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        running.append(float(loss.detach()))
        done = step + 1
        out_of_time = _out_of_time(config, began, world, device)
        if rank == 0 and (done % config.log_every == 0 or done == config.steps or out_of_time):
            with log_path.open("a", newline="") as handle:
                csv.writer(handle).writerow(
                    [
                        done,
                        f"{np.mean(running):.5f}",
                        f"{optimizer.param_groups[0]['lr']:.2e}",
                        f"{time.perf_counter() - began:.1f}",
                    ]
                )
            logger.info("step %d loss %.4f", done, np.mean(running))
            running = []
        last = done == config.steps or out_of_time
        if rank == 0 and (done % config.checkpoint_every == 0 or last):
            _save_state(state_path, model, optimizer, done, config)
            _export(model, config, out, done, time.perf_counter() - began)
        if out_of_time:
            logger.info("time limit of %.0f s reached after step %d", config.time_limit_s, done)
            break
    if world > 1:
        dist.barrier()
    return out
