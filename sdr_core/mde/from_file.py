"""The "bring your own MDE" backend: a depth map supplied by the user stands in for D0."""

from __future__ import annotations

import numpy as np

from ..validation import as_depth_map, check_same_shape

__all__ = ["StaticDepthEstimator"]


class StaticDepthEstimator:
    """Returns a fixed, user-supplied initial depth for an image of the same size.

    Missing values (0, NaN, inf, negative) are filled with the median of the valid ones, since
    D0 must be dense for the refinement.
    """

    name = "from file"

    def __init__(self, depth: np.ndarray) -> None:
        depth = as_depth_map(depth, "initial depth")
        valid = depth > 0
        if not valid.any():
            raise ValueError("initial depth has no valid (positive, finite) value")
        self.depth = np.where(valid, depth, np.median(depth[valid])).astype(np.float32)

    def estimate(self, image: np.ndarray) -> np.ndarray:
        """The stored depth (H x W float32 metres); its size must match ``image``."""
        check_same_shape(image, self.depth, "image", "initial depth")
        return self.depth.copy()
