"""The classical propagation methods: edge-aware log-ratio (Levin 2004) and joint bilateral.

The edge-aware bounds below come from the energy's linear system
``A r = data_weight * M0 * t`` with ``A = L_w + data_weight * diag(M0) + prior_weight * I``
and ``t = log(S / D0)``:

* summing the rows (``1^T L_w = 0``) gives, for one measured pixel k, the exact identity
  ``data_weight * (r_k - t) + prior_weight * sum_i r_i = 0``;
* A is an M-matrix, so r lies between ``min(0, min t)`` and ``max(0, max t)`` (maximum
  principle), and at a measured pixel ``|r_i - t_i| <= (deg_i + prior_weight) * range /
  data_weight`` with ``deg_i <= 4`` (edge weights <= 1);
* with one measurement on a connected region of N pixels and unit weights, ``e = t - r``
  solves ``A e = prior_weight * t * 1``, so ``e <= prior_weight * t * tau`` with ``tau`` the
  expected killing time of a unit-rate random walk killed at rate data_weight at k:
  ``tau_i = H(i -> k) + N / data_weight <= N * (d(i, k) + 1 / data_weight)`` (commute time
  ``N * R_eff`` and ``R_eff <= d``, the graph distance).
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import TINY, imported_packages

from sdr_core import baselines, build_untrained_pipeline, classical, evaluate, methods
from sdr_core.classical import (
    BilateralConfig,
    EdgeAwareConfig,
    edge_aware_log_ratio,
    joint_bilateral_refine,
)
from sdr_core.sparse import random_points

CONFIG = EdgeAwareConfig()
P, DW = CONFIG.prior_weight, CONFIG.data_weight


def _grey(height: int, width: int, level: int = 128) -> np.ndarray:
    return np.full((height, width, 3), level, dtype=np.uint8)


def _log_ratio(out: np.ndarray, init: np.ndarray) -> np.ndarray:
    return np.log(out.astype(np.float64) / init.astype(np.float64))


def _graph_distance(height: int, width: int, row: int, col: int) -> np.ndarray:
    rows, cols = np.mgrid[0:height, 0:width]
    return np.abs(rows - row) + np.abs(cols - col)


# ----------------------------------------------------------------------------- edge-aware


def test_defaults_are_the_methods_constants():
    assert EdgeAwareConfig() == EdgeAwareConfig(0.08, 0.05, 100.0, 1e-4)
    assert BilateralConfig() == BilateralConfig(6, 3.0, 0.08)


@pytest.mark.parametrize("missing", [0.0, np.nan, -1.0])
def test_no_measurement_returns_d0_exactly(missing):
    rng = np.random.default_rng(0)
    init = rng.uniform(1.0, 5.0, (12, 16)).astype(np.float32)
    image = rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)
    out = edge_aware_log_ratio(image, init, np.full((12, 16), missing))
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, init)


def test_one_measurement_rescales_a_uniform_scene():
    height, width, k = 9, 11, (4, 5)
    init = np.full((height, width), 3.0, dtype=np.float32)
    sparse = np.zeros_like(init)
    sparse[k] = 6.0  # S = 2 D0
    ratio = _log_ratio(edge_aware_log_ratio(_grey(height, width), init, sparse), init)
    t = np.log(2.0)
    # exact: data_weight (r_k - t) + prior_weight sum(r) = 0 (float32 output: ~1e-7)
    assert ratio[k] == pytest.approx(t - P / DW * ratio.sum(), abs=1e-6)
    # the global scale spreads everywhere; the weak prior costs at most p t N (d + 1/dw)
    bound = P * t * height * width * (_graph_distance(height, width, *k) + 1 / DW)
    assert np.all(ratio <= t + 1e-6)
    assert np.all(ratio >= t - bound - 1e-6)
    assert bound.max() < 0.1 * t  # so the output is 2 D0 within 7 % everywhere
    np.testing.assert_allclose(np.exp(ratio), 2.0, rtol=0.07)


def _two_halves(image: np.ndarray, init: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Log-ratio of a 8 x 12 scene with S / D0 = 1.5 at (3, 2) and 0.7 at (4, 9)."""
    sparse = np.zeros_like(init)
    sparse[3, 2] = 1.5 * init[3, 2]
    sparse[4, 9] = 0.7 * init[4, 9]
    out = edge_aware_log_ratio(image, init, sparse)
    return _log_ratio(out, init), sparse


def _half_bounds(t: float, point: tuple[int, int], cols: slice) -> np.ndarray:
    """The one-measurement bound of the docstring on one 8 x 6 half."""
    distance = _graph_distance(8, 12, *point)[:, cols]
    return P * abs(t) * 48 * (distance + 1 / DW)


