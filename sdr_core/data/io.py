"""RGB-D file readers and writers, and a folder dataset of image/depth pairs.

Conventions (shared with the rest of `sdr_core`): RGB images are H x W x 3 uint8; depth maps
are H x W float32 in metres with 0 meaning "missing". Every reader validates what it reads
and converts NaN, inf, negative and out-of-range depths to 0, reporting how many it replaced.

Any problem with a file (unreadable, truncated, unknown extension, too large, mismatched
image/depth sizes) raises `RGBDFileError`, a `ValueError` whose message starts with the
file's base name and says what is wrong in plain words, so an app can show it as it is.
Bad *arguments* (an unknown `units`, a negative `scale`) raise a plain `ValueError`.

Formats:
    Images: PNG, JPEG, WebP, BMP, TIFF (EXIF orientation applied; RGBA, palette, grey and
        16-bit inputs converted to RGB uint8).
    Depth: 16-bit PNG/TIFF (millimetres by default, or KITTI's value/256), float TIFF,
        .npy/.npz, .pfm, .h5 (NYUv2 preprocessed layout) in metres, and .exr when OpenCV
        is importable (set OPENCV_IO_ENABLE_OPENEXR=1 before Python starts; this module
        never sets environment variables).
"""

from __future__ import annotations

import logging
import math
import re
import struct
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

import h5py
import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

logger = logging.getLogger(__name__)

__all__ = [
    "DEPTH_EXTENSIONS",
    "IMAGE_EXTENSIONS",
    "MAX_PIXELS",
    "NYU_INTRINSICS_640X480",
    "DepthReadResult",
    "DepthUnits",
    "FolderRGBDDataset",
    "RGBDFileError",
    "RGBDPair",
    "default_intrinsics",
    "depth_to_points",
    "discover_pairs",
    "read_depth",
    "read_image",
    "read_nyu_h5",
    "read_ply_points",
    "read_rgbd",
    "resize_depth_nearest",
    "resize_rgb",
    "scale_intrinsics",
    "write_depth_npy",
    "write_depth_png",
    "write_pfm",
    "write_ply",
]

MAX_PIXELS = 40_000_000
"""Largest image or depth map (height x width) any reader accepts; checked before decoding."""

DepthUnits = Literal["mm", "kitti", "m"]
"""How raw values map to metres: "mm" = value / 1000, "kitti" = value / 256, "m" = value."""

_UNIT_SCALE: dict[str, float] = {"mm": 1e-3, "kitti": 1.0 / 256.0, "m": 1.0}

IMAGE_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
"""Image file extensions `read_image` and `discover_pairs` accept (lower case)."""

DEPTH_EXTENSIONS: tuple[str, ...] = (
    ".png",
    ".npy",
    ".npz",
    ".h5",
    ".hdf5",
    ".pfm",
    ".exr",
    ".tif",
    ".tiff",
)
"""Depth file extensions `read_depth` accepts, in the order `discover_pairs` prefers them."""

# Pillow decoders we allow (JPEG also opens camera MPO files); others are never tried.
_PIL_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "TIFF")
_PIL_FORMAT_NAMES = "PNG, JPEG, WebP, BMP or TIFF"

NYU_INTRINSICS_640X480: tuple[float, float, float, float] = (
    518.8579,
    519.4696,
    325.5824,
    253.7362,
)
"""NYUv2 Kinect colour camera (fx, fy, cx, cy) in pixels at 640 x 480."""

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_READ_CHUNK_BYTES = 1 << 24  # 16 MiB: see _read_exact


class RGBDFileError(ValueError):
    """A file could not be used; the message names the file and the reason in plain words.

    Attributes:
        path: the offending file (or folder), when there is a single one.
    """

    def __init__(self, message: str, path: str | Path | None = None) -> None:
        super().__init__(message)
        self.path = None if path is None else Path(path)


@dataclass(frozen=True)
class DepthReadResult:
    """A depth map read from a file.

    Attributes:
        depth: H x W float32, metres; 0 = missing.
        n_invalid: how many values were replaced by 0 because they were NaN, infinite,
            negative or deeper than `max_depth_m` (zeros already in the file are not counted).
        source: human-readable description of the file and the conversion applied,
            e.g. "depth.png (16-bit PNG, 1 unit = 0.001 m)".
    """

    depth: np.ndarray
    n_invalid: int
    source: str


@dataclass(frozen=True)
class RGBDPair:
    """An image and its depth map found by `discover_pairs`.

    Attributes:
        name: the shared stem, e.g. "kitchen_0001" for kitchen_0001.png + kitchen_0001_depth.png.
        image_path: the RGB image, or the NYUv2 .h5 file holding both.
        depth_path: the depth file; equal to `image_path` for a combined .h5 file.
    """

    name: str
    image_path: Path
    depth_path: Path


# ----------------------------------------------------------------------------- helpers


def _fail(path: str | Path, reason: str) -> RGBDFileError:
    path = Path(path)
    return RGBDFileError(f"{path.name}: {reason}", path)


def _check_exists(path: Path) -> None:
    if not path.exists():
        raise _fail(path, "file not found")
    if not path.is_file():
        raise _fail(path, "is not a file")


