"""RGB-D file writers: 16-bit PNG and .npy depth maps, PLY point clouds."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from ...camera import back_project, default_intrinsics
from .common import UNIT_SCALE, DepthUnits, RGBDFileError, check_depth_array, fail

logger = logging.getLogger(__name__)


def _write_failed(path: Path, err: OSError) -> RGBDFileError:
    return fail(path, f"cannot write the file ({err.strerror or err})")


def write_depth_png(path: str | Path, depth_m: np.ndarray, units: DepthUnits = "mm") -> None:
    """Write depth as a 16-bit greyscale PNG.

    Args:
        path: output file (written as PNG whatever its extension).
        depth_m: H x W float, metres; 0, NaN, inf and negative values are written as 0.
        units: "mm" (value = round(depth * 1000), range up to 65.535 m) or "kitti"
            (value = round(depth * 256), up to 255.996 m). Deeper values are clipped to the
            maximum with a logged warning; positive depths below half a unit are written as
            1 so they stay valid.

    Raises:
        ValueError: `depth_m` not H x W, or `units` not "mm"/"kitti".
        RGBDFileError: the file cannot be written.
    """
    path = Path(path)
    if units not in ("mm", "kitti"):
        raise ValueError(f"units for a 16-bit PNG must be 'mm' or 'kitti', got {units!r}")
    depth = check_depth_array(depth_m).astype(np.float64)
    per_metre = 1.0 / UNIT_SCALE[units]
    with np.errstate(invalid="ignore"):
        valid = np.isfinite(depth) & (depth > 0)
    values = np.round(depth[valid] * per_metre)
    n_clipped = int(np.count_nonzero(values > 65535))
    if n_clipped:
        logger.warning(
            "%s: %d pixels deeper than %.3f m were clipped to it (16-bit PNG in %s)",
            path.name,
            n_clipped,
            65535 / per_metre,
            units,
        )
    raw = np.zeros(depth.shape, dtype=np.uint16)
    raw[valid] = np.clip(values, 1, 65535).astype(np.uint16)
    try:
        Image.fromarray(raw).save(path, format="PNG")
    except OSError as err:
        raise _write_failed(path, err) from err


def write_depth_npy(path: str | Path, depth_m: np.ndarray) -> None:
    """Write depth as a float32 .npy array (metres, values kept as they are).

    Args:
        path: output file; numpy appends ".npy" if the name lacks it.
        depth_m: H x W float, metres; 0 = missing.

    Raises:
        ValueError: `depth_m` not H x W.
        RGBDFileError: the file cannot be written.
    """
    path = Path(path)
    depth = check_depth_array(depth_m).astype(np.float32)
    try:
        np.save(path, depth, allow_pickle=False)
    except OSError as err:
        raise _write_failed(path, err) from err


def _valid_pixels(depth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    with np.errstate(invalid="ignore"):
        return np.nonzero(np.isfinite(depth) & (depth > 0))


def depth_to_points(depth_m: np.ndarray, intrinsics: Sequence[float]) -> np.ndarray:
    """Back-project valid depth pixels to 3-D points in the camera frame.

    Pixel (row v, column u) with depth z maps to x = (u - cx) z / fx, y = (v - cy) z / fy
    (OpenCV frame: x right, y down, z forward). Points are in row-major pixel order.

    Args:
        depth_m: H x W float, metres; 0/NaN/inf/negative pixels are skipped.
        intrinsics: (fx, fy, cx, cy) in pixels.

    Returns:
        N x 3 float32 (x, y, z) in metres, N = number of valid pixels.
    """
    depth = check_depth_array(depth_m).astype(np.float64)
    rows, cols = _valid_pixels(depth)
    z = depth[rows, cols]
    x, y = back_project(rows, cols, z, intrinsics)
    return np.stack([x, y, z], axis=1).astype(np.float32)


def write_ply(
    path: str | Path,
    depth_m: np.ndarray,
    rgb: np.ndarray | None = None,
    intrinsics: Sequence[float] | None = None,
    binary: bool = True,
) -> int:
    """Write the valid depth pixels as a coloured point cloud (PLY).

    Args:
        path: output .ply file.
        depth_m: H x W float, metres; 0/NaN/inf/negative pixels are skipped.
        rgb: H x W x 3 uint8 colours, or None for points without colour.
        intrinsics: (fx, fy, cx, cy) in pixels; None = `default_intrinsics(H, W)`.
        binary: binary little-endian (compact, default) or ASCII.

    Returns:
        The number of points written.

    Raises:
        ValueError: wrong shapes or dtypes.
        RGBDFileError: the file cannot be written.
    """
    path = Path(path)
    depth = check_depth_array(depth_m)
    if intrinsics is None:
        intrinsics = default_intrinsics(*depth.shape)
    points = depth_to_points(depth, intrinsics)
    fields = [("x", "<f4"), ("y", "<f4"), ("z", "<f4")]
    if rgb is not None:
        rgb = np.asarray(rgb)
        if rgb.shape != (*depth.shape, 3) or rgb.dtype != np.uint8:
            raise ValueError(
                f"rgb must be {depth.shape[0]} x {depth.shape[1]} x 3 uint8 to match depth_m, "
                f"got shape {rgb.shape} and dtype {rgb.dtype}"
            )
        fields += [("red", "u1"), ("green", "u1"), ("blue", "u1")]
    vertices = np.empty(len(points), dtype=fields)
    vertices["x"], vertices["y"], vertices["z"] = points.T
    if rgb is not None:
        colours = rgb[_valid_pixels(depth)]
        vertices["red"], vertices["green"], vertices["blue"] = colours.T
    header = [
        "ply",
        f"format {'binary_little_endian' if binary else 'ascii'} 1.0",
        "comment sdr_core: camera frame, x right, y down, z forward, metres",
        f"element vertex {len(points)}",
        *(f"property {'float' if t == '<f4' else 'uchar'} {name}" for name, t in fields),
        "end_header",
    ]
    try:
        with path.open("wb") as f:
            f.write(("\n".join(header) + "\n").encode("ascii"))
            if binary:
                f.write(vertices.tobytes())
            else:
                fmt = " ".join(["%.9g"] * 3 + ["%d"] * (len(fields) - 3))
                np.savetxt(f, vertices.tolist(), fmt=fmt)
    except OSError as err:
        raise _write_failed(path, err) from err
    return len(points)
