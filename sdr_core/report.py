"""The files a refinement leaves behind, written the same way by the app and the command line.

One writer, units in every name:

- ``refined_depth_mm.png``: refined depth, 16-bit greyscale PNG in millimetres (0 = missing);
  it looks almost black in an image viewer: read it as numbers.
- ``refined_depth_m.npy``: refined depth, float32 metres.
- ``refined_depth_color.png``: the same depth coloured (turbo, near = warm) with its scale in
  metres, for looking at.
- ``mspn_animation.gif`` (and ``.mp4`` when an encoder is available): every MSPN iteration,
  depth | mask | error, with colour bars.
- ``point_cloud.ply``: coloured point cloud in metres (camera frame).
- ``metrics.json``: what ran (points, schedule, initial depth) and its metrics.

:func:`write_depth_files`, :func:`write_animation`, :func:`write_metrics_json` and
:func:`write_point_cloud` write one kind each; :func:`write_run_files` writes them all.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import viz
from .data import io

__all__ = [
    "ANIMATION_GIF",
    "ANIMATION_MP4",
    "DEPTH_COLOR_PNG",
    "DEPTH_M_NPY",
    "DEPTH_MM_PNG",
    "METRICS_JSON",
    "POINT_CLOUD_PLY",
    "json_ready",
    "write_animation",
    "write_depth_files",
    "write_metrics_json",
    "write_point_cloud",
    "write_run_files",
]

DEPTH_MM_PNG = "refined_depth_mm.png"
DEPTH_M_NPY = "refined_depth_m.npy"
DEPTH_COLOR_PNG = "refined_depth_color.png"
ANIMATION_GIF = "mspn_animation.gif"
ANIMATION_MP4 = "mspn_animation.mp4"
POINT_CLOUD_PLY = "point_cloud.ply"
METRICS_JSON = "metrics.json"


def json_ready(value: Any) -> Any:
    """``value`` with numpy scalars as Python numbers and NaN / inf as None (valid JSON)."""
    if isinstance(value, Mapping):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    if isinstance(value, np.ndarray):
        return json_ready(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_depth_files(
    out_dir: str | Path,
    depth_m: np.ndarray,
    depth_scale: tuple[float, float] | None = None,
) -> list[Path]:
    """The refined depth as 16-bit PNG (mm), .npy (m) and a coloured preview with a scale.

    Args:
        out_dir: folder, created if missing.
        depth_m: H x W float32 metres; 0 = missing.
        depth_scale: ``(vmin, vmax)`` metres of the preview's colours; default from the map.

    Returns:
        ``[refined_depth_mm.png, refined_depth_m.npy, refined_depth_color.png]``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    io.write_depth_png(out / DEPTH_MM_PNG, depth_m, units="mm")
    io.write_depth_npy(out / DEPTH_M_NPY, depth_m)
    vmin, vmax = depth_scale if depth_scale is not None else viz.depth_range(depth_m)
    preview = viz.depth_with_colorbar(viz.colorize_depth(depth_m, vmin, vmax), vmin, vmax)
    from PIL import Image

    Image.fromarray(preview).save(out / DEPTH_COLOR_PNG)
    return [out / DEPTH_MM_PNG, out / DEPTH_M_NPY, out / DEPTH_COLOR_PNG]


def write_animation(
    out_dir: str | Path, frames: Sequence[np.ndarray], fps: float = 8, mp4: bool = True
) -> list[Path]:
    """The frames as ``mspn_animation.gif`` and, when an encoder exists, ``.mp4``."""
    out = Path(out_dir)
    files = [viz.frames_to_gif(frames, out / ANIMATION_GIF, fps=fps)]
    if mp4:
        video = viz.frames_to_mp4(frames, out / ANIMATION_MP4, fps=fps)
        if video is not None:
            files.append(Path(video))
    return [Path(f) for f in files]


def write_point_cloud(
    out_dir: str | Path,
    depth_m: np.ndarray,
    image: np.ndarray,
    intrinsics: Sequence[float] | None,
) -> Path:
    """``point_cloud.ply``: every valid pixel back-projected (metres), coloured by the image."""
    path = Path(out_dir) / POINT_CLOUD_PLY
    io.write_ply(path, depth_m, image, intrinsics)
    return path


def write_metrics_json(out_dir: str | Path, report: Mapping[str, Any]) -> Path:
    """``metrics.json`` (indented; NaN and inf written as null)."""
    path = Path(out_dir) / METRICS_JSON
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(json_ready(report), indent=2), encoding="utf-8")
    return path


def write_run_files(
    out_dir: str | Path,
    depth_m: np.ndarray,
    frames: Sequence[np.ndarray],
    report: Mapping[str, Any],
    *,
    image: np.ndarray | None = None,
    intrinsics: Sequence[float] | None = None,
    depth_scale: tuple[float, float] | None = None,
    fps: float = 8,
    mp4: bool = True,
) -> list[Path]:
    """Every file of a run (see the module docstring), in a fixed order.

    Args:
        out_dir: folder, created if missing.
        depth_m: H x W refined depth, metres.
        frames: rendered animation frames (:func:`sdr_core.viz.refinement_frame`); none
            writes no animation.
        report: the content of ``metrics.json``.
        image: H x W x 3 uint8; with it a point cloud is written.
        intrinsics: (fx, fy, cx, cy) pixels for the point cloud; None assumes NYUv2's camera.
        depth_scale: colour scale (metres) of the coloured preview.
        fps: animation frame rate.
        mp4: also try an MP4.

    Returns:
        The paths written: animation, depth files, point cloud, metrics.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = write_animation(out, frames, fps, mp4) if len(frames) else []
    files += write_depth_files(out, depth_m, depth_scale)
    if image is not None:
        files.append(write_point_cloud(out, depth_m, image, intrinsics))
    files.append(write_metrics_json(out, report))
    return files
