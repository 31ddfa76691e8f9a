"""sdr_core.camera: NYUv2 intrinsics, rescaling, back-projection, and the modules using them."""

from __future__ import annotations

import numpy as np
import pytest

from sdr_core import camera, viz
from sdr_core.camera import (
    NYU_FOCAL_PER_WIDTH,
    NYU_INTRINSICS_640X480,
    back_project,
    check_intrinsics,
    default_intrinsics,
    scale_intrinsics,
)
from sdr_core.data import io
from sdr_core.data.synthetic import SceneConfig


def test_default_intrinsics_are_nyu_at_640x480_and_scale_with_size():
    assert default_intrinsics(480, 640) == pytest.approx(NYU_INTRINSICS_640X480)
    fx, fy, cx, cy = default_intrinsics(240, 320)
    assert (fx, fy) == pytest.approx((518.8579 / 2, 519.4696 / 2))
    assert (cx, cy) == pytest.approx(((325.5824 + 0.5) / 2 - 0.5, (253.7362 + 0.5) / 2 - 0.5))
    assert scale_intrinsics((1.0, 2.0, 3.0, 4.0), 1.0, 1.0) == (1.0, 2.0, 3.0, 4.0)
    with pytest.raises(ValueError, match="image size must be positive"):
        default_intrinsics(0, 640)


def test_one_set_of_nyu_intrinsics_everywhere():
    # The readers, the point-cloud figure and the synthetic scenes all use these numbers.
    assert viz.NYU_INTRINSICS == NYU_INTRINSICS_640X480
    assert io.default_intrinsics is camera.default_intrinsics
    assert io.scale_intrinsics is camera.scale_intrinsics
    assert SceneConfig().focal_per_width == NYU_FOCAL_PER_WIDTH == 518.8579 / 640


def test_back_project_hand_values():
    rows, cols = np.array([0, 2]), np.array([0, 3])
    x, y = back_project(rows, cols, np.array([1.0, 2.0]), (10.0, 20.0, 1.0, 1.0))
    np.testing.assert_allclose(x, [-0.1, 0.4])  # (u - cx) z / fx
    np.testing.assert_allclose(y, [-0.05, 0.1])  # (v - cy) z / fy


@pytest.mark.parametrize(
    ("intrinsics", "match"),
    [
        ((1.0, 2.0, 3.0), "4 finite numbers"),
        ((1.0, 2.0, 3.0, float("nan")), "4 finite numbers"),
        ((0.0, 2.0, 3.0, 4.0), "must be > 0 pixels"),
    ],
)
def test_check_intrinsics_refuses_bad_values(intrinsics, match):
    with pytest.raises(ValueError, match=match):
        check_intrinsics(intrinsics)


def test_point_cloud_figure_and_ply_agree_on_the_default_camera():
    # Without intrinsics both back-project with NYUv2's camera scaled to the image, so the
    # plotted cloud and the exported PLY put a pixel at the same place.
    pytest.importorskip("plotly")
    depth = np.full((6, 8), 2.0, np.float32)
    rgb = np.zeros((6, 8, 3), np.uint8)
    trace = viz.point_cloud_figure(depth, rgb).data[0]
    points = io.depth_to_points(depth, default_intrinsics(6, 8))
    np.testing.assert_allclose(trace.x, points[:, 0], rtol=1e-6)  # scene x = camera X
    np.testing.assert_allclose(trace.z, -points[:, 1], rtol=1e-6)  # scene up = -camera Y
