"""Pixel-to-window masked attention (eqs. 7-9, 11) behind one front door with ``backend=``.

Backends share one contract: ``prepare(qk, window)`` returns
``attend(depth, mask, rel_pos_bias) -> (refined, next_mask)``. Preparation happens once per
MSPN layer (the guidance is fixed), ``attend`` once per iteration. They are listed in one
table, :data:`BACKENDS` (name -> can_run, prepare; see :mod:`.backends`), slowest first:

- ``reference``: explicit loop over window offsets; the oracle.
- ``fast``: exact decomposition in torch; differentiable, any device.
- ``native_grad``: the same decomposition as vectorised C loops with hand-written backward passes
  (CPU, float32, compiled on first use): what ``auto`` picks for training on CPU.
- ``native``: the same decomposition as fused, vectorised C kernels (pthreads, CPU,
  inference only, same compiled library): what ``auto`` picks for inference on CPU.
- ``triton``: the same decomposition as fused Triton kernels (CUDA, inference only);
  offered when the ``triton`` package imports, which happens lazily, so machines without
  it never import it. ``auto`` picks it for CUDA inference once it has passed a check
  against ``fast`` on that GPU (:class:`BackendChecks`), and ``fast`` otherwise.

An explicit backend that is unknown or cannot run here is a ``ValueError`` saying why.
"""

from __future__ import annotations

from typing import Literal

import torch

from ._window import (
    AffineQK,
    check_maps,
    check_qk,
    gather_windows,
    relative_bias_windows,
    window_starts,
)
from .backends import BACKENDS, BackendChecks, BackendSpec, compare_with_fast
from .fast import guidance_window_term, prepare_fast, window_attention_fast
from .reference import (
    AttendFn,
    WindowAttention,
    attend_windows_reference,
    prepare_reference,
    window_attention_reference,
)

Backend = Literal["auto", "reference", "fast", "native_grad", "native", "triton"]

__all__ = [
    "BACKENDS",
    "AffineQK",
    "AttendFn",
    "Backend",
    "BackendChecks",
    "BackendSpec",
    "WindowAttention",
    "attend_windows_reference",
    "available_backends",
    "compare_with_fast",
    "gather_windows",
    "guidance_window_term",
    "prepare_attention",
    "prepare_fast",
    "prepare_reference",
    "relative_bias_windows",
    "resolve_backend",
    "window_attention",
    "window_attention_fast",
    "window_attention_reference",
    "window_starts",
]


_CHECKS = BackendChecks()  # the process-wide self-check results (see BackendChecks)


def available_backends(
    device: torch.device | str = "cpu",
    requires_grad: bool = False,
    dtype: torch.dtype = torch.float32,
) -> list[str]:
    """Backends that can run on ``device``, slowest first (so ``[-1]`` is the fastest).

    Args:
        device: where the tensors live.
        requires_grad: whether gradients must flow (training); inference-only kernels are
            left out then.
        dtype: the tensors' dtype; the float32-only native kernels are offered for float32,
            the Triton kernels for float32, float16 and bfloat16.
    """
    device = torch.device(device)
    return [
        name
        for name, spec in BACKENDS.items()
        if spec.can_run(device, requires_grad, dtype) is None
    ]


def resolve_backend(
    name: Backend,
    device: torch.device | str = "cpu",
    requires_grad: bool = False,
    dtype: torch.dtype = torch.float32,
    checks: BackendChecks | None = None,
) -> str:
    """Turn ``"auto"`` into the fastest backend that can run here; check an explicit choice.

    ``auto`` skips a backend that failed its self-check on this device (the Triton kernels,
    checked against ``fast`` the first time ``auto`` would pick them there).

    Args:
        name: ``"auto"`` or a key of :data:`BACKENDS`.
        device: where the tensors live.
        requires_grad: whether gradients must flow.
        dtype: the tensors' dtype.
        checks: the self-check results to use; None uses the process-wide ones.

    Raises:
        ValueError: ``name`` is unknown, or cannot run here; the message says why.
    """
    device = torch.device(device)
    options = available_backends(device, requires_grad, dtype)
    if name == "auto":
        checks = _CHECKS if checks is None else checks
        return next(b for b in reversed(options) if checks.failure(b, device) is None)
    if name not in BACKENDS:
        raise ValueError(f"unknown attention backend {name!r}; choose from {['auto', *BACKENDS]}")
    reason = BACKENDS[name].can_run(device, requires_grad, dtype)
    if reason is not None:
        raise ValueError(
            f"attention backend {name!r} is not available on {device}"
            f"{' with gradients' if requires_grad else ''} ({reason}); choose from {options}"
        )
    return name


def prepare_attention(
    qk: AffineQK, window: int, backend: Backend = "auto", checks: BackendChecks | None = None
) -> AttendFn:
    """Prepare one layer's attention with the chosen backend.

    Args:
        qk: affine query/key features (B x E x H x W bases, E depth weights).
        window: odd window size p; H and W must be at least p.
        backend: "auto" picks the fastest backend that can run here (see
            :func:`resolve_backend`).
        checks: the self-check results ``auto`` consults; None uses the process-wide ones.

    Returns:
        ``attend(depth, mask, rel_pos_bias) -> (refined, next_mask)``.
    """
    check_qk(qk, window)
    requires_grad = torch.is_grad_enabled() and any(
        t.requires_grad for t in (qk.query_base, qk.key_base, qk.query_depth, qk.key_depth)
    )
    name = resolve_backend(
        backend, qk.query_base.device, requires_grad, qk.query_base.dtype, checks
    )
    return BACKENDS[name].prepare(qk, window)


def window_attention(
    qk: AffineQK,
    depth: torch.Tensor,
    mask: torch.Tensor,
    rel_pos_bias: torch.Tensor,
    window: int,
    backend: Backend = "auto",
) -> tuple[torch.Tensor, torch.Tensor]:
    """One-shot masked pixel-to-window attention (eqs. 7-9, 11) with a selectable backend.

    Args:
        qk: affine query/key features.
        depth: B x 1 x H x W, metres (D~_n).
        mask: B x 1 x H x W in [0, 1] (M_n).
        rel_pos_bias: (2p-1) x (2p-1) relative position bias.
        window: odd window size p.
        backend: see module docstring.

    Returns:
        (refined R_n, next mask M_{n+1}), both B x 1 x H x W.
    """
    check_qk(qk, window)  # validated once, at the front door; the backends stay pure maths
    b, _, h, w = qk.query_base.shape
    check_maps((b, h, w), window, depth, mask, rel_pos_bias)
    return prepare_attention(qk, window, backend)(depth, mask, rel_pos_bias)
