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
    AffineQK,
    available_backends,
    gather_windows,
    guidance_window_term,
    native,
    prepare_attention,
    relative_bias_windows,
    resolve_backend,
    window_attention,
)
from sdr_core.attention.native_grad import _Attend, _GuidanceTerm, prepare_native_grad
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


# ---- The two autograd Functions one by one, against their maths in float64 torch ----------
#
# The C kernels vectorise along the window row (segments of up to 16 window columns, masked
# past the window) and along the channels (vectors of 16, masked past E). These shapes take
# every such path: p = 13 (one 13-lane segment), p = 17 and 19 (a full segment plus a 1- or
# 3-lane one), p = 1 and 3; E = 5, 16, 17, 64 and 70 (64 + a 6-channel block); windows as
# tall or as wide as the image; widths that are not multiples of 16 nor of the 4-pixel tiles
# of the T0 kernels (whose shared 16-column loads need p <= 13); B > 1.

ATTEND_SHAPES = [
    # batch, height, width, window
    (2, 17, 23, 7),
    (1, 13, 29, 13),  # H = p: every window row border-shifted
    (1, 29, 13, 13),  # W = p: every window column border-shifted
    (3, 9, 11, 3),
    (1, 20, 37, 13),
    (1, 17, 17, 17),  # p > 16: a 16-lane and a 1-lane segment per window row
    (2, 21, 19, 19),  # 16 + 3 lanes, W = p
    (2, 5, 6, 1),  # a one-pixel window: the attention is the identity
]

GUIDANCE_SHAPES = [
    # batch, height, width, embed, window
    (2, 17, 23, 5, 7),  # E smaller than a vector
    (1, 13, 29, 16, 13),
    (1, 29, 13, 17, 13),  # E = 16 + 1
    (3, 9, 11, 64, 3),
    (1, 20, 37, 70, 13),  # E = 64 + 6: two channel blocks
    (1, 17, 18, 8, 17),
    (1, 3, 4, 3, 1),
]


def _attend_float64(term, alpha, beta, gamma, depth, mask, bias, window):
    """_Attend's maths (the fast backend's formulas) in native_grad's layouts, in torch."""
    _, height, width = depth.shape
    windows = gather_windows(torch.stack([depth, mask, alpha], dim=1), window)
    depth_w, mask_w, alpha_w = windows.unbind(dim=1)  # B x p^2 x H x W each
    d = depth.unsqueeze(1)
    logits = mask_w * (
        term.permute(0, 3, 1, 2) + d * alpha_w + depth_w * beta.unsqueeze(1) + gamma * d * depth_w
    ) + relative_bias_windows(bias, height, width)
    attention = torch.softmax(logits, dim=1)
    return (attention * depth_w).sum(dim=1), (attention * mask_w).sum(dim=1)


def _guidance_float64(query, key, window):
    """T0 (B x H x W x p^2) from channel-last features, by the fast backend, in torch."""
    qk = AffineQK(query.permute(0, 3, 1, 2), key.permute(0, 3, 1, 2), query[0, 0, 0], key[0, 0, 0])
    return guidance_window_term(qk, window).permute(0, 2, 3, 1)


def _attend_inputs(batch, height, width, window, seed):
    """term, alpha, beta, gamma, depth, mask (with zeros and ones), bias; float32."""
    g = torch.Generator().manual_seed(seed)
    term = torch.randn(batch, height, width, window * window, generator=g)
    alpha = 0.3 * torch.randn(batch, height, width, generator=g)
    beta = 0.3 * torch.randn(batch, height, width, generator=g)
    gamma = torch.tensor(0.02)
    depth = 0.5 + 9.5 * torch.rand(batch, height, width, generator=g)
    mask = torch.rand(batch, height, width, generator=g)
    mask[mask < 0.3] = 0.0
    mask[mask > 0.85] = 1.0
    bias = 0.5 * torch.randn(2 * window - 1, 2 * window - 1, generator=g)
    return [term, alpha, beta, gamma, depth, mask, bias]


def _relative_error(got: torch.Tensor, want: torch.Tensor, scale: float | None = None) -> float:
    """max |got - want| over ``scale`` (default: the largest |want|), in float64."""
    got, want = got.detach().double(), want.detach()
    scale = float(want.abs().max()) if scale is None else scale
    return float((got - want).abs().max()) / (scale if scale > 0 else 1.0)


def _attend_errors(batch, height, width, window, seed=0) -> dict[str, float]:
    """Forward and every input's gradient of _Attend vs float64 torch, relative errors."""
    inputs = _attend_inputs(batch, height, width, window, seed)
    g = torch.Generator().manual_seed(seed + 1)
    upstream = [torch.randn(batch, height, width, generator=g) for _ in range(2)]
    ours = [t.clone().requires_grad_() for t in inputs]
    want = [t.double().requires_grad_() for t in inputs]
    outputs = _Attend.apply(*ours, window)
    expected = _attend_float64(*want, window)
    torch.autograd.backward(outputs, upstream)
    torch.autograd.backward(expected, [u.double() for u in upstream])
    names = ["term", "alpha", "beta", "gamma", "depth", "mask", "bias"]
    errors = {
        name: _relative_error(o.grad, w.grad) for name, o, w in zip(names, ours, want, strict=True)
    }
    # dL/dgamma = sum_p d(p) dL/dbeta(p): a sum with cancellation, so its error is measured
    # against the sum of the magnitudes of its terms
    terms = float((want[4].detach() * want[2].grad).abs().sum())
    errors["gamma"] = _relative_error(ours[3].grad, want[3].grad, terms)
    errors["refined"] = _relative_error(outputs[0], expected[0])
    errors["next_mask"] = _relative_error(outputs[1], expected[1])
    return errors


