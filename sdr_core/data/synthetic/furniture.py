"""Materials and furniture builders, one function per piece or clutter object.

Pieces: tables, chairs, shelves with books, sofas, beds, cabinets, wardrobes, lamps,
plants, stools, cartons, poles, balls and bins; clutter: books, laptops, cups, bottles,
vases, fruit bowls, balls, boxes and picture frames.
"""

from __future__ import annotations

import math

import numpy as np

from .builder import Builder, Piece
from .textures import (
    PHOTO_ART,
    PHOTO_BOOKS,
    PHOTO_NAMES,
    T_CARPET,
    T_CONCRETE,
    T_FABRIC,
    T_GRASS,
    T_PLASTER,
    T_STRIPES,
    T_WOOD,
    hsv,
)


def wood_material(rng: np.random.Generator, b: Builder) -> int:
    """A wood material: brown tints, wood grain, some gloss."""
    colour = hsv(rng.uniform(0.04, 0.11), rng.uniform(0.35, 0.75), rng.uniform(0.25, 0.85))
    return b.material(
        colour,
        T_WOOD,
        rng.uniform(0.5, 1.2),
        rng.uniform(0.25, 0.5),
        gloss=rng.uniform(0.0, 0.25),
        rng=rng,
    )


def laminate_material(rng: np.random.Generator, b: Builder) -> int:
    """A laminate material: near-grey tints from black to white, glossy."""
    value = float(rng.choice([0.08, 0.3, 0.6, 0.85, 0.93]))
    colour = hsv(rng.uniform(0, 1), rng.uniform(0.0, 0.15), value)
    return b.material(colour, T_CONCRETE, 2.0, 0.04, gloss=rng.uniform(0.1, 0.4), rng=rng)


def metal_material(rng: np.random.Generator, b: Builder) -> int:
    """A plain metal material: grey, very glossy."""
    value = rng.uniform(0.15, 0.8)
    return b.material((value, value, value * 1.03), gloss=rng.uniform(0.5, 0.9))


def fabric_material(rng: np.random.Generator, b: Builder) -> int:
    """A fabric material: any hue, woven, carpet, striped or plain texture."""
    colour = hsv(rng.uniform(0, 1), rng.uniform(0.1, 0.6), rng.uniform(0.2, 0.85))
    tex = int(rng.choice([T_FABRIC, T_CARPET, T_STRIPES, T_PLASTER], p=[0.5, 0.2, 0.15, 0.15]))
    return b.material(colour, tex, rng.uniform(0.3, 1.0), rng.uniform(0.15, 0.4), rng=rng)


def _plastic(rng: np.random.Generator, b: Builder) -> int:
    colour = hsv(rng.uniform(0, 1), rng.uniform(0.4, 0.9), rng.uniform(0.35, 0.95))
    return b.material(colour, gloss=rng.uniform(0.2, 0.6))


def _dark_glossy(rng: np.random.Generator, b: Builder) -> int:
    value = rng.uniform(0.02, 0.06)
    return b.material((value, value, value * 1.1), gloss=rng.uniform(0.6, 1.0))


def _furniture_material(rng: np.random.Generator, b: Builder) -> int:
    kind = rng.choice(3, p=[0.55, 0.35, 0.1])
    return (wood_material, laminate_material, metal_material)[kind](rng, b)


# ----------------------------------------------------------------------------- furniture


