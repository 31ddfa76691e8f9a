"""SDRPipeline: the public contract on a tiny untrained pipeline."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import TINY

from sdr_core import PipelineConfig, baselines, build_untrained_pipeline, iteration_count
from sdr_core.guidance import GuidanceConfig
from sdr_core.mspn import MSPNConfig
from sdr_core.sparse import SparsityWarning, random_points


@pytest.fixture(scope="module")
def pipe():
    return build_untrained_pipeline(TINY, device="cpu", seed=0)


@pytest.fixture
def scene():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
    gt = (1 + 4 * rng.random((30, 40))).astype(np.float32)
    return image, gt


def test_refine_contract_shapes_and_types(pipe, scene):
    image, gt = scene
    sparse = random_points(gt, 10, seed=1)
    result = pipe.refine(image, sparse)
    assert result.depth.shape == result.init_depth.shape == (30, 40)
    assert result.depth.dtype == np.float32
    assert result.schedule == (iteration_count(30, 40, 10, window=5), 6)
    assert result.n_points == 10
    measured = sparse > 0
    np.testing.assert_array_equal(result.depth[measured], sparse[measured])


def test_steps_and_one_shot_share_one_path(pipe, scene):
    image, gt = scene
    sparse = random_points(gt, 5, seed=2)
    init = pipe.estimate_depth(image)
    states = list(pipe.refine_steps(image, sparse, init_depth=init))
    n1, n2 = pipe.schedule(30, 40, 5)
    assert len(states) == 1 + n1 + 1 + n2  # each layer's starting state, then its iterations
    assert states[0].layer == 1
    assert states[0].iteration == 0
    assert [s.is_restart for s in states].count(True) == 1
    assert states[n1 + 1].is_restart
    assert states[-1].layer == 2
    assert states[-1].iteration == n2
    assert all(s.iterations_in_layer == (n1 if s.layer == 1 else n2) for s in states)
    assert all(s.schedule == (n1, n2) for s in states)
    result = pipe.refine(image, sparse, init_depth=init)
    np.testing.assert_array_equal(states[-1].depth, result.depth)


def test_bring_your_own_init_depth_is_used(pipe, scene):
    image, gt = scene
    sparse = np.zeros_like(gt)
    sparse[15, 20] = gt[15, 20]
    init = np.full_like(gt, 2.5)
    result = pipe.refine(image, sparse, init_depth=init)
    np.testing.assert_array_equal(result.init_depth, init)
    # pixels beyond the first layer's reach of one point keep D0 after iteration 1
    first = next(s for s in pipe.refine_steps(image, sparse, init_depth=init) if s.iteration)
    assert first.depth[0, 0] == pytest.approx(2.5)


def test_hole_mask_drops_measurements(pipe, scene):
    image, gt = scene
    sparse = random_points(gt, 50, seed=3)
    hole = np.zeros(gt.shape, dtype=bool)
    hole[5:25, 5:35] = True
    result = pipe.refine(image, sparse, hole_mask=hole)
    assert result.n_points == int(((sparse > 0) & ~hole).sum())


def test_zero_points_is_a_documented_no_op(pipe, scene):
    image, gt = scene
    sparse = np.zeros_like(gt)
    with pytest.warns(SparsityWarning, match="no sparse depth"):
        assert list(pipe.refine_steps(image, sparse)) == []
    init = np.full_like(gt, 3.0)
    with pytest.warns(SparsityWarning, match="returned unchanged"):
        result = pipe.refine(image, sparse, init_depth=init)
    np.testing.assert_array_equal(result.depth, init)
    assert result.schedule == (0, 0)


def test_no_mask_ablation_runs(pipe, scene):
    image, gt = scene
    sparse = random_points(gt, 5, seed=4)
    a = pipe.refine(image, sparse, use_mask=False)
    b = pipe.refine(image, sparse)
    assert not np.array_equal(a.depth, b.depth)


def test_bad_inputs_give_clear_messages(pipe, scene):
    image, gt = scene
    sparse = random_points(gt, 5, seed=5)
    with pytest.raises(ValueError, match="30x40"):
        pipe.refine(image, sparse[:20])
    with pytest.raises(ValueError, match="smaller than the 5x5 MSPN window"):
        pipe.refine(image[:4, :4], sparse[:4, :4])
    with pytest.raises(ValueError, match="initial depth must be positive"):
        pipe.refine(image, sparse, init_depth=np.zeros_like(gt))
    nan_sparse = sparse.copy()
    nan_sparse[0, 0] = np.nan  # documented: NaN -> missing
    assert pipe.refine(image, nan_sparse).n_points == 5


def test_config_mismatch_is_rejected():
    with pytest.raises(ValueError, match="must equal mspn.guidance_dim"):
        PipelineConfig(GuidanceConfig(out_dim=8), MSPNConfig(guidance_dim=16))


def test_steps_can_be_resumed_on_another_thread(pipe, scene):
    # A web server resumes the generator on worker threads; no mode may leak across yields.
    import threading

    image, gt = scene
    steps = pipe.refine_steps(image, random_points(gt, 5, seed=6))
    first = next(steps)
    rest = []
    worker = threading.Thread(target=lambda: rest.extend(steps))
    worker.start()
    worker.join()
    assert first.iteration == 0
    assert rest
    assert rest[-1].layer == 2


def test_mspn_without_mask_baseline_matches_the_ablation(pipe, scene):
    from sdr_core.baselines import mspn_without_mask

    image, gt = scene
    sparse = random_points(gt, 5, seed=7)
    init = pipe.estimate_depth(image)
    expected = pipe.refine(image, sparse, init_depth=init, use_mask=False).depth
    np.testing.assert_array_equal(mspn_without_mask(pipe, image, init, sparse), expected)


def test_yielded_arrays_are_independent_copies(pipe, scene):
    image, gt = scene
    states = list(pipe.refine_steps(image, random_points(gt, 5, seed=8), use_mask=False))
    states[0].depth[:] = -1.0
    states[0].mask[:] = -1.0
    assert (states[1].depth > 0).all()
    assert (states[1].mask == 1).all()


def test_lidar_lines_schedule_uses_points_per_line(pipe, scene):
    from sdr_core.sparse import lidar_lines, schedule_points

    image, gt = scene
    sparse = lidar_lines(gt, 4, seed=0, total_lines=8, column_step=2)
    per_line = schedule_points(sparse, n_lines=4)
    assert per_line == max(1, int((sparse > 0).sum()) // 4)
    result = pipe.refine(image, sparse, n_lines=4)
    assert result.schedule == pipe.schedule(30, 40, per_line)


def test_with_mspn_config_shares_weights_and_changes_only_the_schedule(pipe, scene):
    image, gt = scene
    sparse = random_points(gt, 3, seed=4)
    longer = pipe.with_mspn_config(second_layer_schedule="eq13")
    assert longer.mde is pipe.mde
    assert longer.guidance is pipe.guidance
    assert pipe.config.mspn.second_layer_schedule == "fixed"  # the original is untouched
    n1, n2 = longer.schedule(30, 40, 3)
    assert n2 == n1 == pipe.schedule(30, 40, 3)[0]
    assert pipe.schedule(30, 40, 3)[1] == 6
    # Same weights: with the original schedule forced, both give the same depth.
    init = pipe.estimate_depth(image)
    schedule = pipe.schedule(30, 40, 3)
    a = pipe.refine(image, sparse, init_depth=init, schedule=schedule).depth
    b = longer.refine(image, sparse, init_depth=init, schedule=schedule).depth
    np.testing.assert_array_equal(a, b)
    iterations = [s for s in longer.refine_steps(image, sparse, init_depth=init) if s.iteration]
    assert len(iterations) == n1 + n2


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"window": 7}, "shapes"),
        ({"embed_dim": 8}, "shapes"),
        ({"colour": "red"}, "unknown MSPN setting"),
        ({"second_layer_schedule": "longer"}, "second_layer_schedule"),
        ({"kappa": -1.0}, "kappa"),
    ],
)
def test_with_mspn_config_rejects_bad_settings(pipe, changes, message):
    with pytest.raises(ValueError, match=message):
        pipe.with_mspn_config(**changes)


def test_first_state_is_what_the_mspn_starts_from(pipe, scene):
    image, gt = scene
    sparse = random_points(gt, 6, seed=9)
    init = pipe.estimate_depth(image)
    states = list(pipe.refine_steps(image, sparse, init_depth=init))
    measured = sparse > 0
    np.testing.assert_array_equal(states[0].depth, np.where(measured, sparse, init))
    np.testing.assert_array_equal(states[0].mask, measured.astype(np.float32))
    restart = next(s for s in states if s.is_restart)
    np.testing.assert_array_equal(restart.depth, [s for s in states if s.layer == 1][-1].depth)
    np.testing.assert_array_equal(restart.mask, measured.astype(np.float32))
    # A model that aligns D0 to S first starts from the aligned D0; init_depth stays D0.
    aligned = pipe.with_mspn_config(init_alignment="least_squares")
    start = next(aligned.refine_steps(image, sparse, init_depth=init))
    expected = baselines.least_squares_scale_shift(init, sparse)
    np.testing.assert_allclose(start.depth[~measured], expected[~measured], rtol=1e-5)
    np.testing.assert_array_equal(start.depth[measured], sparse[measured])
    assert not np.allclose(start.depth, np.where(measured, sparse, init))
    np.testing.assert_array_equal(aligned.refine(image, sparse, init_depth=init).init_depth, init)


# ----------------------------------------------------------------------------- one pixel
@pytest.fixture(scope="module")
def pixel_run(pipe):
    """A small run with three measurements (one on the border) and every state kept."""
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
    sparse = np.zeros((24, 32), np.float32)
    sparse[3, 4], sparse[20, 25], sparse[12, 0] = 2.0, 4.0, 3.0
    init = pipe.estimate_depth(image)
    return image, sparse, init, list(pipe.refine_steps(image, sparse, init_depth=init))


PIXELS = [(0, 0), (10, 12), (3, 4), (23, 31), (12, 1)]  # corners, interior, measured, border


@pytest.mark.parametrize(("layer", "iteration"), [(1, 1), (1, 3), (2, 1), (2, 6)])
def test_window_weights_reproduce_the_next_state(pipe, pixel_run, layer, iteration):
    image, sparse, init, states = pixel_run
    index = next(i for i, s in enumerate(states) if (s.layer, s.iteration) == (layer, iteration))
    state, before = states[index], states[index - 1]  # layer 2 starts from its restart
    guidance = pipe.guidance_feature(image, sparse, init)
    for y, x in PIXELS:
        window = pipe.window_weights(image, sparse, init, before, y, x, guidance=guidance)
        assert (window.layer, window.iteration) == (layer, iteration)
        assert window.weights.sum() == pytest.approx(1.0, abs=1e-6)
        assert (window.weights >= 0).all()
        assert window.depth_after == pytest.approx(float(state.depth[y, x]), abs=1e-5)
        assert window.mask_after == pytest.approx(float(state.mask[y, x]), abs=1e-6)
        assert window.measured == bool(sparse[y, x] > 0)
    unguided = pipe.window_weights(image, sparse, init, before, 10, 12)  # G computed here
    assert unguided.depth_after == pytest.approx(float(state.depth[10, 12]), abs=1e-5)


def test_window_weights_match_the_reference_backend(pipe, pixel_run):
    import torch

    from sdr_core.attention import window_attention_reference

    image, sparse, init, states = pixel_run
    before = next(s for s in states if (s.layer, s.iteration) == (1, 3))
    guidance = pipe.guidance_feature(image, sparse, init)
    layer = pipe.mspn.layers[0]
    with torch.inference_mode():
        qk = layer.affine_qk(guidance)
        as_map = lambda a: torch.from_numpy(a)[None, None]  # noqa: E731
        measured = as_map(sparse) > 0
        depth_tilde = torch.where(measured, as_map(sparse), as_map(before.depth))
        refined, grown = window_attention_reference(
            qk, depth_tilde, as_map(before.mask), layer.rel_pos_bias, 5
        )
    for y, x in PIXELS:
        window = pipe.window_weights(image, sparse, init, before, y, x, guidance=guidance)
        assert window.refined == pytest.approx(float(refined[0, 0, y, x]), abs=1e-5)
        if not window.measured:
            assert window.mask_after == pytest.approx(float(grown[0, 0, y, x]), abs=1e-6)


def test_window_weights_shift_inward_at_the_border(pipe, pixel_run):
    image, sparse, init, states = pixel_run
    corner = pipe.window_weights(image, sparse, init, states[0], 23, 31)
    assert (corner.top, corner.left) == (19, 27)
    centre = pipe.window_weights(image, sparse, init, states[0], 10, 12)
    assert (centre.top, centre.left) == (8, 10)
    assert corner.window == 5


def test_layer_two_starts_from_the_measurement_mask(pipe, pixel_run):
    image, sparse, init, states = pixel_run
    restart = next(s for s in states if s.is_restart)
    window = pipe.window_weights(image, sparse, init, restart, 10, 12)
    assert (window.layer, window.iteration) == (2, 1)
    np.testing.assert_array_equal(window.mask, (sparse > 0)[8:13, 10:15].astype(np.float32))


def test_window_weights_of_the_no_mask_ablation_use_a_mask_of_ones(pipe, pixel_run):
    image, sparse, init, _ = pixel_run
    states = list(pipe.refine_steps(image, sparse, init_depth=init, use_mask=False))
    window = pipe.window_weights(image, sparse, init, states[1], 10, 12, use_mask=False)
    assert (window.mask == 1).all()
    assert window.mask_after == 1.0


def test_window_weights_refuse_bad_pixels_and_states(pipe, pixel_run):
    import dataclasses

    image, sparse, init, states = pixel_run
    with pytest.raises(ValueError, match="outside the 24x32"):
        pipe.window_weights(image, sparse, init, states[0], 24, 0)
    with pytest.raises(ValueError, match="layer must be 1 or 2"):
        pipe.window_weights(
            image, sparse, init, dataclasses.replace(states[0], layer=3, schedule=(1, 1, 1)), 0, 0
        )
    last = states[-1]  # layer 2, iteration 6: no iteration of layer 2 starts from it
    with pytest.raises(ValueError, match="runs 6 iterations: no iteration"):
        pipe.window_weights(image, sparse, init, last, 0, 0)
    with pytest.raises(ValueError, match="state depth"):
        pipe.window_weights(image, sparse[:20], init, states[0], 0, 0)


def test_the_first_state_comes_before_the_guidance_network_runs(pipe, scene, monkeypatch):
    # a viewer shows D0 with the measurements at once, while G is computed
    image, gt = scene
    calls = []
    forward = pipe.guidance.forward
    monkeypatch.setattr(pipe.guidance, "forward", lambda *a: calls.append(1) or forward(*a))
    steps = pipe.refine_steps(image, random_points(gt, 5, seed=10))
    assert next(steps).iteration == 0
    assert calls == []
    assert next(steps).iteration == 1
    assert calls == [1]
    assert list(steps)[-1].layer == 2
    assert calls == [1]  # once per run


def test_a_given_guidance_feature_gives_the_same_run_without_the_network(pipe, scene, monkeypatch):
    # the studio computes G before Refine (studio.prefetch) and hands it in
    image, gt = scene
    sparse = random_points(gt, 7, seed=11)
    expected = list(pipe.refine_steps(image, sparse))
    guidance = pipe.guidance_feature(image, sparse)
    calls = []
    forward = pipe.guidance.forward
    monkeypatch.setattr(pipe.guidance, "forward", lambda *a: calls.append(1) or forward(*a))
    for given in (guidance, lambda: guidance):
        states = list(pipe.refine_steps(image, sparse, guidance=given))
        assert len(states) == len(expected)
        for state, reference in zip(states, expected, strict=True):
            np.testing.assert_array_equal(state.depth, reference.depth)
            np.testing.assert_array_equal(state.mask, reference.mask)
    assert calls == []
    other = pipe.guidance_feature(image, random_points(gt, 7, seed=12))
    assert not np.array_equal(
        list(pipe.refine_steps(image, sparse, guidance=other))[-1].depth, expected[-1].depth
    )


def test_a_given_guidance_feature_of_the_wrong_shape_is_refused(pipe, scene):
    image, gt = scene
    sparse = random_points(gt, 7, seed=11)
    guidance = pipe.guidance_feature(image, sparse)
    for wrong in (guidance[:, :3], guidance[..., :20], lambda: guidance[..., :20]):
        with pytest.raises(ValueError, match="guidance must be a tensor of shape"):
            list(pipe.refine_steps(image, sparse, guidance=wrong))
