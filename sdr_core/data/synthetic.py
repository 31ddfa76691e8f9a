"""Procedural indoor RGB-D scenes: unlimited, exactly labelled, deterministic by seed.

`generate_scene(seed, config)` builds a random room (walls, floor, ceiling, doors and
windows, columns and beams), furnishes it from primitives (oriented boxes, vertical
cylinders, spheres: tables, chairs, shelves with books, sofas, beds, cabinets, lamps,
plants, clutter, thin poles and chair legs), textures it (Perlin fBm, wood, planks, tiles,
stripes, fabric, marble, and the photographs scikit-image ships: brick, grass and gravel as
materials; astronaut, coffee, chelsea and rocket as pictures on the walls), lights it
(Lambert + Blinn highlights from 1-3 point lights, ambient term, shadow-mapped cast
shadows) and films it with a Kinect-class camera (pose jitter in height, pitch and roll,
NYUv2 focal length, vignetting, blur and noise).

Depth is ray-cast analytically, so it is exact: `Scene.depth` is the z coordinate of the
first surface along each pixel's ray (not the ray length), float32 metres, dense. With
`SceneConfig.sensor_effects` the same scene also gets a `sensor_depth` with Kinect-like
holes (dark, glossy, grazing, far and window surfaces, projector shadows beside depth
edges, dropped edge pixels) and disparity-domain noise with 1/8 px quantisation.

Conventions. World: metres, y up, the room spans [0, W] x [0, H] x [0, D]. Camera: OpenCV
(x right, y down, z forward); pixel (row i, column j) has its centre at (u, v) = (j, i), so
a point (X, Y, Z) in camera coordinates lands at u = fx X / Z + cx, v = fy Y / Z + cy.

Randomness: every draw comes from `np.random.SeedSequence(seed)` (one child stream for the
layout, one for image noise, one for sensor effects), so a seed gives the same arrays on
every run with the same library versions on the same kind of CPU (numpy's vectorised
float32 exp/log/trig may differ in the last bit between CPU types), and switching
`sensor_effects` on leaves `rgb` and `depth` unchanged. The layout is drawn before the
image size matters, so a seed usually shows the same room at every size; it can differ
when the view check (`_draw_view`: nothing nearer than MIN_DEPTH_M, enough furniture in
view) passes at one size and not at another (1 seed in 30 between 228x304 and 97x131).
The texture and photo banks are built once per process from a fixed seed
(`functools.lru_cache`, read-only arrays).

Speed: numpy only, vectorised over pixels; each primitive is intersected only inside its
screen rectangle, and shadows come from one small exponential shadow map per light. See
`benchmarks/bench_synthetic.py`.
"""

from __future__ import annotations

import functools
import logging
import math
import numbers
from dataclasses import dataclass
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

__all__ = [
    "MIN_DEPTH_M",
    "NYU_FOCAL_PER_WIDTH",
    "Scene",
    "SceneConfig",
    "generate_scene",
]

NYU_FOCAL_PER_WIDTH = 518.8579 / 640.0
"""NYUv2 Kinect colour focal length (518.86 px at 640 px wide) per pixel of image width."""

MIN_DEPTH_M = 0.5
"""No surface is ever closer than this to the camera (the Kinect's near limit)."""

_NEAR_M = 1e-3  # ray hits closer than this (z, metres) are ignored
_FAR_M = 1e4  # "nothing there" depth of shadow-map borders (finite, so interpolation works)
_MAX_CAMERA_ATTEMPTS = 8  # layouts drawn at most for one seed (see _draw_view)
_MIN_OBJECT_COVERAGE = 0.1  # views where primitives fill less of the image are redrawn
_TEX_SIZE = 256  # texels per side of every grey texture in the bank (mip level 0)
_TEX_BITS = 8  # log2(_TEX_SIZE)
_TEX_LEVELS = 5  # mip levels: 256, 128, 64, 32, 16 texels
_MIP_SIZE = np.array([_TEX_SIZE >> i for i in range(_TEX_LEVELS)], np.int32)
_MIP_BITS = np.array([_TEX_BITS - i for i in range(_TEX_LEVELS)], np.int32)
_MIP_SCALE = np.array([0.5**i for i in range(_TEX_LEVELS)], np.float32)
for _table in (_MIP_SIZE, _MIP_BITS, _MIP_SCALE):
    _table.flags.writeable = False
_TEXTURE_SEED = 20240617  # fixed seed of the per-process texture bank
_PHOTO_HEIGHT = 192  # photos are stored at this height, aspect kept, width <= 1.5 x height
_SHADOW_HALF_FOV_DEG = 68.0  # each light's shadow map looks straight down with this half FOV
_ESM_SHARPNESS = 30.0  # 1/m; exp shadow maps: a receiver 10 cm behind its caster gets 5 % light
_KINECT_BASELINE_M = 0.075  # IR projector to IR camera distance
_KINECT_FOCAL_640_PX = 580.0  # IR camera focal length at 640 px wide (disparity units)
_KINECT_DISPARITY_STEP_PX = 1.0 / 8.0  # disparity quantisation of the Kinect v1
_KINECT_DISPARITY_NOISE_PX = 0.07  # 1-sigma disparity noise (Nguyen et al. 2012 at 60 deg)

_BOX, _CYLINDER, _SPHERE = 0, 1, 2

# Grey texture bank, index -> content (see _texture_bank).
(
    _T_FLAT,
    _T_PLASTER,
    _T_CONCRETE,
    _T_WOOD,
    _T_PLANKS,
    _T_TILES,
    _T_SMALL_TILES,
    _T_STRIPES,
    _T_PINSTRIPE,
    _T_FABRIC,
    _T_CARPET,
    _T_MARBLE,
    _T_BRICK,
    _T_GRASS,
    _T_GRAVEL,
    _T_BOOKS,
    _T_CHECKER,
    _T_DOTS,
) = range(18)
_N_TEXTURES = 18
_PHOTO_NAMES = ("astronaut", "coffee", "chelsea", "rocket")


# ============================================================================= public API


@dataclass(frozen=True)
class SceneConfig:
    """What `generate_scene` renders; every field has a working default.

    Ranges are (low, high) pairs sampled uniformly per scene.
    """

    height: int = 228  # image rows, pixels (NYUv2 crop)
    width: int = 304  # image columns, pixels (NYUv2 crop)
    sensor_effects: bool = False  # Kinect-like holes (0) + depth noise into Scene.sensor_depth
    max_depth_m: float = 10.0  # depth never exceeds this: rooms fit inside, windows are capped
    focal_per_width: float = NYU_FOCAL_PER_WIDTH  # fx = fy = focal_per_width * width, pixels
    room_size_m: tuple[float, float] = (3.0, 8.0)  # room width and length, metres
    room_height_m: tuple[float, float] = (2.4, 3.2)  # floor to ceiling, metres
    camera_height_m: tuple[float, float] = (1.0, 1.9)  # camera above the floor, metres
    camera_pitch_deg: tuple[float, float] = (-30.0, 5.0)  # tilt, negative looks down
    camera_roll_deg: float = 4.0  # |roll| <= this, degrees
    lights: tuple[int, int] = (1, 3)  # number of ceiling point lights
    furniture: tuple[int, int] = (4, 8)  # furniture pieces (wall-standing + free-standing)
    clutter: tuple[int, int] = (6, 18)  # small objects on tables, shelves and the floor
    shadows: bool = True  # cast shadows (one shadow map per light)
    shadow_map_px: int = 160  # side of each light's shadow map, texels
    photo_textures: bool = True  # pictures from scikit-image photos (False: procedural art)
    camera_effects: bool = True  # vignetting, white-balance shift, blur and image noise
    sensor_range_m: float = 8.0  # sensor_effects: depth fades out beyond ~this, metres

    def __post_init__(self) -> None:
        for name in ("height", "width", "shadow_map_px"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                raise ValueError(f"{name} must be an integer, got {value!r}")
        if not 8 <= self.height <= 4096:
            raise ValueError(f"height must be in [8, 4096], got {self.height}")
        if not 8 <= self.width <= 4096:
            raise ValueError(f"width must be in [8, 4096], got {self.width}")
        if not 16 <= self.shadow_map_px <= 1024:
            raise ValueError(f"shadow_map_px must be in [16, 1024], got {self.shadow_map_px}")
        if not 5.0 <= self.max_depth_m <= 1000.0:
            raise ValueError(f"max_depth_m must be in [5, 1000], got {self.max_depth_m}")
        if not 0.2 <= self.focal_per_width <= 5.0:
            raise ValueError(f"focal_per_width must be in [0.2, 5], got {self.focal_per_width}")
        _check_range("room_size_m", self.room_size_m, 2.0, 30.0)
        _check_range("room_height_m", self.room_height_m, 2.2, 6.0)
        _check_range("camera_height_m", self.camera_height_m, 0.3, self.room_height_m[0] - 0.4)
        _check_range("camera_pitch_deg", self.camera_pitch_deg, -60.0, 45.0)
        if not 0.0 <= self.camera_roll_deg <= 30.0:
            raise ValueError(f"camera_roll_deg must be in [0, 30], got {self.camera_roll_deg}")
        _check_range("lights", self.lights, 1, 8, integer=True)
        _check_range("furniture", self.furniture, 0, 20, integer=True)
        _check_range("clutter", self.clutter, 0, 60, integer=True)
        if not MIN_DEPTH_M < self.sensor_range_m <= self.max_depth_m:
            raise ValueError(
                f"sensor_range_m must be in ({MIN_DEPTH_M}, max_depth_m={self.max_depth_m}], "
                f"got {self.sensor_range_m}"
            )

    def intrinsics(self) -> tuple[float, float, float, float]:
        """Pinhole intrinsics (fx, fy, cx, cy) in pixels; the principal point is centred."""
        focal = self.focal_per_width * self.width
        return (focal, focal, (self.width - 1) / 2.0, (self.height - 1) / 2.0)


def _check_range(name: str, value: Any, lo: float, hi: float, integer: bool = False) -> None:
    """Validate a (low, high) config pair inside [lo, hi]."""
    ok = isinstance(value, tuple) and len(value) == 2
    if ok and integer:
        ok = all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in value)
    if ok:
        ok = all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in value)
    if not ok or not lo <= value[0] <= value[1] <= hi:
        kind = "integers" if integer else "numbers"
        raise ValueError(
            f"{name} must be a (low, high) pair of {kind} in [{lo}, {hi}], got {value!r}"
        )


