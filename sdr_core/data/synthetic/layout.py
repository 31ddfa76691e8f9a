"""Room layout sampling, all from one random stream.

Room, materials, doors and windows, camera, furniture placement, clutter, wall decor and
lights.
"""

from __future__ import annotations

import math

import numpy as np

from .builder import (
    WALLS,
    Builder,
    FloorPlan,
    Layout,
    Opening,
    Piece,
    footprint_extents,
    freeze_layout,
    place_piece,
    wall_frame,
    wall_point,
    yaw_matrix,
)
from .config import SceneConfig
from .furniture import (
    FREE_PIECES,
    FREE_WEIGHTS,
    WALL_PIECES,
    WALL_WEIGHTS,
    chair_piece,
    clutter_piece,
    fabric_material,
    laminate_material,
    make_piece,
    metal_material,
    wood_material,
)
from .textures import (
    PHOTO_ART,
    PHOTO_NAMES,
    T_BRICK,
    T_CARPET,
    T_CHECKER,
    T_CONCRETE,
    T_DOTS,
    T_FABRIC,
    T_GRAVEL,
    T_MARBLE,
    T_PINSTRIPE,
    T_PLANKS,
    T_PLASTER,
    T_SMALL_TILES,
    T_STRIPES,
    T_TILES,
    hsv,
    photo_bank,
)


def sample_layout(rng: np.random.Generator, cfg: SceneConfig) -> Layout:
    """Draw a furnished, lit room and a camera inside it."""
    b = Builder()
    room = _sample_room(rng, cfg)
    mats = _room_materials(rng, b)
    openings = _sample_openings(rng, room)
    cam_pos, cam_rot = _sample_camera(rng, cfg, room)
    plan = FloorPlan(room, (cam_pos[0], cam_pos[2]), clearance=0.9)
    corridors = _corridors(rng, room, openings, cam_pos, cfg.max_depth_m)
    _add_opening_trim(rng, b, room, openings, mats)
    _add_structure(rng, b, room, openings, plan, mats)
    supports = _add_furniture(rng, b, cfg, room, openings, plan, cam_pos, cam_rot)
    _add_clutter(rng, b, cfg, supports, plan, room)
    _add_wall_decor(rng, b, cfg, room, openings)
    lights, light_rgb = _add_lights(rng, b, cfg, room, plan)
    return freeze_layout(
        rng, b, room, openings, corridors, mats, lights, light_rgb, cam_pos, cam_rot
    )


def _sample_room(rng: np.random.Generator, cfg: SceneConfig) -> tuple[float, float, float]:
    """Room extents (W, H, D), shrunk so the farthest corner is within max depth."""
    w, d = rng.uniform(*cfg.room_size_m, 2)
    h = rng.uniform(*cfg.room_height_m)
    diag = math.sqrt(w * w + d * d + h * h)
    shrink = min(1.0, 0.95 * cfg.max_depth_m / diag)
    return float(max(w * shrink, 2.0)), float(h), float(max(d * shrink, 2.0))


