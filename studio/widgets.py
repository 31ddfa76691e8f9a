"""What the page's widgets send and show, in plain Python (no Gradio import).

- Radio labels: the depth units of an upload (:data:`UNIT_CHOICES`).
- The log-scale points slider (:func:`points_from_slider`, :func:`slider_from_points`).
- Clicks on the upscaled clickable views (:func:`to_processing`).
- The brush editor's paint layers (:func:`hole_from_layers`, :func:`hole_layer`).
- The page's markdown about a scene and its points (:func:`scene_text`, :func:`plan_text`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from PIL import Image

from sdr_core.data import io
from studio.scene import Scene
from studio.session import MAX_POINTS, SparseChoice, SparseInputs, plan_frames, upscale

__all__ = [
    "UNIT_CHOICES",
    "choice",
    "hole_from_layers",
    "hole_layer",
    "plan_text",
    "points_from_slider",
    "scene_text",
    "slider_from_points",
    "to_processing",
    "unit_choice",
]


#: Units radio of the UI -> ``units`` of :func:`sdr_core.data.io.read_depth` (None = by format).
UNIT_CHOICES: dict[str, io.DepthUnits | None] = {
    "auto (by file type)": None,
    "mm (16-bit PNG)": "mm",
    "KITTI (16-bit PNG / 256)": "kitti",
    "metres (.npy, NYUv2 .h5)": "m",
}


def choice(
    mode: str, n_points: float | None, n_lines: float | None, seed: float | None
) -> SparseChoice:
    """The points widgets' values (numbers may be None or floats) as a :class:`SparseChoice`."""
    return SparseChoice(mode, int(n_points or 1), int(n_lines or 16), int(seed or 0))


def unit_choice(units: io.DepthUnits | None) -> str:
    """The units radio label for ``units`` (inverse of :data:`UNIT_CHOICES`)."""
    return next(label for label, value in UNIT_CHOICES.items() if value == units)


def to_processing(index: Sequence[float], factor: int, shape: Sequence[int]) -> tuple[int, int]:
    """Map a click ``(x, y)`` on a view upscaled by ``factor`` to a processing pixel.

    Gradio's ``SelectData.index`` is in pixels of the image it displays, i.e. the
    upscaled view; this undoes the upscaling and clamps to the image.
    """
    if len(index) != 2:
        raise ValueError(f"a click position must be (x, y), got {index!r}")
    x, y = (int(math.floor(float(v) / factor)) for v in index)
    height, width = int(shape[0]), int(shape[1])
    return min(max(x, 0), width - 1), min(max(y, 0), height - 1)


def points_from_slider(value: float) -> int:
    """The log-scale points slider (log10 N, 0 .. log10 5000) -> N in [1, MAX_POINTS]."""
    return int(min(max(round(10.0 ** float(value)), 1), MAX_POINTS))


def slider_from_points(n_points: int) -> float:
    """Inverse of :func:`points_from_slider`, rounded to the slider's step (0.01)."""
    n_points = min(max(int(n_points), 1), MAX_POINTS)
    return round(math.log10(n_points), 2)


def hole_from_layers(
    layers: Sequence[np.ndarray] | None, shape: Sequence[int]
) -> np.ndarray | None:
    """The hole mask painted in the brush editor, at processing resolution.

    Args:
        layers: the editor's paint layers (h x w x 4 RGBA or h x w x 3 / h x w), any size;
            painted = non-transparent (or non-zero without alpha).
        shape: (H, W) of the processing resolution.

    Returns:
        H x W bool (True where at least half of a processing pixel is painted), or None when
        nothing is painted.
    """
    height, width = int(shape[0]), int(shape[1])
    painted = None
    for layer in layers or []:
        array = np.asarray(layer)
        if array.ndim == 3:
            alpha = array[..., 3] if array.shape[2] == 4 else array.max(axis=2)
        elif array.ndim == 2:
            alpha = array
        else:
            raise ValueError(f"a brush layer must be an image, got shape {array.shape}")
        mask = alpha > 0
        if painted is not None and painted.shape != mask.shape:
            raise ValueError(
                "the brush layers have different sizes; clear the hole and paint again"
            )
        painted = mask if painted is None else painted | mask
    if painted is None or not painted.any():
        return None
    coverage = Image.fromarray(painted.astype(np.uint8) * 255).resize(
        (width, height), Image.Resampling.BOX
    )
    hole = np.asarray(coverage) >= 128
    return hole if hole.any() else None


def hole_layer(hole: np.ndarray | None, factor: int) -> np.ndarray:
    """An RGBA paint layer showing ``hole`` on the editor (upscaled by ``factor``)."""
    if hole is None:
        raise ValueError("no hole to draw")
    layer = np.zeros((*hole.shape, 4), dtype=np.uint8)
    layer[hole] = (255, 255, 255, 180)  # translucent, like the brush
    return upscale(layer, factor)


def plan_text(inputs: SparseInputs) -> str:
    """Markdown: point count and the eq. 13 iteration plan."""
    first, second = inputs.schedule
    hole = f" ({inputs.n_in_hole} dropped by the hole)" if inputs.n_in_hole else ""
    if inputs.n_points == 0:
        lines = [f"**0 depth points**{hole}: nothing to propagate yet."]
    else:
        word = "point" if inputs.n_points == 1 else "points"
        lines = [
            f"**{inputs.n_points} depth {word}**{hole} · iteration plan (eq. 13): "
            f"layer 1 = **{first}**, layer 2 = **{second}** → {plan_frames(inputs.schedule)} "
            "frames (D0, then one per iteration)"
        ]
    lines += [f"⚠️ {note}" for note in inputs.notes]
    return "\n\n".join(lines)


def scene_text(scene: Scene) -> str:
    """Markdown summary of a loaded scene."""
    h, w = scene.shape
    oh, ow = scene.original_size
    gt = "yes" if scene.gt is not None else "no (error map and metrics are hidden)"
    text = (
        f"**{scene.name}** · {ow}x{oh} px, processed at **{w}x{h}** · ground truth: {gt} · "
        f"initial depth: {scene.init_source}"
    )
    return "\n\n".join([text, *(f"ℹ️ {note}" for note in scene.notes)])
