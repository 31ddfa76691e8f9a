"""Images, animations and plotly figures of depth refinement (numpy in, arrays / figures out).

Everything that turns numbers into pixels lives here, so the Gradio app and the CLI show
the same colours: depth, propagation-mask and error colormaps (OpenCV's exact look-up
tables), colour bars with a scale in metres, sparse-point and hole overlays, labelled
mosaics, GIF / MP4 writers, and plotly figures (metric per MSPN iteration, a coloured point
cloud, the sparsity sweep of Fig. 5).

Colour conventions:

* depth (:func:`colorize_depth`): **near = warm**. The high end of the colormap is the
  near end: dark red for ``"turbo"``, yellow for ``"viridis"`` / ``"magma"``, white for
  ``"gray"``; far is blue / dark purple / black. Missing depth (0 or NaN) is
  ``invalid_color`` (black by default).
* propagation mask (:func:`colorize_mask`): ``"viridis"``, 0 = dark purple, 1 = yellow.
* absolute error (:func:`colorize_error`): ``"magma"``, 0 = black, large = pale yellow;
  pixels without ground truth are neutral grey.

For an animation, compute one scale for all frames with :func:`depth_range` and
:func:`error_range` and pass it to every call, so a colour means the same depth in every
frame. plotly is imported only by the three ``*_figure`` functions, and imageio-ffmpeg only
by :func:`frames_to_mp4`; neither is needed for the image functions.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..camera import (
    NYU_INTRINSICS_640X480,
    back_project,
    check_intrinsics,
    default_intrinsics,
)
from ..validation import as_depth_map, as_hole_mask, as_rgb_image, check_same_shape

if TYPE_CHECKING:
    import plotly.graph_objects as go

logger = logging.getLogger(__name__)

__all__ = [
    "COLORMAPS",
    "ITERATION_METRICS",
    "NYU_INTRINSICS",
    "caption",
    "colorbar",
    "colorize_depth",
    "colorize_error",
    "colorize_mask",
    "depth_range",
    "depth_with_colorbar",
    "draw_hole",
    "draw_points",
    "error_range",
    "frames_to_gif",
    "frames_to_mp4",
    "iteration_metrics_figure",
    "plotly_colorscale",
    "refinement_frame",
    "point_cloud_figure",
    "side_by_side",
    "sparsity_figure",
    "with_colorbar",
]

Colormap = Literal["turbo", "viridis", "magma", "gray"]
RGB = tuple[int, int, int]

# ---------------------------------------------------------------------------- colormaps
# OpenCV's colormap tables, read once from the library itself (cv2.applyColorMap on the ramp
# 0..255), never copied by hand: Turbo (Anton Mikhailov, Google, 2019) and matplotlib's
# viridis and magma (BIDS, CC0), exact to the last bit as OpenCV ships them.
_OPENCV_COLORMAPS = MappingProxyType(
    {"turbo": "COLORMAP_TURBO", "viridis": "COLORMAP_VIRIDIS", "magma": "COLORMAP_MAGMA"}
)


def _read_only(lut: np.ndarray) -> np.ndarray:
    lut = np.ascontiguousarray(lut, dtype=np.uint8)
    lut.setflags(write=False)
    return lut


@functools.cache
def _opencv_lut(name: str) -> np.ndarray:
    """OpenCV's 256-entry table ``name`` as read-only 256 x 3 uint8 RGB (computed once)."""
    try:
        import cv2
    except ImportError as error:  # a runtime dependency; this only words the failure
        raise ImportError(
            "sdr_core.viz needs OpenCV's colormap tables: pip install opencv-python-headless"
        ) from error
    ramp = np.arange(256, dtype=np.uint8)[:, None]  # 256 x 1 grey image
    bgr = cv2.applyColorMap(ramp, getattr(cv2, _OPENCV_COLORMAPS[name]))  # 256 x 1 x 3 BGR
    return _read_only(bgr[:, 0, ::-1])


def _gray_lut() -> np.ndarray:
    return _read_only(np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, axis=1))


class _Colormaps(Mapping[str, np.ndarray]):
    """Read-only ``{name: 256 x 3 uint8}``; OpenCV's tables are read on first use."""

    _names = (*_OPENCV_COLORMAPS, "gray")

    def __getitem__(self, name: str) -> np.ndarray:
        if name == "gray":
            return _GRAY_LUT
        if name in _OPENCV_COLORMAPS:
            return _opencv_lut(name)
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


_GRAY_LUT = _gray_lut()

#: Read-only 256 x 3 uint8 look-up tables; entry 0 is the low end, entry 255 the high end.
COLORMAPS: Mapping[str, np.ndarray] = _Colormaps()

#: NYUv2 Kinect colour intrinsics (fx, fy, cx, cy) in pixels at 640 x 480.
NYU_INTRINSICS = NYU_INTRINSICS_640X480

#: Metrics that :func:`iteration_metrics_figure` plots in one call with ``metric=...``.
ITERATION_METRICS = ("rmse", "rel", "d1")

_INVALID_DEPTH_COLOR: RGB = (0, 0, 0)
_INVALID_GT_COLOR: RGB = (128, 128, 128)
_OUTLINE_COLOR: RGB = (16, 16, 16)


def _lut(cmap: str) -> np.ndarray:
    try:
        return COLORMAPS[cmap]
    except KeyError:
        raise ValueError(f"unknown colormap {cmap!r}; choose from {sorted(COLORMAPS)}") from None


def _as_color(color: Any, name: str) -> np.ndarray:
    """Validate an (R, G, B) triple of integers in [0, 255]; returns a uint8 array of 3."""
    array = np.asarray(color)
    if array.shape != (3,) or not np.issubdtype(array.dtype, np.number):
        raise ValueError(f"{name} must be an (R, G, B) triple, got {color!r}")
    if np.any(array < 0) or np.any(array > 255) or np.any(array != np.round(array)):
        raise ValueError(f"{name} must hold integers in [0, 255], got {color!r}")
    return array.astype(np.uint8)