def _room_materials(rng: np.random.Generator, b: Builder) -> dict[str, int]:
    """Wall, floor, ceiling and trim materials."""
    pale = hsv(rng.uniform(0, 1), rng.uniform(0.02, 0.25), rng.uniform(0.7, 0.95))
    wall_kind = rng.choice(4, p=[0.55, 0.2, 0.13, 0.12])
    if wall_kind == 0:
        wall = b.material(pale, T_PLASTER, 2.0, rng.uniform(0.05, 0.15), rng=rng)
    elif wall_kind == 1:
        tex = int(rng.choice([T_STRIPES, T_PINSTRIPE, T_DOTS]))
        wall = b.material(pale, tex, rng.uniform(0.8, 2.0), rng.uniform(0.1, 0.3), rng=rng)
    elif wall_kind == 2:
        brick = hsv(rng.uniform(0.0, 0.08), rng.uniform(0.3, 0.6), rng.uniform(0.5, 0.8))
        wall = b.material(brick, T_BRICK, rng.uniform(1.5, 2.5), 0.8, rng=rng)
    else:
        wall = b.material(pale, T_CONCRETE, 3.0, rng.uniform(0.2, 0.4), rng=rng)
    floor_kind = rng.choice(5, p=[0.4, 0.2, 0.2, 0.1, 0.1])
    wood = hsv(rng.uniform(0.05, 0.1), rng.uniform(0.4, 0.7), rng.uniform(0.35, 0.8))
    grey = hsv(rng.uniform(0, 1), rng.uniform(0, 0.15), rng.uniform(0.4, 0.9))
    floor = [
        lambda: b.material(wood, T_PLANKS, rng.uniform(1.2, 1.8), 0.7, 0.25, rng=rng),
        lambda: b.material(
            grey,
            int(rng.choice([T_TILES, T_CHECKER, T_SMALL_TILES])),
            rng.uniform(1.6, 3.0),
            0.5,
            0.3,
            rng=rng,
        ),
        lambda: b.material(
            hsv(rng.uniform(0, 1), rng.uniform(0.1, 0.5), rng.uniform(0.3, 0.7)),
            T_CARPET,
            1.0,
            0.35,
            rng=rng,
        ),
        lambda: b.material(grey, T_GRAVEL, rng.uniform(1.5, 3.0), 0.45, rng=rng),
        lambda: b.material(grey, T_MARBLE, rng.uniform(1.5, 3.0), 0.4, 0.4, rng=rng),
    ][floor_kind]()
    ceiling = b.material(
        hsv(0.1, rng.uniform(0, 0.06), rng.uniform(0.85, 0.97)), T_PLASTER, 2.0, 0.06, rng=rng
    )
    corridor_tint = hsv(rng.uniform(0, 1), rng.uniform(0.0, 0.3), rng.uniform(0.5, 0.85))
    corridor = b.material(corridor_tint, T_PLASTER, 2.0, 0.1, rng=rng)
    trim = b.material(hsv(0.1, rng.uniform(0, 0.1), rng.uniform(0.75, 0.95)), gloss=0.2)
    sky = b.material((0.85, 0.92, 1.0), emissive=rng.uniform(2.5, 5.0))
    return {
        "wall": wall,
        "floor": floor,
        "ceiling": ceiling,
        "corridor": corridor,
        "trim": trim,
        "sky": sky,
    }


def _sample_openings(rng: np.random.Generator, room) -> tuple[Opening, ...]:
    """0-2 doors and 0-2 windows on distinct stretches of wall."""
    _, h, _ = room
    taken: dict[int, list[tuple[float, float]]] = {w: [] for w in WALLS}
    openings = []
    wanted = ["door"] * int(rng.choice(3, p=[0.25, 0.55, 0.2]))
    wanted += ["window"] * int(rng.choice(3, p=[0.35, 0.45, 0.2]))
    for kind in wanted:
        for _ in range(10):
            wall = int(rng.choice(WALLS))
            length = wall_frame(wall, room)[3]
            if kind == "door":
                width, y0, y1 = rng.uniform(0.8, 1.0), 0.0, min(rng.uniform(2.0, 2.15), h - 0.2)
            else:
                width = rng.uniform(0.8, min(2.2, length - 1.0))
                y0 = rng.uniform(0.7, 1.0)
                y1 = min(y0 + rng.uniform(0.9, 1.5), h - 0.25)
            if length - width < 0.6:
                continue
            s0 = rng.uniform(0.3, length - width - 0.3)
            s1 = s0 + width
            if all(s1 + 0.3 < a or b + 0.3 < s0 for a, b in taken[wall]):
                taken[wall].append((s0, s1))
                openings.append(Opening(wall, float(s0), float(s1), float(y0), float(y1), kind))
                break
    return tuple(openings)


