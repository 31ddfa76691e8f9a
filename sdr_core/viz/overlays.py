"""Overlays on an image: the sparse measurements as outlined discs, the hole as a tinted region.

Both return a new image and leave their input alone; a disc is coloured by its depth with
the mapping of :func:`~sdr_core.viz.colormaps.colorize_depth`, so a point and the depth
panel under it agree.
"""

from __future__ import annotations

import numpy as np

from ..validation import as_depth_map, as_hole_mask, as_rgb_image, check_same_shape
from .colormaps import RGB, Colormap, _as_color, _depth_to_colors, _lut, _resolve_depth_range

__all__ = ["draw_hole", "draw_points"]

_OUTLINE_COLOR: RGB = (16, 16, 16)


def _disc_offsets(radius: int) -> tuple[np.ndarray, np.ndarray]:
    """(dy, dx) of a rounded disc: ``dy^2 + dx^2 <= r (r + 1)`` (r=0: 1 px, r=1: 3x3)."""
    span = np.arange(-radius, radius + 1)
    dy, dx = np.meshgrid(span, span, indexing="ij")
    keep = dy**2 + dx**2 <= radius * (radius + 1)
    return dy[keep], dx[keep]


def _stamp(
    canvas: np.ndarray, ys: np.ndarray, xs: np.ndarray, colors: np.ndarray, radius: int
) -> None:
    """Paint a disc of `radius` at every (y, x) into `canvas` (H x W x 3, modified)."""
    height, width = canvas.shape[:2]
    for dy, dx in zip(*_disc_offsets(radius), strict=True):
        y, x = ys + dy, xs + dx
        inside = (y >= 0) & (y < height) & (x >= 0) & (x < width)
        canvas[y[inside], x[inside]] = colors[inside]


def draw_points(
    image: np.ndarray,
    sparse: np.ndarray,
    radius: int = 2,
    color: RGB | None = None,
    vmin: float | None = None,
    vmax: float | None = None,
    cmap: Colormap = "turbo",
) -> np.ndarray:
    """Overlay the measured pixels of `sparse` as discs with a 1-pixel dark outline.

    Each disc is coloured by its depth with the same mapping as :func:`colorize_depth`, so
    pass the depth panel's `vmin` / `vmax` to make a point and the surface under it agree.
    Outlines (a disc of ``radius + 1``) are drawn for all points first and the coloured
    discs on top, so a lone 1-pixel measurement becomes a dot 2 radius + 3 pixels across
    (7 for the default radius 2; 3 x 3 for radius 0).

    Args:
        image: HxWx3 uint8 (or anything :func:`~sdr_core.validation.as_rgb_image` takes).
        sparse: HxW sparse depth in metres; > 0 = measured.
        radius: Disc radius in pixels, >= 0 (0 = the pixel alone, plus its outline).
        color: Fixed RGB for every disc instead of colouring by depth.
        vmin: Near end of the depth scale (metres); ``None`` -> from the points.
        vmax: Far end of the depth scale (metres); ``None`` -> from the points.
        cmap: Colormap name for depth colouring.

    Returns:
        A new HxWx3 uint8 image (the input is not modified).

    Raises:
        ValueError: On a shape mismatch, a negative radius or a malformed colour.
    """
    canvas = as_rgb_image(image)
    depth = as_depth_map(sparse, "sparse")
    check_same_shape(canvas, depth, "image", "sparse")
    if int(radius) != radius or radius < 0:
        raise ValueError(f"radius must be an integer >= 0, got {radius}")
    radius = int(radius)
    ys, xs = np.nonzero(depth > 0)
    if ys.size == 0:
        return canvas
    if color is None:
        vmin, vmax = _resolve_depth_range(depth, vmin, vmax)
        colors = _depth_to_colors(depth[ys, xs], vmin, vmax, _lut(cmap))
    else:
        colors = np.broadcast_to(_as_color(color, "color"), (ys.size, 3))
    outline = np.broadcast_to(np.asarray(_OUTLINE_COLOR, dtype=np.uint8), (ys.size, 3))
    _stamp(canvas, ys, xs, outline, radius + 1)
    _stamp(canvas, ys, xs, colors, radius)
    return canvas


def draw_hole(
    image: np.ndarray,
    hole_mask: np.ndarray,
    alpha: float = 0.4,
    color: RGB = (255, 255, 255),
) -> np.ndarray:
    """Tint the hole region (where measurements were removed) and outline its border.

    Args:
        image: HxWx3 uint8 (or anything :func:`~sdr_core.validation.as_rgb_image` takes).
        hole_mask: HxW bool (or 0/1, 0/255 uint8); True = inside the hole.
        alpha: Opacity of the tint in [0, 1].
        color: Tint and border RGB (white by default, a fog over any colormap).

    Returns:
        A new HxWx3 uint8 image; the hole's 1-pixel inner border is drawn in `color`.

    Raises:
        ValueError: On a shape mismatch, a non-binary mask or `alpha` outside [0, 1].
    """
    canvas = as_rgb_image(image)
    hole = as_hole_mask(hole_mask, canvas.shape, "hole_mask")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    tint = _as_color(color, "color").astype(np.float32)
    blended = canvas.astype(np.float32) * (1.0 - alpha) + tint * alpha
    canvas[hole] = np.rint(blended[hole]).astype(np.uint8)
    padded = np.pad(hole, 1, mode="edge")  # the image edge does not count as a border
    interior = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:] & hole
    canvas[hole & ~interior] = tint.astype(np.uint8)
    return canvas
