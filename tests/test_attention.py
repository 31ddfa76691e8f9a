"""The attention front door and every backend against the reference: forward, gradients,
border rule, errors, the backend table and the Triton self-check.

The tests taking ``attention_backend`` run once per backend and device (conftest.py,
tests/attention_inputs.py); the reference is checked against an independent per-pixel loop,
every other backend against the reference in float64, with the tolerances per dtype of
attention_inputs.py. Backend-specific behaviour (the C kernels' code paths and build cache,
the Triton kernels' fused step and reduced precision) stays in test_attention_native*.py
and test_attention_triton.py.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import get_args

import pytest
import torch
from attention_inputs import (
    BACKEND_DEVICES,
    BACKWARD_RTOL,
    FORWARD_ATOL,
    BackendCase,
    chained_gradients,
    expected_outputs,
    loop_attention,
    make_inputs,
)

from sdr_core.attention import (
    BACKENDS,
    AffineQK,
    Backend,
    BackendChecks,
    available_backends,
    backends,
    compare_with_fast,
    gather_windows,
    prepare_attention,
    prepare_fast,
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
DTYPES = [pytest.param(torch.float32, id="float32"), pytest.param(torch.float64, id="float64")]


# --- window geometry ------------------------------------------------------------------------


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


def test_loop_oracle_on_a_hand_computed_pixel():
    # The oracle of the reference, checked by hand: 1 x 3 image, window 3, every key
    # masked except pixel 2, so the middle pixel's logits are (b[0,-1], b[0,0], q.k2 + b[0,1]).
    qk = AffineQK(
        torch.tensor([[[[0.0, 1.0, 0.0]], [[0.0, 0.0, 0.0]]]]).expand(1, 2, 3, 3).contiguous(),
        torch.tensor([[[[0.0, 0.0, 2.0]], [[0.0, 0.0, 0.0]]]]).expand(1, 2, 3, 3).contiguous(),
        torch.zeros(2),
        torch.zeros(2),
    )
    depth = torch.tensor([1.0, 2.0, 4.0]).view(1, 1, 1, 3).expand(1, 1, 3, 3).contiguous()
    mask = torch.tensor([0.0, 0.0, 1.0]).view(1, 1, 1, 3).expand(1, 1, 3, 3).contiguous()
    bias = torch.zeros(5, 5)
    refined, grown = loop_attention(qk, depth, mask, bias, 3)
    # middle pixel (1, 1): each window row contributes logits (0, 0, 1 * 2) -> weights
    # e^0, e^0, e^2 over three rows; depth 1, 2, 4; mask 0, 0, 1.
    weights = torch.tensor([1.0, 1.0, torch.e**2]) / (2 + torch.e**2)
    assert float(refined[0, 0, 1, 1]) == pytest.approx(float(weights @ torch.tensor([1, 2, 4.0])))
    assert float(grown[0, 0, 1, 1]) == pytest.approx(float(weights[2]))


# --- every backend against the reference ------------------------------------------------------


def test_every_backend_has_test_devices():
    assert set(BACKEND_DEVICES) == set(BACKENDS)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CASES, ids=lambda c: "x".join(map(str, c)))
def test_forward_matches_the_oracle(attention_backend: BackendCase, case, dtype):
    attention_backend.require(dtype)
    *shape, window = case
    qk, depth, mask, bias = make_inputs(
        *shape, window, dtype=dtype, device=attention_backend.device
    )
    got = attention_backend.prepare(qk, window)(depth, mask, bias)
    expected = expected_outputs(attention_backend, qk, depth, mask, bias, window)
    for g, e in zip(got, expected, strict=True):
        assert g.shape == e.shape
        assert g.dtype == dtype
        torch.testing.assert_close(g.cpu().double(), e, atol=FORWARD_ATOL[dtype], rtol=0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", [(2, 4, 9, 8, 5), (1, 8, 13, 17, 13)], ids=["5", "13"])
def test_backward_matches_the_reference(attention_backend: BackendCase, case, dtype):
    if not attention_backend.differentiable:
        pytest.skip(f"{attention_backend.name} is inference-only")
    attention_backend.require(dtype, requires_grad=True)
    *shape, window = case
    qk, depth, mask, bias = make_inputs(*shape, window, seed=2, dtype=dtype)
    leaves = [qk.query_base, qk.key_base, qk.query_depth, qk.key_depth, depth, mask, bias]
    leaves = [t.to(attention_backend.device) for t in leaves]
    if attention_backend.name == "reference":
        # the reference's own gradients, against finite differences (float64 only)
        if dtype != torch.float64:
            pytest.skip("finite differences need float64")

        def fn(*xs):
            return window_attention_reference(AffineQK(*xs[:4]), *xs[4:], window)

        small = [t.detach().clone().requires_grad_() for t in leaves]
        assert torch.autograd.gradcheck(fn, small, fast_mode=True)
        return
    got = chained_gradients(attention_backend.prepare, leaves, window)
    want = chained_gradients(
        partial(prepare_attention, backend="reference"), [t.double() for t in leaves], window
    )
    names = ["query_base", "key_base", "query_depth", "key_depth", "depth", "mask", "bias"]
    for name, g, w in zip(names, got, want, strict=True):
        assert g is not None, f"no gradient reached {name}"
        scale = max(float(w.abs().max()), 1.0)
        error = float((g.double().cpu() - w.cpu()).abs().max())
        assert error <= BACKWARD_RTOL[dtype] * scale, f"{name}: {error:.3g} at scale {scale:.3g}"


def test_constant_depth_stays_constant_at_borders(attention_backend: BackendCase):
    # Weights over in-image pixels sum to 1, so a constant field comes back unchanged
    # everywhere, corners included; a zero-padded window would pull the border down.
    attention_backend.require()
    device = attention_backend.device
    qk, _, _, bias = make_inputs(1, 4, 9, 10, 5, device=device)
    depth = torch.full((1, 1, 9, 10), 3.0, device=device)
    mask = torch.ones(1, 1, 9, 10, device=device)
    refined, next_mask = attention_backend.prepare(qk, 5)(depth, mask, bias)
    torch.testing.assert_close(refined, depth)
    torch.testing.assert_close(next_mask, mask)


@pytest.mark.parametrize("window", [5, 7])
def test_one_point_near_corner_reaches_one_window(attention_backend: BackendCase, window):
    # One reliable pixel at (1, 1): pixels whose (inward-shifted) window holds it get a mask
    # > 0, all others exactly 0; a padded window would leak or miss pixels at the border.
    attention_backend.require()
    qk, depth, _, bias = make_inputs(1, 4, 14, 15, window, seed=3, device=attention_backend.device)
    mask = torch.zeros_like(depth)
    mask[0, 0, 1, 1] = 1.0
    _, next_mask = attention_backend.prepare(qk, window)(depth, mask, bias)
    reach = torch.zeros_like(mask, dtype=torch.bool)
    last = 1 + window // 2  # start clamp(i - p // 2, 0, n - p) <= 1 only for i <= 1 + p // 2
    reach[0, 0, : last + 1, : last + 1] = True
    assert (next_mask[~reach] == 0).all()
    assert (next_mask[reach] > 0).all()
    assert (next_mask <= 1).all()


@pytest.mark.parametrize("window", [3, 13])
def test_masked_keys_give_the_bias_softmax(attention_backend: BackendCase, window):
    # M_n = 0 everywhere: every logit is the bias alone, so the attention is softmax(b) and
    # the new mask is exactly 0.
    attention_backend.require()
    qk, depth, _, bias = make_inputs(1, 3, 13, 14, window, device=attention_backend.device)
    mask = torch.zeros_like(depth)
    refined, next_mask = attention_backend.prepare(qk, window)(depth, mask, bias)
    weights = torch.softmax(relative_bias_windows(bias, 13, 14), dim=0)  # p^2 x H x W
    expected = (weights * gather_windows(depth, window)[0, 0]).sum(0)
    torch.testing.assert_close(refined[0, 0], expected, atol=FORWARD_ATOL[torch.float32], rtol=0)
    assert torch.count_nonzero(next_mask) == 0


@pytest.mark.parametrize("backend", ["reference", "fast"])
def test_gradcheck(backend):
    qk, depth, mask, bias = make_inputs(1, 2, 5, 6, 3, dtype=torch.float64)
    tensors = [qk.query_base, qk.key_base, qk.query_depth, qk.key_depth, depth, mask, bias]
    tensors = [t.clone().requires_grad_() for t in tensors]

    def fn(qb, kb, qd, kd, d, m, b):
        return window_attention(AffineQK(qb, kb, qd, kd), d, m, b, 3, backend=backend)

    assert torch.autograd.gradcheck(fn, tensors, fast_mode=True)


@pytest.mark.slow
def test_torch_compile_agrees_with_eager():
    qk, depth, mask, bias = make_inputs(1, 4, 9, 10, 5)
    compiled = torch.compile(partial(window_attention, window=5, backend="fast"))
    torch.testing.assert_close(
        compiled(qk, depth, mask, bias), window_attention(qk, depth, mask, bias, 5, "fast")
    )


# --- the front door -----------------------------------------------------------------------


def test_bad_arguments_raise_clear_errors():
    qk, depth, mask, bias = make_inputs(1, 2, 5, 6, 3)
    with pytest.raises(ValueError, match="window must be a positive odd integer"):
        window_attention(qk, depth, mask, bias, 4)
    with pytest.raises(ValueError, match="smaller than the 7x7 window"):
        window_attention(qk, depth, mask, torch.zeros(13, 13), 7)
    with pytest.raises(ValueError, match="mask must be 1 x 1 x 5 x 6"):
        window_attention(qk, depth, mask[:, :, :4], bias, 3)
    with pytest.raises(ValueError, match="rel_pos_bias must be 5 x 5"):
        window_attention(qk, depth, mask, torch.zeros(3, 3), 3)


def test_unknown_backend_is_an_error_naming_it_and_the_choices():
    qk, depth, mask, bias = make_inputs(1, 2, 5, 6, 3)
    with pytest.raises(ValueError, match=r"unknown attention backend 'natten'; choose from"):
        window_attention(qk, depth, mask, bias, 3, backend="natten")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "kwargs", "why"),
    [
        ("triton", {}, "runs on CUDA devices, not cpu"),
        ("native", {"requires_grad": True}, "inference-only and gradients are required"),
        ("native", {"dtype": torch.float64}, "computes in float32, and the tensors are"),
        ("native_grad", {"device": "meta"}, "runs on the CPU, not meta"),
    ],
)
def test_unavailable_backend_is_an_error_saying_why(name, kwargs, why):
    kwargs = {"device": "cpu", **kwargs}
    with pytest.raises(ValueError, match=rf"attention backend '{name}' is not available .*{why}"):
        resolve_backend(name, **kwargs)


def test_unavailable_native_is_refused_not_run(monkeypatch):
    # Every name is looked up in the table; one that cannot run here is refused with its
    # reason, never handed to a later branch.
    monkeypatch.setattr(backends, "_native_library_reason", lambda: "no compiler (test)")
    assert available_backends("cpu")[-1] == "fast"
    with pytest.raises(ValueError, match=r"'native' is not available on cpu \(no compiler"):
        prepare_attention(make_inputs(1, 2, 5, 6, 3)[0], 3, backend="native")


def test_auto_keeps_its_choices():
    table = {name: spec.differentiable for name, spec in BACKENDS.items()}
    assert list(table) == ["reference", "fast", "native_grad", "native", "triton"]
    assert set(get_args(Backend)) == {"auto", *BACKENDS}  # the config's Literal names them all
    assert resolve_backend("auto", "cpu", requires_grad=True) in ("fast", "native_grad")
    assert resolve_backend("auto", "cpu", dtype=torch.float64) == "fast"
    assert "native" not in available_backends("cpu", dtype=torch.float64)
    assert "triton" not in available_backends("cuda", requires_grad=True)
    assert "triton" not in available_backends("cuda", dtype=torch.float64)


def test_the_table_says_which_backend_brings_its_own_backward():
    # Training checkpoints every MSPN iteration unless the backend has its own backward.
    assert [name for name, spec in BACKENDS.items() if spec.custom_backward] == ["native_grad"]
    spec = BACKENDS["native"]
    with pytest.raises(ValueError, match="must be differentiable"):
        backends.BackendSpec(spec.can_run, spec.prepare, False, custom_backward=True)


# --- the Triton self-check -------------------------------------------------------------------


@pytest.fixture
def pretend_cuda_triton(monkeypatch):
    """The table as on a GPU machine: Triton can run on CUDA, its check is a stand-in."""
    calls = []
    outcome = {"reason": None, "seconds": 0.0}

    def check(device):
        time.sleep(outcome["seconds"])  # a first compile takes a while
        calls.append(str(device))
        return outcome["reason"]

    spec = BACKENDS["triton"]
    pretend = backends.BackendSpec(
        lambda device, grad, dtype: None if device.type == "cuda" and not grad else "no",
        spec.prepare,
        spec.differentiable,
        check,
    )
    monkeypatch.setitem(BACKENDS, "triton", pretend)
    return calls, outcome


def test_auto_uses_triton_once_its_check_passes(pretend_cuda_triton, caplog):
    calls, _ = pretend_cuda_triton
    checks = BackendChecks()
    with caplog.at_level(logging.INFO, logger=backends.__name__):
        for _ in range(3):
            assert resolve_backend("auto", "cuda:0", checks=checks) == "triton"
    assert calls == ["cuda:0"]  # checked once per device, then cached
    assert caplog.text.count("passed its check on cuda:0") == 1
    assert resolve_backend("auto", "cuda:0", requires_grad=True, checks=checks) == "fast"
    assert calls == ["cuda:0"]  # training never asks for triton


def test_auto_falls_back_to_fast_when_the_check_fails(pretend_cuda_triton, caplog):
    calls, outcome = pretend_cuda_triton
    outcome["reason"] = "it failed to compile or run: CompilationError: boom"
    checks = BackendChecks()
    with caplog.at_level(logging.WARNING, logger=backends.__name__):
        assert resolve_backend("auto", "cuda:1", checks=checks) == "fast"
        assert resolve_backend("auto", "cuda:1", checks=checks) == "fast"
    assert calls == ["cuda:1"]
    assert caplog.text.count("triton attention backend failed its check on cuda:1") == 1
    assert "CompilationError: boom" in caplog.text
    # an explicit request is not second-guessed
    assert resolve_backend("triton", "cuda:1", checks=checks) == "triton"
    checks.clear()  # a cleared cache checks again
    assert resolve_backend("auto", "cuda:1", checks=checks) == "fast"
    assert calls == ["cuda:1", "cuda:1"]


def test_concurrent_first_uses_run_the_check_once(pretend_cuda_triton):
    # Sessions starting at once on a fresh GPU: one check, and all of them get its answer.
    calls, outcome = pretend_cuda_triton
    outcome["seconds"] = 0.2
    checks = BackendChecks()
    with ThreadPoolExecutor(4) as pool:
        picks = list(pool.map(lambda _: resolve_backend("auto", "cuda:3", checks=checks), range(4)))
    assert picks == ["triton"] * 4
    assert calls == ["cuda:3"]


def test_compare_with_fast_passes_agreeing_kernels_and_names_the_failures():
    assert compare_with_fast(prepare_fast, "cpu") is None

    def off_by_a_millimetre(qk, window):
        attend = prepare_fast(qk, window)
        return lambda d, m, b: (attend(d, m, b)[0] + 1e-3, attend(d, m, b)[1])

    def does_not_compile(qk, window):
        raise RuntimeError("PTX assembly aborted")

    def gives_nan(qk, window):
        attend = prepare_fast(qk, window)
        return lambda d, m, b: (attend(d, m, b)[0], attend(d, m, b)[1] * float("nan"))

    assert "depth differs from fast by 0.001" in compare_with_fast(off_by_a_millimetre, "cpu")
    reason = compare_with_fast(does_not_compile, "cpu")
    assert reason == "it failed to compile or run: RuntimeError: PTX assembly aborted"
    assert "mask differs from fast by nan" in compare_with_fast(gives_nan, "cpu")


def test_the_process_wide_checks_are_used_by_default(pretend_cuda_triton, monkeypatch):
    calls, _ = pretend_cuda_triton
    fresh = BackendChecks()
    monkeypatch.setattr("sdr_core.attention._CHECKS", fresh)
    assert resolve_backend("auto", "cuda:2") == "triton"
    assert resolve_backend("auto", "cuda:2") == "triton"
    assert calls == ["cuda:2"]
