"""Tests for sdr_core.data.io: round trips for every format, image modes, bad files, PLY."""

from __future__ import annotations

import importlib.util
import logging
import re
import struct
import time
import zlib
from pathlib import Path

import h5py
import numpy as np
import pytest
from file_formats import read_ply, write_pfm
from PIL import Image, features

from sdr_core.data.io import (
    MAX_PIXELS,
    DepthReadResult,
    RGBDFileError,
    default_intrinsics,
    depth_to_points,
    read_depth,
    read_image,
    read_nyu_h5,
    resize_depth_nearest,
    write_depth_npy,
    write_depth_png,
    write_ply,
)

HAS_CV2 = importlib.util.find_spec("cv2") is not None


def _depth(height: int = 12, width: int = 16, seed: int = 0) -> np.ndarray:
    """Float32 metres in [0.5, 10) with a few missing pixels."""
    rng = np.random.default_rng(seed)
    depth = rng.uniform(0.5, 10.0, size=(height, width)).astype(np.float32)
    depth[rng.random((height, width)) < 0.1] = 0.0
    return depth


def _rgb(height: int = 12, width: int = 16, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def _png_bytes(width: int, height: int, bit_depth: int, colour_type: int, raw: bytes) -> bytes:
    """A hand-built PNG; `raw` is the filtered scanline data (pass b"" for a header only)."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    body = _png_chunk(b"IHDR", ihdr)
    if raw:
        body += _png_chunk(b"IDAT", zlib.compress(raw))
    return b"\x89PNG\r\n\x1a\n" + body + _png_chunk(b"IEND", b"")


# ----------------------------------------------------------------------------- depth round trips


@pytest.mark.parametrize(("units", "quantum_m"), [("mm", 1e-3), ("kitti", 1 / 256)])
def test_png_round_trip_within_quantisation(tmp_path, units, quantum_m):
    depth = _depth()
    path = tmp_path / "depth.png"
    write_depth_png(path, depth, units=units)
    with Image.open(path) as image:
        assert image.mode == "I;16"
    result = read_depth(path, units=units)
    assert isinstance(result, DepthReadResult)
    assert result.depth.dtype == np.float32
    assert result.depth.shape == depth.shape
    assert result.n_invalid == 0
    np.testing.assert_array_equal(result.depth == 0, depth == 0)
    # Rounding to the nearest unit: error at most half a quantum (plus float32 noise).
    assert np.abs(result.depth - depth).max() <= quantum_m / 2 + 1e-6
    assert "depth.png" in result.source


def test_png_defaults_to_millimetres_and_scale_overrides(tmp_path):
    path = tmp_path / "d.png"
    Image.fromarray(np.array([[0, 1000, 2500]], dtype=np.uint16)).save(path)
    np.testing.assert_allclose(read_depth(path).depth, [[0.0, 1.0, 2.5]])
    np.testing.assert_allclose(read_depth(path, scale=0.01).depth, [[0.0, 10.0, 25.0]])
    np.testing.assert_allclose(
        read_depth(path, units="kitti").depth, [[0.0, 1000 / 256, 2500 / 256]]
    )


def test_png_writer_clips_overflow_with_warning_and_keeps_tiny_depths_valid(tmp_path, caplog):
    depth = np.array([[0.0, 70.0, 0.0002, np.nan, -1.0]], dtype=np.float32)
    path = tmp_path / "far.png"
    with caplog.at_level(logging.WARNING, logger="sdr_core.data.io"):
        write_depth_png(path, depth)
    assert "clipped" in caplog.text
    np.testing.assert_array_equal(np.asarray(Image.open(path)), [[0, 65535, 1, 0, 0]])


def test_png_writer_refuses_metre_units(tmp_path):
    with pytest.raises(ValueError, match="'mm' or 'kitti'"):
        write_depth_png(tmp_path / "d.png", _depth(), units="m")


def test_npy_round_trip_is_exact(tmp_path):
    depth = _depth()
    write_depth_npy(tmp_path / "d.npy", depth)
    result = read_depth(tmp_path / "d.npy")
    np.testing.assert_array_equal(result.depth, depth)
    assert result.n_invalid == 0


def test_npy_accepts_singleton_channel_and_fortran_order(tmp_path):
    depth = _depth()
    np.save(tmp_path / "chw.npy", depth[None])
    np.save(tmp_path / "fortran.npy", np.asfortranarray(depth.astype(np.float64)))
    np.testing.assert_array_equal(read_depth(tmp_path / "chw.npy").depth, depth)
    np.testing.assert_array_equal(read_depth(tmp_path / "fortran.npy").depth, depth)


@pytest.mark.parametrize("key", ["depth", "arr_0"])
@pytest.mark.parametrize("compressed", [False, True])
def test_npz_round_trip(tmp_path, key, compressed):
    depth = _depth()
    save = np.savez_compressed if compressed else np.savez
    extra = {"rgb": _rgb()} if key == "depth" else {}
    save(tmp_path / "d.npz", **{key: depth}, **extra)
    np.testing.assert_array_equal(read_depth(tmp_path / "d.npz").depth, depth)


def test_npz_with_ambiguous_arrays_is_refused(tmp_path):
    np.savez(tmp_path / "two.npz", a=_depth(), b=_depth())
    with pytest.raises(RGBDFileError, match=r"two\.npz: cannot tell which array.*'a', 'b'"):
        read_depth(tmp_path / "two.npz")


def test_pfm_round_trip_is_exact_and_row_order_kept(tmp_path):
    depth = _depth(7, 5)
    write_pfm(tmp_path / "d.pfm", depth)
    np.testing.assert_array_equal(read_depth(tmp_path / "d.pfm").depth, depth)


def test_pfm_big_endian_is_read(tmp_path):
    depth = _depth(3, 4)
    header = b"Pf\n4 3\n1.0\n"  # positive scale = big-endian
    (tmp_path / "be.pfm").write_bytes(header + depth[::-1].astype(">f4").tobytes())
    np.testing.assert_array_equal(read_depth(tmp_path / "be.pfm").depth, depth)


def _write_nyu_h5(path: Path, rgb_hwc: np.ndarray, depth: np.ndarray) -> None:
    with h5py.File(path, "w") as f:
        f.create_dataset("rgb", data=np.transpose(rgb_hwc, (2, 0, 1)))  # 3 x H x W
        f.create_dataset("depth", data=depth)


def test_nyu_h5_round_trip(tmp_path):
    rgb, depth = _rgb(), _depth()
    _write_nyu_h5(tmp_path / "00001.h5", rgb, depth)
    rgb_read, result = read_nyu_h5(tmp_path / "00001.h5")
    np.testing.assert_array_equal(rgb_read, rgb)
    np.testing.assert_array_equal(result.depth, depth)
    np.testing.assert_array_equal(read_depth(tmp_path / "00001.h5").depth, depth)


def test_nyu_h5_missing_key_lists_what_is_there(tmp_path):
    with h5py.File(tmp_path / "x.h5", "w") as f:
        f.create_dataset("image", data=np.zeros((3, 4, 5), np.uint8))
    with pytest.raises(RGBDFileError, match=r"x\.h5: has no 'depth' dataset \(found: 'image'\)"):
        read_depth(tmp_path / "x.h5")


def _opencv_writes_exr(path) -> bool:
    """Write a test EXR with OpenCV; False where the build has no EXR codec.

    OpenCV 4 returns False without OPENCV_IO_ENABLE_OPENEXR; OpenCV 5.1 wheels have no
    OpenEXR at all and ``imwrite`` raises ``cv2.error`` instead.
    """
    import cv2

    try:
        return bool(cv2.imwrite(str(path), _depth()))
    except cv2.error:
        return False


@pytest.mark.skipif(not HAS_CV2, reason="OpenCV (cv2) is not installed; .exr is optional")
def test_exr_round_trip_or_a_plain_message_without_an_exr_codec(tmp_path):
    path = tmp_path / "d.exr"
    if _opencv_writes_exr(path):
        np.testing.assert_array_equal(read_depth(path).depth, _depth())
    else:  # e.g. OpenCV 5.1: the reader names the problem instead of failing obscurely
        path.write_bytes(b"\x76\x2f\x31\x01" + bytes(60))
        with pytest.raises(RGBDFileError, match=r"d\.exr: .*cannot read \.exr files"):
            read_depth(path)


@pytest.mark.skipif(HAS_CV2, reason="checks the message shown when OpenCV is absent")
def test_exr_without_opencv_says_what_to_install(tmp_path):
    (tmp_path / "d.exr").write_bytes(b"\x76\x2f\x31\x01" + bytes(60))
    with pytest.raises(RGBDFileError, match=r"d\.exr: reading \.exr files needs OpenCV"):
        read_depth(tmp_path / "d.exr")


def test_float_tiff_depth_is_metres(tmp_path):
    depth = _depth()
    Image.fromarray(depth).save(tmp_path / "d.tiff")
    np.testing.assert_array_equal(read_depth(tmp_path / "d.tiff").depth, depth)


# ----------------------------------------------------------------------------- invalid values


def test_nan_inf_negative_and_out_of_range_become_zero_with_count(tmp_path):
    raw = np.array(
        [[1.0, np.nan, np.inf], [-np.inf, -2.0, 0.0], [3.0, 2000.0, 999.0]], dtype=np.float32
    )
    np.save(tmp_path / "bad.npy", raw)
    result = read_depth(tmp_path / "bad.npy")
    expected = [[1.0, 0.0, 0.0], [0.0, 0.0, 0.0], [3.0, 0.0, 999.0]]
    np.testing.assert_array_equal(result.depth, expected)
    assert result.n_invalid == 5  # nan, inf, -inf, -2, 2000 (> 1000 m); the 0 is not counted
    assert read_depth(tmp_path / "bad.npy", max_depth_m=10.0).n_invalid == 6


def test_invalid_arguments_raise_value_error(tmp_path):
    np.save(tmp_path / "d.npy", _depth())
    with pytest.raises(ValueError, match="units must be one of"):
        read_depth(tmp_path / "d.npy", units="cm")
    with pytest.raises(ValueError, match="scale must be a positive"):
        read_depth(tmp_path / "d.npy", scale=-1.0)


# ----------------------------------------------------------------------------- images


@pytest.mark.parametrize(
    ("extension", "lossless"),
    [(".png", True), (".bmp", True), (".tif", True), (".tiff", True), (".jpg", False)]
    + ([(".webp", True)] if features.check("webp") else []),
)
def test_image_formats_round_trip(tmp_path, extension, lossless):
    rgb = _rgb(20, 30)
    path = tmp_path / f"img{extension}"
    options = {"lossless": True} if extension == ".webp" else {}
    Image.fromarray(rgb).save(path, **options)
    out = read_image(path)
    assert out.shape == (20, 30, 3)
    assert out.dtype == np.uint8
    if lossless:
        np.testing.assert_array_equal(out, rgb)


def test_rgba_drops_alpha(tmp_path):
    rgba = np.dstack([_rgb(), np.full((12, 16), 7, np.uint8)])
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "a.png")
    np.testing.assert_array_equal(read_image(tmp_path / "a.png"), rgba[:, :, :3])


def test_grey_and_palette_become_rgb(tmp_path):
    grey = _rgb()[:, :, 0]
    Image.fromarray(grey).save(tmp_path / "g.png")
    np.testing.assert_array_equal(read_image(tmp_path / "g.png"), np.dstack([grey] * 3))
    Image.fromarray(_rgb()).convert("P").save(tmp_path / "p.png")
    assert read_image(tmp_path / "p.png").shape == (12, 16, 3)


def test_16bit_grey_image_maps_to_8bit(tmp_path):
    grey16 = np.array([[0, 257, 65535, 32896]], dtype=np.uint16)
    Image.fromarray(grey16).save(tmp_path / "g16.png")
    np.testing.assert_array_equal(read_image(tmp_path / "g16.png")[:, :, 0], [[0, 1, 255, 128]])


def test_16bit_rgb_png_is_read(tmp_path):
    # Pillow cannot write 48-bit PNGs, so build one by hand: filter byte 0 + big-endian RGB16.
    pixels = np.array([[[0, 32896, 65535], [65535, 0, 257]]], dtype=">u2")
    raw = b"\x00" + pixels.tobytes()
    (tmp_path / "rgb16.png").write_bytes(_png_bytes(2, 1, 16, 2, raw))
    np.testing.assert_array_equal(
        read_image(tmp_path / "rgb16.png"), [[[0, 128, 255], [255, 0, 1]]]
    )


def test_exif_orientation_is_applied(tmp_path):
    rgb = _rgb(20, 30)  # stored landscape 30 wide x 20 high
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display
    Image.fromarray(rgb).save(tmp_path / "phone.jpg", exif=exif.tobytes(), quality=95)
    out = read_image(tmp_path / "phone.jpg")
    assert out.shape == (30, 20, 3)
    # Orientation 6 means the stored top-left corner is displayed at the top-right.
    top_left = rgb[:4, :4].mean(axis=(0, 1))
    np.testing.assert_allclose(out[:4, -4:].mean(axis=(0, 1)), top_left, atol=40)


# ----------------------------------------------------------------------------- bad files


def test_truncated_png(tmp_path):
    path = tmp_path / "depth.png"
    write_depth_png(path, _depth(64, 64))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(RGBDFileError, match=r"^depth\.png: truncated or corrupt PNG"):
        read_depth(path)
    Image.fromarray(_rgb(64, 64)).save(tmp_path / "photo.png")
    data = (tmp_path / "photo.png").read_bytes()
    (tmp_path / "photo.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(RGBDFileError, match=r"^photo\.png: truncated or corrupt PNG"):
        read_image(tmp_path / "photo.png")


def test_random_bytes_named_png(tmp_path):
    path = tmp_path / "noise.png"
    path.write_bytes(np.random.default_rng(0).bytes(1000))
    with pytest.raises(RGBDFileError, match=r"^noise\.png: not a readable image"):
        read_image(path)
    with pytest.raises(RGBDFileError, match=r"^noise\.png: not a readable image"):
        read_depth(path)


@pytest.mark.parametrize(("name", "reader"), [("scan.xyz", read_depth), ("photo.gif", read_image)])
def test_unknown_extension(tmp_path, name, reader):
    (tmp_path / name).write_bytes(b"whatever")
    with pytest.raises(RGBDFileError, match=rf"^{re.escape(name)}: unknown .* extension"):
        reader(tmp_path / name)


def test_unknown_extension_message_lists_choices(tmp_path):
    with pytest.raises(RGBDFileError) as info:
        read_depth(tmp_path / "scan.xyz")
    assert str(info.value).startswith("scan.xyz: unknown depth file extension '.xyz'; expected")
    assert ".png, .npy" in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(RGBDFileError, match=r"^nothing\.npy: file not found"):
        read_depth(tmp_path / "nothing.npy")


def test_object_npy_is_refused_without_unpickling(tmp_path):
    path = tmp_path / "evil.npy"
    np.save(path, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    with pytest.raises(RGBDFileError, match=r"^evil\.npy: contains Python objects"):
        read_depth(path)
    np.savez(tmp_path / "evil.npz", depth=np.array([None], dtype=object))
    with pytest.raises(RGBDFileError, match=r"^evil\.npz: contains Python objects"):
        read_depth(tmp_path / "evil.npz")


def test_truncated_npy_and_corrupt_npz(tmp_path):
    np.save(tmp_path / "cut.npy", _depth())
    data = (tmp_path / "cut.npy").read_bytes()
    (tmp_path / "cut.npy").write_bytes(data[:-10])
    with pytest.raises(RGBDFileError, match=r"^cut\.npy: truncated"):
        read_depth(tmp_path / "cut.npy")
    (tmp_path / "bad.npz").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(RGBDFileError, match=r"^bad\.npz: truncated or corrupt"):
        read_depth(tmp_path / "bad.npz")


def test_truncated_jpeg(tmp_path):
    Image.fromarray(_rgb(64, 64)).save(tmp_path / "photo.jpg")
    data = (tmp_path / "photo.jpg").read_bytes()
    (tmp_path / "photo.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(RGBDFileError, match=r"^photo\.jpg: truncated or corrupt JPEG"):
        read_image(tmp_path / "photo.jpg")


def test_npy_with_huge_record_dtype_is_refused_before_reading(tmp_path):
    path = tmp_path / "void.npy"
    header = {"descr": "|V1000000000", "fortran_order": False, "shape": (4,)}
    with path.open("wb") as f:
        np.lib.format.write_array_header_1_0(f, header)
    with pytest.raises(RGBDFileError, match=r"^void\.npy: holds \|V1000000000 values"):
        read_depth(path)


def test_units_apply_to_float_files_too(tmp_path):
    np.save(tmp_path / "mm.npy", np.array([[1500.0, 0.0]], np.float32))
    np.testing.assert_allclose(read_depth(tmp_path / "mm.npy", units="mm").depth, [[1.5, 0.0]])


def test_wrong_array_shapes_and_dtypes(tmp_path):
    np.save(tmp_path / "rgb.npy", _rgb())
    with pytest.raises(RGBDFileError, match=r"rgb\.npy: holds an array of shape \(12, 16, 3\)"):
        read_depth(tmp_path / "rgb.npy")
    np.save(tmp_path / "text.npy", np.array([["a", "b"]]))
    with pytest.raises(RGBDFileError, match=r"text\.npy: holds <U1 values"):
        read_depth(tmp_path / "text.npy")


def test_colour_or_8bit_png_is_not_depth(tmp_path):
    Image.fromarray(_rgb()).save(tmp_path / "colour.png")
    with pytest.raises(RGBDFileError, match=r"colour\.png: is a colour \(RGB\) image"):
        read_depth(tmp_path / "colour.png")
    Image.fromarray(_rgb()[:, :, 0]).save(tmp_path / "grey8.png")
    with pytest.raises(RGBDFileError, match=r"grey8\.png: 8-bit PNG cannot hold metric depth"):
        read_depth(tmp_path / "grey8.png")
    assert read_depth(tmp_path / "grey8.png", scale=0.1).depth.max() <= 25.5


def test_truncated_pfm_and_bad_headers(tmp_path):
    write_pfm(tmp_path / "d.pfm", _depth())
    data = (tmp_path / "d.pfm").read_bytes()
    (tmp_path / "d.pfm").write_bytes(data[:-4])
    with pytest.raises(RGBDFileError, match=r"^d\.pfm: truncated PFM data"):
        read_depth(tmp_path / "d.pfm")
    (tmp_path / "x.pfm").write_bytes(b"P6\n1 1\n255\n\x00\x00\x00")
    with pytest.raises(RGBDFileError, match=r"^x\.pfm: not a valid PFM"):
        read_depth(tmp_path / "x.pfm")
    (tmp_path / "c.pfm").write_bytes(b"PF\n1 1\n-1.0\n" + bytes(12))
    with pytest.raises(RGBDFileError, match=r"^c\.pfm: is a colour PFM"):
        read_depth(tmp_path / "c.pfm")


def test_not_hdf5(tmp_path):
    (tmp_path / "fake.h5").write_bytes(b"hello")
    with pytest.raises(RGBDFileError, match=r"^fake\.h5: not a readable HDF5 file"):
        read_nyu_h5(tmp_path / "fake.h5")


def test_nyu_h5_with_mismatched_sizes(tmp_path):
    with h5py.File(tmp_path / "odd.h5", "w") as f:
        f.create_dataset("rgb", data=np.zeros((3, 10, 20), np.uint8))
        f.create_dataset("depth", data=np.zeros((10, 21), np.float32))
    with pytest.raises(RGBDFileError, match=r"odd\.h5: 'rgb' is 20x10 pixels but 'depth' is 21x10"):
        read_nyu_h5(tmp_path / "odd.h5")


@pytest.mark.parametrize(("width", "height"), [(100_000, 100_000), (8_000, 6_000)])
@pytest.mark.parametrize("reader", [read_image, read_depth])
def test_huge_declared_dimensions_refused_before_decoding(tmp_path, width, height, reader):
    # Only a header and an empty image body: decoding would fail, so the refusal must
    # come from the declared size. 8000x6000 = 48 MP sits below Pillow's own bomb limit.
    path = tmp_path / "huge.png"
    path.write_bytes(_png_bytes(width, height, 16, 0, b""))
    assert width * height > MAX_PIXELS
    start = time.perf_counter()
    with pytest.raises(RGBDFileError) as info:
        reader(path)
    assert time.perf_counter() - start < 1.0
    assert str(info.value) == (
        f"huge.png: image of {width}x{height} pixels exceeds the limit of 40 megapixels"
    )


def test_huge_npy_header_refused(tmp_path):
    path = tmp_path / "huge.npy"
    header = {"descr": "<f4", "fortran_order": False, "shape": (50_000, 50_000)}
    with path.open("wb") as f:
        np.lib.format.write_array_header_1_0(f, header)
    with pytest.raises(RGBDFileError, match=r"^huge\.npy: array of shape \(50000, 50000\) exceeds"):
        read_depth(path)


# ----------------------------------------------------------------------------- PLY


def test_depth_to_points_hand_values():
    depth = np.zeros((3, 4), np.float32)
    depth[2, 3] = 2.0
    depth[0, 0] = 1.0
    points = depth_to_points(depth, (10.0, 20.0, 1.0, 1.0))
    # Row-major order: (v=0, u=0) then (v=2, u=3).
    np.testing.assert_allclose(points, [[-0.1, -0.05, 1.0], [0.4, 0.1, 2.0]], rtol=1e-6)


@pytest.mark.parametrize("binary", [True, False])
def test_ply_round_trip(tmp_path, binary):
    depth, rgb = _depth(), _rgb()
    depth[5, 7] = 2.0
    intrinsics = (20.0, 22.0, 8.0, 6.0)
    count = write_ply(tmp_path / "cloud.ply", depth, rgb, intrinsics, binary=binary)
    assert count == np.count_nonzero(depth)
    points, colours = read_ply(tmp_path / "cloud.ply")
    assert points.shape == (count, 3)
    assert points.dtype == np.float32
    np.testing.assert_allclose(points, depth_to_points(depth, intrinsics), rtol=1e-6)
    # Pixel (row 5, column 7) at 2 m: x = (7 - 8) * 2 / 20, y = (5 - 6) * 2 / 22.
    index = np.flatnonzero(np.flatnonzero(depth.ravel()) == 5 * 16 + 7)[0]
    np.testing.assert_allclose(points[index], [-0.1, -1 / 11, 2.0], rtol=1e-6)
    np.testing.assert_array_equal(colours[index], rgb[5, 7])
    np.testing.assert_array_equal(colours, rgb[depth > 0])


def test_ply_without_colour_and_default_intrinsics(tmp_path):
    depth = _depth(48, 64)
    count = write_ply(tmp_path / "plain.ply", depth)
    points, colours = read_ply(tmp_path / "plain.ply")
    assert colours is None
    assert count == len(points) == np.count_nonzero(depth)
    np.testing.assert_allclose(points, depth_to_points(depth, default_intrinsics(48, 64)))


# ----------------------------------------------------------------------------- resizing


def test_resize_depth_nearest_never_blends():
    depth = np.array([[1.0, 1.0, 5.0, 5.0], [1.0, 1.0, 5.0, 5.0]], np.float32)
    small = resize_depth_nearest(depth, (1, 2))
    np.testing.assert_array_equal(small, [[1.0, 5.0]])
    large = resize_depth_nearest(depth, (4, 7))
    assert set(np.unique(large)) <= {1.0, 5.0}
