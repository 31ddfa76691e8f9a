from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import imported_packages

import sdr_core.baselines as baselines
from sdr_core.baselines import (
    MIN_DEPTH_M,
    fit_scale_shift,
    least_squares_scale_shift,
    mde_only,
    residual_interpolation,
)
from sdr_core.metrics import compute_metrics
from sdr_core.sparse import random_points


def _smooth_scene(height: int = 60, width: int = 80) -> tuple[np.ndarray, np.ndarray]:
    """GT with a smooth non-affine distortion in D0, so interpolation has work to do."""
    rows, cols = np.mgrid[0:height, 0:width]
    gt = 3.0 + np.sin(cols / 15.0) + rows / 30.0
    init_depth = 0.5 * gt + 0.2 + 0.3 * np.cos(rows / 12.0) * np.sin(cols / 20.0)
    return gt.astype(np.float32), init_depth.astype(np.float32)


# ---------------------------------------------------------------- mde_only


def test_mde_only_returns_a_copy():
    _, init_depth = _smooth_scene()
    sparse = np.zeros_like(init_depth)
    out = mde_only(init_depth, sparse)
    np.testing.assert_array_equal(out, init_depth)
    assert out is not init_depth
    assert out.dtype == np.float32


# ---------------------------------------------------------------- least squares


def test_least_squares_recovers_an_affine_d0_exactly():
    gt, _ = _smooth_scene()
    init_depth = (gt - 0.5) / 2.0  # so gt = 2 * D0 + 0.5
    sparse = random_points(gt, 40, seed=0)
    scale, shift = fit_scale_shift(init_depth, sparse)
    assert scale == pytest.approx(2.0, rel=1e-5)
    assert shift == pytest.approx(0.5, abs=1e-5)
    # measured max error 0.0 m on this scene; 1e-5 leaves room for float32 rounding
    np.testing.assert_allclose(least_squares_scale_shift(init_depth, sparse), gt, atol=1e-5)


def test_least_squares_one_point_uses_ratio():
    init_depth = np.full((3, 3), 2.0, dtype=np.float32)
    init_depth[1, 1] = 4.0
    sparse = np.zeros((3, 3), dtype=np.float32)
    sparse[1, 1] = 6.0  # S / D0 = 1.5
    assert fit_scale_shift(init_depth, sparse) == (1.5, 0.0)
    np.testing.assert_allclose(least_squares_scale_shift(init_depth, sparse), 1.5 * init_depth)


def test_least_squares_two_points_use_median_ratio():
    init_depth = np.ones((2, 2), dtype=np.float32)
    sparse = np.array([[2.0, 0.0], [0.0, 4.0]], dtype=np.float32)  # ratios 2, 4 -> median 3
    assert fit_scale_shift(init_depth, sparse) == (3.0, 0.0)
    np.testing.assert_allclose(least_squares_scale_shift(init_depth, sparse), 3.0)


def test_least_squares_constant_d0_falls_back_to_median():
    init_depth = np.full((2, 2), 2.0, dtype=np.float32)
    sparse = np.array([[2.0, 4.0], [6.0, 0.0]], dtype=np.float32)  # ratios 1, 2, 3
    assert fit_scale_shift(init_depth, sparse) == (2.0, 0.0)


def test_least_squares_negative_scale_falls_back_to_median():
    init_depth = np.array([[1.0, 2.0, 3.0]], dtype=np.float32)
    sparse = np.array([[3.0, 2.0, 1.0]], dtype=np.float32)  # LS slope -1; ratios 3, 1, 1/3
    assert fit_scale_shift(init_depth, sparse) == (1.0, 0.0)


def test_least_squares_no_points_keeps_d0():
    _, init_depth = _smooth_scene()
    out = least_squares_scale_shift(init_depth, np.zeros_like(init_depth))
    np.testing.assert_array_equal(out, init_depth)


def test_least_squares_output_is_clipped_positive():
    init_depth = np.array([[1.0, 2.0, 3.0, 0.1]], dtype=np.float32)
    sparse = np.array([[1.0, 3.0, 5.0, 0.0]], dtype=np.float32)  # S = 2 D0 - 1 exactly
    out = least_squares_scale_shift(init_depth, sparse)
    np.testing.assert_allclose(out[0, :3], [1.0, 3.0, 5.0], atol=1e-6)
    assert out[0, 3] == np.float32(MIN_DEPTH_M)  # 2 * 0.1 - 1 = -0.8 -> clipped


# ---------------------------------------------------------------- residual interpolation


@pytest.mark.parametrize("method", ["idw", "gaussian"])
def test_residual_interpolation_equals_sparse_at_points(method):
    gt, init_depth = _smooth_scene()
    sparse = random_points(gt, 30, seed=1)
    out = residual_interpolation(init_depth, sparse, method=method)
    measured = sparse > 0
    np.testing.assert_array_equal(out[measured], sparse[measured])
    assert out.dtype == np.float32
    assert np.all(out >= MIN_DEPTH_M)


