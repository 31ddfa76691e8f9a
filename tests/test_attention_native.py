"""The native (C, CPU) attention backend: its code paths, build cache and limits.

The contract every backend shares (forward and the border rule against the reference) is
tested for ``native`` by the shared fixture in test_attention.py; here are the shapes that
take the C kernels' different paths, and what only this backend has.

Accuracy: native computes in float32 with the exact decomposition of the logits and its own
exp (max relative error 8.2e-8). Against the reference run in float64 (the shared oracle,
tests/attention_inputs.py) it is off by at most 3.6e-6 over the cases below (depths up to
10 m); the float32 reference itself differs from native by up to 6.2e-6. So atol = 1e-5.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from attention_inputs import FORWARD_ATOL, BackendCase, expected_outputs, make_inputs

from sdr_core.attention import (
    AffineQK,
    available_backends,
    guidance_window_term,
    native,
    window_attention,
)

pytestmark = pytest.mark.skipif(
    not native.can_run_native(),
    reason="native attention backend unavailable (no working C compiler; see the log)",
)

ATOL = FORWARD_ATOL[torch.float32]
NATIVE = BackendCase("native", "cpu")


SHAPES = [
    # batch, embed, height, width, window
    (1, 8, 20, 23, 7),  # odd sizes, narrow: direct path, permuted border chunks
    (1, 16, 9, 40, 3),  # small window, packed path, partial last chunk
    (2, 16, 13, 13, 13),  # window equal to the image, batch 2, gathered lanes
    (1, 64, 36, 50, 13),  # E = 64, p = 13: packed path, interior and border chunks
    (1, 8, 21, 70, 7),  # several interior chunks
    (1, 8, 30, 17, 15),  # widest permuted window
    (1, 8, 19, 40, 17),  # window > 15: gathered bias and keys
]


@pytest.mark.parametrize(("batch", "embed", "height", "width", "window"), SHAPES)
def test_matches_reference(batch: int, embed: int, height: int, width: int, window: int) -> None:
    qk, depth, mask, bias = make_inputs(batch, embed, height, width, window)
    expected = expected_outputs(NATIVE, qk, depth, mask, bias, window)
    got = native.window_attention_native(qk, depth, mask, bias, window)
    for g, e in zip(got, expected, strict=True):
        assert g.shape == e.shape
        assert g.dtype == torch.float32
        torch.testing.assert_close(g.double(), e, atol=ATOL, rtol=0)


@pytest.mark.parametrize("depth_range", [(0.5, 1.0), (0.5, 10.0), (5.0, 10.0)])
def test_depth_scales(depth_range: tuple[float, float]) -> None:
    qk, depth, mask, bias = make_inputs(1, 32, 24, 48, 13, seed=1, depth_range=depth_range)
    expected = expected_outputs(NATIVE, qk, depth, mask, bias, 13)
    got = native.window_attention_native(qk, depth, mask, bias, 13)
    for g, e in zip(got, expected, strict=True):
        torch.testing.assert_close(g.double(), e, atol=ATOL, rtol=0)


def test_guidance_term_matches_fast() -> None:
    qk, _, _, _ = make_inputs(2, 64, 20, 45, 13, seed=2)
    torch.testing.assert_close(
        native.guidance_window_term_native(qk, 13),
        guidance_window_term(qk, 13),
        atol=1e-5,
        rtol=1e-5,
    )


def test_single_mask_pixel_near_corner() -> None:
    qk, depth, _, bias = make_inputs(1, 16, 25, 40, 13, seed=4)
    mask = torch.zeros_like(depth)
    mask[0, 0, 1, 38] = 1.0  # top-right corner region: border-shifted windows
    expected = expected_outputs(NATIVE, qk, depth, mask, bias, 13)
    got = native.window_attention_native(qk, depth, mask, bias, 13)
    for g, e in zip(got, expected, strict=True):
        torch.testing.assert_close(g.double(), e, atol=ATOL, rtol=0)
    assert got[1][0, 0, 0, 39] > 0
    assert got[1][0, 0, 24, 0] == 0


def test_float64_inputs_computed_in_float32_and_cast_back() -> None:
    qk, depth, mask, bias = make_inputs(1, 8, 15, 33, 7, seed=5, dtype=torch.float64)
    expected = expected_outputs(NATIVE, qk, depth, mask, bias, 7)
    got = native.window_attention_native(qk, depth, mask, bias, 7)
    for g, e in zip(got, expected, strict=True):
        assert g.dtype == torch.float64
        torch.testing.assert_close(g.double(), e, atol=ATOL, rtol=0)


def test_outputs_are_fresh() -> None:
    qk, depth, mask, bias = make_inputs(1, 8, 16, 35, 7, seed=6)
    attend = native.prepare_native(qk, 7)
    first = attend(depth, mask, bias)
    kept = [t.clone() for t in first]
    second = attend(depth, mask, bias)
    for a, b, k in zip(first, second, kept, strict=True):
        assert a.data_ptr() != b.data_ptr()
        assert torch.equal(a, k)
        assert torch.equal(a, b)


def test_deterministic_across_thread_counts() -> None:
    qk, depth, mask, bias = make_inputs(1, 16, 33, 64, 13, seed=7)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = native.window_attention_native(qk, depth, mask, bias, 13)
        torch.set_num_threads(2)
        two = native.window_attention_native(qk, depth, mask, bias, 13)
    finally:
        torch.set_num_threads(threads)
    for a, b in zip(one, two, strict=True):
        assert torch.equal(a, b)


def test_refuses_gradients() -> None:
    qk, depth, mask, bias = make_inputs(1, 8, 12, 20, 7, seed=8)
    grad_qk = AffineQK(qk.query_base.requires_grad_(), qk.key_base, qk.query_depth, qk.key_depth)
    with pytest.raises(RuntimeError, match="inference-only"):
        native.prepare_native(grad_qk, 7)
    with torch.no_grad():  # the same tensors are fine for inference
        native.prepare_native(grad_qk, 7)(depth, mask, bias)
    attend = native.prepare_native(
        AffineQK(*(t.detach() for t in (qk.query_base, qk.key_base, qk.query_depth, qk.key_depth))),
        7,
    )
    with pytest.raises(RuntimeError, match="inference-only"):
        attend(depth.requires_grad_(), mask, bias)


def _iteration_inputs(shape: tuple[int, ...], seed: int) -> tuple:
    """Attention inputs plus measurements: S on about 5 % of the pixels, a fractional mask."""
    batch, embed, height, width, window = shape
    qk, depth, mask, bias = make_inputs(batch, embed, height, width, window, seed=seed)
    g = torch.Generator().manual_seed(seed)
    measured = torch.rand(depth.shape, generator=g) < 0.05
    sparse = torch.where(measured, 1 + 4 * torch.rand(depth.shape, generator=g), 0.0)
    init = 1 + 4 * torch.rand(depth.shape, generator=g)
    mask = torch.where(measured, 1.0, mask)
    return qk, depth, mask, bias, sparse, measured, init


@pytest.mark.parametrize("shape", SHAPES[:5])
@pytest.mark.parametrize("domain", ["depth", "ratio"])
def test_iterate_is_one_step_of_eqs_6_to_11(shape: tuple[int, ...], domain: str) -> None:
    """iterate == attend on D~ (eq. 6) then eq. 10 with S kept, in torch; metres via exp."""
    window = shape[-1]
    qk, values, mask, bias, sparse, measured, init = _iteration_inputs(shape, seed=sum(shape))
    target = sparse
    to_metres = None
    if domain == "ratio":
        values = torch.log(values / init)
        target = torch.where(measured, torch.log(sparse.clamp_min(1e-3) / init), 0.0)
        to_metres = (init, sparse)
    attention = native.prepare_native(qk, window)
    tilde = torch.where(measured, target, values)
    refined, grown = attention(tilde, mask, bias)
    want_values = torch.where(measured, target, (1 - mask) * tilde + mask * refined)
    want_mask = torch.where(measured, mask, grown)
    got_values, got_mask, metres = attention.iterate(
        values, mask, bias, target, measured, to_metres
    )
    torch.testing.assert_close(got_values, want_values, atol=ATOL, rtol=0)
    torch.testing.assert_close(got_mask, want_mask, atol=ATOL, rtol=0)
    assert torch.equal(got_values[measured], target[measured])  # S kept exactly
    assert torch.equal(got_mask[measured], mask[measured])
    if domain == "depth":
        assert metres is None
    else:
        want_metres = torch.where(measured, sparse, init * torch.exp(got_values))
        torch.testing.assert_close(metres, want_metres, rtol=1e-6, atol=0)
        assert torch.equal(metres[measured], sparse[measured])


@pytest.mark.parametrize("shape", [(1, 16, 40, 70, 13), (1, 8, 48, 17, 15), (2, 8, 19, 40, 7)])
def test_iterate_skips_only_what_no_mask_reaches(shape: tuple[int, ...]) -> None:
    """Chunks whose windows hold no reached key are copied (D' = D~, m = 0), exactly as
    eq. 10 gives; the front and everything it reaches match the composed torch step."""
    batch, _, height, width, window = shape
    qk, values, _, bias, _, _, _ = _iteration_inputs(shape, seed=11)
    measured = torch.zeros(values.shape, dtype=torch.bool)
    measured[0, 0, height // 2, width - 3] = True  # one point near the right border,
    # one in the last column that the first 16-pixel chunk's windows reach,
    measured[0, 0, height // 3, min(15 + window // 2, width - 1)] = True
    measured[-1, 0, 1, 1] = True  # and one in the top-left corner of the last image
    sparse = torch.where(measured, 2.5, 0.0)
    mask = measured.float()
    attention = native.prepare_native(qk, window)
    tilde = torch.where(measured, sparse, values)
    refined, grown = attention(tilde, mask, bias)
    want_values = torch.where(measured, sparse, (1 - mask) * tilde + mask * refined)
    want_mask = torch.where(measured, mask, grown)
    got_values, got_mask, _ = attention.iterate(values, mask, bias, sparse, measured)
    torch.testing.assert_close(got_values, want_values, atol=ATOL, rtol=0)
    torch.testing.assert_close(got_mask, want_mask, atol=ATOL, rtol=0)
    unreached = want_mask == 0
    assert unreached.any()
    assert (~unreached).any()
    assert torch.equal(got_values[unreached], tilde[unreached])
    assert torch.equal(got_mask[unreached], torch.zeros_like(got_mask[unreached]))


def test_iterate_rejects_bad_inputs() -> None:
    qk, values, mask, bias, sparse, measured, init = _iteration_inputs((1, 8, 12, 20, 7), 10)
    attention = native.prepare_native(qk, 7)
    with pytest.raises(ValueError, match="measured must be a bool"):
        attention.iterate(values, mask, bias, sparse, measured.float())
    with pytest.raises(ValueError, match="target"):
        attention.iterate(values, mask, bias, sparse[..., :-1], measured)
    with pytest.raises(ValueError, match="init_depth"):
        attention.iterate(values, mask, bias, sparse, measured, (init[..., :-1], sparse))


def test_rejects_bad_inputs() -> None:
    qk, depth, mask, bias = make_inputs(1, 8, 12, 20, 7, seed=9)
    attend = native.prepare_native(qk, 7)
    with pytest.raises(ValueError, match="rel_pos_bias"):
        attend(depth, mask, bias[:-1])
    with pytest.raises(ValueError, match="depth"):
        attend(depth[..., :-1], mask, bias)
    with pytest.raises(ValueError, match="window"):
        native.prepare_native(qk, 4)


def test_front_door_offers_native() -> None:
    assert available_backends("cpu")[-1] == "native"
    assert "native" not in available_backends("cpu", requires_grad=True)
    qk, depth, mask, bias = make_inputs(1, 8, 14, 30, 7, seed=10)
    got = window_attention(qk, depth, mask, bias, 7, backend="native")
    expected = expected_outputs(NATIVE, qk, depth, mask, bias, 7)
    for g, e in zip(got, expected, strict=True):
        torch.testing.assert_close(g.double(), e, atol=ATOL, rtol=0)


def test_build_key_changes_with_source_flags_and_compiler() -> None:
    base = native.build_key(b"int x;", "/usr/bin/gcc", ("-O3",))
    assert base == native.build_key(b"int x;", "/usr/bin/gcc", ("-O3",))
    assert base != native.build_key(b"int x;", "/usr/bin/gcc", ("-O2",))
    assert base != native.build_key(b"int y;", "/usr/bin/gcc", ("-O3",))
    assert base != native.build_key(b"int x;", "/usr/bin/cc", ("-O3",))
    # the library loaded here is the build named by this source, compiler and flags
    source, compiler = native._SOURCE.read_bytes(), native._find_compiler()
    names = {
        f"mspn_native-{native.build_key(source, compiler, flags)}.so"
        for flags in (native._BASE_FLAGS + native._ARCH_FLAGS, native._BASE_FLAGS)
        for flags in [flags + native.lanes_flags()]
    }
    assert native._library().path.name in names


def test_lanes_variable_forces_a_vector_width(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("SDR_NATIVE_LANES", raising=False)
    assert native.lanes_flags() == ()
    for value in ("8", "16"):
        monkeypatch.setenv("SDR_NATIVE_LANES", value)
        assert native.lanes_flags() == (f"-DMSPN_LANES={value}",)
    monkeypatch.setenv("SDR_NATIVE_LANES", "12")
    with caplog.at_level("WARNING", logger=native.__name__):
        assert native.lanes_flags() == ()
    assert "SDR_NATIVE_LANES must be 8 or 16, got '12'" in caplog.text


@pytest.mark.parametrize("lanes", [8, 16])
def test_both_vector_widths_match_reference(monkeypatch: pytest.MonkeyPatch, lanes: int) -> None:
    """The 8-lane build (CPUs without AVX-512) and the 16-lane one, whichever this CPU has:
    every code path of SHAPES, the whole iteration, and T0 in the fast backend's layout."""
    flags = native._BASE_FLAGS + native._ARCH_FLAGS + (f"-DMSPN_LANES={lanes}",)
    lib = native._NativeLibrary(native._build(native._find_compiler(), flags))
    assert lib.lanes == lanes
    monkeypatch.setattr(native, "_library", lambda: lib)
    for shape in SHAPES:
        qk, depth, mask, bias = make_inputs(*shape)
        window = shape[-1]
        expected = expected_outputs(NATIVE, qk, depth, mask, bias, window)
        got = native.window_attention_native(qk, depth, mask, bias, window)
        for g, e in zip(got, expected, strict=True):
            torch.testing.assert_close(g.double(), e, atol=ATOL, rtol=0)
    qk, values, mask, bias, sparse, measured, init = _iteration_inputs((1, 16, 40, 70, 13), 3)
    attention = native.prepare_native(qk, 13)
    tilde = torch.where(measured, sparse, values)
    refined, grown = attention(tilde, mask, bias)
    got_values, got_mask, _ = attention.iterate(values, mask, bias, sparse, measured, None)
    want = torch.where(measured, sparse, (1 - mask) * tilde + mask * refined)
    torch.testing.assert_close(got_values, want, atol=ATOL, rtol=0)
    torch.testing.assert_close(got_mask, torch.where(measured, mask, grown), atol=ATOL, rtol=0)
    qk, _, _, _ = make_inputs(2, 64, 20, 45, 13, seed=2)
    torch.testing.assert_close(
        native.guidance_window_term_native(qk, 13), guidance_window_term(qk, 13), atol=1e-5, rtol=1e-5
    )


def test_unavailable_without_compiler(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(native, "_find_compiler", lambda: None)
    with caplog.at_level("INFO", logger=native.__name__):
        assert native._library.__wrapped__() is None  # the uncached loader
    assert "no C compiler" in caplog.text


def test_compile_error_is_reported_not_raised(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    bad = tmp_path / "broken.c"
    bad.write_text("this is not C\n")
    monkeypatch.setattr(native, "_SOURCE", bad)
    monkeypatch.setattr(native, "_cache_dirs", lambda: [tmp_path / "cache"])
    assert native._library.__wrapped__() is None
    assert not list((tmp_path / "cache").glob("*.so"))  # no partial build left behind
