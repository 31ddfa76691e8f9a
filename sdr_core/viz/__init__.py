"""Images, animations and plotly figures of depth refinement (numpy in, arrays / figures out).

Everything that turns numbers into pixels lives in this package, so the Gradio app and the
CLI show the same colours. One module per concern; every name below is importable from
``sdr_core.viz`` itself:

* :mod:`.colormaps`: OpenCV's exact look-up tables (:data:`COLORMAPS`), one scale for many
  maps (:func:`depth_range`, :func:`error_range`), depth, propagation-mask and error maps as
  images (:func:`colorize_depth`, :func:`colorize_mask`, :func:`colorize_error`) and the
  tables as plotly colorscales (:func:`plotly_colorscale`);
* :mod:`.overlays`: sparse points as outlined discs (:func:`draw_points`), the hole
  (:func:`draw_hole`);
* :mod:`.mosaic`: labelled mosaics (:func:`side_by_side`) and colour bars with a scale in
  metres (:func:`colorbar`, :func:`with_colorbar`, :func:`depth_with_colorbar`);
* :mod:`.frames`: one animation frame of a refinement (:func:`refinement_frame`) and its
  caption (:func:`caption`);
* :mod:`.run_frames`: a whole run as frames, for the CLI and the studio alike: which states
  are frames (:func:`is_frame`, :func:`frame_states`: layer 2's restart is none), their
  titles (:func:`frame_title`), the run's scales (:class:`RunScales`, :func:`run_scales`)
  and the frames drawn one at a time or all (:func:`render_frame`, :func:`render_frames`);
* :mod:`.writers`: GIF and MP4 writers (:func:`frames_to_gif`, :func:`frames_to_mp4`);
* :mod:`.figures`: plotly figures, a metric per MSPN iteration
  (:func:`iteration_metrics_figure`), a coloured point cloud (:func:`point_cloud_figure`)
  and the sparsity sweep of Fig. 5 (:func:`sparsity_figure`).

Colour conventions: depth is **near = warm** (the high end of the colormap, dark red for
``"turbo"``), missing depth black; the mask is ``"viridis"`` (0 = dark purple, 1 = yellow);
the absolute error ``"magma"`` (0 = black), pixels without ground truth grey. For an
animation, compute one scale for all frames with :func:`depth_range` and
:func:`error_range` and pass it to every call, so a colour means the same depth in every
frame; a refinement run takes its scales from :func:`run_scales`. plotly is imported only
by the three ``*_figure`` functions, and imageio-ffmpeg only by :func:`frames_to_mp4`;
neither is needed for the image functions.
"""

from __future__ import annotations

from .colormaps import (
    COLORMAPS,
    RGB,  # noqa: F401 (RGB, Colormap: the signatures' type aliases, reachable as before)
    Colormap,  # noqa: F401
    colorize_depth,
    colorize_error,
    colorize_mask,
    depth_range,
    error_range,
    plotly_colorscale,
)
from .figures import (
    ITERATION_METRICS,
    NYU_INTRINSICS,
    iteration_metrics_figure,
    point_cloud_figure,
    sparsity_figure,
)
from .frames import caption, refinement_frame
from .mosaic import colorbar, depth_with_colorbar, side_by_side, with_colorbar
from .overlays import draw_hole, draw_points
from .run_frames import (
    RunScales,
    frame_states,
    frame_title,
    is_frame,
    render_frame,
    render_frames,
    run_scales,
)
from .writers import frames_to_gif, frames_to_mp4

__all__ = [
    "COLORMAPS",
    "ITERATION_METRICS",
    "NYU_INTRINSICS",
    "RunScales",
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
    "frame_states",
    "frame_title",
    "frames_to_gif",
    "frames_to_mp4",
    "is_frame",
    "iteration_metrics_figure",
    "plotly_colorscale",
    "refinement_frame",
    "render_frame",
    "render_frames",
    "run_scales",
    "point_cloud_figure",
    "side_by_side",
    "sparsity_figure",
    "with_colorbar",
]
