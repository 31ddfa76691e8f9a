"""Classical baselines that MSPN is compared against.

All take the monocular depth estimate ``init_depth`` (D0 in the paper) and the sparse
depth ``sparse`` (S), both HxW metres, and return an HxW float32 map in metres that is
> 0 everywhere. None of them uses torch.
"""

from __future__ import annotations

import logging
import math
from typing import Any, Literal, Protocol

import numpy as np
from scipy.spatial import cKDTree

from sdr_core.validation import as_depth_map, check_same_shape

logger = logging.getLogger(__name__)

__all__ = [
    "MIN_DEPTH_M",
    "fit_scale_shift",
    "least_squares_scale_shift",
    "mde_only",
    "SHRINK_PRIOR_POINTS",
    "median_scale",
    "shrunk_median_scale",
    "mspn_without_mask",
    "residual_interpolation",
]

# Lower clip (metres) of every baseline output, so outputs stay > 0 even when an affine
# fit extrapolates below zero.
MIN_DEPTH_M = 1e-3
# A fit needs this many points to solve for both scale and shift; fewer use the median.
_MIN_POINTS_FOR_SHIFT = 3


class _Refiner(Protocol):
    """What :func:`mspn_without_mask` needs of a pipeline (keeps this module torch-free)."""

    def refine(self, image: np.ndarray, sparse: np.ndarray, **kwargs: Any) -> Any: ...


def _check_init_depth(init_depth: Any, name: str = "init_depth") -> np.ndarray:
    """Return a dense depth map (D0) as HxW float32, finite and > 0 everywhere.

    Unlike sparse maps, it has no missing pixels. ``name`` names it in the error messages.
    """
    what = "the MDE output D0" if name == "init_depth" else f"the dense map {name}"
    array = np.asarray(init_depth)
    if np.issubdtype(array.dtype, np.floating):
        n_nonfinite = int(np.count_nonzero(~np.isfinite(array)))
        if n_nonfinite:
            raise ValueError(
                f"{name} has {n_nonfinite} NaN/inf values; {what} must be finite everywhere"
            )
    depth = as_depth_map(array, name)
    n_nonpositive = int(np.count_nonzero(depth <= 0))
    if n_nonpositive:
        raise ValueError(f"{name} has {n_nonpositive} values <= 0; {what} must be > 0 everywhere")
    return depth


def _check_inputs(init_depth: Any, sparse: Any) -> tuple[np.ndarray, np.ndarray]:
    """D0 (finite, > 0) and S (0 = missing) as HxW float32 maps of the same size."""
    depth = _check_init_depth(init_depth)
    measurements = as_depth_map(sparse, "sparse")  # NaN/negative = missing, as elsewhere
    check_same_shape(depth, measurements, "init_depth", "sparse")
    return depth, measurements


def mde_only(init_depth: Any, sparse: Any) -> np.ndarray:
    """Return D0 unchanged (the "MDE only" row): sparse depth is ignored.

    Args:
        init_depth: HxW float, metres, finite and > 0 (D0).
        sparse: HxW float, metres; 0 = missing (S). Only checked for shape.

    Returns:
        HxW float32 copy of `init_depth`, metres.
    """
    depth, _ = _check_inputs(init_depth, sparse)
    return depth


def fit_scale_shift(init_depth: Any, sparse: Any) -> tuple[float, float]:
    """Fit ``S ~ a * D0 + b`` over the measured pixels.

    With >= 3 measurements, ordinary least squares minimising
    ``sum((a * D0 + b - S) ** 2)``. With 1-2 measurements, or when that fit is degenerate
    (D0 constant over the measured pixels, or ``a <= 0``), ``a = median(S / D0)`` and
    ``b = 0``. With no measurement, ``a = 1``, ``b = 0``.

    Args:
        init_depth: HxW float, metres, finite and > 0 (D0).
        sparse: HxW float, metres; 0 = missing (S).

    Returns:
        ``(a, b)``: scale (unitless) and shift (metres).
    """
    depth, measurements = _check_inputs(init_depth, sparse)
    return _fit(depth, measurements)


