"""What every attention test shares: one input builder, the backends as test cases, an
independent oracle for the reference, and the tolerances per dtype.

The ``attention_backend`` fixture (conftest.py) is parametrised over :func:`backend_cases`:
every backend of ``sdr_core.attention.BACKENDS`` on the devices it runs on, plus the Triton
kernels in Triton's CPU interpreter when this process runs with ``TRITON_INTERPRET=1`` (see
tests/test_attention_triton.py). A case that cannot run here skips with the backend's own
reason.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from sdr_core.attention import (
    BACKENDS,
    AffineQK,
    AttendFn,
    prepare_attention,
    window_attention_reference,
)

IN_INTERPRETER = os.environ.get("TRITON_INTERPRET") == "1"

# Largest |backend - oracle| allowed for the refined depth (metres, depths 0.5-10 m) and the
# mask, per dtype. The oracle is the reference in float64 (for the reference itself, the
# per-pixel loop below). Measured worst errors over test_attention.CASES:
# float64: reference 7.1e-15, fast 3.6e-15.
# float32: reference 3.2e-6, fast 3.2e-6, native 2.1e-6, native_grad 4.3e-6, triton in the
#   interpreter 1.9e-6 (the compiled kernels are checked on a GPU with the same bound).
FORWARD_ATOL = {torch.float64: 1e-12, torch.float32: 1e-5}

# Largest |gradient - reference gradient| relative to the largest reference gradient entry
# (at least 1), through two chained iterations. Measured worst: float64 fast 2.1e-15;
# float32 (against the float64 reference) fast 1.7e-6, native_grad 4.7e-6.
BACKWARD_RTOL = {torch.float64: 1e-12, torch.float32: 1e-5}


def chained_gradients(prepare, leaves: list[torch.Tensor], window: int) -> list[torch.Tensor]:
    """Gradients w.r.t. every input of a fixed random functional of two chained iterations
    (the second reads the first's outputs), accumulated in float64.

    Args:
        prepare: ``(qk, window) -> attend`` of the backend under test.
        leaves: query_base, key_base, query_depth, key_depth, depth, mask, bias.
        window: odd window size p.
    """
    xs = [t.detach().clone().requires_grad_() for t in leaves]
    attend = prepare(AffineQK(*xs[:4]), window)
    refined, mask = attend(xs[4], xs[5], xs[6])
    refined2, mask2 = attend(refined, mask, xs[6])  # the second reads the first's outputs
    g = torch.Generator().manual_seed(1)
    weights = [torch.randn(refined.shape, generator=g, dtype=torch.float64) for _ in range(3)]
    weights = [w.to(refined.device) for w in weights]
    outputs = (refined2, mask2, refined)
    loss = sum((o.double() * w).sum() for o, w in zip(outputs, weights, strict=True))
    loss.backward()
    return [x.grad for x in xs]


def make_inputs(
    batch: int,
    embed: int,
    height: int,
    width: int,
    window: int,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
    scale: float = 0.3,
    depth_range: tuple[float, float] = (0.5, 10.0),
) -> tuple[AffineQK, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Realistic scales: logits of a few units, depths in metres, a mask with zeros.

    Drawn in float64 on the CPU from ``seed`` and then cast, so the same seed gives the same
    problem in every dtype and on every device.
    """
    g = torch.Generator().manual_seed(seed)

    def randn(*shape: int, std: float) -> torch.Tensor:
        return torch.randn(*shape, generator=g, dtype=torch.float64) * std

    parts = (
        randn(batch, embed, height, width, std=scale),
        randn(batch, embed, height, width, std=scale),
        randn(embed, std=0.05),
        randn(embed, std=0.05),
    )
    low, high = depth_range
    depth = low + (high - low) * torch.rand(batch, 1, height, width, generator=g)
    keep = torch.rand(batch, 1, height, width, generator=g) > 0.3
    mask = keep * torch.rand(batch, 1, height, width, generator=g)
    bias = randn(2 * window - 1, 2 * window - 1, std=0.5)

    def cast(t: torch.Tensor) -> torch.Tensor:
        return t.to(device=device, dtype=dtype)

    return AffineQK(*(cast(t) for t in parts)), cast(depth), cast(mask), cast(bias)


def as_float64(
    qk: AffineQK, depth: torch.Tensor, mask: torch.Tensor, bias: torch.Tensor
) -> tuple[AffineQK, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The same problem in float64 (for the oracle)."""
    parts = (qk.query_base, qk.key_base, qk.query_depth, qk.key_depth)
    return AffineQK(*(t.double() for t in parts)), depth.double(), mask.double(), bias.double()


def loop_attention(
    qk: AffineQK, depth: torch.Tensor, mask: torch.Tensor, bias: torch.Tensor, window: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Eqs. 7-9 and 11 pixel by pixel in float64 numpy: the oracle of the reference itself.

    Written apart from ``reference.py`` (which loops over window offsets): for each pixel it
    clamps its own window inside the image (NATTEN's border rule), forms q and the masked
    keys of eq. 7 in full, and takes one softmax with the bias of the true offset.
    """
    q0, k0 = qk.query_base.double().cpu().numpy(), qk.key_base.double().cpu().numpy()
    uq, uk = qk.query_depth.double().cpu().numpy(), qk.key_depth.double().cpu().numpy()
    d, m = depth.double().cpu().numpy()[:, 0], mask.double().cpu().numpy()[:, 0]
    b_table = bias.double().cpu().numpy()
    batch, _, height, width = q0.shape
    refined, grown = np.zeros((batch, height, width)), np.zeros((batch, height, width))
    half = window // 2
    for n in range(batch):
        for i in range(height):
            top = min(max(i - half, 0), height - window)
            for j in range(width):
                left = min(max(j - half, 0), width - window)
                rows, cols = slice(top, top + window), slice(left, left + window)
                q = q0[n, :, i, j] + d[n, i, j] * uq  # E
                keys = (k0[n, :, rows, cols] + d[n, rows, cols] * uk[:, None, None]) * m[
                    n, rows, cols
                ]  # E x p x p
                offsets = (slice(top - i + window - 1, top - i + 2 * window - 1),)
                offsets += (slice(left - j + window - 1, left - j + 2 * window - 1),)
                logits = np.einsum("e,eyx->yx", q, keys) + b_table[offsets]
                weights = np.exp(logits - logits.max())
                weights /= weights.sum()
                refined[n, i, j] = (weights * d[n, rows, cols]).sum()
                grown[n, i, j] = (weights * m[n, rows, cols]).sum()
    return torch.from_numpy(refined)[:, None], torch.from_numpy(grown)[:, None]


@dataclass(frozen=True)
class BackendCase:
    """One backend on one device, as the shared attention tests see it.

    Attributes:
        name: key of ``BACKENDS``.
        device: where its tensors live.
        via_front_door: False only for the Triton interpreter, which the front door refuses
            (auto must never pick a numpy emulation), so it is prepared directly.
    """

    name: str
    device: str
    via_front_door: bool = True

    @property
    def differentiable(self) -> bool:
        """Whether gradients flow through it."""
        return BACKENDS[self.name].differentiable

    def require(self, dtype: torch.dtype = torch.float32, requires_grad: bool = False) -> None:
        """Skip the test, with the backend's reason, where it cannot run."""
        if not self.via_front_door:  # the interpreter: the kernels' own dtypes, no gradients
            if requires_grad or dtype not in (torch.float32, torch.float16, torch.bfloat16):
                pytest.skip("the Triton kernels are inference-only, in float32/16 or bfloat16")
            return
        if self.device == "cuda" and not torch.cuda.is_available():
            pytest.skip("CUDA is not available")
        reason = BACKENDS[self.name].can_run(torch.device(self.device), requires_grad, dtype)
        if reason is not None:
            pytest.skip(f"{self.name} cannot run here: {reason}")

    def prepare(self, qk: AffineQK, window: int) -> AttendFn:
        """``attend`` for one layer, through the front door with ``backend=name``."""
        if self.via_front_door:
            return prepare_attention(qk, window, backend=self.name)  # type: ignore[arg-type]
        return BACKENDS[self.name].prepare(qk, window)


# The devices each backend is for; test_every_backend_has_test_devices keeps this in step
# with the table, so a new backend cannot miss the shared tests.
BACKEND_DEVICES = {
    "reference": ("cpu", "cuda"),
    "fast": ("cpu", "cuda"),
    "native_grad": ("cpu",),
    "native": ("cpu",),
    "triton": ("cuda",),
}


def backend_cases() -> list:
    """pytest params: every backend on its devices (CUDA ones marked gpu), plus the Triton
    interpreter in a ``TRITON_INTERPRET=1`` process."""
    cases = []
    for name, devices in BACKEND_DEVICES.items():
        for device in devices:
            marks = [pytest.mark.gpu] if device == "cuda" else []
            case_id = name if device == "cpu" or name == "triton" else f"{name}-{device}"
            cases.append(pytest.param(BackendCase(name, device), id=case_id, marks=marks))
    if IN_INTERPRETER:
        cases.append(pytest.param(BackendCase("triton", "cpu", False), id="triton-interpreter"))
    return cases


def expected_outputs(
    case: BackendCase,
    qk: AffineQK,
    depth: torch.Tensor,
    mask: torch.Tensor,
    bias: torch.Tensor,
    window: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """What ``case`` must return, on the CPU in float64: the reference run in float64, or
    for the reference itself the independent per-pixel loop."""
    problem = as_float64(qk, depth, mask, bias)
    if case.name == "reference":
        return loop_attention(*problem, window)
    refined, grown = window_attention_reference(*problem, window)
    return refined.cpu(), grown.cpu()
