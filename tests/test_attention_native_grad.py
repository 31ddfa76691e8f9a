"""The differentiable native backend (C forward and backward): its code paths and training.

The shared fixture in test_attention.py checks ``native_grad`` like every backend; here are
the shapes that take its different loops (odd sizes, windows as tall as the image, E not a
multiple of the vector width, the paper's E = 64 and p = 13), with forward values and
gradients against the reference in float64 and the tolerances of tests/attention_inputs.py
(measured worst over these shapes: forward 4.8e-6, gradients 2.2e-6 of their scale).
"""

from __future__ import annotations

from functools import partial

import pytest
import torch
from attention_inputs import (
    BACKWARD_RTOL,
    FORWARD_ATOL,
    BackendCase,
    chained_gradients,
    expected_outputs,
    make_inputs,
)

from sdr_core.attention import (
    available_backends,
    native,
    prepare_attention,
    resolve_backend,
    window_attention,
)
from sdr_core.attention.native_grad import prepare_native_grad
from sdr_core.mspn import MSPN, MSPNConfig

pytestmark = pytest.mark.skipif(
    not native.can_run_native(),
    reason="native attention backend unavailable (no working C compiler; see the log)",
)

SHAPES = [
    # batch, embed, height, width, window
    (2, 8, 17, 23, 7),  # odd sizes, batch 2
    (1, 16, 13, 29, 13),  # window as tall as the image: every row border-shifted
    (1, 64, 30, 37, 13),  # paper sizes E = 64, p = 13
    (1, 5, 9, 11, 3),  # embed not a multiple of the vector width
]


NATIVE_GRAD = BackendCase("native_grad", "cpu")
REFERENCE = partial(prepare_attention, backend="reference")


def _leaves(batch: int, embed: int, height: int, width: int, window: int, seed: int = 0):
    """query_base, key_base, query_depth, key_depth, depth, mask, bias (float32)."""
    qk, depth, mask, bias = make_inputs(batch, embed, height, width, window, seed=seed)
    return [qk.query_base, qk.key_base, qk.query_depth, qk.key_depth, depth, mask, bias]


@pytest.mark.parametrize(("batch", "embed", "height", "width", "window"), SHAPES)
def test_forward_matches_reference(
    batch: int, embed: int, height: int, width: int, window: int
) -> None:
    qk, depth, mask, bias = make_inputs(batch, embed, height, width, window)
    expected = expected_outputs(NATIVE_GRAD, qk, depth, mask, bias, window)
    got = prepare_native_grad(qk, window)(depth, mask, bias)
    for g, e in zip(got, expected, strict=True):
        assert g.shape == e.shape
        torch.testing.assert_close(g.double(), e, atol=FORWARD_ATOL[torch.float32], rtol=0)


def _gradient_errors(leaves: list[torch.Tensor], window: int) -> dict[str, float]:
    """Per input: max |native_grad - float64 reference| over max(scale, 1)."""
    ours = chained_gradients(prepare_native_grad, leaves, window)
    want = chained_gradients(REFERENCE, [t.double() for t in leaves], window)
    names = ["query_base", "key_base", "query_depth", "key_depth", "depth", "mask", "bias"]
    return {
        name: float((g.double() - w).abs().max()) / max(float(w.abs().max()), 1.0)
        for name, g, w in zip(names, ours, want, strict=True)
    }


@pytest.mark.parametrize(("batch", "embed", "height", "width", "window"), SHAPES)
def test_gradients_match_reference(
    batch: int, embed: int, height: int, width: int, window: int
) -> None:
    errors = _gradient_errors(_leaves(batch, embed, height, width, window, seed=2), window)
    assert max(errors.values()) <= BACKWARD_RTOL[torch.float32], errors


def test_single_reliable_pixel_in_a_corner_gets_gradient_only_nearby() -> None:
    """Border-shifted windows: the gradient reaches exactly the keys the window reads."""
    leaves = _leaves(1, 8, 20, 24, 7, seed=3)
    leaves[5] = torch.zeros_like(leaves[5])
    leaves[5][0, 0, 0, 23] = 1.0
    errors = _gradient_errors(leaves, 7)
    assert max(errors.values()) <= BACKWARD_RTOL[torch.float32], errors


def test_front_door_and_training_pick_native_grad() -> None:
    assert "native_grad" in available_backends("cpu", requires_grad=True)
    assert "native" not in available_backends("cpu", requires_grad=True)
    assert resolve_backend("auto", "cpu", requires_grad=True) == "native_grad"
    assert resolve_backend("auto", "cpu") == "native"
    qk, depth, mask, bias = make_inputs(1, 8, 14, 30, 7, seed=4)
    got = window_attention(qk, depth, mask, bias, 7, backend="native_grad")
    expected = expected_outputs(NATIVE_GRAD, qk, depth, mask, bias, 7)
    for g, e in zip(got, expected, strict=True):
        torch.testing.assert_close(g.double(), e, atol=FORWARD_ATOL[torch.float32], rtol=0)


def test_mspn_training_gradients_match_fast() -> None:
    """Whole two-layer MSPN, every iteration backpropagated: same parameter gradients."""
    g = torch.Generator().manual_seed(5)
    init = 1 + 4 * torch.rand(1, 1, 24, 30, generator=g)
    sparse = torch.zeros_like(init)
    sparse[0, 0, 5, 7], sparse[0, 0, 18, 25] = 2.0, 3.5
    guidance = torch.randn(1, 16, 24, 30, generator=g)
    grads = {}
    for backend in ("fast", "native_grad"):
        torch.manual_seed(0)
        mspn = MSPN(MSPNConfig(guidance_dim=16, embed_dim=8, window=7, backend=backend))
        out = mspn(init, sparse, guidance, (5, 3))
        (out * torch.linspace(0, 1, out.numel()).view_as(out)).sum().backward()
        grads[backend] = {n: p.grad.clone() for n, p in mspn.named_parameters()}
    for name, expected in grads["fast"].items():
        got = grads["native_grad"][name]
        scale = max(float(expected.abs().max()), 1e-3)
        assert float((got - expected).abs().max()) <= 1e-4 * scale, name
