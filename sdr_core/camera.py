"""Pinhole camera maths: the NYUv2 intrinsics, rescaling them, back-projecting depth.

One place for what the readers and writers (``data.io``), the point-cloud figure (``viz``)
and the synthetic scenes (``data.synthetic``) all need.

Conventions: intrinsics are ``(fx, fy, cx, cy)`` in pixels; the camera frame is OpenCV's
(x right, y down, z forward, metres); pixel (row v, column u) has its centre at (u, v), so a
point (X, Y, Z) lands at u = fx X / Z + cx, v = fy Y / Z + cy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = [
    "NYU_FOCAL_PER_WIDTH",
    "NYU_INTRINSICS_640X480",
    "NYU_SIZE_WH",
    "Intrinsics",
    "back_project",
    "check_intrinsics",
    "default_intrinsics",
    "scale_intrinsics",
]

Intrinsics = tuple[float, float, float, float]

NYU_SIZE_WH = (640, 480)
"""Width and height in pixels of the NYUv2 Kinect colour frames."""

NYU_INTRINSICS_640X480: Intrinsics = (518.8579, 519.4696, 325.5824, 253.7362)
"""NYUv2 Kinect colour intrinsics (fx, fy, cx, cy) in pixels at 640 x 480."""

NYU_FOCAL_PER_WIDTH = NYU_INTRINSICS_640X480[0] / NYU_SIZE_WH[0]
"""NYUv2 colour focal length (518.86 px at 640 px wide) per pixel of image width."""


def scale_intrinsics(intrinsics: Sequence[float], scale_x: float, scale_y: float) -> Intrinsics:
    """Intrinsics of an image resized by (scale_x, scale_y).

    Pixel centres sit at integer coordinates and the resize maps the image's outer edges
    onto each other (as Pillow does), so cx' = (cx + 0.5) * scale_x - 0.5; focal lengths
    scale directly.

    Args:
        intrinsics: (fx, fy, cx, cy) in pixels.
        scale_x: new width / old width.
        scale_y: new height / old height.

    Returns:
        (fx, fy, cx, cy) in pixels of the resized image.
    """
    fx, fy, cx, cy = (float(v) for v in intrinsics)
    return (
        fx * scale_x,
        fy * scale_y,
        (cx + 0.5) * scale_x - 0.5,
        (cy + 0.5) * scale_y - 0.5,
    )


def default_intrinsics(height: int, width: int) -> Intrinsics:
    """NYUv2 Kinect intrinsics scaled to an image of the given size.

    A stand-in when the real camera is unknown: NYUv2's (518.8579, 519.4696, 325.5824,
    253.7362) at 640 x 480, scaled by (width / 640, height / 480) with `scale_intrinsics`.
    This treats the image as a resized full NYUv2 frame. For a crop (e.g. the 304 x 228
    centre crop after halving) subtract the crop's left/top offset from cx/cy instead.

    Args:
        height: image height in pixels.
        width: image width in pixels.

    Returns:
        (fx, fy, cx, cy) in pixels.

    Raises:
        ValueError: a size is not positive.
    """
    if height <= 0 or width <= 0:
        raise ValueError(f"image size must be positive, got height={height}, width={width}")
    nyu_width, nyu_height = NYU_SIZE_WH
    return scale_intrinsics(NYU_INTRINSICS_640X480, width / nyu_width, height / nyu_height)


def check_intrinsics(intrinsics: Sequence[float]) -> Intrinsics:
    """Validate caller-supplied intrinsics and return them as four floats.

    Args:
        intrinsics: (fx, fy, cx, cy) in pixels.

    Returns:
        (fx, fy, cx, cy) as floats.

    Raises:
        ValueError: not four finite numbers, or a focal length that is not positive.
    """
    values = tuple(float(v) for v in intrinsics)
    if len(values) != 4 or not all(math.isfinite(v) for v in values):
        raise ValueError(f"intrinsics must be 4 finite numbers (fx, fy, cx, cy), got {intrinsics}")
    if values[0] <= 0 or values[1] <= 0:
        raise ValueError(f"focal lengths fx, fy must be > 0 pixels, got {values[:2]}")
    fx, fy, cx, cy = values
    return fx, fy, cx, cy


def back_project(
    rows: np.ndarray, cols: np.ndarray, depth_m: np.ndarray, intrinsics: Sequence[float]
) -> tuple[np.ndarray, np.ndarray]:
    """Camera-frame x and y of pixels (row v, column u) at z-depth ``depth_m``.

    x = (u - cx) z / fx, y = (v - cy) z / fy; z is ``depth_m`` itself.

    Args:
        rows: pixel rows v (any shape).
        cols: pixel columns u, same shape.
        depth_m: z-depth of each pixel, metres, same shape.
        intrinsics: (fx, fy, cx, cy) in pixels.

    Returns:
        (x, y) in metres, each the shape of ``depth_m``.
    """
    fx, fy, cx, cy = (float(v) for v in intrinsics)
    return (cols - cx) * depth_m / fx, (rows - cy) * depth_m / fy