def _table(rng: np.random.Generator, b: Builder, desk: bool = False) -> Piece:
    w = rng.uniform(1.0, 1.6) if desk else rng.uniform(0.8, 1.8)
    d = min(w, rng.uniform(0.55, 0.75) if desk else rng.uniform(0.6, 1.0))
    h, top = rng.uniform(0.7, 0.78), rng.uniform(0.025, 0.05)
    top_mat = _furniture_material(rng, b)
    leg_mat = top_mat if rng.random() < 0.6 else metal_material(rng, b)
    p = Piece(w / 2, d / 2, h)
    p.box(0, h - top / 2, 0, w / 2, top / 2, d / 2, top_mat)
    leg, inset, round_legs = rng.uniform(0.018, 0.035), rng.uniform(0.02, 0.1), rng.random() < 0.4
    for sx in (-1, 1):
        for sz in (-1, 1):
            lx, lz = sx * (w / 2 - inset - leg), sz * (d / 2 - inset - leg)
            if round_legs:
                p.cyl(lx, lz, 0.0, h - top, leg, leg_mat)
            else:
                p.box(lx, (h - top) / 2, lz, leg, (h - top) / 2, leg, leg_mat)
    p.support(0.0, 0.0, w / 2 - 0.04, d / 2 - 0.04, h)
    return p


def chair_piece(rng: np.random.Generator, b: Builder) -> Piece:
    """A chair: four legs, a seat and a back."""
    s, seat_h, th = rng.uniform(0.4, 0.5), rng.uniform(0.42, 0.48), 0.04
    back_h = rng.uniform(0.35, 0.5)
    frame = _furniture_material(rng, b)
    seat = frame if rng.random() < 0.5 else fabric_material(rng, b)
    leg = rng.uniform(0.011, 0.02)
    p = Piece(s / 2, s / 2, seat_h + back_h)
    p.box(0, seat_h - th / 2, 0, s / 2, th / 2, s / 2, seat)
    for sx in (-1, 1):
        for sz in (-1, 1):
            lx, lz = sx * (s / 2 - 1.5 * leg), sz * (s / 2 - 1.5 * leg)
            top = seat_h + back_h if sz < 0 else seat_h - th
            p.box(lx, top / 2, lz, leg, top / 2, leg, frame)
    p.box(0, seat_h + back_h * 0.7, -s / 2 + 1.5 * leg, s / 2 - leg, back_h * 0.28, 0.012, seat)
    return p


def _bookcase(rng: np.random.Generator, b: Builder, max_h: float) -> Piece:
    w, d = rng.uniform(0.6, 1.4), rng.uniform(0.28, 0.4)
    h, t, plinth = rng.uniform(1.1, max(1.2, min(2.1, max_h))), rng.uniform(0.018, 0.03), 0.08
    mat = _furniture_material(rng, b)
    p = Piece(w / 2, d / 2, h)
    for sx in (-1, 1):
        p.box(sx * (w / 2 - t / 2), h / 2, 0, t / 2, h / 2, d / 2, mat)
    p.box(0, h - t / 2, 0, w / 2, t / 2, d / 2, mat)
    p.box(0, plinth / 2, 0, w / 2 - t, plinth / 2, d / 2 - 0.01, mat)
    p.box(0, h / 2, -d / 2 + 0.005, w / 2 - t, h / 2, 0.005, mat)
    levels = max(2, int((h - plinth) / rng.uniform(0.3, 0.4)))
    spacing = (h - plinth - t) / levels
    for i in range(levels):
        y = plinth + i * spacing
        if i > 0:
            p.box(0, y, 0, w / 2 - t, t / 2, d / 2 - 0.01, mat)
        if rng.random() < 0.8:
            _books_row(rng, b, p, -w / 2 + t, w / 2 - t, y + t / 2, spacing - t, d)
    if h < 1.6:
        p.support(0, 0, w / 2 - 0.03, d / 2 - 0.03, h)
    return p


def _books_row(
    rng, b: Builder, p: Piece, x0: float, x1: float, y: float, room_h: float, depth: float
) -> None:
    """Fill a shelf level with blocks of books (colour pictures of spines on their fronts)."""
    x = x0 + rng.uniform(0.0, 0.1)
    pages = (0.9, 0.87, 0.78)
    while x < x1 - 0.06:
        width = min(rng.uniform(0.08, 0.35), x1 - x - 0.005)
        height = rng.uniform(0.6, 0.92) * room_h
        bd = rng.uniform(0.15, min(0.25, depth - 0.04))
        mat = b.material(pages, photo=int(rng.choice(PHOTO_BOOKS)), rng=rng)
        p.box(
            x + width / 2,
            y + height / 2,
            depth / 2 - 0.015 - bd / 2,
            width / 2,
            height / 2,
            bd / 2,
            mat,
        )
        x += width + (rng.uniform(0.02, 0.2) if rng.random() < 0.3 else 0.003)


