"""The Triton attention backend against the reference oracle.

The contract every backend shares (forward against the reference, the border rule, masked
keys) is tested for Triton by the shared fixture in test_attention.py, in the interpreter
and on CUDA; this file holds what is Triton's own. Three groups:

- Plumbing (any machine, Triton or not): the backend is never offered on CPU, a missing
  ``triton`` package is a reason rather than an error, importing ``sdr_core`` never imports
  ``triton``, and the GPU benchmark's ``--smoke`` mode runs.
- Kernel tests, each parametrised over two devices:
  ``interpreter``: Triton's CPU interpreter on CPU tensors. ``TRITON_INTERPRET=1`` must be set
  before ``triton`` is first imported and would change every later import in the process,
  so :func:`test_interpreter_suite` runs these in a child pytest process with the variable
  set (and CUDA hidden); in this process they skip. ``cuda``: the compiled kernels, marked
  ``gpu``.
- GPU only: realistic sizes, a whole two-layer refinement, CUDA-graph capture, and the
  self-check that ``auto`` runs before it picks these kernels on a GPU.

Accuracy (measured in the interpreter with float32 T0; the compiled kernels use the GPU's
exp and have not been measured yet because no GPU was lent to the session that wrote them):
worst |triton - float64 reference| over SMALL_CASES x 3 seeds: 1.8e-6 for the refined depth
(depths 0.5-10 m), 1.0e-7 for the mask; so atol 1e-5, as for the other backends.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from attention_inputs import (
    FORWARD_ATOL,
    IN_INTERPRETER,
    BackendCase,
    expected_outputs,
    make_inputs,
)

from sdr_core.attention import (
    BACKENDS,
    AffineQK,
    BackendChecks,
    available_backends,
    compare_with_fast,
    guidance_window_term,
    prepare_attention,
    resolve_backend,
    window_attention_reference,
)
from sdr_core.attention.reference import prepare_reference
from sdr_core.attention.triton import (
    TritonAttention,
    can_run_triton,
    prepare_triton,
    triton_unavailable_reason,
    window_attention_triton,
)
from sdr_core.mspn import MSPN, MSPNConfig, MSPNLayer, iteration_count

REPO = Path(__file__).resolve().parent.parent
HAS_TRITON = importlib.util.find_spec("triton") is not None
ATOL = FORWARD_ATOL[torch.float32]
TRITON = BackendCase("triton", "cuda")

# The interpreter cases exist only in the child process of test_interpreter_suite.
DEVICES = [pytest.param("cpu", id="interpreter")] if IN_INTERPRETER else []
DEVICES += [
    pytest.param(
        "cuda",
        id="cuda",
        marks=[
            pytest.mark.gpu,
            pytest.mark.skipif(
                not can_run_triton("cuda"), reason=f"{triton_unavailable_reason('cuda')}"
            ),
        ],
    ),
]
needs_cuda_triton = pytest.mark.skipif(
    not can_run_triton("cuda"), reason=f"{triton_unavailable_reason('cuda')}"
)


def sparse_points(depth: torch.Tensor, n_points: int, seed: int = 0) -> torch.Tensor:
    """S: ``n_points`` distinct pixels per image with depth 1-5 m, 0 elsewhere."""
    b, _, h, w = depth.shape
    g = torch.Generator().manual_seed(seed)
    sparse = torch.zeros(b, h * w)
    for i in range(b):
        picked = torch.randperm(h * w, generator=g)[:n_points]
        sparse[i, picked] = 1 + 4 * torch.rand(n_points, generator=g)
    return sparse.view(b, 1, h, w).to(depth.device)


# (batch, embed, height, width, window), small enough for the interpreter.
SMALL_CASES = [
    (1, 4, 7, 9, 3),  # every window touches a border
    (2, 8, 13, 11, 5),  # batch 2, odd sizes
    (1, 4, 13, 15, 13),  # p = 13 and H = p: every pixel shares the window rows
    (1, 4, 8, 70, 7),  # two column blocks, the second partial
]


# --- plumbing: any machine -------------------------------------------------------------------


def test_cpu_never_offers_triton() -> None:
    assert "triton" not in available_backends("cpu")
    assert "triton" not in available_backends("cpu", dtype=torch.float16)
    with pytest.raises(ValueError, match="runs on CUDA devices"):
        resolve_backend("triton", "cpu")


def test_training_never_gets_triton() -> None:
    assert "triton" not in available_backends("cuda", requires_grad=True)
    assert "triton" not in available_backends("cuda", dtype=torch.float64)


def test_mspn_config_accepts_triton_and_cpu_refuses_it_clearly() -> None:
    config = MSPNConfig(guidance_dim=8, embed_dim=4, window=5, backend="triton")
    layer = MSPNLayer(config)
    with torch.no_grad(), pytest.raises(ValueError, match="'triton' is not available on cpu"):
        layer.prepare(torch.randn(1, 8, 9, 9))


def _run_python(code: str, env: dict[str, str] | None = None) -> str:
    """Run ``code`` in a fresh interpreter at the repository root; return its stdout."""
    full_env = {**os.environ, **(env or {})}
    full_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), full_env.get("PYTHONPATH")]))
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_missing_triton_is_a_reason_not_an_error() -> None:
    # sys.modules["triton"] = None makes every `import triton` fail, as on a machine
    # without the package.
    out = _run_python(
        "import sys; sys.modules['triton'] = None\n"
        "import torch\n"
        "from sdr_core.attention import available_backends, triton as backend\n"
        "assert 'triton' not in available_backends('cuda')\n"
        "print(backend.triton_unavailable_reason('cuda'))\n"
        "qk = backend.AffineQK(*(torch.zeros(1, 2, 5, 5) for _ in range(2)),"
        " torch.zeros(2), torch.zeros(2))\n"
        "try:\n"
        "    backend.prepare_triton(qk, 3)\n"
        "except RuntimeError as error:\n"
        "    print(error)\n"
    )
    reason, error = out.strip().splitlines()
    assert reason  # "CUDA is not available" here, "... not installed" on a GPU machine
    assert "unavailable: the triton package is not installed" in error


def test_importing_sdr_core_never_imports_triton() -> None:
    out = _run_python(
        "import sys, torch\n"
        "import sdr_core, sdr_core.pipeline, sdr_core.attention.triton\n"
        "from sdr_core.attention import available_backends, resolve_backend\n"
        "from sdr_core.mspn import MSPN, MSPNConfig\n"
        "available_backends('cpu'); resolve_backend('auto', 'cpu')\n"
        "mspn = MSPN(MSPNConfig(guidance_dim=8, embed_dim=4, window=5))\n"
        "sparse = torch.zeros(1, 1, 9, 9); sparse[0, 0, 4, 4] = 2.0\n"
        "with torch.no_grad():\n"
        "    mspn(torch.ones(1, 1, 9, 9), sparse, torch.randn(1, 8, 9, 9))\n"
        "print('triton' in sys.modules)\n"
    )
    assert out.strip() == "False"


def test_bench_gpu_smoke_mode(tmp_path: Path) -> None:
    report = tmp_path / "bench.json"
    result = subprocess.run(
        [sys.executable, "benchmarks/bench_gpu.py", "--smoke", "--json", str(report)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    data = json.loads(report.read_text())
    assert data["device"]["type"] == "cpu"
    backends = {row["backend"] for row in data["iteration"]}
    assert {"reference", "fast"} <= backends
    assert {row["points"] for row in data["pipeline"]} >= {1, 100}
    assert "| size |" in result.stdout


@pytest.mark.skipif(IN_INTERPRETER, reason="this is the parent of the interpreter run")
@pytest.mark.skipif(not HAS_TRITON, reason="triton is not installed (pip install triton)")
def test_interpreter_suite() -> None:
    """Run every ``interpreter`` case, here and in the shared attention tests, in a child
    with TRITON_INTERPRET=1 and no CUDA."""
    env = {
        **os.environ,
        "TRITON_INTERPRET": "1",
        "CUDA_VISIBLE_DEVICES": "",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", __file__]
        + [str(REPO / "tests" / "test_attention.py"), "-m", "not gpu"]
        + ["-k", "interpreter and not suite and not float64 and not backward"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    summary = result.stdout.strip().splitlines()[-1:] or ["(no output)"]
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    assert " passed" in summary[0], summary[0]
    assert "skipped" not in summary[0], summary[0]


# --- kernels: interpreter (child process) and CUDA -------------------------------------------


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", SMALL_CASES)
def test_matches_reference(device: str, case: tuple[int, ...]) -> None:
    *shape, window = case
    qk, depth, mask, bias = make_inputs(*shape, window, device=device)
    expected = expected_outputs(TRITON, qk, depth, mask, bias, window)
    got = window_attention_triton(qk, depth, mask, bias, window)
    for g, e in zip(got, expected, strict=True):
        assert g.shape == e.shape
        assert g.dtype == torch.float32
        torch.testing.assert_close(g.cpu().double(), e, atol=ATOL, rtol=0)


@pytest.mark.parametrize("device", DEVICES)
def test_guidance_terms_match_fast(device: str) -> None:
    qk, _, _, _ = make_inputs(2, 8, 14, 19, 7, device=device, seed=1)
    prepared = prepare_triton(qk, 7)
    torch.testing.assert_close(prepared.term, guidance_window_term(qk, 7), atol=1e-5, rtol=1e-5)
    alpha = (qk.key_base * qk.query_depth.view(1, -1, 1, 1)).sum(dim=1)
    beta = (qk.query_base * qk.key_depth.view(1, -1, 1, 1)).sum(dim=1)
    torch.testing.assert_close(prepared.alpha, alpha, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(prepared.beta, beta, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(prepared.gamma, torch.dot(qk.query_depth, qk.key_depth).view(1))


def _tiny_layer(window: int, device: str, seed: int = 0) -> MSPNLayer:
    torch.manual_seed(seed)
    layer = MSPNLayer(MSPNConfig(guidance_dim=8, embed_dim=4, window=window)).to(device)
    with torch.no_grad():
        layer.rel_pos_bias.normal_(0, 0.5)  # a bias with some structure, not ~0
    return layer.eval()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("window", [5, 7])
def test_fused_step_equals_layer_step(device: str, window: int) -> None:
    layer = _tiny_layer(window, device)
    g = torch.Generator().manual_seed(4)
    guidance = torch.randn(2, 8, 10, 13, generator=g).to(device)
    depth = (0.5 + 9.5 * torch.rand(2, 1, 10, 13, generator=g)).to(device)
    sparse = sparse_points(depth, 9, seed=5)  # depth differs from S there: eq. 6 matters
    mask = (sparse > 0).float() * 0.5 + 0.3 * torch.rand(2, 1, 10, 13, generator=g).to(device)
    with torch.no_grad():
        qk = layer.affine_qk(guidance)
        want = layer.step(prepare_reference(qk, window), depth, mask, sparse, sparse > 0)
        prepared = prepare_triton(qk, window)
        unfused = layer.step(prepared, depth, mask, sparse, sparse > 0)
        fused = prepared.step(depth, mask, sparse, layer.rel_pos_bias)
    for name, got in (("unfused", unfused), ("fused", fused)):
        for g_t, w_t in zip(got, want, strict=True):
            torch.testing.assert_close(
                g_t, w_t, atol=ATOL, rtol=0, msg=lambda m, n=name: f"{n}: {m}"
            )
    measured = sparse > 0
    assert torch.equal(fused[0][measured], sparse[measured])
    assert torch.equal(fused[1][measured], mask[measured])


@pytest.mark.parametrize("device", DEVICES)
def test_refinement_loop_matches_reference(device: str) -> None:
    # Every iteration of both layers through MSPNLayer.step, triton vs reference attention.
    # Measured in the interpreter (1 point, 9 + 6 iterations): worst depth error 7.2e-7 and
    # mask error 7.5e-8 at any iteration; the error stops growing after 6 iterations.
    window, height, width, n_points = 5, 9, 11, 1
    layer = _tiny_layer(window, device, seed=6)
    g = torch.Generator().manual_seed(7)
    guidance = torch.randn(1, 8, height, width, generator=g).to(device)
    init = (1 + 4 * torch.rand(1, 1, height, width, generator=g)).to(device)
    sparse = sparse_points(init, n_points, seed=8)
    measured = sparse > 0
    n_iterations = iteration_count(height, width, n_points, window) + 6
    results = {}
    with torch.no_grad():
        qk = layer.affine_qk(guidance)
        for name, prepare in (("triton", prepare_triton), ("reference", prepare_reference)):
            attend = prepare(qk, window)
            depth, mask = torch.where(measured, sparse, init), measured.float()
            for _ in range(n_iterations):
                depth, mask = layer.step(attend, depth, mask, sparse, measured)
            results[name] = (depth, mask)
    for got, want in zip(results["triton"], results["reference"], strict=True):
        torch.testing.assert_close(got, want, atol=ATOL, rtol=0)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("term_dtype", [torch.float16, torch.bfloat16])
def test_reduced_precision_guidance_term(device: str, term_dtype: torch.dtype) -> None:
    # Rounding T0 changes each logit by at most max|dT0|; the refined depth moves by at most
    # max|dT0| * (largest window depth - smallest), the mask by max|dT0| * 1. Measured in
    # the interpreter over seeds 9-11 (|T0| <= 6.2, depths 0.5-10 m): float16 max|dT0|
    # 1.9e-3, depth error 8.6e-4 m, mask 1.4e-4; bfloat16 max|dT0| 3.1e-2, depth 1.6e-2 m,
    # mask 3.9e-3.
    qk, depth, mask, bias = make_inputs(1, 8, 13, 14, 13, device=device, seed=9, scale=0.6)
    prepared = prepare_triton(qk, 13, term_dtype=term_dtype)
    assert prepared.term.dtype == term_dtype
    term_error = (prepared.term.float() - guidance_window_term(qk, 13)).abs().max().item()
    # one ulp: round-to-nearest (CUDA) needs half of it, the interpreter truncates
    relative = {torch.float16: 2.0**-10, torch.bfloat16: 2.0**-7}[term_dtype]
    assert term_error <= relative * guidance_window_term(qk, 13).abs().max().item()
    refined, next_mask = prepared(depth, mask, bias)
    expected = window_attention_reference(qk, depth, mask, bias, 13)
    spread = (depth.max() - depth.min()).item()
    assert (refined - expected[0]).abs().max().item() <= term_error * spread + ATOL
    assert (next_mask - expected[1]).abs().max().item() <= term_error + ATOL


@pytest.mark.parametrize("device", DEVICES)
def test_half_inputs_give_half_outputs(device: str) -> None:
    qk, depth, mask, bias = make_inputs(1, 4, 11, 12, 5, device=device, seed=10)
    depth, mask = depth.half(), mask.half()
    refined, next_mask = prepare_triton(qk, 5)(depth, mask, bias)
    assert refined.dtype == next_mask.dtype == torch.float16
    expected = window_attention_reference(qk, depth.float(), mask.float(), bias, 5)
    # float16 output rounding: half an ulp at 8-16 m is 2^-8 = 3.9e-3
    torch.testing.assert_close(refined.float(), expected[0], atol=4e-3, rtol=0)
    torch.testing.assert_close(next_mask.float(), expected[1], atol=5e-4, rtol=0)


@pytest.mark.parametrize("device", DEVICES)
def test_gradients_are_refused(device: str) -> None:
    qk, depth, mask, bias = make_inputs(1, 4, 9, 9, 5, device=device)
    base = qk.query_base.clone().requires_grad_()
    with pytest.raises(RuntimeError, match="inference-only"):
        prepare_triton(AffineQK(base, qk.key_base, qk.query_depth, qk.key_depth), 5)
    prepared = prepare_triton(qk, 5)
    with pytest.raises(RuntimeError, match="inference-only"):
        prepared(depth, mask, bias.clone().requires_grad_())
    with torch.no_grad():
        prepared(depth, mask, bias)  # fine without grad mode


@pytest.mark.parametrize("device", DEVICES)
def test_bad_arguments_raise_clear_errors(device: str) -> None:
    qk, depth, mask, bias = make_inputs(1, 4, 9, 10, 5, device=device)
    with pytest.raises(ValueError, match="positive odd integer"):
        prepare_triton(qk, 4)
    with pytest.raises(ValueError, match="term_dtype"):
        prepare_triton(qk, 5, term_dtype=torch.float64)
    prepared = prepare_triton(qk, 5)
    with pytest.raises(ValueError, match="mask must be 1 x 1 x 9 x 10"):
        prepared(depth, mask[..., :9], bias)
    with pytest.raises(ValueError, match="rel_pos_bias must be 9 x 9"):
        prepared(depth, mask, bias[:7, :7])
    with pytest.raises(ValueError, match="sparse must be"):
        prepared.step(depth, mask, depth[..., :9], bias)


@pytest.mark.skipif(not IN_INTERPRETER, reason="only in the TRITON_INTERPRET=1 child process")
def test_interpreter_kernels_pass_the_self_check() -> None:
    # The check auto runs on a GPU, here on the interpreted kernels: they agree with fast.
    assert compare_with_fast(BACKENDS["triton"].prepare, "cpu") is None


@pytest.mark.skipif(not IN_INTERPRETER, reason="only in the TRITON_INTERPRET=1 child process")
def test_interpreter_is_never_offered_by_the_front_door() -> None:
    # auto must never pick a numpy emulation of the kernels: CPU is refused with a reason,
    # and CUDA (hidden in the child) would be refused for TRITON_INTERPRET=1 as well.
    assert "triton" not in available_backends("cpu")
    assert "triton" not in available_backends("cuda")
    assert "runs on CUDA devices" in str(triton_unavailable_reason("cpu"))


# --- GPU only ---------------------------------------------------------------------------------

GPU_CASES = [
    (1, 64, 228, 304, 13),  # NYU crop
    (2, 64, 37, 53, 13),  # odd sizes, batch 2
    (1, 64, 240, 1216, 13),  # KITTI crop
    (3, 32, 31, 200, 7),  # window 7, batch 3
    (1, 64, 13, 300, 13),  # one window row: every window shares rows
]


@pytest.mark.gpu
@needs_cuda_triton
@pytest.mark.parametrize("case", GPU_CASES)
def test_gpu_matches_reference_at_realistic_sizes(case: tuple[int, ...]) -> None:
    *shape, window = case
    qk, depth, mask, bias = make_inputs(*shape, window, device="cuda")
    expected = window_attention_reference(qk, depth, mask, bias, window)
    got = window_attention_triton(qk, depth, mask, bias, window)
    for g, e in zip(got, expected, strict=True):
        torch.testing.assert_close(g, e, atol=ATOL, rtol=0)


@pytest.mark.gpu
@needs_cuda_triton
def test_gpu_kernels_pass_the_self_check() -> None:
    # What auto checks on the first CUDA inference; a failure here means a Space would run
    # the fast backend instead (and log why).
    assert compare_with_fast(BACKENDS["triton"].prepare, "cuda") is None
    assert BackendChecks().failure("triton", "cuda") is None


@pytest.mark.gpu
@needs_cuda_triton
def test_gpu_front_door_picks_triton_for_inference_and_fast_for_training() -> None:
    assert available_backends("cuda")[-1] == "triton"
    assert resolve_backend("auto", "cuda") == "triton"
    assert resolve_backend("auto", "cuda", requires_grad=True) == "fast"
    qk, depth, mask, bias = make_inputs(1, 8, 20, 24, 5, device="cuda")
    with torch.no_grad():
        assert isinstance(prepare_attention(qk, 5), TritonAttention)
    grad_qk = AffineQK(
        qk.query_base.clone().requires_grad_(), qk.key_base, qk.query_depth, qk.key_depth
    )
    attend = prepare_attention(grad_qk, 5)  # gradients needed: falls back to fast
    assert not isinstance(attend, TritonAttention)
    refined, _ = attend(depth, mask, bias)
    refined.sum().backward()
    assert grad_qk.query_base.grad is not None


@pytest.mark.gpu
@needs_cuda_triton
@pytest.mark.parametrize("n_points", [1, 1000])
def test_gpu_full_refinement_matches_reference(n_points: int) -> None:
    # Two layers, every iteration (1 point: 37 + 6 at 96x128; 1000 points: 6 + 6), E = 64,
    # p = 13. Not yet measured on a GPU; the interpreter's 15-iteration loop stays within
    # 7.2e-7 (test_refinement_loop_matches_reference), so 1e-4 leaves room for the GPU's exp.
    height, width = 96, 128
    g = torch.Generator().manual_seed(11)
    guidance = torch.randn(1, 64, height, width, generator=g).cuda()
    init = (1 + 4 * torch.rand(1, 1, height, width, generator=g)).cuda()
    sparse = sparse_points(init, n_points, seed=12)
    finals = {}
    for backend in ("triton", "reference"):
        torch.manual_seed(0)
        mspn = MSPN(MSPNConfig(backend=backend)).cuda().eval()
        with torch.no_grad():
            states = list(mspn.refine_steps(init, sparse, guidance))
        finals[backend] = states[-1]
    torch.testing.assert_close(finals["triton"].depth, finals["reference"].depth, atol=1e-4, rtol=0)
    torch.testing.assert_close(finals["triton"].mask, finals["reference"].mask, atol=1e-4, rtol=0)


@pytest.mark.gpu
@needs_cuda_triton
def test_gpu_fused_loop_can_be_captured_in_a_cuda_graph() -> None:
    layer = MSPNLayer(MSPNConfig(window=13)).cuda().eval()
    g = torch.Generator().manual_seed(13)
    guidance = torch.randn(1, 64, 48, 64, generator=g).cuda()
    init = (1 + 4 * torch.rand(1, 1, 48, 64, generator=g)).cuda()
    sparse = sparse_points(init, 20, seed=14)
    with torch.no_grad():
        prepared = prepare_triton(layer.affine_qk(guidance), 13)

        def loop() -> tuple[torch.Tensor, torch.Tensor]:
            depth, mask = init, (sparse > 0).float()
            for _ in range(8):
                depth, mask = prepared.step(depth, mask, sparse, layer.rel_pos_bias)
            return depth, mask

        eager = loop()
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            loop()  # warm-up on a side stream, as torch.cuda.graph asks
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            captured = loop()
        graph.replay()
    torch.testing.assert_close(captured[0], eager[0], atol=0, rtol=0)
    torch.testing.assert_close(captured[1], eager[1], atol=0, rtol=0)