@pytest.mark.parametrize("method", ["idw", "gaussian"])
def test_residual_interpolation_beats_least_squares_on_smooth_scene(method):
    gt, init_depth = _smooth_scene()
    sparse = random_points(gt, 100, seed=2)
    rmse_ls = compute_metrics(least_squares_scale_shift(init_depth, sparse), gt)["rmse"]
    rmse_interp = compute_metrics(residual_interpolation(init_depth, sparse, method), gt)["rmse"]
    # measured on this scene: LS 0.269 m, IDW 0.062 m, Gaussian 0.075 m
    assert rmse_interp < 0.5 * rmse_ls


def _two_point_row() -> tuple[np.ndarray, np.ndarray]:
    # D0 = 1 everywhere; S = 1 at x=0 and 3 at x=4. Two points -> median scale 2, so the
    # aligned map is 2 and the residuals are -1 (x=0) and +1 (x=4).
    init_depth = np.ones((1, 5), dtype=np.float32)
    sparse = np.array([[1.0, 0.0, 0.0, 0.0, 3.0]], dtype=np.float32)
    return init_depth, sparse


def test_idw_hand_values():
    out = residual_interpolation(*_two_point_row())
    # x=1: distances 1 and 3, weights 1 and 1/9 -> (-1 + 1/9) / (1 + 1/9) = -0.8 -> 1.2
    # x=2: equal weights -> residual 0 -> 2.0; x=3 mirrors x=1 -> 2.8
    np.testing.assert_allclose(out[0], [1.0, 1.2, 2.0, 2.8, 3.0], rtol=1e-6)


def test_gaussian_hand_values():
    out = residual_interpolation(*_two_point_row(), method="gaussian", sigma_px=1.0)
    # x=1: weights exp(-1/2) and exp(-9/2) -> ratio e^-4
    expected_x1 = 2.0 + (-1.0 + math.exp(-4.0)) / (1.0 + math.exp(-4.0))
    np.testing.assert_allclose(out[0], [1.0, expected_x1, 2.0, 4.0 - expected_x1, 3.0], rtol=1e-6)


def test_k_one_is_nearest_neighbour():
    out = residual_interpolation(*_two_point_row(), k=1)
    np.testing.assert_allclose(out[0, :2], [1.0, 1.0])  # x=1 takes the residual of x=0
    np.testing.assert_allclose(out[0, 3:], [3.0, 3.0])


def test_residual_interpolation_no_points_keeps_d0():
    _, init_depth = _smooth_scene()
    out = residual_interpolation(init_depth, np.zeros_like(init_depth))
    np.testing.assert_array_equal(out, init_depth)


def test_residual_interpolation_large_input_runs():
    # 228x304 with 1000 points; timing lives in benchmarks/, this checks the path works
    # (measured ~35 ms on a 2-core CPU).
    rng = np.random.default_rng(0)
    gt = rng.uniform(1.0, 10.0, (228, 304)).astype(np.float32)
    out = residual_interpolation(gt * 0.5, random_points(gt, 1000, seed=0))
    assert out.shape == (228, 304)


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "function", [mde_only, least_squares_scale_shift, residual_interpolation, fit_scale_shift]
)
def test_shape_mismatch(function):
    with pytest.raises(ValueError, match=r"init_depth is 2x2 but sparse is 3x3 \(H x W\)"):
        function(np.ones((2, 2)), np.zeros((3, 3)))


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (np.nan, "init_depth has 1 NaN/inf values"),
        (np.inf, "init_depth has 1 NaN/inf values"),
        (0.0, r"init_depth has 1 values <= 0"),
        (-1.0, r"init_depth has 1 values <= 0"),
    ],
)
@pytest.mark.parametrize("function", [mde_only, least_squares_scale_shift, residual_interpolation])
def test_init_depth_must_be_finite_and_positive(function, bad, message):
    init_depth = np.ones((3, 3), dtype=np.float32)
    init_depth[1, 2] = bad
    with pytest.raises(ValueError, match=message):
        function(init_depth, np.zeros((3, 3)))


def test_nan_in_sparse_means_missing():
    init_depth = np.ones((2, 2), dtype=np.float32)
    sparse = np.array([[np.nan, 2.0], [0.0, 0.0]])
    np.testing.assert_allclose(least_squares_scale_shift(init_depth, sparse), 2.0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"method": "kriging"}, "method must be 'idw' or 'gaussian', got 'kriging'"),
        ({"k": 0}, "k must be an integer >= 1, got 0"),
        ({"power": 0.0}, "power must be > 0"),
        ({"method": "gaussian", "sigma_px": -1.0}, "sigma_px must be finite and > 0"),
    ],
)
def test_residual_interpolation_bad_options(kwargs, message):
    with pytest.raises(ValueError, match=message):
        residual_interpolation(*_two_point_row(), **kwargs)


def test_baselines_do_not_import_torch():
    assert "torch" not in imported_packages(baselines)
