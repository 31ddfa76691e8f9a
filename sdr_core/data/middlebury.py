"""A real RGB-D scene built at run time from the Middlebury 2014 "Motorcycle" stereo pair.

scikit-image ships the left/right views and the ground-truth disparity, down-sampled by 4
to 741 x 500 (`skimage.data.stereo_motorcycle`). Its docstring gives the calibration at
that size, which we use to turn disparity into metric depth with Middlebury's formula

    Z [mm] = baseline [mm] * f [px] / (d [px] + doffs [px])

Source: D. Scharstein, H. Hirschmueller, Y. Kitajima, G. Krathwohl, N. Nesic, X. Wang and
P. Westling, "High-resolution stereo datasets with subpixel-accurate ground truth",
GCPR 2014. The full-size calibration (cam0 = [3979.911 0 1244.772; 0 3979.911 1019.507],
doffs = 124.343, baseline = 193.001) divided by 4 gives the constants below.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sdr_core.camera import scale_intrinsics
from sdr_core.data.io import resize_depth_nearest, resize_rgb

__all__ = [
    "MOTORCYCLE_BASELINE_MM",
    "MOTORCYCLE_CX_PX",
    "MOTORCYCLE_CY_PX",
    "MOTORCYCLE_DOFFS_PX",
    "MOTORCYCLE_FOCAL_PX",
    "RGBDScene",
    "disparity_to_depth",
    "load_middlebury_motorcycle",
]

# Calibration of the 741 x 500 images shipped by scikit-image (its docstring; 1/4 of the
# published full-resolution calib.txt values).
MOTORCYCLE_FOCAL_PX = 994.978
MOTORCYCLE_BASELINE_MM = 193.001
MOTORCYCLE_DOFFS_PX = 31.086  # x-difference of the two cameras' principal points
MOTORCYCLE_CX_PX = 311.193  # left camera principal point
MOTORCYCLE_CY_PX = 254.877


@dataclass(frozen=True)
class RGBDScene:
    """An RGB image with aligned metric depth and the camera that took it.

    Attributes:
        name: short identifier, e.g. "middlebury_motorcycle".
        rgb: H x W x 3 uint8.
        depth: H x W float32, metres; 0 = missing.
        intrinsics: (fx, fy, cx, cy) in pixels at this H x W.
        description: one or two sentences for a UI, with the source.
    """

    name: str
    rgb: np.ndarray
    depth: np.ndarray
    intrinsics: tuple[float, float, float, float]
    description: str


def disparity_to_depth(
    disparity_px: np.ndarray, focal_px: float, baseline_mm: float, doffs_px: float
) -> np.ndarray:
    """Convert Middlebury disparity to metric depth: baseline * f / (d + doffs) / 1000.

    Args:
        disparity_px: H x W float, pixels; inf, NaN and values <= 0 mark missing pixels.
        focal_px: focal length in pixels.
        baseline_mm: stereo baseline in millimetres.
        doffs_px: x-difference of the principal points (cx1 - cx0) in pixels.

    Returns:
        H x W float32, metres; 0 where the disparity is missing.
    """
    if not (focal_px > 0 and baseline_mm > 0):
        raise ValueError(
            f"focal_px and baseline_mm must be positive, got {focal_px!r} and {baseline_mm!r}"
        )
    disparity = np.asarray(disparity_px, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        valid = np.isfinite(disparity) & (disparity > 0) & (disparity + doffs_px > 0)
        depth_m = np.where(valid, baseline_mm * focal_px / (disparity + doffs_px) / 1000.0, 0.0)
    return depth_m.astype(np.float32)


def load_middlebury_motorcycle(size: tuple[int, int] | None = None) -> RGBDScene:
    """The Middlebury 2014 "Motorcycle" left view with ground-truth metric depth.

    At the shipped 741 x 500 size about 93 % of pixels have depth, between about 2.1 m and
    5.0 m (median 2.75 m); the rest (occlusions, missing ground truth) are 0.

    Args:
        size: optional (height, width). The image is resized with Pillow's bilinear filter
            (area-weighted when shrinking), depth by nearest neighbour so no depth value is
            blended across an edge, and the intrinsics are scaled to match.

    Returns:
        RGBDScene with rgb H x W x 3 uint8, depth H x W float32 metres (0 = missing) and
        intrinsics (fx, fy, cx, cy) in pixels.
    """
    from skimage.data import stereo_motorcycle  # scikit-image is only needed here

    rgb, _, disparity = stereo_motorcycle()
    depth = disparity_to_depth(
        disparity, MOTORCYCLE_FOCAL_PX, MOTORCYCLE_BASELINE_MM, MOTORCYCLE_DOFFS_PX
    )
    intrinsics = (MOTORCYCLE_FOCAL_PX, MOTORCYCLE_FOCAL_PX, MOTORCYCLE_CX_PX, MOTORCYCLE_CY_PX)
    if size is not None:
        height, width = size
        if height <= 0 or width <= 0:
            raise ValueError(f"size must be (height, width) with positive values, got {size!r}")
        in_h, in_w = depth.shape
        rgb = resize_rgb(rgb, (height, width))
        depth = resize_depth_nearest(depth, (height, width))
        intrinsics = scale_intrinsics(intrinsics, width / in_w, height / in_h)
    description = (
        "Middlebury 2014 'Motorcycle' (left view): structured-light ground-truth disparity "
        "converted to metric depth with the published calibration (Scharstein et al., "
        "GCPR 2014; images shipped with scikit-image)."
    )
    return RGBDScene(
        name="middlebury_motorcycle",
        rgb=np.ascontiguousarray(rgb),
        depth=np.ascontiguousarray(depth),
        intrinsics=tuple(float(v) for v in intrinsics),
        description=description,
    )
