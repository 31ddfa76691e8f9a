"""Pre-filling the initial depth D0 from the sparse depths before refinement (a departure).

MSPN's output at a pixel the mask has reached is a convex combination of its window's depths
(eqs. 9-10), so a D0 that is off by a global scale can only be corrected by replacing its
values, and its detail is lost where the mask front passes (see checkpoints/README.md). This
module aligns D0 to the measurements S *before* the guidance network and MSPN see it, so the
refinement starts from a map that already agrees with S; MSPN's equations are unchanged, only
its input D0 is. It also makes relative-depth estimators (unknown scale and shift) usable.

Modes (``MSPNConfig.init_alignment``; the checkpoint's config says which one its weights were
trained with):

* ``"none"``: D0 as given (the paper).
* ``"median_scale"``: one global scale, the median of S / D0 over the measurements: robust
  from one measurement on (a scale and shift fitted to a handful of points can be far off),
  and in the ratio domain (``MSPNConfig.domain``) the same as starting rho at the median
  log-ratio instead of 0.
* ``"shrunk_median_scale"``: the median scale raised to ``n / (n + k)`` for n measurements
  (``k = MSPNConfig.alignment_prior_points``): few measurements set the global scale only in
  part, and the rest of their log-ratio is left for the layers to propagate as far as the
  evidence allows (:func:`~sdr_core.baselines.shrunk_median_scale`).
* ``"least_squares"``: one global scale and shift fitted to S (``baselines.fit_scale_shift``).
* ``"residual_idw"``: the global fit plus the residuals ``S - aligned D0`` spread over the
  image from the nearest measurements by inverse-distance weighting, the "LS + IDW
  residuals" baseline. Pixel by pixel from the nearest measurements, in the spirit of Prior
  Depth Anything's coarse metric alignment (Wang et al., 2025).

Both alignments reuse the baselines' code, so the pre-filled D0 of the refinement is exactly
the baseline it is compared against.
"""

from __future__ import annotations

from typing import Literal, get_args

import numpy as np
import torch

from . import baselines

__all__ = ["ALIGNMENTS", "InitAlignment", "align_init_depth"]

InitAlignment = Literal[
    "none", "median_scale", "shrunk_median_scale", "least_squares", "residual_idw"
]
ALIGNMENTS: tuple[str, ...] = get_args(InitAlignment)


def _align_one(
    init_depth: np.ndarray, sparse: np.ndarray, mode: str, prior_points: float
) -> np.ndarray:
    if mode == "median_scale":
        return baselines.median_scale(init_depth, sparse)
    if mode == "shrunk_median_scale":
        return baselines.shrunk_median_scale(init_depth, sparse, prior_points)
    if mode == "least_squares":
        return baselines.least_squares_scale_shift(init_depth, sparse)
    return baselines.residual_interpolation(init_depth, sparse, "idw")


def align_init_depth(
    init_depth: torch.Tensor,
    sparse: torch.Tensor,
    mode: InitAlignment = "none",
    prior_points: float = baselines.SHRINK_PRIOR_POINTS,
) -> torch.Tensor:
    """D0 aligned to S per sample, on the input's device and dtype.

    Args:
        init_depth: B x 1 x H x W, metres, > 0 (D0).
        sparse: B x 1 x H x W, metres; 0 = no measurement (S).
        mode: one of :data:`ALIGNMENTS`. A sample without measurements keeps its D0.
        prior_points: k of ``"shrunk_median_scale"`` (ignored by the other modes).

    Returns:
        B x 1 x H x W, metres, > 0; ``init_depth`` itself for ``"none"``. No gradient flows
        through the alignment (D0 and S are inputs, not learned).

    Raises:
        ValueError: for an unknown mode or mismatched shapes.
    """
    if mode not in ALIGNMENTS:
        raise ValueError(f"init alignment must be one of {ALIGNMENTS}, got {mode!r}")
    if init_depth.shape != sparse.shape or init_depth.dim() != 4 or init_depth.shape[1] != 1:
        raise ValueError(
            f"init_depth and sparse must both be B x 1 x H x W, got {tuple(init_depth.shape)} "
            f"and {tuple(sparse.shape)}"
        )
    if mode == "none":
        return init_depth
    d0 = init_depth.detach().float().cpu().numpy()
    s = sparse.detach().float().cpu().numpy()
    out = np.stack(
        [_align_one(d0[i, 0], s[i, 0], mode, prior_points)[None] for i in range(d0.shape[0])]
    )
    return torch.from_numpy(out).to(device=init_depth.device, dtype=init_depth.dtype)
