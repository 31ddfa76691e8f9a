"""The frames of a refinement run: which states are frames, their titles, their scales.

A run (the :class:`~sdr_core.pipeline.RefineState` items of ``SDRPipeline.refine_steps``)
is shown as frames: D0 with S imposed, then one frame per iteration of each layer. Layer
2's starting state (the restart: layer 1's last depth, the mask reset to M0) repeats the
frame before it and is no frame. The command line (its GIF) and the studio (its slider,
which renders a frame only when scrubbed to, and its GIF) both turn a run into frames
here, so they agree on the frames, their titles and their colours:

* :func:`is_frame` / :func:`frame_states`: which states are frames (the one place that
  skips the restart);
* :func:`frame_title`: the line across a frame, ``"initial depth D0 · plan 12 + 6
  iterations"`` or ``"layer 1 · iteration 3 / 12"``;
* :class:`RunScales` from :func:`run_scales`: one depth scale and one error scale for
  every frame of a run, computed once, from the run's inputs (D0 and the ground truth), so
  they are known before the first frame and a colour means the same in every frame;
* :func:`render_frame` draws frame ``i`` on demand, :func:`render_frames` all of them.

The states are only read (their fields), so this module needs no torch at run time.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .colormaps import depth_range, error_range
from .frames import caption, refinement_frame

if TYPE_CHECKING:
    from ..pipeline import RefineState

__all__ = [
    "RunScales",
    "frame_states",
    "frame_title",
    "is_frame",
    "render_frame",
    "render_frames",
    "run_scales",
]

MASK_LABEL = "propagation mask"
NO_MASK_LABEL = "mask (off: ablation)"  # the paper's no-mask ablation (Fig. 10d)


@dataclass(frozen=True)
class RunScales:
    """The colour scales every frame of one run shares (from :func:`run_scales`).

    Attributes:
        depth_range: ``(vmin, vmax)`` metres of the depth panel's colours.
        error_vmax: metres at the top of the error panel's scale; None without ground
            truth (then no frame has an error panel).
    """

    depth_range: tuple[float, float]
    error_vmax: float | None = None


def run_scales(init_depth: np.ndarray, gt: np.ndarray | None = None) -> RunScales:
    """The scales of a run that starts from ``init_depth`` (D0), against ``gt`` if known.

    Depth: :func:`~sdr_core.viz.depth_range` of the ground truth and D0 pooled (D0 alone
    without ground truth). Error: :func:`~sdr_core.viz.error_range` of D0 against the
    ground truth, the largest error of the run's start, which the refinement then lowers.
    Both depend on the inputs only, so they are known before the first iteration (the
    studio streams frames as they come) and do not move with the refined depth.

    Args:
        init_depth: H x W initial depth D0 in metres, as given to ``refine_steps``.
        gt: H x W ground truth in metres (0 or non-finite where missing), or None.

    Returns:
        The run's :class:`RunScales`.

    Raises:
        ValueError: when the maps hold no valid depth (:func:`~sdr_core.viz.depth_range`).
    """
    if gt is None:
        return RunScales(depth_range(init_depth))
    return RunScales(depth_range(gt, init_depth), error_range([init_depth], gt))


def is_frame(state: RefineState) -> bool:
    """Whether ``state`` is shown as a frame: every state but layer 2's restart.

    The restart has the depth of layer 1's last state, the frame just before it; it stays
    a state of the run (layer 2's first iteration starts from it), but a frame of it would
    show the same depth twice.
    """
    return not state.is_restart


def frame_states(states: Iterable[RefineState]) -> list[RefineState]:
    """The states of a run that are frames, in order (idempotent: frames stay frames)."""
    return [state for state in states if is_frame(state)]


def frame_title(state: RefineState) -> str:
    """The line across a frame of ``state``, naming its place in the run.

    Layer 1's starting state reads ``"initial depth D0 · plan 12 + 6 iterations"`` (the
    state's schedule, eq. 13), an iteration ``"layer 1 · iteration 3 / 12"``
    (:func:`~sdr_core.viz.caption`).

    Raises:
        ValueError: for the restart, which is no frame (:func:`is_frame`).
    """
    if not is_frame(state):
        raise ValueError("layer 2's starting state (the restart) is no frame; see is_frame")
    if state.iteration == 0:
        first, second = state.schedule
        return f"initial depth D0 \u00b7 plan {first} + {second} iterations"
    return caption(state.layer, state.iteration, state.iterations_in_layer)


def render_frame(
    frames: Sequence[RefineState],
    index: int,
    scales: RunScales,
    gt: np.ndarray | None = None,
    hole: np.ndarray | None = None,
    use_mask: bool = True,
) -> np.ndarray:
    """Draw frame ``index`` of a run: depth | mask | (with ground truth) error, titled.

    Frames are drawn one at a time, when needed: the studio records every state of a run
    but draws only those it has time to stream, and any other when the user scrubs to it.

    Args:
        frames: the run's frames (:func:`frame_states`; a run still going on may be
            partial).
        index: which frame, from 0 (D0).
        scales: the run's :func:`run_scales`.
        gt: H x W ground truth in metres; adds the error panel when ``scales`` has an error
            scale.
        hole: H x W bool, the region without measurements; outlined on every panel.
        use_mask: False labels the mask panel as the no-mask ablation's.

    Returns:
        H' x W' x 3 uint8 (:func:`~sdr_core.viz.refinement_frame`).

    Raises:
        ValueError: ``index`` out of range, or ``frames[index]`` is the restart.
    """
    if not 0 <= index < len(frames):
        raise ValueError(f"frame {index} does not exist; the run has {len(frames)} frames")
    state = frames[index]
    return refinement_frame(
        state.depth,
        state.mask,
        frame_title(state),
        scales.depth_range,
        gt_m=gt if scales.error_vmax is not None else None,
        error_vmax=scales.error_vmax,
        hole_mask=hole,
        mask_label=MASK_LABEL if use_mask else NO_MASK_LABEL,
    )


def render_frames(
    states: Iterable[RefineState],
    scales: RunScales,
    gt: np.ndarray | None = None,
    hole: np.ndarray | None = None,
    use_mask: bool = True,
) -> list[np.ndarray]:
    """Every frame of a run, drawn (e.g. for the GIF); the restart is skipped.

    ``states`` may be the run as yielded or its :func:`frame_states`; the other arguments
    are :func:`render_frame`'s.
    """
    frames = frame_states(states)
    return [render_frame(frames, i, scales, gt, hole, use_mask) for i in range(len(frames))]