def _cabinet(rng: np.random.Generator, b: Builder, max_h: float) -> Piece:
    w, d, h = rng.uniform(0.6, 1.8), rng.uniform(0.4, 0.6), rng.uniform(0.5, min(1.0, max_h))
    plinth = rng.uniform(0.04, 0.1)
    mat = _furniture_material(rng, b)
    front = mat if rng.random() < 0.6 else _furniture_material(rng, b)
    handle = metal_material(rng, b)
    p = Piece(w / 2, d / 2, h)
    p.box(0, (h + plinth) / 2, 0, w / 2, (h - plinth) / 2, d / 2 - 0.01, mat)
    p.box(0, plinth / 2, -0.02, w / 2 - 0.02, plinth / 2, d / 2 - 0.03, _dark_glossy(rng, b))
    cols, rows = max(1, round(w / rng.uniform(0.4, 0.7))), int(rng.integers(1, 4))
    pw, ph = w / cols, (h - plinth) / rows
    for i in range(cols):
        for j in range(rows):
            cx, cy = -w / 2 + (i + 0.5) * pw, plinth + (j + 0.5) * ph
            p.box(cx, cy, d / 2 - 0.005, pw / 2 - 0.004, ph / 2 - 0.004, 0.006, front)
            p.box(cx, cy + ph * 0.3, d / 2 + 0.012, 0.05, 0.008, 0.012, handle)
    p.support(0, 0, w / 2 - 0.02, d / 2 - 0.03, h)
    return p


def _wardrobe(rng: np.random.Generator, b: Builder, max_h: float) -> Piece:
    w, d = rng.uniform(0.8, 2.0), rng.uniform(0.55, 0.65)
    h = rng.uniform(min(1.8, max_h - 0.1), max_h)
    mat = _furniture_material(rng, b)
    handle = metal_material(rng, b)
    p = Piece(w / 2, d / 2, h)
    p.box(0, h / 2, 0, w / 2, h / 2, d / 2 - 0.01, mat)
    doors = max(2, round(w / 0.5))
    dw = w / doors
    for i in range(doors):
        cx = -w / 2 + (i + 0.5) * dw
        p.box(cx, h / 2 + 0.03, d / 2 - 0.005, dw / 2 - 0.004, h / 2 - 0.05, 0.006, mat)
        side = -1 if i % 2 else 1
        p.box(cx + side * (dw / 2 - 0.06), h * 0.5, d / 2 + 0.015, 0.008, 0.15, 0.01, handle)
    return p


def _sofa(rng: np.random.Generator, b: Builder) -> Piece:
    w, d = rng.uniform(1.5, 2.3), rng.uniform(0.8, 0.95)
    seat_h, back_h = rng.uniform(0.38, 0.45), rng.uniform(0.75, 0.9)
    arm_w, arm_h = rng.uniform(0.1, 0.22), rng.uniform(0.55, 0.68)
    cloth, legs = fabric_material(rng, b), wood_material(rng, b)
    p = Piece(w / 2, d / 2, back_h)
    for sx in (-1, 1):
        for sz in (-1, 1):
            p.cyl(sx * (w / 2 - 0.06), sz * (d / 2 - 0.06), 0.0, 0.07, 0.02, legs)
        p.box(
            sx * (w / 2 - arm_w / 2),
            (0.07 + arm_h) / 2,
            0,
            arm_w / 2,
            (arm_h - 0.07) / 2,
            d / 2,
            cloth,
        )
    inner = w / 2 - arm_w
    p.box(0, (0.07 + seat_h - 0.12) / 2, 0, inner, (seat_h - 0.19) / 2, d / 2, cloth)
    p.box(0, (0.07 + back_h) / 2, -d / 2 + 0.1, inner, (back_h - 0.07) / 2, 0.1, cloth)
    n = int(rng.integers(2, 4))
    cw = 2 * inner / n
    for i in range(n):
        p.box(-inner + (i + 0.5) * cw, seat_h - 0.06, 0.1, cw / 2 - 0.008, 0.06, d / 2 - 0.1, cloth)
    for _ in range(int(rng.integers(0, 3))):
        x = rng.uniform(-inner + 0.25, inner - 0.25)
        p.box(
            x,
            seat_h + 0.18,
            -d / 2 + 0.28,
            0.2,
            0.18,
            0.06,
            fabric_material(rng, b),
            yaw=rng.uniform(-0.3, 0.3),
            tilt=-0.25,
        )
    return p


