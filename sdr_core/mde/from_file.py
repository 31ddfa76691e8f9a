"""The "bring your own MDE" backend: a depth map supplied by the user stands in for D0."""

from __future__ import annotations

import numpy as np

from ..validation import as_depth_map, check_same_shape

__all__ = ["StaticDepthEstimator", "fill_missing"]


def fill_missing(depth: np.ndarray, name: str = "initial depth") -> np.ndarray:
    """A dense copy of ``depth``: missing values take the median of the valid ones.

    D0 must be dense for the refinement, and a user's depth map often has holes (sensor
    dropouts, invalid pixels); the median is a neutral stand-in the refinement corrects.

    Args:
        depth: H x W metres; 0, NaN, inf and negative values count as missing.
        name: what the map is, for the error message.

    Returns:
        H x W float32 metres, > 0 everywhere.

    Raises:
        ValueError: no valid value at all (or not an H x W map).
    """
    depth = as_depth_map(depth, name)
    valid = depth > 0
    if not valid.any():
        raise ValueError(f"{name} has no valid (positive, finite) value")
    return np.where(valid, depth, np.median(depth[valid])).astype(np.float32)


class StaticDepthEstimator:
    """Returns a fixed, user-supplied initial depth for an image of the same size.

    Missing values (0, NaN, inf, negative) are filled with the median of the valid ones
    (:func:`fill_missing`), since D0 must be dense for the refinement.
    """

    name = "from file"

    def __init__(self, depth: np.ndarray) -> None:
        self.depth = fill_missing(depth)

    def estimate(self, image: np.ndarray) -> np.ndarray:
        """The stored depth (H x W float32 metres); its size must match ``image``."""
        check_same_shape(image, self.depth, "image", "initial depth")
        return self.depth.copy()
