"""Render the propagation mask growing from one centre point: a strip per scene.

For the model card's mask-shape section (checkpoints/README.md): one measurement at the image
centre (``sdr_core.evaluate.centre_point``), the first MSPN layer's mask after a few
iterations, and a 3x nearest-neighbour zoom of the front at iteration 3, where a stride-2
checkerboard in the guidance features would show as dots. Rows: held-out scenes (seeds from
``EVAL_SEED_START``) and the Middlebury scene.

    python scripts/mask_strip.py --out docs/mask_strip.png
    python scripts/mask_strip.py --checkpoints runs/x --mde-checkpoint checkpoints/mde.safetensors
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image

# Run as `python scripts/<name>.py` from the repository root without installing the package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sdr_core import load_pipeline  # noqa: E402
from sdr_core.d0_sources import with_aliases  # noqa: E402
from sdr_core.evaluate import (  # noqa: E402
    INIT_SOURCES,
    centre_point,
    heldout_scenes,
    initial_depth,
    middlebury_scenes,
)
from sdr_core.viz import colorize_mask, draw_points, side_by_side  # noqa: E402

ITERATIONS = (1, 2, 3, 4, 6, 10)
ZOOM_AT, ZOOM_HALF, ZOOM = 3, 28, 3


def _zoom(mask: np.ndarray, row: int, col: int) -> np.ndarray:
    """The mask around (row, col), magnified ZOOM x by repeating pixels (no smoothing)."""
    top = int(np.clip(row - ZOOM_HALF, 0, mask.shape[0] - 2 * ZOOM_HALF))
    left = int(np.clip(col - ZOOM_HALF, 0, mask.shape[1] - 2 * ZOOM_HALF))
    window = mask[top : top + 2 * ZOOM_HALF, left : left + 2 * ZOOM_HALF]
    return colorize_mask(window).repeat(ZOOM, axis=0).repeat(ZOOM, axis=1)


def strip(pipe, scene, init_source: str) -> np.ndarray:
    """One scene's row: image with the point, masks after ITERATIONS, the zoomed front."""
    sparse = centre_point(scene.depth)
    init = initial_depth(pipe, scene, init_source)
    masks = {}
    for state in pipe.refine_steps(
        scene.rgb, sparse, init_depth=init, schedule=(max(ITERATIONS), 0)
    ):
        masks[state.iteration] = state.mask
    row, col = (int(v[0]) for v in np.nonzero(sparse))
    panels = [draw_points(scene.rgb, sparse, radius=3, color=(255, 40, 40))]
    labels = [scene.name.replace("synthetic_", "scene ")]
    for n in ITERATIONS:
        panels.append(colorize_mask(np.clip(masks[n], 0, 1)))
        labels.append(f"iteration {n}")
    panels.append(_zoom(np.clip(masks[ZOOM_AT], 0, 1), row, col))
    labels.append(f"it. {ZOOM_AT}, {ZOOM}x")
    return side_by_side(panels, labels)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoints", default=None, help="default: the shipped checkpoints")
    parser.add_argument("--mde-checkpoint", default=None)
    parser.add_argument("--init-source", choices=with_aliases(INIT_SOURCES), default="metric")
    parser.add_argument("--n-scenes", type=int, default=3)
    parser.add_argument("--out", default="docs/mask_strip.png")
    args = parser.parse_args()
    pipe = load_pipeline(
        device="cpu", checkpoint_dir=args.checkpoints, mde_checkpoint=args.mde_checkpoint
    )
    scenes = [*heldout_scenes(args.n_scenes), *middlebury_scenes()]
    rows = [strip(pipe, scene, args.init_source) for scene in scenes]
    width = max(r.shape[1] for r in rows)
    canvas = np.full((sum(r.shape[0] for r in rows) + 6 * (len(rows) - 1), width, 3), 255, np.uint8)
    top = 0
    for r in rows:
        canvas[top : top + r.shape[0], : r.shape[1]] = r
        top += r.shape[0] + 6
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(canvas).save(args.out, optimize=True)
    print(f"wrote {args.out} ({canvas.shape[1]} x {canvas.shape[0]} px)")


if __name__ == "__main__":
    main()