def _bed(rng: np.random.Generator, b: Builder) -> Piece:
    w, length = rng.uniform(0.9, 1.8), rng.uniform(1.95, 2.1)
    frame_h, matt_h, head_h = (
        rng.uniform(0.25, 0.35),
        rng.uniform(0.18, 0.25),
        rng.uniform(0.8, 1.2),
    )
    frame = _furniture_material(rng, b)
    p = Piece(w / 2 + 0.02, length / 2, head_h)
    p.box(0, frame_h / 2, 0, w / 2, frame_h / 2, length / 2, frame)
    sheet_colour = hsv(rng.uniform(0, 1), rng.uniform(0, 0.1), rng.uniform(0.8, 0.95))
    sheet = b.material(sheet_colour, T_FABRIC, 0.5, 0.1, rng=rng)
    p.box(0, frame_h + matt_h / 2, 0, w / 2 - 0.02, matt_h / 2, length / 2 - 0.03, sheet)
    p.box(
        0,
        frame_h + matt_h / 2 + 0.02,
        0.15 * length,
        w / 2 + 0.01,
        matt_h / 2 + 0.025,
        0.35 * length,
        fabric_material(rng, b),
    )
    p.box(0, head_h / 2, -length / 2 + 0.03, w / 2 + 0.02, head_h / 2, 0.03, frame)
    pillows = 1 if w < 1.2 else 2
    for i in range(pillows):
        x = 0.0 if pillows == 1 else (i - 0.5) * w / 2
        p.box(
            x,
            frame_h + matt_h + 0.06,
            -length / 2 + 0.25,
            w / (2 * pillows) - 0.06,
            0.06,
            0.17,
            sheet,
            yaw=rng.uniform(-0.1, 0.1),
            tilt=-0.2,
        )
    return p


def _desk(rng: np.random.Generator, b: Builder) -> Piece:
    p = _table(rng, b, desk=True)
    h, screen = p.height, _dark_glossy(rng, b)
    sw, sh = rng.uniform(0.45, 0.7), rng.uniform(0.28, 0.4)
    z = -p.half_d + 0.15
    p.box(0, h + 0.005, z, 0.1, 0.005, 0.08, screen)
    p.cyl(0, z, h + 0.01, h + 0.12, 0.02, screen)
    p.box(0, h + 0.1 + sh / 2, z + 0.03, sw / 2, sh / 2, 0.012, screen)
    p.box(
        rng.uniform(-0.1, 0.1),
        h + 0.008,
        z + 0.3,
        0.22,
        0.008,
        0.07,
        laminate_material(rng, b),
        yaw=rng.uniform(-0.15, 0.15),
    )
    p.supports = [(p.half_w * 0.6, 0.0, p.half_w * 0.3, p.half_d - 0.05, h)]
    return p


