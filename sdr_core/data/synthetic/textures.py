"""Texture and picture banks of the synthetic scenes: procedural and photographic.

Both banks are built once per process from a fixed seed (`functools.lru_cache`) and hold
read-only arrays.
"""

from __future__ import annotations

import functools
import math

import numpy as np

TEX_SIZE = 256  # texels per side of every grey texture in the bank (mip level 0)
_TEX_BITS = 8  # log2(TEX_SIZE)
TEX_LEVELS = 5  # mip levels: 256, 128, 64, 32, 16 texels
MIP_SIZE = np.array([TEX_SIZE >> i for i in range(TEX_LEVELS)], np.int32)
MIP_BITS = np.array([_TEX_BITS - i for i in range(TEX_LEVELS)], np.int32)
MIP_SCALE = np.array([0.5**i for i in range(TEX_LEVELS)], np.float32)
for _table in (MIP_SIZE, MIP_BITS, MIP_SCALE):
    _table.flags.writeable = False
_TEXTURE_SEED = 20240617  # fixed seed of the per-process texture bank
_PHOTO_HEIGHT = 192  # photos are stored at this height, aspect kept, width <= 1.5 x height


# Grey texture bank, index -> content (see texture_bank).
(
    T_FLAT,
    T_PLASTER,
    T_CONCRETE,
    T_WOOD,
    T_PLANKS,
    T_TILES,
    T_SMALL_TILES,
    T_STRIPES,
    T_PINSTRIPE,
    T_FABRIC,
    T_CARPET,
    T_MARBLE,
    T_BRICK,
    T_GRASS,
    T_GRAVEL,
    _T_BOOKS,
    T_CHECKER,
    T_DOTS,
) = range(18)
_N_TEXTURES = 18
PHOTO_NAMES = ("astronaut", "coffee", "chelsea", "rocket")