def _check_pixels(path: Path, height: int, width: int) -> None:
    if height <= 0 or width <= 0:
        raise _fail(path, f"image has an empty size ({width}x{height} pixels)")
    if height * width > MAX_PIXELS:
        raise _fail(
            path,
            f"image of {width}x{height} pixels exceeds the limit of "
            f"{MAX_PIXELS // 1_000_000} megapixels",
        )


def _read_exact(path: Path, stream: IO[bytes], n_bytes: int, what: str) -> bytes:
    """Read exactly `n_bytes` from `stream`, or refuse the file as truncated.

    Reads in chunks, so memory grows with the data actually present: a file whose header
    declares a huge payload but holds a few bytes costs a few bytes, not the declared size
    (one `read(n)` would allocate all `n` bytes before reading any).
    """
    chunks, remaining = [], n_bytes
    while remaining > 0:
        chunk = stream.read(min(remaining, _READ_CHUNK_BYTES))
        if not chunk:
            raise _fail(path, f"truncated {what} data")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def _png_header_size(path: Path) -> tuple[int, int] | None:
    """(width, height) from a PNG's IHDR chunk without decoding, or None if not a PNG."""
    try:
        with path.open("rb") as f:
            head = f.read(24)
    except OSError:
        return None
    if len(head) < 24 or not head.startswith(_PNG_SIGNATURE) or head[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", head[16:24])
    return width, height


def _open_pil(path: Path) -> Image.Image:
    """Open an image lazily (header only) and refuse it if it exceeds MAX_PIXELS.

    Pillow's own decompression-bomb check (a global threshold we leave alone) fires inside
    `Image.open` for images above ~179 MP; we catch it and report our own limit instead.
    """
    _check_exists(path)
    try:
        image = Image.open(path, formats=_PIL_FORMATS)
    except Image.DecompressionBombError as err:
        size = _png_header_size(path)
        if size is not None:
            _check_pixels(path, size[1], size[0])
        raise _fail(
            path, f"image exceeds the limit of {MAX_PIXELS // 1_000_000} megapixels"
        ) from err
    except UnidentifiedImageError as err:
        raise _fail(path, f"not a readable image (expected {_PIL_FORMAT_NAMES})") from err
    except OSError as err:
        if err.errno is not None:  # the file system refused (permissions, I/O error)
            raise _fail(path, f"cannot read the file ({err.strerror})") from err
        raise _fail(path, "corrupt image header") from err
    except (SyntaxError, ValueError, struct.error, EOFError) as err:
        raise _fail(path, "corrupt image header") from err
    try:
        _check_pixels(path, image.height, image.width)
    except RGBDFileError:
        image.close()
        raise
    return image


def _load_pil(path: Path, image: Image.Image) -> None:
    """Decode pixel data, turning any decoder failure into an RGBDFileError."""
    try:
        image.load()
    except Exception as err:  # Pillow raises OSError, SyntaxError, zlib.error, ...
        logger.debug("decoding %s failed: %r", path, err)
        raise _fail(path, f"truncated or corrupt {image.format or 'image'} file") from err


def _to_rgb_uint8(image: Image.Image) -> np.ndarray:
    """Convert any Pillow mode to H x W x 3 uint8.

    16-bit and 32-bit integer greys are mapped 0..65535 -> 0..255; float greys in [0, 1]
    are taken as they are, others are divided by their maximum. Alpha is dropped.
    """
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        grey = np.asarray(image).astype(np.float64)
        grey = np.clip(np.round(grey / 257.0), 0, 255).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if image.mode == "F":
        grey = np.nan_to_num(np.asarray(image, dtype=np.float64), nan=0.0, posinf=0.0)
        peak = grey.max(initial=0.0)
        if peak > 1.0:
            grey = grey / peak
        grey = np.round(np.clip(grey, 0.0, 1.0) * 255.0).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode != "RGB":
        image = image.convert("RGB")
    return np.array(image, dtype=np.uint8)


def _squeeze_channel(array: np.ndarray) -> np.ndarray:
    """1 x H x W or H x W x 1 -> H x W; anything else is returned unchanged."""
    if array.ndim == 3 and array.shape[0] == 1:
        return array[0]
    if array.ndim == 3 and array.shape[2] == 1:
        return array[:, :, 0]
    return array


def _check_depth_array(depth_m: np.ndarray, what: str = "depth_m") -> np.ndarray:
    depth = _squeeze_channel(np.asarray(depth_m))
    if depth.ndim != 2:
        raise ValueError(f"{what} must be an H x W array, got shape {np.shape(depth_m)}")
    if not (np.issubdtype(depth.dtype, np.floating) or np.issubdtype(depth.dtype, np.integer)):
        raise ValueError(f"{what} must hold numbers, got dtype {depth.dtype}")
    return depth


def _resolve_scale(units: DepthUnits | None, scale: float | None, default_units: str) -> float:
    if scale is not None:
        if not (np.isfinite(scale) and scale > 0):
            raise ValueError(f"scale must be a positive finite number, got {scale!r}")
        return float(scale)
    chosen = default_units if units is None else units
    if chosen not in _UNIT_SCALE:
        raise ValueError(f"units must be one of {sorted(_UNIT_SCALE)}, got {units!r}")
    return _UNIT_SCALE[chosen]


def _unit_text(scale: float) -> str:
    return f"1 unit = {scale:.6g} m"


def _as_depth_map(path: Path, raw: np.ndarray) -> np.ndarray:
    """Accept H x W, 1 x H x W or H x W x 1 numeric arrays; refuse anything else."""
    raw = _squeeze_channel(raw)
    if raw.ndim != 2:
        raise _fail(
            path, f"holds an array of shape {tuple(raw.shape)}; expected one H x W depth map"
        )
    if raw.dtype == np.bool_ or not (
        np.issubdtype(raw.dtype, np.floating) or np.issubdtype(raw.dtype, np.integer)
    ):
        raise _fail(path, f"holds {raw.dtype} values; expected integer or floating-point depth")
    _check_pixels(path, raw.shape[0], raw.shape[1])
    return raw


def _sanitize(
    path: Path, raw: np.ndarray, scale: float, max_depth_m: float
) -> tuple[np.ndarray, int]:
    """Scale raw values to metres; NaN, inf, negative and > max_depth_m become 0."""
    with np.errstate(invalid="ignore", over="ignore"):
        depth = raw.astype(np.float64) * scale
        invalid = ~np.isfinite(depth) | (depth < 0) | (depth > max_depth_m)
    n_invalid = int(np.count_nonzero(invalid))
    depth[invalid] = 0.0
    if n_invalid:
        logger.info(
            "%s: %d depth values were NaN, infinite, negative or beyond %g m; set to 0 (missing)",
            path.name,
            n_invalid,
            max_depth_m,
        )
    return depth.astype(np.float32), n_invalid


# ----------------------------------------------------------------------------- images


def read_image(path: str | Path) -> np.ndarray:
    """Read an RGB image, applying its EXIF orientation.

    Args:
        path: a PNG, JPEG, WebP, BMP or TIFF file. RGBA/LA/palette images lose their alpha,
            grey images are repeated over three channels, 16-bit images are mapped
            0..65535 -> 0..255.

    Returns:
        H x W x 3 uint8 array, in display orientation (EXIF rotation applied, so a portrait
        photo stored landscape with Orientation=6 comes back portrait).

    Raises:
        RGBDFileError: unknown extension, missing, truncated or corrupt file, or more than
            MAX_PIXELS pixels (refused from the header, before decoding).
    """
    path = Path(path)
    if path.suffix.lower() not in IMAGE_EXTENSIONS:
        raise _fail(
            path,
            f"unknown image file extension '{path.suffix}'; expected one of "
            f"{', '.join(IMAGE_EXTENSIONS)}",
        )
    with _open_pil(path) as image:
        _load_pil(path, image)
        try:
            oriented = ImageOps.exif_transpose(image)
        except Exception as err:  # a malformed EXIF block must not make the image unusable
            logger.warning("%s: ignoring unreadable EXIF orientation (%s)", path.name, err)
            oriented = image
        try:
            return _to_rgb_uint8(oriented)
        except (OSError, ValueError) as err:  # exotic modes Pillow cannot convert to RGB
            raise _fail(path, f"unsupported colour mode {oriented.mode}") from err


# ----------------------------------------------------------------------------- depth readers


def _read_depth_pil(
    path: Path, units: DepthUnits | None, scale: float | None
) -> tuple[np.ndarray, float, str]:
    """16-bit PNG/TIFF (integer units) or float TIFF (metres)."""
    with _open_pil(path) as image:
        _load_pil(path, image)
        mode = image.mode
        kind = image.format or path.suffix.lstrip(".").upper()
        if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
            raw = np.asarray(image).astype(np.int64 if mode == "I" else np.uint16)
            return raw, _resolve_scale(units, scale, "mm"), f"16-bit {kind}"
        if mode == "F":
            return np.asarray(image, dtype=np.float32), _resolve_scale(units, scale, "m"), kind
        if mode == "L" and (units is not None or scale is not None):
            return np.asarray(image, dtype=np.uint8), _resolve_scale(units, scale, "mm"), kind
        if mode in ("L", "1", "P"):
            reason = (
                f"8-bit {kind} cannot hold metric depth; expected a 16-bit greyscale "
                f"{kind} (pass units= or scale= to read it anyway)"
            )
        else:
            reason = (
                f"is a colour ({mode}) image, not a depth map; expected a 16-bit greyscale {kind}"
            )
        raise _fail(path, reason)


def _read_npy_stream(path: Path, stream: IO[bytes]) -> np.ndarray:
    """Parse a .npy stream; the header is checked (no objects, size limit) before any data."""
    fmt = np.lib.format
    try:
        version = fmt.read_magic(stream)
        if version == (1, 0):
            shape, fortran_order, dtype = fmt.read_array_header_1_0(stream)
        elif version == (2, 0):
            shape, fortran_order, dtype = fmt.read_array_header_2_0(stream)
        else:
            raise _fail(path, f"unsupported .npy format version {version[0]}.{version[1]}")
    except RGBDFileError:
        raise
    except Exception as err:
        raise _fail(path, "not a valid .npy array (bad header)") from err
    if dtype.hasobject:
        raise _fail(
            path,
            "contains Python objects (pickled data), which are refused for safety; "
            "save the depth map as a plain numeric array",
        )
    if dtype.kind not in "iuf":
        raise _fail(path, f"holds {dtype} values; expected integer or floating-point depth")
    if any(n < 0 for n in shape):
        raise _fail(path, f"not a valid .npy array (negative size in shape {tuple(shape)})")
    # Python integers, so a declared 2**32 x 2**32 cannot wrap around to 0; each side is
    # bounded too, since a zero side would otherwise let any other side through.
    if math.prod(shape) > MAX_PIXELS or max(shape, default=0) > MAX_PIXELS:
        raise _fail(
            path,
            f"array of shape {tuple(shape)} exceeds the limit of "
            f"{MAX_PIXELS // 1_000_000} megapixels",
        )
    data = _read_exact(path, stream, math.prod(shape) * dtype.itemsize, ".npy")
    return np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran_order else "C")


