"""Monocular depth estimators (MDE) behind one protocol: image in, metric depth D0 out.

- ``bundled``: a compact network trained by this project on its procedural indoor scenes.
  Weak on real photographs; it exists so the demo runs offline out of the box.
- ``from_file``: a depth map the user already has ("bring your own MDE").
- ``depth_anything``: Depth Anything V2 through ``transformers`` when its weights can be
  loaded (optional; never required).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

__all__ = ["DepthEstimator"]


@runtime_checkable
class DepthEstimator(Protocol):
    """Anything that turns an RGB image into an initial metric depth map D0."""

    name: str

    def estimate(self, image: np.ndarray) -> np.ndarray:
        """Estimate depth.

        Args:
            image: H x W x 3 uint8 RGB.

        Returns:
            H x W float32 depth in metres, > 0 everywhere.
        """
        ...
