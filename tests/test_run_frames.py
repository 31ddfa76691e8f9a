"""Tests of sdr_core.viz.run_frames: a refinement run as frames (the CLI's and the studio's)."""

from __future__ import annotations

import numpy as np
import pytest

from sdr_core import viz
from sdr_core.pipeline import RefineState

H, W = 12, 16
SCHEDULE = (3, 2)


def _run(schedule: tuple[int, int] = SCHEDULE) -> list[RefineState]:
    """A run as refine_steps yields it: layer 1 from iteration 0, layer 2 from its restart."""
    rng = np.random.default_rng(0)
    states = []
    for layer, iterations in enumerate(schedule, start=1):
        for iteration in range(iterations + 1):
            depth = (1.0 + 4.0 * rng.random((H, W))).astype(np.float32)
            mask = rng.random((H, W)).astype(np.float32)
            states.append(RefineState(layer, iteration, schedule, depth, mask))
    return states


def _gt() -> np.ndarray:
    gt = np.tile(np.linspace(1.0, 5.0, W, dtype=np.float32), (H, 1))
    gt[0, :3] = 0.0  # missing ground truth
    return gt


def test_the_restart_is_the_only_state_that_is_no_frame():
    states = _run()
    frames = viz.frame_states(states)
    assert [s.is_restart for s in states].count(True) == 1
    assert len(frames) == 1 + sum(SCHEDULE) == len(states) - 1
    assert all(viz.is_frame(s) for s in frames)
    assert viz.frame_states(frames) == frames  # idempotent


def test_frame_titles_name_d0_with_its_plan_and_each_iteration():
    titles = [viz.frame_title(s) for s in viz.frame_states(_run())]
    assert titles == [
        "initial depth D0 \u00b7 plan 3 + 2 iterations",
        "layer 1 · iteration 1 / 3",
        "layer 1 · iteration 2 / 3",
        "layer 1 · iteration 3 / 3",
        "layer 2 · iteration 1 / 2",
        "layer 2 · iteration 2 / 2",
    ]
    restart = next(s for s in _run() if s.is_restart)
    with pytest.raises(ValueError, match="restart"):
        viz.frame_title(restart)


def test_run_scales_pool_gt_and_d0_and_take_the_error_of_d0():
    init, gt = _run()[0].depth, _gt()
    scales = viz.run_scales(init, gt)
    assert scales == viz.RunScales(viz.depth_range(gt, init), viz.error_range([init], gt))
    assert viz.run_scales(init) == viz.RunScales(viz.depth_range(init), None)
    with pytest.raises(AttributeError):  # frozen: one scale for the whole run
        scales.error_vmax = 1.0  # type: ignore[misc]


def test_render_frame_draws_the_frame_with_its_title_and_scales():
    states, gt = _run(), _gt()
    frames = viz.frame_states(states)
    scales = viz.run_scales(frames[0].depth, gt)
    for index in (0, 4):
        expected = viz.refinement_frame(
            frames[index].depth,
            frames[index].mask,
            viz.frame_title(frames[index]),
            scales.depth_range,
            gt_m=gt,
            error_vmax=scales.error_vmax,
        )
        np.testing.assert_array_equal(viz.render_frame(frames, index, scales, gt), expected)
    with pytest.raises(ValueError, match="frame 6 does not exist; the run has 6 frames"):
        viz.render_frame(frames, 6, scales, gt)
    with pytest.raises(ValueError, match="restart"):
        viz.render_frame(states, SCHEDULE[0] + 1, scales, gt)  # not filtered: the restart


def test_render_frame_panels_follow_the_ground_truth_and_the_mask_setting():
    frames = viz.frame_states(_run())
    gt = _gt()
    with_error = viz.render_frame(frames, 1, viz.run_scales(frames[0].depth, gt), gt)
    without = viz.render_frame(frames, 1, viz.run_scales(frames[0].depth))
    assert with_error.shape[0] == without.shape[0]
    assert with_error.shape[1] > without.shape[1]  # the error panel
    scales = viz.run_scales(frames[0].depth)
    np.testing.assert_array_equal(  # no error scale: the ground truth draws nothing
        viz.render_frame(frames, 1, scales, gt), viz.render_frame(frames, 1, scales)
    )
    ablation = viz.render_frame(frames, 1, scales, use_mask=False)
    assert ablation.shape == without.shape
    assert not np.array_equal(ablation, without)  # the mask panel's label
    hole = np.zeros((H, W), bool)
    hole[4:8, 4:10] = True
    assert not np.array_equal(viz.render_frame(frames, 1, scales, hole=hole), without)


def test_render_frames_draws_every_frame_once_from_the_raw_run():
    states, gt = _run(), _gt()
    frames = viz.frame_states(states)
    scales = viz.run_scales(frames[0].depth, gt)
    drawn = viz.render_frames(states, scales, gt)
    assert len(drawn) == len(frames)
    for index in (0, len(frames) - 1):
        np.testing.assert_array_equal(drawn[index], viz.render_frame(frames, index, scales, gt))
    assert viz.render_frames([], scales) == []