def _read_npy(path: Path) -> np.ndarray:
    with path.open("rb") as f:
        return _read_npy_stream(path, f)


def _read_npz(path: Path) -> tuple[np.ndarray, str]:
    try:
        with zipfile.ZipFile(path) as archive:
            keys = [n[: -len(".npy")] for n in archive.namelist() if n.endswith(".npy")]
            if "depth" in keys:
                key = "depth"
            elif len(keys) == 1:
                key = keys[0]
            else:
                found = ", ".join(repr(k) for k in keys) or "none"
                raise _fail(
                    path,
                    f"cannot tell which array is the depth map (arrays: {found}); "
                    "name it 'depth' or store only one array",
                )
            with archive.open(key + ".npy") as member:
                return _read_npy_stream(path, member), key
    except RGBDFileError:
        raise
    except Exception as err:  # zipfile: BadZipFile, NotImplementedError, RuntimeError, ...
        raise _fail(path, "truncated or corrupt .npz archive") from err


_PFM_HEADER = re.compile(rb"(P[Ff])\s+(\d+)\s+(\d+)\s+([-+0-9.eE]+)\s")


def _read_pfm(path: Path) -> np.ndarray:
    """Portable float map; rows are stored bottom-to-top, negative scale = little-endian."""
    with path.open("rb") as f:
        head = f.read(128)
        match = _PFM_HEADER.match(head)
        if match is None:
            raise _fail(path, "not a valid PFM file (bad header)")
        kind, width, height, scale_text = match.groups()
        if kind == b"PF":
            raise _fail(path, "is a colour PFM ('PF'); expected a greyscale depth PFM ('Pf')")
        width, height = int(width), int(height)
        _check_pixels(path, height, width)
        try:
            little_endian = float(scale_text) < 0
        except ValueError as err:
            raise _fail(path, "not a valid PFM file (bad scale)") from err
        f.seek(match.end())
        data = _read_exact(path, f, 4 * width * height, "PFM")
    dtype = np.dtype("<f4" if little_endian else ">f4")
    return np.frombuffer(data, dtype=dtype).reshape(height, width)[::-1]