def _sample_camera(rng: np.random.Generator, cfg: SceneConfig, room):
    """Camera centre (3,) and camera-to-world rotation looking across the room."""
    w, h, d = room
    margin = 0.7
    cam = np.array([rng.uniform(margin, w - margin), 0.0, rng.uniform(margin, d - margin)])
    cam[1] = min(rng.uniform(*cfg.camera_height_m), h - 0.4)
    targets = np.stack([rng.uniform(0.3, w - 0.3, 8), rng.uniform(0.3, d - 0.3, 8)], axis=1)
    far = targets[np.argmax(np.hypot(targets[:, 0] - cam[0], targets[:, 1] - cam[2]))]
    yaw = math.atan2(far[0] - cam[0], far[1] - cam[2]) + math.radians(rng.uniform(-12, 12))
    pitch = math.radians(rng.uniform(*cfg.camera_pitch_deg))
    roll = math.radians(rng.uniform(-cfg.camera_roll_deg, cfg.camera_roll_deg))
    forward = np.array(
        [math.cos(pitch) * math.sin(yaw), math.sin(pitch), math.cos(pitch) * math.cos(yaw)]
    )
    right = np.cross(np.array([0.0, -1.0, 0.0]), forward)  # right = down x forward
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    right, down = (
        math.cos(roll) * right + math.sin(roll) * down,
        -math.sin(roll) * right + math.cos(roll) * down,
    )
    return cam, np.stack([right, down, forward], axis=1)


def _corridors(rng: np.random.Generator, room, openings, cam_pos, max_depth_m: float):
    """Axis-aligned box behind each door (a corridor), kept within max depth of the camera."""
    w, h, d = room
    boxes = np.zeros((len(openings), 2, 3))
    for i, op in enumerate(openings):
        axis, coord, (nx, nz), _ = wall_frame(op.wall, room)
        normal_axis = 0 if axis == 2 else 2
        outward = -(nx if normal_axis == 0 else nz)
        depth = rng.uniform(1.2, 3.5)
        lo, hi = np.zeros(3), np.array([0.0, h, 0.0])
        mid = (op.s0 + op.s1) / 2
        lo[axis], hi[axis] = mid - rng.uniform(1.0, 4.0), mid + rng.uniform(1.0, 4.0)
        for _ in range(20):  # shrink until every corner is within max depth
            far = coord + outward * depth
            lo[normal_axis], hi[normal_axis] = min(coord, far), max(coord, far)
            corners = np.stack(np.meshgrid(*zip(lo, hi, strict=True), indexing="ij"), -1)
            if np.linalg.norm(corners.reshape(-1, 3) - cam_pos, axis=1).max() < 0.97 * max_depth_m:
                break
            depth *= 0.8
            lo[axis], hi[axis] = 0.8 * lo[axis] + 0.2 * mid, 0.8 * hi[axis] + 0.2 * mid
        boxes[i] = lo, hi
    return boxes


def _wall_yaw(wall: int, room) -> float:
    """Yaw that turns a piece's front (+z) into the room from this wall."""
    _, _, (nx, nz), _ = wall_frame(wall, room)
    return math.atan2(nx, nz)


def _blocked(openings, wall: int, s0: float, s1: float, top: float, gap: float = 0.05) -> bool:
    """Whether [s0, s1] on a wall, up to height `top`, runs into a door or window."""
    return any(
        op.wall == wall
        and s1 > op.s0 - gap
        and s0 < op.s1 + gap
        and (op.kind == "door" or top > op.y0 - 0.06)
        for op in openings
    )


