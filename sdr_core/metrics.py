"""Depth accuracy metrics of the paper's Table 1.

RMSE and MAE in metres, REL (mean absolute relative error), iRMSE and iMAE on inverse
depth in 1/km (``1000 / depth_m``), and the threshold accuracies delta_k: the fraction of
pixels with ``max(p / g, g / p) < 1.25 ** k`` for k = 1, 2, 3. Everything is computed in
float64 over valid ground-truth pixels only.

:func:`paired_difference` compares two methods scene by scene: the mean difference of a
metric with a bootstrap confidence interval over scenes, so a table can say whether a gap
between two methods is larger than what another draw of scenes would move it by.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from sdr_core.validation import as_depth_map, as_hole_mask, check_same_shape

logger = logging.getLogger(__name__)

__all__ = ["MIN_PREDICTION_M", "PairedDifference", "compute_metrics", "paired_difference"]

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


@dataclass(frozen=True)
class PairedDifference:
    """Scene-by-scene difference ``other - reference`` of one metric.

    Attributes:
        mean: mean difference over scenes (for an error metric, > 0: the reference is better).
        low: lower end of the confidence interval of ``mean``.
        high: upper end.
        n: number of scenes.
        share_positive: fraction of scenes where the difference is > 0.
    """

    mean: float
    low: float
    high: float
    n: int
    share_positive: float


def paired_difference(
    reference: Any,
    other: Any,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> PairedDifference:
    """Mean of ``other - reference`` over scenes with a percentile-bootstrap interval.

    Both methods were run on the same scenes and the same sparse inputs, so the per-scene
    differences are what varies; resampling scenes with replacement ``n_resamples`` times
    and taking the ``(1 - confidence) / 2`` and ``(1 + confidence) / 2`` quantiles of the
    resampled means gives the interval. It measures how much the scene draw moves the gap,
    not the sparse-point draw within a scene (that is fixed by the evaluation seeds).

    Args:
        reference: per-scene values of the reference method (1-D, finite).
        other: per-scene values of the compared method, same scenes in the same order.
        confidence: coverage of the interval, in (0, 1).
        n_resamples: bootstrap resamples (>= 1).
        seed: seed of the resampling, so a report is reproducible.

    Returns:
        The :class:`PairedDifference`; with one scene the interval is that scene's value.

    Raises:
        ValueError: on empty, non-1-D, non-finite or mismatched inputs, or bad settings.
    """
    ref = np.asarray(reference, dtype=np.float64)
    oth = np.asarray(other, dtype=np.float64)
    if ref.ndim != 1 or oth.ndim != 1 or ref.size == 0:
        raise ValueError(
            f"reference and other must be non-empty 1-D sequences, got shapes {ref.shape} "
            f"and {oth.shape}"
        )
    if ref.shape != oth.shape:
        raise ValueError(f"reference has {ref.size} scenes but other has {oth.size}")
    if not (np.isfinite(ref).all() and np.isfinite(oth).all()):
        raise ValueError("per-scene values must be finite")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    diff = oth - ref
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, diff.size, size=(n_resamples, diff.size))
    means = diff[picks].mean(axis=1)
    tail = (1 - confidence) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return PairedDifference(
        mean=float(diff.mean()),
        low=float(low),
        high=float(high),
        n=int(diff.size),
        share_positive=float(np.mean(diff > 0)),
    )