def _opencv_reads_exr(cv2: Any) -> bool:
    """Whether this OpenCV build has an EXR codec (OpenCV 5.1 wheels have none)."""
    try:
        return bool(cv2.haveImageWriter("probe.exr"))
    except Exception:  # cv2.error on builds without the query; let imread decide
        return True


def _read_exr(path: Path) -> np.ndarray:
    try:
        import cv2  # optional: only .exr needs it
    except ImportError as err:
        raise _fail(
            path,
            "reading .exr files needs OpenCV (pip install opencv-python-headless), "
            "which is not installed",
        ) from err
    if not _opencv_reads_exr(cv2):
        raise _fail(
            path,
            f"this OpenCV ({cv2.__version__}) cannot read .exr files: OpenCV 5 wheels are "
            "built without OpenEXR, and OpenCV 4 reads them only with "
            "OPENCV_IO_ENABLE_OPENEXR=1 set before Python starts; save the depth as .npy "
            "or .pfm instead",
        )
    try:
        raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    except Exception as err:  # cv2.error when EXR support is disabled
        raw = None
        logger.debug("cv2.imread(%s) failed: %r", path, err)
    if raw is None:
        raise _fail(
            path,
            "OpenCV could not read this EXR file (corrupt, or OpenCV's EXR support is off: "
            "set OPENCV_IO_ENABLE_OPENEXR=1 before starting Python)",
        )
    if raw.ndim == 3 and raw.shape[2] > 1:
        if not all(np.array_equal(raw[:, :, 0], raw[:, :, c]) for c in range(1, raw.shape[2])):
            logger.info("%s: multi-channel EXR; using its red channel as depth", path.name)
            return raw[:, :, 2]  # OpenCV orders channels B, G, R
        return raw[:, :, 0]
    return raw


def _open_h5(path: Path) -> h5py.File:
    try:
        return h5py.File(path, "r")
    except Exception as err:  # h5py raises OSError for corrupt or non-HDF5 files
        raise _fail(path, "not a readable HDF5 file (truncated or corrupt)") from err


def _refuse_outside_data(path: Path, h5: h5py.File, key: str) -> None:
    """Refuse a dataset that is a link, or whose values live outside this file.

    HDF5 external links, external raw storage and virtual datasets read other files on the
    machine that opens them; an uploaded file could use them to show a server file as depth.
    Only a dataset stored in the file under its own name (a hard link) is read; soft links
    are refused too, since their target path may cross an external link. Links are checked
    before they are followed, so no other file is ever opened.
    """
    link = h5.get(key, getlink=True)
    if link is not None and not isinstance(link, h5py.HardLink):
        raise _fail(
            path, f"'{key}' is a link, not data stored in this file; links are refused for safety"
        )
    item = h5.get(key)
    if isinstance(item, h5py.Dataset) and (item.external or item.is_virtual):
        raise _fail(path, f"'{key}' keeps its values in other files, which is refused for safety")


