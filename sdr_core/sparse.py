"""Sparse depth inputs S: random points, simulated LiDAR lines, clicks and holes.

Every function here is pure and seeded: the same arguments give the same map, and no
input is modified. Maps are HxW float32 metres with 0 = no measurement, the sparse depth
`S` that MSPN refines the MDE output `D0` with (paper section 3.1).
"""

from __future__ import annotations

import logging
import math
import numbers
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from sdr_core.validation import as_depth_map, as_hole_mask, check_same_shape

logger = logging.getLogger(__name__)

__all__ = [
    "SparsityWarning",
    "apply_hole_mask",
    "centre_hole_mask",
    "count_points",
    "from_clicks",
    "lidar_lines",
    "random_points",
    "schedule_points",
]

# Simulated LiDAR: peak row displacement of a scan line (px). With rounding to the pixel
# grid a kept pixel lies at most 1.5 + 0.5 = 2 px from the line's nominal row.
_LINE_JITTER_MAX_PX = 1.5
# Simulated LiDAR: fraction of sampled columns dropped per line (missed returns).
_LINE_DROPOUT = 0.1


class SparsityWarning(UserWarning):
    """More measurements were requested than the ground truth can supply."""


def _check_int(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def _valid_gt(gt_depth: Any, hole_mask: Any | None) -> tuple[np.ndarray, np.ndarray]:
    """Return the sanitised GT (HxW float32 m) and where it may be sampled (HxW bool)."""
    gt = as_depth_map(gt_depth, "gt_depth")
    valid = gt > 0
    if hole_mask is not None:
        valid &= ~as_hole_mask(hole_mask, gt.shape)
    return gt, valid


def random_points(
    gt_depth: Any, n_points: int, seed: int = 0, hole_mask: Any | None = None
) -> np.ndarray:
    """Sample `n_points` ground-truth pixels uniformly without replacement.

    The valid pixels are put in one seeded random order and the first `n_points` are
    kept, so for a fixed seed a sparser map is a subset of a denser one (a sparsity sweep
    or a UI slider adds points rather than reshuffling them).

    Args:
        gt_depth: HxW float array-like, metres. Valid where finite and > 0.
        n_points: Number of measurements, >= 0.
        seed: Seed for ``np.random.default_rng``.
        hole_mask: Optional HxW bool (or 0/1, 0/255) mask; no point is taken inside it.

    Returns:
        HxW float32, metres: the GT value at the sampled pixels, 0 elsewhere.

    Raises:
        ValueError: If `n_points` is negative or not an integer, or an input is malformed.

    Warns:
        SparsityWarning: If `n_points` exceeds the number of valid pixels; all valid
            pixels are returned.
    """
    n_points = _check_int(n_points, "n_points", 0)
    gt, valid = _valid_gt(gt_depth, hole_mask)
    candidates = np.flatnonzero(valid)
    if n_points > candidates.size:
        warnings.warn(
            f"asked for {n_points} points but gt_depth has only {candidates.size} valid "
            "pixels (finite, > 0, outside hole_mask); returning all of them",
            SparsityWarning,
            stacklevel=2,
        )
    chosen = np.random.default_rng(seed).permutation(candidates)[:n_points]
    sparse = np.zeros_like(gt)
    sparse.flat[chosen] = gt.flat[chosen]
    return sparse


def _line_rows(nominal_row: float, width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """Row index of one scan line at every column: nominal row + a smooth sinusoid.

    The amplitude is at most ``_LINE_JITTER_MAX_PX`` and the period is between half and
    twice the image width, so the line bends gently instead of being perfectly straight
    (projected LiDAR rings are curves).
    """
    amplitude = rng.uniform(0.3, 1.0) * _LINE_JITTER_MAX_PX
    period = rng.uniform(0.5, 2.0) * width
    phase = rng.uniform(0.0, 2.0 * math.pi)
    x = np.arange(width)
    rows = nominal_row + amplitude * np.sin(2.0 * math.pi * x / period + phase)
    return np.clip(np.rint(rows), 0, height - 1).astype(np.intp)


def lidar_lines(
    gt_depth: Any,
    n_lines: int,
    seed: int = 0,
    total_lines: int = 64,
    column_step: int = 4,
    hole_mask: Any | None = None,
) -> np.ndarray:
    """Simulate a KITTI-style LiDAR with `n_lines` of a `total_lines`-line scanner.

    Model: `total_lines` scan lines sit at nominal rows ``(i + 0.5) * H / total_lines``.
    `n_lines` of them are kept, evenly spread as in subsampling a 64-line HDL-64E to
    4/8/16/32 lines (indices ``floor((j + u) * total_lines / n_lines)`` for a seeded
    ``u`` in [0, 1), i.e. every ``total_lines // n_lines``-th line with a random phase
    when it divides evenly). Each kept line bends by a smooth sinusoid of at most 1.5 px
    along x, so every measurement lies within 2 px of its nominal row after rounding.
    Along the line every `column_step`-th column is sampled (seeded offset per line) and
    10% of those are dropped at random. Only valid GT pixels are kept.

    Args:
        gt_depth: HxW float array-like, metres. Valid where finite and > 0.
        n_lines: Number of scan lines kept, 1 <= n_lines <= total_lines.
        seed: Seed for ``np.random.default_rng``.
        total_lines: Lines of the full scanner (64 for the HDL-64E used by KITTI).
        column_step: Horizontal spacing between samples on a line, px, >= 1.
        hole_mask: Optional HxW bool (or 0/1, 0/255) mask; no point is taken inside it.

    Returns:
        HxW float32, metres: GT values on the simulated lines, 0 elsewhere.

    Raises:
        ValueError: If `n_lines`, `total_lines` or `column_step` are out of range, or an
            input is malformed.
    """
    total_lines = _check_int(total_lines, "total_lines", 1)
    n_lines = _check_int(n_lines, "n_lines", 1)
    if n_lines > total_lines:
        raise ValueError(f"n_lines must be <= total_lines ({total_lines}), got {n_lines}")
    column_step = _check_int(column_step, "column_step", 1)
    gt, valid = _valid_gt(gt_depth, hole_mask)
    height, width = gt.shape

    rng = np.random.default_rng(seed)
    phase = rng.random()
    line_index = np.floor((np.arange(n_lines) + phase) * total_lines / n_lines).astype(int)
    keep = np.zeros_like(valid)
    for index in line_index:
        nominal_row = (index + 0.5) * height / total_lines
        rows = _line_rows(nominal_row, width, height, rng)
        columns = np.arange(rng.integers(column_step), width, column_step)
        columns = columns[rng.random(columns.size) >= _LINE_DROPOUT]
        keep[rows[columns], columns] = True
    keep &= valid
    return np.where(keep, gt, np.float32(0.0))


def _pixel_coordinate(value: Any, index: int, point: Any, axis: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"point #{index} {point!r}: {axis} must be a number, got {value!r}")
    if not float(value).is_integer():
        raise ValueError(
            f"point #{index} {point!r}: {axis}={value} is not a whole pixel index; round "
            "click coordinates before calling from_clicks"
        )
    return int(value)


def _click_value(values: Sequence[Any] | None, index: int, point: Any) -> float | None:
    if values is None or values[index] is None:
        return None
    value = values[index]
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"point #{index} {point!r}: value must be a number, got {value!r}")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(
            f"point #{index} {point!r}: value must be finite and > 0 metres, got {value}"
        )
    return float(value)


def from_clicks(
    points: Sequence[Sequence[int]],
    shape: Sequence[int],
    gt_depth: Any | None = None,
    values: Sequence[float | None] | None = None,
) -> np.ndarray:
    """Build a sparse map from clicked pixels.

    Each point takes its depth from `gt_depth` when that is given and valid (finite and
    > 0) at the point; otherwise from ``values[i]``. When a point appears twice, the last
    occurrence wins.

    Args:
        points: Sequence of ``(x, y)`` pixel indices, x = column, y = row; whole numbers
            (ints, or floats with no fractional part). An Nx2 array works too.
        shape: Output shape; only ``(H, W)`` = ``shape[:2]`` is used.
        gt_depth: Optional HxW float array-like, metres, 0/NaN = missing.
        values: Optional sequence of the same length as `points`: depth in metres (> 0) to
            use where GT is absent or invalid, or None for "no value".

    Returns:
        HxW float32, metres; 0 where nothing was clicked.

    Raises:
        ValueError: Naming the offending point, for an out-of-bounds or non-integer
            coordinate, a point with neither valid GT nor a value, or a non-positive or
            non-finite value; also for a length mismatch or malformed `shape`.
    """
    if len(shape) < 2:
        raise ValueError(f"shape must be (H, W), got {tuple(shape)}")
    height = _check_int(shape[0], "shape[0] (H)", 1)
    width = _check_int(shape[1], "shape[1] (W)", 1)
    gt = None
    if gt_depth is not None:
        gt = as_depth_map(gt_depth, "gt_depth")
        check_same_shape(gt, (height, width), "gt_depth", "shape")
    points = list(points)
    if values is not None and len(values) != len(points):
        raise ValueError(f"values has {len(values)} entries but points has {len(points)}")

    sparse = np.zeros((height, width), dtype=np.float32)
    for index, point in enumerate(points):
        if len(point) != 2:
            raise ValueError(f"point #{index} {point!r} must be an (x, y) pair")
        x = _pixel_coordinate(point[0], index, point, "x")
        y = _pixel_coordinate(point[1], index, point, "y")
        if not (0 <= x < width and 0 <= y < height):
            raise ValueError(
                f"point #{index} (x={x}, y={y}) is outside the {height}x{width} (H x W) image"
            )
        fallback = _click_value(values, index, point)
        if gt is not None and gt[y, x] > 0:
            sparse[y, x] = gt[y, x]
        elif fallback is not None:
            sparse[y, x] = fallback
        else:
            source = "gt_depth is missing there" if gt is not None else "gt_depth is None"
            raise ValueError(f"point #{index} (x={x}, y={y}) has no depth: {source} and no value")
    return sparse


def apply_hole_mask(sparse: Any, hole_mask: Any) -> np.ndarray:
    """Return a copy of `sparse` with every measurement inside `hole_mask` removed.

    Args:
        sparse: HxW float array-like, metres; 0 = missing (NaN/negative also count as 0).
        hole_mask: HxW bool (or 0/1, 0/255) mask, True inside the hole.

    Returns:
        HxW float32, metres; 0 inside the hole and where `sparse` had no measurement.
    """
    clean = as_depth_map(sparse, "sparse")
    clean[as_hole_mask(hole_mask, clean.shape)] = 0.0
    return clean


def centre_hole_mask(height: int, width: int) -> np.ndarray:
    """The paper's hole-filling region (Table 4): the centre half of the image in each axis.

    At 228 x 304 this is the 114 x 152 centre: rows 57..170, columns 76..227.

    Args:
        height: image height in pixels, >= 1.
        width: image width in pixels, >= 1.

    Returns:
        H x W bool, True inside the hole.

    Raises:
        ValueError: If a size is not an integer >= 1.
    """
    height = _check_int(height, "height", 1)
    width = _check_int(width, "width", 1)
    mask = np.zeros((height, width), dtype=bool)
    top, left = height // 4, width // 4
    mask[top : top + height // 2, left : left + width // 2] = True
    return mask


def count_points(sparse: Any) -> int:
    """Number of measured pixels (> 0) in `sparse`.

    Args:
        sparse: HxW float array-like, metres; 0, NaN and negative values are not counted.
    """
    return int(np.count_nonzero(as_depth_map(sparse, "sparse") > 0))


def schedule_points(sparse: np.ndarray, n_lines: int | None = None) -> int:
    """The point count s that sets the iteration count of eq. 13.

    For random points it is the number of measurements. For LiDAR lines the paper uses the
    average number of measurements per line (section 4.3), since the gaps between lines, not
    between single points, limit how far the mask must grow.

    Args:
        sparse: H x W float32 metres; 0 = missing.
        n_lines: number of LiDAR lines the measurements came from, or None for points.

    Returns:
        s >= 1 when there is any measurement, else 0.
    """
    n_points = count_points(sparse)
    if n_lines is None or n_points == 0:
        return n_points
    if n_lines < 1:
        raise ValueError(f"n_lines must be >= 1, got {n_lines}")
    return max(1, n_points // n_lines)
