"""`generate_scene`: draw a view, trace it, shade it and (optionally) sense it."""

from __future__ import annotations

import logging
import numbers
from dataclasses import dataclass

import numpy as np

from .config import MIN_DEPTH_M, SceneConfig
from .kinect import kinect_depth
from .layout import sample_layout
from .raycast import trace_view
from .shading import shade_view

logger = logging.getLogger(__name__)

_MAX_CAMERA_ATTEMPTS = 8  # layouts drawn at most for one seed (see _draw_view)
_MIN_OBJECT_COVERAGE = 0.1  # views where primitives fill less of the image are redrawn


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
    shading = shade_view(layout, geometry, config, np.random.default_rng(image_ss))
    depth = geometry.depth
    if config.sensor_effects:
        sensor = kinect_depth(depth, shading, config, np.random.default_rng(sensor_ss))
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
        layout = sample_layout(rng, config)
        geometry = trace_view(layout, config)
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
