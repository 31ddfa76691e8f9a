"""Reference pixel-to-window masked attention: the oracle every other backend is tested against.

Written to be read beside the paper, never optimised. For each of the p x p window
positions it forms the full E-dimensional dot product q . k (eq. 8), then applies one softmax
over the window and the weighted sums of eqs. 9 and 11. Near the border the window shifts
inward, as in NATTEN, so every pixel attends to p x p in-image pixels and no padded value
ever contributes depth or mask.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ._window import AffineQK, window_starts

AttendFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def window_attention_reference(
    qk: AffineQK,
    depth: torch.Tensor,
    mask: torch.Tensor,
    rel_pos_bias: torch.Tensor,
    window: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Masked pixel-to-window attention, eqs. 7-9 and 11, by an explicit loop.

    Args:
        qk: affine query/key features (B x E x H x W bases, E depth weights).
        depth: B x 1 x H x W, metres; the re-imposed depth D~_n of eq. 6.
        mask: B x 1 x H x W in [0, 1]; the propagation mask M_n.
        rel_pos_bias: (2p-1) x (2p-1) learned relative position bias b.
        window: odd window size p.

    Returns:
        refined: B x 1 x H x W, R_n of eq. 9 (attention-weighted depth of the window).
        next_mask: B x 1 x H x W, m_{n+1} of eq. 11 (attention-weighted mask of the window).
    """
    _, _, height, width = depth.shape
    query = qk.query(depth)  # Q_n, eq. 7
    key = qk.key(depth, mask)  # K_n = f_K([D~_n, G]) * M_n, eq. 7
    row_start = window_starts(height, window, depth.device)
    col_start = window_starts(width, window, depth.device)
    row_of = torch.arange(height, device=depth.device)
    col_of = torch.arange(width, device=depth.device)

    logits, window_depths, window_masks = [], [], []
    for ky in range(window):
        rows = row_start + ky  # H: image row of this window row, per query row
        for kx in range(window):
            cols = col_start + kx  # W
            key_t = key[:, :, rows][:, :, :, cols]  # B x E x H x W
            bias_t = rel_pos_bias[
                (rows - row_of + window - 1)[:, None], (cols - col_of + window - 1)[None, :]
            ]  # H x W
            logits.append((query * key_t).sum(dim=1) + bias_t)  # q^T W_K + b, eq. 8
            window_depths.append(depth[:, 0][:, rows][:, :, cols])
            window_masks.append(mask[:, 0][:, rows][:, :, cols])

    attention = torch.softmax(torch.stack(logits, dim=1), dim=1)  # B x p^2 x H x W, eq. 8
    refined = (attention * torch.stack(window_depths, dim=1)).sum(dim=1, keepdim=True)  # eq. 9
    next_mask = (attention * torch.stack(window_masks, dim=1)).sum(dim=1, keepdim=True)  # eq. 11
    return refined, next_mask


def prepare_reference(qk: AffineQK, window: int) -> AttendFn:
    """Bind ``qk`` once per layer; the reference recomputes everything every iteration."""

    def attend(
        depth: torch.Tensor, mask: torch.Tensor, rel_pos_bias: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return window_attention_reference(qk, depth, mask, rel_pos_bias, window)

    return attend
