"""Triton backend: the decomposed attention (see :mod:`.fast`) as fused GPU kernels.

Per MSPN layer, one kernel computes the guidance window term T0 (B x p^2 x H x W, stored in
float32 by default, or float16/bfloat16 to halve the per-iteration traffic) and the depth
terms alpha, beta; gamma stays a one-element device tensor, so nothing here waits for the
GPU and a whole refinement can be captured in a CUDA graph. Per iteration, one kernel reads
T0 once and produces R_n (eq. 9) and m_{n+1} (eq. 11) with a numerically stable (online)
softmax accumulated in float32. :meth:`TritonAttention.step` additionally fuses eqs. 6 and
10 and the measured-pixel reset of ``MSPNLayer.step``, making an iteration one launch.

The ``triton`` package is imported lazily, inside functions, only when this backend is used
or probed on a CUDA device, so ``sdr_core`` imports and runs on machines without Triton.
(This module shares its name with the package; with absolute imports that is harmless:
``import triton`` inside ``sdr_core`` always means the package.)

Contract and limits:

- Inference only: tensors requiring grad (with grad mode on) raise RuntimeError; the front
  door then uses ``fast``.
- CUDA tensors. With ``TRITON_INTERPRET=1`` set before Triton is first imported, the same
  kernels run on CPU tensors through Triton's interpreter (used by the CPU tests; slow).
- Inputs in float32, float16 or bfloat16 are read as they are and computed in float32;
  outputs have the dtype of ``depth``. Other floating dtypes are cast to float32 and back.
- Accuracy (float32 T0): within 3.3e-6 m of the reference (depths 0.5-10 m; atol 1e-5 in
  the tests). A reduced-precision T0 moves each logit by at most max|dT0| (float16: 2^-11 of
  |T0| with round-to-nearest, bfloat16: 2^-8), hence the refined depth by at most max|dT0|
  times the depth range of the window: with |T0| <= 6.6, measured 7e-4 m (float16) and
  7.5e-3 m (bfloat16). Figures from Triton's CPU interpreter; see
  tests/test_attention_triton.py.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
from types import ModuleType

import torch

from ._window import AffineQK, check_maps, check_qk
from .reference import AttendFn

logger = logging.getLogger(__name__)

__all__ = [
    "TritonAttention",
    "can_run_triton",
    "prepare_triton",
    "triton_unavailable_reason",
    "window_attention_triton",
]

_KERNEL_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


@functools.lru_cache(maxsize=1)
def _load_kernels() -> tuple[ModuleType | None, str | None]:
    """(kernels module, None) or (None, why not); imports ``triton`` on first call only."""
    if importlib.util.find_spec("triton") is None:
        return None, "the triton package is not installed"
    try:
        from . import triton_kernels
    except Exception as error:  # a broken install can raise anything while importing
        return None, f"importing triton failed: {type(error).__name__}: {error}"
    return triton_kernels, None


def _require_kernels() -> ModuleType:
    kernels, error = _load_kernels()
    if kernels is None:
        raise RuntimeError(f"the Triton attention backend is unavailable: {error}")
    return kernels


@functools.lru_cache(maxsize=8)
def _reason_for(device_type: str) -> str | None:
    if device_type != "cuda":
        return f"the Triton backend runs on CUDA devices, not {device_type}"
    if not torch.cuda.is_available():
        return "CUDA is not available"
    kernels, error = _load_kernels()
    if kernels is None:
        return error
    if kernels.INTERPRETED:
        return "TRITON_INTERPRET=1 is set, so Triton kernels run in the CPU interpreter"
    return None


def triton_unavailable_reason(device: torch.device | str = "cuda") -> str | None:
    """Why the Triton backend cannot run on ``device``, or None when it can.

    Never fails: a missing or broken ``triton`` package is a reason, not an error. The
    package is imported only for a CUDA device on a machine with CUDA.
    """
    reason = _reason_for(torch.device(device).type)
    if reason is not None:
        logger.debug("triton attention backend unavailable: %s", reason)
    return reason


def can_run_triton(device: torch.device | str = "cuda") -> bool:
    """Whether the Triton kernels can run on ``device`` (see :func:`triton_unavailable_reason`)."""
    return triton_unavailable_reason(device) is None


def _check_no_grad(*tensors: torch.Tensor) -> None:
    if torch.is_grad_enabled() and any(t.requires_grad for t in tensors):
        raise RuntimeError(
            "the Triton attention backend is inference-only: a tensor requires grad. Use "
            "backend='fast' for training, or run under torch.no_grad()/torch.inference_mode()."
        )


def _check_device(device: torch.device, interpreted: bool) -> None:
    wanted = "cpu" if interpreted else "cuda"
    if device.type != wanted:
        mode = "in the interpreter (TRITON_INTERPRET=1)" if interpreted else "compiled"
        raise ValueError(f"Triton kernels {mode} need {wanted} tensors, got {device}")


def _kernel_input(t: torch.Tensor, name: str, device: torch.device) -> torch.Tensor:
    if not t.is_floating_point():
        raise ValueError(f"{name} must be a floating tensor, got {t.dtype}")
    if t.device != device:
        raise ValueError(f"{name} is on {t.device}, expected {device}")
    t = t.detach()
    if t.dtype not in _KERNEL_DTYPES:
        t = t.to(torch.float32)
    return t.contiguous()


class TritonAttention:
    """One layer's prepared attention: T0, alpha, beta and gamma computed by one kernel.

    Call it as ``attend(depth, mask, rel_pos_bias) -> (refined, next_mask)`` (the backend
    contract), or use :meth:`step` for a whole fused iteration.

    Attributes:
        term: B x p^2 x H x W in ``term_dtype``; T0(p, t) = q0(p) . k0(p_t).
        alpha: B x H x W float32; u_q . k0 (weights the query depth, per key pixel).
        beta: B x H x W float32; q0 . u_k (weights the key depth, per query pixel).
        gamma: 1-element float32 device tensor; u_q . u_k.
    """

    def __init__(self, qk: AffineQK, window: int, term_dtype: torch.dtype = torch.float32) -> None:
        kernels = _require_kernels()
        _check_no_grad(qk.query_base, qk.key_base, qk.query_depth, qk.key_depth)
        check_qk(qk, window)
        b, e, h, w = qk.query_base.shape
        if term_dtype not in _KERNEL_DTYPES:
            raise ValueError(f"term_dtype must be one of {_KERNEL_DTYPES}, got {term_dtype}")
        device = qk.query_base.device
        _check_device(device, kernels.INTERPRETED)
        self._kernels = kernels
        self.window = window
        self.shape = (b, h, w)
        self.device = device
        q0, k0, uq, uk = (
            _kernel_input(t, name, device)
            for t, name in zip(
                (qk.query_base, qk.key_base, qk.query_depth, qk.key_depth),
                ("query_base", "key_base", "query_depth", "key_depth"),
                strict=True,
            )
        )
        self.term = torch.empty(b, window * window, h, w, dtype=term_dtype, device=device)
        self.alpha = torch.empty(b, h, w, dtype=torch.float32, device=device)
        self.beta = torch.empty(b, h, w, dtype=torch.float32, device=device)
        # A device tensor, not a Python float: reading it would wait for the GPU.
        self.gamma = torch.dot(uq.float(), uk.float()).reshape(1)
        kernels.launch_guidance_term(
            q0, k0, uq, uk, self.term, self.alpha, self.beta, window
        )  # T0, alpha, beta

    def _maps(
        self, depth: torch.Tensor, mask: torch.Tensor, rel_pos_bias: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        _check_no_grad(depth, mask, rel_pos_bias)
        check_maps(self.shape, self.window, depth, mask, rel_pos_bias)
        return (
            _kernel_input(depth, "depth", self.device),
            _kernel_input(mask, "mask", self.device),
            _kernel_input(rel_pos_bias, "rel_pos_bias", self.device),
        )

    def _run(
        self,
        depth: torch.Tensor,
        mask: torch.Tensor,
        sparse: torch.Tensor | None,
        rel_pos_bias: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        out_dtype = depth.dtype
        d, m, bias = self._maps(depth, mask, rel_pos_bias)
        s = None
        if sparse is not None:
            if sparse.shape != depth.shape:
                raise ValueError(f"sparse must be {tuple(depth.shape)}, got {tuple(sparse.shape)}")
            s = _kernel_input(sparse, "sparse", self.device)
        store_dtype = out_dtype if out_dtype in _KERNEL_DTYPES else torch.float32
        out_depth = torch.empty(d.shape, dtype=store_dtype, device=self.device)
        out_mask = torch.empty(d.shape, dtype=store_dtype, device=self.device)
        self._kernels.launch_attend(
            self.term, self.alpha, self.beta, self.gamma, d, m, s, bias, out_depth, out_mask,
            self.window,
        )  # fmt: skip
        if store_dtype != out_dtype:
            return out_depth.to(out_dtype), out_mask.to(out_dtype)
        return out_depth, out_mask

    def __call__(
        self, depth: torch.Tensor, mask: torch.Tensor, rel_pos_bias: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Masked window attention of one iteration, eqs. 7-9 and 11.

        Args:
            depth: B x 1 x H x W, metres; the re-imposed depth D~_n of eq. 6.
            mask: B x 1 x H x W in [0, 1]; the propagation mask M_n.
            rel_pos_bias: (2p-1) x (2p-1) relative position bias b of eq. 8.

        Returns:
            refined: B x 1 x H x W, R_n of eq. 9.
            next_mask: B x 1 x H x W, m_{n+1} of eq. 11. Fresh tensors.
        """
        return self._run(depth, mask, None, rel_pos_bias)

    def step(
        self,
        depth: torch.Tensor,
        mask: torch.Tensor,
        sparse: torch.Tensor,
        rel_pos_bias: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """A whole MSPN iteration (D_n, M_n) -> (D_{n+1}, M_{n+1}), eqs. 6-11, in one launch.

        Equals ``MSPNLayer.step(attend, depth, mask, sparse, sparse > 0)``: eq. 6 re-imposes
        S on every depth the kernel reads, eq. 10 blends R_n in where M_n trusts it, and
        measured pixels (``sparse > 0``) leave with depth S and their mask value M_n.

        Args:
            depth: B x 1 x H x W, metres (D_n).
            mask: B x 1 x H x W in [0, 1] (M_n).
            sparse: B x 1 x H x W, metres; 0 where unmeasured (S).
            rel_pos_bias: (2p-1) x (2p-1) relative position bias b of eq. 8.

        Returns:
            Fresh tensors (D_{n+1}, M_{n+1}), both B x 1 x H x W.
        """
        return self._run(depth, mask, sparse, rel_pos_bias)


def prepare_triton(
    qk: AffineQK, window: int, term_dtype: torch.dtype = torch.float32
) -> TritonAttention:
    """Precompute one layer's guidance terms with Triton; return the per-iteration attention.

    Args:
        qk: affine query/key features (B x E x H x W bases, E depth weights), on CUDA.
        window: odd window size p; H and W must be at least p.
        term_dtype: storage dtype of T0 (float32, float16 or bfloat16); math stays float32.

    Returns:
        A :class:`TritonAttention`, callable as ``attend(depth, mask, rel_pos_bias)``.

    Raises:
        RuntimeError: Triton is unavailable, or a tensor requires grad.
        ValueError: bad shapes, dtypes or devices.
    """
    return TritonAttention(qk, window, term_dtype)


def window_attention_triton(
    qk: AffineQK, depth: torch.Tensor, mask: torch.Tensor, rel_pos_bias: torch.Tensor, window: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Same contract as ``window_attention_reference``, with the Triton kernels (one-shot)."""
    attend: AttendFn = prepare_triton(qk, window)
    return attend(depth, mask, rel_pos_bias)