def _read_h5_dataset(path: Path, h5: h5py.File, key: str, max_elements: int) -> np.ndarray:
    try:
        _refuse_outside_data(path, h5, key)
        item = h5.get(key)
        if not isinstance(item, h5py.Dataset):
            found = ", ".join(repr(k) for k in h5) or "none"
            raise _fail(path, f"has no '{key}' dataset (found: {found})")
        shape = item.shape or ()
        if math.prod(shape) > max_elements or max(shape, default=0) > max_elements:
            raise _fail(
                path,
                f"'{key}' of shape {tuple(item.shape)} exceeds the limit of "
                f"{MAX_PIXELS // 1_000_000} megapixels",
            )
        if item.dtype.hasobject or item.dtype.kind not in "uif":
            raise _fail(path, f"'{key}' holds {item.dtype} values; expected numbers")
        return np.asarray(item[()])
    except RGBDFileError:
        raise
    except Exception as err:  # h5py raises OSError, RuntimeError, KeyError on damaged files
        raise _fail(path, f"could not read '{key}' (truncated or corrupt HDF5 file)") from err


def _read_h5_depth(path: Path, h5: h5py.File) -> np.ndarray:
    return _read_h5_dataset(path, h5, "depth", MAX_PIXELS)


def _read_raw_depth(
    path: Path, suffix: str, units: DepthUnits | None, scale: float | None
) -> tuple[np.ndarray, float, str]:
    """Raw array, metres per unit and a format description, dispatched on `suffix`."""
    if suffix in (".png", ".tif", ".tiff"):
        return _read_depth_pil(path, units, scale)
    if suffix == ".npy":
        raw, kind = _read_npy(path), ".npy array"
    elif suffix == ".npz":
        raw, key = _read_npz(path)
        kind = f".npz array '{key}'"
    elif suffix == ".pfm":
        raw, kind = _read_pfm(path), "PFM"
    elif suffix == ".exr":
        raw, kind = _read_exr(path), "EXR"
    else:
        with _open_h5(path) as h5:
            raw, kind = _read_h5_depth(path, h5), "HDF5 'depth'"
    return raw, _resolve_scale(units, scale, "m"), kind


def read_depth(
    path: str | Path,
    units: DepthUnits | None = None,
    scale: float | None = None,
    max_depth_m: float = 1000.0,
) -> DepthReadResult:
    """Read a depth map and convert it to metres.

    Args:
        path: .png/.tif (16-bit integer or float TIFF), .npy, .npz (array "depth", or the
            only array), .pfm, .exr (needs OpenCV), .h5/.hdf5 (dataset "depth", NYUv2
            layout). Numpy files are always loaded with pickling disabled.
        units: how raw values map to metres ("mm": /1000, "kitti": /256, "m": as is).
            Default by format: integer PNG/TIFF -> "mm"; .npy/.npz/.pfm/.exr/.h5 and
            float TIFF -> "m" (also for integer arrays in those files).
        scale: metres per raw unit; overrides `units` (depth_m = raw * scale).
        max_depth_m: values above this (after scaling) count as invalid.

    Returns:
        DepthReadResult with depth H x W float32 in metres (0 = missing) and the number of
        NaN/inf/negative/out-of-range values that were set to 0.

    Raises:
        RGBDFileError: unknown extension, missing/truncated/corrupt file, colour or 8-bit PNG,
            pickled or non-numeric arrays, more than MAX_PIXELS pixels.
        ValueError: invalid `units`, `scale` or `max_depth_m`.
    """
    path = Path(path)
    if not max_depth_m > 0:
        raise ValueError(f"max_depth_m must be positive, got {max_depth_m!r}")
    suffix = path.suffix.lower()
    if suffix not in DEPTH_EXTENSIONS:
        raise _fail(
            path,
            f"unknown depth file extension '{path.suffix}'; expected one of "
            f"{', '.join(DEPTH_EXTENSIONS)}",
        )
    _check_exists(path)
    _resolve_scale(units, scale, "m")  # validate arguments before touching the file
    try:
        raw, factor, kind = _read_raw_depth(path, suffix, units, scale)
    except OSError as err:  # permissions, I/O errors; format problems are RGBDFileError
        raise _fail(path, f"cannot read the file ({err.strerror or err})") from err
    raw = _as_depth_map(path, raw)
    depth, n_invalid = _sanitize(path, raw, factor, max_depth_m)
    return DepthReadResult(depth, n_invalid, f"{path.name} ({kind}, {_unit_text(factor)})")


