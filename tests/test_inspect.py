"""sdr_core.inspect: one pixel's attention window equals the reference attention there."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import TINY

from sdr_core import build_untrained_pipeline
from sdr_core.attention import window_attention_reference
from sdr_core.inspect import attention_window, guidance_feature, state_before


@pytest.fixture(scope="module")
def pipe():
    return build_untrained_pipeline(TINY, device="cpu", seed=0)


@pytest.fixture(scope="module")
def inputs(pipe):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
    sparse = np.zeros((24, 32), np.float32)
    sparse[3, 4], sparse[20, 25], sparse[12, 0] = 2.0, 4.0, 3.0
    return image, sparse, pipe.estimate_depth(image)


@pytest.fixture(scope="module")
def states(pipe, inputs):
    image, sparse, init = inputs
    return list(pipe.refine_steps(image, sparse, init_depth=init))


PIXELS = [(0, 0), (10, 12), (3, 4), (23, 31), (12, 1)]  # corners, interior, measured, border


@pytest.mark.parametrize(("layer", "iteration"), [(1, 1), (1, 3), (2, 1), (2, 6)])
def test_window_reproduces_the_next_state(pipe, inputs, states, layer, iteration):
    image, sparse, init = inputs
    state = next(s for s in states if (s.layer, s.iteration) == (layer, iteration))
    for y, x in PIXELS:
        window = attention_window(pipe, image, sparse, init, y, x, layer, iteration)
        assert window.weights.sum() == pytest.approx(1.0, abs=1e-6)
        assert (window.weights >= 0).all()
        assert window.depth_after == pytest.approx(float(state.depth[y, x]), abs=1e-5)
        assert window.mask_after == pytest.approx(float(state.mask[y, x]), abs=1e-6)
        assert window.measured == bool(sparse[y, x] > 0)


def test_window_matches_the_reference_backend(pipe, inputs):
    image, sparse, init = inputs
    depth, mask = state_before(pipe, image, sparse, init, 1, 4)
    guidance = guidance_feature(pipe, image, sparse, init)
    layer = pipe.mspn.layers[0]
    with torch.inference_mode():
        qk = layer.affine_qk(guidance)
        as_map = lambda a: torch.from_numpy(a)[None, None]  # noqa: E731
        measured = as_map(sparse) > 0
        depth_tilde = torch.where(measured, as_map(sparse), as_map(depth))
        refined, grown = window_attention_reference(
            qk, depth_tilde, as_map(mask), layer.rel_pos_bias, 5
        )
    for y, x in PIXELS:
        window = attention_window(
            pipe, image, sparse, init, y, x, 1, 4, before=(depth, mask), guidance=guidance
        )
        assert window.refined == pytest.approx(float(refined[0, 0, y, x]), abs=1e-5)
        if not window.measured:
            assert window.mask_after == pytest.approx(float(grown[0, 0, y, x]), abs=1e-6)


def test_border_windows_shift_inward(pipe, inputs):
    image, sparse, init = inputs
    corner = attention_window(pipe, image, sparse, init, 23, 31, 1, 1)
    assert (corner.top, corner.left) == (19, 27)
    centre = attention_window(pipe, image, sparse, init, 10, 12, 1, 1)
    assert (centre.top, centre.left) == (8, 10)
    assert corner.window == 5


def test_layer_two_restarts_from_the_measurement_mask(pipe, inputs, states):
    image, sparse, init = inputs
    depth, mask = state_before(pipe, image, sparse, init, 2, 1)
    np.testing.assert_array_equal(mask, (sparse > 0).astype(np.float32))
    last_layer_one = [s for s in states if s.layer == 1][-1]
    np.testing.assert_allclose(depth, last_layer_one.depth, atol=1e-6)


def test_no_mask_ablation_uses_a_mask_of_ones(pipe, inputs):
    image, sparse, init = inputs
    window = attention_window(pipe, image, sparse, init, 10, 12, 1, 2, use_mask=False)
    assert (window.mask == 1).all()
    assert window.mask_after == 1.0


@pytest.mark.parametrize(
    ("y", "x", "layer", "iteration", "message"),
    [
        (24, 0, 1, 1, "outside the 24x32"),
        (0, 0, 3, 1, "layer must be 1 or 2"),
        (0, 0, 2, 7, "iteration must be between 1 and 6"),
        (0, 0, 1, 0, "iteration must be between 1"),
    ],
)
def test_bad_positions_raise(pipe, inputs, y, x, layer, iteration, message):
    image, sparse, init = inputs
    with pytest.raises(ValueError, match=message):
        attention_window(pipe, image, sparse, init, y, x, layer, iteration)