@dataclass(frozen=True)
class Scene:
    """One rendered RGB-D frame.

    Attributes:
        rgb: H x W x 3 uint8 colour image.
        depth: H x W float32, metres; exact z-depth (along the optical axis), > 0 everywhere,
            within [MIN_DEPTH_M, config.max_depth_m].
        sensor_depth: H x W float32, metres; equal to `depth` unless the config asked for
            sensor effects, then a Kinect-like measurement: 0 = missing, plus noise.
        intrinsics: (fx, fy, cx, cy) in pixels.
        seed: the seed it was generated from.
    """

    rgb: np.ndarray
    depth: np.ndarray
    sensor_depth: np.ndarray
    intrinsics: tuple[float, float, float, float]
    seed: int


def generate_scene(seed: int, config: SceneConfig = SceneConfig()) -> Scene:  # noqa: B008
    """Render one random indoor RGB-D frame, the same for the same seed and config.

    Args:
        seed: non-negative integer; the only source of randomness.
        config: image size, sensor effects and scene knobs.

    Returns:
        A `Scene` with `rgb` (H x W x 3 uint8), exact `depth` and `sensor_depth` (H x W
        float32 metres) and `intrinsics` (fx, fy, cx, cy in pixels).

    Raises:
        ValueError: `seed` is not a non-negative integer, or `config` is not a SceneConfig.
    """
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if not isinstance(config, SceneConfig):
        raise ValueError(f"config must be a SceneConfig, got {type(config).__name__}")
    layout_ss, image_ss, sensor_ss = np.random.SeedSequence(int(seed)).spawn(3)
    layout, geometry = _draw_view(int(seed), np.random.default_rng(layout_ss), config)
    shading = _shade(layout, geometry, config, np.random.default_rng(image_ss))
    depth = geometry.depth
    if config.sensor_effects:
        sensor = _kinect_depth(depth, shading, config, np.random.default_rng(sensor_ss))
    else:
        sensor = depth.copy()
    return Scene(
        rgb=shading.rgb,
        depth=depth,
        sensor_depth=sensor,
        intrinsics=config.intrinsics(),
        seed=int(seed),
    )


def _draw_view(seed: int, rng: np.random.Generator, config: SceneConfig):
    """Draw layouts until one has nothing nearer than MIN_DEPTH_M and shows furniture.

    A view is redrawn when a surface is closer than MIN_DEPTH_M, or when primitives cover
    under _MIN_OBJECT_COVERAGE of it (a bare wall or an empty corner); about 5 % of seeds
    need a second layout.
    """
    fallback = None
    for attempt in range(_MAX_CAMERA_ATTEMPTS):
        layout = _sample_layout(rng, config)
        geometry = _trace(layout, config)
        near_ok = float(geometry.depth.min()) >= MIN_DEPTH_M
        if near_ok and geometry.object_coverage >= _MIN_OBJECT_COVERAGE:
            return layout, geometry
        if near_ok and fallback is None:
            fallback = layout, geometry
        logger.debug(
            "seed %d layout %d rejected (nearest %.2f m, objects %.0f %%)",
            seed,
            attempt,
            geometry.depth.min(),
            100 * geometry.object_coverage,
        )
    if fallback is not None:
        return fallback
    logger.warning(
        "seed %d: clipping depth to %.2f m after %d layouts",
        seed,
        MIN_DEPTH_M,
        _MAX_CAMERA_ATTEMPTS,
    )
    np.maximum(geometry.depth, MIN_DEPTH_M, out=geometry.depth)
    return layout, geometry


# ============================================================================= textures


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
    s = _TEX_SIZE
    yy, xx = np.mgrid[0:s, 0:s] / s
    tex = {_T_FLAT: np.full((s, s), 0.5)}
    tex[_T_PLASTER] = _normalise(_fbm(rng, s, 4, 6))
    tex[_T_CONCRETE] = _normalise(_fbm(rng, s, 8, 5) + 0.35 * rng.random((s, s)))
    warp = _fbm(rng, s, 2, 4)
    grain = np.sin(2 * np.pi * (10 * xx + 1.5 * warp)) ** 2
    tex[_T_WOOD] = _normalise(0.6 * grain + 0.4 * warp + 0.15 * _fbm(rng, s, 32, 2))
    tex[_T_PLANKS] = _planks(rng, xx, yy, warp)
    tex[_T_TILES] = _tiles(rng, 4, 3, _fbm(rng, s, 8, 3))
    tex[_T_SMALL_TILES] = _tiles(rng, 8, 2, _fbm(rng, s, 16, 2))
    stripe = (np.floor(xx * 8) % 2) * 0.3 + 0.35 + 0.25 * (np.abs(xx * 64 % 8 - 4) < 0.5)
    tex[_T_STRIPES] = np.clip(stripe + 0.05 * _fbm(rng, s, 8, 3), 0, 1)
    tex[_T_PINSTRIPE] = np.where((xx * s) % 16 < 2, 0.2, 0.6) + 0.05 * _fbm(rng, s, 16, 2)
    weave = np.sin(2 * np.pi * 64 * xx) * np.sin(2 * np.pi * 64 * yy)
    tex[_T_FABRIC] = _normalise(0.4 * weave + _fbm(rng, s, 16, 3))
    tex[_T_CARPET] = _normalise(_fbm(rng, s, 32, 3) + 0.6 * rng.random((s, s)))
    veins = np.abs(np.sin(2 * np.pi * (2 * xx + 3 * yy + 1.5 * _fbm(rng, s, 4, 5))))
    tex[_T_MARBLE] = _normalise(veins**0.25 + 0.2 * _fbm(rng, s, 8, 3))
    tex[_T_BOOKS] = _book_spines_grey(rng)
    tex[_T_CHECKER] = ((np.floor(xx * 8) + np.floor(yy * 8)) % 2) * 0.5 + 0.25
    dots = np.hypot((xx * 16) % 1 - 0.5, (yy * 16) % 1 - 0.5) < 0.18
    tex[_T_DOTS] = np.where(dots, 0.2, 0.6)
    return tex