def _add_opening_trim(rng, b: Builder, room, openings, mats) -> None:
    """Door frames (some doors closed), window frames, mullions, sills and curtains."""
    for op in openings:
        width, mid = op.s1 - op.s0, (op.s0 + op.s1) / 2
        x, z = wall_point(op.wall, room, mid, 0.0)
        fw, depth = rng.uniform(0.04, 0.08), rng.uniform(0.015, 0.045)
        p = Piece(width / 2 + fw, depth, op.y1)
        trim = mats["trim"] if rng.random() < 0.6 else wood_material(rng, b)
        for sx in (-1, 1):
            p.box(
                sx * (width / 2 + fw / 2),
                (op.y0 + op.y1) / 2,
                depth / 2,
                fw / 2,
                (op.y1 - op.y0) / 2 + fw,
                depth / 2,
                trim,
            )
        p.box(0, op.y1 + fw / 2, depth / 2, width / 2 + fw, fw / 2, depth / 2, trim)
        # reveal: the wall's thickness, lining the opening behind the wall plane (only
        # visible through the opening; elsewhere the wall plane is nearer)
        wall_t = rng.uniform(0.1, 0.25)
        for sx in (-1, 1):
            p.box(
                sx * (width / 2 + 0.01),
                (op.y0 + op.y1) / 2,
                -wall_t / 2,
                0.01,
                (op.y1 - op.y0) / 2 + 0.02,
                wall_t / 2,
                mats["wall"],
            )
        p.box(0, op.y1 + 0.01, -wall_t / 2, width / 2 + 0.02, 0.01, wall_t / 2, mats["wall"])
        if op.kind == "door":
            if rng.random() < 0.35:
                leaf = wood_material(rng, b) if rng.random() < 0.5 else laminate_material(rng, b)
                p.box(0, op.y1 / 2, -0.04, width / 2 + 0.005, op.y1 / 2, 0.02, leaf)
                p.sphere(width / 2 - 0.08, 1.0, -0.01, 0.03, metal_material(rng, b))
        else:
            p.box(0, op.y0 - 0.01, -wall_t / 2, width / 2 + 0.02, 0.01, wall_t / 2, mats["wall"])
            p.box(0, op.y0 - fw / 2, depth / 2, width / 2 + fw, fw / 2, depth / 2, trim)
            p.box(0, op.y0 - 0.02, 0.07, width / 2 + fw + 0.05, 0.02, 0.07, trim)
            if rng.random() < 0.6:
                p.box(
                    0, (op.y0 + op.y1) / 2, depth / 2, 0.015, (op.y1 - op.y0) / 2, depth / 2, trim
                )
            if rng.random() < 0.4:
                p.box(0, (op.y0 + op.y1) / 2, depth / 2, width / 2, 0.015, depth / 2, trim)
            if rng.random() < 0.5:
                _curtains(rng, b, p, op, width, fw)
        place_piece(b, p, x, z, _wall_yaw(op.wall, room))


def _curtains(rng, b: Builder, p: Piece, op: Opening, width: float, fw: float) -> None:
    cloth = fabric_material(rng, b)
    top, bottom = op.y1 + fw + 0.12, op.y0 - rng.uniform(0.1, 0.3)
    cw = rng.uniform(0.2, 0.45)
    for sx in (-1, 1):
        p.box(
            sx * (width / 2 + fw - 0.05 + cw / 2),
            (top + bottom) / 2,
            0.12,
            cw / 2,
            (top - bottom) / 2,
            0.03,
            cloth,
        )
    p.box(0, top + 0.01, 0.12, width / 2 + fw + cw, 0.012, 0.012, metal_material(rng, b))


def _add_structure(rng, b: Builder, room, openings, plan: FloorPlan, mats) -> None:
    """Wall columns (making the room non-rectangular), a ceiling beam, baseboards."""
    w, h, d = room
    for _ in range(int(rng.choice(3, p=[0.55, 0.3, 0.15]))):
        wall = int(rng.choice(WALLS))
        length = wall_frame(wall, room)[3]
        along, out = rng.uniform(0.3, 1.2), rng.uniform(0.2, 0.7)
        s = float(rng.choice([along / 2, length - along / 2, rng.uniform(along, length - along)]))
        if _blocked(openings, wall, s - along / 2, s + along / 2, h):
            continue
        x, z = wall_point(wall, room, s, out / 2)
        yaw = _wall_yaw(wall, room)
        p = Piece(along / 2, out / 2, h)
        p.box(0, h / 2, 0, along / 2, h / 2, out / 2, mats["wall"])
        hx, hz = footprint_extents(p, yaw)
        if plan.fits(x, z, hx - 0.004, hz - 0.004, margin=0.0):
            plan.add(x, z, hx, hz)
            place_piece(b, p, x, z, yaw)
    if rng.random() < 0.25:
        bh, bw = rng.uniform(0.15, 0.3), rng.uniform(0.2, 0.4)
        if rng.random() < 0.5:
            b.box(
                (w / 2, h - bh / 2, rng.uniform(1.0, d - 1.0)),
                (w / 2, bh / 2, bw / 2),
                mats["ceiling"],
            )
        else:
            b.box(
                (rng.uniform(1.0, w - 1.0), h - bh / 2, d / 2),
                (bw / 2, bh / 2, d / 2),
                mats["ceiling"],
            )
    if rng.random() < 0.5:
        bh = rng.uniform(0.06, 0.1)
        for wall in WALLS:
            if any(op.wall == wall and op.kind == "door" for op in openings):
                continue
            length = wall_frame(wall, room)[3]
            x, z = wall_point(wall, room, length / 2, 0.006)
            p = Piece(length / 2, 0.006, bh)
            p.box(0, bh / 2, 0, length / 2, bh / 2, 0.006, mats["trim"], shadow=False)
            place_piece(b, p, x, z, _wall_yaw(wall, room))


