"""Images, animations and plotly figures of depth refinement (numpy in, arrays / figures out).

Everything that turns numbers into pixels lives here, so the Gradio app and the CLI show
the same colours: depth, propagation-mask and error colormaps (pure numpy look-up tables),
sparse-point and hole overlays, labelled mosaics, GIF / MP4 writers, and plotly figures
(metric per MSPN iteration, a coloured point cloud, the sparsity sweep of Fig. 5).

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
import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .camera import (
    NYU_INTRINSICS_640X480,
    back_project,
    check_intrinsics,
    default_intrinsics,
)
from .validation import as_depth_map, as_hole_mask, as_rgb_image, check_same_shape

if TYPE_CHECKING:
    import plotly.graph_objects as go

logger = logging.getLogger(__name__)

__all__ = [
    "COLORMAPS",
    "ITERATION_METRICS",
    "NYU_INTRINSICS",
    "caption",
    "colorize_depth",
    "colorize_error",
    "colorize_mask",
    "depth_range",
    "draw_hole",
    "draw_points",
    "error_range",
    "frames_to_gif",
    "frames_to_mp4",
    "iteration_metrics_figure",
    "point_cloud_figure",
    "side_by_side",
    "sparsity_figure",
]

Colormap = Literal["turbo", "viridis", "magma", "gray"]
RGB = tuple[int, int, int]

# ---------------------------------------------------------------------------- colormaps
# Turbo (Anton Mikhailov, Google, 2019; LUT published under Apache-2.0): every 8th entry of
# the 256-entry sRGB table plus the last, interpolated linearly. Against 19 held-out entries
# the largest error is 1.8/255 (mean 0.4/255); the popular 5th-degree polynomial fit is off by
# up to 32/255, worst at the dark far end, which it turns nearly black.
_TURBO_EVERY_8TH = (
    (0.18995, 0.07176, 0.23217), (0.22500, 0.16354, 0.45096), (0.25107, 0.25237, 0.63374),
    (0.26816, 0.33825, 0.78050), (0.27628, 0.42118, 0.89123), (0.27543, 0.50115, 0.96594),
    (0.25862, 0.57958, 0.99876), (0.21382, 0.65886, 0.97959), (0.15844, 0.73551, 0.92305),
    (0.11167, 0.80569, 0.84525), (0.09267, 0.86554, 0.76230), (0.12014, 0.91193, 0.68660),
    (0.19659, 0.94901, 0.59466), (0.30513, 0.97697, 0.48987), (0.42778, 0.99419, 0.38575),
    (0.54658, 0.99907, 0.29581), (0.64362, 0.98999, 0.23356), (0.72596, 0.96470, 0.20640),
    (0.80473, 0.92452, 0.20459), (0.87530, 0.87267, 0.21555), (0.93301, 0.81236, 0.22667),
    (0.97323, 0.74682, 0.22536), (0.99314, 0.67408, 0.20348), (0.99593, 0.58703, 0.16899),
    (0.98360, 0.49291, 0.12849), (0.95801, 0.39958, 0.08831), (0.92105, 0.31489, 0.05475),
    (0.87422, 0.24526, 0.03297), (0.81608, 0.18462, 0.01809), (0.74617, 0.13098, 0.00851),
    (0.66449, 0.08436, 0.00424), (0.57103, 0.04474, 0.00529), (0.47960, 0.01583, 0.01055),
)  # fmt: skip
_TURBO_INDEX = (*range(0, 256, 8), 255)  # LUT entries of the rows above
# Viridis and magma: degree-6 minimax fits to matplotlib's tables by Matt Zucker
# (shadertoy WlfXRN, CC0), data from github.com/BIDS/colormap (CC0).
_VIRIDIS = (
    (0.2777273272234177, 0.1050930431085774, -0.3308618287255563, -4.634230498983486,
     6.228269936347081, 4.776384997670288, -5.435455855934631),
    (0.005407344544966578, 1.404613529898575, 0.214847559468213, -5.799100973351585,
     14.17993336680509, -13.74514537774601, 4.645852612178535),
    (0.3340998053353061, 1.384590162594685, 0.09509516302823659, -19.33244095627987,
     56.69055260068105, -65.35303263337234, 26.3124352495832),
)  # fmt: skip
_MAGMA = (
    (-0.002136485053939582, 0.2516605407371642, 8.353717279216625, -27.66873308576866,
     52.17613981234068, -50.76852536473588, 18.65570506591883),
    (-0.000749655052795221, 0.6775232436837668, -3.577719514958484, 14.26473078096533,
     -27.94360607168351, 29.04658282127291, -11.48977351997711),
    (-0.005386127855323933, 2.494026599312351, 0.3144679030132573, -13.64921318813922,
     12.94416944238394, 4.23415299384598, -5.601961508734096),
)  # fmt: skip


def _to_lut(rgb: np.ndarray) -> np.ndarray:
    """256 x 3 floats in [0, 1] -> read-only 256 x 3 uint8 table."""
    lut = np.rint(np.clip(rgb, 0.0, 1.0) * 255.0).astype(np.uint8)
    lut.setflags(write=False)
    return lut


def _polynomial_lut(coefficients: Sequence[Sequence[float]]) -> np.ndarray:
    """Table from per-channel polynomials (lowest order first) evaluated on [0, 1]."""
    t = np.linspace(0.0, 1.0, 256)
    return _to_lut(np.stack([np.polynomial.polynomial.polyval(t, c) for c in coefficients], -1))


def _interpolated_lut(index: Sequence[int], rows: Sequence[Sequence[float]]) -> np.ndarray:
    """Table from RGB rows known at some of the 256 entries, linear in between."""
    samples = np.asarray(rows)
    entries = np.arange(256)
    return _to_lut(np.stack([np.interp(entries, index, samples[:, c]) for c in range(3)], -1))


def _gray_lut() -> np.ndarray:
    lut = np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, axis=1)
    lut.setflags(write=False)
    return lut


#: Read-only 256 x 3 uint8 look-up tables; entry 0 is the low end, entry 255 the high end.
COLORMAPS: Mapping[str, np.ndarray] = MappingProxyType(
    {
        "turbo": _interpolated_lut(_TURBO_INDEX, _TURBO_EVERY_8TH),
        "viridis": _polynomial_lut(_VIRIDIS),
        "magma": _polynomial_lut(_MAGMA),
        "gray": _gray_lut(),
    }
)

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


def side_by_side(
    panels: Sequence[np.ndarray],
    labels: Sequence[str] | None = None,
    gap: int = 4,
    background: RGB = (255, 255, 255),
) -> np.ndarray:
    """Place panels left to right, vertically centred, with optional labels above.

    Labels use Pillow's built-in font (no font file) at a size that follows the tallest
    panel (11-28 px); the label strip height depends only on that size, so the mosaic's
    shape does not depend on which Pillow font backend is installed. Labels too wide for
    their panel are cut with "...". The font covers Latin-1 (the caption's "·" included),
    not Greek.

    Args:
        panels: HxWx3 uint8 images (or anything :func:`~sdr_core.validation.as_rgb_image`
            takes, e.g. HxW grey); heights may differ.
        labels: One string per panel, or None for no label strip.
        gap: Pixels between panels, >= 0.
        background: RGB of the gaps, padding and label strip.

    Returns:
        (H_max [+ label strip]) x (sum W + gap (n - 1)) x 3 uint8 image.

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
    font_px = int(np.clip(round(height / 14), 11, 28))
    strip = 0 if labels is None else font_px + font_px // 2 + 4
    mosaic = np.empty((strip + height, width, 3), dtype=np.uint8)
    mosaic[:] = fill
    x = 0
    for image in images:
        top = strip + (height - image.shape[0]) // 2
        mosaic[top : top + image.shape[0], x : x + image.shape[1]] = image
        x += image.shape[1] + gap
    if labels is None:
        return mosaic
    canvas = Image.fromarray(mosaic)
    draw = ImageDraw.Draw(canvas)
    font = _label_font(font_px)
    luminance = 0.299 * fill[0] + 0.587 * fill[1] + 0.114 * fill[2]
    ink = (20, 20, 20) if luminance > 128 else (235, 235, 235)
    x = 0
    for image, label in zip(images, labels, strict=True):
        text = _fit_text(draw, str(label), font, image.shape[1] - 4)
        text_width = draw.textlength(text, font=font)
        draw.text((x + (image.shape[1] - text_width) / 2, 2), text, fill=ink, font=font)
        x += image.shape[1] + gap
    return np.asarray(canvas)


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
