"""Analytic ray casting against the room, corridors and primitives.

One ray per pixel against oriented boxes, vertical cylinders and spheres gives exact
z-depth, normals, materials and texture coordinates.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from .builder import BOX, CYLINDER, PLANE_AXES, SPHERE, Layout, wall_frame, wall_point
from .config import SceneConfig

_NEAR_M = 1e-3  # ray hits closer than this (z, metres) are ignored


@functools.lru_cache(maxsize=16)
def ray_grid(h: int, w: int, focal: float, cx: float, cy: float) -> tuple[np.ndarray, ...]:
    """Normalised coordinates of pixel centres: x/z, y/z and 1/|(x/z, y/z, 1)|, H x W float32."""
    xn = ((np.arange(w, dtype=np.float64) - cx) / focal).astype(np.float32)
    yn = ((np.arange(h, dtype=np.float64) - cy) / focal).astype(np.float32)
    grid_x = np.ascontiguousarray(np.broadcast_to(xn[None, :], (h, w)))
    grid_y = np.ascontiguousarray(np.broadcast_to(yn[:, None], (h, w)))
    inv_norm = (1.0 / np.sqrt(1.0 + grid_x**2 + grid_y**2)).astype(np.float32)
    for a in (grid_x, grid_y, inv_norm):
        a.flags.writeable = False
    return grid_x, grid_y, inv_norm


def _combine(a: float, x: np.ndarray, b: float, y: np.ndarray, c: float) -> np.ndarray:
    """A x + b y + c for float32 arrays, skipping zero terms."""
    out = None
    for coef, arr in ((a, x), (b, y)):
        if coef != 0.0:
            term = arr * np.float32(coef)
            out = term if out is None else out + term
    if out is None:
        return np.full(x.shape, c, dtype=np.float32)
    return out + np.float32(c) if c != 0.0 else out


def ray_directions(rot: np.ndarray, grid_x: np.ndarray, grid_y: np.ndarray):
    """World-space ray directions rot @ (x/z, y/z, 1), three H x W float32 arrays.

    A travel of t along one changes the camera z by exactly t, so ray parameters are
    z-depths.
    """
    r = rot.tolist()
    return tuple(_combine(r[i][0], grid_x, r[i][1], grid_y, r[i][2]) for i in range(3))


def screen_rects(corners, origin, rot, focal, cx, cy, h, w) -> np.ndarray:
    """Pixel rectangles (row0, row1, col0, col1) covering each primitive's projection.

    Primitives straddling the camera plane get the whole image; those behind it an empty
    rectangle.
    """
    cam = (corners - origin) @ rot  # n x 8 x 3 camera coordinates
    z = cam[..., 2]
    in_front = z > 1e-3
    zs = np.where(in_front, z, 1.0)
    u = focal * cam[..., 0] / zs + cx
    v = focal * cam[..., 1] / zs + cy
    rects = np.stack(
        [np.floor(v.min(1)), np.floor(v.max(1)) + 2, np.floor(u.min(1)), np.floor(u.max(1)) + 2],
        axis=1,
    )
    rects = np.clip(rects, 0, [h, h, w, w]).astype(np.int64)
    partial = ~in_front.all(1)
    rects[partial] = (0, h, 0, w)
    rects[~in_front.any(1)] = 0
    return rects


def _axis_dir(dx, dy, dz, axis: tuple[float, float, float]) -> np.ndarray:
    """Ray directions projected on a unit axis (a dx + b dy + c dz), skipping zero terms."""
    a, b, c = axis
    if a == 0.0 and c == 0.0:
        return dy if b == 1.0 else dy * np.float32(b)
    out = dx * np.float32(a) if a != 0.0 else dz * np.float32(c)
    if a != 0.0 and c != 0.0:
        out = out + dz * np.float32(c)
    return out if b == 0.0 else out + dy * np.float32(b)


def _hit_box(dx, dy, dz, origin, center, rot, half) -> np.ndarray:
    """z-depth of the first hit on an oriented box (slab test), inf where missed.

    Args:
        dx: world ray directions, x component (any shape, float32), z-depth parametrised.
        dy: y component, same shape.
        dz: z component, same shape.
        origin: ray origin, 3 floats.
        center: box centre, 3 floats.
        rot: 3 x 3 nested list, local-to-world rotation (columns are the box axes).
        half: half extents along the box axes, 3 floats.
    """
    rel = [origin[i] - center[i] for i in range(3)]
    tmin = tmax = None
    with np.errstate(divide="ignore", invalid="ignore"):
        for a in range(3):
            axis = (rot[0][a], rot[1][a], rot[2][a])
            local_o = axis[0] * rel[0] + axis[1] * rel[1] + axis[2] * rel[2]
            inv = np.float32(1.0) / _axis_dir(dx, dy, dz, axis)
            t1 = inv * np.float32(-half[a] - local_o)
            t2 = inv * np.float32(half[a] - local_o)
            lo, hi = np.minimum(t1, t2), np.maximum(t1, t2)
            tmin = lo if tmin is None else np.maximum(tmin, lo)
            tmax = hi if tmax is None else np.minimum(tmax, hi)
    hit = (tmin <= tmax) & (tmin > _NEAR_M)
    return np.where(hit, tmin, np.float32(np.inf))


def _hit_cylinder(dx, dy, dz, origin, center, half) -> np.ndarray:
    """z-depth of the first hit on a vertical capped cylinder, inf where missed."""
    r, hy = half[0], half[1]
    ox, oy, oz = origin[0] - center[0], origin[1] - center[1], origin[2] - center[2]
    a = dx * dx + dz * dz
    bh = dx * np.float32(ox) + dz * np.float32(oz)
    c = ox * ox + oz * oz - r * r
    with np.errstate(divide="ignore", invalid="ignore"):
        disc = bh * bh - a * np.float32(c)
        t = (-bh - np.sqrt(np.maximum(disc, 0))) / a
        y = np.float32(oy) + t * dy
        side = (disc >= 0) & (t > _NEAR_M) & (np.abs(y) <= np.float32(hy))
        t = np.where(side, t, np.float32(np.inf))
        if abs(oy) > hy:  # the camera sees one cap
            cap_y = hy if oy > 0 else -hy
            tc = np.float32(cap_y - oy) / dy
            xc, zc = np.float32(ox) + tc * dx, np.float32(oz) + tc * dz
            cap = (tc > _NEAR_M) & (xc * xc + zc * zc <= np.float32(r * r)) & (tc < t)
            t = np.where(cap, tc, t)
    return t


def _hit_sphere(dx, dy, dz, origin, center, half) -> np.ndarray:
    """z-depth of the first hit on a sphere, inf where missed."""
    r = half[0]
    ox, oy, oz = origin[0] - center[0], origin[1] - center[1], origin[2] - center[2]
    a = dx * dx + dy * dy + dz * dz
    bh = dx * np.float32(ox) + dy * np.float32(oy) + dz * np.float32(oz)
    c = ox * ox + oy * oy + oz * oz - r * r
    disc = bh * bh - a * np.float32(c)
    with np.errstate(invalid="ignore"):
        t = (-bh - np.sqrt(np.maximum(disc, 0))) / a
    return np.where((disc >= 0) & (t > _NEAR_M), t, np.float32(np.inf))


def cast_primitives(t, sid, dirs, origin, layout: Layout, rects, select, sid_base: int) -> None:
    """Update nearest z-depths `t` and surface ids `sid` (if given) with primitives.

    Every selected primitive is tested only inside its screen rectangle.
    """
    dx, dy, dz = dirs
    origin = [float(v) for v in origin]
    for k in np.flatnonzero(select & (rects[:, 1] > rects[:, 0]) & (rects[:, 3] > rects[:, 2])):
        r0, r1, c0, c1 = rects[k].tolist()
        sl = (slice(r0, r1), slice(c0, c1))
        kind, center, rot, half = layout.params[k]
        if kind == BOX:
            tk = _hit_box(dx[sl], dy[sl], dz[sl], origin, center, rot, half)
        elif kind == CYLINDER:
            tk = _hit_cylinder(dx[sl], dy[sl], dz[sl], origin, center, half)
        else:
            tk = _hit_sphere(dx[sl], dy[sl], dz[sl], origin, center, half)
        view = t[sl]
        nearer = tk < view
        np.copyto(view, tk, where=nearer)
        if sid is not None:
            sid[sl][nearer] = sid_base + k


def _box_exit(dirs, origin, lo, hi):
    """Exit z-depth and face code (2 axis + positive side) of rays inside a box."""
    t = code = None
    with np.errstate(divide="ignore"):
        for axis in range(3):
            d = dirs[axis]
            pos = d > 0
            near_side = np.float32(lo[axis] - origin[axis])
            far_side = np.float32(hi[axis] - origin[axis])
            ta = np.where(pos, far_side, near_side) / d
            face = pos.astype(np.int32) + 2 * axis
            if t is None:
                t, code = ta, face
            else:
                nearer = ta < t
                t = np.where(nearer, ta, t)
                code = np.where(nearer, face, code)
    return t, code


def _open_walls(t, sid, dirs, origin, layout: Layout, focal, cx, cy, max_depth) -> None:
    """Replace wall hits inside doors by the corridor behind, inside windows by the sky."""
    h, w = t.shape
    room = layout.room
    for i, op in enumerate(layout.openings):
        axis, coord, (nx, nz), _ = wall_frame(op.wall, room)
        corners = np.array([[*wall_point(op.wall, room, s, 0.0)] for s in (op.s0, op.s1)])
        pts = np.array([[x, y, z] for x, z in corners for y in (op.y0, op.y1)])
        rect = screen_rects(pts[None], origin, layout.cam_rot, focal, cx, cy, h, w)[0]
        r0, r1, c0, c1 = rect.tolist()
        if r1 <= r0 or c1 <= c0:
            continue
        sl = (slice(r0, r1), slice(c0, c1))
        d = tuple(a[sl] for a in dirs)
        ts = t[sl]
        along = np.float32(origin[axis]) + ts * d[axis]
        height = np.float32(origin[1]) + ts * d[1]
        inside = (sid[sl] == op.wall) & (along > op.s0) & (along < op.s1)
        inside &= (height > op.y0) & (height < op.y1)
        if not inside.any():
            continue
        base = 6 + 6 * i
        if op.kind == "door":
            t_new, code = _box_exit(d, origin, layout.corridors[i, 0], layout.corridors[i, 1])
            sid[sl][inside] = base + code[inside]
        else:
            normal_axis = 0 if axis == 2 else 2
            outward = -(nx if normal_axis == 0 else nz)
            with np.errstate(divide="ignore"):
                t_new = np.float32(coord + 100.0 * outward - origin[normal_axis]) / d[normal_axis]
            t_new = np.minimum(t_new, np.float32(max_depth))
            sid[sl][inside] = base + op.wall
        np.copyto(ts, t_new, where=inside)


@dataclass(frozen=True)
class Geometry:
    """Per-pixel geometry of one view; flat arrays have H*W entries."""

    depth: np.ndarray  # H x W float32 z-depth, metres
    dirs: tuple[np.ndarray, np.ndarray, np.ndarray]  # world ray directions, H x W float32
    inv_norm: np.ndarray  # H x W float32, 1 / |dir|
    points: np.ndarray  # 3 x HW float32 world hit points
    normal: np.ndarray  # 3 x HW float32 unit normals
    mat: np.ndarray  # HW int material
    uv: np.ndarray  # 2 x HW float32 texture coordinates, metres
    picture_uv: np.ndarray  # 2 x HW float32 in [0, 1] on picture fronts, -1 elsewhere
    object_coverage: float  # fraction of pixels on primitives (not room, corridor or sky)


def trace_view(layout: Layout, cfg: SceneConfig) -> Geometry:
    """Cast one ray per pixel: nearest surface, its depth, normal, material and uv."""
    h, w = cfg.height, cfg.width
    focal, _, cx, cy = cfg.intrinsics()
    grid_x, grid_y, inv_norm = ray_grid(h, w, focal, cx, cy)
    dirs = ray_directions(layout.cam_rot, grid_x, grid_y)
    origin = layout.cam_pos
    t, code = _box_exit(dirs, origin, (0.0, 0.0, 0.0), layout.room)
    sid = code
    _open_walls(t, sid, dirs, origin, layout, focal, cx, cy, cfg.max_depth_m)
    n_planes = len(layout.plane_mat)
    rects = screen_rects(layout.corners, origin, layout.cam_rot, focal, cx, cy, h, w)
    cast_primitives(t, sid, dirs, origin, layout, rects, np.ones(len(layout.kind), bool), n_planes)
    t = np.minimum(t, np.float32(cfg.max_depth_m))
    points = np.stack([np.float32(origin[i]) + t * dirs[i] for i in range(3)]).reshape(3, -1)
    normal, mat, uv, picture_uv = _surface_attributes(layout, points, sid.ravel(), n_planes)
    coverage = float(np.count_nonzero(sid >= n_planes)) / sid.size
    return Geometry(t, dirs, inv_norm, points, normal, mat, uv, picture_uv, coverage)


def _surface_attributes(layout: Layout, points, sid, n_planes):
    """Normals, materials and texture coordinates for every pixel, by surface type."""
    n = sid.size
    normal = np.empty((3, n), np.float32)
    uv = np.empty((2, n), np.float32)
    picture_uv = np.full((2, n), -1.0, np.float32)
    mat = np.empty(n, np.int64)
    # category of each surface: 0-2 a plane whose normal is along that axis, 3 + prim kind
    plane_axis = np.argmax(np.abs(layout.plane_normal), axis=1)
    category = np.concatenate([plane_axis, 3 + layout.kind]).astype(np.int8)[sid]
    for axis in range(3):  # axis-aligned planes, grouped by the axis of their normal
        idx = np.flatnonzero(category == axis)
        if idx.size:
            s = sid[idx]
            normal[:, idx] = 0
            normal[axis, idx] = layout.plane_normal[s, axis]
            u_axis, v_axis = PLANE_AXES[axis]
            uv[0, idx] = points[u_axis, idx]
            uv[1, idx] = points[v_axis, idx]
            mat[idx] = layout.plane_mat[s]
    for prim_kind, fn in (
        (BOX, _box_attributes),
        (CYLINDER, _cylinder_attributes),
        (SPHERE, _sphere_attributes),
    ):
        idx = np.flatnonzero(category == 3 + prim_kind)
        if idx.size:
            k = sid[idx] - n_planes
            mat[idx] = layout.prim_mat[k]
            fn(layout, k, points[:, idx], idx, normal, uv, picture_uv)
    return normal, mat, uv, picture_uv


def _box_attributes(layout, k, p, idx, normal, uv, picture_uv) -> None:
    rot = layout.rot32[k]  # m x 3 x 3
    rel = p.T - layout.center[k].astype(np.float32)  # m x 3
    local = np.einsum("mja,mj->ma", rot, rel)  # R^T (p - c)
    half = layout.half[k].astype(np.float32)
    axis = np.argmax(np.abs(local) / half, axis=1)  # the face: largest |local| / half
    rows = np.arange(len(k))
    sign = np.where(local[rows, axis] >= 0, np.float32(1), np.float32(-1))
    normal[:, idx] = (rot[rows, :, axis] * sign[:, None]).T
    u_axis, v_axis = np.where(axis == 0, 2, 0), np.where(axis == 1, 2, 1)
    uv[0, idx] = local[rows, u_axis]
    uv[1, idx] = local[rows, v_axis]
    front = (axis == 2) & (sign > 0) & (layout.photo[layout.prim_mat[k]] >= 0)
    if front.any():  # pictures fill the box's +z face, upright
        f = np.flatnonzero(front)
        picture_uv[0, idx[f]] = 0.5 + 0.5 * local[f, 0] / half[f, 0]
        picture_uv[1, idx[f]] = 0.5 - 0.5 * local[f, 1] / half[f, 1]


def _cylinder_attributes(layout, k, p, idx, normal, uv, picture_uv) -> None:
    c = layout.center[k].astype(np.float32)
    half = layout.half[k].astype(np.float32)
    dx, dy, dz = p[0] - c[:, 0], p[1] - c[:, 1], p[2] - c[:, 2]
    radial = np.sqrt(dx * dx + dz * dz)
    cap = np.abs(dy) / half[:, 1] > radial / half[:, 0]
    inv = 1.0 / np.maximum(radial, 1e-6)
    normal[0, idx] = np.where(cap, 0, dx * inv)
    normal[1, idx] = np.where(cap, np.sign(dy), 0)
    normal[2, idx] = np.where(cap, 0, dz * inv)
    uv[0, idx] = np.where(cap, dx, np.arctan2(dz, dx) * half[:, 0])
    uv[1, idx] = np.where(cap, dz, p[1])


def _sphere_attributes(layout, k, p, idx, normal, uv, picture_uv) -> None:
    c = layout.center[k].astype(np.float32)
    r = layout.half[k, 0].astype(np.float32)
    nrm = (p - c.T) / r
    nrm /= np.sqrt((nrm * nrm).sum(0))
    normal[:, idx] = nrm
    uv[0, idx] = np.arctan2(nrm[2], nrm[0]) * r
    uv[1, idx] = p[1]
