from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sdr_core.metrics import MIN_PREDICTION_M, compute_metrics, paired_difference

KEYS = {"rmse", "mae", "rel", "irmse", "imae", "d1", "d2", "d3", "n_valid"}

# The 2x2 worked example used by several tests.
GT = np.array([[1.0, 2.0], [4.0, 5.0]], dtype=np.float32)
PRED = np.array([[1.5, 2.0], [5.0, 4.0]], dtype=np.float32)
# errors p - g          = [0.5, 0, 1, -1]
# relative |p - g| / g  = [0.5, 0, 0.25, 0.2]
# 1000/p - 1000/g (1/km)= [666.67 - 1000, 500 - 500, 200 - 250, 250 - 200]
#                       = [-1000/3, 0, -50, 50]
# max(p/g, g/p)         = [1.5, 1.0, 1.25, 1.25]
EXPECTED = {
    "rmse": 0.75,  # sqrt((0.25 + 0 + 1 + 1) / 4) = sqrt(0.5625)
    "mae": 0.625,  # (0.5 + 0 + 1 + 1) / 4
    "rel": 0.2375,  # (0.5 + 0 + 0.25 + 0.2) / 4
    "irmse": math.sqrt(261250) / 3,  # sqrt((1e6/9 + 2500 + 2500) / 4) = 170.37...
    "imae": 325 / 3,  # (1000/3 + 0 + 50 + 50) / 4 = 108.33...
    "d1": 0.25,  # only 1.0 < 1.25; 1.25 is not strictly below 1.25
    "d2": 1.0,  # all < 1.5625
    "d3": 1.0,  # all < 1.953125
    "n_valid": 4.0,
}


def test_keys_exactly():
    assert set(compute_metrics(PRED, GT)) == KEYS


@pytest.mark.parametrize("key", sorted(KEYS))
def test_hand_computed_2x2(key):
    result = compute_metrics(PRED, GT)
    assert isinstance(result[key], float)
    assert result[key] == pytest.approx(EXPECTED[key], rel=1e-6)


def test_perfect_prediction():
    result = compute_metrics(GT.copy(), GT)
    for key in ("rmse", "mae", "rel", "irmse", "imae"):
        assert result[key] == 0.0
    assert result["d1"] == result["d2"] == result["d3"] == 1.0


def test_region_restricts_pixels():
    region = np.array([[True, False], [False, True]])
    result = compute_metrics(PRED, GT, region=region)
    # pixels (0,0) and (1,1): errors 0.5 and -1
    assert result["n_valid"] == 2.0
    assert result["rmse"] == pytest.approx(math.sqrt((0.25 + 1.0) / 2))
    assert result["mae"] == pytest.approx(0.75)
    assert result["rel"] == pytest.approx((0.5 + 0.2) / 2)
    assert result["imae"] == pytest.approx((1000 / 3 + 50) / 2)
    assert result["d1"] == 0.0  # ratios 1.5 and 1.25
    assert result["d2"] == 1.0


def test_region_accepts_uint8_mask():
    region = np.array([[255, 0], [0, 255]], dtype=np.uint8)
    assert compute_metrics(PRED, GT, region=region)["n_valid"] == 2.0


def test_invalid_gt_is_ignored():
    gt = np.zeros((3, 3), dtype=np.float32)
    pred = np.full((3, 3), 123.0, dtype=np.float32)  # garbage where GT is invalid
    gt[:2, :2] = GT
    pred[:2, :2] = PRED
    gt[2, :] = [np.nan, np.inf, -3.0]
    result = compute_metrics(pred, gt)
    for key, value in EXPECTED.items():
        assert result[key] == pytest.approx(value, rel=1e-6), key


def test_broken_predictions_are_clamped():
    gt = np.array([[1.0, 2.0, 4.0]])
    pred = np.array([[0.0, -5.0, np.nan]])
    result = compute_metrics(pred, gt)
    clamped = compute_metrics(np.full((1, 3), MIN_PREDICTION_M), gt)
    assert result == clamped
    # every prediction becomes 1e-3 m: errors 0.999, 1.999, 3.999
    assert result["mae"] == pytest.approx((0.999 + 1.999 + 3.999) / 3)
    assert result["d3"] == 0.0
    assert all(math.isfinite(v) for v in result.values())


