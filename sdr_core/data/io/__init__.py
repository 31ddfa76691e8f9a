"""RGB-D file readers and writers.

Conventions (shared with the rest of `sdr_core`): RGB images are H x W x 3 uint8; depth maps
are H x W float32 in metres with 0 meaning "missing". Every reader validates what it reads
and converts NaN, inf, negative and out-of-range depths to 0, reporting how many it replaced.

Any problem with a file (unreadable, truncated, unknown extension, too large) raises
`RGBDFileError`, a `ValueError` whose message starts with the file's base name and says what
is wrong in plain words, so an app can show it as it is. Bad *arguments* (an unknown
`units`, a negative `scale`) raise a plain `ValueError`.

Formats:
    Images: PNG, JPEG, WebP, BMP, TIFF (EXIF orientation applied; RGBA, palette, grey and
        16-bit inputs converted to RGB uint8).
    Depth: 16-bit PNG/TIFF (millimetres by default, or KITTI's value/256), float TIFF,
        .npy/.npz, .pfm, .h5 (NYUv2 preprocessed layout) in metres, and .exr when OpenCV
        is importable (set OPENCV_IO_ENABLE_OPENEXR=1 before Python starts; this module
        never sets environment variables).
    Written: depth as 16-bit PNG or .npy, point clouds as PLY.

Modules: `readers`, `writers`, `resize`, and `common` (error type, size limit, units). The
camera maths live in `sdr_core.camera`; `default_intrinsics` and `scale_intrinsics` are
re-exported here for code written before that module existed.
"""

from __future__ import annotations

from ...camera import default_intrinsics, scale_intrinsics
from .common import MAX_PIXELS, DepthUnits, RGBDFileError
from .readers import (
    DEPTH_EXTENSIONS,
    IMAGE_EXTENSIONS,
    DepthReadResult,
    read_depth,
    read_image,
    read_nyu_h5,
)
from .resize import resize_depth_nearest, resize_rgb
from .writers import depth_to_points, write_depth_npy, write_depth_png, write_ply

__all__ = [
    "DEPTH_EXTENSIONS",
    "IMAGE_EXTENSIONS",
    "MAX_PIXELS",
    "DepthReadResult",
    "DepthUnits",
    "RGBDFileError",
    "default_intrinsics",
    "depth_to_points",
    "read_depth",
    "read_image",
    "read_nyu_h5",
    "resize_depth_nearest",
    "resize_rgb",
    "scale_intrinsics",
    "write_depth_npy",
    "write_depth_png",
    "write_ply",
]
