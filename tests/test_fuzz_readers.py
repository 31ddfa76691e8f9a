"""Fuzzing the RGB-D readers of sdr_core.data.io with hypothesis.

Every input, however broken, must end in one of two ways: a valid result (an H x W x 3
uint8 image, or an H x W float32 depth map in metres that is finite, >= 0 and within
`max_depth_m`), or an `RGBDFileError` whose message starts with the file's name and says
what is wrong. Any other exception, a hang (hypothesis deadline) or memory proportional to
a size the file merely declares (tracemalloc) is a failure.

Inputs: random bytes behind each format's magic number, valid files with random mutations
(truncations, overwritten and inserted bytes), generated headers with hostile fields (.npy
shapes and dtypes, PFM sizes and scales, PNG dimensions, HDF5 layouts) and
NaN/inf payloads. The example counts keep the whole file under about 30 s on a shared
2-core machine; `tests/fuzz_atheris_readers.py` runs the same oracle for as long as wanted.
"""

from __future__ import annotations

import io as bytes_io
import struct
import tempfile
import tracemalloc
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import pytest
from file_formats import write_pfm
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from sdr_core.data.io import (
    MAX_PIXELS,
    RGBDFileError,
    read_depth,
    read_image,
    read_nyu_h5,
    write_depth_png,
)

# A deadline catches hangs; it is generous because the machine is shared. No example
# database, so a run leaves no .hypothesis folder behind (failures print their blob).
FUZZ = settings(
    max_examples=60,
    deadline=5000,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
MAX_DEPTH_M = 1000.0

Reader = Callable[[Path], object]
DEPTH_EXTENSIONS = (".png", ".tif", ".npy", ".npz", ".pfm", ".h5")
IMAGE_EXTENSIONS = (".png", ".jpg", ".webp", ".bmp", ".tif")

# Magic numbers that get random bytes past the first check of each parser.
MAGICS = {
    ".png": b"\x89PNG\r\n\x1a\n",
    ".jpg": b"\xff\xd8\xff\xe0",
    ".webp": b"RIFF\x00\x01\x00\x00WEBPVP8 ",
    ".bmp": b"BM",
    ".tif": b"II*\x00",
    ".npy": b"\x93NUMPY\x01\x00",
    ".npz": b"PK\x03\x04",
    ".pfm": b"Pf\n",
    ".h5": b"\x89HDF\r\n\x1a\n",
}


# ----------------------------------------------------------------------------- the oracle


def _check_image(image: object) -> None:
    assert isinstance(image, np.ndarray)
    assert image.dtype == np.uint8
    assert image.ndim == 3
    assert image.shape[2] == 3
    assert 0 < image.shape[0] * image.shape[1] <= MAX_PIXELS


def _check_depth(depth: np.ndarray) -> None:
    assert depth.dtype == np.float32
    assert depth.ndim == 2
    assert 0 < depth.size <= MAX_PIXELS
    assert np.isfinite(depth).all()
    assert depth.min() >= 0.0
    assert depth.max() <= MAX_DEPTH_M


def _check_result(reader: Reader, result: object) -> None:
    if reader is read_image:
        _check_image(result)
    elif reader is read_depth:
        _check_depth(result.depth)
        # every value it counts as invalid became a 0; zeros already in the file are not counted
        assert 0 <= result.n_invalid <= np.count_nonzero(result.depth == 0)
    elif reader is read_nyu_h5:
        rgb, depth = result
        _check_image(rgb)
        _check_depth(depth.depth)
        assert rgb.shape[:2] == depth.depth.shape


def read_cleanly(reader: Reader, path: Path) -> object | None:
    """The reader's valid result, or None after a clean RGBDFileError; anything else fails."""
    try:
        result = reader(path)
    except RGBDFileError as error:
        refusal = error
    else:
        _check_result(reader, result)
        return result
    message = str(refusal)
    assert message.startswith(f"{path.name}: "), message
    assert len(message) > len(path.name) + 5, message  # a reason, not just the name
    assert refusal.path == path
    return None


def _readers_for(suffix: str) -> list[Reader]:
    readers: list[Reader] = []
    if suffix in IMAGE_EXTENSIONS:
        readers.append(read_image)
    if suffix in DEPTH_EXTENSIONS:
        readers.append(read_depth)
    if suffix == ".h5":
        readers.append(read_nyu_h5)
    return readers


def _fuzz_bytes(suffix: str, data: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"upload{suffix}"
        path.write_bytes(data)
        for reader in _readers_for(suffix):
            read_cleanly(reader, path)


# ----------------------------------------------------------------------------- seed files


def _seed_files() -> dict[str, bytes]:
    """One small valid file per format (12 x 16), built in memory."""
    rng = np.random.default_rng(0)
    depth = rng.uniform(0.5, 10.0, (12, 16)).astype(np.float32)
    depth[rng.random((12, 16)) < 0.1] = 0.0
    rgb = rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)
    files: dict[str, bytes] = {}
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        write_depth_png(root / "d.png", depth)
        files["depth.png"] = (root / "d.png").read_bytes()
        write_pfm(root / "d.pfm", depth)
        files["depth.pfm"] = (root / "d.pfm").read_bytes()
        Image.fromarray(depth).save(root / "d.tif")
        files["depth.tif"] = (root / "d.tif").read_bytes()
        with h5py.File(root / "n.h5", "w") as h5:
            h5.create_dataset("rgb", data=rgb.transpose(2, 0, 1))
            h5.create_dataset("depth", data=depth, chunks=(4, 8), compression="gzip")
        files["nyu.h5"] = (root / "n.h5").read_bytes()
    buffer = bytes_io.BytesIO()
    np.save(buffer, depth)
    files["depth.npy"] = buffer.getvalue()
    buffer = bytes_io.BytesIO()
    np.savez_compressed(buffer, depth=depth)
    files["depth.npz"] = buffer.getvalue()
    for fmt, suffix in (("PNG", ".png"), ("JPEG", ".jpg"), ("WEBP", ".webp"), ("BMP", ".bmp")):
        buffer = bytes_io.BytesIO()
        Image.fromarray(rgb).save(buffer, format=fmt)
        files[f"image{suffix}"] = buffer.getvalue()
    buffer = bytes_io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="TIFF", compression="tiff_lzw")
    files["image.tif"] = buffer.getvalue()
    return files