def _tv_stand(rng: np.random.Generator, b: Builder, max_h: float) -> Piece:
    p = _cabinet(rng, b, min(max_h, 0.55))
    h, screen = p.height, _dark_glossy(rng, b)
    tw = min(rng.uniform(0.9, 1.4), 2 * p.half_w)
    th = tw * 0.57
    p.box(0, h + 0.01, 0, 0.15, 0.01, 0.1, screen)
    p.box(0, h + 0.06, -0.02, 0.03, 0.05, 0.015, screen)
    p.box(0, h + 0.08 + th / 2, 0, tw / 2, th / 2, 0.025, screen)
    p.height = h + 0.08 + th
    p.supports = []
    return p


def _floor_lamp(rng: np.random.Generator, b: Builder) -> Piece:
    base_r, height, shade_r = (
        rng.uniform(0.12, 0.18),
        rng.uniform(1.4, 1.75),
        rng.uniform(0.14, 0.22),
    )
    metal = metal_material(rng, b)
    shade = b.material(
        hsv(rng.uniform(0.05, 0.15), rng.uniform(0.05, 0.3), 0.9), T_FABRIC, 0.3, 0.15, rng=rng
    )
    p = Piece(shade_r, shade_r, height)
    p.cyl(0, 0, 0.0, 0.03, base_r, metal)
    p.cyl(0, 0, 0.03, height - 0.2, rng.uniform(0.01, 0.016), metal)
    p.cyl(0, 0, height - 0.26, height, shade_r, shade)
    return p


def _plant(rng: np.random.Generator, b: Builder) -> Piece:
    r, h = rng.uniform(0.12, 0.25), rng.uniform(0.25, 0.5)
    pot_colour = hsv(rng.uniform(0.0, 0.1), rng.uniform(0.2, 0.7), rng.uniform(0.3, 0.85))
    pot = b.material(pot_colour, T_CONCRETE, 1.0, 0.15, rng=rng)
    leaves_colour = hsv(rng.uniform(0.22, 0.38), rng.uniform(0.4, 0.8), rng.uniform(0.3, 0.6))
    leaves = b.material(leaves_colour, T_GRASS, rng.uniform(0.3, 0.6), 0.7, rng=rng)
    p = Piece(r, r, h + 2 * r)
    p.cyl(0, 0, 0.0, h, r, pot)
    for _ in range(int(rng.integers(1, 4))):
        fr = rng.uniform(0.8, 1.6) * r
        p.sphere(
            rng.uniform(-0.3, 0.3) * r,
            h + fr * rng.uniform(0.6, 1.2),
            rng.uniform(-0.3, 0.3) * r,
            fr,
            leaves,
        )
    p.half_w = p.half_d = 1.6 * r
    return p


def _stool(rng: np.random.Generator, b: Builder) -> Piece:
    r, h = rng.uniform(0.15, 0.2), rng.uniform(0.45, 0.75)
    mat, legs = _furniture_material(rng, b), metal_material(rng, b)
    p = Piece(r, r, h)
    p.cyl(0, 0, h - 0.04, h, r, mat)
    n = int(rng.integers(3, 5))
    for i in range(n):
        a = 2 * math.pi * i / n
        p.cyl(0.7 * r * math.cos(a), 0.7 * r * math.sin(a), 0.0, h - 0.04, 0.012, legs)
    return p


def _round_table(rng: np.random.Generator, b: Builder) -> Piece:
    r, h = rng.uniform(0.35, 0.6), rng.uniform(0.7, 0.76)
    mat = _furniture_material(rng, b)
    p = Piece(r, r, h)
    p.cyl(0, 0, h - 0.03, h, r, mat)
    p.cyl(0, 0, 0.03, h - 0.03, rng.uniform(0.025, 0.05), mat)
    p.cyl(0, 0, 0.0, 0.03, rng.uniform(0.2, 0.3), mat)
    p.support(0, 0, r * 0.6, r * 0.6, h)
    return p


