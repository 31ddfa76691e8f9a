"""Pixel-to-window masked attention (eqs. 7-9, 11) behind one front door with ``backend=``.

Backends share one contract: ``prepare_<name>(qk, window)`` returns
``attend(depth, mask, rel_pos_bias) -> (refined, next_mask)``. Preparation happens once per
MSPN layer (the guidance is fixed), ``attend`` once per iteration.

- ``reference``: explicit loop over window offsets; the oracle.
- ``fast``: exact decomposition in torch; differentiable, any device.
- ``native``: the same decomposition as fused, vectorised C kernels (pthreads, CPU,
  inference only), compiled on first use; unavailable when no C compiler is found.
- ``native_grad``: the same decomposition as plain C loops with hand-written backward passes
  (CPU, float32, same compiled library): what ``auto`` picks for training on CPU.
- ``triton``: the same decomposition as fused Triton kernels (CUDA, inference only);
  offered when the ``triton`` package imports, which happens lazily, so machines
  without it never import it. ``auto`` picks it for CUDA inference.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Literal

import torch

from ._window import AffineQK, check_qk, gather_windows, relative_bias_windows, window_starts
from .fast import guidance_window_term, prepare_fast, window_attention_fast
from .reference import AttendFn, prepare_reference, window_attention_reference

logger = logging.getLogger(__name__)

Backend = Literal["auto", "reference", "fast", "native_grad", "native", "triton"]

__all__ = [
    "AffineQK",
    "AttendFn",
    "Backend",
    "available_backends",
    "gather_windows",
    "guidance_window_term",
    "prepare_attention",
    "relative_bias_windows",
    "resolve_backend",
    "window_attention",
    "window_attention_fast",
    "window_attention_reference",
    "window_starts",
]


def _native_prepare() -> Callable[[AffineQK, int], AttendFn] | None:
    """The native backend's prepare function, or None (with the reason logged)."""
    try:
        from . import native
    except ImportError as error:  # pragma: no cover - only when the module is absent
        logger.info("native attention backend unavailable: %s", error)
        return None
    return native.prepare_native if native.can_run_native() else None


_TRITON_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


def _triton_unavailable_reason(device: torch.device | str) -> str | None:
    """Why the Triton backend cannot run on ``device`` (None if it can); never raises."""
    from .triton import triton_unavailable_reason  # imports the package lazily

    return triton_unavailable_reason(device)


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
        dtype: the tensors' dtype; the float32-only native kernel is offered for float32,
            the Triton kernels for float32, float16 and bfloat16.
    """
    options = ["reference", "fast"]
    on_cpu = torch.device(device).type == "cpu"
    if on_cpu and dtype == torch.float32 and _native_prepare():
        options.append("native_grad")
        if not requires_grad:
            options.append("native")
    triton_ok = torch.device(device).type == "cuda" and not requires_grad
    if triton_ok and dtype in _TRITON_DTYPES and _triton_unavailable_reason(device) is None:
        options.append("triton")
    return options


def resolve_backend(
    name: Backend,
    device: torch.device | str = "cpu",
    requires_grad: bool = False,
    dtype: torch.dtype = torch.float32,
) -> str:
    """Turn ``"auto"`` into the fastest available backend; check an explicit choice."""
    options = available_backends(device, requires_grad, dtype)
    if name == "auto":
        return options[-1]
    if name not in options:
        why = ""
        if name == "triton":
            reason = _triton_unavailable_reason(device)
            why = f" ({reason})" if reason else ""
        raise ValueError(
            f"attention backend {name!r} is not available on {torch.device(device)}"
            f"{' with gradients' if requires_grad else ''}{why}; choose from {options}"
        )
    return name


def _check_inputs(qk: AffineQK, depth: torch.Tensor, mask: torch.Tensor, window: int) -> None:
    """Validate shapes once, at the front door, so the backends stay pure maths."""
    check_qk(qk, window)
    b, _, h, w = qk.query_base.shape
    for name, t in (("depth", depth), ("mask", mask)):
        if t.shape != (b, 1, h, w):
            raise ValueError(f"{name} must be {b} x 1 x {h} x {w}, got {tuple(t.shape)}")


def prepare_attention(qk: AffineQK, window: int, backend: Backend = "auto") -> AttendFn:
    """Prepare one layer's attention with the chosen backend.

    Args:
        qk: affine query/key features (B x E x H x W bases, E depth weights).
        window: odd window size p; H and W must be at least p.
        backend: "auto" picks the fastest backend that can run here.

    Returns:
        ``attend(depth, mask, rel_pos_bias) -> (refined, next_mask)``.
    """
    b, _, h, w = qk.query_base.shape
    probe = torch.zeros(b, 1, h, w, dtype=qk.query_base.dtype, device=qk.query_base.device)
    _check_inputs(qk, probe, probe, window)
    requires_grad = torch.is_grad_enabled() and any(
        t.requires_grad for t in (qk.query_base, qk.key_base, qk.query_depth, qk.key_depth)
    )
    name = resolve_backend(backend, qk.query_base.device, requires_grad, qk.query_base.dtype)
    if name == "reference":
        return prepare_reference(qk, window)
    if name == "fast":
        return prepare_fast(qk, window)
    if name == "native_grad":
        from .native_grad import prepare_native_grad

        return prepare_native_grad(qk, window)
    if name == "triton":
        from .triton import prepare_triton

        return prepare_triton(qk, window)
    prepare = _native_prepare()
    assert prepare is not None  # resolve_backend only offers native when it can run
    return prepare(qk, window)


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
    _check_inputs(qk, depth, mask, window)
    if rel_pos_bias.shape != (2 * window - 1, 2 * window - 1):
        raise ValueError(
            f"rel_pos_bias must be {2 * window - 1} x {2 * window - 1} for window {window}, "
            f"got {tuple(rel_pos_bias.shape)}"
        )
    return prepare_attention(qk, window, backend)(depth, mask, rel_pos_bias)