def _fit(depth: np.ndarray, measurements: np.ndarray) -> tuple[float, float]:
    measured = measurements > 0
    d0 = depth[measured].astype(np.float64)
    s = measurements[measured].astype(np.float64)
    if s.size == 0:
        return 1.0, 0.0
    median_fit = (float(np.median(s / d0)), 0.0)
    if s.size < _MIN_POINTS_FOR_SHIFT:
        return median_fit
    d0_centred = d0 - d0.mean()
    variance = float(np.dot(d0_centred, d0_centred))
    # D0 within float32 rounding of a constant: the shift and scale are not identifiable.
    if variance <= (1e-6 * float(np.abs(d0).max())) ** 2 * s.size:
        logger.debug("D0 is constant over the %d measured pixels; using median scale", s.size)
        return median_fit
    scale = float(np.dot(d0_centred, s - s.mean())) / variance
    if scale <= 0:
        logger.debug("least-squares scale %.3g <= 0; using median scale", scale)
        return median_fit
    return scale, float(s.mean() - scale * d0.mean())


#: k of :func:`shrunk_median_scale` (``MSPNConfig.alignment_prior_points``): chosen on the
#: validation split with the shipped weights (checkpoints/README.md).
SHRINK_PRIOR_POINTS = 1.0


def _median_ratio(depth: np.ndarray, measurements: np.ndarray) -> tuple[float, int]:
    """(median of S / D0 over the measured pixels, how many there are); (1, 0) without any."""
    measured = measurements > 0
    count = int(measured.sum())
    if count == 0:
        return 1.0, 0
    return float(np.median(measurements[measured].astype(np.float64) / depth[measured])), count


def median_scale(init_depth: Any, sparse: Any) -> np.ndarray:
    """Align D0 to S with one global scale, the median of ``S / D0`` over the measurements.

    Args:
        init_depth: HxW float, metres, finite and > 0 (D0).
        sparse: HxW float, metres; 0 = missing (S).

    Returns:
        HxW float32, metres: ``median(S / D0) * D0``; D0 unchanged when S is empty.
    """
    depth, measurements = _check_inputs(init_depth, sparse)
    ratio, count = _median_ratio(depth, measurements)
    return _affine(depth, ratio, 0.0) if count else depth.astype(np.float32)


def shrunk_median_scale(
    init_depth: Any, sparse: Any, prior_points: float = SHRINK_PRIOR_POINTS
) -> np.ndarray:
    """:func:`median_scale` trusting few measurements' scale only in part (a departure).

    With ``n`` measurements the scale is ``median(S / D0) ** (n / (n + prior_points))``: the
    log of the median ratio shrunk towards 0 ("D0 is metric") like a mean with
    ``prior_points`` pseudo-observations of ratio 1. One point of a poor D0 can misjudge the
    whole image's scale (checkpoints/README.md: 1 point, bundled MDE); what the shrinkage
    leaves, ``log(S / aligned D0)`` at the measurements, is for the refinement to spread as
    far as the evidence allows. ``prior_points = 0`` is :func:`median_scale`.

    Args:
        init_depth: HxW float, metres, finite and > 0 (D0).
        sparse: HxW float, metres; 0 = missing (S).
        prior_points: k >= 0, how many measurements count as much as the prior.

    Returns:
        HxW float32, metres; D0 unchanged when S is empty.

    Raises:
        ValueError: for a negative or non-finite ``prior_points`` (and as median_scale).
    """
    if not np.isfinite(prior_points) or prior_points < 0:
        raise ValueError(f"prior_points must be finite and >= 0, got {prior_points}")
    depth, measurements = _check_inputs(init_depth, sparse)
    ratio, count = _median_ratio(depth, measurements)
    if count == 0:
        return depth.astype(np.float32)
    return _affine(depth, ratio ** (count / (count + prior_points)), 0.0)


def least_squares_scale_shift(init_depth: Any, sparse: Any) -> np.ndarray:
    """Align D0 to S with one global scale and shift (see :func:`fit_scale_shift`).

    Args:
        init_depth: HxW float, metres, finite and > 0 (D0).
        sparse: HxW float, metres; 0 = missing (S).

    Returns:
        HxW float32, metres: ``max(a * D0 + b, 1e-3)``; D0 unchanged when S is empty.
    """
    depth, measurements = _check_inputs(init_depth, sparse)
    scale, shift = _fit(depth, measurements)
    return _affine(depth, scale, shift)


def _affine(depth: np.ndarray, scale: float, shift: float) -> np.ndarray:
    aligned = scale * depth.astype(np.float64) + shift
    return np.maximum(aligned, MIN_DEPTH_M).astype(np.float32)