def test_integer_inputs_work():
    result = compute_metrics(np.array([[2, 2]]), np.array([[1, 2]]))
    assert result["mae"] == 0.5


@pytest.mark.parametrize(
    ("pred", "gt", "message"),
    [
        (PRED, np.zeros((2, 2)), r"no valid ground-truth pixels \(finite and > 0\) in gt$"),
        (PRED, np.full((2, 2), np.nan), "no valid ground-truth pixels"),
        (np.ones((2, 3)), GT, r"pred is 2x3 but gt is 2x2 \(H x W\)"),
        (np.ones((2, 2, 1)), GT, r"pred must be HxW, got shape \(2, 2, 1\)"),
        (PRED.tolist(), GT, "pred must be a numpy array, got builtins.list"),
        (torch.from_numpy(PRED), GT, "pred must be a numpy array, got torch.Tensor"),
        (PRED, GT.astype(bool), "gt has dtype bool"),
    ],
)
def test_errors(pred, gt, message):
    with pytest.raises(ValueError, match=message):
        compute_metrics(pred, gt)


def test_no_valid_pixel_in_region():
    region = np.zeros((2, 2), dtype=bool)
    with pytest.raises(ValueError, match="no valid ground-truth pixels .* inside region"):
        compute_metrics(PRED, GT, region=region)


def test_region_shape_mismatch():
    with pytest.raises(ValueError, match="region is 3x3 but expected shape is 2x2"):
        compute_metrics(PRED, GT, region=np.ones((3, 3), bool))


# ----------------------------------------------------------------------------- paired_difference


def test_paired_difference_mean_share_and_constant_gap():
    # Differences other - reference = [0.1, 0.1, 0.1]: every resample has mean 0.1.
    diff = paired_difference([1.0, 2.0, 3.0], [1.1, 2.1, 3.1])
    assert diff.mean == pytest.approx(0.1)
    assert diff.low == pytest.approx(0.1)
    assert diff.high == pytest.approx(0.1)
    assert diff.n == 3
    assert diff.share_positive == 1.0


def test_paired_difference_interval_by_hand():
    # Two scenes with differences [-1, +1]: a resample of 2 scenes has mean -1 (1/4),
    # 0 (1/2) or +1 (1/4), so the 95 % interval of the resampled means is [-1, +1] and the
    # 40 % interval (quantiles 0.3 and 0.7) is [0, 0].
    reference, other = [2.0, 2.0], [1.0, 3.0]
    wide = paired_difference(reference, other, n_resamples=4000, seed=1)
    assert wide.mean == 0.0
    assert wide.share_positive == 0.5
    assert (wide.low, wide.high) == (-1.0, 1.0)
    narrow = paired_difference(reference, other, confidence=0.4, n_resamples=4000, seed=1)
    assert (narrow.low, narrow.high) == (0.0, 0.0)


def test_paired_difference_is_reproducible_and_brackets_the_mean():
    rng = np.random.default_rng(0)
    reference = rng.uniform(0.5, 1.5, 24)
    other = reference + rng.normal(0.02, 0.05, 24)
    a, b = paired_difference(reference, other), paired_difference(reference, other)
    assert a == b
    assert a.low < a.mean < a.high
    # One scene: nothing to resample but that scene.
    single = paired_difference([1.0], [1.5])
    assert (single.mean, single.low, single.high, single.n) == (0.5, 0.5, 0.5, 1)


@pytest.mark.parametrize(
    ("reference", "other", "kwargs", "match"),
    [
        ([], [], {}, "non-empty 1-D"),
        ([[1.0]], [[1.0]], {}, "non-empty 1-D"),
        ([1.0, 2.0], [1.0], {}, "2 scenes but other has 1"),
        ([1.0, float("nan")], [1.0, 1.0], {}, "finite"),
        ([1.0], [1.0], {"confidence": 1.0}, "confidence"),
        ([1.0], [1.0], {"n_resamples": 0}, "n_resamples"),
    ],
)
def test_paired_difference_rejects_bad_input(reference, other, kwargs, match):
    with pytest.raises(ValueError, match=match):
        paired_difference(reference, other, **kwargs)
