"""Simulated monocular-depth errors, so the refinement learns to fix any MDE (Fig. 10b).

Starting from the ground truth, each sample gets: a random global scale and shift, a tilt of
the depth range (near and far stretched or compressed against each other), a smooth
low-frequency multiplicative warp, a blur that bleeds across depth edges (as real MDEs do at
object boundaries), and occasionally a large regional error (a wrongly placed object).

Three presets (:data:`INIT_DEPTH_PRESETS`) span the qualities of initial depth D0 a user may
bring:

* ``"metric"``: today's metric indoor MDEs (Depth Anything V2 Metric-Indoor, Metric3D v2,
  UniDepth) err mostly by a global scale within about +-10 %, smooth relative errors of a few
  per cent and softened edges: about 0.2-0.4 m RMSE on NYU-size rooms.
* ``"harsh"``: the errors the first released model was trained on (scale 0.7-1.35, shifts of
  0.3 m, 15 % warps, blur up to 6 px, 30 % regional errors): a poor estimator.
* ``"relative"``: a relative-depth MDE turned into metres with an unknown scale and shift
  (scale 0.33-3, shift up to 1 m), with the metric preset's structure errors; useless
  until aligned to the sparse depths.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["INIT_DEPTH_PRESETS", "MDEErrorConfig", "simulate_init_depth", "simulate_mde_errors"]


@dataclass(frozen=True)
class MDEErrorConfig:
    """Ranges of the simulated error components."""

    scale_range: tuple[float, float] = (0.7, 1.35)  # global multiplicative scale (log-uniform)
    shift_m: float = 0.3  # global shift, uniform in [-shift_m, shift_m]
    warp_strength: float = 0.15  # std of the log-multiplier of the low-frequency warp
    warp_grid: int = 4  # control points per axis of the warp
    max_blur_px: float = 6.0  # std of the edge-bleeding Gaussian blur, uniform in [min, max]
    min_blur_px: float = 0.0
    # std of t in d * exp(t * (log d - mean log d)): near and far depths stretched or
    # compressed against each other (a common error of metric MDEs); 0 = none.
    tilt_strength: float = 0.0
    region_probability: float = 0.3  # chance of one large regional error
    region_scale: tuple[float, float] = (0.7, 1.4)  # multiplier inside that region
    min_depth_m: float = 0.1
    max_depth_m: float = 12.0

    def __post_init__(self) -> None:
        lo, hi = self.scale_range
        if not 0 < lo <= hi:
            raise ValueError(f"scale_range must satisfy 0 < lo <= hi, got {self.scale_range}")
        if not 0 <= self.min_blur_px <= self.max_blur_px:
            raise ValueError(
                f"need 0 <= min_blur_px <= max_blur_px, got {self.min_blur_px}, {self.max_blur_px}"
            )
        if not 0.0 <= self.region_probability <= 1.0:
            raise ValueError(f"region_probability must be in [0, 1], got {self.region_probability}")
        for name in ("shift_m", "warp_strength", "tilt_strength"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.warp_grid < 2:
            raise ValueError(f"warp_grid must be >= 2, got {self.warp_grid}")


# Named D0 qualities (see the module docstring). "harsh" is the default config, kept bit for
# bit so the "simulated" evaluation of earlier releases reproduces.
_METRIC_MDE = MDEErrorConfig(
    scale_range=(0.9, 1.1),
    shift_m=0.05,
    warp_strength=0.04,
    warp_grid=4,
    min_blur_px=0.7,
    max_blur_px=2.0,
    tilt_strength=0.05,
    region_probability=0.0,
)
INIT_DEPTH_PRESETS: dict[str, MDEErrorConfig] = {
    "metric": _METRIC_MDE,
    "harsh": MDEErrorConfig(),
    # A relative-depth MDE: the metric model's smooth errors under an unknown scale and shift.
    "relative": dataclasses.replace(_METRIC_MDE, scale_range=(1 / 3, 3.0), shift_m=1.0),
}


def _gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur with reflect padding (B x 1 x H x W)."""
    if sigma < 0.3:
        return x
    radius = max(1, int(3 * sigma))
    radius = min(radius, x.shape[-1] // 2 - 1, x.shape[-2] // 2 - 1)
    offsets = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    kernel = torch.exp(-0.5 * (offsets / sigma) ** 2)
    kernel = kernel / kernel.sum()
    x = F.conv2d(F.pad(x, (radius, radius, 0, 0), mode="reflect"), kernel.view(1, 1, 1, -1))
    return F.conv2d(F.pad(x, (0, 0, radius, radius), mode="reflect"), kernel.view(1, 1, -1, 1))


def simulate_mde_errors(
    depth: torch.Tensor, generator: torch.Generator, config: MDEErrorConfig | None = None
) -> torch.Tensor:
    """A plausible MDE output for each ground-truth map in the batch.

    Args:
        depth: B x 1 x H x W ground truth, metres; must be > 0 (dense synthetic depth).
        generator: CPU generator, so the result is deterministic by seed.
        config: error ranges.

    Returns:
        B x 1 x H x W float, metres, in [min_depth_m, max_depth_m].
    """
    config = config or MDEErrorConfig()
    b, _, h, w = depth.shape
    out = []
    for i in range(b):
        d = depth[i : i + 1]

        def uniform(lo: float, hi: float) -> float:
            return lo + (hi - lo) * float(torch.rand((), generator=generator))

        lo, hi = config.scale_range
        scale = math.exp(uniform(math.log(lo), math.log(hi)))  # log-uniform
        d = _gaussian_blur(d, uniform(config.min_blur_px, config.max_blur_px))
        grid = torch.randn(1, 1, config.warp_grid, config.warp_grid, generator=generator)
        warp = F.interpolate(
            grid.to(d) * config.warp_strength, size=(h, w), mode="bicubic", align_corners=True
        )
        if config.tilt_strength > 0:  # drawn only then, so "harsh" keeps its random stream
            log_d = torch.log(d.clamp_min(config.min_depth_m))
            tilt = float(torch.randn((), generator=generator)) * config.tilt_strength
            warp = warp + tilt * (log_d - log_d.mean())
        d = d * torch.exp(warp) * scale + uniform(-config.shift_m, config.shift_m)
        if float(torch.rand((), generator=generator)) < config.region_probability:
            y0, x0 = int(uniform(0, h * 0.7)), int(uniform(0, w * 0.7))
            y1, x1 = y0 + int(uniform(h * 0.15, h * 0.4)), x0 + int(uniform(w * 0.15, w * 0.4))
            region = torch.zeros_like(d, dtype=torch.bool)
            region[..., y0:y1, x0:x1] = True
            d = torch.where(region, d * uniform(*config.region_scale), d)
        out.append(d.clamp(config.min_depth_m, config.max_depth_m))
    return torch.cat(out, dim=0)


def simulate_init_depth(depth_m: np.ndarray, quality: str, seed: int) -> np.ndarray:
    """D0 of one quality preset for a ground-truth map (numpy in, numpy out).

    Pixels without ground truth (0, NaN) take the nearest valid depth first, so D0 is dense.

    Args:
        depth_m: H x W ground truth, metres; 0 or NaN = missing; at least one valid pixel.
        quality: a key of :data:`INIT_DEPTH_PRESETS` (``"metric"``, ``"harsh"``,
            ``"relative"``).
        seed: the simulation seed; the same (map, quality, seed) gives the same D0.

    Returns:
        H x W float32 metres, finite and > 0.

    Raises:
        ValueError: for an unknown quality or a map without any valid pixel.
    """
    from scipy import ndimage

    if quality not in INIT_DEPTH_PRESETS:
        raise ValueError(
            f"unknown initial-depth quality {quality!r}; choose one of {sorted(INIT_DEPTH_PRESETS)}"
        )
    gt = np.asarray(depth_m, dtype=np.float32)
    if gt.ndim != 2:
        raise ValueError(f"depth must be H x W, got shape {gt.shape}")
    valid = np.isfinite(gt) & (gt > 0)
    if not valid.any():
        raise ValueError("the depth map has no valid pixel to simulate an initial depth from")
    if valid.all():  # the usual synthetic case: nothing to fill (same values, less work)
        dense = np.ascontiguousarray(gt)
    else:
        nearest = ndimage.distance_transform_edt(
            ~valid, return_distances=False, return_indices=True
        )
        dense = np.ascontiguousarray(gt[tuple(nearest)])
    generator = torch.Generator().manual_seed(int(seed))
    simulated = simulate_mde_errors(
        torch.from_numpy(dense)[None, None], generator, INIT_DEPTH_PRESETS[quality]
    )
    return simulated[0, 0].numpy().astype(np.float32)