def test_a_colour_edge_keeps_each_side_at_its_own_ratio():
    image = _grey(8, 12, 30)
    image[:, 6:] = 220  # a strong colour edge between columns 5 and 6
    init = np.full((8, 12), 2.0, dtype=np.float32)
    ratio, _ = _two_halves(image, init)
    left, right = np.log(1.5), np.log(0.7)
    assert np.all(np.abs(ratio[:, :6] - left) <= _half_bounds(left, (3, 2), slice(0, 6)) + 1e-6)
    assert np.all(np.abs(ratio[:, 6:] - right) <= _half_bounds(right, (4, 9), slice(6, 12)) + 1e-6)
    # the step stays at the edge: the columns on either side differ by the full step
    step = ratio[:, 5] - ratio[:, 6]
    assert np.all(step > 0.95 * (left - right))
    # without the edge the two corrections blend: the step is spread over the image
    blended, _ = _two_halves(_grey(8, 12, 30), init)
    assert np.all(blended[:, 5] - blended[:, 6] < 0.3 * (left - right))


def test_an_edge_in_d0_stops_the_spread_too():
    init = np.full((8, 12), 2.0, dtype=np.float32)
    init[:, 6:] = 3.0  # log step 0.41 = 8 sigmas of the D0 affinity; the image is flat
    ratio, _ = _two_halves(_grey(8, 12), init)
    left, right = np.log(1.5), np.log(0.7)
    assert np.all(np.abs(ratio[:, :6] - left) <= _half_bounds(left, (3, 2), slice(0, 6)) + 1e-6)
    assert np.all(np.abs(ratio[:, 6:] - right) <= _half_bounds(right, (4, 9), slice(6, 12)) + 1e-6)


def test_measured_pixels_stay_close_to_s():
    rng = np.random.default_rng(3)
    rows, cols = np.mgrid[0:40, 0:50]
    gt = (2.0 + 0.04 * rows + np.sin(cols / 7.0)).astype(np.float32)
    init = (0.8 * gt * (1 + 0.1 * np.cos(rows / 9.0))).astype(np.float32)
    image = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)  # noisy: many weak edges
    sparse = random_points(gt, 150, seed=1)
    ratio = _log_ratio(edge_aware_log_ratio(image, init, sparse), init)
    measured = sparse > 0
    target = np.log(sparse[measured] / init[measured].astype(np.float64))
    low, high = min(0.0, target.min()), max(0.0, target.max())
    assert np.all(ratio >= low - 1e-6)
    assert np.all(ratio <= high + 1e-6)  # maximum principle
    # the soft constraint: a measured pixel moves at most (4 + p) / dw of the range from S
    error = np.abs(ratio[measured] - target)
    assert error.max() <= (4 + P) / DW * (high - low) + 1e-6
    assert error.max() > 0  # soft, not clamped to S


def test_a_2x3_system_built_by_hand():
    image = np.array(
        [[[100, 100, 100], [110, 105, 100], [160, 150, 140]],
         [[100, 104, 100], [112, 100, 98], [150, 150, 150]]],
        dtype=np.uint8,
    )  # fmt: skip
    init = np.array([[2.0, 2.05, 2.2], [2.02, 2.1, 2.15]], dtype=np.float32)
    sparse = np.array([[2.4, 0.0, 0.0], [0.0, 0.0, 1.9]], dtype=np.float32)
    rgb = image.reshape(6, 3) / 255.0
    log_init = np.log(init.astype(np.float64)).ravel()
    edges = [(0, 1), (1, 2), (3, 4), (4, 5), (0, 3), (1, 4), (2, 5)]  # pixels row-major
    matrix = np.diag(DW * (sparse.ravel() > 0) + P)
    for i, j in edges:
        colour = np.sum((rgb[i] - rgb[j]) ** 2) / (2 * 0.08**2)
        depth = (log_init[i] - log_init[j]) ** 2 / (2 * 0.05**2)
        w = np.exp(-colour - depth)
        matrix[i, i] += w
        matrix[j, j] += w
        matrix[i, j] -= w
        matrix[j, i] -= w
    rhs = np.zeros(6)
    measured = sparse.ravel() > 0
    rhs[measured] = DW * (np.log(sparse.ravel()[measured]) - log_init[measured])
    expected = np.exp(log_init + np.linalg.solve(matrix, rhs)).reshape(2, 3)
    out = edge_aware_log_ratio(image, init, sparse)
    np.testing.assert_allclose(out, expected, rtol=1e-6)
    assert 0.3 < matrix[0, 1] * -1 < 1  # the hand case has non-trivial weights
    horizontal, vertical = classical.edge_aware_affinities(
        image / 255.0, np.log(init.astype(np.float64)), CONFIG
    )
    np.testing.assert_allclose(horizontal[0, 0], -matrix[0, 1])
    np.testing.assert_allclose(vertical[0, 2], -matrix[2, 5])


