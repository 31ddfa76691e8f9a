"""Shared input checks for the public numpy API.

Every public function in ``sdr_core`` that takes a depth map, an image or a mask runs it
through one of these helpers first, so bad input fails early with a ``ValueError`` that
names the argument and the problem, and every module treats missing depth the same way
(0 = no measurement).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

__all__ = [
    "as_depth_map",
    "as_hole_mask",
    "as_rgb_image",
    "check_same_shape",
    "sanitize_depth",
]


def _as_numeric_array(value: Any, name: str) -> np.ndarray:
    """Convert `value` to an ndarray and reject non-numeric, boolean and empty input."""
    try:
        array = np.asarray(value)
    except (TypeError, ValueError) as error:  # ragged nested lists, unconvertible objects
        raise ValueError(f"{name} could not be converted to a numpy array: {error}") from error
    if array.dtype == np.bool_:
        raise ValueError(f"{name} has dtype bool; expected a numeric array")
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise ValueError(f"{name} has non-numeric dtype {array.dtype}; expected integer or float")
    if array.size == 0:
        raise ValueError(f"{name} is empty (shape {array.shape})")
    return array


def _format_hw(shape: Sequence[int]) -> str:
    return f"{shape[0]}x{shape[1]}"


def sanitize_depth(depth: Any, name: str = "depth") -> tuple[np.ndarray, int]:
    """Return a clean float32 depth map and how many values were replaced by 0.

    Args:
        depth: HxW or HxWx1 array-like of any integer or float dtype, metres.
            NaN, +-inf and negative values are treated as missing.
        name: Argument name used in error messages.

    Returns:
        A pair ``(clean, n_replaced)``: ``clean`` is a new HxW float32 array in metres with
        0 = missing, and ``n_replaced`` counts the NaN, +-inf and negative input values
        (plus finite values too large for float32) that became 0.

    Raises:
        ValueError: If `depth` is empty, not numeric (bool counts as not numeric), or not
            HxW / HxWx1.
    """
    array = _as_numeric_array(depth, name)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim != 2:
        raise ValueError(f"{name} must be HxW (or HxWx1), got shape {array.shape}")
    # float64 values above float32's max (~3.4e38) overflow to inf on the cast; they are
    # then caught as non-finite below instead of raising a RuntimeWarning.
    with np.errstate(over="ignore"):
        clean = array.astype(np.float32, copy=True)
    bad = ~np.isfinite(clean) | (clean < 0)
    n_replaced = int(np.count_nonzero(bad))
    if n_replaced:
        clean[bad] = 0.0
        logger.debug("%s: replaced %d NaN/inf/negative values with 0", name, n_replaced)
    return clean, n_replaced


def as_depth_map(depth: Any, name: str = "depth") -> np.ndarray:
    """Return `depth` as a new HxW float32 map in metres with 0 = missing.

    Args:
        depth: HxW or HxWx1 array-like, integer or float, metres. NaN, +-inf and negative
            values become 0 (missing); use :func:`sanitize_depth` to learn how many.
        name: Argument name used in error messages.

    Returns:
        HxW float32 copy, metres; 0 = missing.

    Raises:
        ValueError: If `depth` is empty, non-numeric or not HxW / HxWx1.
    """
    clean, _ = sanitize_depth(depth, name)
    return clean


def as_rgb_image(image: Any, name: str = "image") -> np.ndarray:
    """Return `image` as a new HxWx3 uint8 RGB array.

    Accepted input:

    * HxW grey (stacked to three channels), HxWx1, HxWx3, or HxWx4 (alpha dropped);
    * uint8 as is; uint16 shifted right by 8 bits; other integer dtypes if every value is
      in [0, 255]; float (any precision) if every value is finite and in [0, 1], scaled by
      255 and rounded.

    Args:
        image: HxW, HxWx1, HxWx3 or HxWx4 array-like as above.
        name: Argument name used in error messages.

    Returns:
        HxWx3 uint8 RGB copy.

    Raises:
        ValueError: For any other shape or dtype, for float values outside [0, 1] or not
            finite, and for integer values outside [0, 255] (other than uint16).
    """
    array = _as_numeric_array(image, name)
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4):
        raise ValueError(f"{name} must be HxW, HxWx1, HxWx3 or HxWx4, got shape {array.shape}")
    if array.shape[2] == 4:
        array = array[:, :, :3]
    elif array.shape[2] == 1:
        array = np.repeat(array, 3, axis=2)

    if array.dtype == np.uint8:
        return np.ascontiguousarray(array).copy()
    if array.dtype == np.uint16:
        return (array >> 8).astype(np.uint8)
    if np.issubdtype(array.dtype, np.floating):
        if not np.all(np.isfinite(array)):
            raise ValueError(f"{name} contains NaN or inf values")
        low, high = float(array.min()), float(array.max())
        if low < 0.0 or high > 1.0:
            raise ValueError(
                f"{name} is float with values in [{low:g}, {high:g}]; float images must be "
                "in [0, 1] (or pass uint8)"
            )
        return np.rint(array.astype(np.float64) * 255.0).astype(np.uint8)
    # Remaining: signed or wide unsigned integers, e.g. int64 from a Python list.
    low, high = int(array.min()), int(array.max())
    if low < 0 or high > 255:
        raise ValueError(
            f"{name} has dtype {array.dtype} with values in [{low}, {high}]; integer images "
            "must be uint8, uint16, or hold values in [0, 255]"
        )
    return array.astype(np.uint8)


def _spatial_shape(value: Any, name: str) -> tuple[int, int]:
    shape = value.shape if hasattr(value, "shape") else tuple(value)
    if len(shape) < 2:
        raise ValueError(f"{name} must have at least 2 dimensions (H x W), got shape {shape}")
    return int(shape[0]), int(shape[1])


def check_same_shape(a: Any, b: Any, name_a: str, name_b: str) -> None:
    """Raise if `a` and `b` differ in height or width.

    Only the first two axes (H, W) are compared, so an HxWx3 image can be checked against
    an HxW depth map.

    Args:
        a: Array with ``.shape`` (or a shape tuple) whose first two axes are H, W.
        b: Same as `a`.
        name_a: Name of `a` for the message.
        name_b: Name of `b` for the message.

    Raises:
        ValueError: For example ``"image is 228x304 but depth is 100x100 (H x W); they
            must match"``.
    """
    shape_a = _spatial_shape(a, name_a)
    shape_b = _spatial_shape(b, name_b)
    if shape_a != shape_b:
        raise ValueError(
            f"{name_a} is {_format_hw(shape_a)} but {name_b} is {_format_hw(shape_b)} "
            "(H x W); they must match"
        )


def as_hole_mask(mask: Any, shape: Sequence[int], name: str = "hole_mask") -> np.ndarray:
    """Return `mask` as a new HxW bool array (True = inside the hole / region).

    Accepted input: bool; any integer or float array holding only 0 and 1; uint8 holding
    only 0 and 255 (an 8-bit mask image). HxWx1 is squeezed.

    Args:
        mask: HxW or HxWx1 array-like as above.
        shape: Expected shape; only the first two entries (H, W) are used, so an image's
            ``shape`` can be passed directly.
        name: Argument name used in error messages.

    Returns:
        HxW bool copy.

    Raises:
        ValueError: On a shape mismatch, an empty or non-numeric array, or values other
            than {0, 1} (or {0, 255} for uint8).
    """
    try:
        array = np.asarray(mask)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name} could not be converted to a numpy array: {error}") from error
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim != 2:
        raise ValueError(f"{name} must be HxW (or HxWx1), got shape {array.shape}")
    check_same_shape(array, shape, name, "expected shape")
    if array.dtype == np.bool_:
        return array.copy()
    array = _as_numeric_array(array, name)
    values = np.unique(array)
    if np.all(np.isin(values, (0, 1))):
        return array != 0
    if array.dtype == np.uint8 and np.all(np.isin(values, (0, 255))):
        return array != 0
    shown = ", ".join(f"{v:g}" for v in values[:5].tolist())
    raise ValueError(
        f"{name} must hold only 0/1 (or 0/255 as uint8) or be bool; got values "
        f"{{{shown}{', ...' if values.size > 5 else ''}}} with dtype {array.dtype}"
    )