def _planks(rng: np.random.Generator, xx: np.ndarray, yy: np.ndarray, warp: np.ndarray):
    """Floor planks: 8 rows of 128-texel boards with grain, gaps and shade per board."""
    s = _TEX_SIZE
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
    s = _TEX_SIZE
    period = s // per_side
    iy, ix = np.mgrid[0:s, 0:s]
    tile = (iy // period) * per_side + ix // period
    shade = rng.uniform(0.65, 0.85, per_side * per_side)[tile] + 0.08 * noise
    line = ((iy % period) < grout) | ((ix % period) < grout)
    return np.clip(np.where(line, 0.15, shade), 0, 1)


def _book_spines_grey(rng: np.random.Generator) -> np.ndarray:
    """Vertical bands of random width and brightness, like a row of book spines."""
    s = _TEX_SIZE
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
    for index, name in ((_T_BRICK, "brick"), (_T_GRASS, "grass"), (_T_GRAVEL, "gravel")):
        image = getattr(skimage.data, name)().astype(np.float64) / 255.0
        if index == _T_BRICK:  # skimage's courses run vertically; walls want them level
            image = image.T
        out[index] = _normalise(resize(image, (_TEX_SIZE, _TEX_SIZE), anti_aliasing=True))
    return out


@functools.lru_cache(maxsize=1)
def _texture_bank() -> tuple[np.ndarray, np.ndarray]:
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
    for _ in range(_TEX_LEVELS):
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
        colour = _hsv(rng.uniform(0, 1), rng.uniform(0.3, 0.8), rng.uniform(0.25, 0.9))
        image[top:, x : x + width - 1] = colour
        band = int(rng.integers(top + 10, h - 20))
        image[band : band + 12, x + 2 : x + width - 3] = 0.85
        x += width
    return image


def _abstract_art(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A colourful abstract painting from three fBm fields: h x w x 3 sRGB in [0, 1]."""
    size = _TEX_SIZE
    channels = [_normalise(_fbm(rng, size, 2, 4)) for _ in range(3)]
    art = np.stack(channels, axis=-1)[:h, : min(w, size)]
    return np.pad(art, ((0, 0), (0, w - art.shape[1]), (0, 0)), mode="reflect")


def _hsv(hue: float, sat: float, val: float) -> tuple[float, float, float]:
    """HSV in [0, 1] to sRGB in [0, 1]."""
    i = int(hue * 6.0) % 6
    f = hue * 6.0 - math.floor(hue * 6.0)
    p, q, t = val * (1 - sat), val * (1 - f * sat), val * (1 - (1 - f) * sat)
    return [(val, t, p), (q, val, p), (p, val, t), (p, q, val), (t, p, val), (val, p, q)][i]


@functools.lru_cache(maxsize=1)
def _photo_bank() -> tuple[np.ndarray, np.ndarray]:
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
    for name in _PHOTO_NAMES:
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


_PHOTO_BOOKS = (4, 5)  # indices into _photo_bank of the book rows
_PHOTO_ART = (6, 7)  # indices into _photo_bank of the procedural paintings


# ============================================================================= layout


def _linear(rgb: tuple[float, float, float]) -> tuple[float, float, float]:
    """sRGB-ish colour in [0, 1] to linear reflectance."""
    return tuple(float(c) ** 2.2 for c in rgb)


def _yaw_matrix(yaw: float) -> np.ndarray:
    """Rotation about world +y by `yaw` radians; column 2 is (sin yaw, 0, cos yaw)."""
    c, s = math.cos(yaw), math.sin(yaw)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def _tilt_matrix(tilt: float) -> np.ndarray:
    """Rotation about local +x by `tilt` radians."""
    c, s = math.cos(tilt), math.sin(tilt)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


class _Builder:
    """Collects the materials and primitives of one layout (lives inside one call)."""

    def __init__(self) -> None:
        self.materials: list[tuple[Any, ...]] = []
        self.prims: list[tuple[Any, ...]] = []

    def material(
        self,
        tint: tuple[float, float, float],
        tex: int = _T_FLAT,
        tile_m: float = 1.0,
        contrast: float = 0.0,
        gloss: float = 0.0,
        emissive: float = 0.0,
        photo: int = -1,
        rng: np.random.Generator | None = None,
    ) -> int:
        """Add a material (tint in sRGB [0, 1], texture repeating every tile_m metres)."""
        offset = (0.0, 0.0) if rng is None else tuple(rng.uniform(0, _TEX_SIZE, 2))
        row = (_linear(tint), tex, _TEX_SIZE / tile_m, contrast, gloss, emissive, photo, offset)
        self.materials.append(row)
        return len(self.materials) - 1

    def box(self, center, half, mat: int, rot: np.ndarray | None = None, shadow: bool = True):
        """Oriented box: centre (3,), half extents (3,), rot 3x3 local-to-world."""
        rot = np.eye(3) if rot is None else rot
        self.prims.append((_BOX, tuple(center), rot, tuple(half), mat, shadow))

    def cylinder(
        self, x: float, z: float, y0: float, y1: float, r: float, mat: int, shadow: bool = True
    ):
        """Vertical cylinder of radius r from height y0 to y1 at (x, z)."""
        center = (x, (y0 + y1) / 2, z)
        self.prims.append((_CYLINDER, center, np.eye(3), (r, (y1 - y0) / 2, r), mat, shadow))

    def sphere(self, center, r: float, mat: int, shadow: bool = True):
        """Sphere of radius r."""
        self.prims.append((_SPHERE, tuple(center), np.eye(3), (r, r, r), mat, shadow))


class _Piece:
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


def _place(b: _Builder, piece: _Piece, x: float, z: float, yaw: float, y: float = 0.0):
    """Add a piece's parts to the builder at floor position (x, z), turned by yaw.

    Returns:
        The piece's supports in world terms: (x, z, half_x, half_z, height, yaw).
    """
    c, s = math.cos(yaw), math.sin(yaw)
    for kind, (lx, ly, lz), size, mat, part_yaw, tilt, shadow in piece.parts:
        wx, wz = x + c * lx + s * lz, z - s * lx + c * lz
        if kind == "box":
            rot = _yaw_matrix(yaw + part_yaw)
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
class _Opening:
    """A door or window cut into a wall (zero-thickness walls)."""

    wall: int  # room face: 0 (x=0), 1 (x=W), 4 (z=0), 5 (z=D)
    s0: float  # along-wall interval, metres (z for x-walls, x for z-walls)
    s1: float
    y0: float  # vertical interval, metres
    y1: float
    kind: str  # "door" (a corridor box behind) or "window" (sky at max depth)


_WALLS = (0, 1, 4, 5)
_PLANE_AXES = {0: (2, 1), 1: (0, 2), 2: (0, 1)}  # normal axis -> (u axis, v axis)


def _wall_frame(wall: int, room: tuple[float, float, float]):
    """(along axis, wall coordinate, inward normal xz, wall length) of a wall."""
    w, _, d = room
    return {
        0: (2, 0.0, (1.0, 0.0), d),
        1: (2, w, (-1.0, 0.0), d),
        4: (0, 0.0, (0.0, 1.0), w),
        5: (0, d, (0.0, -1.0), w),
    }[wall]


def _wall_point(wall: int, room, s: float, offset: float) -> tuple[float, float]:
    """Floor (x, z) at along-wall coordinate s, `offset` metres into the room."""
    axis, coord, (nx, nz), _ = _wall_frame(wall, room)
    if axis == 2:
        return coord + nx * offset, s
    return s, coord + nz * offset


class _FloorPlan:
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


def _footprint(piece: _Piece, yaw: float) -> tuple[float, float]:
    """Half extents in x and z of the axis-aligned bounds of a turned footprint."""
    c, s = abs(math.cos(yaw)), abs(math.sin(yaw))
    return c * piece.half_w + s * piece.half_d, s * piece.half_w + c * piece.half_d


@dataclass(frozen=True)
class _Layout:
    """Everything the renderer needs; arrays are float64 unless stated."""

    room: tuple[float, float, float]  # W (x), H (y), D (z), metres
    openings: tuple[_Opening, ...]
    corridors: np.ndarray  # n_openings x 2 x 3 box bounds behind doors (unused for windows)
    plane_normal: np.ndarray  # n_planes x 3 unit normals (room faces, corridors, windows)
    plane_axes: np.ndarray  # n_planes x 2 int: world axes used as texture (u, v)
    plane_mat: np.ndarray  # n_planes int material
    kind: np.ndarray  # n_prims int: _BOX, _CYLINDER, _SPHERE
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


def _sample_layout(rng: np.random.Generator, cfg: SceneConfig) -> _Layout:
    """Draw a furnished, lit room and a camera inside it."""
    b = _Builder()
    room = _sample_room(rng, cfg)
    mats = _room_materials(rng, b)
    openings = _sample_openings(rng, room)
    cam_pos, cam_rot = _sample_camera(rng, cfg, room)
    plan = _FloorPlan(room, (cam_pos[0], cam_pos[2]), clearance=0.9)
    corridors = _corridors(rng, room, openings, cam_pos, cfg.max_depth_m)
    _add_opening_trim(rng, b, room, openings, mats)
    _add_structure(rng, b, room, openings, plan, mats)
    supports = _add_furniture(rng, b, cfg, room, openings, plan, cam_pos, cam_rot)
    _add_clutter(rng, b, cfg, supports, plan, room)
    _add_wall_decor(rng, b, cfg, room, openings)
    lights, light_rgb = _add_lights(rng, b, cfg, room, plan)
    return _freeze(rng, b, room, openings, corridors, mats, lights, light_rgb, cam_pos, cam_rot)


def _sample_room(rng: np.random.Generator, cfg: SceneConfig) -> tuple[float, float, float]:
    """Room extents (W, H, D), shrunk so the farthest corner is within max depth."""
    w, d = rng.uniform(*cfg.room_size_m, 2)
    h = rng.uniform(*cfg.room_height_m)
    diag = math.sqrt(w * w + d * d + h * h)
    shrink = min(1.0, 0.95 * cfg.max_depth_m / diag)
    return float(max(w * shrink, 2.0)), float(h), float(max(d * shrink, 2.0))


def _room_materials(rng: np.random.Generator, b: _Builder) -> dict[str, int]:
    """Wall, floor, ceiling and trim materials."""
    pale = _hsv(rng.uniform(0, 1), rng.uniform(0.02, 0.25), rng.uniform(0.7, 0.95))
    wall_kind = rng.choice(4, p=[0.55, 0.2, 0.13, 0.12])
    if wall_kind == 0:
        wall = b.material(pale, _T_PLASTER, 2.0, rng.uniform(0.05, 0.15), rng=rng)
    elif wall_kind == 1:
        tex = int(rng.choice([_T_STRIPES, _T_PINSTRIPE, _T_DOTS]))
        wall = b.material(pale, tex, rng.uniform(0.8, 2.0), rng.uniform(0.1, 0.3), rng=rng)
    elif wall_kind == 2:
        brick = _hsv(rng.uniform(0.0, 0.08), rng.uniform(0.3, 0.6), rng.uniform(0.5, 0.8))
        wall = b.material(brick, _T_BRICK, rng.uniform(1.5, 2.5), 0.8, rng=rng)
    else:
        wall = b.material(pale, _T_CONCRETE, 3.0, rng.uniform(0.2, 0.4), rng=rng)
    floor_kind = rng.choice(5, p=[0.4, 0.2, 0.2, 0.1, 0.1])
    wood = _hsv(rng.uniform(0.05, 0.1), rng.uniform(0.4, 0.7), rng.uniform(0.35, 0.8))
    grey = _hsv(rng.uniform(0, 1), rng.uniform(0, 0.15), rng.uniform(0.4, 0.9))
    floor = [
        lambda: b.material(wood, _T_PLANKS, rng.uniform(1.2, 1.8), 0.7, 0.25, rng=rng),
        lambda: b.material(
            grey,
            int(rng.choice([_T_TILES, _T_CHECKER, _T_SMALL_TILES])),
            rng.uniform(1.6, 3.0),
            0.5,
            0.3,
            rng=rng,
        ),
        lambda: b.material(
            _hsv(rng.uniform(0, 1), rng.uniform(0.1, 0.5), rng.uniform(0.3, 0.7)),
            _T_CARPET,
            1.0,
            0.35,
            rng=rng,
        ),
        lambda: b.material(grey, _T_GRAVEL, rng.uniform(1.5, 3.0), 0.45, rng=rng),
        lambda: b.material(grey, _T_MARBLE, rng.uniform(1.5, 3.0), 0.4, 0.4, rng=rng),
    ][floor_kind]()
    ceiling = b.material(
        _hsv(0.1, rng.uniform(0, 0.06), rng.uniform(0.85, 0.97)), _T_PLASTER, 2.0, 0.06, rng=rng
    )
    corridor_tint = _hsv(rng.uniform(0, 1), rng.uniform(0.0, 0.3), rng.uniform(0.5, 0.85))
    corridor = b.material(corridor_tint, _T_PLASTER, 2.0, 0.1, rng=rng)
    trim = b.material(_hsv(0.1, rng.uniform(0, 0.1), rng.uniform(0.75, 0.95)), gloss=0.2)
    sky = b.material((0.85, 0.92, 1.0), emissive=rng.uniform(2.5, 5.0))
    return {
        "wall": wall,
        "floor": floor,
        "ceiling": ceiling,
        "corridor": corridor,
        "trim": trim,
        "sky": sky,
    }


def _sample_openings(rng: np.random.Generator, room) -> tuple[_Opening, ...]:
    """0-2 doors and 0-2 windows on distinct stretches of wall."""
    _, h, _ = room
    taken: dict[int, list[tuple[float, float]]] = {w: [] for w in _WALLS}
    openings = []
    wanted = ["door"] * int(rng.choice(3, p=[0.25, 0.55, 0.2]))
    wanted += ["window"] * int(rng.choice(3, p=[0.35, 0.45, 0.2]))
    for kind in wanted:
        for _ in range(10):
            wall = int(rng.choice(_WALLS))
            length = _wall_frame(wall, room)[3]
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
                openings.append(_Opening(wall, float(s0), float(s1), float(y0), float(y1), kind))
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
        axis, coord, (nx, nz), _ = _wall_frame(op.wall, room)
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


def _freeze(
    rng, b: _Builder, room, openings, corridors, mats, lights, light_rgb, cam_pos, cam_rot
) -> _Layout:
    """Turn the builder's lists into the layout's arrays."""
    normals, axes, plane_mat = [], [], []
    for code in range(6):  # room faces, seen from inside
        normal = np.zeros(3)
        normal[code // 2] = -1.0 if code % 2 else 1.0
        normals.append(normal)
        axes.append(_PLANE_AXES[code // 2])
        plane_mat.append({2: mats["floor"], 3: mats["ceiling"]}.get(code, mats["wall"]))
    for op in openings:  # 6 corridor faces per opening (windows use face 0 as the sky)
        for code in range(6):
            normal = np.zeros(3)
            normal[code // 2] = -1.0 if code % 2 else 1.0
            normals.append(normal)
            axes.append(_PLANE_AXES[code // 2])
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
    return _Layout(
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


# ----------------------------------------------------------------------------- materials


def _wood(rng: np.random.Generator, b: _Builder) -> int:
    colour = _hsv(rng.uniform(0.04, 0.11), rng.uniform(0.35, 0.75), rng.uniform(0.25, 0.85))
    return b.material(
        colour,
        _T_WOOD,
        rng.uniform(0.5, 1.2),
        rng.uniform(0.25, 0.5),
        gloss=rng.uniform(0.0, 0.25),
        rng=rng,
    )


def _laminate(rng: np.random.Generator, b: _Builder) -> int:
    value = float(rng.choice([0.08, 0.3, 0.6, 0.85, 0.93]))
    colour = _hsv(rng.uniform(0, 1), rng.uniform(0.0, 0.15), value)
    return b.material(colour, _T_CONCRETE, 2.0, 0.04, gloss=rng.uniform(0.1, 0.4), rng=rng)


def _metal(rng: np.random.Generator, b: _Builder) -> int:
    value = rng.uniform(0.15, 0.8)
    return b.material((value, value, value * 1.03), gloss=rng.uniform(0.5, 0.9))


def _fabric(rng: np.random.Generator, b: _Builder) -> int:
    colour = _hsv(rng.uniform(0, 1), rng.uniform(0.1, 0.6), rng.uniform(0.2, 0.85))
    tex = int(rng.choice([_T_FABRIC, _T_CARPET, _T_STRIPES, _T_PLASTER], p=[0.5, 0.2, 0.15, 0.15]))
    return b.material(colour, tex, rng.uniform(0.3, 1.0), rng.uniform(0.15, 0.4), rng=rng)


def _plastic(rng: np.random.Generator, b: _Builder) -> int:
    colour = _hsv(rng.uniform(0, 1), rng.uniform(0.4, 0.9), rng.uniform(0.35, 0.95))
    return b.material(colour, gloss=rng.uniform(0.2, 0.6))


def _dark_glossy(rng: np.random.Generator, b: _Builder) -> int:
    value = rng.uniform(0.02, 0.06)
    return b.material((value, value, value * 1.1), gloss=rng.uniform(0.6, 1.0))


def _furniture_material(rng: np.random.Generator, b: _Builder) -> int:
    kind = rng.choice(3, p=[0.55, 0.35, 0.1])
    return (_wood, _laminate, _metal)[kind](rng, b)


# ----------------------------------------------------------------------------- furniture


def _table(rng: np.random.Generator, b: _Builder, desk: bool = False) -> _Piece:
    w = rng.uniform(1.0, 1.6) if desk else rng.uniform(0.8, 1.8)
    d = min(w, rng.uniform(0.55, 0.75) if desk else rng.uniform(0.6, 1.0))
    h, top = rng.uniform(0.7, 0.78), rng.uniform(0.025, 0.05)
    top_mat = _furniture_material(rng, b)
    leg_mat = top_mat if rng.random() < 0.6 else _metal(rng, b)
    p = _Piece(w / 2, d / 2, h)
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


def _chair(rng: np.random.Generator, b: _Builder) -> _Piece:
    s, seat_h, th = rng.uniform(0.4, 0.5), rng.uniform(0.42, 0.48), 0.04
    back_h = rng.uniform(0.35, 0.5)
    frame = _furniture_material(rng, b)
    seat = frame if rng.random() < 0.5 else _fabric(rng, b)
    leg = rng.uniform(0.011, 0.02)
    p = _Piece(s / 2, s / 2, seat_h + back_h)
    p.box(0, seat_h - th / 2, 0, s / 2, th / 2, s / 2, seat)
    for sx in (-1, 1):
        for sz in (-1, 1):
            lx, lz = sx * (s / 2 - 1.5 * leg), sz * (s / 2 - 1.5 * leg)
            top = seat_h + back_h if sz < 0 else seat_h - th
            p.box(lx, top / 2, lz, leg, top / 2, leg, frame)
    p.box(0, seat_h + back_h * 0.7, -s / 2 + 1.5 * leg, s / 2 - leg, back_h * 0.28, 0.012, seat)
    return p


def _bookcase(rng: np.random.Generator, b: _Builder, max_h: float) -> _Piece:
    w, d = rng.uniform(0.6, 1.4), rng.uniform(0.28, 0.4)
    h, t, plinth = rng.uniform(1.1, max(1.2, min(2.1, max_h))), rng.uniform(0.018, 0.03), 0.08
    mat = _furniture_material(rng, b)
    p = _Piece(w / 2, d / 2, h)
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
    rng, b: _Builder, p: _Piece, x0: float, x1: float, y: float, room_h: float, depth: float
) -> None:
    """Fill a shelf level with blocks of books (colour pictures of spines on their fronts)."""
    x = x0 + rng.uniform(0.0, 0.1)
    pages = (0.9, 0.87, 0.78)
    while x < x1 - 0.06:
        width = min(rng.uniform(0.08, 0.35), x1 - x - 0.005)
        height = rng.uniform(0.6, 0.92) * room_h
        bd = rng.uniform(0.15, min(0.25, depth - 0.04))
        mat = b.material(pages, photo=int(rng.choice(_PHOTO_BOOKS)), rng=rng)
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


def _cabinet(rng: np.random.Generator, b: _Builder, max_h: float) -> _Piece:
    w, d, h = rng.uniform(0.6, 1.8), rng.uniform(0.4, 0.6), rng.uniform(0.5, min(1.0, max_h))
    plinth = rng.uniform(0.04, 0.1)
    mat = _furniture_material(rng, b)
    front = mat if rng.random() < 0.6 else _furniture_material(rng, b)
    handle = _metal(rng, b)
    p = _Piece(w / 2, d / 2, h)
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


def _wardrobe(rng: np.random.Generator, b: _Builder, max_h: float) -> _Piece:
    w, d = rng.uniform(0.8, 2.0), rng.uniform(0.55, 0.65)
    h = rng.uniform(min(1.8, max_h - 0.1), max_h)
    mat = _furniture_material(rng, b)
    handle = _metal(rng, b)
    p = _Piece(w / 2, d / 2, h)
    p.box(0, h / 2, 0, w / 2, h / 2, d / 2 - 0.01, mat)
    doors = max(2, round(w / 0.5))
    dw = w / doors
    for i in range(doors):
        cx = -w / 2 + (i + 0.5) * dw
        p.box(cx, h / 2 + 0.03, d / 2 - 0.005, dw / 2 - 0.004, h / 2 - 0.05, 0.006, mat)
        side = -1 if i % 2 else 1
        p.box(cx + side * (dw / 2 - 0.06), h * 0.5, d / 2 + 0.015, 0.008, 0.15, 0.01, handle)
    return p


def _sofa(rng: np.random.Generator, b: _Builder) -> _Piece:
    w, d = rng.uniform(1.5, 2.3), rng.uniform(0.8, 0.95)
    seat_h, back_h = rng.uniform(0.38, 0.45), rng.uniform(0.75, 0.9)
    arm_w, arm_h = rng.uniform(0.1, 0.22), rng.uniform(0.55, 0.68)
    cloth, legs = _fabric(rng, b), _wood(rng, b)
    p = _Piece(w / 2, d / 2, back_h)
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
            _fabric(rng, b),
            yaw=rng.uniform(-0.3, 0.3),
            tilt=-0.25,
        )
    return p


def _bed(rng: np.random.Generator, b: _Builder) -> _Piece:
    w, length = rng.uniform(0.9, 1.8), rng.uniform(1.95, 2.1)
    frame_h, matt_h, head_h = (
        rng.uniform(0.25, 0.35),
        rng.uniform(0.18, 0.25),
        rng.uniform(0.8, 1.2),
    )
    frame = _furniture_material(rng, b)
    p = _Piece(w / 2 + 0.02, length / 2, head_h)
    p.box(0, frame_h / 2, 0, w / 2, frame_h / 2, length / 2, frame)
    sheet = b.material(
        _hsv(rng.uniform(0, 1), rng.uniform(0, 0.1), rng.uniform(0.8, 0.95)),
        _T_FABRIC,
        0.5,
        0.1,
        rng=rng,
    )
    p.box(0, frame_h + matt_h / 2, 0, w / 2 - 0.02, matt_h / 2, length / 2 - 0.03, sheet)
    p.box(
        0,
        frame_h + matt_h / 2 + 0.02,
        0.15 * length,
        w / 2 + 0.01,
        matt_h / 2 + 0.025,
        0.35 * length,
        _fabric(rng, b),
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


def _desk(rng: np.random.Generator, b: _Builder) -> _Piece:
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
        _laminate(rng, b),
        yaw=rng.uniform(-0.15, 0.15),
    )
    p.supports = [(p.half_w * 0.6, 0.0, p.half_w * 0.3, p.half_d - 0.05, h)]
    return p


def _tv_stand(rng: np.random.Generator, b: _Builder, max_h: float) -> _Piece:
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


def _floor_lamp(rng: np.random.Generator, b: _Builder) -> _Piece:
    base_r, height, shade_r = (
        rng.uniform(0.12, 0.18),
        rng.uniform(1.4, 1.75),
        rng.uniform(0.14, 0.22),
    )
    metal = _metal(rng, b)
    shade = b.material(
        _hsv(rng.uniform(0.05, 0.15), rng.uniform(0.05, 0.3), 0.9), _T_FABRIC, 0.3, 0.15, rng=rng
    )
    p = _Piece(shade_r, shade_r, height)
    p.cyl(0, 0, 0.0, 0.03, base_r, metal)
    p.cyl(0, 0, 0.03, height - 0.2, rng.uniform(0.01, 0.016), metal)
    p.cyl(0, 0, height - 0.26, height, shade_r, shade)
    return p


def _plant(rng: np.random.Generator, b: _Builder) -> _Piece:
    r, h = rng.uniform(0.12, 0.25), rng.uniform(0.25, 0.5)
    pot = b.material(
        _hsv(rng.uniform(0.0, 0.1), rng.uniform(0.2, 0.7), rng.uniform(0.3, 0.85)),
        _T_CONCRETE,
        1.0,
        0.15,
        rng=rng,
    )
    leaves = b.material(
        _hsv(rng.uniform(0.22, 0.38), rng.uniform(0.4, 0.8), rng.uniform(0.3, 0.6)),
        _T_GRASS,
        rng.uniform(0.3, 0.6),
        0.7,
        rng=rng,
    )
    p = _Piece(r, r, h + 2 * r)
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


def _stool(rng: np.random.Generator, b: _Builder) -> _Piece:
    r, h = rng.uniform(0.15, 0.2), rng.uniform(0.45, 0.75)
    mat, legs = _furniture_material(rng, b), _metal(rng, b)
    p = _Piece(r, r, h)
    p.cyl(0, 0, h - 0.04, h, r, mat)
    n = int(rng.integers(3, 5))
    for i in range(n):
        a = 2 * math.pi * i / n
        p.cyl(0.7 * r * math.cos(a), 0.7 * r * math.sin(a), 0.0, h - 0.04, 0.012, legs)
    return p


def _round_table(rng: np.random.Generator, b: _Builder) -> _Piece:
    r, h = rng.uniform(0.35, 0.6), rng.uniform(0.7, 0.76)
    mat = _furniture_material(rng, b)
    p = _Piece(r, r, h)
    p.cyl(0, 0, h - 0.03, h, r, mat)
    p.cyl(0, 0, 0.03, h - 0.03, rng.uniform(0.025, 0.05), mat)
    p.cyl(0, 0, 0.0, 0.03, rng.uniform(0.2, 0.3), mat)
    p.support(0, 0, r * 0.6, r * 0.6, h)
    return p


def _cartons(rng: np.random.Generator, b: _Builder) -> _Piece:
    card = b.material(
        _hsv(rng.uniform(0.07, 0.1), rng.uniform(0.35, 0.55), rng.uniform(0.5, 0.75)),
        _T_CONCRETE,
        1.0,
        0.1,
        rng=rng,
    )
    w, d = rng.uniform(0.3, 0.6), rng.uniform(0.25, 0.5)
    p = _Piece(w / 2 + 0.05, d / 2 + 0.05, 0.0)
    y = 0.0
    for _ in range(int(rng.integers(1, 4))):
        bh = rng.uniform(0.2, 0.4)
        p.box(
            rng.uniform(-0.04, 0.04),
            y + bh / 2,
            rng.uniform(-0.04, 0.04),
            w / 2,
            bh / 2,
            d / 2,
            card,
            yaw=rng.uniform(-0.2, 0.2),
        )
        y += bh
        w, d = w * rng.uniform(0.7, 1.0), d * rng.uniform(0.7, 1.0)
    p.height = y
    return p


def _pole(rng: np.random.Generator, b: _Builder, room_h: float) -> _Piece:
    """A coat stand, or a pipe from floor to ceiling: thin structures."""
    metal = _metal(rng, b)
    if rng.random() < 0.5:
        r = rng.uniform(0.02, 0.05)
        p = _Piece(r, r, room_h)
        p.cyl(0, 0, 0.0, room_h, r, metal)
        return p
    h = rng.uniform(1.65, 1.85)
    p = _Piece(0.2, 0.2, h)
    p.cyl(0, 0, 0.0, 0.03, 0.2, metal)
    p.cyl(0, 0, 0.03, h, rng.uniform(0.012, 0.02), metal)
    p.sphere(0, h, 0, 0.03, metal)
    for i in range(3):
        a = 2 * math.pi * i / 3
        p.sphere(0.1 * math.cos(a), h - 0.12, 0.1 * math.sin(a), 0.025, metal)
    return p


def _ball(rng: np.random.Generator, b: _Builder) -> _Piece:
    r = rng.uniform(0.1, 0.2)
    p = _Piece(r, r, 2 * r)
    p.sphere(0, r, 0, r, _plastic(rng, b))
    return p


def _bin(rng: np.random.Generator, b: _Builder) -> _Piece:
    r = rng.uniform(0.12, 0.18)
    p = _Piece(r, r, 0.4)
    p.cyl(
        0,
        0,
        0.0,
        rng.uniform(0.3, 0.45),
        r,
        _plastic(rng, b) if rng.random() < 0.6 else _metal(rng, b),
    )
    return p


_WALL_PIECES = ("bookcase", "cabinet", "sofa", "bed", "desk", "tv", "wardrobe")
_WALL_WEIGHTS = (0.22, 0.22, 0.14, 0.1, 0.12, 0.1, 0.1)
_FREE_PIECES = (
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
_FREE_WEIGHTS = (0.2, 0.07, 0.12, 0.1, 0.1, 0.07, 0.09, 0.05, 0.07, 0.08, 0.05)


def _make_piece(
    name: str, rng: np.random.Generator, b: _Builder, max_h: float, room_h: float
) -> _Piece:
    """Build a named furniture piece."""
    makers = {
        "bookcase": lambda: _bookcase(rng, b, max_h),
        "cabinet": lambda: _cabinet(rng, b, max_h),
        "wardrobe": lambda: _wardrobe(rng, b, max_h),
        "tv": lambda: _tv_stand(rng, b, max_h),
        "pole": lambda: _pole(rng, b, room_h),
        "table": lambda: _table(rng, b),
        "round_table": lambda: _round_table(rng, b),
        "chair": lambda: _chair(rng, b),
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


# ----------------------------------------------------------------------------- placement


def _wall_yaw(wall: int, room) -> float:
    """Yaw that turns a piece's front (+z) into the room from this wall."""
    _, _, (nx, nz), _ = _wall_frame(wall, room)
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


def _add_opening_trim(rng, b: _Builder, room, openings, mats) -> None:
    """Door frames (some doors closed), window frames, mullions, sills and curtains."""
    for op in openings:
        width, mid = op.s1 - op.s0, (op.s0 + op.s1) / 2
        x, z = _wall_point(op.wall, room, mid, 0.0)
        fw, depth = rng.uniform(0.04, 0.08), rng.uniform(0.015, 0.045)
        p = _Piece(width / 2 + fw, depth, op.y1)
        trim = mats["trim"] if rng.random() < 0.6 else _wood(rng, b)
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
                leaf = _wood(rng, b) if rng.random() < 0.5 else _laminate(rng, b)
                p.box(0, op.y1 / 2, -0.04, width / 2 + 0.005, op.y1 / 2, 0.02, leaf)
                p.sphere(width / 2 - 0.08, 1.0, -0.01, 0.03, _metal(rng, b))
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
        _place(b, p, x, z, _wall_yaw(op.wall, room))


def _curtains(rng, b: _Builder, p: _Piece, op: _Opening, width: float, fw: float) -> None:
    cloth = _fabric(rng, b)
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
    p.box(0, top + 0.01, 0.12, width / 2 + fw + cw, 0.012, 0.012, _metal(rng, b))


def _add_structure(rng, b: _Builder, room, openings, plan: _FloorPlan, mats) -> None:
    """Wall columns (making the room non-rectangular), a ceiling beam, baseboards."""
    w, h, d = room
    for _ in range(int(rng.choice(3, p=[0.55, 0.3, 0.15]))):
        wall = int(rng.choice(_WALLS))
        length = _wall_frame(wall, room)[3]
        along, out = rng.uniform(0.3, 1.2), rng.uniform(0.2, 0.7)
        s = float(rng.choice([along / 2, length - along / 2, rng.uniform(along, length - along)]))
        if _blocked(openings, wall, s - along / 2, s + along / 2, h):
            continue
        x, z = _wall_point(wall, room, s, out / 2)
        yaw = _wall_yaw(wall, room)
        p = _Piece(along / 2, out / 2, h)
        p.box(0, h / 2, 0, along / 2, h / 2, out / 2, mats["wall"])
        hx, hz = _footprint(p, yaw)
        if plan.fits(x, z, hx - 0.004, hz - 0.004, margin=0.0):
            plan.add(x, z, hx, hz)
            _place(b, p, x, z, yaw)
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
        for wall in _WALLS:
            if any(op.wall == wall and op.kind == "door" for op in openings):
                continue
            length = _wall_frame(wall, room)[3]
            x, z = _wall_point(wall, room, length / 2, 0.006)
            p = _Piece(length / 2, 0.006, bh)
            p.box(0, bh / 2, 0, length / 2, bh / 2, 0.006, mats["trim"], shadow=False)
            _place(b, p, x, z, _wall_yaw(wall, room))


def _visible_wall_weights(room, cam_rot: np.ndarray) -> np.ndarray:
    """Weights favouring walls the camera faces (the wall behind it gets little)."""
    fx, fz = cam_rot[0, 2], cam_rot[2, 2]
    weights = []
    for wall in _WALLS:
        _, _, (nx, nz), _ = _wall_frame(wall, room)
        weights.append(max(0.05, 0.6 - (nx * fx + nz * fz)))
    weights = np.asarray(weights)
    return weights / weights.sum()


def _try_wall(
    rng, b: _Builder, room, openings, plan: _FloorPlan, piece: _Piece, weights: np.ndarray
):
    """Stand a piece against a wall; returns its supports, or None if nothing fitted."""
    for _ in range(12):
        wall = int(rng.choice(_WALLS, p=weights))
        length = _wall_frame(wall, room)[3]
        if 2 * piece.half_w > length - 0.1:
            continue
        s = rng.uniform(piece.half_w + 0.02, length - piece.half_w - 0.02)
        if _blocked(openings, wall, s - piece.half_w, s + piece.half_w, piece.height):
            continue
        x, z = _wall_point(wall, room, s, piece.half_d + rng.uniform(0.01, 0.03))
        yaw = _wall_yaw(wall, room)
        hx, hz = _footprint(piece, yaw)
        if plan.fits(x, z, hx, hz):
            plan.add(x, z, hx, hz)
            return _place(b, piece, x, z, yaw)
    return None


def _free_spot(rng, room, cam_pos, cam_rot) -> tuple[float, float]:
    """A floor point, usually inside the camera's view 1.3-5 m ahead."""
    w, _, d = room
    if rng.random() < 0.75:
        yaw = math.atan2(cam_rot[0, 2], cam_rot[2, 2]) + rng.uniform(-0.5, 0.5)
        dist = rng.uniform(1.3, 5.0)
        return cam_pos[0] + dist * math.sin(yaw), cam_pos[2] + dist * math.cos(yaw)
    return rng.uniform(0.3, w - 0.3), rng.uniform(0.3, d - 0.3)


def _try_free(rng, b: _Builder, room, plan: _FloorPlan, piece: _Piece, cam_pos, cam_rot, name: str):
    """Stand a piece somewhere on the floor; returns its supports, or None."""
    for _ in range(15):
        x, z = _free_spot(rng, room, cam_pos, cam_rot)
        yaw = rng.uniform(-math.pi, math.pi)
        if rng.random() < 0.7:
            yaw = float(rng.integers(4)) * math.pi / 2 + rng.uniform(-0.15, 0.15)
        hx, hz = _footprint(piece, yaw)
        if not plan.fits(x, z, hx, hz):
            continue
        chairs = _chairs_around(rng, b, plan, piece, x, z, yaw) if name == "table" else []
        plan.add(x, z, hx, hz)
        for chair, cx, cz, cyaw, chx, chz in chairs:
            plan.add(cx, cz, chx, chz)
            _place(b, chair, cx, cz, cyaw)
        return _place(b, piece, x, z, yaw)
    return None


def _chairs_around(rng, b: _Builder, plan: _FloorPlan, table: _Piece, x, z, yaw):
    """Chairs facing a table from up to four sides, each clear of everything else."""
    chairs = []
    c, s = math.cos(yaw), math.sin(yaw)
    for side in range(4):
        if rng.random() > 0.55:
            continue
        chair = _chair(rng, b)
        if side < 2:
            lx = rng.uniform(-0.3, 0.3) * table.half_w
            lz = (1 if side == 0 else -1) * (table.half_d + chair.half_d * 0.4)
            cyaw = yaw + (math.pi if side == 0 else 0.0)
        else:
            lz = rng.uniform(-0.2, 0.2) * table.half_d
            lx = (1 if side == 2 else -1) * (table.half_w + chair.half_d * 0.4)
            cyaw = yaw + (-math.pi / 2 if side == 2 else math.pi / 2)
        cx, cz = x + c * lx + s * lz, z - s * lx + c * lz
        chx, chz = _footprint(chair, cyaw)
        if plan.fits(cx, cz, chx, chz):
            chairs.append((chair, cx, cz, cyaw, chx, chz))
    return chairs


def _add_furniture(rng, b: _Builder, cfg: SceneConfig, room, openings, plan, cam_pos, cam_rot):
    """Wall-standing and free-standing furniture; returns all clutter supports."""
    _, h, _ = room
    max_h = h - 0.45  # stay below the ceiling lights
    weights = _visible_wall_weights(room, cam_rot)
    supports = []
    for _ in range(int(rng.integers(cfg.furniture[0], cfg.furniture[1] + 1))):
        if rng.random() < 0.5:
            name = str(rng.choice(_WALL_PIECES, p=_WALL_WEIGHTS))
            piece = _make_piece(name, rng, b, max_h, h)
            placed = _try_wall(rng, b, room, openings, plan, piece, weights)
        else:
            name = str(rng.choice(_FREE_PIECES, p=_FREE_WEIGHTS))
            piece = _make_piece(name, rng, b, max_h, h)
            placed = _try_free(rng, b, room, plan, piece, cam_pos, cam_rot, name)
        supports.extend(placed or [])
    return supports


# ----------------------------------------------------------------------------- clutter


def _clutter_piece(rng, b: _Builder, photo_textures: bool) -> _Piece:
    """One small object (books, laptop, cup, bottle, vase, fruit bowl, ball, box, frame)."""
    kind = int(rng.choice(9, p=[0.18, 0.06, 0.14, 0.12, 0.1, 0.08, 0.1, 0.14, 0.08]))
    if kind == 0:  # stack of books
        p, y = _Piece(0.12, 0.16, 0.0), 0.0
        for _ in range(int(rng.integers(1, 5))):
            bh = rng.uniform(0.02, 0.05)
            p.box(
                rng.uniform(-0.02, 0.02),
                y + bh / 2,
                rng.uniform(-0.02, 0.02),
                rng.uniform(0.07, 0.11),
                bh / 2,
                rng.uniform(0.1, 0.15),
                _plastic(rng, b),
                yaw=rng.uniform(-0.4, 0.4),
            )
            y += bh
        p.height = y
    elif kind == 1:  # laptop, lid leaning back by `lean` radians about the hinge
        p, lean = _Piece(0.17, 0.13, 0.24), rng.uniform(0.1, 0.45)
        shell = _laminate(rng, b)
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
        mat = _plastic(rng, b) if rng.random() < 0.6 else _laminate(rng, b)
        p = _Piece(r, r, hgt)
        p.cyl(0, 0, 0.0, hgt, r, mat)
        if kind == 3:
            p.cyl(0, 0, hgt, hgt + 0.06, 0.012, mat)
    elif kind == 5:  # fruit bowl
        r = rng.uniform(0.1, 0.15)
        p = _Piece(r, r, 0.1)
        p.cyl(0, 0, 0.0, 0.05, r, _laminate(rng, b))
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
        p = _Piece(r, r, 2 * r)
        p.sphere(0, r, 0, r, _plastic(rng, b))
    elif kind == 7:  # box
        hx, hy, hz = rng.uniform(0.03, 0.15, 3)
        p = _Piece(1.3 * max(hx, hz), 1.3 * max(hx, hz), 2 * hy)
        p.box(
            0,
            hy,
            0,
            hx,
            hy,
            hz,
            _plastic(rng, b) if rng.random() < 0.5 else _wood(rng, b),
            yaw=rng.uniform(-0.8, 0.8),
        )
    else:  # standing picture frame
        photo = (
            int(rng.integers(len(_PHOTO_NAMES))) if photo_textures else int(rng.choice(_PHOTO_ART))
        )
        p = _Piece(0.1, 0.06, 0.2)
        p.box(0, 0.075, 0, 0.1, 0.07, 0.01, b.material((0.1, 0.1, 0.1), photo=photo), tilt=-0.2)
    return p


def _add_clutter(rng, b: _Builder, cfg: SceneConfig, supports, plan: _FloorPlan, room) -> None:
    """Small objects on tables, cabinets and shelves, and a few on the floor."""
    areas = np.array([4 * s[2] * s[3] for s in supports])
    taken: list[list[tuple[float, float, float]]] = [[] for _ in supports]
    for _ in range(int(rng.integers(cfg.clutter[0], cfg.clutter[1] + 1))):
        piece = _clutter_piece(rng, b, cfg.photo_textures)
        radius = math.hypot(piece.half_w, piece.half_d)
        if len(supports) == 0 or rng.random() < 0.15:
            x, z = rng.uniform(0.3, room[0] - 0.3), rng.uniform(0.3, room[2] - 0.3)
            if plan.fits(x, z, radius, radius):
                plan.add(x, z, radius, radius)
                _place(b, piece, x, z, rng.uniform(-math.pi, math.pi))
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
        _place(
            b,
            piece,
            sx + c * lx + s * lz,
            sz - s * lx + c * lz,
            yaw + rng.uniform(-math.pi, math.pi),
            y,
        )


def _add_wall_decor(rng, b: _Builder, cfg: SceneConfig, room, openings) -> None:
    """Framed pictures on the walls and a rug on the floor."""
    w, h, d = room
    photos, sizes = _photo_bank()
    taken: dict[int, list[tuple[float, float]]] = {wall: [] for wall in _WALLS}
    for _ in range(int(rng.choice(4, p=[0.15, 0.35, 0.3, 0.2]))):
        if cfg.photo_textures and rng.random() < 0.8:
            photo = int(rng.integers(len(_PHOTO_NAMES)))
        else:
            photo = int(rng.choice(_PHOTO_ART))
        ph = rng.uniform(0.35, 0.9)
        pw = ph * sizes[photo, 1] / sizes[photo, 0]
        wall = int(rng.choice(_WALLS))
        length = _wall_frame(wall, room)[3]
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
        frame = _wood(rng, b) if rng.random() < 0.5 else _laminate(rng, b)
        p = _Piece(pw / 2 + fw, 0.03, yc + ph / 2)
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
        x, z = _wall_point(wall, room, s, 0.0)
        _place(b, p, x, z, _wall_yaw(wall, room))
    if rng.random() < 0.5:
        rw, rd = rng.uniform(1.0, min(2.5, w - 0.6)), rng.uniform(0.7, min(1.8, d - 0.6))
        tex = int(rng.choice([_T_CARPET, _T_STRIPES, _T_FABRIC, _T_CHECKER]))
        colour = _hsv(rng.uniform(0, 1), rng.uniform(0.2, 0.7), rng.uniform(0.25, 0.8))
        rug = b.material(colour, tex, rng.uniform(0.4, 1.2), rng.uniform(0.3, 0.6), rng=rng)
        b.box(
            (
                rng.uniform(rw / 2 + 0.3, w - rw / 2 - 0.3),
                0.005,
                rng.uniform(rd / 2 + 0.3, d - rd / 2 - 0.3),
            ),
            (rw / 2, 0.005, rd / 2),
            rug,
            _yaw_matrix(rng.uniform(-0.1, 0.1)),
            shadow=False,
        )


def _prim_bounds(b: _Builder) -> tuple[np.ndarray, np.ndarray]:
    """Centres and half extents (n x 3) of the axis-aligned bounds of every primitive."""
    if not b.prims:
        return np.zeros((0, 3)), np.zeros((0, 3))
    centers = np.array([p[1] for p in b.prims], dtype=np.float64)
    extents = np.stack([np.abs(p[2]) @ np.asarray(p[3], dtype=np.float64) for p in b.prims])
    return centers, extents


def _add_lights(rng, b: _Builder, cfg: SceneConfig, room, plan: _FloorPlan):
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
                pos[0], pos[2], pos[1] + globe_r * 0.9, h, 0.006, _metal(rng, b), shadow=False
            )
    return np.array(positions), np.array(rgbs)


# ============================================================================= ray casting

# Shadow-map camera of a light: image x -> world +x, image y -> world +z, optical axis -> -y.
_LIGHT_ROT = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])


