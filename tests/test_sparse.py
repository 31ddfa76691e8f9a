from __future__ import annotations

import warnings

import numpy as np
import pytest

from sdr_core.sparse import (
    SparsityWarning,
    apply_hole_mask,
    centre_hole_mask,
    count_points,
    from_clicks,
    lidar_lines,
    random_points,
)


def _gt(height: int = 40, width: int = 50, seed: int = 0) -> np.ndarray:
    """Positive GT in (1, 10) m with a few invalid pixels of every kind."""
    gt = np.random.default_rng(seed).uniform(1.0, 10.0, (height, width)).astype(np.float32)
    gt[0, :5] = [0.0, np.nan, np.inf, -1.0, -np.inf]
    return gt


# ---------------------------------------------------------------- random_points


def test_random_points_exact_count_and_gt_values():
    gt = _gt()
    sparse = random_points(gt, 100, seed=3)
    assert sparse.dtype == np.float32
    assert sparse.shape == gt.shape
    measured = sparse > 0
    assert np.count_nonzero(measured) == 100
    np.testing.assert_array_equal(sparse[measured], gt[measured])


def test_random_points_deterministic_by_seed():
    gt = _gt()
    np.testing.assert_array_equal(random_points(gt, 50, seed=7), random_points(gt, 50, seed=7))
    assert not np.array_equal(random_points(gt, 50, seed=7), random_points(gt, 50, seed=8))


def test_random_points_are_nested_for_a_fixed_seed():
    gt = _gt()
    sparse_few = random_points(gt, 20, seed=1) > 0
    sparse_many = random_points(gt, 200, seed=1) > 0
    assert np.all(sparse_many[sparse_few])


def test_random_points_only_valid_gt_pixels():
    gt = np.zeros((10, 10), dtype=np.float32)
    gt[2, 3] = 1.0
    gt[5, 5] = 2.0
    gt[7, 1] = np.nan
    with pytest.warns(SparsityWarning):
        sparse = random_points(gt, 3, seed=0)
    assert set(zip(*np.nonzero(sparse), strict=True)) == {(2, 3), (5, 5)}


def test_random_points_respects_hole():
    gt = _gt()
    hole = np.zeros(gt.shape, dtype=bool)
    hole[10:30, 10:40] = True
    sparse = random_points(gt, 500, seed=0, hole_mask=hole)
    assert count_points(sparse) == 500
    assert not np.any(sparse[hole])


def test_random_points_warns_when_asking_for_too_many():
    gt = np.zeros((4, 4), dtype=np.float32)
    gt[:3, 0] = 1.0
    with pytest.warns(SparsityWarning, match="asked for 10 points but gt_depth has only 3"):
        sparse = random_points(gt, 10)
    np.testing.assert_array_equal(sparse, gt)


def test_random_points_zero_is_empty_without_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sparse = random_points(_gt(), 0)
    assert not sparse.any()


@pytest.mark.parametrize(("n_points", "message"), [(-1, "n_points must be >= 0"), (2.5, "integer")])
def test_random_points_bad_count(n_points, message):
    with pytest.raises(ValueError, match=message):
        random_points(_gt(), n_points)


def test_random_points_does_not_modify_input():
    gt = _gt()
    before = gt.copy()
    hole = np.zeros(gt.shape, dtype=np.uint8)
    hole[5:10, 5:10] = 255
    random_points(gt, 10, hole_mask=hole)
    np.testing.assert_array_equal(gt, before)


# ---------------------------------------------------------------- lidar_lines

# 640 rows / 64 lines = 10 px between nominal rows 5, 15, 25, ..., 635, so the nearest
# nominal row identifies the line of a pixel unambiguously (jitter <= 2 px).
_H, _W = 640, 96