def read_nyu_h5(
    path: str | Path,
    units: DepthUnits | None = None,
    scale: float | None = None,
    max_depth_m: float = 1000.0,
) -> tuple[np.ndarray, DepthReadResult]:
    """Read a preprocessed NYUv2 .h5 file (the layout of the widely shared 'nyudepthv2' set).

    Args:
        path: HDF5 file with datasets "rgb" (3 x H x W uint8; H x W x 3 also accepted) and
            "depth" (H x W, metres unless `units`/`scale` say otherwise).
        units: see `read_depth`; default "m".
        scale: see `read_depth`.
        max_depth_m: see `read_depth`.

    Returns:
        (rgb H x W x 3 uint8, DepthReadResult with H x W float32 metres).

    Raises:
        RGBDFileError: not HDF5, missing datasets, wrong shapes or dtypes, sizes that differ.
    """
    path = Path(path)
    _check_exists(path)
    factor = _resolve_scale(units, scale, "m")
    if not max_depth_m > 0:
        raise ValueError(f"max_depth_m must be positive, got {max_depth_m!r}")
    with _open_h5(path) as h5:
        rgb = _read_h5_dataset(path, h5, "rgb", 3 * MAX_PIXELS)
        raw = _read_h5_depth(path, h5)
    if rgb.ndim == 3 and rgb.shape[0] == 3 and rgb.shape[2] != 3:
        rgb = np.transpose(rgb, (1, 2, 0))  # 3xHxW -> HxWx3
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise _fail(path, f"'rgb' has shape {rgb.shape}; expected 3 x H x W")
    if rgb.dtype != np.uint8:
        raise _fail(path, f"'rgb' holds {rgb.dtype} values; expected uint8")
    raw = _as_depth_map(path, raw)
    if raw.shape != rgb.shape[:2]:
        raise _fail(
            path,
            f"'rgb' is {rgb.shape[1]}x{rgb.shape[0]} pixels but 'depth' is "
            f"{raw.shape[1]}x{raw.shape[0]} (width x height)",
        )
    depth, n_invalid = _sanitize(path, raw, factor, max_depth_m)
    source = f"{path.name} (NYUv2 HDF5 'depth', {_unit_text(factor)})"
    return np.ascontiguousarray(rgb), DepthReadResult(depth, n_invalid, source)


def read_rgbd(
    image_path: str | Path,
    depth_path: str | Path | None = None,
    units: DepthUnits | None = None,
    scale: float | None = None,
    max_depth_m: float = 1000.0,
) -> tuple[np.ndarray, DepthReadResult]:
    """Read an image and its depth map and check that their sizes match.

    Args:
        image_path: RGB image, or a NYUv2 .h5 file holding both (then `depth_path` may be
            None or the same path).
        depth_path: depth file (see `read_depth`).
        units: see `read_depth`.
        scale: see `read_depth`.
        max_depth_m: see `read_depth`.

    Returns:
        (rgb H x W x 3 uint8, DepthReadResult with H x W float32 metres).

    Raises:
        RGBDFileError: as the readers, or when the two sizes differ (message names both).
    """
    image_path = Path(image_path)
    combined = image_path.suffix.lower() in (".h5", ".hdf5")
    if combined and (depth_path is None or Path(depth_path) == image_path):
        return read_nyu_h5(image_path, units=units, scale=scale, max_depth_m=max_depth_m)
    if depth_path is None:
        raise _fail(image_path, "no depth file given for this image")
    depth_path = Path(depth_path)
    rgb = read_image(image_path)
    result = read_depth(depth_path, units=units, scale=scale, max_depth_m=max_depth_m)
    if rgb.shape[:2] != result.depth.shape:
        (h, w), (dh, dw) = rgb.shape[:2], result.depth.shape
        raise RGBDFileError(
            f"{image_path.name} is {w}x{h} pixels but {depth_path.name} is {dw}x{dh} "
            "(width x height); an image and its depth map must be the same size",
            depth_path,
        )
    return rgb, result


# ----------------------------------------------------------------------------- depth writers


def _write_failed(path: Path, err: OSError) -> RGBDFileError:
    return _fail(path, f"cannot write the file ({err.strerror or err})")


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
    depth = _check_depth_array(depth_m).astype(np.float64)
    per_metre = 1.0 / _UNIT_SCALE[units]
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
    depth = _check_depth_array(depth_m).astype(np.float32)
    try:
        np.save(path, depth, allow_pickle=False)
    except OSError as err:
        raise _write_failed(path, err) from err


def write_pfm(path: str | Path, depth_m: np.ndarray) -> None:
    """Write depth as a little-endian greyscale PFM (float32 metres, rows bottom-to-top).

    Args:
        path: output file.
        depth_m: H x W float, metres; values are kept as they are.

    Raises:
        ValueError: `depth_m` not H x W.
        RGBDFileError: the file cannot be written.
    """
    path = Path(path)
    depth = _check_depth_array(depth_m).astype("<f4")
    height, width = depth.shape
    try:
        with path.open("wb") as f:
            f.write(f"Pf\n{width} {height}\n-1.0\n".encode("ascii"))
            f.write(np.ascontiguousarray(depth[::-1]).tobytes())
    except OSError as err:
        raise _write_failed(path, err) from err


# ----------------------------------------------------------------------------- geometry


def scale_intrinsics(
    intrinsics: Sequence[float], scale_x: float, scale_y: float
) -> tuple[float, float, float, float]:
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