@functools.lru_cache(maxsize=16)
def _ray_grid(h: int, w: int, focal: float, cx: float, cy: float) -> tuple[np.ndarray, ...]:
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


def _directions(rot: np.ndarray, grid_x: np.ndarray, grid_y: np.ndarray):
    """World-space ray directions rot @ (x/z, y/z, 1), three H x W float32 arrays.

    A travel of t along one changes the camera z by exactly t, so ray parameters are
    z-depths.
    """
    r = rot.tolist()
    return tuple(_combine(r[i][0], grid_x, r[i][1], grid_y, r[i][2]) for i in range(3))


def _screen_rects(corners, origin, rot, focal, cx, cy, h, w) -> np.ndarray:
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


def _cast(t, sid, dirs, origin, layout: _Layout, rects, select, sid_base: int) -> None:
    """Update nearest z-depths `t` and surface ids `sid` (if given) with primitives.

    Every selected primitive is tested only inside its screen rectangle.
    """
    dx, dy, dz = dirs
    origin = [float(v) for v in origin]
    for k in np.flatnonzero(select & (rects[:, 1] > rects[:, 0]) & (rects[:, 3] > rects[:, 2])):
        r0, r1, c0, c1 = rects[k].tolist()
        sl = (slice(r0, r1), slice(c0, c1))
        kind, center, rot, half = layout.params[k]
        if kind == _BOX:
            tk = _hit_box(dx[sl], dy[sl], dz[sl], origin, center, rot, half)
        elif kind == _CYLINDER:
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


