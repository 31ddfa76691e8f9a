"""Resizing an image and its depth map together (bilinear colour, nearest depth)."""

from __future__ import annotations

import numpy as np
from PIL import Image


def resize_rgb(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize an image with Pillow's bilinear filter (area-weighted when shrinking).

    Args:
        rgb: H x W x 3 uint8.
        size: (height, width) of the result.

    Returns:
        height x width x 3 uint8.
    """
    height, width = size
    image = Image.fromarray(np.ascontiguousarray(rgb))
    return np.asarray(image.resize((width, height), Image.Resampling.BILINEAR)).copy()


def resize_depth_nearest(depth: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize depth by nearest neighbour, so no value is blended across a depth edge.

    Output pixel (i, j) takes input pixel (floor((i + 0.5) H / h), floor((j + 0.5) W / w)),
    the pixel under its centre; missing (0) stays missing.

    Args:
        depth: H x W float, metres.
        size: (height, width) of the result.

    Returns:
        height x width array of depth's dtype.
    """
    height, width = size
    in_h, in_w = depth.shape
    rows = np.minimum(((np.arange(height) + 0.5) * in_h / height).astype(np.int64), in_h - 1)
    cols = np.minimum(((np.arange(width) + 0.5) * in_w / width).astype(np.int64), in_w - 1)
    return depth[rows[:, None], cols[None, :]]