SEEDS = _seed_files()


def test_seed_files_are_valid():
    # The mutation fuzzer starts from these, so each must be valid for its main reader.
    main = {"image": read_image, "depth": read_depth, "nyu": read_nyu_h5}
    for name, data in SEEDS.items():
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / name
            path.write_bytes(data)
            assert read_cleanly(main[path.stem], path) is not None, name


@st.composite
def mutated(draw: st.DrawFn) -> tuple[str, bytes]:
    """A seed file with 1-6 random edits: truncate, overwrite, insert or delete bytes."""
    name = draw(st.sampled_from(sorted(SEEDS)))
    data = bytearray(SEEDS[name])
    for _ in range(draw(st.integers(1, 6))):
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        edit = draw(st.sampled_from(["truncate", "overwrite", "insert", "delete", "int32"]))
        if edit == "truncate":
            del data[at:]
        elif edit == "overwrite":
            data[at] = draw(st.integers(0, 255))
        elif edit == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif edit == "delete":
            del data[at : at + draw(st.integers(1, 16))]
        else:  # a plausible size field set to an extreme value
            value = draw(st.sampled_from([0, 1, 0x7FFFFFFF, 0xFFFFFFFF, 0x10000, 65535]))
            data[at : at + 4] = struct.pack(draw(st.sampled_from(["<I", ">I"])), value)
    return name, bytes(data)


# ----------------------------------------------------------------------------- fuzz tests


@FUZZ
@given(
    suffix=st.sampled_from(sorted(MAGICS)),
    with_magic=st.booleans(),
    data=st.binary(max_size=2048),
)
def test_random_bytes_end_in_a_clean_error(suffix, with_magic, data):
    _fuzz_bytes(suffix, (MAGICS[suffix] if with_magic else b"") + data)


@settings(FUZZ, max_examples=250)
@given(case=mutated())
def test_mutated_valid_files_read_or_fail_cleanly(case):
    name, data = case
    _fuzz_bytes(Path(name).suffix, data)


