"""The mask-shape diagnostic: does the propagation mask follow the image?

From one measurement at a scene's centre, a few first-layer iterations grow the mask; a mask
that floods a square of one window radius per iteration, whatever the image, fills its
bounding box and is the same in every scene, while the paper's masks follow image structure
(Fig. 9). :func:`sdr_core.evaluate.run_evaluation` reports it per split; both names are
importable from :mod:`sdr_core.evaluate` too.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np

from sdr_core.eval_scenes import SceneLike, initial_depth

if TYPE_CHECKING:
    from sdr_core.pipeline import SDRPipeline

__all__ = ["centre_point", "mask_shape"]


def centre_point(depth: np.ndarray) -> np.ndarray:
    """Sparse depth with one measurement: the valid pixel nearest the image centre.

    Args:
        depth: H x W ground truth, metres; 0 = missing; at least one valid pixel.

    Returns:
        H x W float32 metres, 0 everywhere but that pixel.
    """
    gt = np.asarray(depth, dtype=np.float32)
    rows, cols = np.nonzero(gt > 0)
    if rows.size == 0:
        raise ValueError("the depth map has no valid pixel for the centre point")
    height, width = gt.shape
    nearest = int(np.argmin((rows - height // 2) ** 2 + (cols - width // 2) ** 2))
    out = np.zeros_like(gt)
    out[rows[nearest], cols[nearest]] = gt[rows[nearest], cols[nearest]]
    return out


def mask_shape(
    pipe: SDRPipeline,
    scenes: Iterable[SceneLike],
    iterations: int = 6,
    threshold: float = 0.5,
    init_source: str = "mde",
    seed: int = 0,
) -> dict[str, Any]:
    """Does the propagation mask follow the image? The shape grown from one centre point.

    Each scene gets one measurement at its centre (:func:`centre_point`) and ``iterations``
    first-layer iterations. A mask that grows as a square flood of one window radius per
    iteration, whatever the image, fills its bounding box completely and is the same in
    every scene; the paper's masks follow image structure (Fig. 9).

    Args:
        pipe: the pipeline.
        scenes: scenes with ground truth at (or near) the centre.
        iterations: first-layer iterations to run (second layer skipped).
        threshold: the mask level that counts as reached.
        init_source: D0 as in :func:`initial_depth`.
        seed: mixed into a simulated D0's seed.

    Returns:
        ``{"scenes": {name: {"fill", "area_px", "bbox_px"}}, "mean_fill", "distinct",
        "n", "iterations", "threshold"}``: ``fill`` is the share of the reached region's
        bounding box that it covers (1 = a filled rectangle), ``distinct`` the number of
        different reached regions (as boolean maps) among the ``n`` scenes.
    """
    per_scene: dict[str, dict[str, Any]] = {}
    shapes: set[bytes] = set()
    for scene in scenes:
        rgb = np.asarray(scene.rgb)
        init = initial_depth(pipe, scene, init_source, seed)
        sparse_depth = centre_point(scene.depth)
        mask = np.asarray(sparse_depth > 0, dtype=np.float32)
        for state in pipe.refine_steps(
            rgb, sparse_depth, init_depth=init, schedule=(iterations, 0)
        ):
            mask = state.mask
        reached = mask > threshold
        rows, cols = np.nonzero(reached)
        box = (int(np.ptp(rows)) + 1, int(np.ptp(cols)) + 1)
        per_scene[scene.name] = {
            "fill": float(rows.size / (box[0] * box[1])),
            "area_px": int(rows.size),
            "bbox_px": list(box),
        }
        shapes.add(np.packbits(reached).tobytes() + bytes(str(reached.shape), "ascii"))
    if not per_scene:
        raise ValueError("no scene for the mask-shape diagnostic")
    return {
        "scenes": per_scene,
        "mean_fill": float(np.mean([v["fill"] for v in per_scene.values()])),
        "distinct": len(shapes),
        "n": len(per_scene),
        "iterations": iterations,
        "threshold": threshold,
    }