def _perlin(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Periodic 2-D gradient (Perlin) noise: size x size float64, about [-0.7, 0.7]."""
    angles = rng.uniform(0.0, 2.0 * math.pi, (cells, cells))
    gx, gy = np.cos(angles), np.sin(angles)
    pos = (np.arange(size) + 0.5) * (cells / size)
    i0 = np.floor(pos).astype(np.int64)
    frac = pos - i0
    i1 = (i0 + 1) % cells
    fade = frac * frac * frac * (frac * (frac * 6.0 - 15.0) + 10.0)
    fy, fx = frac[:, None], frac[None, :]

    def corner(iy: np.ndarray, ix: np.ndarray, oy: float, ox: float) -> np.ndarray:
        g = (iy[:, None], ix[None, :])
        return gx[g] * (fx - ox) + gy[g] * (fy - oy)

    wx, wy = fade[None, :], fade[:, None]
    top = corner(i0, i0, 0, 0) + wx * (corner(i0, i1, 0, 1) - corner(i0, i0, 0, 0))
    bottom = corner(i1, i0, 1, 0) + wx * (corner(i1, i1, 1, 1) - corner(i1, i0, 1, 0))
    return top + wy * (bottom - top)


def _fbm(rng: np.random.Generator, size: int, cells: int, octaves: int) -> np.ndarray:
    """Fractal sum of periodic Perlin octaves (gain 0.5), size x size float64."""
    total = np.zeros((size, size))
    for octave in range(octaves):
        n_cells = cells * 2**octave
        if n_cells > size // 2:
            break
        total += _perlin(rng, size, n_cells) * 0.5**octave
    return total


def _normalise(x: np.ndarray) -> np.ndarray:
    """Stretch the 1st..99th percentile to [0, 1] and clip."""
    lo, hi = np.percentile(x, [1.0, 99.0])
    return np.clip((x - lo) / max(hi - lo, 1e-9), 0.0, 1.0)


def _procedural_textures(rng: np.random.Generator) -> dict[int, np.ndarray]:
    """Procedural grey textures, each S x S float64 in [0, 1], tileable."""
    s = TEX_SIZE
    yy, xx = np.mgrid[0:s, 0:s] / s
    tex = {T_FLAT: np.full((s, s), 0.5)}
    tex[T_PLASTER] = _normalise(_fbm(rng, s, 4, 6))
    tex[T_CONCRETE] = _normalise(_fbm(rng, s, 8, 5) + 0.35 * rng.random((s, s)))
    warp = _fbm(rng, s, 2, 4)
    grain = np.sin(2 * np.pi * (10 * xx + 1.5 * warp)) ** 2
    tex[T_WOOD] = _normalise(0.6 * grain + 0.4 * warp + 0.15 * _fbm(rng, s, 32, 2))
    tex[T_PLANKS] = _planks(rng, xx, yy, warp)
    tex[T_TILES] = _tiles(rng, 4, 3, _fbm(rng, s, 8, 3))
    tex[T_SMALL_TILES] = _tiles(rng, 8, 2, _fbm(rng, s, 16, 2))
    stripe = (np.floor(xx * 8) % 2) * 0.3 + 0.35 + 0.25 * (np.abs(xx * 64 % 8 - 4) < 0.5)
    tex[T_STRIPES] = np.clip(stripe + 0.05 * _fbm(rng, s, 8, 3), 0, 1)
    tex[T_PINSTRIPE] = np.where((xx * s) % 16 < 2, 0.2, 0.6) + 0.05 * _fbm(rng, s, 16, 2)
    weave = np.sin(2 * np.pi * 64 * xx) * np.sin(2 * np.pi * 64 * yy)
    tex[T_FABRIC] = _normalise(0.4 * weave + _fbm(rng, s, 16, 3))
    tex[T_CARPET] = _normalise(_fbm(rng, s, 32, 3) + 0.6 * rng.random((s, s)))
    veins = np.abs(np.sin(2 * np.pi * (2 * xx + 3 * yy + 1.5 * _fbm(rng, s, 4, 5))))
    tex[T_MARBLE] = _normalise(veins**0.25 + 0.2 * _fbm(rng, s, 8, 3))
    tex[_T_BOOKS] = _book_spines_grey(rng)
    tex[T_CHECKER] = ((np.floor(xx * 8) + np.floor(yy * 8)) % 2) * 0.5 + 0.25
    dots = np.hypot((xx * 16) % 1 - 0.5, (yy * 16) % 1 - 0.5) < 0.18
    tex[T_DOTS] = np.where(dots, 0.2, 0.6)
    return tex


def _planks(rng: np.random.Generator, xx: np.ndarray, yy: np.ndarray, warp: np.ndarray):
    """Floor planks: 8 rows of 128-texel boards with grain, gaps and shade per board."""
    s = TEX_SIZE
    row = np.floor(yy * 8).astype(np.int64)
    offsets = rng.integers(0, s, 8)
    xs = (xx * s + offsets[row]) % s
    board = row * 2 + (xs >= s // 2)
    shade = rng.uniform(0.35, 0.75, 16)[board]
    grain = 0.15 * np.sin(2 * np.pi * (32 * yy + 2.0 * warp + rng.uniform(0, 1, 16)[board]))
    gap = ((yy * s) % 32 < 1.5) | (xs % (s // 2) < 1.5)
    return np.clip(np.where(gap, 0.05, shade + grain), 0, 1)


def _tiles(rng: np.random.Generator, per_side: int, grout: int, noise: np.ndarray):
    """Square tiles (per_side x per_side) with dark grout lines `grout` texels wide."""
    s = TEX_SIZE
    period = s // per_side
    iy, ix = np.mgrid[0:s, 0:s]
    tile = (iy // period) * per_side + ix // period
    shade = rng.uniform(0.65, 0.85, per_side * per_side)[tile] + 0.08 * noise
    line = ((iy % period) < grout) | ((ix % period) < grout)
    return np.clip(np.where(line, 0.15, shade), 0, 1)


def _book_spines_grey(rng: np.random.Generator) -> np.ndarray:
    """Vertical bands of random width and brightness, like a row of book spines."""
    s = TEX_SIZE
    values = np.empty(s)
    x = 0
    while x < s:
        width = int(rng.integers(5, 15))
        values[x : x + width] = rng.uniform(0.2, 0.95)
        values[min(x + width - 1, s - 1)] = 0.05
        x += width
    return np.tile(values, (s, 1))


def _photo_textures(rng: np.random.Generator) -> dict[int, np.ndarray]:
    """Grey photographic textures from scikit-image (brick, grass, gravel), S x S in [0, 1]."""
    import skimage.data
    from skimage.transform import resize

    out = {}
    for index, name in ((T_BRICK, "brick"), (T_GRASS, "grass"), (T_GRAVEL, "gravel")):
        image = getattr(skimage.data, name)().astype(np.float64) / 255.0
        if index == T_BRICK:  # skimage's courses run vertically; walls want them level
            image = image.T
        out[index] = _normalise(resize(image, (TEX_SIZE, TEX_SIZE), anti_aliasing=True))
    return out


@functools.lru_cache(maxsize=1)
def texture_bank() -> tuple[np.ndarray, np.ndarray]:
    """Mip-mapped grey texture bank, built once per process from a fixed seed.

    Returns:
        atlas: flat float32 array holding, level after level, the T x S_l x S_l textures
            of mip level l (S_l = S >> l); values in [0, 1], mean about 0.5.
        offsets: int64 (levels,) start of each level inside `atlas`.
    """
    rng = np.random.default_rng(_TEXTURE_SEED)
    textures = _procedural_textures(rng)
    textures.update(_photo_textures(rng))
    level = np.stack([textures[i] for i in range(_N_TEXTURES)]).astype(np.float32)
    chunks, offsets, start = [], [], 0
    for _ in range(TEX_LEVELS):
        chunks.append(level.ravel())
        offsets.append(start)
        start += level.size
        t, n = level.shape[0], level.shape[1] // 2
        level = level.reshape(t, n, 2, n, 2).mean(axis=(2, 4))  # 2x2 box filter
    atlas = np.concatenate(chunks)
    atlas.flags.writeable = False
    offs = np.asarray(offsets, dtype=np.int64)
    offs.flags.writeable = False
    return atlas, offs


def _book_spines_colour(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A shelf row of books in random colours: h x w x 3 sRGB in [0, 1]."""
    image = np.full((h, w, 3), 0.08)
    x = 0
    while x < w:
        width = int(rng.integers(7, 22))
        top = int(rng.integers(0, h // 4))
        colour = hsv(rng.uniform(0, 1), rng.uniform(0.3, 0.8), rng.uniform(0.25, 0.9))
        image[top:, x : x + width - 1] = colour
        band = int(rng.integers(top + 10, h - 20))
        image[band : band + 12, x + 2 : x + width - 3] = 0.85
        x += width
    return image


def _abstract_art(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A colourful abstract painting from three fBm fields: h x w x 3 sRGB in [0, 1]."""
    size = TEX_SIZE
    channels = [_normalise(_fbm(rng, size, 2, 4)) for _ in range(3)]
    art = np.stack(channels, axis=-1)[:h, : min(w, size)]
    return np.pad(art, ((0, 0), (0, w - art.shape[1]), (0, 0)), mode="reflect")


def hsv(hue: float, sat: float, val: float) -> tuple[float, float, float]:
    """HSV in [0, 1] to sRGB in [0, 1]."""
    i = int(hue * 6.0) % 6
    f = hue * 6.0 - math.floor(hue * 6.0)
    p, q, t = val * (1 - sat), val * (1 - f * sat), val * (1 - (1 - f) * sat)
    return [(val, t, p), (q, val, p), (p, val, t), (p, q, val), (t, p, val), (val, p, q)][i]


@functools.lru_cache(maxsize=1)
def photo_bank() -> tuple[np.ndarray, np.ndarray]:
    """Colour pictures, built once per process: skimage photos, then procedural ones.

    Returns:
        atlas: P x PH x PW x 3 float32 linear colour; picture p fills its top-left
            sizes[p] corner. Order: astronaut, coffee, chelsea, rocket, 2 book rows,
            2 abstract paintings.
        sizes: int64 P x 2 (height, width) of each picture in texels.
    """
    import skimage.data
    from skimage.transform import resize

    ph, pw = _PHOTO_HEIGHT, _PHOTO_HEIGHT * 3 // 2
    rng = np.random.default_rng(_TEXTURE_SEED + 1)
    pictures = []
    for name in PHOTO_NAMES:
        image = getattr(skimage.data, name)().astype(np.float64) / 255.0
        width = min(pw, round(ph * image.shape[1] / image.shape[0]))
        pictures.append(resize(image, (ph, width), anti_aliasing=True))
    pictures += [_book_spines_colour(rng, ph, pw) for _ in range(2)]
    pictures += [_abstract_art(rng, ph, pw) for _ in range(2)]
    atlas = np.zeros((len(pictures), ph, pw, 3), dtype=np.float32)
    sizes = np.zeros((len(pictures), 2), dtype=np.int64)
    for p, picture in enumerate(pictures):
        atlas[p, : picture.shape[0], : picture.shape[1]] = np.clip(picture, 0, 1) ** 2.2
        sizes[p] = picture.shape[:2]
    atlas.flags.writeable = False
    sizes.flags.writeable = False
    return atlas, sizes


PHOTO_BOOKS = (4, 5)  # indices into photo_bank of the book rows
PHOTO_ART = (6, 7)  # indices into photo_bank of the procedural paintings
