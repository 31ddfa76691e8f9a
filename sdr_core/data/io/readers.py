"""RGB-D file readers: images, depth maps in many formats, preprocessed NYUv2 .h5 files.

Every reader validates what it reads (size limit checked from the header, before decoding;
no unpickling; HDF5 links to other files refused) and converts NaN, inf, negative and
out-of-range depths to 0, reporting how many it replaced.
"""

from __future__ import annotations

import logging
import math
import re
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import h5py
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .common import (
    MAX_PIXELS,
    UNIT_SCALE,
    DepthUnits,
    RGBDFileError,
    check_exists,
    check_pixels,
    fail,
    squeeze_channel,
)

logger = logging.getLogger(__name__)


IMAGE_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
"""Image file extensions `read_image` accepts (lower case)."""


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
"""Depth file extensions `read_depth` accepts (lower case)."""


# Pillow decoders we allow (JPEG also opens camera MPO files); others are never tried.
_PIL_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "TIFF")


_PIL_FORMAT_NAMES = "PNG, JPEG, WebP, BMP or TIFF"


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


_READ_CHUNK_BYTES = 1 << 24  # 16 MiB: see _read_exact


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
            raise fail(path, f"truncated {what} data")
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
    check_exists(path)
    try:
        image = Image.open(path, formats=_PIL_FORMATS)
    except Image.DecompressionBombError as err:
        size = _png_header_size(path)
        if size is not None:
            check_pixels(path, size[1], size[0])
        raise fail(
            path, f"image exceeds the limit of {MAX_PIXELS // 1_000_000} megapixels"
        ) from err
    except UnidentifiedImageError as err:
        raise fail(path, f"not a readable image (expected {_PIL_FORMAT_NAMES})") from err
    except OSError as err:
        if err.errno is not None:  # the file system refused (permissions, I/O error)
            raise fail(path, f"cannot read the file ({err.strerror})") from err
        raise fail(path, "corrupt image header") from err
    except (SyntaxError, ValueError, struct.error, EOFError) as err:
        raise fail(path, "corrupt image header") from err
    try:
        check_pixels(path, image.height, image.width)
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
        raise fail(path, f"truncated or corrupt {image.format or 'image'} file") from err


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


def _resolve_scale(units: DepthUnits | None, scale: float | None, default_units: str) -> float:
    if scale is not None:
        if not (np.isfinite(scale) and scale > 0):
            raise ValueError(f"scale must be a positive finite number, got {scale!r}")
        return float(scale)
    chosen = default_units if units is None else units
    if chosen not in UNIT_SCALE:
        raise ValueError(f"units must be one of {sorted(UNIT_SCALE)}, got {units!r}")
    return UNIT_SCALE[chosen]


def _unit_text(scale: float) -> str:
    return f"1 unit = {scale:.6g} m"


