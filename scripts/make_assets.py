"""Render the example RGB-D scenes in assets/ and the contact sheet docs/gallery.png.

    python scripts/make_assets.py [--assets assets] [--gallery docs/gallery.png]

Every example comes from `sdr_core.data.synthetic.generate_scene` at the default 228x304
size, so the files are reproducible from their seeds. Each one is written as

    assets/<name>.png           RGB, 8-bit
    assets/<name>_depth.png     depth, 16-bit PNG, millimetres, 0 = missing
    assets/<name>_depth_gt.png  exact depth, only for examples rendered with sensor effects
                                (their <name>_depth.png is the Kinect-like measurement)

and listed in assets/examples.json (a list; file paths are relative to that file's
folder). The descriptions were written by looking at the renders: if the generator
changes, re-run this script, look at docs/gallery.png and update them.

Run from the repository root with the package importable (`pip install -e .` or
`PYTHONPATH=.`).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

# Run as `python scripts/<name>.py` from the repository root without installing the package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sdr_core.data.io import write_depth_png  # noqa: E402
from sdr_core.data.synthetic import SceneConfig, generate_scene  # noqa: E402
from sdr_core.viz import colorize_depth, side_by_side  # noqa: E402

# (name, seed, sensor_effects, title, description)
EXAMPLES = [
    (
        "living_room",
        1,
        False,
        "Living room",
        "A round pedestal table with a globe and a cup casts a soft shadow on a plank floor; "
        "a bookcase stands against the wall, a window with a purple curtain on the right and "
        "a pink striped rug in front.",
    ),
    (
        "study",
        12,
        False,
        "Study",
        "A bookcase, a table with bottles and chairs, a coat stand and a floor lamp on a "
        "tiled floor, under two ceiling lights: thin poles and chair legs in front of a far "
        "wall with an abstract painting.",
    ),
    (
        "home_office",
        31,
        False,
        "Home office",
        "A desk with a black monitor and keyboard, a green chair and a carton between two "
        "bookcases on a checkered floor.",
    ),
    (
        "brick_loft",
        37,
        False,
        "Brick loft",
        "A brick wall with a framed cat photograph and a television on a cabinet; in front, "
        "a table crowded with small objects, chairs and a bar stool.",
    ),
    (
        "tiled_studio",
        42,
        False,
        "Tiled studio",
        "Bookcase, round table, floor lamp, a desk with a monitor and a tall wardrobe around "
        "a large tiled floor.",
    ),
    (
        "bedroom",
        46,
        False,
        "Bedroom",
        "Two beds under a rocket photograph, a bookcase and a box on a wooden floor, a "
        "ceiling beam and a pendant lamp.",
    ),
    (
        "dining_table",
        10,
        False,
        "Dining table",
        "A table with chairs, a cup and a ball on a tiled floor with a green rug, a sofa "
        "behind: many thin legs close to the camera.",
    ),
    (
        "open_door",
        3,
        False,
        "Open door",
        "A plain room seen towards an open door: the corridor behind it makes a large depth "
        "step at the frame; a small cabinet and a laptop in the foreground.",
    ),
    (
        "kinect_office",
        38,
        True,
        "Office (Kinect holes)",
        "An office with a bright window, a television, desks and a thin pole, with "
        "Kinect-like sensor effects: depth is missing on the window, on dark and glossy "
        "surfaces, in the projector's shadow beside depth edges and on the edges "
        "themselves, and the rest is noisy. The exact depth is in kinect_office_depth_gt.png; "
        "use this one for hole filling.",
    ),
    (
        "kinect_workroom",
        2,
        True,
        "Workroom (Kinect holes)",
        "A bookcase under an abstract painting, a desk, stacked cartons, a window and a dark "
        "door, with Kinect-like sensor effects (see kinect_office); exact depth in "
        "kinect_workroom_depth_gt.png.",
    ),
]


def _write_example(
    folder: Path, name: str, seed: int, sensor: bool, title: str, description: str
) -> tuple[dict, np.ndarray]:
    config = SceneConfig(sensor_effects=sensor)
    scene = generate_scene(seed, config)
    Image.fromarray(scene.rgb).save(folder / f"{name}.png", optimize=True)
    write_depth_png(folder / f"{name}_depth.png", scene.sensor_depth)
    entry = {
        "name": name,
        "title": title,
        "description": description,
        "image": f"{name}.png",
        "depth": f"{name}_depth.png",
        "depth_units": "mm",
        "intrinsics": [round(v, 4) for v in scene.intrinsics],
        "height": config.height,
        "width": config.width,
        "seed": seed,
        "sensor_effects": sensor,
    }
    if sensor:
        write_depth_png(folder / f"{name}_depth_gt.png", scene.depth)
        entry["gt_depth"] = f"{name}_depth_gt.png"
        entry["missing_fraction"] = round(float((scene.sensor_depth == 0).mean()), 4)
    lo, hi = (float(v) for v in np.percentile(scene.depth, [1, 99]))
    panels = [scene.rgb, colorize_depth(scene.depth, lo, hi)]
    labels = [title, f"depth {lo:.1f}-{hi:.1f} m"]
    if sensor:
        panels.append(colorize_depth(scene.sensor_depth, lo, hi, invalid_color=(0, 0, 0)))
        labels.append("sensor depth, black = missing")
    return entry, side_by_side(panels, labels)


def _grid(rows: list[np.ndarray], columns: int, gap: int = 8) -> np.ndarray:
    """Tile equally wide panels row-major, `columns` per row, on white."""
    height = max(r.shape[0] for r in rows)
    width = max(r.shape[1] for r in rows)
    cells = [
        np.pad(
            r,
            ((0, height - r.shape[0] + gap), (0, width - r.shape[1] + gap), (0, 0)),
            constant_values=255,
        )
        for r in rows
    ]
    cells += [np.full_like(cells[0], 255)] * (-len(cells) % columns)
    lines = [np.concatenate(cells[i : i + columns], axis=1) for i in range(0, len(cells), columns)]
    return np.concatenate(lines, axis=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assets", type=Path, default=Path("assets"))
    parser.add_argument("--gallery", type=Path, default=Path("docs/gallery.png"))
    args = parser.parse_args()
    args.assets.mkdir(parents=True, exist_ok=True)
    entries, rows = [], []
    for example in EXAMPLES:
        entry, row = _write_example(args.assets, *example)
        entries.append(entry)
        rows.append(row)
        print(f"wrote {example[0]} (seed {example[1]})")
    (args.assets / "examples.json").write_text(json.dumps(entries, indent=2) + "\n")
    args.gallery.parent.mkdir(parents=True, exist_ok=True)
    plain = _grid([r for r, e in zip(rows, EXAMPLES, strict=True) if not e[2]], columns=2)
    sensed = _grid([r for r, e in zip(rows, EXAMPLES, strict=True) if e[2]], columns=1)
    width = max(plain.shape[1], sensed.shape[1])
    sheet = np.concatenate(
        [
            np.pad(g, ((0, 0), (0, width - g.shape[1]), (0, 0)), constant_values=255)
            for g in (plain, sensed)
        ],
        axis=0,
    )
    Image.fromarray(sheet).save(args.gallery, optimize=True)
    total = sum(p.stat().st_size for p in args.assets.iterdir() if p.is_file())
    print(f"wrote {args.gallery} {sheet.shape[1]}x{sheet.shape[0]}; assets {total / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
