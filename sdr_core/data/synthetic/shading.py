"""Shading and film: textures, lights with shadow maps, then the camera's film.

Mip-mapped textures, Lambert and Blinn lighting with exponential shadow maps, then
exposure, tone curve, vignetting, white balance, blur and noise.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from .builder import Layout
from .config import SceneConfig
from .raycast import Geometry, cast_primitives, ray_directions, ray_grid, screen_rects
from .textures import MIP_BITS, MIP_SCALE, MIP_SIZE, TEX_LEVELS, photo_bank, texture_bank

_FAR_M = 1e4  # "nothing there" depth of shadow-map borders (finite, so interpolation works)


_SHADOW_HALF_FOV_DEG = 68.0  # each light's shadow map looks straight down with this half FOV
_ESM_SHARPNESS = 30.0  # 1/m; exp shadow maps: a receiver 10 cm behind its caster gets 5 % light


# Shadow-map camera of a light: image x -> world +x, image y -> world +z, optical axis -> -y.
_LIGHT_ROT = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])


@dataclass(frozen=True)
class Shading:
    """The rendered image plus what the sensor model needs to know per pixel (flat HW)."""

    rgb: np.ndarray  # H x W x 3 uint8
    albedo_lum: np.ndarray  # HW float32 linear luminance of the material tint (pictures: texel)
    gloss: np.ndarray  # HW float32 specular strength
    facing: np.ndarray  # HW float32 |N . V|, 1 = facing the camera
    emissive: np.ndarray  # HW bool light fittings and sky


def _sample_textures(layout: Layout, geo: Geometry, focal: float, facing) -> np.ndarray:
    """Albedo (3 x HW float32, linear) from the mip-mapped texture bank and pictures."""
    atlas, offsets = texture_bank()
    m = geo.mat
    tpm = layout.texels_per_m[m]
    # texels covered by one pixel, worse at grazing angles; picks the mip level
    footprint = geo.depth.ravel() * (tpm / np.float32(focal)) / np.maximum(facing, 0.2)
    level = np.log2(np.maximum(footprint, 1.0)) + np.float32(0.5)
    level = np.minimum(level.astype(np.int32), TEX_LEVELS - 1)  # >= 0 since footprint >= 1
    size = MIP_SIZE[level]
    period_mask = 2 * size - 1  # mirrored repeat has period 2 size (a power of two)
    scale = MIP_SCALE[level] * tpm
    texel = []
    for i in range(2):
        position = (geo.uv[i] + layout.tex_offset_m[i, m]) * scale
        coord = position.astype(np.int32)
        coord -= position < 0  # floor, not truncation, below zero
        coord &= period_mask
        # second half of the period counts back down: x XOR (2s - 1) = 2s - 1 - x
        texel.append(coord ^ (((coord >> MIP_BITS[level]) & 1) * period_mask))
    grey = atlas[offsets[level] + (layout.tex[m] * size + texel[1]) * size + texel[0]]
    shade = np.float32(1.0) + layout.contrast[m] * (np.float32(2.0) * grey - np.float32(1.0))
    albedo = layout.tint_t[:, m] * shade
    pic = np.flatnonzero(geo.picture_uv[0] >= 0)
    if pic.size:
        photos, sizes = photo_bank()
        p = layout.photo[m[pic]]
        hw = sizes[p]
        row = np.minimum((geo.picture_uv[1, pic] * hw[:, 0]).astype(np.int64), hw[:, 0] - 1)
        col = np.minimum((geo.picture_uv[0, pic] * hw[:, 1]).astype(np.int64), hw[:, 1] - 1)
        albedo[:, pic] = photos[p, np.maximum(row, 0), np.maximum(col, 0)].T
    return albedo


def _shadow_map(layout: Layout, light: np.ndarray, size: int):
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
    grid_x, grid_y, _ = ray_grid(size, size, focal, c, c)
    dirs = ray_directions(_LIGHT_ROT, grid_x, grid_y)
    depth = np.full((size, size), np.inf, np.float32)
    rects = screen_rects(layout.corners, light, _LIGHT_ROT, focal, c, c, size, size)
    cast_primitives(depth, None, dirs, light, layout, rects, layout.casts_shadow, 0)
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


def _radiance(layout: Layout, geo: Geometry, albedo, cfg: SceneConfig) -> np.ndarray:
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


def _film(radiance: np.ndarray, layout: Layout, cfg: SceneConfig, rng) -> np.ndarray:
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


def shade_view(layout: Layout, geo: Geometry, cfg: SceneConfig, rng) -> Shading:
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
    return Shading(rgb, lum, layout.gloss[geo.mat], facing, layout.emissive[geo.mat] > 0)
