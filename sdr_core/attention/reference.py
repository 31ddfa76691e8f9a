"""Reference pixel-to-window masked attention: the oracle every other backend is tested against.

Written to be read beside the paper, never optimised. For each of the p x p window
positions it forms the full E-dimensional dot product q . k (eq. 8), then applies one softmax
over the window and the weighted sums of eqs. 9 and 11. Near the border the window shifts
inward, as in NATTEN, so every pixel attends to p x p in-image pixels and no padded value
ever contributes depth or mask. :func:`attend_windows_reference` also serves the teaching
view: the attention of one query pixel, with every window weight.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from ._window import AffineQK, window_starts

AttendFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


@dataclass(frozen=True)
class WindowAttention:
    """The attention of a grid of query pixels over their windows (eqs. 8, 9, 11).

    Window element ``t = ky * p + kx`` is row ``ky``, column ``kx`` of the (border-shifted)
    window of each query pixel; h x w is the grid of query pixels.

    Attributes:
        weights: B x p^2 x h x w, the softmax attention a_t of eq. 8 (sums to 1 over t).
        depth: B x p^2 x h x w, metres; the window's depths D~_n.
        mask: B x p^2 x h x w in [0, 1]; the window's mask values M_n.
        refined: B x 1 x h x w, metres; R_n of eq. 9.
        next_mask: B x 1 x h x w; m_{n+1} of eq. 11.
    """

    weights: torch.Tensor
    depth: torch.Tensor
    mask: torch.Tensor
    refined: torch.Tensor
    next_mask: torch.Tensor


def attend_windows_reference(
    qk: AffineQK,
    depth: torch.Tensor,
    mask: torch.Tensor,
    rel_pos_bias: torch.Tensor,
    window: int,
    query_rows: torch.Tensor,
    query_cols: torch.Tensor,
) -> WindowAttention:
    """Masked pixel-to-window attention of the query pixels ``query_rows x query_cols``.

    Args:
        qk: affine query/key features (B x E x H x W bases, E depth weights).
        depth: B x 1 x H x W, metres; the re-imposed depth D~_n of eq. 6.
        mask: B x 1 x H x W in [0, 1]; the propagation mask M_n.
        rel_pos_bias: (2p-1) x (2p-1) learned relative position bias b.
        window: odd window size p.
        query_rows: h int64 image rows of the query pixels (all H rows for a whole map).
        query_cols: w int64 image columns of the query pixels.

    Returns:
        The :class:`WindowAttention` of the h x w query pixels.
    """
    _, _, height, width = depth.shape
    query = qk.query(depth)[:, :, query_rows][:, :, :, query_cols]  # Q_n, eq. 7: B x E x h x w
    key = qk.key(depth, mask)  # K_n = f_K([D~_n, G]) * M_n, eq. 7
    row_start = window_starts(height, window, depth.device)[query_rows]
    col_start = window_starts(width, window, depth.device)[query_cols]

    logits, window_depths, window_masks = [], [], []
    for ky in range(window):
        rows = row_start + ky  # h: image row of this window row, per query row
        for kx in range(window):
            cols = col_start + kx  # w
            key_t = key[:, :, rows][:, :, :, cols]  # B x E x h x w
            bias_t = rel_pos_bias[
                (rows - query_rows + window - 1)[:, None], (cols - query_cols + window - 1)[None, :]
            ]  # h x w
            logits.append((query * key_t).sum(dim=1) + bias_t)  # q^T W_K + b, eq. 8
            window_depths.append(depth[:, 0][:, rows][:, :, cols])
            window_masks.append(mask[:, 0][:, rows][:, :, cols])

    attention = torch.softmax(torch.stack(logits, dim=1), dim=1)  # B x p^2 x h x w, eq. 8
    depths = torch.stack(window_depths, dim=1)
    masks = torch.stack(window_masks, dim=1)
    refined = (attention * depths).sum(dim=1, keepdim=True)  # eq. 9
    next_mask = (attention * masks).sum(dim=1, keepdim=True)  # eq. 11
    return WindowAttention(attention, depths, masks, refined, next_mask)


def window_attention_reference(
    qk: AffineQK, depth: torch.Tensor, mask: torch.Tensor, rel_pos_bias: torch.Tensor, window: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Masked pixel-to-window attention, eqs. 7-9 and 11, by an explicit loop.

    The arguments are :func:`attend_windows_reference`'s, every pixel a query.

    Returns:
        refined: B x 1 x H x W, R_n of eq. 9 (attention-weighted depth of the window).
        next_mask: B x 1 x H x W, m_{n+1} of eq. 11 (attention-weighted mask of the window).
    """
    _, _, height, width = depth.shape
    every_row = torch.arange(height, device=depth.device)
    every_col = torch.arange(width, device=depth.device)
    attended = attend_windows_reference(qk, depth, mask, rel_pos_bias, window, every_row, every_col)
    return attended.refined, attended.next_mask


def prepare_reference(qk: AffineQK, window: int) -> AttendFn:
    """Bind ``qk`` once per layer; the reference recomputes everything every iteration."""

    def attend(
        depth: torch.Tensor, mask: torch.Tensor, rel_pos_bias: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return window_attention_reference(qk, depth, mask, rel_pos_bias, window)

    return attend
