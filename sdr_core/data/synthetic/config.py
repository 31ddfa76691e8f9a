"""What a synthetic scene renders: `SceneConfig` and the depth limits."""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any

from ...camera import NYU_FOCAL_PER_WIDTH

MIN_DEPTH_M = 0.5
"""No surface is ever closer than this to the camera (the Kinect's near limit)."""


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