def default_intrinsics(height: int, width: int) -> tuple[float, float, float, float]:
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
    """
    if height <= 0 or width <= 0:
        raise ValueError(f"image size must be positive, got height={height}, width={width}")
    return scale_intrinsics(NYU_INTRINSICS_640X480, width / 640.0, height / 480.0)


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
    depth = _check_depth_array(depth_m).astype(np.float64)
    fx, fy, cx, cy = (float(v) for v in intrinsics)
    rows, cols = _valid_pixels(depth)
    z = depth[rows, cols]
    x = (cols - cx) * z / fx
    y = (rows - cy) * z / fy
    return np.stack([x, y, z], axis=1).astype(np.float32)


_PLY_TYPES: dict[str, str] = {
    "char": "i1",
    "int8": "i1",
    "uchar": "u1",
    "uint8": "u1",
    "short": "i2",
    "int16": "i2",
    "ushort": "u2",
    "uint16": "u2",
    "int": "i4",
    "int32": "i4",
    "uint": "u4",
    "uint32": "u4",
    "float": "f4",
    "float32": "f4",
    "double": "f8",
    "float64": "f8",
}


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
    depth = _check_depth_array(depth_m)
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


def _parse_ply_header(path: Path, f: IO[bytes]) -> tuple[str, int, np.dtype]:
    """Format, vertex count and vertex dtype; only a leading 'vertex' element is supported."""
    if f.readline().strip() != b"ply":
        raise _fail(path, "not a PLY file (missing 'ply' magic)")
    fmt, count, fields, element = None, None, [], None
    for _ in range(1000):
        line = f.readline()
        if not line:
            raise _fail(path, "truncated PLY header (no 'end_header')")
        words = line.decode("ascii", errors="replace").split()
        if not words or words[0] in ("comment", "obj_info"):
            continue
        if words[0] == "end_header":
            break
        if words[0] == "format" and len(words) >= 2:
            fmt = words[1]
        elif words[0] == "element" and len(words) == 3:
            element = words[1]
            if element == "vertex":
                count = int(words[2])
                if not 0 <= count <= MAX_PIXELS:
                    raise _fail(path, f"PLY vertex count {count} is out of range")
            elif count is None:
                raise _fail(path, "PLY elements before 'vertex' are not supported")
        elif words[0] == "property" and element == "vertex":
            if len(words) != 3 or words[1] not in _PLY_TYPES:
                raise _fail(path, f"unsupported PLY vertex property: {' '.join(words)}")
            fields.append((words[2], words[1]))
    else:
        raise _fail(path, "PLY header too long")
    if fmt not in ("ascii", "binary_little_endian", "binary_big_endian"):
        raise _fail(path, f"unsupported PLY format {fmt!r}")
    if count is None or not {"x", "y", "z"} <= {name for name, _ in fields}:
        raise _fail(path, "PLY file has no vertex element with x, y, z")
    order = ">" if fmt == "binary_big_endian" else "<"
    dtype = np.dtype([(name, order + _PLY_TYPES[t]) for name, t in fields])
    return fmt, count, dtype


def read_ply_points(path: str | Path) -> tuple[np.ndarray, np.ndarray | None]:
    """Read the vertices of a PLY point cloud (ASCII or binary, scalar properties only).

    Args:
        path: a .ply file whose first element is "vertex" with x, y, z and optionally
            red, green, blue (as `write_ply` writes).

    Returns:
        (points N x 3 float32, colours N x 3 uint8 or None when the file has no colours).

    Raises:
        RGBDFileError: not a PLY file, unsupported layout, or truncated data.
    """
    path = Path(path)
    _check_exists(path)
    try:
        with path.open("rb") as f:
            fmt, count, dtype = _parse_ply_header(path, f)
            if fmt == "ascii":
                table = np.loadtxt(f, dtype=np.float64, max_rows=count, ndmin=2)
                if table.shape != (count, len(dtype.names)) and count > 0:
                    raise _fail(path, "truncated PLY vertex data")
                vertices = np.zeros(count, dtype=dtype)
                for i, name in enumerate(dtype.names):
                    vertices[name] = table[:, i] if count else []
            else:
                data = _read_exact(path, f, count * dtype.itemsize, "PLY vertex")
                vertices = np.frombuffer(data, dtype=dtype)
    except RGBDFileError:
        raise
    except (OSError, ValueError) as err:
        raise _fail(path, "corrupt PLY file") from err
    points = np.stack([vertices[c] for c in ("x", "y", "z")], axis=1).astype(np.float32)
    if not {"red", "green", "blue"} <= set(dtype.names):
        return points, None
    colours = np.stack([vertices[c] for c in ("red", "green", "blue")], axis=1)
    return points, colours.astype(np.uint8)


# ----------------------------------------------------------------------------- resizing


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


# ----------------------------------------------------------------------------- folder dataset


def discover_pairs(folder: str | Path) -> list[RGBDPair]:
    """Find image/depth pairs in a folder by name (not recursive).

    NAME.(png|jpg|jpeg|webp|bmp|tif|tiff) pairs with NAME_depth.(png|npy|npz|h5|hdf5|pfm|
    exr|tif|tiff); NAME.h5 on its own is a NYUv2 file holding both. Matching ignores the
    case of extensions. When several candidates share a name the first in the extension
    lists wins and the others are logged. Images without depth and depth without an image
    are skipped with a logged note. Files are not opened here.

    Args:
        folder: the directory to scan.

    Returns:
        Pairs sorted by name.

    Raises:
        RGBDFileError: the folder does not exist or is not a directory.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise _fail(folder, "folder not found" if not folder.exists() else "is not a folder")
    images: dict[str, list[Path]] = {}
    depths: dict[str, list[Path]] = {}
    combined: dict[str, list[Path]] = {}
    for path in folder.iterdir():
        suffix = path.suffix.lower()
        if path.name.startswith(".") or not path.is_file():
            continue
        if path.stem.endswith("_depth") and suffix in DEPTH_EXTENSIONS:
            depths.setdefault(path.stem[: -len("_depth")], []).append(path)
        elif suffix in IMAGE_EXTENSIONS:
            images.setdefault(path.stem, []).append(path)
        elif suffix in (".h5", ".hdf5"):
            combined.setdefault(path.stem, []).append(path)
        else:
            logger.debug("discover_pairs: ignoring %s (not an image or depth file)", path.name)

    def pick(candidates: list[Path], order: tuple[str, ...]) -> Path:
        ranked = sorted(candidates, key=lambda p: (order.index(p.suffix.lower()), p.name))
        if len(ranked) > 1:
            others = ", ".join(p.name for p in ranked[1:])
            logger.info("discover_pairs: using %s, ignoring %s", ranked[0].name, others)
        return ranked[0]

    pairs: dict[str, RGBDPair] = {}
    for name in sorted(images.keys() | depths.keys()):
        if name in images and name in depths:
            image = pick(images[name], IMAGE_EXTENSIONS)
            pairs[name] = RGBDPair(name, image, pick(depths[name], DEPTH_EXTENSIONS))
        elif name in images and name not in combined:
            logger.info("discover_pairs: skipping %s (no %s_depth.* file)", name, name)
        elif name in depths:
            logger.info("discover_pairs: skipping %s_depth (no image named %s)", name, name)
    for name, candidates in combined.items():
        h5_path = pick(candidates, DEPTH_EXTENSIONS)
        if name in pairs:
            logger.info("discover_pairs: %s has an explicit pair; ignoring %s", name, h5_path.name)
        else:
            pairs[name] = RGBDPair(name, h5_path, h5_path)
    return [pairs[name] for name in sorted(pairs)]