def _open_walls(t, sid, dirs, origin, layout: _Layout, focal, cx, cy, max_depth) -> None:
    """Replace wall hits inside doors by the corridor behind, inside windows by the sky."""
    h, w = t.shape
    room = layout.room
    for i, op in enumerate(layout.openings):
        axis, coord, (nx, nz), _ = _wall_frame(op.wall, room)
        corners = np.array([[*_wall_point(op.wall, room, s, 0.0)] for s in (op.s0, op.s1)])
        pts = np.array([[x, y, z] for x, z in corners for y in (op.y0, op.y1)])
        rect = _screen_rects(pts[None], origin, layout.cam_rot, focal, cx, cy, h, w)[0]
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
class _Geometry:
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


def _trace(layout: _Layout, cfg: SceneConfig) -> _Geometry:
    """Cast one ray per pixel: nearest surface, its depth, normal, material and uv."""
    h, w = cfg.height, cfg.width
    focal, _, cx, cy = cfg.intrinsics()
    grid_x, grid_y, inv_norm = _ray_grid(h, w, focal, cx, cy)
    dirs = _directions(layout.cam_rot, grid_x, grid_y)
    origin = layout.cam_pos
    t, code = _box_exit(dirs, origin, (0.0, 0.0, 0.0), layout.room)
    sid = code
    _open_walls(t, sid, dirs, origin, layout, focal, cx, cy, cfg.max_depth_m)
    n_planes = len(layout.plane_mat)
    rects = _screen_rects(layout.corners, origin, layout.cam_rot, focal, cx, cy, h, w)
    _cast(t, sid, dirs, origin, layout, rects, np.ones(len(layout.kind), bool), n_planes)
    t = np.minimum(t, np.float32(cfg.max_depth_m))
    points = np.stack([np.float32(origin[i]) + t * dirs[i] for i in range(3)]).reshape(3, -1)
    normal, mat, uv, picture_uv = _surface_attributes(layout, points, sid.ravel(), n_planes)
    coverage = float(np.count_nonzero(sid >= n_planes)) / sid.size
    return _Geometry(t, dirs, inv_norm, points, normal, mat, uv, picture_uv, coverage)


