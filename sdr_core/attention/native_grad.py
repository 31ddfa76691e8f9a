"""Differentiable native CPU backend: the decomposed attention with hand-written backward.

The ``fast`` torch backend is exact and differentiable but spends most of a training step
gathering p^2 windows and scattering their gradients back (advanced indexing and
``index_put``). This backend runs the same maths (see :mod:`.fast`) as vectorised C loops,
forward and backward, from the library that :mod:`.native` compiles (the C source says how
each loop is vectorised):

- ``T0(p, t) = q0(p) . k0(p_t)`` (:class:`_GuidanceTerm`), from channel-last features;
- one attention iteration (:class:`_Attend`, eqs. 8, 9 and 11 in decomposed form). Its
  backward recomputes the softmax from the inputs instead of storing the B x p^2 x H x W
  weights, so an iteration keeps only its small inputs alive and needs no activation
  checkpointing.

The key-side gradients (a key pixel is read by every query whose window holds it) are
gathered per key row rather than scattered (the attention's through per-query-row partial
sums over each window row, in a B x H x p x W scratch buffer), so no two threads write the
same element and the result does not depend on the thread count.

Contract: CPU, float32 (other dtypes are computed in float32 and cast back); the gradients
equal the ``fast`` backend's up to float32 rounding (tested). ``alpha``, ``beta`` and
``gamma`` are computed by torch and take their gradients from autograd.
"""

from __future__ import annotations

import torch

from ._window import AffineQK
from .native import _check_rc, _require_library, _threads
from .reference import AttendFn

__all__ = ["prepare_native_grad"]


def _ptr(t: torch.Tensor) -> int:
    return t.data_ptr()


def _attend_inputs(*tensors: torch.Tensor) -> list[int | float]:
    """The C arguments that start both attend calls, from (term, ..., bias).

    Args:
        *tensors: term, alpha, beta, gamma, depth, mask, bias; passed as pointers, except
            gamma (index 3), passed as a float.
    """
    return [float(t) if i == 3 else _ptr(t) for i, t in enumerate(tensors)]


class _GuidanceTerm(torch.autograd.Function):
    """T0 = q0 . k0 over every window (B x H x W x p^2) from B x H x W x E features."""

    @staticmethod
    def forward(ctx, query: torch.Tensor, key: torch.Tensor, window: int) -> torch.Tensor:  # noqa: D102
        lib = _require_library()
        b, h, w, e = query.shape
        term = torch.empty(b, h, w, window * window, dtype=torch.float32)
        rc = lib.train_t0(_ptr(query), _ptr(key), b, h, w, e, window, _ptr(term), _threads())
        _check_rc(rc, "guidance term (training)")
        ctx.save_for_backward(query, key)
        ctx.window = window
        return term

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, None]:  # noqa: D102
        lib = _require_library()
        query, key = ctx.saved_tensors
        grad = grad.to(torch.float32).contiguous()
        b, h, w, e = query.shape
        grad_query, grad_key = torch.empty_like(query), torch.empty_like(key)
        rc = lib.train_t0_backward(
            _ptr(query),
            _ptr(key),
            _ptr(grad),
            b,
            h,
            w,
            e,
            ctx.window,
            _ptr(grad_query),
            _ptr(grad_key),
            _threads(),
        )
        _check_rc(rc, "guidance term backward")
        return grad_query, grad_key, None