def _cartons(rng: np.random.Generator, b: Builder) -> Piece:
    card_colour = hsv(rng.uniform(0.07, 0.1), rng.uniform(0.35, 0.55), rng.uniform(0.5, 0.75))
    card = b.material(card_colour, T_CONCRETE, 1.0, 0.1, rng=rng)
    w, d = rng.uniform(0.3, 0.6), rng.uniform(0.25, 0.5)
    p = Piece(w / 2 + 0.05, d / 2 + 0.05, 0.0)
    y = 0.0
    for _ in range(int(rng.integers(1, 4))):
        bh = rng.uniform(0.2, 0.4)
        x, z = rng.uniform(-0.04, 0.04), rng.uniform(-0.04, 0.04)  # jitter off the stack
        p.box(x, y + bh / 2, z, w / 2, bh / 2, d / 2, card, yaw=rng.uniform(-0.2, 0.2))
        y += bh
        w, d = w * rng.uniform(0.7, 1.0), d * rng.uniform(0.7, 1.0)
    p.height = y
    return p


def _pole(rng: np.random.Generator, b: Builder, room_h: float) -> Piece:
    """A coat stand, or a pipe from floor to ceiling: thin structures."""
    metal = metal_material(rng, b)
    if rng.random() < 0.5:
        r = rng.uniform(0.02, 0.05)
        p = Piece(r, r, room_h)
        p.cyl(0, 0, 0.0, room_h, r, metal)
        return p
    h = rng.uniform(1.65, 1.85)
    p = Piece(0.2, 0.2, h)
    p.cyl(0, 0, 0.0, 0.03, 0.2, metal)
    p.cyl(0, 0, 0.03, h, rng.uniform(0.012, 0.02), metal)
    p.sphere(0, h, 0, 0.03, metal)
    for i in range(3):
        a = 2 * math.pi * i / 3
        p.sphere(0.1 * math.cos(a), h - 0.12, 0.1 * math.sin(a), 0.025, metal)
    return p


def _ball(rng: np.random.Generator, b: Builder) -> Piece:
    r = rng.uniform(0.1, 0.2)
    p = Piece(r, r, 2 * r)
    p.sphere(0, r, 0, r, _plastic(rng, b))
    return p


def _bin(rng: np.random.Generator, b: Builder) -> Piece:
    r = rng.uniform(0.12, 0.18)
    p = Piece(r, r, 0.4)
    p.cyl(
        0,
        0,
        0.0,
        rng.uniform(0.3, 0.45),
        r,
        _plastic(rng, b) if rng.random() < 0.6 else metal_material(rng, b),
    )
    return p


WALL_PIECES = ("bookcase", "cabinet", "sofa", "bed", "desk", "tv", "wardrobe")
WALL_WEIGHTS = (0.22, 0.22, 0.14, 0.1, 0.12, 0.1, 0.1)
FREE_PIECES = (
    "table",
    "round_table",
    "chair",
    "floor_lamp",
    "plant",
    "stool",
    "cartons",
    "ball",
    "bin",
    "pole",
    "sofa",
)
FREE_WEIGHTS = (0.2, 0.07, 0.12, 0.1, 0.1, 0.07, 0.09, 0.05, 0.07, 0.08, 0.05)


def make_piece(
    name: str, rng: np.random.Generator, b: Builder, max_h: float, room_h: float
) -> Piece:
    """Build a named furniture piece."""
    makers = {
        "bookcase": lambda: _bookcase(rng, b, max_h),
        "cabinet": lambda: _cabinet(rng, b, max_h),
        "wardrobe": lambda: _wardrobe(rng, b, max_h),
        "tv": lambda: _tv_stand(rng, b, max_h),
        "pole": lambda: _pole(rng, b, room_h),
        "table": lambda: _table(rng, b),
        "round_table": lambda: _round_table(rng, b),
        "chair": lambda: chair_piece(rng, b),
        "sofa": lambda: _sofa(rng, b),
        "bed": lambda: _bed(rng, b),
        "desk": lambda: _desk(rng, b),
        "floor_lamp": lambda: _floor_lamp(rng, b),
        "plant": lambda: _plant(rng, b),
        "stool": lambda: _stool(rng, b),
        "cartons": lambda: _cartons(rng, b),
        "ball": lambda: _ball(rng, b),
        "bin": lambda: _bin(rng, b),
    }
    return makers[name]()


