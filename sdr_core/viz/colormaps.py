"""Colormaps and the colorize functions: depth, propagation mask and error as RGB images.

The look-up tables are OpenCV's own (read from the library, never copied by hand), so the
app, the command line and the figures show the same colours. Colour conventions:

* depth (:func:`colorize_depth`): **near = warm**. The high end of the colormap is the
  near end: dark red for ``"turbo"``, yellow for ``"viridis"`` / ``"magma"``, white for
  ``"gray"``; far is blue / dark purple / black. Missing depth (0 or NaN) is
  ``invalid_color`` (black by default).
* propagation mask (:func:`colorize_mask`): ``"viridis"``, 0 = dark purple, 1 = yellow.
* absolute error (:func:`colorize_error`): ``"magma"``, 0 = black, large = pale yellow;
  pixels without ground truth are neutral grey.

For an animation, compute one scale for all frames with :func:`depth_range` and
:func:`error_range` and pass it to every call, so a colour means the same depth in every
frame. The private helpers (``_lut``, ``_apply_lut``, ...) are shared with the other
modules of :mod:`sdr_core.viz`.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator, Mapping, Sequence
from types import MappingProxyType
from typing import Any, Literal

import numpy as np

from ..validation import as_depth_map, check_same_shape

__all__ = [
    "COLORMAPS",
    "Colormap",
    "RGB",
    "colorize_depth",
    "colorize_error",
    "colorize_mask",
    "depth_range",
    "error_range",
    "plotly_colorscale",
]

Colormap = Literal["turbo", "viridis", "magma", "gray"]
RGB = tuple[int, int, int]

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

_INVALID_DEPTH_COLOR: RGB = (0, 0, 0)
_INVALID_GT_COLOR: RGB = (128, 128, 128)


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


def plotly_colorscale(cmap: Colormap = "turbo", reverse: bool = False, n: int = 32) -> list:
    """The colormap as a plotly ``colorscale`` (``[[t, "rgb(r,g,b)"], ...]``, n stops).

    ``reverse=True`` maps the low end of the data to the high end of the table, the depth
    convention of :func:`colorize_depth`, so a heatmap and an image panel agree.
    """
    lut = _lut(cmap)
    stops = np.linspace(0.0, 1.0, max(2, int(n)))
    index = np.rint((1.0 - stops if reverse else stops) * 255).astype(int)
    return [[float(t), "rgb({},{},{})".format(*lut[i])] for t, i in zip(stops, index, strict=True)]
