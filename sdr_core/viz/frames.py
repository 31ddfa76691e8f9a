"""One animation frame of a refinement (depth | mask | error with their scales), and its caption.

The app and the command line both draw their frames, and so the GIF, with
:func:`refinement_frame`, through :mod:`.run_frames` (which states are frames, their titles,
the run's scales); :func:`caption` words an iteration's place in the run.
"""

from __future__ import annotations

import numpy as np

from .colormaps import colorize_depth, colorize_error, colorize_mask
from .mosaic import depth_with_colorbar, side_by_side, with_colorbar
from .overlays import draw_hole

__all__ = ["caption", "refinement_frame"]


def caption(layer: int, iteration: int, iterations_in_layer: int) -> str:
    """Frame caption such as ``"layer 1 · iteration 7 / 28"`` (fields of a RefineState).

    Args:
        layer: MSPN layer, >= 1.
        iteration: Iteration within the layer, counted from 1.
        iterations_in_layer: Iterations the layer runs (N of eq. 13 for layer 1).

    Returns:
        The caption, with a middle dot (U+00B7) between the parts.

    Raises:
        ValueError: Unless ``layer >= 1`` and ``1 <= iteration <= iterations_in_layer``.
    """
    if layer < 1 or not 1 <= iteration <= iterations_in_layer:
        raise ValueError(
            "need layer >= 1 and 1 <= iteration <= iterations_in_layer, got "
            f"layer={layer}, iteration={iteration}, iterations_in_layer={iterations_in_layer}"
        )
    return f"layer {layer} \u00b7 iteration {iteration} / {iterations_in_layer}"


def _enlarge(array: np.ndarray, factor: int) -> np.ndarray:
    """Nearest-pixel enlargement of an H x W map by a whole factor."""
    return np.repeat(np.repeat(np.asarray(array), factor, axis=0), factor, axis=1)


def refinement_frame(
    depth_m: np.ndarray,
    mask: np.ndarray,
    title: str,
    depth_scale: tuple[float, float],
    gt_m: np.ndarray | None = None,
    error_vmax: float | None = None,
    hole_mask: np.ndarray | None = None,
    mask_label: str = "propagation mask",
    min_height: int = 240,
) -> np.ndarray:
    """One animation frame: depth | mask | (with ground truth) error, each with its scale.

    The app and the command line both draw their frames (and so the GIF) with this
    function. Every panel carries a colour bar: depth in metres (turbo, near = warm), the
    mask from 0 to 1 (viridis), the absolute error from 0 to `error_vmax` metres (magma).
    `title` (e.g. "layer 1 · iteration 7 / 28") is a line across the whole frame, so the
    panel labels stay short.

    Args:
        depth_m: H x W depth in metres (D_n).
        mask: H x W propagation mask in [0, 1] (M_n).
        title: the frame's caption.
        depth_scale: ``(vmin, vmax)`` metres shared by every frame (:func:`depth_range`).
        gt_m: H x W ground truth in metres; adds the error panel (with `error_vmax`).
        error_vmax: error in metres at the top of the error scale (:func:`error_range`).
        hole_mask: H x W bool; its outline is drawn on every panel.
        mask_label: label of the mask panel (e.g. for the no-mask ablation).
        min_height: maps lower than this are enlarged by a whole factor (nearest pixel), so
            small images stay readable next to their colour bars; never shrunk.

    Returns:
        H' x W' x 3 uint8.
    """
    vmin, vmax = depth_scale
    factor = max(1, int(min_height) // max(1, np.asarray(depth_m).shape[0]))
    if factor > 1:
        depth_m, mask = _enlarge(depth_m, factor), _enlarge(mask, factor)
        gt_m = None if gt_m is None else _enlarge(gt_m, factor)
        hole_mask = None if hole_mask is None else _enlarge(hole_mask, factor)
    panels = [
        depth_with_colorbar(colorize_depth(depth_m, vmin, vmax), vmin, vmax),
        with_colorbar(colorize_mask(mask), 0.0, 1.0, "viridis", ""),
    ]
    labels = ["depth", mask_label]
    if gt_m is not None and error_vmax is not None:
        error = colorize_error(depth_m, gt_m, error_vmax)
        # error_vmax is a percentile: larger errors are clipped, and the bar says so
        panels.append(with_colorbar(error, 0.0, error_vmax, "magma", "m", open_top=True))
        labels.append("|error| vs ground truth")
    if hole_mask is not None:
        width = np.asarray(depth_m).shape[1]
        for i, panel in enumerate(panels):  # outline the hole on the map, not on the bar
            outlined = draw_hole(panel[:, :width], hole_mask, alpha=0.0)
            panels[i] = np.concatenate([outlined, panel[:, width:]], axis=1)
    return side_by_side(panels, labels, gap=8, title=title)