def residual_interpolation(
    init_depth: Any,
    sparse: Any,
    method: Literal["idw", "gaussian"] = "idw",
    *,
    k: int = 8,
    power: float = 2.0,
    sigma_px: float | None = None,
) -> np.ndarray:
    """LS-aligned D0 plus residuals interpolated from the k nearest measurements.

    The residuals ``r_i = S_i - (a * D0_i + b)`` at the measured pixels are spread over
    the image as a weighted mean over the ``min(k, s)`` nearest measurements (Euclidean
    distance ``d`` in pixels, via ``scipy.spatial.cKDTree``):

    * ``"idw"``: weights ``1 / d ** power`` (inverse-distance weighting);
    * ``"gaussian"``: weights ``exp(-d**2 / (2 * sigma_px**2))``, normalised over the k
      neighbours, so far from every measurement it tends to the nearest residual rather
      than to 0/0.

    Measured pixels are then set to S exactly.

    Args:
        init_depth: HxW float, metres, finite and > 0 (D0).
        sparse: HxW float, metres; 0 = missing (S).
        method: Weighting kernel, ``"idw"`` or ``"gaussian"``.
        k: Maximum number of neighbours, >= 1.
        power: IDW exponent, > 0.
        sigma_px: Gaussian width in pixels, > 0. None uses the mean spacing between
            measurements, ``sqrt(H * W / s)``.

    Returns:
        HxW float32, metres, >= 1e-3; equal to S at measured pixels. D0 unchanged when S
        is empty.

    Raises:
        ValueError: For an unknown `method`, out-of-range `k`, `power` or `sigma_px`, or
            malformed inputs.
    """
    if method not in ("idw", "gaussian"):
        raise ValueError(f"method must be 'idw' or 'gaussian', got {method!r}")
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be an integer >= 1, got {k!r}")
    if not power > 0:
        raise ValueError(f"power must be > 0, got {power!r}")
    if sigma_px is not None and not (math.isfinite(sigma_px) and sigma_px > 0):
        raise ValueError(f"sigma_px must be finite and > 0, got {sigma_px!r}")

    depth, measurements = _check_inputs(init_depth, sparse)
    scale, shift = _fit(depth, measurements)
    aligned = scale * depth.astype(np.float64) + shift
    measured = measurements > 0
    n_points = int(np.count_nonzero(measured))
    if n_points == 0:
        return _affine(depth, scale, shift)

    point_rows, point_cols = np.nonzero(measured)
    residual = measurements[measured].astype(np.float64) - aligned[measured]
    tree = cKDTree(np.column_stack([point_rows, point_cols]).astype(np.float64))
    height, width = depth.shape
    grid_rows, grid_cols = np.mgrid[0:height, 0:width]
    queries = np.column_stack([grid_rows.ravel(), grid_cols.ravel()]).astype(np.float64)
    n_neighbours = min(k, n_points)
    distance, index = tree.query(queries, k=n_neighbours, workers=-1)
    distance = distance.reshape(-1, n_neighbours)  # (H*W, k); k=1 returns 1-D arrays
    index = index.reshape(-1, n_neighbours)

    if method == "idw":
        # Measured pixels (d = 0) are overwritten with S below, so the inf weight there
        # is avoided rather than handled.
        weight = 1.0 / np.maximum(distance, 1e-12) ** power
    else:
        sigma = sigma_px if sigma_px is not None else math.sqrt(height * width / n_points)
        # Relative to the nearest neighbour so the largest weight is 1 and none underflow.
        weight = np.exp(-(distance**2 - distance[:, :1] ** 2) / (2.0 * sigma**2))
    spread = np.sum(weight * residual[index], axis=1) / np.sum(weight, axis=1)

    refined = aligned + spread.reshape(height, width)
    refined[measured] = measurements[measured]
    return np.maximum(refined, MIN_DEPTH_M).astype(np.float32)


def mspn_without_mask(
    pipeline: _Refiner,
    image: np.ndarray,
    init_depth: np.ndarray,
    sparse: np.ndarray,
) -> np.ndarray:
    """The paper's mask ablation (Fig. 10d): MSPN with the propagation mask fixed to 1.

    Every pixel is refined from its whole window from the first iteration on, so errors of
    unreliable pixels propagate. Runs the trained networks as they are (an inference-time
    ablation, not a model retrained without the mask).

    Args:
        pipeline: an :class:`~sdr_core.pipeline.SDRPipeline` (anything with ``refine``).
        image: H x W x 3 uint8 RGB.
        init_depth: H x W float32 metres (D0).
        sparse: H x W float32 metres; 0 = missing.

    Returns:
        H x W float32 metres.
    """
    return pipeline.refine(image, sparse, init_depth=init_depth, use_mask=False).depth
