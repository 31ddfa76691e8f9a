"""Depth accuracy metrics of the paper's Table 1.

RMSE and MAE in metres, REL (mean absolute relative error), iRMSE and iMAE on inverse
depth in 1/km (``1000 / depth_m``), and the threshold accuracies delta_k: the fraction of
pixels with ``max(p / g, g / p) < 1.25 ** k`` for k = 1, 2, 3. Everything is computed in
float64 over valid ground-truth pixels only.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from sdr_core.validation import as_depth_map, as_hole_mask, check_same_shape

logger = logging.getLogger(__name__)

__all__ = ["MIN_PREDICTION_M", "compute_metrics"]

# Predictions at valid GT pixels that are <= 0 or non-finite are replaced by this (metres)
# before any metric, so REL, the inverse metrics and delta never divide by zero and a
# broken pixel counts as a large, finite error instead of turning every metric into NaN.
MIN_PREDICTION_M = 1e-3


def _check_numpy_2d(value: Any, name: str) -> np.ndarray:
    if not isinstance(value, np.ndarray):
        raise ValueError(
            f"{name} must be a numpy array, got {type(value).__module__}.{type(value).__name__}"
            " (convert tensors with .detach().cpu().numpy())"
        )
    if value.ndim != 2:
        raise ValueError(f"{name} must be HxW, got shape {value.shape}")
    if not (np.issubdtype(value.dtype, np.integer) or np.issubdtype(value.dtype, np.floating)):
        raise ValueError(f"{name} has dtype {value.dtype}; expected integer or float")
    return value


def compute_metrics(
    pred: np.ndarray, gt: np.ndarray, region: Any | None = None
) -> dict[str, float]:
    """Table 1 metrics of `pred` against `gt` over valid ground-truth pixels.

    A pixel counts when ``gt`` is finite and > 0 there and, if given, ``region`` is True.
    At those pixels, predictions that are <= 0 or non-finite are first replaced by
    ``MIN_PREDICTION_M`` (1e-3 m); this applies to every metric, RMSE and MAE included, so
    all values stay finite.

    Args:
        pred: HxW numpy array, integer or float, metres.
        gt: HxW numpy array, metres; 0, negative, NaN or inf = no ground truth.
        region: Optional HxW bool (or 0/1, 0/255) mask restricting the evaluation, e.g.
            the hole of a hole-filling experiment.

    Returns:
        Dict with exactly these keys (all Python floats):
        ``rmse`` (m), ``mae`` (m), ``rel`` (mean ``|p - g| / g``), ``irmse`` (1/km),
        ``imae`` (1/km), ``d1``, ``d2``, ``d3`` (fractions in [0, 1]) and ``n_valid``
        (number of pixels evaluated).

    Raises:
        ValueError: If an input is not a 2-D numeric numpy array, shapes differ, or no
            valid ground-truth pixel remains.
    """
    _check_numpy_2d(pred, "pred")
    _check_numpy_2d(gt, "gt")
    check_same_shape(pred, gt, "pred", "gt")
    gt_clean = as_depth_map(gt, "gt")  # NaN, inf and negatives become 0 = invalid
    valid = gt_clean > 0
    if region is not None:
        valid &= as_hole_mask(region, gt.shape, name="region")
    n_valid = int(np.count_nonzero(valid))
    if n_valid == 0:
        where = " inside region" if region is not None else ""
        raise ValueError(f"no valid ground-truth pixels (finite and > 0) in gt{where}")

    g = gt_clean[valid].astype(np.float64)
    p = pred[valid].astype(np.float64)
    broken = ~np.isfinite(p) | (p <= 0)
    if np.any(broken):
        logger.warning(
            "pred has %d non-positive or non-finite values at valid GT pixels; clamped to %g m",
            int(np.count_nonzero(broken)),
            MIN_PREDICTION_M,
        )
        p[broken] = MIN_PREDICTION_M

    error = p - g
    inverse_error = 1000.0 / p - 1000.0 / g  # 1/km
    ratio = np.maximum(p / g, g / p)
    return {
        "rmse": float(np.sqrt(np.mean(error**2))),
        "mae": float(np.mean(np.abs(error))),
        "rel": float(np.mean(np.abs(error) / g)),
        "irmse": float(np.sqrt(np.mean(inverse_error**2))),
        "imae": float(np.mean(np.abs(inverse_error))),
        "d1": float(np.mean(ratio < 1.25)),
        "d2": float(np.mean(ratio < 1.25**2)),
        "d3": float(np.mean(ratio < 1.25**3)),
        "n_valid": float(n_valid),
    }