def _visible_wall_weights(room, cam_rot: np.ndarray) -> np.ndarray:
    """Weights favouring walls the camera faces (the wall behind it gets little)."""
    fx, fz = cam_rot[0, 2], cam_rot[2, 2]
    weights = []
    for wall in WALLS:
        _, _, (nx, nz), _ = wall_frame(wall, room)
        weights.append(max(0.05, 0.6 - (nx * fx + nz * fz)))
    weights = np.asarray(weights)
    return weights / weights.sum()


def _try_wall(rng, b: Builder, room, openings, plan: FloorPlan, piece: Piece, weights: np.ndarray):
    """Stand a piece against a wall; returns its supports, or None if nothing fitted."""
    for _ in range(12):
        wall = int(rng.choice(WALLS, p=weights))
        length = wall_frame(wall, room)[3]
        if 2 * piece.half_w > length - 0.1:
            continue
        s = rng.uniform(piece.half_w + 0.02, length - piece.half_w - 0.02)
        if _blocked(openings, wall, s - piece.half_w, s + piece.half_w, piece.height):
            continue
        x, z = wall_point(wall, room, s, piece.half_d + rng.uniform(0.01, 0.03))
        yaw = _wall_yaw(wall, room)
        hx, hz = footprint_extents(piece, yaw)
        if plan.fits(x, z, hx, hz):
            plan.add(x, z, hx, hz)
            return place_piece(b, piece, x, z, yaw)
    return None


def _free_spot(rng, room, cam_pos, cam_rot) -> tuple[float, float]:
    """A floor point, usually inside the camera's view 1.3-5 m ahead."""
    w, _, d = room
    if rng.random() < 0.75:
        yaw = math.atan2(cam_rot[0, 2], cam_rot[2, 2]) + rng.uniform(-0.5, 0.5)
        dist = rng.uniform(1.3, 5.0)
        return cam_pos[0] + dist * math.sin(yaw), cam_pos[2] + dist * math.cos(yaw)
    return rng.uniform(0.3, w - 0.3), rng.uniform(0.3, d - 0.3)


def _try_free(rng, b: Builder, room, plan: FloorPlan, piece: Piece, cam_pos, cam_rot, name: str):
    """Stand a piece somewhere on the floor; returns its supports, or None."""
    for _ in range(15):
        x, z = _free_spot(rng, room, cam_pos, cam_rot)
        yaw = rng.uniform(-math.pi, math.pi)
        if rng.random() < 0.7:
            yaw = float(rng.integers(4)) * math.pi / 2 + rng.uniform(-0.15, 0.15)
        hx, hz = footprint_extents(piece, yaw)
        if not plan.fits(x, z, hx, hz):
            continue
        chairs = _chairs_around(rng, b, plan, piece, x, z, yaw) if name == "table" else []
        plan.add(x, z, hx, hz)
        for chair, cx, cz, cyaw, chx, chz in chairs:
            plan.add(cx, cz, chx, chz)
            place_piece(b, chair, cx, cz, cyaw)
        return place_piece(b, piece, x, z, yaw)
    return None


def _chairs_around(rng, b: Builder, plan: FloorPlan, table: Piece, x, z, yaw):
    """Chairs facing a table from up to four sides, each clear of everything else."""
    chairs = []
    c, s = math.cos(yaw), math.sin(yaw)
    for side in range(4):
        if rng.random() > 0.55:
            continue
        chair = chair_piece(rng, b)
        if side < 2:
            lx = rng.uniform(-0.3, 0.3) * table.half_w
            lz = (1 if side == 0 else -1) * (table.half_d + chair.half_d * 0.4)
            cyaw = yaw + (math.pi if side == 0 else 0.0)
        else:
            lz = rng.uniform(-0.2, 0.2) * table.half_d
            lx = (1 if side == 2 else -1) * (table.half_w + chair.half_d * 0.4)
            cyaw = yaw + (-math.pi / 2 if side == 2 else math.pi / 2)
        cx, cz = x + c * lx + s * lz, z - s * lx + c * lz
        chx, chz = footprint_extents(chair, cyaw)
        if plan.fits(cx, cz, chx, chz):
            chairs.append((chair, cx, cz, cyaw, chx, chz))
    return chairs


