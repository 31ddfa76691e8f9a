"""The differentiable native backend (C forward and backward) against the torch backends.

Forward values are compared with the reference oracle, gradients with the ``fast`` backend's
autograd (itself checked against the reference and by gradcheck in test_attention.py).
Both run in float32; gradients are compared relative to their largest entry (tolerance
1e-5 of the scale, measured worst 2e-6).
"""

from __future__ import annotations

import pytest
import torch

from sdr_core.attention import (
    AffineQK,
    available_backends,
    native,
    resolve_backend,
    window_attention,
    window_attention_reference,
)
from sdr_core.attention.fast import prepare_fast
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


def _leaves(
    batch: int, embed: int, height: int, width: int, window: int, seed: int = 0
) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    keep = torch.rand(batch, 1, height, width, generator=g) > 0.3
    return [
        torch.randn(batch, embed, height, width, generator=g) * 0.3,
        torch.randn(batch, embed, height, width, generator=g) * 0.3,
        torch.randn(embed, generator=g) * 0.05,
        torch.randn(embed, generator=g) * 0.05,
        0.5 + 9.5 * torch.rand(batch, 1, height, width, generator=g),
        keep * torch.rand(batch, 1, height, width, generator=g),
        torch.randn(2 * window - 1, 2 * window - 1, generator=g) * 0.5,
    ]


def _run(prepare, leaves: list[torch.Tensor], window: int, seed: int = 1):  # noqa: ANN001, ANN202
    """Two chained iterations (the second reads the first's outputs), then backward."""
    xs = [t.clone().requires_grad_() for t in leaves]
    attend = prepare(AffineQK(*xs[:4]), window)
    refined, mask = attend(xs[4], xs[5], xs[6])
    refined2, mask2 = attend(refined, mask, xs[6])
    g = torch.Generator().manual_seed(seed)
    weights = [torch.randn(refined.shape, generator=g) for _ in range(3)]
    loss = (refined2 * weights[0]).sum() + (mask2 * weights[1]).sum() + (refined * weights[2]).sum()
    loss.backward()
    return refined2.detach(), mask2.detach(), [x.grad for x in xs]


@pytest.mark.parametrize(("batch", "embed", "height", "width", "window"), SHAPES)
def test_forward_matches_reference(
    batch: int, embed: int, height: int, width: int, window: int
) -> None:
    leaves = _leaves(batch, embed, height, width, window)
    qk = AffineQK(*leaves[:4])
    expected = window_attention_reference(qk, *leaves[4:], window)
    got = prepare_native_grad(qk, window)(*leaves[4:])
    for g, e in zip(got, expected, strict=True):
        assert g.shape == e.shape
        torch.testing.assert_close(g, e, atol=1e-5, rtol=0)


@pytest.mark.parametrize(("batch", "embed", "height", "width", "window"), SHAPES)
def test_gradients_match_fast_backend(
    batch: int, embed: int, height: int, width: int, window: int
) -> None:
    leaves = _leaves(batch, embed, height, width, window, seed=2)
    fast = _run(prepare_fast, leaves, window)
    ours = _run(prepare_native_grad, leaves, window)
    torch.testing.assert_close(ours[0], fast[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(ours[1], fast[1], atol=1e-5, rtol=0)
    names = ["query_base", "key_base", "query_depth", "key_depth", "depth", "mask", "bias"]
    for name, got, expected in zip(names, ours[2], fast[2], strict=True):
        scale = float(expected.abs().max())
        assert got is not None, name
        err = float((got - expected).abs().max())
        assert err <= 1e-5 * max(scale, 1.0), f"{name}: max error {err:.3g} at scale {scale:.3g}"


def test_single_reliable_pixel_in_a_corner_gets_gradient_only_nearby() -> None:
    """Border-shifted windows: the gradient reaches exactly the keys the window reads."""
    leaves = _leaves(1, 8, 20, 24, 7, seed=3)
    leaves[5] = torch.zeros_like(leaves[5])
    leaves[5][0, 0, 0, 23] = 1.0
    fast = _run(prepare_fast, leaves, 7)
    ours = _run(prepare_native_grad, leaves, 7)
    torch.testing.assert_close(ours[2][5], fast[2][5], atol=1e-5, rtol=1e-5)


def test_front_door_and_training_pick_native_grad() -> None:
    assert "native_grad" in available_backends("cpu", requires_grad=True)
    assert "native" not in available_backends("cpu", requires_grad=True)
    assert resolve_backend("auto", "cpu", requires_grad=True) == "native_grad"
    assert resolve_backend("auto", "cpu") == "native"
    leaves = _leaves(1, 8, 14, 30, 7, seed=4)
    got = window_attention(AffineQK(*leaves[:4]), *leaves[4:], 7, backend="native_grad")
    expected = window_attention_reference(AffineQK(*leaves[:4]), *leaves[4:], 7)
    for g, e in zip(got, expected, strict=True):
        torch.testing.assert_close(g, e, atol=1e-5, rtol=0)


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