def _as_depth_map(path: Path, raw: np.ndarray) -> np.ndarray:
    """Accept H x W, 1 x H x W or H x W x 1 numeric arrays; refuse anything else."""
    raw = squeeze_channel(raw)
    if raw.ndim != 2:
        raise fail(
            path, f"holds an array of shape {tuple(raw.shape)}; expected one H x W depth map"
        )
    if raw.dtype == np.bool_ or not (
        np.issubdtype(raw.dtype, np.floating) or np.issubdtype(raw.dtype, np.integer)
    ):
        raise fail(path, f"holds {raw.dtype} values; expected integer or floating-point depth")
    check_pixels(path, raw.shape[0], raw.shape[1])
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
        raise fail(
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
            raise fail(path, f"unsupported colour mode {oriented.mode}") from err


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
        raise fail(path, reason)


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
            raise fail(path, f"unsupported .npy format version {version[0]}.{version[1]}")
    except RGBDFileError:
        raise
    except Exception as err:
        raise fail(path, "not a valid .npy array (bad header)") from err
    if dtype.hasobject:
        raise fail(
            path,
            "contains Python objects (pickled data), which are refused for safety; "
            "save the depth map as a plain numeric array",
        )
    if dtype.kind not in "iuf":
        raise fail(path, f"holds {dtype} values; expected integer or floating-point depth")
    if any(n < 0 for n in shape):
        raise fail(path, f"not a valid .npy array (negative size in shape {tuple(shape)})")
    # Python integers, so a declared 2**32 x 2**32 cannot wrap around to 0; each side is
    # bounded too, since a zero side would otherwise let any other side through.
    if math.prod(shape) > MAX_PIXELS or max(shape, default=0) > MAX_PIXELS:
        raise fail(
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
                raise fail(
                    path,
                    f"cannot tell which array is the depth map (arrays: {found}); "
                    "name it 'depth' or store only one array",
                )
            with archive.open(key + ".npy") as member:
                return _read_npy_stream(path, member), key
    except RGBDFileError:
        raise
    except Exception as err:  # zipfile: BadZipFile, NotImplementedError, RuntimeError, ...
        raise fail(path, "truncated or corrupt .npz archive") from err


_PFM_HEADER = re.compile(rb"(P[Ff])\s+(\d+)\s+(\d+)\s+([-+0-9.eE]+)\s")


def _read_pfm(path: Path) -> np.ndarray:
    """Portable float map; rows are stored bottom-to-top, negative scale = little-endian."""
    with path.open("rb") as f:
        head = f.read(128)
        match = _PFM_HEADER.match(head)
        if match is None:
            raise fail(path, "not a valid PFM file (bad header)")
        kind, width, height, scale_text = match.groups()
        if kind == b"PF":
            raise fail(path, "is a colour PFM ('PF'); expected a greyscale depth PFM ('Pf')")
        width, height = int(width), int(height)
        check_pixels(path, height, width)
        try:
            little_endian = float(scale_text) < 0
        except ValueError as err:
            raise fail(path, "not a valid PFM file (bad scale)") from err
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
        raise fail(
            path,
            "reading .exr files needs OpenCV (pip install opencv-python-headless), "
            "which is not installed",
        ) from err
    if not _opencv_reads_exr(cv2):
        raise fail(
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
        raise fail(
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
        raise fail(path, "not a readable HDF5 file (truncated or corrupt)") from err


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
        raise fail(
            path, f"'{key}' is a link, not data stored in this file; links are refused for safety"
        )
    item = h5.get(key)
    if isinstance(item, h5py.Dataset) and (item.external or item.is_virtual):
        raise fail(path, f"'{key}' keeps its values in other files, which is refused for safety")


def _read_h5_dataset(path: Path, h5: h5py.File, key: str, max_elements: int) -> np.ndarray:
    try:
        _refuse_outside_data(path, h5, key)
        item = h5.get(key)
        if not isinstance(item, h5py.Dataset):
            found = ", ".join(repr(k) for k in h5) or "none"
            raise fail(path, f"has no '{key}' dataset (found: {found})")
        shape = item.shape or ()
        if math.prod(shape) > max_elements or max(shape, default=0) > max_elements:
            raise fail(
                path,
                f"'{key}' of shape {tuple(item.shape)} exceeds the limit of "
                f"{MAX_PIXELS // 1_000_000} megapixels",
            )
        if item.dtype.hasobject or item.dtype.kind not in "uif":
            raise fail(path, f"'{key}' holds {item.dtype} values; expected numbers")
        return np.asarray(item[()])
    except RGBDFileError:
        raise
    except Exception as err:  # h5py raises OSError, RuntimeError, KeyError on damaged files
        raise fail(path, f"could not read '{key}' (truncated or corrupt HDF5 file)") from err


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
        raise fail(
            path,
            f"unknown depth file extension '{path.suffix}'; expected one of "
            f"{', '.join(DEPTH_EXTENSIONS)}",
        )
    check_exists(path)
    _resolve_scale(units, scale, "m")  # validate arguments before touching the file
    try:
        raw, factor, kind = _read_raw_depth(path, suffix, units, scale)
    except OSError as err:  # permissions, I/O errors; format problems are RGBDFileError
        raise fail(path, f"cannot read the file ({err.strerror or err})") from err
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
    check_exists(path)
    factor = _resolve_scale(units, scale, "m")
    if not max_depth_m > 0:
        raise ValueError(f"max_depth_m must be positive, got {max_depth_m!r}")
    with _open_h5(path) as h5:
        rgb = _read_h5_dataset(path, h5, "rgb", 3 * MAX_PIXELS)
        raw = _read_h5_depth(path, h5)
    if rgb.ndim == 3 and rgb.shape[0] == 3 and rgb.shape[2] != 3:
        rgb = np.transpose(rgb, (1, 2, 0))  # 3xHxW -> HxWx3
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise fail(path, f"'rgb' has shape {rgb.shape}; expected 3 x H x W")
    if rgb.dtype != np.uint8:
        raise fail(path, f"'rgb' holds {rgb.dtype} values; expected uint8")
    raw = _as_depth_map(path, raw)
    if raw.shape != rgb.shape[:2]:
        raise fail(
            path,
            f"'rgb' is {rgb.shape[1]}x{rgb.shape[0]} pixels but 'depth' is "
            f"{raw.shape[1]}x{raw.shape[0]} (width x height)",
        )
    depth, n_invalid = _sanitize(path, raw, factor, max_depth_m)
    source = f"{path.name} (NYUv2 HDF5 'depth', {_unit_text(factor)})"
    return np.ascontiguousarray(rgb), DepthReadResult(depth, n_invalid, source)
