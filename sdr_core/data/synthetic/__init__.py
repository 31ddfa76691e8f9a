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
when the view check (`scene._draw_view`: nothing nearer than MIN_DEPTH_M, enough furniture in
view) passes at one size and not at another (1 seed in 30 between 228x304 and 97x131).
The texture and photo banks are built once per process from a fixed seed
(`functools.lru_cache`, read-only arrays).

Speed: numpy only, vectorised over pixels; each primitive is intersected only inside its
screen rectangle, and shadows come from one small exponential shadow map per light. See
`benchmarks/bench_synthetic.py`.

The package, one module per stage (each imports only the ones before it):

- `config`: `SceneConfig` and the depth limits;
- `textures`: the grey texture bank and the picture bank;
- `builder`: materials and primitives, furniture pieces, walls, openings, the frozen `Layout`;
- `furniture`: materials and one builder per furniture piece or clutter object;
- `layout`: sampling a room, its openings, camera, furniture, clutter, decor and lights;
- `raycast`: analytic ray casting (depth, normals, materials, texture coordinates);
- `shading`: textures, lights, shadow maps and the film;
- `kinect`: the Kinect-v1-like sensor model;
- `scene`: `generate_scene`, which runs them in order.
"""

from __future__ import annotations

from .config import MIN_DEPTH_M, NYU_FOCAL_PER_WIDTH, SceneConfig
from .scene import Scene, generate_scene

__all__ = [
    "MIN_DEPTH_M",
    "NYU_FOCAL_PER_WIDTH",
    "Scene",
    "SceneConfig",
    "generate_scene",
]
