"""Animation writers: frames to an animated GIF (Pillow) or an H.264 MP4 (imageio-ffmpeg).

imageio-ffmpeg is imported only by :func:`frames_to_mp4`, which returns None (and logs why)
when no encoder is available; both writers check the frames before writing anything.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from ..validation import as_rgb_image

__all__ = ["frames_to_gif", "frames_to_mp4"]

logger = logging.getLogger(__name__)


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