def _add_furniture(rng, b: Builder, cfg: SceneConfig, room, openings, plan, cam_pos, cam_rot):
    """Wall-standing and free-standing furniture; returns all clutter supports."""
    _, h, _ = room
    max_h = h - 0.45  # stay below the ceiling lights
    weights = _visible_wall_weights(room, cam_rot)
    supports = []
    for _ in range(int(rng.integers(cfg.furniture[0], cfg.furniture[1] + 1))):
        if rng.random() < 0.5:
            name = str(rng.choice(WALL_PIECES, p=WALL_WEIGHTS))
            piece = make_piece(name, rng, b, max_h, h)
            placed = _try_wall(rng, b, room, openings, plan, piece, weights)
        else:
            name = str(rng.choice(FREE_PIECES, p=FREE_WEIGHTS))
            piece = make_piece(name, rng, b, max_h, h)
            placed = _try_free(rng, b, room, plan, piece, cam_pos, cam_rot, name)
        supports.extend(placed or [])
    return supports


def _add_clutter(rng, b: Builder, cfg: SceneConfig, supports, plan: FloorPlan, room) -> None:
    """Small objects on tables, cabinets and shelves, and a few on the floor."""
    areas = np.array([4 * s[2] * s[3] for s in supports])
    taken: list[list[tuple[float, float, float]]] = [[] for _ in supports]
    for _ in range(int(rng.integers(cfg.clutter[0], cfg.clutter[1] + 1))):
        piece = clutter_piece(rng, b, cfg.photo_textures)
        radius = math.hypot(piece.half_w, piece.half_d)
        if len(supports) == 0 or rng.random() < 0.15:
            x, z = rng.uniform(0.3, room[0] - 0.3), rng.uniform(0.3, room[2] - 0.3)
            if plan.fits(x, z, radius, radius):
                plan.add(x, z, radius, radius)
                place_piece(b, piece, x, z, rng.uniform(-math.pi, math.pi))
            continue
        k = int(rng.choice(len(supports), p=areas / areas.sum()))
        sx, sz, hx, hz, y, yaw = supports[k]
        if hx < radius or hz < radius:
            continue
        lx, lz = rng.uniform(-hx + radius, hx - radius), rng.uniform(-hz + radius, hz - radius)
        if any(math.hypot(lx - ox, lz - oz) < radius + orad for ox, oz, orad in taken[k]):
            continue
        taken[k].append((lx, lz, radius))
        c, s = math.cos(yaw), math.sin(yaw)
        place_piece(
            b,
            piece,
            sx + c * lx + s * lz,
            sz - s * lx + c * lz,
            yaw + rng.uniform(-math.pi, math.pi),
            y,
        )


