"""What the RGB-D readers and writers share: the error type, the size limit, depth units.

Any problem with a file raises `RGBDFileError`, a `ValueError` whose message starts with the
file's base name and says what is wrong in plain words, so an app can show it as it is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np

MAX_PIXELS = 40_000_000
"""Largest image or depth map (height x width) any reader accepts; checked before decoding."""


DepthUnits = Literal["mm", "kitti", "m"]
"""How raw values map to metres: "mm" = value / 1000, "kitti" = value / 256, "m" = value."""


UNIT_SCALE: dict[str, float] = {"mm": 1e-3, "kitti": 1.0 / 256.0, "m": 1.0}


class RGBDFileError(ValueError):
    """A file could not be used; the message names the file and the reason in plain words.

    Attributes:
        path: the offending file (or folder), when there is a single one.
    """

    def __init__(self, message: str, path: str | Path | None = None) -> None:
        super().__init__(message)
        self.path = None if path is None else Path(path)


def fail(path: str | Path, reason: str) -> RGBDFileError:
    """The `RGBDFileError` for `path`: its base name, a colon and the reason."""
    path = Path(path)
    return RGBDFileError(f"{path.name}: {reason}", path)


def check_exists(path: Path) -> None:
    """Refuse a path that does not exist or is not a regular file."""
    if not path.exists():
        raise fail(path, "file not found")
    if not path.is_file():
        raise fail(path, "is not a file")


def check_pixels(path: Path, height: int, width: int) -> None:
    """Refuse an empty image size or one over `MAX_PIXELS` pixels."""
    if height <= 0 or width <= 0:
        raise fail(path, f"image has an empty size ({width}x{height} pixels)")
    if height * width > MAX_PIXELS:
        raise fail(
            path,
            f"image of {width}x{height} pixels exceeds the limit of "
            f"{MAX_PIXELS // 1_000_000} megapixels",
        )


def squeeze_channel(array: np.ndarray) -> np.ndarray:
    """1 x H x W or H x W x 1 -> H x W; anything else is returned unchanged."""
    if array.ndim == 3 and array.shape[0] == 1:
        return array[0]
    if array.ndim == 3 and array.shape[2] == 1:
        return array[:, :, 0]
    return array


def check_depth_array(depth_m: np.ndarray, what: str = "depth_m") -> np.ndarray:
    """`depth_m` as an H x W numeric array (1 x H x W and H x W x 1 squeezed)."""
    depth = squeeze_channel(np.asarray(depth_m))
    if depth.ndim != 2:
        raise ValueError(f"{what} must be an H x W array, got shape {np.shape(depth_m)}")
    if not (np.issubdtype(depth.dtype, np.floating) or np.issubdtype(depth.dtype, np.integer)):
        raise ValueError(f"{what} must hold numbers, got dtype {depth.dtype}")
    return depth
