from __future__ import annotations

import numpy as np
import pytest

from sdr_core.validation import (
    as_depth_map,
    as_hole_mask,
    as_rgb_image,
    check_same_shape,
    sanitize_depth,
)

# ---------------------------------------------------------------- depth maps


def test_as_depth_map_replaces_invalid_values_with_zero():
    raw = np.array([[1.5, np.nan, -2.0], [np.inf, -np.inf, 0.0]], dtype=np.float64)
    out = as_depth_map(raw)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, [[1.5, 0, 0], [0, 0, 0]])


def test_sanitize_depth_counts_replacements():
    raw = np.array([[1.5, np.nan, -2.0], [np.inf, -np.inf, 0.0]])
    clean, n_replaced = sanitize_depth(raw, "sparse")
    assert n_replaced == 4  # NaN, -2, +inf, -inf; the 0 was already "missing"
    assert clean[0, 0] == np.float32(1.5)


def test_sanitize_depth_counts_float32_overflow():
    clean, n_replaced = sanitize_depth(np.array([[1e300, 2.0]]))
    assert n_replaced == 1
    np.testing.assert_array_equal(clean, [[0.0, 2.0]])


def test_as_depth_map_returns_a_copy():
    raw = np.array([[1.0, np.nan]], dtype=np.float32)
    out = as_depth_map(raw)
    assert np.isnan(raw[0, 1])  # input untouched
    out[0, 0] = 9.0
    assert raw[0, 0] == 1.0


@pytest.mark.parametrize(
    "value",
    [[[1, 2], [3, 4]], np.array([[1, 2]], dtype=np.uint16), np.ones((2, 3, 1), np.float64)],
)
def test_as_depth_map_accepts_lists_ints_and_hwx1(value):
    out = as_depth_map(value)
    assert out.dtype == np.float32
    assert out.ndim == 2


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (np.ones(5), r"depth must be HxW \(or HxWx1\), got shape \(5,\)"),
        (np.ones((2, 3, 3)), r"got shape \(2, 3, 3\)"),
        (np.zeros((0, 4)), "depth is empty"),
        (np.array([["a", "b"]]), "non-numeric dtype"),
        (np.ones((2, 2), dtype=bool), "dtype bool"),
        (np.ones((2, 2), dtype=complex), "non-numeric dtype complex128"),
    ],
)
def test_as_depth_map_rejects_bad_input(value, message):
    with pytest.raises(ValueError, match=message):
        as_depth_map(value)


def test_as_depth_map_names_the_argument():
    with pytest.raises(ValueError, match="^gt_depth must be HxW"):
        as_depth_map(np.ones(3), name="gt_depth")


# ---------------------------------------------------------------- images


def test_as_rgb_image_uint8_is_copied():
    image = np.arange(24, dtype=np.uint8).reshape(2, 4, 3)
    out = as_rgb_image(image)
    np.testing.assert_array_equal(out, image)
    assert out is not image


def test_as_rgb_image_grey_is_stacked():
    grey = np.array([[0, 128]], dtype=np.uint8)
    out = as_rgb_image(grey)
    assert out.shape == (1, 2, 3)
    np.testing.assert_array_equal(out[0, 1], [128, 128, 128])


def test_as_rgb_image_drops_alpha():
    rgba = np.zeros((1, 1, 4), dtype=np.uint8)
    rgba[0, 0] = [10, 20, 30, 255]
    np.testing.assert_array_equal(as_rgb_image(rgba)[0, 0], [10, 20, 30])


def test_as_rgb_image_float_scaled():
    image = np.array([[[0.0, 0.5, 1.0]]], dtype=np.float32)
    # 0.5 * 255 = 127.5, rounded half to even -> 128
    np.testing.assert_array_equal(as_rgb_image(image)[0, 0], [0, 128, 255])


def test_as_rgb_image_uint16_shifted():
    image = np.array([[[65535, 256, 255]]], dtype=np.uint16)
    np.testing.assert_array_equal(as_rgb_image(image)[0, 0], [255, 1, 0])


def test_as_rgb_image_small_ints_accepted():
    out = as_rgb_image([[[0, 100, 255]]])  # int64 from a Python list
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out[0, 0], [0, 100, 255])


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (np.full((2, 2, 3), 1.5), r"float with values in \[1.5, 1.5\]"),
        (np.full((2, 2, 3), np.nan), "NaN or inf"),
        (np.full((2, 2, 3), 300, dtype=np.int32), r"int32 with values in \[300, 300\]"),
        (np.zeros((2, 2, 2), dtype=np.uint8), r"got shape \(2, 2, 2\)"),
        (np.zeros(4, dtype=np.uint8), r"got shape \(4,\)"),
        (np.zeros((2, 2, 3), dtype=bool), "dtype bool"),
    ],
)
def test_as_rgb_image_rejects_bad_input(value, message):
    with pytest.raises(ValueError, match=message):
        as_rgb_image(value)


# ---------------------------------------------------------------- shapes


def test_check_same_shape_compares_height_and_width_only():
    check_same_shape(np.zeros((4, 5, 3)), np.zeros((4, 5)), "image", "depth")


def test_check_same_shape_message():
    with pytest.raises(ValueError, match=r"^image is 228x304 but depth is 100x100 \(H x W\)"):
        check_same_shape(np.zeros((228, 304, 3)), np.zeros((100, 100)), "image", "depth")


def test_check_same_shape_accepts_shape_tuples():
    check_same_shape((3, 4), np.zeros((3, 4)), "shape", "depth")
    with pytest.raises(ValueError, match="must have at least 2 dimensions"):
        check_same_shape(np.zeros(3), np.zeros((3, 4)), "a", "b")


# ---------------------------------------------------------------- masks


@pytest.mark.parametrize(
    "mask",
    [
        np.array([[True, False]]),
        np.array([[1, 0]]),
        np.array([[255, 0]], dtype=np.uint8),
        np.array([[1.0, 0.0]]),
        np.array([[[1], [0]]]),
    ],
)
def test_as_hole_mask_accepted_encodings(mask):
    out = as_hole_mask(mask, (1, 2))
    assert out.dtype == np.bool_
    np.testing.assert_array_equal(out, [[True, False]])


def test_as_hole_mask_takes_image_shape():
    assert as_hole_mask(np.zeros((2, 3), int), (2, 3, 3)).shape == (2, 3)


def test_as_hole_mask_shape_mismatch():
    with pytest.raises(ValueError, match=r"^hole_mask is 2x2 but expected shape is 3x3"):
        as_hole_mask(np.zeros((2, 2), bool), (3, 3))


@pytest.mark.parametrize(
    ("mask", "message"),
    [
        (np.array([[0, 2]]), r"got values \{0, 2\} with dtype int64"),
        (np.array([[0, 128, 255]], dtype=np.uint8), r"\{0, 128, 255\}"),
        (np.array([[0, 255]], dtype=np.int32), r"\{0, 255\} with dtype int32"),
        (np.zeros(4, bool), "must be HxW"),
    ],
)
def test_as_hole_mask_rejects_bad_values(mask, message):
    shape = mask.shape if mask.ndim == 2 else (2, 2)
    with pytest.raises(ValueError, match=message):
        as_hole_mask(mask, shape)
