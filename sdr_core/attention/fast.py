"""Exact decomposed pixel-to-window attention (torch; differentiable; CPU or GPU).

Because q and k are affine in the depth (``q = q0 + d u_q``, ``k = (k0 + d u_k) m``, see
:class:`AffineQK`), the logit of query pixel p and window element t splits as::

    q(p) . k(p_t) = m_t * ( q0(p).k0(p_t)          # T0: guidance only, once per image
                            + d(p)   * u_q.k0(p_t)  # alpha(p_t)
                            + d(p_t) * q0(p).u_k    # beta(p)
                            + d(p) d(p_t) * u_q.u_k )  # gamma

T0 (B x p^2 x H x W), alpha, beta and gamma depend only on the guidance features, so they are
computed once per MSPN layer; each iteration then costs O(p^2) per pixel, independent of the
embedding dimension E. The result equals the reference up to float rounding.
"""

from __future__ import annotations

import torch
import torch.utils.checkpoint

from ._window import AffineQK, gather_windows, relative_bias_windows, window_indices
from .reference import AttendFn


def _window_row_term(
    query_base: torch.Tensor, key_base: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor
) -> torch.Tensor:
    """q0(p) . k0(p_t) for the p window elements of one window row: B x p x H x W."""
    key_rows = key_base[:, :, rows]  # B x E x H x W: image row of this window row
    key_windows = key_rows[:, :, :, cols]  # B x E x H x p x W
    return torch.einsum("behw,behkw->bkhw", query_base, key_windows)


def guidance_window_term(qk: AffineQK, window: int) -> torch.Tensor:
    """T0(p, t) = q0(p) . k0(p_t): the guidance-only part of every window logit.

    Computed one window row at a time, so the largest temporary is B x E x H x p x W rather
    than the B x E x p^2 x H x W a direct gather would need (3 GB at 228x304, E = 64). When
    gradients are needed each row is checkpointed, keeping training memory at one row.

    Args:
        qk: affine query/key features.
        window: odd window size p.

    Returns:
        B x p^2 x H x W.
    """
    _, _, height, width = qk.query_base.shape
    rows, cols = window_indices(height, width, window, qk.query_base.device)
    cols = cols.view(window, width)  # p x W
    needs_grad = torch.is_grad_enabled() and (
        qk.query_base.requires_grad or qk.key_base.requires_grad
    )
    terms = []
    for ky in range(window):
        row = rows[ky].view(height)
        if needs_grad:
            term = torch.utils.checkpoint.checkpoint(
                _window_row_term, qk.query_base, qk.key_base, row, cols, use_reentrant=False
            )
        else:
            term = _window_row_term(qk.query_base, qk.key_base, row, cols)
        terms.append(term)
    return torch.cat(terms, dim=1)  # B x p^2 x H x W, t = ky * p + kx


def window_attention_fast(
    qk: AffineQK, depth: torch.Tensor, mask: torch.Tensor, rel_pos_bias: torch.Tensor, window: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Same contract as ``window_attention_reference``, via the decomposition (one-shot)."""
    return prepare_fast(qk, window)(depth, mask, rel_pos_bias)


def prepare_fast(qk: AffineQK, window: int) -> AttendFn:
    """Precompute the guidance-only terms once; return the per-iteration attention.

    Args:
        qk: affine query/key features of one MSPN layer (guidance fixed for the layer).
        window: odd window size p.

    Returns:
        ``attend(depth, mask, rel_pos_bias) -> (refined, next_mask)``, all B x 1 x H x W.
    """
    _, _, height, width = qk.query_base.shape
    term = guidance_window_term(qk, window)  # T0: B x p^2 x H x W
    alpha = (qk.key_base * qk.query_depth.view(1, -1, 1, 1)).sum(dim=1, keepdim=True)
    beta = (qk.query_base * qk.key_depth.view(1, -1, 1, 1)).sum(dim=1)  # B x H x W
    gamma = torch.dot(qk.query_depth, qk.key_depth)
    alpha_windows = gather_windows(alpha, window)[:, 0]  # B x p^2 x H x W

    def attend(
        depth: torch.Tensor, mask: torch.Tensor, rel_pos_bias: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        windows = gather_windows(torch.cat([depth, mask], dim=1), window)
        depth_windows, mask_windows = windows[:, 0], windows[:, 1]  # B x p^2 x H x W
        bias = relative_bias_windows(rel_pos_bias, height, width)  # p^2 x H x W
        query_depth = depth  # B x 1 x H x W broadcasts over the window axis
        logits = (
            mask_windows
            * (
                term
                + query_depth * alpha_windows
                + depth_windows * beta.unsqueeze(1)
                + gamma * query_depth * depth_windows
            )
            + bias
        )  # eq. 8 before the softmax
        attention = torch.softmax(logits, dim=1)
        refined = (attention * depth_windows).sum(dim=1, keepdim=True)  # eq. 9
        next_mask = (attention * mask_windows).sum(dim=1, keepdim=True)  # eq. 11
        return refined, next_mask

    return attend