def _line_of_each_pixel(sparse: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rows, cols = np.nonzero(sparse)
    line = np.floor(rows * 64 / _H).astype(int)
    nominal = (line + 0.5) * _H / 64
    return line, rows - nominal, cols


@pytest.mark.parametrize("n_lines", [4, 8, 16, 32, 64])
def test_lidar_lines_fall_in_evenly_spaced_bands(n_lines):
    gt = np.full((_H, _W), 5.0, dtype=np.float32)
    sparse = lidar_lines(gt, n_lines, seed=n_lines)
    line, offset, _ = _line_of_each_pixel(sparse)
    assert np.all(np.abs(offset) <= 2.0)
    chosen = np.unique(line)
    assert chosen.size == n_lines
    np.testing.assert_array_equal(np.diff(chosen), 64 // n_lines)  # every (64/n)-th line
    np.testing.assert_array_equal(sparse[sparse > 0], 5.0)


def test_lidar_lines_are_not_perfectly_straight():
    sparse = lidar_lines(np.ones((_H, _W), np.float32), 16, seed=0)
    line, offset, _ = _line_of_each_pixel(sparse)
    rows_per_line = [np.unique(offset[line == i]).size for i in np.unique(line)]
    assert max(rows_per_line) >= 2


def test_lidar_lines_columns_and_dropout():
    step = 4
    sparse = lidar_lines(np.ones((_H, _W), np.float32), 16, seed=2, column_step=step)
    line, _, cols = _line_of_each_pixel(sparse)
    for i in np.unique(line):
        line_cols = cols[line == i]
        assert np.unique(line_cols % step).size == 1  # one seeded offset per line
    # 16 lines x 96/4 = 24 columns = 384 samples, 10% dropped in expectation -> ~346;
    # the binomial standard deviation is ~6, so 320..375 is a > 4-sigma band.
    assert 320 <= count_points(sparse) <= 375


def test_lidar_lines_phase_is_seeded():
    gt = np.ones((_H, _W), np.float32)
    np.testing.assert_array_equal(lidar_lines(gt, 8, seed=4), lidar_lines(gt, 8, seed=4))
    phases = {int(_line_of_each_pixel(lidar_lines(gt, 4, seed=s))[0].min()) for s in range(12)}
    assert len(phases) > 1
    assert all(0 <= p < 16 for p in phases)


def test_lidar_lines_only_valid_and_outside_hole():
    gt = np.full((_H, _W), 3.0, dtype=np.float32)
    gt[:, :20] = 0.0
    gt[:, 20:30] = np.nan
    hole = np.zeros(gt.shape, dtype=bool)
    hole[300:400, :] = True
    sparse = lidar_lines(gt, 64, seed=0, hole_mask=hole)
    assert count_points(sparse) > 0
    assert not sparse[:, :30].any()
    assert not sparse[hole].any()
    assert np.isfinite(sparse).all()


def test_lidar_lines_small_image():
    sparse = lidar_lines(_gt(20, 30), 64, seed=0)
    assert sparse.shape == (20, 30)
    assert count_points(sparse) > 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_lines": 0}, "n_lines must be >= 1"),
        ({"n_lines": 65}, r"n_lines must be <= total_lines \(64\), got 65"),
        ({"n_lines": 8, "total_lines": 4}, r"<= total_lines \(4\)"),
        ({"n_lines": 4, "column_step": 0}, "column_step must be >= 1"),
    ],
)
def test_lidar_lines_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        lidar_lines(_gt(), **kwargs)


# ---------------------------------------------------------------- from_clicks


def test_from_clicks_x_is_column_and_uses_gt():
    gt = np.arange(12, dtype=np.float32).reshape(3, 4) + 1.0
    sparse = from_clicks([(3, 1), (0, 2)], (3, 4), gt_depth=gt)
    expected = np.zeros((3, 4), np.float32)
    expected[1, 3] = 8.0  # row 1, column 3
    expected[2, 0] = 9.0
    np.testing.assert_array_equal(sparse, expected)


def test_from_clicks_values_fill_where_gt_is_missing():
    gt = np.ones((3, 4), np.float32)
    gt[0, 0] = 0.0
    sparse = from_clicks([(0, 0), (1, 1)], (3, 4), gt_depth=gt, values=[2.5, 7.0])
    assert sparse[0, 0] == np.float32(2.5)  # GT missing -> value
    assert sparse[1, 1] == np.float32(1.0)  # GT valid -> GT wins over value