def _surface_attributes(layout: _Layout, points, sid, n_planes):
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
            u_axis, v_axis = _PLANE_AXES[axis]
            uv[0, idx] = points[u_axis, idx]
            uv[1, idx] = points[v_axis, idx]
            mat[idx] = layout.plane_mat[s]
    for prim_kind, fn in (
        (_BOX, _box_attributes),
        (_CYLINDER, _cylinder_attributes),
        (_SPHERE, _sphere_attributes),
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


# ============================================================================= shading


@dataclass(frozen=True)
class _Shading:
    """The rendered image plus what the sensor model needs to know per pixel (flat HW)."""

    rgb: np.ndarray  # H x W x 3 uint8
    albedo_lum: np.ndarray  # HW float32 linear luminance of the material tint (pictures: texel)
    gloss: np.ndarray  # HW float32 specular strength
    facing: np.ndarray  # HW float32 |N . V|, 1 = facing the camera
    emissive: np.ndarray  # HW bool light fittings and sky


def _sample_textures(layout: _Layout, geo: _Geometry, focal: float, facing) -> np.ndarray:
    """Albedo (3 x HW float32, linear) from the mip-mapped texture bank and pictures."""
    atlas, offsets = _texture_bank()
    m = geo.mat
    tpm = layout.texels_per_m[m]
    # texels covered by one pixel, worse at grazing angles; picks the mip level
    footprint = geo.depth.ravel() * (tpm / np.float32(focal)) / np.maximum(facing, 0.2)
    level = np.log2(np.maximum(footprint, 1.0)) + np.float32(0.5)
    level = np.minimum(level.astype(np.int32), _TEX_LEVELS - 1)  # >= 0 since footprint >= 1
    size = _MIP_SIZE[level]
    period_mask = 2 * size - 1  # mirrored repeat has period 2 size (a power of two)
    scale = _MIP_SCALE[level] * tpm
    texel = []
    for i in range(2):
        position = (geo.uv[i] + layout.tex_offset_m[i, m]) * scale
        coord = position.astype(np.int32)
        coord -= position < 0  # floor, not truncation, below zero
        coord &= period_mask
        # second half of the period counts back down: x XOR (2s - 1) = 2s - 1 - x
        texel.append(coord ^ (((coord >> _MIP_BITS[level]) & 1) * period_mask))
    grey = atlas[offsets[level] + (layout.tex[m] * size + texel[1]) * size + texel[0]]
    shade = np.float32(1.0) + layout.contrast[m] * (np.float32(2.0) * grey - np.float32(1.0))
    albedo = layout.tint_t[:, m] * shade
    pic = np.flatnonzero(geo.picture_uv[0] >= 0)
    if pic.size:
        photos, sizes = _photo_bank()
        p = layout.photo[m[pic]]
        hw = sizes[p]
        row = np.minimum((geo.picture_uv[1, pic] * hw[:, 0]).astype(np.int64), hw[:, 0] - 1)
        col = np.minimum((geo.picture_uv[0, pic] * hw[:, 1]).astype(np.int64), hw[:, 1] - 1)
        albedo[:, pic] = photos[p, np.maximum(row, 0), np.maximum(col, 0)].T
    return albedo


def _shadow_map(layout: _Layout, light: np.ndarray, size: int):
    """Exponential shadow map of one light (Annen et al. 2008), pre-filtered.

    A camera at the light looks straight down; each texel stores the z-depth below the light
    of the nearest shadow caster, capped at the floor. The map is box-filtered in the
    exp(c z) domain and kept as z_eff = log(filtered) / c, so one bilinear lookup gives
    smooth penumbrae instead of texel staircases.

    Returns:
        (z_eff, focal, centre): (size + 2)^2 float32 map with a far (lit) border, the map's
        focal length and principal point in texels.
    """
    focal = (size / 2.0) / math.tan(math.radians(_SHADOW_HALF_FOV_DEG))
    c = (size - 1) / 2.0
    grid_x, grid_y, _ = _ray_grid(size, size, focal, c, c)
    dirs = _directions(_LIGHT_ROT, grid_x, grid_y)
    depth = np.full((size, size), np.inf, np.float32)
    rects = _screen_rects(layout.corners, light, _LIGHT_ROT, focal, c, c, size, size)
    _cast(depth, None, dirs, light, layout, rects, layout.casts_shadow, 0)
    floor = float(light[1])  # depth of the floor below the light
    weight = np.exp(_ESM_SHARPNESS * (np.minimum(depth, floor).astype(np.float64) - floor))
    padded = np.pad(weight, 1, mode="edge")
    weight = (padded[:-2] + padded[1:-1] + padded[2:]) / 3.0  # 3x3 box filter
    weight = (weight[:, :-2] + weight[:, 1:-1] + weight[:, 2:]) / 3.0
    z_eff = np.full((size + 2, size + 2), _FAR_M, np.float32)
    z_eff[1:-1, 1:-1] = floor + np.log(weight) / _ESM_SHARPNESS
    return z_eff, focal, c


def _lit_fraction(shadow, light, points, normal) -> np.ndarray:
    """Fraction (HW float32) of each point that sees the light: min(1, exp(c (z_eff - z))).

    The lookup position moves 1.5 texels along the normal's horizontal part, so walls and
    box sides do not shadow themselves; the compared depth z does not move, so penumbrae on
    the floor (where the map holds the floor depth) keep their width.
    """
    z_eff, focal, c = shadow
    lx, ly, lz = (float(v) for v in light)
    z = np.float32(ly) - points[1]
    offset = np.float32(0.01) + np.maximum(z, 0) * np.float32(1.5 / focal)
    valid = z > np.float32(0.05)
    inv = np.float32(focal) / np.maximum(z, np.float32(0.05))
    u = (points[0] + normal[0] * offset - np.float32(lx)) * inv + np.float32(c + 1)
    v = (points[2] + normal[2] * offset - np.float32(lz)) * inv + np.float32(c + 1)
    u = np.clip(u, 0, np.float32(z_eff.shape[1] - 1.001))
    v = np.clip(v, 0, np.float32(z_eff.shape[0] - 1.001))
    u0, v0 = u.astype(np.int32), v.astype(np.int32)
    fu, fv = u - u0, v - v0
    width = z_eff.shape[1]
    flat = z_eff.ravel()
    base = v0 * np.int32(width) + u0
    z00, z01, z10, z11 = (flat[base + step] for step in (0, 1, width, width + 1))
    top = z00 + fu * (z01 - z00)
    bottom = z10 + fu * (z11 - z10)
    z_map = top + fv * (bottom - top)
    bias = np.float32(0.02)  # metres
    lit = np.exp(np.minimum(np.float32(_ESM_SHARPNESS) * (z_map - z + bias), 0))
    return np.maximum(lit, ~valid)  # points above the light's map plane count as lit


def _radiance(layout: _Layout, geo: _Geometry, albedo, cfg: SceneConfig) -> np.ndarray:
    """Linear radiance 3 x HW: ambient + Lambert and Blinn terms of each light, shadowed."""
    nx, ny, nz = geo.normal
    px, py, pz = geo.points
    diffuse = np.zeros((3, px.size), np.float32)
    gloss = layout.gloss[geo.mat]
    shiny = np.flatnonzero(gloss > 0)
    specular = np.zeros((3, shiny.size), np.float32)
    inv_norm = geo.inv_norm.ravel()[shiny]
    view = [-d.ravel()[shiny] * inv_norm for d in geo.dirs]
    for light, rgb in zip(layout.lights.tolist(), layout.light_rgb.tolist(), strict=True):
        lx, ly, lz = np.float32(light[0]) - px, np.float32(light[1]) - py, np.float32(light[2]) - pz
        dist2 = lx * lx + ly * ly + lz * lz
        dist = np.sqrt(dist2)
        # Lambert cosine over a soft inverse-square falloff (1 + d^2 / 6 m^2)
        energy = np.maximum(nx * lx + ny * ly + nz * lz, 0) / (
            dist * (1.0 + dist2 * np.float32(1 / 6))
        )
        if cfg.shadows:
            shadow = _shadow_map(layout, np.asarray(light), cfg.shadow_map_px)
            energy *= _lit_fraction(shadow, light, geo.points, geo.normal)
        for c in range(3):
            diffuse[c] += np.float32(rgb[c]) * energy
        if shiny.size:
            inv_dist = 1.0 / dist[shiny]
            hx, hy, hz = (
                lx[shiny] * inv_dist + view[0],
                ly[shiny] * inv_dist + view[1],
                lz[shiny] * inv_dist + view[2],
            )
            n_dot_h = np.maximum(nx[shiny] * hx + ny[shiny] * hy + nz[shiny] * hz, 0)
            n_dot_h /= np.sqrt(hx * hx + hy * hy + hz * hz)
            for _ in range(5):  # Blinn exponent 32
                n_dot_h *= n_dot_h
            spec = np.float32(2.0) * gloss[shiny] * n_dot_h * np.sqrt(energy[shiny])
            for c in range(3):
                specular[c] += np.float32(rgb[c]) * spec
    ambient = np.float32(layout.ambient) * (np.float32(0.85) + np.float32(0.15) * ny)
    diffuse += ambient
    radiance = albedo * diffuse
    radiance[:, shiny] += specular
    glow = np.flatnonzero(layout.emissive[geo.mat] > 0)
    if glow.size:
        m = geo.mat[glow]
        radiance[:, glow] += layout.emissive[m] * layout.tint[m].T
    return radiance


@functools.lru_cache(maxsize=1)
def _tone_curve() -> np.ndarray:
    """Exposure-scaled radiance (0..8, 512 steps per unit) to display value 0..255."""
    x = np.arange(4096, dtype=np.float64) / 512.0
    curve = (1.0 - np.exp(-1.6 * x)) ** (1 / 2.2) * 255.0
    curve = curve.astype(np.float32)
    curve.flags.writeable = False
    return curve


@functools.lru_cache(maxsize=8)
def _radius2(h: int, w: int) -> np.ndarray:
    """Squared distance from the image centre, 1 at the corners: H x W float32."""
    yy = (np.arange(h) - (h - 1) / 2) / ((h - 1) / 2 + 1e-9)
    xx = (np.arange(w) - (w - 1) / 2) / ((w - 1) / 2 + 1e-9)
    r2 = ((yy[:, None] ** 2 + xx[None, :] ** 2) / 2).astype(np.float32)
    r2.flags.writeable = False
    return r2


def _film(radiance: np.ndarray, layout: _Layout, cfg: SceneConfig, rng) -> np.ndarray:
    """Expose, tone-map and (optionally) add vignetting, white balance, blur and noise."""
    h, w = cfg.height, cfg.width
    look = layout.look
    lum = radiance[:, ::3].T @ np.array([0.2126, 0.7152, 0.0722], np.float32)
    key = float(np.exp(np.mean(np.log(np.clip(lum, 1e-3, 50.0)))))
    gain = 0.25 / key * look["exposure"]
    image = radiance.reshape(3, h, w) * np.float32(gain)
    if cfg.camera_effects:
        image *= 1.0 - np.float32(look["vignette"]) * _radius2(h, w)
        image[0] *= np.float32(look["wb_r"])
        image[2] *= np.float32(look["wb_b"])
    index = np.minimum(image * np.float32(512.0), np.float32(4095)).astype(np.int32)
    image = _tone_curve()[index]
    if cfg.camera_effects:
        a = np.float32(look["blur"] * 0.25)  # [a, 1 - 2a, a] in each direction
        padded = np.pad(image, ((0, 0), (1, 1), (1, 1)), mode="edge")
        image = (1 - 2 * a) * padded[:, :, 1:-1] + a * (padded[:, :, :-2] + padded[:, :, 2:])
        image = (1 - 2 * a) * image[:, 1:-1] + a * (image[:, :-2] + image[:, 2:])
        # uniform noise with the standard deviation look["noise"] (4x cheaper than normal)
        noise = rng.random(image.shape, dtype=np.float32) - np.float32(0.5)
        image += noise * np.float32(look["noise"] * math.sqrt(12.0))
    image = np.clip(image + np.float32(0.5), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(image.transpose(1, 2, 0))


def _shade(layout: _Layout, geo: _Geometry, cfg: SceneConfig, rng) -> _Shading:
    """Texture, light and film the traced view."""
    focal = cfg.intrinsics()[0]
    view_cos = -(geo.normal * np.stack(geo.dirs).reshape(3, -1)).sum(0) * geo.inv_norm.ravel()
    facing = np.abs(view_cos)
    albedo = _sample_textures(layout, geo, focal, facing)
    radiance = _radiance(layout, geo, albedo, cfg)
    rgb = _film(radiance, layout, cfg, rng)
    # the sensor sees a material's overall darkness (its tint), not texture detail such as
    # grout or plank gaps; pictures keep their per-pixel colour
    weights = np.array([0.2126, 0.7152, 0.0722], np.float32)
    lum = (layout.tint @ weights)[geo.mat]
    pic = np.flatnonzero(geo.picture_uv[0] >= 0)
    lum[pic] = weights @ albedo[:, pic]
    return _Shading(rgb, lum, layout.gloss[geo.mat], facing, layout.emissive[geo.mat] > 0)


# ============================================================================= sensor model


def _kinect_depth(depth: np.ndarray, shading: _Shading, cfg: SceneConfig, rng) -> np.ndarray:
    """A Kinect-v1-like measurement of `depth` (H x W float32 m): holes (0) and noise.

    Holes: the IR projector's shadow beside depth edges (projector 7.5 cm to the right, so
    background pixels just left of a nearer surface), very dark, glossy, grazing, far and
    emitting surfaces (windows, lamps), and dropped pixels on depth discontinuities, all
    grown into blobs by a smooth random field. Noise: Gaussian disparity noise of 0.07 px
    then quantisation to 1/8 px at 580 px focal, so the error grows with depth squared
    (about 3 mm at 1 m, 4.5 cm at 4 m).
    """
    h, w = depth.shape
    focal = cfg.intrinsics()[0]
    disparity = np.float32(focal * _KINECT_BASELINE_M) / depth  # px in this image
    g = disparity - np.arange(w, dtype=np.float32)
    right_max = np.maximum.accumulate(g[:, ::-1], axis=1)[:, ::-1]
    shadowed = np.zeros((h, w), bool)
    shadowed[:, :-1] = right_max[:, 1:] > g[:, :-1] + 0.5
    rel_jump = np.zeros((h, w), np.float32)
    rel_jump[:, 1:] = np.abs(np.diff(depth, axis=1)) / depth[:, 1:]
    rel_jump[1:, :] = np.maximum(rel_jump[1:, :], np.abs(np.diff(depth, axis=0)) / depth[1:, :])
    far = cfg.sensor_range_m
    probability = np.maximum.reduce(
        [
            np.clip((0.035 - shading.albedo_lum) / 0.03, 0, 1).reshape(h, w) * 0.95,
            (0.12 * shading.gloss + 0.6 * shading.gloss * shading.facing**16).reshape(h, w),
            np.clip((0.2 - shading.facing) / 0.15, 0, 1).reshape(h, w),
            np.clip((depth - 0.85 * far) / (0.3 * far), 0, 1),
            shading.emissive.reshape(h, w).astype(np.float32),
            np.where(rel_jump > 0.04, np.float32(0.6), np.float32(0)),
        ]
    )
    field = 0.75 * _smooth_noise(rng, h, w, 6) + 0.25 * rng.random((h, w), dtype=np.float32)
    holes = shadowed | (field < probability)
    native = _KINECT_FOCAL_640_PX * _KINECT_BASELINE_M  # disparity (px) x depth (m) at 640 px
    noise = rng.standard_normal((h, w), dtype=np.float32) * np.float32(_KINECT_DISPARITY_NOISE_PX)
    d = np.float32(native) / depth + noise
    d = np.maximum(
        np.round(d / _KINECT_DISPARITY_STEP_PX) * _KINECT_DISPARITY_STEP_PX,
        _KINECT_DISPARITY_STEP_PX,
    )
    measured = np.minimum(np.float32(native) / d, np.float32(cfg.max_depth_m))
    return np.where(holes, np.float32(0), measured).astype(np.float32)


def _smooth_noise(rng, h: int, w: int, cell: int) -> np.ndarray:
    """Uniform noise on a coarse grid (one value per `cell` px), bilinearly upsampled."""
    gh, gw = h // cell + 2, w // cell + 2
    coarse = rng.random((gh, gw), dtype=np.float32)
    y = np.arange(h, dtype=np.float32) / cell
    x = np.arange(w, dtype=np.float32) / cell
    y0, x0 = y.astype(np.int64), x.astype(np.int64)
    fy, fx = (y - y0)[:, None], (x - x0)[None, :]
    top = coarse[y0][:, x0] * (1 - fx) + coarse[y0][:, x0 + 1] * fx
    bottom = coarse[y0 + 1][:, x0] * (1 - fx) + coarse[y0 + 1][:, x0 + 1] * fx
    return top * (1 - fy) + bottom * fy