# ----------------------------------------------------------------------------- bilateral


def _reference_bilateral(image: np.ndarray, depth: np.ndarray, config: BilateralConfig):
    """A pixel-by-pixel loop with clamped (edge-replicated) indices."""
    rgb = image.astype(np.float64) / 255.0
    height, width = depth.shape
    radius = config.radius_px
    out = np.zeros((height, width))
    for y in range(height):
        for x in range(width):
            total = norm = 0.0
            for dy in range(-radius, radius + 1):
                for dx in range(-radius, radius + 1):
                    qy = min(max(y + dy, 0), height - 1)
                    qx = min(max(x + dx, 0), width - 1)
                    w = np.exp(-(dy * dy + dx * dx) / (2 * config.spatial_sigma_px**2))
                    w *= np.exp(-np.sum((rgb[qy, qx] - rgb[y, x]) ** 2) / (2 * 0.08**2))
                    total += w * depth[qy, qx]
                    norm += w
            out[y, x] = total / norm
    return out


def test_bilateral_matches_a_pixel_loop():
    rng = np.random.default_rng(4)
    image = rng.integers(90, 140, (9, 11, 3), dtype=np.uint8)
    depth = rng.uniform(1.0, 4.0, (9, 11)).astype(np.float32)
    sparse = np.zeros_like(depth)
    sparse[2, 3] = 7.0
    config = BilateralConfig(radius_px=3, spatial_sigma_px=2.0)
    expected = _reference_bilateral(image, depth, config)
    expected[2, 3] = 7.0
    np.testing.assert_allclose(joint_bilateral_refine(image, depth, sparse, config), expected, 1e-5)


def test_bilateral_keeps_a_constant_depth():
    rng = np.random.default_rng(5)
    image = rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)
    depth = np.full((20, 24), 3.25, dtype=np.float32)
    out = joint_bilateral_refine(image, depth, np.zeros_like(depth))
    np.testing.assert_allclose(out, 3.25, rtol=1e-6)


def test_bilateral_keeps_an_image_edge_sharp_and_smooths_flat_noise():
    rng = np.random.default_rng(6)
    image = _grey(30, 40, 60)
    image[:, 20:] = 180  # colour edge between columns 19 and 20
    clean = np.where(np.arange(40) < 20, 2.0, 4.0) * np.ones((30, 1))
    noisy = (clean + rng.normal(0, 0.05, clean.shape)).astype(np.float32)
    sparse = np.zeros_like(noisy)
    sparse[10, 5], sparse[12, 30] = 2.5, 3.5  # measured pixels keep S
    out = joint_bilateral_refine(image, noisy, sparse)
    assert out[10, 5] == np.float32(2.5)
    assert out[12, 30] == np.float32(3.5)
    keep = sparse == 0
    # the step stays at the edge: no pixel leaks towards the other side
    assert np.all(np.abs(out - clean)[keep] < 0.1)
    flat = keep.copy()
    flat[:, 14:26] = False  # away from the edge
    flat[4:17, 0:12] = flat[6:19, 24:37] = False  # and from the measured pixels
    assert np.std((out - clean)[flat]) < 0.3 * np.std((noisy - clean)[flat])
    # without the colour edge the same pass blurs the step
    blurred = joint_bilateral_refine(_grey(30, 40, 60), noisy, np.zeros_like(noisy))
    assert np.all(blurred[:, 19] > 2.5)


# ----------------------------------------------------------------------------- inputs