def _npy_bytes(descr: str, fortran: bool, shape: tuple[int, ...], body: bytes) -> bytes:
    header = repr({"descr": descr, "fortran_order": fortran, "shape": shape}).encode("latin1")
    header += b" " * (63 - (10 + len(header)) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + body


SHAPE_SIDES = st.one_of(
    st.integers(-3, 20),
    st.sampled_from([2**31 - 1, 2**32, 2**32 + 1, 2**63 - 1, 2**64, 10**30, -(2**63)]),
)
NPY_DESCRS = ["<f4", ">f8", "<f2", "<u2", "|u1", "<i8", "|b1", "<c8", "|O", "<U3", "|S4",
              "|V8", "<M8[s]", "<f16"]  # fmt: skip


@FUZZ
@given(
    descr=st.sampled_from(NPY_DESCRS),
    fortran=st.booleans(),
    shape=st.lists(SHAPE_SIDES, max_size=4).map(tuple),
    body=st.binary(max_size=1024),
)
def test_npy_headers_with_hostile_shapes_and_dtypes(descr, fortran, shape, body):
    _fuzz_bytes(".npy", _npy_bytes(descr, fortran, shape, body))
    archive = bytes_io.BytesIO()
    with zipfile.ZipFile(archive, "w") as npz:
        npz.writestr("depth.npy", _npy_bytes(descr, fortran, shape, body))
    _fuzz_bytes(".npz", archive.getvalue())


@FUZZ
@given(
    kind=st.sampled_from([b"Pf", b"PF", b"pf", b"P5"]),
    width=st.one_of(st.integers(0, 20), st.sampled_from([10**6, 2**32, 10**40])),
    height=st.one_of(st.integers(0, 20), st.sampled_from([10**6, 2**32, 10**40])),
    scale=st.sampled_from([b"-1.0", b"1.0", b"0", b"-0", b"1e999", b"-.", b"+-1", b"1e5e5"]),
    body=st.binary(max_size=2048),
)
def test_pfm_headers_with_hostile_fields(kind, width, height, scale, body):
    _fuzz_bytes(".pfm", kind + b"\n%d %d\n" % (width, height) + scale + b"\n" + body)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


@FUZZ
@given(
    width=st.integers(0, 2**31 - 1),
    height=st.integers(0, 2**31 - 1),
    bit_depth=st.sampled_from([1, 8, 16]),
    colour_type=st.sampled_from([0, 2, 4, 6]),
    idat=st.binary(max_size=256),
)
def test_png_with_any_declared_size_is_bounded(width, height, bit_depth, colour_type, idat):
    # A valid header (with correct CRCs) declaring any size, and a few bytes of image data.
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    data = _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", zlib.compress(idat))
    _fuzz_bytes(".png", MAGICS[".png"] + data + _png_chunk(b"IEND", b""))


H5_DTYPES = ["f4", "f8", "u1", "u2", "i4", "f2", "bool", "c8", "S3", "V4"]


@FUZZ
@given(
    depth_shape=st.lists(st.integers(0, 6), max_size=4).map(tuple),
    depth_dtype=st.sampled_from(H5_DTYPES),
    rgb_shape=st.lists(st.integers(0, 6), max_size=4).map(tuple),
    rgb_dtype=st.sampled_from(H5_DTYPES),
    fill=st.floats(allow_nan=True, allow_infinity=True, width=32),
)
def test_h5_layouts(depth_shape, depth_dtype, rgb_shape, rgb_dtype, fill):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "upload.h5"
        with h5py.File(path, "w") as h5:
            for key, shape, dtype in (("depth", depth_shape, depth_dtype),
                                      ("rgb", rgb_shape, rgb_dtype)):  # fmt: skip
                if dtype in ("f2", "f4", "f8"):
                    h5.create_dataset(key, shape=shape, dtype=dtype, fillvalue=fill)
                else:
                    h5.create_dataset(key, shape=shape, dtype=dtype)
        for reader in (read_depth, read_nyu_h5):
            read_cleanly(reader, path)


FINITE_OR_NOT = st.floats(allow_nan=True, allow_infinity=True, width=32)


@FUZZ
@given(
    depth=hnp.arrays(
        np.float32, hnp.array_shapes(min_dims=2, max_dims=2, max_side=8), elements=FINITE_OR_NOT
    ),  # fmt: skip
    suffix=st.sampled_from([".npy", ".npz", ".pfm", ".tif", ".h5"]),
)
def test_nan_inf_and_negative_payloads_become_missing(depth, suffix):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"payload{suffix}"
        if suffix == ".npy":
            np.save(path, depth)
        elif suffix == ".npz":
            np.savez(path, depth=depth)
        elif suffix == ".pfm":
            write_pfm(path, depth)
        elif suffix == ".tif":
            Image.fromarray(depth).save(path)
        else:
            with h5py.File(path, "w") as h5:
                h5.create_dataset("depth", data=depth)
        result = read_cleanly(read_depth, path)
    with np.errstate(invalid="ignore"):
        valid = np.isfinite(depth) & (depth >= 0) & (depth <= MAX_DEPTH_M)
    assert result is not None
    assert result.n_invalid == int((~valid).sum())
    np.testing.assert_array_equal(result.depth, np.where(valid, depth, 0).astype(np.float32))


# ----------------------------------------------------------------------------- declared sizes


def _declared_but_absent(path: Path) -> None:
    """Files that declare a large payload (within or beyond the limits) and hold ~none of it."""
    if path.suffix == ".npy":
        path.write_bytes(_npy_bytes("<f8", False, (6000, 6000), b"\0" * 64))
    elif path.suffix == ".npz":
        with zipfile.ZipFile(path, "w") as npz:
            npz.writestr("depth.npy", _npy_bytes("<f8", False, (6000, 6000), b"\0" * 64))
    elif path.suffix == ".pfm":
        path.write_bytes(b"Pf\n6000 6000\n-1.0\n" + b"\0" * 64)
    else:  # .h5: a chunked dataset of 2**32 x 2**32 that no chunk was ever written to
        with h5py.File(path, "w") as h5:
            h5.create_dataset("depth", shape=(2**32, 2**32), dtype="f4", chunks=(1, 64))
            h5.create_dataset("rgb", shape=(3, 2**32, 2**32), dtype="u1", chunks=(1, 1, 64))


@pytest.mark.parametrize("suffix", [".npy", ".npz", ".pfm", ".h5"])
def test_declared_sizes_cost_no_memory(tmp_path, suffix):
    # Before the bounded reads, a 100-byte .pfm declaring 6000 x 6000 allocated 144 MB in
    # one read() call and a 2**32 x 2**32 .npy or HDF5 shape wrapped around to 0 elements in
    # int64.
    path = tmp_path / f"declared{suffix}"
    _declared_but_absent(path)
    tracemalloc.start()
    try:
        with pytest.raises(RGBDFileError, match=r"truncated|exceeds the limit"):
            read_depth(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 32 * 2**20, f"{peak / 2**20:.0f} MB traced while refusing {path.name}"


@pytest.mark.parametrize(
    ("shape", "reason"),
    [
        ((-1, -5), "negative size"),
        ((-4, 5), "negative size"),
        ((2**32, 2**32), "exceeds the limit"),
        ((10**30, 1), "exceeds the limit"),
        ((0, 2**63 - 1), "exceeds the limit"),  # 0 elements, but too big for numpy
    ],
)
def test_npy_shapes_that_used_to_escape_as_numpy_errors(tmp_path, shape, reason):
    # Found by test_npy_headers_with_hostile_shapes_and_dtypes: numpy's header parser
    # accepts negative sides, np.prod(..., dtype=int64) wrapped huge ones around, and a zero
    # side hid a huge one from the element count; all escaped as numpy's ValueError.
    path = tmp_path / "shape.npy"
    path.write_bytes(_npy_bytes("<f4", False, shape, b"\0" * 80))
    with pytest.raises(RGBDFileError, match=rf"^shape\.npy: .*{reason}"):
        read_depth(path)


# ----------------------------------------------------------------------------- HDF5 links


def _hdf5_pointing_elsewhere(root: Path, how: str) -> Path:
    secret = root / "server_file.h5"
    with h5py.File(secret, "w") as h5:
        h5["depth"] = np.full((4, 5), 7.0, np.float32)
        h5["rgb"] = np.full((3, 4, 5), 9, np.uint8)
    raw = root / "server_file.bin"
    raw.write_bytes(bytes(range(80)))
    path = root / f"{how}.h5"
    with h5py.File(path, "w") as h5:
        h5["rgb"] = np.zeros((3, 4, 5), np.uint8)
        if how == "external_link":
            h5["depth"] = h5py.ExternalLink(str(secret), "/depth")
        elif how == "soft_link_into_external_group":
            h5["outside"] = h5py.ExternalLink(str(secret), "/")
            h5["depth"] = h5py.SoftLink("/outside/depth")
        elif how == "external_storage":
            h5.create_dataset("depth", shape=(4, 5), dtype="<f4", external=[(str(raw), 0, 80)])
        else:
            layout = h5py.VirtualLayout(shape=(4, 5), dtype="f4")
            layout[:] = h5py.VirtualSource(str(secret), "depth", shape=(4, 5))
            h5.create_virtual_dataset("depth", layout)
    return path


@pytest.mark.parametrize(
    ("how", "reason"),
    [
        ("external_link", "is a link"),
        ("soft_link_into_external_group", "is a link"),
        ("external_storage", "keeps its values in other files"),
        ("virtual_dataset", "keeps its values in other files"),
    ],
)
def test_hdf5_never_reads_other_files(tmp_path, how, reason):
    # Before: all four returned the server file's values (7.0, or its raw bytes) as depth.
    path = _hdf5_pointing_elsewhere(tmp_path, how)
    for reader in (read_depth, read_nyu_h5):
        with pytest.raises(RGBDFileError, match=rf"^{how}\.h5: 'depth' {reason}.*for safety"):
            reader(path)
