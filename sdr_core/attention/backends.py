"""The attention backends as a table: name -> (can_run, prepare, ...), plus the self-check cache.

Every backend has the same two functions. ``can_run(device, requires_grad, dtype)`` returns
why the backend cannot run there, or None when it can; it never raises and never imports an
optional package for a device that could not use it. ``prepare(qk, window)`` precomputes one
MSPN layer's guidance terms and returns ``attend(depth, mask, rel_pos_bias)``. The table is
ordered slowest first, so the fastest backend that can run is the last one offered.

A backend whose kernels have not been verified on real hardware carries a ``self_check``:
before ``auto`` picks it on a device, the check runs once there, comparing it with ``fast``
on a small input (:func:`compare_with_fast`); if it fails to compile or disagrees, ``auto``
falls back to the next backend and says so once in the log. :class:`BackendChecks` holds
the per-device results; an explicit ``backend=`` request is never second-guessed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

import torch

from ._window import AffineQK
from .fast import prepare_fast
from .reference import AttendFn, prepare_reference

logger = logging.getLogger(__name__)

__all__ = [
    "BACKENDS",
    "BackendChecks",
    "BackendSpec",
    "compare_with_fast",
]

CanRun = Callable[[torch.device, bool, torch.dtype], "str | None"]
Prepare = Callable[[AffineQK, int], AttendFn]
SelfCheck = Callable[[torch.device], "str | None"]

_TRITON_DTYPES = (torch.float32, torch.float16, torch.bfloat16)

# Worst |triton - reference| measured in Triton's CPU interpreter: 3.3e-6 m for the depth
# (0.5-10 m) and 2.7e-7 for the mask; the GPU's exp may round differently, hence 30x that.
_CHECK_ATOL = 1e-4
_CHECK_CASE = (1, 16, 16, 80, 13)  # B, E, H, W, p: the model's window, two column blocks


@dataclass(frozen=True)
class BackendSpec:
    """One attention backend.

    Attributes:
        can_run: ``(device, requires_grad, dtype) -> reason`` it cannot run, or None.
        prepare: ``(qk, window) -> attend``; imports optional modules lazily.
        differentiable: whether gradients flow through ``attend`` (training).
        self_check: ``device -> reason`` the kernels failed there, or None; run once per
            device before ``auto`` picks the backend (None: nothing to check).
        custom_backward: the gradients come from the backend's own backward kernel, which
            recomputes an iteration's attention from its small inputs, so training keeps no
            p^2 x H x W tensors and needs no activation checkpointing. False for the torch
            backends, whose autograd stores those tensors per iteration (training
            checkpoints every iteration instead) and for the inference-only ones.
    """

    can_run: CanRun
    prepare: Prepare
    differentiable: bool
    self_check: SelfCheck | None = None
    custom_backward: bool = False

    def __post_init__(self) -> None:
        if self.custom_backward and not self.differentiable:
            raise ValueError("a backend with its own backward pass must be differentiable")


def _anywhere(device: torch.device, requires_grad: bool, dtype: torch.dtype) -> str | None:
    """The torch backends run on every device, with gradients, in every floating dtype."""
    return None


def _native_library_reason() -> str | None:
    from .native import can_run_native  # compiles the C library on first use

    if not can_run_native():
        return "the C library did not build (no C compiler, or a compile error; see the log)"
    return None


def _native_grad_can_run(
    device: torch.device, requires_grad: bool, dtype: torch.dtype
) -> str | None:
    if device.type != "cpu":
        return f"it runs on the CPU, not {device.type}"
    if dtype != torch.float32:
        return f"it computes in float32, and the tensors are {dtype}"
    return _native_library_reason()


def _native_can_run(device: torch.device, requires_grad: bool, dtype: torch.dtype) -> str | None:
    if requires_grad:
        return "it is inference-only and gradients are required"
    return _native_grad_can_run(device, requires_grad, dtype)


def _triton_can_run(device: torch.device, requires_grad: bool, dtype: torch.dtype) -> str | None:
    if device.type == "cuda" and requires_grad:
        return "it is inference-only and gradients are required"
    if device.type == "cuda" and dtype not in _TRITON_DTYPES:
        return f"it takes float32, float16 or bfloat16 tensors, not {dtype}"
    from .triton import triton_unavailable_reason  # imports triton only for a CUDA device

    return triton_unavailable_reason(device)


def _prepare_native_grad(qk: AffineQK, window: int) -> AttendFn:
    from .native_grad import prepare_native_grad

    return prepare_native_grad(qk, window)


def _prepare_native(qk: AffineQK, window: int) -> AttendFn:
    from .native import prepare_native

    return prepare_native(qk, window)


def _prepare_triton(qk: AffineQK, window: int) -> AttendFn:
    from .triton import prepare_triton

    return prepare_triton(qk, window)


def _check_triton(device: torch.device) -> str | None:
    return compare_with_fast(_prepare_triton, device)


BACKENDS: dict[str, BackendSpec] = {
    "reference": BackendSpec(_anywhere, prepare_reference, differentiable=True),
    "fast": BackendSpec(_anywhere, prepare_fast, differentiable=True),
    "native_grad": BackendSpec(
        _native_grad_can_run, _prepare_native_grad, differentiable=True, custom_backward=True
    ),
    "native": BackendSpec(_native_can_run, _prepare_native, differentiable=False),
    "triton": BackendSpec(
        _triton_can_run, _prepare_triton, differentiable=False, self_check=_check_triton
    ),
}
"""Every backend, slowest first; see the module docstring."""


def _check_inputs(
    device: torch.device,
) -> tuple[AffineQK, torch.Tensor, torch.Tensor, torch.Tensor]:
    """A small deterministic problem: logits of a few units, depths 0.5-10 m, some mask 0."""
    batch, embed, height, width, window = _CHECK_CASE
    g = torch.Generator().manual_seed(0)
    qk = AffineQK(
        torch.randn(batch, embed, height, width, generator=g) * 0.3,
        torch.randn(batch, embed, height, width, generator=g) * 0.3,
        torch.randn(embed, generator=g) * 0.05,
        torch.randn(embed, generator=g) * 0.05,
    )
    depth = 0.5 + 9.5 * torch.rand(batch, 1, height, width, generator=g)
    mask = (torch.rand(depth.shape, generator=g) > 0.3) * torch.rand(depth.shape, generator=g)
    bias = torch.randn(2 * window - 1, 2 * window - 1, generator=g) * 0.5
    qk = AffineQK(
        *(t.to(device) for t in (qk.query_base, qk.key_base, qk.query_depth, qk.key_depth))
    )
    return qk, depth.to(device), mask.to(device), bias.to(device)


def compare_with_fast(prepare: Prepare, device: torch.device | str) -> str | None:
    """Run ``prepare`` against the ``fast`` backend on a small input on ``device``.

    Args:
        prepare: the backend's ``(qk, window) -> attend``.
        device: where to run both.

    Returns:
        None when both outputs agree within 1e-4 (metres for the depth), else why not: the
        exception raised while compiling or running, or the largest difference.
    """
    window = _CHECK_CASE[-1]
    qk, depth, mask, bias = _check_inputs(torch.device(device))
    with torch.no_grad():
        expected = prepare_fast(qk, window)(depth, mask, bias)
        try:
            got = prepare(qk, window)(depth, mask, bias)
        except Exception as error:  # a kernel that fails to compile can raise anything
            return f"it failed to compile or run: {type(error).__name__}: {error}"
    for name, g, e in zip(("depth", "mask"), got, expected, strict=True):
        if g.shape != e.shape:
            return f"its {name} has shape {tuple(g.shape)}, expected {tuple(e.shape)}"
        error = float((g.float() - e.float()).abs().max())
        if not error <= _CHECK_ATOL:  # also catches NaN
            return f"its {name} differs from fast by {error:.3g} (tolerance {_CHECK_ATOL:g})"
    return None


def _device_key(device: torch.device) -> str:
    """``cuda`` and ``cuda:0`` are one GPU when 0 is the current device."""
    if device.type == "cuda" and device.index is None and torch.cuda.is_available():
        device = torch.device("cuda", torch.cuda.current_device())
    return str(device)


class BackendChecks:
    """Results of the backends' self-checks, one per (backend, device); thread-safe.

    The one piece of state the front door keeps: a process-wide instance caches that a
    device's Triton kernels were checked, so the check runs once per device, not once per
    refinement. Pass your own instance to start from nothing (tests do), or :meth:`clear` it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._results: dict[tuple[str, str], str | None] = {}

    def failure(self, name: str, device: torch.device | str) -> str | None:
        """Why backend ``name`` failed its self-check on ``device``; None if it passed.

        The first call for a (backend, device) runs the check (other threads wait for it)
        and logs the outcome; later calls return the cached result.
        """
        check = BACKENDS[name].self_check
        if check is None:
            return None
        device = torch.device(device)
        key = (name, _device_key(device))
        with self._lock:
            if key not in self._results:
                self._results[key] = reason = check(device)
                if reason is None:
                    logger.info("%s attention backend passed its check on %s", name, key[1])
                else:
                    logger.warning(
                        "%s attention backend failed its check on %s (%s); 'auto' uses the "
                        "next backend there",
                        name,
                        key[1],
                        reason,
                    )
            return self._results[key]

    def clear(self) -> None:
        """Forget every result, so the next use checks again."""
        with self._lock:
            self._results.clear()
