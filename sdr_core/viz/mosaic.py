"""Mosaics and colour bars: panels side by side under labels, each map with its scale.

Labels use Pillow's built-in font (no font file), so a mosaic's shape does not depend on
the fonts installed. A colour bar shows exactly the mapping of the panel beside it (pass
the panel's ``(vmin, vmax)`` and colormap), with round tick values in metres.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..validation import as_rgb_image
from .colormaps import RGB, Colormap, _apply_lut, _as_color, _lut

__all__ = ["colorbar", "depth_with_colorbar", "side_by_side", "with_colorbar"]


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
