"""Every attention backend against the reference: forward, gradients, border rule, errors."""

from __future__ import annotations

from functools import partial

import pytest
import torch

from sdr_core.attention import (
    AffineQK,
    available_backends,
    gather_windows,
    relative_bias_windows,
    resolve_backend,
    window_attention,
    window_attention_reference,
    window_starts,
)

CASES = [  # (B, E, H, W, window): a window equal to the image, odd sizes, batch 2
    (1, 4, 7, 9, 3),
    (2, 8, 13, 11, 5),
    (1, 2, 7, 7, 7),
    (1, 16, 15, 17, 13),
]


def _inputs(b, e, h, w, window, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    qk = AffineQK(
        torch.randn(b, e, h, w, generator=g, dtype=dtype),
        torch.randn(b, e, h, w, generator=g, dtype=dtype),
        torch.randn(e, generator=g, dtype=dtype) * 0.3,
        torch.randn(e, generator=g, dtype=dtype) * 0.3,
    )
    depth = 0.5 + 9.5 * torch.rand(b, 1, h, w, generator=g, dtype=dtype)
    keep = (torch.rand(b, 1, h, w, generator=g) > 0.4).to(dtype)
    mask = keep * torch.rand(b, 1, h, w, generator=g, dtype=dtype)
    bias = torch.randn(2 * window - 1, 2 * window - 1, generator=g, dtype=dtype)
    return qk, depth, mask, bias


def test_window_starts_shift_inward_at_borders():
    assert window_starts(7, 3).tolist() == [0, 0, 1, 2, 3, 4, 4]
    assert window_starts(5, 5).tolist() == [0, 0, 0, 0, 0]


def test_gather_windows_matches_hand_indexing():
    x = torch.arange(20.0).view(1, 1, 4, 5)
    windows = gather_windows(x, 3)  # 1 x 1 x 9 x 4 x 5
    # pixel (0, 0): window rows 0-2, cols 0-2 (shifted inward)
    assert windows[0, 0, :, 0, 0].tolist() == [0, 1, 2, 5, 6, 7, 10, 11, 12]
    # pixel (3, 4): window rows 1-3, cols 2-4
    assert windows[0, 0, :, 3, 4].tolist() == [7, 8, 9, 12, 13, 14, 17, 18, 19]


def test_relative_bias_indexed_by_true_offset():
    window = 3
    bias = torch.arange(25.0).view(5, 5)  # offsets -2..2 in each axis
    per_pixel = relative_bias_windows(bias, 4, 5)
    # centre pixel (1, 1): offsets -1..1 -> rows 1..3 of the table
    assert per_pixel[:, 1, 1].tolist() == [6, 7, 8, 11, 12, 13, 16, 17, 18]
    # corner pixel (0, 0): window rows/cols 0..2 -> offsets 0..2 -> table rows/cols 2..4
    assert per_pixel[:, 0, 0].tolist() == [12, 13, 14, 17, 18, 19, 22, 23, 24]
    assert per_pixel.shape == (window * window, 4, 5)


@pytest.mark.parametrize("backend", available_backends())
@pytest.mark.parametrize("case", CASES)
def test_backend_matches_reference(backend, case):
    *shape, window = case
    qk, depth, mask, bias = _inputs(*shape, window)
    expected = window_attention_reference(qk, depth, mask, bias, window)
    actual = window_attention(qk, depth, mask, bias, window, backend=backend)
    for got, want in zip(actual, expected, strict=True):
        assert got.shape == want.shape
        # measured worst error of fast vs reference over these cases: 1.5e-6 (float32)
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_gradients_match_reference():
    qk, depth, mask, bias = _inputs(2, 4, 9, 8, 5, dtype=torch.float64, seed=1)
    leaves = [qk.query_base, qk.key_base, qk.query_depth, qk.key_depth, depth, mask, bias]
    g = torch.Generator().manual_seed(2)
    d_refined = torch.randn(2, 1, 9, 8, generator=g, dtype=torch.float64)
    d_mask = torch.randn(2, 1, 9, 8, generator=g, dtype=torch.float64)
    grads = {}
    for backend in ("reference", "fast"):
        params = [t.clone().requires_grad_() for t in leaves]
        qk_b = AffineQK(*params[:4])
        refined, next_mask = window_attention(qk_b, *params[4:6], params[6], 5, backend=backend)
        ((refined * d_refined).sum() + (next_mask * d_mask).sum()).backward()
        grads[backend] = [p.grad for p in params]
    for got, want in zip(grads["fast"], grads["reference"], strict=True):
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("backend", ["reference", "fast"])
def test_gradcheck(backend):
    qk, depth, mask, bias = _inputs(1, 2, 5, 6, 3, dtype=torch.float64)
    tensors = [qk.query_base, qk.key_base, qk.query_depth, qk.key_depth, depth, mask, bias]
    tensors = [t.clone().requires_grad_() for t in tensors]

    def fn(qb, kb, qd, kd, d, m, b):
        return window_attention(AffineQK(qb, kb, qd, kd), d, m, b, 3, backend=backend)

    assert torch.autograd.gradcheck(fn, tensors, fast_mode=True)


@pytest.mark.parametrize("backend", available_backends())
def test_constant_depth_stays_constant_at_borders(backend):
    # Weights over in-image pixels sum to 1, so a constant field comes back unchanged
    # everywhere, corners included; a zero-padded window would pull the border down.
    qk, _, _, bias = _inputs(1, 4, 9, 10, 5)
    depth = torch.full((1, 1, 9, 10), 3.0)
    mask = torch.ones(1, 1, 9, 10)
    refined, next_mask = window_attention(qk, depth, mask, bias, 5, backend=backend)
    torch.testing.assert_close(refined, depth)
    torch.testing.assert_close(next_mask, mask)


@pytest.mark.parametrize("backend", available_backends())
def test_one_point_near_corner_never_mixes_with_padding(backend):
    # One reliable pixel at (1, 1): with masked keys its neighbours' new mask is exactly the
    # attention weight on that pixel, and pixels farther than the window see mask 0.
    window = 5
    qk, depth, _, bias = _inputs(1, 4, 11, 12, window, seed=3)
    mask = torch.zeros(1, 1, 11, 12)
    mask[0, 0, 1, 1] = 1.0
    _, next_mask = window_attention(qk, depth, mask, bias, window, backend=backend)
    reach = torch.zeros_like(mask, dtype=torch.bool)
    reach[0, 0, :4, :4] = True  # start clamp(i - 2, 0, H - 5) <= 1 only for i <= 3
    assert (next_mask[~reach] == 0).all()
    assert (next_mask[reach] > 0).all()
    assert (next_mask <= 1).all()


def test_masked_keys_give_bias_only_softmax():
    # With mask 0 everywhere each logit is just the bias, so the attention is softmax(b).
    window = 3
    qk, depth, _, bias = _inputs(1, 3, 6, 6, window)
    mask = torch.zeros(1, 1, 6, 6)
    refined, _ = window_attention_reference(qk, depth, mask, bias, window)
    weights = torch.softmax(relative_bias_windows(bias, 6, 6), dim=0)  # 9 x 6 x 6
    expected = (weights * gather_windows(depth, window)[0, 0]).sum(0)
    torch.testing.assert_close(refined[0, 0], expected)


def test_bad_arguments_raise_clear_errors():
    qk, depth, mask, bias = _inputs(1, 2, 5, 6, 3)
    with pytest.raises(ValueError, match="window must be a positive odd integer"):
        window_attention(qk, depth, mask, bias, 4)
    with pytest.raises(ValueError, match="smaller than the 7x7 window"):
        window_attention(qk, depth, mask, torch.zeros(13, 13), 7)
    with pytest.raises(ValueError, match="mask must be 1 x 1 x 5 x 6"):
        window_attention(qk, depth, mask[:, :, :4], bias, 3)
    with pytest.raises(ValueError, match="rel_pos_bias must be 5 x 5"):
        window_attention(qk, depth, mask, torch.zeros(3, 3), 3)
    with pytest.raises(ValueError, match="not available"):
        resolve_backend("triton", "cpu")  # type: ignore[arg-type]


def test_auto_never_picks_inference_only_backend_for_training():
    assert resolve_backend("auto", "cpu", requires_grad=True) in ("fast", "native_grad")


@pytest.mark.slow
def test_torch_compile_agrees_with_eager():
    qk, depth, mask, bias = _inputs(1, 4, 9, 10, 5)
    compiled = torch.compile(partial(window_attention, window=5, backend="fast"))
    torch.testing.assert_close(
        compiled(qk, depth, mask, bias), window_attention(qk, depth, mask, bias, 5, "fast")
    )


def test_auto_keeps_float64_off_the_float32_native_kernel():
    assert "native" not in available_backends("cpu", dtype=torch.float64)
    assert resolve_backend("auto", "cpu", dtype=torch.float64) == "fast"
