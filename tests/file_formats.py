"""File formats the tests write or read back but the library does not: PFM depth inputs for
the readers, and a small PLY reader to check what ``write_ply`` wrote."""

from __future__ import annotations

from pathlib import Path

import numpy as np

_PLY_TYPES = {"float": "f4", "double": "f8", "uchar": "u1", "int": "i4"}


def write_pfm(path: Path, depth: np.ndarray) -> None:
    """A little-endian greyscale PFM (float32, rows bottom-to-top), as a reader input."""
    height, width = depth.shape
    data = np.ascontiguousarray(depth.astype("<f4")[::-1]).tobytes()
    path.write_bytes(f"Pf\n{width} {height}\n-1.0\n".encode("ascii") + data)


def read_ply(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """(points N x 3 float32, colours N x 3 uint8 or None) of a PLY that write_ply wrote."""
    with Path(path).open("rb") as f:
        assert f.readline() == b"ply\n"
        fmt, count, fields = "", 0, []
        for line in iter(f.readline, b"end_header\n"):
            words = line.decode("ascii").split()
            if words[0] == "format":
                fmt = words[1]
            elif words[0] == "element":
                count = int(words[2])
            elif words[0] == "property":
                fields.append((words[2], "<" + _PLY_TYPES[words[1]]))
        dtype = np.dtype(fields)
        if fmt == "ascii":
            table = np.loadtxt(f, ndmin=2).reshape(count, len(fields))
            vertices = np.zeros(count, dtype)
            for i, (name, _) in enumerate(fields):
                vertices[name] = table[:, i]
        else:
            assert fmt == "binary_little_endian", fmt
            vertices = np.frombuffer(f.read(), dtype, count=count)
    points = np.stack([vertices[c] for c in "xyz"], axis=1).astype(np.float32)
    if "red" not in dtype.names:
        return points, None
    return points, np.stack([vertices[c] for c in ("red", "green", "blue")], axis=1)