def test_from_clicks_values_only_and_duplicates_last_wins():
    sparse = from_clicks(np.array([[1, 1], [2, 0], [1, 1]]), (2, 3), values=[1.0, 2.0, 3.0])
    assert sparse[1, 1] == np.float32(3.0)
    assert sparse[0, 2] == np.float32(2.0)
    assert count_points(sparse) == 2


def test_from_clicks_empty():
    assert not from_clicks([], (2, 3)).any()


@pytest.mark.parametrize(
    ("points", "values", "message"),
    [
        ([(0, 0), (4, 0)], [1.0, 1.0], r"point #1 \(x=4, y=0\) is outside the 3x4 \(H x W\)"),
        ([(0, -1)], [1.0], r"point #0 \(x=0, y=-1\) is outside"),
        ([(1, 1)], None, r"point #0 \(x=1, y=1\) has no depth: gt_depth is None"),
        ([(1, 1), (2, 2)], [1.0, None], r"point #1 \(x=2, y=2\) has no depth"),
        ([(1, 1)], [0.0], r"point #0 \(1, 1\): value must be finite and > 0 metres, got 0.0"),
        ([(1, 1)], [-2.0], "got -2.0"),
        ([(1, 1)], [float("nan")], "got nan"),
        ([(1.5, 1)], [1.0], r"x=1.5 is not a whole pixel index"),
        ([(1, 1, 1)], [1.0], r"must be an \(x, y\) pair"),
        ([(1, 1)], [1.0, 2.0], "values has 2 entries but points has 1"),
    ],
)
def test_from_clicks_errors_name_the_point(points, values, message):
    with pytest.raises(ValueError, match=message):
        from_clicks(points, (3, 4), values=values)


def test_from_clicks_missing_gt_message():
    gt = np.zeros((3, 4), np.float32)
    with pytest.raises(ValueError, match=r"point #0 \(x=2, y=1\) .* gt_depth is missing there"):
        from_clicks([(2, 1)], (3, 4), gt_depth=gt)


def test_from_clicks_gt_shape_mismatch():
    with pytest.raises(ValueError, match=r"gt_depth is 2x2 but shape is 3x4"):
        from_clicks([(0, 0)], (3, 4), gt_depth=np.ones((2, 2)))


# ---------------------------------------------------------------- holes and counts


def test_apply_hole_mask_copies_and_clears():
    sparse = np.array([[1.0, 2.0], [0.0, 4.0]], dtype=np.float32)
    hole = np.array([[0, 255], [255, 0]], dtype=np.uint8)
    out = apply_hole_mask(sparse, hole)
    np.testing.assert_array_equal(out, [[1.0, 0.0], [0.0, 4.0]])
    assert sparse[0, 1] == 2.0  # input untouched


def test_apply_hole_mask_shape_mismatch():
    with pytest.raises(ValueError, match="hole_mask is 3x3 but expected shape is 2x2"):
        apply_hole_mask(np.ones((2, 2)), np.zeros((3, 3), bool))


def test_count_points():
    assert count_points(np.array([[0.0, 1.0], [np.nan, -1.0]])) == 1
    assert count_points(np.zeros((3, 3))) == 0


# ----------------------------------------------------------------------------- centre hole


def test_centre_hole_mask_is_the_papers_region():
    mask = centre_hole_mask(228, 304)
    rows, cols = np.nonzero(mask)
    assert mask.dtype == bool
    assert mask.sum() == 114 * 152
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (57, 170, 76, 227)


def test_centre_hole_mask_odd_sizes_and_bad_sizes():
    # 5 x 7: rows 5 // 4 = 1 .. 1 + 5 // 2 - 1 = 2, columns 1 .. 1 + 3 - 1 = 3
    expected = np.zeros((5, 7), bool)
    expected[1:3, 1:4] = True
    np.testing.assert_array_equal(centre_hole_mask(5, 7), expected)
    assert not centre_hole_mask(1, 1).any()  # half of one pixel is none
    with pytest.raises(ValueError, match="height must be >= 1"):
        centre_hole_mask(0, 7)
    with pytest.raises(ValueError, match="width must be an integer"):
        centre_hole_mask(5, 7.5)
