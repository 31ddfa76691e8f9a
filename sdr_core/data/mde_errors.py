"""Simulated monocular-depth errors, so the refinement learns to fix any MDE (Fig. 10b).

Starting from the ground truth, each sample gets: a random global scale and shift, a smooth
low-frequency multiplicative warp, a blur that bleeds across depth edges (as real MDEs do at
object boundaries), and occasionally a large regional error (a wrongly placed object).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

__all__ = ["MDEErrorConfig", "simulate_mde_errors"]


@dataclass(frozen=True)
class MDEErrorConfig:
    """Ranges of the simulated error components."""

    scale_range: tuple[float, float] = (0.7, 1.35)  # global multiplicative scale (log-uniform)
    shift_m: float = 0.3  # global shift, uniform in [-shift_m, shift_m]
    warp_strength: float = 0.15  # std of the log-multiplier of the low-frequency warp
    warp_grid: int = 4  # control points per axis of the warp
    max_blur_px: float = 6.0  # std of the edge-bleeding Gaussian blur, uniform in [0, max]
    region_probability: float = 0.3  # chance of one large regional error
    region_scale: tuple[float, float] = (0.7, 1.4)  # multiplier inside that region
    min_depth_m: float = 0.1
    max_depth_m: float = 12.0


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
        d = _gaussian_blur(d, uniform(0.0, config.max_blur_px))
        grid = torch.randn(1, 1, config.warp_grid, config.warp_grid, generator=generator)
        warp = F.interpolate(
            grid.to(d) * config.warp_strength, size=(h, w), mode="bicubic", align_corners=True
        )
        d = d * torch.exp(warp) * scale + uniform(-config.shift_m, config.shift_m)
        if float(torch.rand((), generator=generator)) < config.region_probability:
            y0, x0 = int(uniform(0, h * 0.7)), int(uniform(0, w * 0.7))
            y1, x1 = y0 + int(uniform(h * 0.15, h * 0.4)), x0 + int(uniform(w * 0.15, w * 0.4))
            region = torch.zeros_like(d, dtype=torch.bool)
            region[..., y0:y1, x0:x1] = True
            d = torch.where(region, d * uniform(*config.region_scale), d)
        out.append(d.clamp(config.min_depth_m, config.max_depth_m))
    return torch.cat(out, dim=0)