def _apply_lut(t: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """Map values in [0, 1] (clipped) to colours: ``... -> ... x 3`` uint8."""
    index = np.rint(np.clip(t, 0.0, 1.0) * (len(lut) - 1)).astype(np.intp)
    return lut[index]


def _as_unit_map(value: Any, name: str) -> np.ndarray:
    """HxW (or HxWx1) numeric map with values in [0, 1] -> HxW float32 (clipped)."""
    array = np.asarray(value)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim != 2 or array.size == 0:
        raise ValueError(f"{name} must be a non-empty HxW array, got shape {array.shape}")
    if array.dtype == np.bool_:
        array = array.astype(np.float32)
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise ValueError(f"{name} has dtype {array.dtype}; expected a numeric array")
    array = array.astype(np.float32)
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or inf values")
    low, high = float(array.min()), float(array.max())
    # 1e-3 absorbs float round-off of a sigmoid or a blend; anything further is a bug.
    if low < -1e-3 or high > 1.0 + 1e-3:
        raise ValueError(f"{name} must be in [0, 1], got values in [{low:g}, {high:g}]")
    return np.clip(array, 0.0, 1.0)


# ------------------------------------------------------------------------------- ranges
def depth_range(
    *maps: np.ndarray, percentile: tuple[float, float] = (2.0, 98.0)
) -> tuple[float, float]:
    """One (vmin, vmax) depth scale for several maps, e.g. every frame of an animation.

    Args:
        *maps: One or more HxW depth maps in metres (shapes may differ); 0, NaN, inf and
            negative values are ignored.
        percentile: Lower and upper percentiles (0-100) of the pooled valid depths; the
            default (2, 98) ignores a few outliers at either end.

    Returns:
        ``(vmin, vmax)`` in metres with ``vmin < vmax``; if all valid depths are equal the
        range is widened by 5 % (at least 1 mm) either side.

    Raises:
        ValueError: If no map is given, the percentiles are not ``0 <= low < high <= 100``,
            or no map holds a valid depth.
    """
    if not maps:
        raise ValueError("depth_range needs at least one depth map")
    low_pct, high_pct = (float(p) for p in percentile)
    if not 0.0 <= low_pct < high_pct <= 100.0:
        raise ValueError(f"percentile must satisfy 0 <= low < high <= 100, got {percentile}")
    values = []
    for i, depth_map in enumerate(maps):
        depth = as_depth_map(depth_map, f"maps[{i}]")
        values.append(depth[depth > 0])
    pooled = np.concatenate(values)
    if pooled.size == 0:
        raise ValueError("no valid depth (finite and > 0) in any of the maps")
    vmin, vmax = (float(v) for v in np.percentile(pooled, [low_pct, high_pct]))
    if vmax <= vmin:
        pad = max(abs(vmin) * 0.05, 1e-3)
        vmin, vmax = vmin - pad, vmax + pad
    return vmin, vmax


def _as_error_stack(preds: Sequence[np.ndarray] | np.ndarray) -> list[np.ndarray]:
    if isinstance(preds, np.ndarray) and preds.ndim == 2:
        return [preds]
    preds = list(preds)
    if not preds:
        raise ValueError("preds is empty; pass at least one HxW prediction")
    return preds


def error_range(
    preds: Sequence[np.ndarray] | np.ndarray, gt: np.ndarray, percentile: float = 98.0
) -> float:
    """One upper bound for :func:`colorize_error` over several predictions.

    Args:
        preds: HxW predictions in metres (a list, an N x H x W stack or one HxW map).
        gt: HxW ground truth in metres; 0 / NaN / inf / negative = no ground truth.
        percentile: Percentile (0-100] of the pooled absolute errors at valid GT pixels.

    Returns:
        ``vmax`` in metres, > 0 (at least 1e-6 when every error is 0).

    Raises:
        ValueError: If `preds` is empty, a shape differs from `gt`, `percentile` is out of
            range, or `gt` has no valid pixel.
    """
    if not 0.0 < percentile <= 100.0:
        raise ValueError(f"percentile must be in (0, 100], got {percentile}")
    gt_clean = as_depth_map(gt, "gt")
    valid = gt_clean > 0
    if not np.any(valid):
        raise ValueError("gt has no valid pixel (finite and > 0)")
    errors = []
    for i, pred in enumerate(_as_error_stack(preds)):
        pred_clean = as_depth_map(pred, f"preds[{i}]")
        check_same_shape(pred_clean, gt_clean, f"preds[{i}]", "gt")
        errors.append(np.abs(pred_clean[valid] - gt_clean[valid]))
    vmax = float(np.percentile(np.concatenate(errors), percentile))
    return max(vmax, 1e-6)


# ---------------------------------------------------------------------------- colorize
def _depth_to_colors(depth: np.ndarray, vmin: float, vmax: float, lut: np.ndarray) -> np.ndarray:
    """Near (vmin) -> high end of `lut`, far (vmax) -> low end; ``... -> ... x 3`` uint8."""
    nearness = (vmax - depth.astype(np.float64)) / (vmax - vmin)
    return _apply_lut(nearness, lut)


def _resolve_depth_range(
    depth: np.ndarray, vmin: float | None, vmax: float | None
) -> tuple[float, float]:
    if vmin is None or vmax is None:
        if np.any(depth > 0):
            auto_min, auto_max = depth_range(depth)
        else:
            auto_min, auto_max = 0.0, 1.0  # nothing valid: every pixel is invalid anyway
        vmin = auto_min if vmin is None else vmin
        vmax = auto_max if vmax is None else vmax
    if not (math.isfinite(vmin) and math.isfinite(vmax) and vmax > vmin):
        raise ValueError(f"need finite vmin < vmax, got vmin={vmin}, vmax={vmax}")
    return float(vmin), float(vmax)


def colorize_depth(
    depth_m: np.ndarray,
    vmin: float | None = None,
    vmax: float | None = None,
    cmap: Colormap = "turbo",
    invalid_color: RGB = _INVALID_DEPTH_COLOR,
) -> np.ndarray:
    """Colour a depth map, near = warm (high end of `cmap`), far = cool.

    Depth is mapped linearly: ``vmin`` gets the near end of the colormap (dark red for
    turbo, yellow for viridis / magma, white for gray) and ``vmax`` the far end; values
    outside the range are clipped to its ends.

    Args:
        depth_m: HxW (or HxWx1) depth in metres; 0, NaN, inf and negative = missing.
        vmin: Near end of the scale in metres; ``None`` -> 2nd percentile of valid depth.
        vmax: Far end in metres; ``None`` -> 98th percentile. Pass both (from
            :func:`depth_range`) to keep colours consistent across frames.
        cmap: ``"turbo"``, ``"viridis"``, ``"magma"`` or ``"gray"``.
        invalid_color: RGB for missing pixels.

    Returns:
        HxWx3 uint8 RGB image.

    Raises:
        ValueError: On a bad shape or dtype, an unknown colormap, ``vmin >= vmax`` or a
            malformed `invalid_color`.
    """
    depth = as_depth_map(depth_m, "depth_m")
    lut = _lut(cmap)
    invalid = _as_color(invalid_color, "invalid_color")
    vmin, vmax = _resolve_depth_range(depth, vmin, vmax)
    rgb = _depth_to_colors(depth, vmin, vmax, lut)
    rgb[depth <= 0] = invalid
    return rgb


def colorize_mask(mask: np.ndarray, cmap: Colormap = "viridis") -> np.ndarray:
    """Colour a propagation mask (M_n of eq. 7): 0 = low end of `cmap`, 1 = high end.

    Args:
        mask: HxW (or HxWx1) float or bool in [0, 1] (round-off up to 1e-3 outside is
            clipped).
        cmap: Colormap name; the default viridis is distinct from the turbo depth maps.

    Returns:
        HxWx3 uint8 RGB image.

    Raises:
        ValueError: On a bad shape, NaN / inf, or values outside [0, 1].
    """
    return _apply_lut(_as_unit_map(mask, "mask"), _lut(cmap))


def colorize_error(
    pred: np.ndarray,
    gt: np.ndarray,
    vmax: float | None = None,
    cmap: Colormap = "magma",
    invalid_color: RGB = _INVALID_GT_COLOR,
) -> np.ndarray:
    """Colour the absolute error ``|pred - gt|``: 0 = black, ``vmax`` and above = pale yellow.

    Args:
        pred: HxW predicted depth in metres. A missing prediction (0 / NaN) at a valid GT
            pixel counts as depth 0, i.e. an error of ``gt``.
        gt: HxW ground truth in metres; 0 / NaN / inf / negative = no ground truth, drawn
            in `invalid_color`.
        vmax: Error in metres that saturates the colormap; ``None`` ->
            :func:`error_range` of this one prediction. Pass one value for all frames.
        cmap: Colormap name (default magma).
        invalid_color: RGB for pixels without ground truth (neutral grey by default).

    Returns:
        HxWx3 uint8 RGB image.

    Raises:
        ValueError: On a shape mismatch, ``vmax <= 0`` or no valid GT when `vmax` is None.
    """
    pred_clean = as_depth_map(pred, "pred")
    gt_clean = as_depth_map(gt, "gt")
    check_same_shape(pred_clean, gt_clean, "pred", "gt")
    lut = _lut(cmap)
    invalid = _as_color(invalid_color, "invalid_color")
    if vmax is None:
        vmax = error_range([pred_clean], gt_clean)
    if not (math.isfinite(vmax) and vmax > 0):
        raise ValueError(f"vmax must be a finite error > 0 metres, got {vmax}")
    error = np.abs(pred_clean.astype(np.float64) - gt_clean)
    rgb = _apply_lut(error / vmax, lut)
    rgb[gt_clean <= 0] = invalid
    return rgb


# ----------------------------------------------------------------------------- overlays
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


# ------------------------------------------------------------------------------ mosaics
def _label_font(size_px: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """Pillow's built-in font: scalable Aileron when FreeType is there, else the bitmap."""
    try:
        return ImageFont.load_default(size=size_px)
    except (ImportError, OSError, TypeError):  # no FreeType, or Pillow < 10.1
        return ImageFont.load_default()


def _fit_text(draw: ImageDraw.ImageDraw, text: str, font: Any, max_width: float) -> str:
    """Cut `text` (ending in '...') until it fits `max_width` pixels."""
    if draw.textlength(text, font=font) <= max_width:
        return text
    while text and draw.textlength(text + "...", font=font) > max_width:
        text = text[:-1]
    return text + "..." if text else ""


def _font_px(height: int) -> int:
    """Label size that follows the tallest panel: 11-28 px."""
    return int(np.clip(round(height / 14), 11, 28))


def _ink(fill: np.ndarray) -> tuple[int, int, int]:
    luminance = 0.299 * fill[0] + 0.587 * fill[1] + 0.114 * fill[2]
    return (20, 20, 20) if luminance > 128 else (235, 235, 235)


def side_by_side(
    panels: Sequence[np.ndarray],
    labels: Sequence[str] | None = None,
    gap: int = 4,
    background: RGB = (255, 255, 255),
    title: str | None = None,
) -> np.ndarray:
    """Place panels left to right, vertically centred, with optional labels above.

    Labels use Pillow's built-in font (no font file) at a size that follows the tallest
    panel (11-28 px); the label strip height depends only on that size, so the mosaic's
    shape does not depend on which Pillow font backend is installed. Labels too wide for
    their panel are cut with "..."; keep them short and put long text in `title`, a line
    across the whole mosaic above the labels (cut only if wider than the mosaic). The font
    covers Latin-1 (the caption's "·" included), not Greek.

    Args:
        panels: HxWx3 uint8 images (or anything :func:`~sdr_core.validation.as_rgb_image`
            takes, e.g. HxW grey); heights may differ.
        labels: One string per panel, or None for no label strip.
        gap: Pixels between panels, >= 0.
        background: RGB of the gaps, padding and label strip.
        title: One line over all panels (e.g. the frame caption), or None.

    Returns:
        ([title strip +] [label strip +] H_max) x (sum W + gap (n - 1)) x 3 uint8 image.

    Raises:
        ValueError: If `panels` is empty, `labels` has a different length, `gap` < 0 or a
            panel is not an image.
    """
    images = [as_rgb_image(panel, f"panels[{i}]") for i, panel in enumerate(panels)]
    if not images:
        raise ValueError("side_by_side needs at least one panel, got an empty list")
    if labels is not None and len(labels) != len(images):
        raise ValueError(f"got {len(labels)} labels for {len(images)} panels; they must match")
    if int(gap) != gap or gap < 0:
        raise ValueError(f"gap must be an integer >= 0, got {gap}")
    gap = int(gap)
    fill = _as_color(background, "background")
    height = max(image.shape[0] for image in images)
    width = sum(image.shape[1] for image in images) + gap * (len(images) - 1)
    font_px = _font_px(height)
    line = font_px + font_px // 2 + 4
    top_strip = (0 if title is None else line) + (0 if labels is None else line)
    mosaic = np.empty((top_strip + height, width, 3), dtype=np.uint8)
    mosaic[:] = fill
    x = 0
    for image in images:
        top = top_strip + (height - image.shape[0]) // 2
        mosaic[top : top + image.shape[0], x : x + image.shape[1]] = image
        x += image.shape[1] + gap
    if labels is None and title is None:
        return mosaic
    canvas = Image.fromarray(mosaic)
    draw = ImageDraw.Draw(canvas)
    font = _label_font(font_px)
    ink = _ink(fill)
    y = 2
    if title is not None:
        text = _fit_text(draw, str(title), font, width - 4)
        draw.text(((width - draw.textlength(text, font=font)) / 2, y), text, fill=ink, font=font)
        y += line
    x = 0
    for image, label in zip(images, labels or (), strict=False):
        text = _fit_text(draw, str(label), font, image.shape[1] - 4)
        text_width = draw.textlength(text, font=font)
        draw.text((x + (image.shape[1] - text_width) / 2, y), text, fill=ink, font=font)
        x += image.shape[1] + gap
    return np.asarray(canvas)


# ----------------------------------------------------------------------------- colour bars
def _nice_ticks(vmin: float, vmax: float, target: int = 5) -> list[float]:
    """Round tick values (1, 2, 2.5 or 5 times a power of ten) inside [vmin, vmax].

    The step whose tick count is closest to `target` wins (at least two ticks when the
    range allows; otherwise the range's ends).
    """
    power = 10.0 ** math.floor(math.log10((vmax - vmin) / max(target - 1, 1)))
    best: list[float] = []
    for step in (m * power for m in (0.5, 1.0, 2.0, 2.5, 5.0, 10.0)):
        first = math.ceil(vmin / step - 1e-9)
        last = math.floor(vmax / step + 1e-9)
        ticks = [round(k * step, 10) for k in range(first, last + 1)]
        if len(ticks) >= 2 and (not best or abs(len(ticks) - target) < abs(len(best) - target)):
            best = ticks
    return best or [vmin, vmax]


def _tick_text(value: float, ticks: Sequence[float], unit: str) -> str:
    """``value`` with the fewest decimals (at most 3) that write every tick exactly."""
    decimals = next(
        (d for d in range(4) if all(abs(round(t, d) - t) < 1e-9 * max(1.0, abs(t)) for t in ticks)),
        3,
    )
    return f"{value:.{decimals}f} {unit}".rstrip()


def colorbar(
    vmin: float,
    vmax: float,
    height: int,
    cmap: Colormap = "turbo",
    unit: str = "m",
    reverse: bool = False,
    background: RGB = (255, 255, 255),
    open_top: bool = False,
) -> np.ndarray:
    """A vertical colour bar with round tick values, larger values at the top.

    The bar shows exactly the mapping of the panel beside it: pass the panel's
    ``(vmin, vmax)`` and colormap. ``reverse=True`` is the depth convention of
    :func:`colorize_depth` (near = ``vmin`` = high end of the colormap), so a depth bar has
    far (blue for turbo) at the top and near (dark red) at the bottom.

    Args:
        vmin: Value of the bar's bottom, in `unit`.
        vmax: Value of the bar's top, > `vmin`.
        height: Pixels, the panel's height (>= 8).
        cmap: Colormap name, as for the panel.
        unit: Appended to every tick label ("m" for depth and error, "" for the mask).
        reverse: True when `vmin` gets the high end of the colormap (depth).
        background: RGB behind the labels.
        open_top: the panel clips values above `vmax` to the top colour (an error scale
            set by a percentile): the top is labelled ">= vmax" so the clipping is visible.

    Returns:
        height x w x 3 uint8 (w depends on the label width, about 40-110 px).

    Raises:
        ValueError: On a non-finite or empty range, a height below 8 or an unknown colormap.
    """
    if not (math.isfinite(vmin) and math.isfinite(vmax) and vmax > vmin):
        raise ValueError(f"need finite vmin < vmax, got vmin={vmin}, vmax={vmax}")
    if int(height) != height or height < 8:
        raise ValueError(f"height must be an integer >= 8 pixels, got {height}")
    height = int(height)
    lut = _lut(cmap)
    fill = _as_color(background, "background")
    font_px = max(9, _font_px(height) - 2)
    font = _label_font(font_px)
    ticks = _nice_ticks(vmin, vmax, target=int(np.clip(height // 45, 2, 6)))
    texts = [_tick_text(t, ticks, unit) for t in ticks]
    if open_top:  # ">= vmax" at the top (the built-in font has no ≥); no tick under it
        keep = [i for i, t in enumerate(ticks) if (vmax - t) / (vmax - vmin) * height > font_px]
        ticks = [ticks[i] for i in keep] + [vmax]
        texts = [texts[i] for i in keep] + [f">= {vmax:.2f} {unit}".rstrip()]
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    text_width = int(max(probe.textlength(t, font=font) for t in texts)) + 2
    margin = font_px // 2 + 1  # room for the top and bottom labels
    bar_px, tick_px = max(8, font_px), 4
    width = 3 + bar_px + tick_px + 2 + text_width
    canvas = np.empty((height, width, 3), dtype=np.uint8)
    canvas[:] = fill
    rows = np.arange(height - 2 * margin)
    values = vmax - (vmax - vmin) * rows / max(len(rows) - 1, 1)  # top = vmax
    t = (values - vmin) / (vmax - vmin)
    colours = _apply_lut(1.0 - t if reverse else t, lut)  # (height - 2 margin) x 3
    canvas[margin : height - margin, 3 : 3 + bar_px] = colours[:, None, :]
    image = Image.fromarray(canvas)
    draw = ImageDraw.Draw(image)
    ink = _ink(fill)
    span = height - 2 * margin - 1
    for value, text in zip(ticks, texts, strict=True):
        y = margin + round(span * (vmax - value) / (vmax - vmin))
        draw.line([(3 + bar_px, y), (3 + bar_px + tick_px, y)], fill=ink, width=1)
        draw.text((3 + bar_px + tick_px + 2, y - font_px / 2 - 1), text, fill=ink, font=font)
    return np.asarray(image)


def with_colorbar(
    panel: np.ndarray,
    vmin: float,
    vmax: float,
    cmap: Colormap = "turbo",
    unit: str = "m",
    reverse: bool = False,
    open_top: bool = False,
) -> np.ndarray:
    """``panel`` with its :func:`colorbar` to the right (same height, white background)."""
    image = as_rgb_image(panel, "panel")
    bar = colorbar(vmin, vmax, max(8, image.shape[0]), cmap, unit, reverse, open_top=open_top)
    if bar.shape[0] != image.shape[0]:  # panels lower than 8 px: pad the panel
        padded = np.full((bar.shape[0], image.shape[1], 3), 255, dtype=np.uint8)
        padded[: image.shape[0]] = image
        image = padded
    return np.concatenate([image, bar], axis=1)


def depth_with_colorbar(panel: np.ndarray, vmin: float, vmax: float) -> np.ndarray:
    """A :func:`colorize_depth` panel (turbo, near = warm) with its scale in metres."""
    return with_colorbar(panel, vmin, vmax, "turbo", "m", reverse=True)


def plotly_colorscale(cmap: Colormap = "turbo", reverse: bool = False, n: int = 32) -> list:
    """The colormap as a plotly ``colorscale`` (``[[t, "rgb(r,g,b)"], ...]``, n stops).

    ``reverse=True`` maps the low end of the data to the high end of the table, the depth
    convention of :func:`colorize_depth`, so a heatmap and an image panel agree.
    """
    lut = _lut(cmap)
    stops = np.linspace(0.0, 1.0, max(2, int(n)))
    index = np.rint((1.0 - stops if reverse else stops) * 255).astype(int)
    return [[float(t), "rgb({},{},{})".format(*lut[i])] for t, i in zip(stops, index, strict=True)]


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


# ---------------------------------------------------------------------------- animation
def _check_frames(frames: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Frames as HxWx3 uint8 arrays of one shape; raises on an empty list or a mismatch."""
    checked = [as_rgb_image(frame, f"frames[{i}]") for i, frame in enumerate(frames)]
    if not checked:
        raise ValueError("frames is empty; an animation needs at least one frame")
    shape = checked[0].shape
    for i, frame in enumerate(checked):
        if frame.shape != shape:
            raise ValueError(
                f"frames[{i}] is {frame.shape[0]}x{frame.shape[1]} but frames[0] is "
                f"{shape[0]}x{shape[1]} (H x W); all frames must have one size"
            )
    return checked


def _check_fps(fps: float) -> float:
    if not (math.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be a finite number > 0, got {fps}")
    return float(fps)


def _shared_palette(frames: Sequence[np.ndarray]) -> Image.Image:
    """A 256-colour palette image fitted to (a subsample of) all frames at once."""
    picks = np.linspace(0, len(frames) - 1, min(len(frames), 16)).round().astype(int)
    height, width = frames[0].shape[:2]
    # Keep the fitted sample under ~1 Mpx: 16 frames of 640x480 are 4.9 Mpx.
    stride = max(1, math.ceil(math.sqrt(len(picks) * height * width / 1_000_000)))
    sample = np.concatenate([frames[i][::stride, ::stride] for i in picks], axis=0)
    return Image.fromarray(sample).quantize(colors=256, method=Image.Quantize.MEDIANCUT)


def frames_to_gif(
    frames: Sequence[np.ndarray],
    path: str | Path,
    fps: float = 8,
    loop: int = 0,
    dither: bool = False,
) -> Path:
    """Write an animated GIF with Pillow.

    All frames share one 256-colour palette fitted to the whole sequence and, by default,
    are mapped without dithering, so a colour does not flicker between frames (smooth
    gradients show some banding; ``dither=True`` trades it for a little shimmer). GIF
    stores delays in 1/100 s, so the frame time is ``round(100 / fps) / 100`` s (at least
    0.02 s). Pillow merges a frame identical to the one before it into a longer frame, so
    ``n_frames`` of the file can be smaller than ``len(frames)``; the total duration is kept.

    Args:
        frames: HxWx3 uint8 images of one size (e.g. :func:`side_by_side` mosaics).
        path: Output file; parent folders are created.
        fps: Frames per second, > 0.
        loop: Number of repeats; 0 = forever.
        dither: Floyd-Steinberg dithering when mapping to the palette.

    Returns:
        The path written.

    Raises:
        ValueError: If `frames` is empty, sizes differ, `fps` <= 0 or `loop` < 0.
    """
    checked = _check_frames(frames)
    fps = _check_fps(fps)
    if int(loop) != loop or loop < 0:
        raise ValueError(f"loop must be an integer >= 0 (0 = forever), got {loop}")
    palette = _shared_palette(checked)
    dither_mode = Image.Dither.FLOYDSTEINBERG if dither else Image.Dither.NONE
    images = [
        Image.fromarray(frame).quantize(palette=palette, dither=dither_mode) for frame in checked
    ]
    duration_ms = max(20, 10 * round(100 / fps))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    images[0].save(
        path,
        format="GIF",
        save_all=True,
        append_images=images[1:],
        duration=duration_ms,
        loop=int(loop),
        optimize=False,
    )
    return path


def frames_to_mp4(frames: Sequence[np.ndarray], path: str | Path, fps: float = 8) -> Path | None:
    """Write an H.264 MP4 with imageio-ffmpeg, or return None when no encoder is available.

    Odd frame sizes are padded by one edge pixel to even (yuv420p needs even sizes).

    Args:
        frames: HxWx3 uint8 images of one size.
        path: Output file; parent folders are created.
        fps: Frames per second, > 0.

    Returns:
        The path written, or None (logged) if ``imageio_ffmpeg`` is not installed, has no
        ffmpeg binary, or the encoder fails.

    Raises:
        ValueError: If `frames` is empty, sizes differ or `fps` <= 0 (checked before the
            encoder is looked for).
    """
    checked = _check_frames(frames)
    fps = _check_fps(fps)
    try:
        import imageio_ffmpeg
    except ImportError:
        logger.info(
            "imageio-ffmpeg is not installed; MP4 export skipped (pip install imageio-ffmpeg)"
        )
        return None
    try:
        imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError as error:
        logger.info("no ffmpeg binary found (%s); MP4 export skipped", error)
        return None
    height, width = checked[0].shape[:2]
    pad = ((0, height % 2), (0, width % 2), (0, 0))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = imageio_ffmpeg.write_frames(
        str(path),
        (width + width % 2, height + height % 2),
        fps=fps,
        codec="libx264",
        pix_fmt_out="yuv420p",
        macro_block_size=1,  # sizes are already even; don't let it rescale
        ffmpeg_log_level="error",
    )
    try:
        writer.send(None)  # start the ffmpeg process
        for frame in checked:
            writer.send(np.ascontiguousarray(np.pad(frame, pad, mode="edge")))
        writer.close()
    except (OSError, RuntimeError) as error:  # e.g. an ffmpeg build without libx264
        logger.warning("MP4 encoding failed (%s); no video written", error)
        with contextlib.suppress(OSError, RuntimeError):
            writer.close()
        path.unlink(missing_ok=True)
        return None
    return path


# ------------------------------------------------------------------------------ figures
def _plotly() -> tuple[Any, Any]:
    """(plotly.graph_objects, plotly.subplots.make_subplots), with a clear error if absent."""
    try:
        import plotly.graph_objects as go
        from plotly.subplots import make_subplots
    except ImportError as error:
        raise ImportError(
            "plotly is needed for sdr_core.viz figures: pip install plotly"
        ) from error
    return go, make_subplots


_METRIC_TITLES = MappingProxyType(
    {
        "rmse": "RMSE (m) \u2193",
        "mae": "MAE (m) \u2193",
        "rel": "REL \u2193",
        "irmse": "iRMSE (1/km) \u2193",
        "imae": "iMAE (1/km) \u2193",
        "d1": "\u03b4 < 1.25 \u2191",
        "d2": "\u03b4 < 1.25\u00b2 \u2191",
        "d3": "\u03b4 < 1.25\u00b3 \u2191",
    }
)
_LAYER_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd")
_REFERENCE_COLORS = ("#555555", "#d62728", "#8c564b", "#e377c2", "#17becf", "#7f7f7f")
_REFERENCE_DASHES = ("dash", "dot", "dashdot", "longdash")
_METHOD_COLORS = _LAYER_COLORS + _REFERENCE_COLORS


def _history_item(item: Any, index: int, metrics: Sequence[str]) -> tuple[int, int, list[float]]:
    if not isinstance(item, Mapping):
        raise ValueError(f"history[{index}] must be a dict, got {type(item).__name__}")
    for key in ("layer", "iteration", *metrics):
        if key not in item:
            raise ValueError(f"history[{index}] is missing key {key!r}")
    layer, iteration = int(item["layer"]), int(item["iteration"])
    if layer < 1 or iteration < 0:
        raise ValueError(
            f"history[{index}] needs layer >= 1 and iteration >= 0, "
            f"got layer={layer}, iteration={iteration}"
        )
    values = [float(item[m]) for m in metrics]
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"history[{index}] has a non-finite metric value: {values}")
    return layer, iteration, values


def _reference_value(
    label: str, value: float | Mapping[str, float], metric: str, n_metrics: int
) -> float | None:
    """The y of reference line `label` in the `metric` subplot, None if it has none."""
    if isinstance(value, Mapping):
        return float(value[metric]) if metric in value else None
    if n_metrics > 1:
        raise ValueError(
            f"reference_lines[{label!r}] is one number but {n_metrics} metrics are plotted; "
            "pass {metric: value}, e.g. {'rmse': 0.5, 'rel': 0.1}"
        )
    return float(value)


def iteration_metrics_figure(
    history: Sequence[Mapping[str, float]],
    reference_lines: Mapping[str, float | Mapping[str, float]] | None = None,
    metric: str | Sequence[str] = "rmse",
) -> go.Figure:
    """A metric after every MSPN iteration, both layers on one global x axis.

    Layer ``L``'s iteration ``i`` sits at ``x = i + (iterations of layers before L)``, the
    latter taken as the largest iteration in the history per layer; ``iteration = 0`` may
    be used for the state before the layer (e.g. D0). The region after layer 1 is shaded
    and the boundary drawn as a dashed vertical line.

    Args:
        history: Items ``{"layer": int, "iteration": int, "rmse": float, "rel": float,
            "d1": float, ...}`` (any key of :func:`~sdr_core.metrics.compute_metrics`).
        reference_lines: Horizontal lines such as ``{"MDE only": 0.52}`` (for a single
            metric) or ``{"MDE only": {"rmse": 0.52, "rel": 0.14, "d1": 0.83}}`` (per
            metric, required when several are plotted; metrics a line lacks are skipped).
        metric: One metric name, or several (e.g. :data:`ITERATION_METRICS`) for stacked
            subplots sharing the x axis.

    Returns:
        A plotly Figure with, per subplot, one line trace per layer present plus one trace
        per reference line that has a value for that metric.

    Raises:
        ValueError: On an empty history, a missing key, a bad layer / iteration, an
            empty metric list, or a plain-number reference line with several metrics.
        ImportError: If plotly is not installed.
    """
    go, make_subplots = _plotly()
    metrics = [metric] if isinstance(metric, str) else list(metric)
    if not metrics:
        raise ValueError("metric must name at least one metric, e.g. 'rmse'")
    if not history:
        raise ValueError("history is empty; record at least one iteration")
    rows = [_history_item(item, i, metrics) for i, item in enumerate(history)]
    layers = sorted({layer for layer, _, _ in rows})
    last_iteration = {lay: max(it for layer, it, _ in rows if layer == lay) for lay in layers}
    offsets, total = {}, 0
    for layer in layers:
        offsets[layer], total = total, total + last_iteration[layer]
    x_min = min(offsets[layer] + it for layer, it, _ in rows)
    x_max = max(x_min + 1, total)

    fig = make_subplots(rows=len(metrics), cols=1, shared_xaxes=True, vertical_spacing=0.05)
    in_legend: set[str] = set()
    for k, name in enumerate(metrics):
        row = k + 1
        for layer in layers:
            points = sorted((offsets[lay] + it, vals[k]) for lay, it, vals in rows if lay == layer)
            fig.add_trace(
                go.Scatter(
                    x=[p[0] for p in points],
                    y=[p[1] for p in points],
                    mode="lines+markers",
                    name=f"layer {layer}",
                    legendgroup=f"layer {layer}",
                    showlegend=row == 1,
                    line={"color": _LAYER_COLORS[(layer - 1) % len(_LAYER_COLORS)]},
                    marker={"size": 5},
                ),
                row=row,
                col=1,
            )
        for j, (label, value) in enumerate((reference_lines or {}).items()):
            y = _reference_value(str(label), value, name, len(metrics))
            if y is None:
                continue
            fig.add_trace(
                go.Scatter(
                    x=[x_min, x_max],
                    y=[y, y],
                    mode="lines",
                    name=str(label),
                    legendgroup=f"reference {label}",
                    showlegend=str(label) not in in_legend,
                    line={
                        "color": _REFERENCE_COLORS[j % len(_REFERENCE_COLORS)],
                        "dash": _REFERENCE_DASHES[j % len(_REFERENCE_DASHES)],
                        "width": 1.5,
                    },
                ),
                row=row,
                col=1,
            )
            in_legend.add(str(label))
        fig.update_yaxes(title_text=_METRIC_TITLES.get(name, name), row=row, col=1)
    for i, layer in enumerate(layers[1:], start=1):
        start = offsets[layer] + 0.5  # between the previous layer's last and this one's first
        fig.add_vline(x=start, line={"dash": "dash", "color": "#444444", "width": 1})
        if i % 2 == 1:
            end = offsets[layers[i + 1]] + 0.5 if i + 1 < len(layers) else x_max + 0.5
            fig.add_vrect(x0=start, x1=end, fillcolor="#888888", opacity=0.1, line_width=0)
    for layer in layers:  # label each layer inside the top subplot, clear of the legend
        fig.add_annotation(
            x=offsets[layer] + 0.6, y=1.0, xref="x", yref="y domain", xanchor="left",
            yanchor="top", text=f"layer {layer}", showarrow=False, font={"size": 11},
        )  # fmt: skip
    fig.update_xaxes(title_text="MSPN iteration (both layers)", row=len(metrics), col=1)
    fig.update_layout(
        template="plotly_white",
        height=260 * len(metrics) + 80,
        margin={"l": 70, "r": 20, "t": 40, "b": 50},
        legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 0},
    )
    return fig


def _intrinsics_for(
    height: int, width: int, intrinsics: Sequence[float] | None
) -> tuple[float, float, float, float]:
    if intrinsics is None:
        return default_intrinsics(height, width)
    return check_intrinsics(intrinsics)


def point_cloud_figure(
    depth_m: np.ndarray,
    rgb: np.ndarray,
    intrinsics: Sequence[float] | None = None,
    max_points: int = 60_000,
) -> go.Figure:
    """Back-project a depth map to a 3D scatter coloured by the image.

    Camera frame (pinhole): ``X = (u - cx) Z / fx``, ``Y = (v - cy) Z / fy``, ``Z = depth``
    with x right, y down and the camera looking along +Z. Plotted as scene axes
    ``(x, y, z) = (X, Z, -Y)``: the scene's z axis is "up" (plotly's default up vector),
    so the cloud stands upright and unmirrored, and the initial view looks from behind the
    camera along the optical axis.

    Args:
        depth_m: HxW depth in metres; 0 / NaN / inf / negative pixels are skipped.
        rgb: HxWx3 uint8 image (or anything :func:`~sdr_core.validation.as_rgb_image`
            takes) of the same H, W.
        intrinsics: ``(fx, fy, cx, cy)`` in pixels for this image size. None -> NYUv2
            Kinect (518.8579, 519.4696, 325.5824, 253.7362 at 640x480) scaled to H x W,
            i.e. as if the image were a resize of the full frame.
        max_points: Upper bound on points; the valid pixels are subsampled on a regular
            pixel grid (deterministic), then evenly if still too many.

    Returns:
        A plotly Figure with one Scatter3d trace.

    Raises:
        ValueError: On a shape mismatch, bad intrinsics, ``max_points < 1`` or no valid
            depth.
        ImportError: If plotly is not installed.
    """
    go, _ = _plotly()
    depth = as_depth_map(depth_m, "depth_m")
    image = as_rgb_image(rgb, "rgb")
    check_same_shape(image, depth, "rgb", "depth_m")
    if int(max_points) != max_points or max_points < 1:
        raise ValueError(f"max_points must be an integer >= 1, got {max_points}")
    height, width = depth.shape
    intrinsics_px = _intrinsics_for(height, width, intrinsics)
    n_valid = int(np.count_nonzero(depth > 0))
    if n_valid == 0:
        raise ValueError("depth_m has no valid pixel (finite and > 0) to plot")
    stride = max(1, math.ceil(math.sqrt(n_valid / max_points)))
    v, u = np.mgrid[0:height:stride, 0:width:stride]  # pixel rows, columns
    z = depth[v, u]
    keep = z > 0
    v, u, z = v[keep], u[keep], z[keep]
    if z.size > max_points:
        pick = np.linspace(0, z.size - 1, max_points).round().astype(np.intp)
        v, u, z = v[pick], u[pick], z[pick]
    x, y = back_project(v, u, z, intrinsics_px)
    rgb_packed = image[v, u].astype(np.int64) @ np.array([1 << 16, 1 << 8, 1])
    colors = [f"#{c:06x}" for c in rgb_packed.tolist()]
    # A plain dict is validated once; a go.Scatter3d would be validated again by the
    # Figure (~0.35 s each for 34k colour strings).
    trace = {
        "type": "scatter3d",
        "x": x,
        "y": z,
        "z": -y,
        "mode": "markers",
        "marker": {"size": 1.5, "color": colors},
        "hoverinfo": "skip",
        "name": "points",
    }
    fig = go.Figure(data=[trace])
    fig.update_layout(
        template="plotly_white",
        margin={"l": 0, "r": 0, "t": 30, "b": 0},
        scene={
            "aspectmode": "data",
            "xaxis_title": "x (m)",
            "yaxis_title": "depth (m)",
            "zaxis_title": "up (m)",
            "camera": {"eye": {"x": 0.0, "y": -1.6, "z": 0.35}, "up": {"x": 0, "y": 0, "z": 1}},
        },
    )
    return fig


def sparsity_figure(
    results: Mapping[str, Mapping[int, float]],
    title: str = "Error vs. number of sparse points",
    xlabel: str = "sparse points",
    ylabel: str = "RMSE (m)",
) -> go.Figure:
    """Fig. 5-style chart: one line per method over the sparsity levels, log x axis.

    Args:
        results: ``{method: {sparsity level (> 0, e.g. points): metric value}}``.
        title: Figure title.
        xlabel: X axis title.
        ylabel: Y axis title.

    Returns:
        A plotly Figure with one trace per method; the x ticks are the levels used.

    Raises:
        ValueError: If `results` or a method's dict is empty, or a level is <= 0.
        ImportError: If plotly is not installed.
    """
    go, _ = _plotly()
    if not results:
        raise ValueError("results is empty; pass {method: {level: value}}")
    fig = go.Figure()
    levels: set[float] = set()
    for j, (method, by_level) in enumerate(results.items()):
        if not by_level:
            raise ValueError(f"results[{method!r}] is empty")
        points = sorted((float(k), float(v)) for k, v in by_level.items())
        if points[0][0] <= 0:
            raise ValueError(f"results[{method!r}] has level {points[0][0]:g}; levels must be > 0")
        levels.update(p[0] for p in points)
        fig.add_trace(
            go.Scatter(
                x=[p[0] for p in points],
                y=[p[1] for p in points],
                mode="lines+markers",
                name=str(method),
                line={"color": _METHOD_COLORS[j % len(_METHOD_COLORS)]},
            )
        )
    ticks = sorted(levels)
    fig.update_xaxes(
        type="log", title_text=xlabel, tickvals=ticks, ticktext=[f"{t:g}" for t in ticks]
    )
    fig.update_yaxes(title_text=ylabel)
    fig.update_layout(template="plotly_white", title=title, margin={"t": 60})
    return fig
