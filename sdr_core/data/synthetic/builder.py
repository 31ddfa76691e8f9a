"""Scene building blocks: materials, primitives, furniture pieces, walls and the `Layout`.

A `Builder` collects the materials and primitives of one layout; furniture is built as
`Piece`s in their own frame and placed on a `FloorPlan`; `freeze_layout` turns it all into
the arrays of the renderer's `Layout`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .textures import T_FLAT, TEX_SIZE

BOX, CYLINDER, SPHERE = 0, 1, 2


def _linear(rgb: tuple[float, float, float]) -> tuple[float, float, float]:
    """sRGB-ish colour in [0, 1] to linear reflectance."""
    return tuple(float(c) ** 2.2 for c in rgb)


def yaw_matrix(yaw: float) -> np.ndarray:
    """Rotation about world +y by `yaw` radians; column 2 is (sin yaw, 0, cos yaw)."""
    c, s = math.cos(yaw), math.sin(yaw)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def _tilt_matrix(tilt: float) -> np.ndarray:
    """Rotation about local +x by `tilt` radians."""
    c, s = math.cos(tilt), math.sin(tilt)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


class Builder:
    """Collects the materials and primitives of one layout (lives inside one call)."""

    def __init__(self) -> None:
        self.materials: list[tuple[Any, ...]] = []
        self.prims: list[tuple[Any, ...]] = []

    def material(
        self,
        tint: tuple[float, float, float],
        tex: int = T_FLAT,
        tile_m: float = 1.0,
        contrast: float = 0.0,
        gloss: float = 0.0,
        emissive: float = 0.0,
        photo: int = -1,
        rng: np.random.Generator | None = None,
    ) -> int:
        """Add a material (tint in sRGB [0, 1], texture repeating every tile_m metres)."""
        offset = (0.0, 0.0) if rng is None else tuple(rng.uniform(0, TEX_SIZE, 2))
        row = (_linear(tint), tex, TEX_SIZE / tile_m, contrast, gloss, emissive, photo, offset)
        self.materials.append(row)
        return len(self.materials) - 1

    def box(self, center, half, mat: int, rot: np.ndarray | None = None, shadow: bool = True):
        """Oriented box: centre (3,), half extents (3,), rot 3x3 local-to-world."""
        rot = np.eye(3) if rot is None else rot
        self.prims.append((BOX, tuple(center), rot, tuple(half), mat, shadow))

    def cylinder(
        self, x: float, z: float, y0: float, y1: float, r: float, mat: int, shadow: bool = True
    ):
        """Vertical cylinder of radius r from height y0 to y1 at (x, z)."""
        center = (x, (y0 + y1) / 2, z)
        self.prims.append((CYLINDER, center, np.eye(3), (r, (y1 - y0) / 2, r), mat, shadow))

    def sphere(self, center, r: float, mat: int, shadow: bool = True):
        """Sphere of radius r."""
        self.prims.append((SPHERE, tuple(center), np.eye(3), (r, r, r), mat, shadow))


class Piece:
    """A furniture piece in its own frame: x across, y up, +z its front; origin on the floor."""

    def __init__(self, half_w: float, half_d: float, height: float) -> None:
        self.half_w, self.half_d, self.height = half_w, half_d, height
        self.parts: list[tuple[Any, ...]] = []
        self.supports: list[tuple[float, float, float, float, float]] = []

    def box(self, x, y, z, hx, hy, hz, mat, yaw=0.0, tilt=0.0, shadow=True):
        """Box centred at (x, y, z) with half extents, turned by yaw then tilted."""
        self.parts.append(("box", (x, y, z), (hx, hy, hz), mat, yaw, tilt, shadow))

    def cyl(self, x, z, y0, y1, r, mat, shadow=True):
        """Vertical cylinder."""
        self.parts.append(("cyl", (x, 0.0, z), (y0, y1, r), mat, 0.0, 0.0, shadow))

    def sphere(self, x, y, z, r, mat, shadow=True):
        """Sphere."""
        self.parts.append(("sph", (x, y, z), (r,), mat, 0.0, 0.0, shadow))

    def support(self, x, z, hx, hz, y):
        """A horizontal surface at height y that clutter can stand on."""
        self.supports.append((x, z, hx, hz, y))


def place_piece(b: Builder, piece: Piece, x: float, z: float, yaw: float, y: float = 0.0):
    """Add a piece's parts to the builder at floor position (x, z), turned by yaw.

    Returns:
        The piece's supports in world terms: (x, z, half_x, half_z, height, yaw).
    """
    c, s = math.cos(yaw), math.sin(yaw)
    for kind, (lx, ly, lz), size, mat, part_yaw, tilt, shadow in piece.parts:
        wx, wz = x + c * lx + s * lz, z - s * lx + c * lz
        if kind == "box":
            rot = yaw_matrix(yaw + part_yaw)
            if tilt:
                rot = rot @ _tilt_matrix(tilt)
            b.box((wx, y + ly, wz), size, mat, rot, shadow)
        elif kind == "cyl":
            b.cylinder(wx, wz, y + size[0], y + size[1], size[2], mat, shadow)
        else:
            b.sphere((wx, y + ly, wz), size[0], mat, shadow)
    return [
        (x + c * sx + s * sz, z - s * sx + c * sz, hx, hz, y + sy, yaw)
        for sx, sz, hx, hz, sy in piece.supports
    ]


@dataclass(frozen=True)
class Opening:
    """A door or window cut into a wall (zero-thickness walls)."""

    wall: int  # room face: 0 (x=0), 1 (x=W), 4 (z=0), 5 (z=D)
    s0: float  # along-wall interval, metres (z for x-walls, x for z-walls)
    s1: float
    y0: float  # vertical interval, metres
    y1: float
    kind: str  # "door" (a corridor box behind) or "window" (sky at max depth)


WALLS = (0, 1, 4, 5)
PLANE_AXES = {0: (2, 1), 1: (0, 2), 2: (0, 1)}  # normal axis -> (u axis, v axis)


def wall_frame(wall: int, room: tuple[float, float, float]):
    """(along axis, wall coordinate, inward normal xz, wall length) of a wall."""
    w, _, d = room
    return {
        0: (2, 0.0, (1.0, 0.0), d),
        1: (2, w, (-1.0, 0.0), d),
        4: (0, 0.0, (0.0, 1.0), w),
        5: (0, d, (0.0, -1.0), w),
    }[wall]


def wall_point(wall: int, room, s: float, offset: float) -> tuple[float, float]:
    """Floor (x, z) at along-wall coordinate s, `offset` metres into the room."""
    axis, coord, (nx, nz), _ = wall_frame(wall, room)
    if axis == 2:
        return coord + nx * offset, s
    return s, coord + nz * offset


class FloorPlan:
    """Occupied floor rectangles (axis-aligned bounds of footprints) and wall openings."""

    def __init__(self, room, camera_xz: tuple[float, float], clearance: float) -> None:
        self.room = room
        self.camera_xz = camera_xz
        self.clearance = clearance
        self.rects: list[tuple[float, float, float, float]] = []

    def fits(self, x: float, z: float, hx: float, hz: float, margin: float = 0.03) -> bool:
        """Whether the rectangle is inside the room, free, and clear of the camera."""
        w, _, d = self.room
        x0, x1, z0, z1 = x - hx, x + hx, z - hz, z + hz
        if x0 < 0.005 or z0 < 0.005 or x1 > w - 0.005 or z1 > d - 0.005:
            return False
        cx, cz = self.camera_xz
        gap_x, gap_z = max(x0 - cx, 0.0, cx - x1), max(z0 - cz, 0.0, cz - z1)
        if math.hypot(gap_x, gap_z) < self.clearance:
            return False
        return all(
            x1 + margin <= a0 or b1 + margin <= x0 or z1 + margin <= c0 or d1 + margin <= z0
            for a0, b1, c0, d1 in self.rects
        )

    def add(self, x: float, z: float, hx: float, hz: float) -> None:
        """Mark a rectangle as occupied."""
        self.rects.append((x - hx, x + hx, z - hz, z + hz))


def footprint_extents(piece: Piece, yaw: float) -> tuple[float, float]:
    """Half extents in x and z of the axis-aligned bounds of a turned footprint."""
    c, s = abs(math.cos(yaw)), abs(math.sin(yaw))
    return c * piece.half_w + s * piece.half_d, s * piece.half_w + c * piece.half_d


@dataclass(frozen=True)
class Layout:
    """Everything the renderer needs; arrays are float64 unless stated."""

    room: tuple[float, float, float]  # W (x), H (y), D (z), metres
    openings: tuple[Opening, ...]
    corridors: np.ndarray  # n_openings x 2 x 3 box bounds behind doors (unused for windows)
    plane_normal: np.ndarray  # n_planes x 3 unit normals (room faces, corridors, windows)
    plane_axes: np.ndarray  # n_planes x 2 int: world axes used as texture (u, v)
    plane_mat: np.ndarray  # n_planes int material
    kind: np.ndarray  # n_prims int: BOX, CYLINDER, SPHERE
    center: np.ndarray  # n_prims x 3
    rot: np.ndarray  # n_prims x 3 x 3 local-to-world (identity for cylinders/spheres)
    half: np.ndarray  # n_prims x 3 half extents (cylinder: r, half height, r)
    prim_mat: np.ndarray  # n_prims int material
    casts_shadow: np.ndarray  # n_prims bool
    corners: np.ndarray  # n_prims x 8 x 3 bounding-box corners
    rot32: np.ndarray  # `rot` as float32
    params: tuple[tuple[Any, ...], ...]  # per primitive (kind, centre, rot, half) as lists
    tint: np.ndarray  # n_mat x 3 linear albedo
    tex: np.ndarray  # n_mat int texture index
    texels_per_m: np.ndarray  # n_mat
    contrast: np.ndarray  # n_mat texture contrast in [0, 1]
    gloss: np.ndarray  # n_mat specular strength in [0, 1]
    emissive: np.ndarray  # n_mat emitted radiance (multiplies tint)
    photo: np.ndarray  # n_mat int picture index, -1 for none
    tex_offset_m: np.ndarray  # 2 x n_mat texture offset (u, v), metres
    tint_t: np.ndarray  # 3 x n_mat, `tint` transposed
    lights: np.ndarray  # n_lights x 3 positions
    light_rgb: np.ndarray  # n_lights x 3 intensity
    ambient: float  # ambient light level
    cam_pos: np.ndarray  # (3,) camera centre
    cam_rot: np.ndarray  # 3 x 3 camera-to-world (columns: right, down, forward)
    look: dict[str, float]  # per-image camera effect parameters


def freeze_layout(
    rng, b: Builder, room, openings, corridors, mats, lights, light_rgb, cam_pos, cam_rot
) -> Layout:
    """Turn the builder's lists into the layout's arrays."""
    normals, axes, plane_mat = [], [], []
    for code in range(6):  # room faces, seen from inside
        normal = np.zeros(3)
        normal[code // 2] = -1.0 if code % 2 else 1.0
        normals.append(normal)
        axes.append(PLANE_AXES[code // 2])
        plane_mat.append({2: mats["floor"], 3: mats["ceiling"]}.get(code, mats["wall"]))
    for op in openings:  # 6 corridor faces per opening (windows use face 0 as the sky)
        for code in range(6):
            normal = np.zeros(3)
            normal[code // 2] = -1.0 if code % 2 else 1.0
            normals.append(normal)
            axes.append(PLANE_AXES[code // 2])
            if op.kind == "window":
                plane_mat.append(mats["sky"])
            else:
                plane_mat.append({2: mats["floor"], 3: mats["ceiling"]}.get(code, mats["corridor"]))
    kind = np.array([p[0] for p in b.prims], dtype=np.int64)
    center = np.array([p[1] for p in b.prims], dtype=np.float64).reshape(-1, 3)
    rot = np.array([p[2] for p in b.prims], dtype=np.float64).reshape(-1, 3, 3)
    half = np.array([p[3] for p in b.prims], dtype=np.float64).reshape(-1, 3)
    signs = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)], float)
    corners = center[:, None, :] + np.einsum("sa,na,nia->nsi", signs, half, rot)
    # half size seen from above; thinner casters (legs, poles, cups) are below a shadow-map
    # texel (~5-10 cm on the floor) and would cost a pass for nothing
    plan_extent = np.minimum(np.ptp(corners[..., 0], axis=1), np.ptp(corners[..., 2], axis=1)) / 2
    m = b.materials
    look = {
        "vignette": float(rng.uniform(0.1, 0.35)),
        "noise": float(rng.uniform(1.0, 3.5)),
        "blur": float(rng.uniform(0.3, 0.9)),
        "exposure": float(rng.uniform(0.85, 1.15)),
        "wb_r": float(rng.uniform(0.92, 1.08)),
        "wb_b": float(rng.uniform(0.92, 1.08)),
    }
    return Layout(
        room=room,
        openings=tuple(openings),
        corridors=corridors,
        plane_normal=np.array(normals),
        plane_axes=np.array(axes, dtype=np.int64),
        plane_mat=np.array(plane_mat, dtype=np.int64),
        kind=kind,
        center=center,
        rot=rot,
        half=half,
        prim_mat=np.array([p[4] for p in b.prims], dtype=np.int64),
        casts_shadow=np.array([p[5] for p in b.prims], dtype=bool) & (plan_extent > 0.035),
        corners=corners.reshape(-1, 8, 3),
        rot32=rot.astype(np.float32),
        params=tuple(zip(kind.tolist(), center.tolist(), rot.tolist(), half.tolist(), strict=True)),
        tint=np.array([r[0] for r in m], dtype=np.float32),
        tex=np.array([r[1] for r in m], dtype=np.int64),
        texels_per_m=np.array([r[2] for r in m], dtype=np.float32),
        contrast=np.array([r[3] for r in m], dtype=np.float32),
        gloss=np.array([r[4] for r in m], dtype=np.float32),
        emissive=np.array([r[5] for r in m], dtype=np.float32),
        photo=np.array([r[6] for r in m], dtype=np.int64),
        tex_offset_m=np.array([[r[7][0] / r[2], r[7][1] / r[2]] for r in m], np.float32).T.copy(),
        tint_t=np.array([r[0] for r in m], dtype=np.float32).T.copy(),
        lights=lights,
        light_rgb=light_rgb,
        ambient=float(rng.uniform(0.12, 0.3)),
        cam_pos=cam_pos,
        cam_rot=cam_rot,
        look=look,
    )