def _guidance_errors(batch, height, width, embed, window, seed=0) -> dict[str, float]:
    """Forward and both gradients of _GuidanceTerm vs float64 torch, relative errors."""
    g = torch.Generator().manual_seed(seed)
    query = 0.3 * torch.randn(batch, height, width, embed, generator=g)
    key = 0.3 * torch.randn(batch, height, width, embed, generator=g)
    upstream = torch.randn(batch, height, width, window * window, generator=g)
    ours = [query.clone().requires_grad_(), key.clone().requires_grad_()]
    want = [query.double().requires_grad_(), key.double().requires_grad_()]
    term = _GuidanceTerm.apply(*ours, window)
    expected = _guidance_float64(*want, window)
    term.backward(upstream)
    expected.backward(upstream.double())
    return {
        "term": _relative_error(term, expected),
        "query": _relative_error(ours[0].grad, want[0].grad),
        "key": _relative_error(ours[1].grad, want[1].grad),
    }


# float32 kernels against float64: measured worst 2.6e-6 (attend) and 6.3e-7 (guidance).
FUNCTION_RTOL = 1e-5


@pytest.mark.parametrize(("batch", "height", "width", "window"), ATTEND_SHAPES)
def test_attend_function_matches_float64(batch, height, width, window) -> None:
    errors = _attend_errors(batch, height, width, window)
    assert max(errors.values()) <= FUNCTION_RTOL, errors


@pytest.mark.parametrize(("batch", "height", "width", "embed", "window"), GUIDANCE_SHAPES)
def test_guidance_function_matches_float64(batch, height, width, embed, window) -> None:
    errors = _guidance_errors(batch, height, width, embed, window)
    assert max(errors.values()) <= FUNCTION_RTOL, errors


def test_attend_with_all_keys_masked_gives_the_bias_softmax_and_its_gradients() -> None:
    """Mask all zero: the logits are the bias alone; T0/alpha/beta/gamma get no gradient."""
    inputs = _attend_inputs(1, 15, 18, 7, seed=7)
    inputs[5] = torch.zeros_like(inputs[5])
    ours = [t.clone().requires_grad_() for t in inputs]
    torch.autograd.backward(_Attend.apply(*ours, 7), [torch.ones(1, 15, 18)] * 2)
    for t in ours[:4]:
        assert not t.grad.any()
    errors = _attend_errors(1, 15, 18, 7, seed=7)
    assert max(errors.values()) <= FUNCTION_RTOL, errors


def _run_both_functions(window: int = 13) -> list[torch.Tensor]:
    """Outputs and gradients of both Functions on a fixed problem (B = 2, 19 x 37, E = 24)."""
    inputs = [t.requires_grad_() for t in _attend_inputs(2, 19, 37, window, seed=3)]
    outputs = _Attend.apply(*inputs, window)
    torch.autograd.backward(outputs, [torch.ones_like(outputs[0]), -outputs[1].detach()])
    g = torch.Generator().manual_seed(4)
    features = [torch.randn(2, 19, 37, 24, generator=g).requires_grad_() for _ in range(2)]
    term = _GuidanceTerm.apply(*features, window)
    term.backward(torch.cos(term.detach()))
    return [*outputs, term, *(t.grad for t in (*inputs, *features))]


def test_results_do_not_depend_on_the_thread_count() -> None:
    threads = torch.get_num_threads()
    try:
        results = []
        for n in (1, 2, 3):
            torch.set_num_threads(n)
            results.append(_run_both_functions())
    finally:
        torch.set_num_threads(threads)
    for other in results[1:]:
        for a, b in zip(results[0], other, strict=True):
            assert torch.equal(a, b)


def _portable_flags() -> list:
    avx2 = all(flag in native._cpu_fingerprint().split() for flag in ("avx2", "fma"))
    skip = pytest.mark.skipif(not avx2, reason="this CPU has no AVX2/FMA")
    return [
        pytest.param((), id="baseline-isa"),  # x86-64 baseline: the scalar fallbacks
        pytest.param(("-mavx2", "-mfma"), id="avx2", marks=skip),  # 8 lanes, AVX masked loads
        # 16 lanes in two AVX registers (the build before 8 lanes became the AVX2 default)
        pytest.param(("-mavx2", "-mfma", "-DMSPN_LANES=16"), id="avx2-16-lanes", marks=skip),
        # this CPU's own instructions at the width it would not pick itself
        pytest.param(native._ARCH_FLAGS + ("-DMSPN_LANES=8",), id="native-8-lanes"),
        pytest.param(native._ARCH_FLAGS + ("-DMSPN_LANES=16",), id="native-16-lanes"),
    ]


@pytest.mark.parametrize("arch_flags", _portable_flags())
def test_portable_builds_and_both_widths_match_float64(monkeypatch, arch_flags) -> None:
    """The library as built on CPUs without AVX-512 (its masked-load fallbacks), and at both
    vector widths."""
    compiler = native._find_compiler()
    lib = native._NativeLibrary(native._build(compiler, native._BASE_FLAGS + arch_flags))
    monkeypatch.setattr(native, "_library", lambda: lib)
    for batch, height, width, window in [(2, 17, 23, 7), (1, 17, 17, 17)]:
        errors = _attend_errors(batch, height, width, window)
        assert max(errors.values()) <= FUNCTION_RTOL, errors
    for shape in [(1, 20, 37, 70, 13), (2, 17, 23, 5, 7)]:
        errors = _guidance_errors(*shape)
        assert max(errors.values()) <= FUNCTION_RTOL, errors