def clutter_piece(rng, b: Builder, photo_textures: bool) -> Piece:
    """One small object (books, laptop, cup, bottle, vase, fruit bowl, ball, box, frame)."""
    kind = int(rng.choice(9, p=[0.18, 0.06, 0.14, 0.12, 0.1, 0.08, 0.1, 0.14, 0.08]))
    if kind == 0:  # stack of books
        p, y = Piece(0.12, 0.16, 0.0), 0.0
        for _ in range(int(rng.integers(1, 5))):
            bh = rng.uniform(0.02, 0.05)
            x, z = rng.uniform(-0.02, 0.02), rng.uniform(-0.02, 0.02)  # jitter off the stack
            hx, hz = rng.uniform(0.07, 0.11), rng.uniform(0.1, 0.15)
            p.box(x, y + bh / 2, z, hx, bh / 2, hz, _plastic(rng, b), yaw=rng.uniform(-0.4, 0.4))
            y += bh
        p.height = y
    elif kind == 1:  # laptop, lid leaning back by `lean` radians about the hinge
        p, lean = Piece(0.17, 0.13, 0.24), rng.uniform(0.1, 0.45)
        shell = laminate_material(rng, b)
        p.box(0, 0.0075, 0, 0.165, 0.0075, 0.115, shell)
        p.box(
            0,
            0.015 + 0.115 * math.cos(lean),
            -0.115 - 0.115 * math.sin(lean),
            0.165,
            0.115,
            0.005,
            shell,
            tilt=-lean,
        )
    elif kind in (2, 3, 4):  # cup, bottle, vase
        r = (rng.uniform(0.03, 0.045), rng.uniform(0.028, 0.04), rng.uniform(0.05, 0.1))[kind - 2]
        hgt = (rng.uniform(0.07, 0.11), rng.uniform(0.18, 0.3), rng.uniform(0.15, 0.35))[kind - 2]
        mat = _plastic(rng, b) if rng.random() < 0.6 else laminate_material(rng, b)
        p = Piece(r, r, hgt)
        p.cyl(0, 0, 0.0, hgt, r, mat)
        if kind == 3:
            p.cyl(0, 0, hgt, hgt + 0.06, 0.012, mat)
    elif kind == 5:  # fruit bowl
        r = rng.uniform(0.1, 0.15)
        p = Piece(r, r, 0.1)
        p.cyl(0, 0, 0.0, 0.05, r, laminate_material(rng, b))
        for _ in range(int(rng.integers(2, 5))):
            fr = rng.uniform(0.03, 0.045)
            p.sphere(
                rng.uniform(-0.5, 0.5) * r,
                0.05 + fr * 0.8,
                rng.uniform(-0.5, 0.5) * r,
                fr,
                _plastic(rng, b),
            )
    elif kind == 6:  # ball
        r = rng.uniform(0.04, 0.11)
        p = Piece(r, r, 2 * r)
        p.sphere(0, r, 0, r, _plastic(rng, b))
    elif kind == 7:  # box
        hx, hy, hz = rng.uniform(0.03, 0.15, 3)
        p = Piece(1.3 * max(hx, hz), 1.3 * max(hx, hz), 2 * hy)
        p.box(
            0,
            hy,
            0,
            hx,
            hy,
            hz,
            _plastic(rng, b) if rng.random() < 0.5 else wood_material(rng, b),
            yaw=rng.uniform(-0.8, 0.8),
        )
    else:  # standing picture frame
        photo = (
            int(rng.integers(len(PHOTO_NAMES))) if photo_textures else int(rng.choice(PHOTO_ART))
        )
        p = Piece(0.1, 0.06, 0.2)
        p.box(0, 0.075, 0, 0.1, 0.07, 0.01, b.material((0.1, 0.1, 0.1), photo=photo), tilt=-0.2)
    return p