@pytest.mark.parametrize(
    ("method", "image", "depth", "sparse", "message"),
    [
        ("edge", np.zeros((5, 5, 2), np.uint8), None, None, "image must be HxW"),
        ("edge", np.zeros((3, 4, 3), np.uint8), None, None, r"image is 3x4 but init_depth is 5x5"),
        ("edge", np.full((5, 5, 3), 2.0), None, None, r"float images must be in \[0, 1\]"),
        ("edge", None, np.full((5, 5), np.nan), None, "init_depth has 25 NaN/inf values"),
        ("edge", None, np.zeros((5, 5)), None, "init_depth has 25 values <= 0"),
        ("edge", None, None, np.zeros((4, 5)), r"init_depth is 5x5 but sparse is 4x5"),
        ("edge", None, None, np.zeros((5, 5), bool), "sparse has dtype bool"),
        ("bilateral", np.zeros((4, 5, 3), np.uint8), None, None, r"image is 4x5 but depth is 5x5"),
        ("bilateral", None, np.full((5, 5), np.inf), None, "depth has 25 NaN/inf values"),
        ("bilateral", None, -np.ones((5, 5)), None, "depth has 25 values <= 0"),
        ("bilateral", None, None, np.zeros((5, 6)), r"depth is 5x5 but sparse is 5x6"),
    ],
)
def test_classical_methods_reject_bad_inputs(method, image, depth, sparse, message):
    fn = edge_aware_log_ratio if method == "edge" else joint_bilateral_refine
    image = _grey(5, 5) if image is None else image
    depth = np.ones((5, 5)) if depth is None else depth
    sparse = np.zeros((5, 5)) if sparse is None else sparse
    with pytest.raises(ValueError, match=message):
        fn(image, depth, sparse)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: EdgeAwareConfig(colour_sigma=0.0), "colour_sigma must be finite and > 0"),
        (lambda: EdgeAwareConfig(prior_weight=float("nan")), "prior_weight must be finite"),
        (lambda: EdgeAwareConfig(data_weight="100"), "data_weight must be a number"),
        (lambda: BilateralConfig(radius_px=2.5), "radius_px must be an integer"),
        (lambda: BilateralConfig(radius_px=0), "radius_px must be finite and > 0"),
        (lambda: BilateralConfig(spatial_sigma_px=-1.0), "spatial_sigma_px must be finite"),
    ],
)
def test_configs_reject_bad_values(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_classical_does_not_import_torch():
    assert "torch" not in imported_packages(classical)


# ----------------------------------------------------------------------------- method table


@pytest.fixture(scope="module")
def pipe():
    return build_untrained_pipeline(TINY, device="cpu", seed=0)


def _scene(name: str, seed: int) -> evaluate.EvalScene:
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:24, 0:32]
    depth = (2.0 + 0.05 * rows + 0.02 * cols).astype(np.float32)
    depth[8:16, 10:22] -= 0.8
    rgb = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
    rgb[8:16, 10:22] = 30
    return evaluate.EvalScene(name, rgb, depth)


def test_method_table_runs_both_on_the_shared_inputs(pipe):
    scene = _scene("a", 1)
    init = pipe.estimate_depth(scene.rgb)
    sparse = random_points(scene.depth, 20, seed=2)
    inputs = methods.MethodInputs(scene.rgb, sparse, init, 20)
    assert {"edge_aware", "ls_interp_bilateral"} <= set(methods.BASELINES)
    assert {"edge_aware", "ls_interp_bilateral"} <= set(methods.CLASSICAL)
    assert "mde" not in methods.CLASSICAL
    out = methods.predict(["edge_aware", "ls_interp_bilateral"], pipe, inputs)
    np.testing.assert_array_equal(out["edge_aware"], edge_aware_log_ratio(scene.rgb, init, sparse))
    interpolated = baselines.residual_interpolation(init, sparse, "idw")
    np.testing.assert_array_equal(
        out["ls_interp_bilateral"], joint_bilateral_refine(scene.rgb, interpolated, sparse)
    )
    for depth in out.values():
        assert depth.shape == (24, 32)
        assert depth.dtype == np.float32
        assert np.all(depth > 0)


def test_evaluation_tables_have_the_new_rows(pipe):
    config = evaluate.EvalConfig(points=(10,), lines=(), hole=False, n_scenes=0, middlebury=False)
    assert {"edge_aware", "ls_interp_bilateral"} <= set(config.methods)  # in the default list
    results = evaluate.evaluate_scenes(pipe, [_scene("a", 1), _scene("b", 2)], config)
    table = evaluate.markdown_table(results, "rmse", setting="points")
    rows = [line.split("|")[1].strip() for line in table.strip().splitlines()[2:]]
    assert "Edge-aware log-ratio (Levin 2004)" in rows
    assert "LS + IDW + joint bilateral" in rows
    best = evaluate.best_classical(results)["points"][10]
    classical_rmse = {m: results["points"][m][10]["rmse"] for m in evaluate.CLASSICAL_METHODS}
    assert best["rmse"] == min(classical_rmse.values())
    assert best["ratio"] == pytest.approx(results["points"]["mspn"][10]["rmse"] / best["rmse"])