def _add_wall_decor(rng, b: Builder, cfg: SceneConfig, room, openings) -> None:
    """Framed pictures on the walls and a rug on the floor."""
    w, h, d = room
    photos, sizes = photo_bank()
    taken: dict[int, list[tuple[float, float]]] = {wall: [] for wall in WALLS}
    for _ in range(int(rng.choice(4, p=[0.15, 0.35, 0.3, 0.2]))):
        if cfg.photo_textures and rng.random() < 0.8:
            photo = int(rng.integers(len(PHOTO_NAMES)))
        else:
            photo = int(rng.choice(PHOTO_ART))
        ph = rng.uniform(0.35, 0.9)
        pw = ph * sizes[photo, 1] / sizes[photo, 0]
        wall = int(rng.choice(WALLS))
        length = wall_frame(wall, room)[3]
        if pw + 0.4 > length:
            continue
        s, yc = rng.uniform(pw / 2 + 0.2, length - pw / 2 - 0.2), rng.uniform(1.3, 1.8)
        yc = min(yc, h - 0.15 - ph / 2)
        if _blocked(openings, wall, s - pw / 2, s + pw / 2, yc + ph / 2, gap=0.1) or any(
            s + pw / 2 + 0.1 > a and s - pw / 2 - 0.1 < z1 for a, z1 in taken[wall]
        ):
            continue
        taken[wall].append((s - pw / 2, s + pw / 2))
        fw = rng.uniform(0.01, 0.05)
        frame = wood_material(rng, b) if rng.random() < 0.5 else laminate_material(rng, b)
        p = Piece(pw / 2 + fw, 0.03, yc + ph / 2)
        p.box(0, yc, 0.01, pw / 2 + fw, ph / 2 + fw, 0.01, frame, shadow=False)
        p.box(
            0,
            yc,
            0.0125,
            pw / 2,
            ph / 2,
            0.0125,
            b.material((0.9, 0.9, 0.9), photo=photo),
            shadow=False,
        )
        x, z = wall_point(wall, room, s, 0.0)
        place_piece(b, p, x, z, _wall_yaw(wall, room))
    if rng.random() < 0.5:
        rw, rd = rng.uniform(1.0, min(2.5, w - 0.6)), rng.uniform(0.7, min(1.8, d - 0.6))
        tex = int(rng.choice([T_CARPET, T_STRIPES, T_FABRIC, T_CHECKER]))
        colour = hsv(rng.uniform(0, 1), rng.uniform(0.2, 0.7), rng.uniform(0.25, 0.8))
        rug = b.material(colour, tex, rng.uniform(0.4, 1.2), rng.uniform(0.3, 0.6), rng=rng)
        b.box(
            (
                rng.uniform(rw / 2 + 0.3, w - rw / 2 - 0.3),
                0.005,
                rng.uniform(rd / 2 + 0.3, d - rd / 2 - 0.3),
            ),
            (rw / 2, 0.005, rd / 2),
            rug,
            yaw_matrix(rng.uniform(-0.1, 0.1)),
            shadow=False,
        )


def _prim_bounds(b: Builder) -> tuple[np.ndarray, np.ndarray]:
    """Centres and half extents (n x 3) of the axis-aligned bounds of every primitive."""
    if not b.prims:
        return np.zeros((0, 3)), np.zeros((0, 3))
    centers = np.array([p[1] for p in b.prims], dtype=np.float64)
    extents = np.stack([np.abs(p[2]) @ np.asarray(p[3], dtype=np.float64) for p in b.prims])
    return centers, extents


def _add_lights(rng, b: Builder, cfg: SceneConfig, room, plan: FloorPlan):
    """Ceiling point lights with visible fittings (pendants with cords, or globes)."""
    w, h, d = room
    n = int(rng.integers(cfg.lights[0], cfg.lights[1] + 1))
    warmth = rng.uniform(0, 1)
    colour = np.array([1.0, 0.92 - 0.05 * warmth, 0.85 - 0.2 * warmth])
    positions, rgbs = [], []
    centers, extents = _prim_bounds(b)
    for _ in range(n):
        for _ in range(10):
            drop = rng.uniform(0.15, 0.7) if rng.random() < 0.5 else 0.15
            pos = np.array([rng.uniform(0.5, w - 0.5), h - drop, rng.uniform(0.5, d - 0.5)])
            if not np.any(np.all(np.abs(pos - centers) <= extents + 0.2, axis=1)):
                break
        power = rng.uniform(1.2, 2.6) * (h / 2.7) ** 2 * (1.6 / n) ** 0.5
        positions.append(pos)
        rgbs.append(colour * rng.uniform(0.95, 1.05, 3) * power)
        globe_r = rng.uniform(0.07, 0.14)
        fitting = b.material((1.0, 0.97, 0.9), emissive=rng.uniform(5.0, 9.0))
        b.sphere(pos, globe_r, fitting, shadow=False)
        if drop > 0.16 + globe_r:
            b.cylinder(
                pos[0],
                pos[2],
                pos[1] + globe_r * 0.9,
                h,
                0.006,
                metal_material(rng, b),
                shadow=False,
            )
    return np.array(positions), np.array(rgbs)
