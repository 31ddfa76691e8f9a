"""Kinect-v1-like depth sensor model: holes and disparity-domain noise."""

from __future__ import annotations

import numpy as np

from .config import SceneConfig
from .shading import Shading

_KINECT_BASELINE_M = 0.075  # IR projector to IR camera distance
_KINECT_FOCAL_640_PX = 580.0  # IR camera focal length at 640 px wide (disparity units)
_KINECT_DISPARITY_STEP_PX = 1.0 / 8.0  # disparity quantisation of the Kinect v1
_KINECT_DISPARITY_NOISE_PX = 0.07  # 1-sigma disparity noise (Nguyen et al. 2012 at 60 deg)


def kinect_depth(depth: np.ndarray, shading: Shading, cfg: SceneConfig, rng) -> np.ndarray:
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