class _Attend(torch.autograd.Function):
    """One masked window-attention iteration: (refined, next_mask), each B x H x W."""

    @staticmethod
    def forward(  # noqa: D102
        ctx,
        term: torch.Tensor,
        alpha: torch.Tensor,
        beta: torch.Tensor,
        gamma: torch.Tensor,
        depth: torch.Tensor,
        mask: torch.Tensor,
        bias: torch.Tensor,
        window: int,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        lib = _require_library()
        b, h, w = depth.shape
        refined = torch.empty(b, h, w, dtype=torch.float32)
        next_mask = torch.empty(b, h, w, dtype=torch.float32)
        inputs = _attend_inputs(term, alpha, beta, gamma, depth, mask, bias)
        rc = lib.train_attend(*inputs, b, h, w, window, _ptr(refined), _ptr(next_mask), _threads())
        _check_rc(rc, "attention (training)")
        ctx.save_for_backward(term, alpha, beta, gamma, depth, mask, bias)
        ctx.window = window
        return refined, next_mask

    @staticmethod
    def backward(  # noqa: D102
        ctx, grad_refined: torch.Tensor, grad_mask: torch.Tensor
    ) -> tuple[torch.Tensor | None, ...]:
        lib = _require_library()
        term, alpha, beta, gamma, depth, mask, bias = ctx.saved_tensors
        p = ctx.window
        b, h, w = depth.shape
        nb = 2 * p - 1
        grad_refined = grad_refined.to(torch.float32).contiguous()
        grad_mask = grad_mask.to(torch.float32).contiguous()
        grad_term = torch.empty_like(term)
        grad_alpha, grad_beta = torch.empty_like(alpha), torch.empty_like(beta)
        grad_depth, grad_mask_in = torch.empty_like(depth), torch.empty_like(mask)
        bias_rows = torch.empty(b * h, nb, nb, dtype=torch.float32)
        gamma_rows = torch.empty(b * h, dtype=torch.float32)
        # the key-side partial rows, 3 x B x H x p x (W + lanes) (see the C source)
        work = torch.empty(3 * b * h * p * (w + lib.lanes), dtype=torch.float32)
        inputs = _attend_inputs(term, alpha, beta, gamma, depth, mask, bias)
        outputs = (grad_term, grad_alpha, grad_beta, grad_depth, grad_mask_in, bias_rows)
        rc = lib.train_attend_backward(
            *inputs,
            _ptr(grad_refined),
            _ptr(grad_mask),
            b,
            h,
            w,
            p,
            *(_ptr(t) for t in (*outputs, gamma_rows, work)),
            _threads(),
        )
        _check_rc(rc, "attention backward")
        grad_gamma = gamma_rows.double().sum().to(gamma.dtype)
        return (
            grad_term,
            grad_alpha,
            grad_beta,
            grad_gamma,
            grad_depth,
            grad_mask_in,
            bias_rows.sum(dim=0),
            None,
        )


def _f32(t: torch.Tensor, name: str) -> torch.Tensor:
    if t.device.type != "cpu":
        raise ValueError(f"native_grad attention runs on CPU; {name} is on {t.device}")
    return t.to(torch.float32).contiguous()


def prepare_native_grad(qk: AffineQK, window: int) -> AttendFn:
    """Precompute one layer's guidance terms; return a differentiable per-iteration attend.

    Args:
        qk: affine query/key features (CPU; computed in float32).
        window: odd window size p; H and W must be at least p.

    Returns:
        ``attend(depth, mask, rel_pos_bias) -> (refined, next_mask)``, B x 1 x H x W in the
        dtype of ``depth``; gradients flow to every input and to ``qk``.
    """
    query = _f32(qk.query_base.permute(0, 2, 3, 1), "query_base")  # B x H x W x E
    key = _f32(qk.key_base.permute(0, 2, 3, 1), "key_base")
    term = _GuidanceTerm.apply(query, key, window)  # T0, B x H x W x p^2
    query_depth = _f32(qk.query_depth, "query_depth")
    key_depth = _f32(qk.key_depth, "key_depth")
    alpha = (key * query_depth).sum(dim=-1).contiguous()  # u_q . k0, B x H x W
    beta = (query * key_depth).sum(dim=-1).contiguous()  # q0 . u_k
    gamma = torch.dot(query_depth, key_depth)

    def attend(
        depth: torch.Tensor, mask: torch.Tensor, rel_pos_bias: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        refined, next_mask = _Attend.apply(
            term,
            alpha,
            beta,
            gamma,
            _f32(depth[:, 0], "depth"),
            _f32(mask[:, 0], "mask"),
            _f32(rel_pos_bias, "rel_pos_bias"),
            window,
        )
        dtype = depth.dtype
        return refined.unsqueeze(1).to(dtype), next_mask.unsqueeze(1).to(dtype)

    return attend