class FolderRGBDDataset(torch.utils.data.Dataset):
    """Image/depth pairs from a folder (see `discover_pairs`), as tensors.

    Items are dicts: "image" 3 x H x W float32 in [0, 1], "depth" 1 x H x W float32 metres
    (0 = missing), "name" str. With `size`, every item is brought to (H, W) by a centre crop
    (`mode="center_crop"`, the image must be at least that large) or by resizing
    (`mode="resize"`: image bilinear, depth nearest so no depth is blended across edges).
    """

    def __init__(
        self,
        folder: str | Path,
        size: tuple[int, int] | None = None,
        mode: Literal["center_crop", "resize"] = "center_crop",
        units: DepthUnits | None = None,
        scale: float | None = None,
        max_depth_m: float = 1000.0,
    ) -> None:
        """Scan `folder` for pairs; files are read lazily in `__getitem__`.

        Args:
            folder: the directory holding the pairs.
            size: (height, width) of every item, or None to keep each file's size.
            mode: how to reach `size`: "center_crop" or "resize".
            units: see `read_depth`.
            scale: see `read_depth`.
            max_depth_m: see `read_depth`.

        Raises:
            RGBDFileError: the folder is missing or holds no pairs.
            ValueError: bad `size` or `mode`.
        """
        if mode not in ("center_crop", "resize"):
            raise ValueError(f"mode must be 'center_crop' or 'resize', got {mode!r}")
        if size is not None and (len(size) != 2 or min(size) <= 0):
            raise ValueError(f"size must be (height, width) with positive values, got {size!r}")
        self.folder = Path(folder)
        self.size = None if size is None else (int(size[0]), int(size[1]))
        self.mode = mode
        self.units = units
        self.scale = scale
        self.max_depth_m = max_depth_m
        self.pairs = discover_pairs(self.folder)
        if not self.pairs:
            raise _fail(
                self.folder,
                "no image/depth pairs found (expected NAME.png with NAME_depth.png, .npy, "
                ".npz, .h5, .pfm or .exr, or NYUv2 .h5 files)",
            )

    def __len__(self) -> int:
        return len(self.pairs)

    def _fit(
        self, pair: RGBDPair, rgb: np.ndarray, depth: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        if self.size is None:
            return rgb, depth
        height, width = self.size
        if self.mode == "resize":
            return resize_rgb(rgb, self.size), resize_depth_nearest(depth, self.size)
        in_h, in_w = depth.shape
        if in_h < height or in_w < width:
            raise _fail(
                pair.image_path,
                f"image is {in_w}x{in_h} pixels, smaller than the {width}x{height} crop",
            )
        top, left = (in_h - height) // 2, (in_w - width) // 2
        window = (slice(top, top + height), slice(left, left + width))
        return rgb[window], depth[window]

    def __getitem__(self, index: int) -> dict[str, torch.Tensor | str]:
        pair = self.pairs[index]
        rgb, result = read_rgbd(
            pair.image_path,
            pair.depth_path,
            units=self.units,
            scale=self.scale,
            max_depth_m=self.max_depth_m,
        )
        rgb, depth = self._fit(pair, rgb, result.depth)
        image = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float() / 255.0
        depth_t = torch.from_numpy(np.ascontiguousarray(depth, dtype=np.float32))[None]
        return {"image": image, "depth": depth_t, "name": pair.name}
