"""Tests for sdr_core.data.middlebury: the Motorcycle scene and disparity -> depth."""

from __future__ import annotations

import numpy as np
import pytest

from sdr_core.data.middlebury import (
    MOTORCYCLE_BASELINE_MM,
    MOTORCYCLE_CX_PX,
    MOTORCYCLE_CY_PX,
    MOTORCYCLE_DOFFS_PX,
    MOTORCYCLE_FOCAL_PX,
    RGBDScene,
    disparity_to_depth,
    load_middlebury_motorcycle,
)


@pytest.fixture(scope="module")
def scene() -> RGBDScene:
    return load_middlebury_motorcycle()


def test_disparity_to_depth_hand_values():
    # 1000 mm * 100 px / (40 + 10) px = 2000 mm = 2 m.
    disparity = np.array([[40.0, np.inf, np.nan, 0.0, -5.0, 90.0]], np.float32)
    depth = disparity_to_depth(disparity, focal_px=100.0, baseline_mm=1000.0, doffs_px=10.0)
    assert depth.dtype == np.float32
    np.testing.assert_allclose(depth, [[2.0, 0.0, 0.0, 0.0, 0.0, 1.0]], rtol=1e-6)


def test_disparity_to_depth_rejects_bad_calibration():
    with pytest.raises(ValueError, match="focal_px and baseline_mm must be positive"):
        disparity_to_depth(np.ones((2, 2)), focal_px=0.0, baseline_mm=1.0, doffs_px=0.0)


def test_scene_shapes_and_calibration(scene):
    assert scene.name == "middlebury_motorcycle"
    assert scene.rgb.shape == (500, 741, 3)
    assert scene.rgb.dtype == np.uint8
    assert scene.depth.shape == (500, 741)
    assert scene.depth.dtype == np.float32
    assert scene.intrinsics == (
        MOTORCYCLE_FOCAL_PX,
        MOTORCYCLE_FOCAL_PX,
        MOTORCYCLE_CX_PX,
        MOTORCYCLE_CY_PX,
    )
    assert "Middlebury" in scene.description


def test_scene_depth_range_is_plausible(scene):
    # Measured on the shipped data: 92.7 % valid, 2.11 m .. 5.02 m, median 2.75 m
    # (disparity 59.9 .. 7.2 px). A slip in units or in doffs would move these a lot.
    valid = scene.depth > 0
    assert 0.90 < valid.mean() < 0.95
    assert 2.0 < scene.depth[valid].min() < 2.2
    assert 4.9 < scene.depth[valid].max() < 5.1
    assert 2.6 < np.median(scene.depth[valid]) < 2.9


def test_scene_invalid_disparity_becomes_zero(scene):
    from skimage.data import stereo_motorcycle

    _, _, disparity = stereo_motorcycle()
    invalid = ~np.isfinite(disparity)
    assert invalid.any()
    np.testing.assert_array_equal(scene.depth == 0, invalid)
    expected = MOTORCYCLE_BASELINE_MM * MOTORCYCLE_FOCAL_PX / (disparity + MOTORCYCLE_DOFFS_PX)
    np.testing.assert_allclose(scene.depth[~invalid], expected[~invalid] / 1000, rtol=1e-6)


def test_resize_keeps_shapes_scales_intrinsics_and_never_blends(scene):
    small = load_middlebury_motorcycle(size=(250, 370))
    assert small.rgb.shape == (250, 370, 3)
    assert small.rgb.dtype == np.uint8
    assert small.depth.shape == (250, 370)
    fx, fy, cx, cy = small.intrinsics
    assert fx == pytest.approx(MOTORCYCLE_FOCAL_PX * 370 / 741)
    assert fy == pytest.approx(MOTORCYCLE_FOCAL_PX * 250 / 500)
    assert cx == pytest.approx((MOTORCYCLE_CX_PX + 0.5) * 370 / 741 - 0.5)
    assert cy == pytest.approx((MOTORCYCLE_CY_PX + 0.5) * 250 / 500 - 0.5)
    # Nearest neighbour: every resized depth value exists in the original map.
    assert np.isin(np.unique(small.depth), np.unique(scene.depth)).all()
    valid = small.depth > 0
    assert 0.85 < valid.mean() < 0.98


def test_resize_rejects_empty_size():
    with pytest.raises(ValueError, match="size must be"):
        load_middlebury_motorcycle(size=(0, 10))
