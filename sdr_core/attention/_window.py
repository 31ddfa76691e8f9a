"""Window geometry shared by every attention backend.

The border rule follows the authors' NATTEN 0.14 neighbourhood attention: a pixel near the
image border does not see a zero-padded window; its p x p window shifts inward so that every
pixel attends to exactly p x p in-image pixels. The relative position bias is indexed by the
true offset between key and query, which therefore ranges over -(p-1) .. p-1 in each axis.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class AffineQK:
    """Query and key features written as affine functions of the depth (eq. 7).

    In the authors' code one 1x1 convolution maps ``[depth, LayerNorm(G)]`` to q and k, so for
    every pixel ``q = query_base + depth * query_depth`` and
    ``k = (key_base + depth * key_depth) * mask``. Keeping the two parts apart lets the fast
    backends compute the guidance-only part of ``q . k`` once per image.

    Attributes:
        query_base: B x E x H x W float; ``W_q,G . LN(G) + b_q`` (depth-free part of Q_n).
        key_base: B x E x H x W float; ``W_k,G . LN(G) + b_k`` (depth-free part of K_n).
        query_depth: E float; the 1x1-conv weights of the depth channel for q.
        key_depth: E float; the 1x1-conv weights of the depth channel for k.
    """

    query_base: torch.Tensor
    key_base: torch.Tensor
    query_depth: torch.Tensor
    key_depth: torch.Tensor

    def query(self, depth: torch.Tensor) -> torch.Tensor:
        """Q_n of eq. 7 for ``depth`` (B x 1 x H x W): B x E x H x W."""
        return self.query_base + depth * self.query_depth.view(1, -1, 1, 1)

    def key(self, depth: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """K_n of eq. 7, masked by M_n: B x E x H x W."""
        return (self.key_base + depth * self.key_depth.view(1, -1, 1, 1)) * mask


def check_qk(qk: AffineQK, window: int) -> None:
    """Shape checks every backend shares: odd window, matching bases, image >= window.

    Raises:
        ValueError: naming the first problem found.
    """
    if window < 1 or window % 2 == 0:
        raise ValueError(f"window must be a positive odd integer, got {window}")
    if qk.query_base.dim() != 4 or qk.query_base.shape != qk.key_base.shape:
        raise ValueError(
            "query_base and key_base must both be B x E x H x W, got "
            f"{tuple(qk.query_base.shape)} and {tuple(qk.key_base.shape)}"
        )
    _, e, h, w = qk.query_base.shape
    if qk.query_depth.shape != (e,) or qk.key_depth.shape != (e,):
        raise ValueError(f"query_depth and key_depth must have shape ({e},)")
    if h < window or w < window:
        raise ValueError(f"image of {h}x{w} pixels is smaller than the {window}x{window} window")


def check_maps(
    shape: tuple[int, int, int],
    window: int,
    depth: torch.Tensor,
    mask: torch.Tensor,
    rel_pos_bias: torch.Tensor | None = None,
) -> None:
    """Shape checks of one iteration's inputs, shared by the front door and the kernels.

    Args:
        shape: (B, H, W) of the layer's guidance.
        window: odd window size p.
        depth: must be B x 1 x H x W.
        mask: must be B x 1 x H x W.
        rel_pos_bias: must be (2p-1) x (2p-1); None skips the check.

    Raises:
        ValueError: naming the first input whose shape is wrong.
    """
    b, h, w = shape
    for name, t in (("depth", depth), ("mask", mask)):
        if t.shape != (b, 1, h, w):
            raise ValueError(f"{name} must be {b} x 1 x {h} x {w}, got {tuple(t.shape)}")
    span = 2 * window - 1
    if rel_pos_bias is not None and rel_pos_bias.shape != (span, span):
        raise ValueError(
            f"rel_pos_bias must be {span} x {span} for window {window}, "
            f"got {tuple(rel_pos_bias.shape)}"
        )


def window_starts(length: int, window: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """First in-image index of each position's window along one axis (NATTEN border rule).

    Args:
        length: image size along the axis (H or W); must be >= ``window``.
        window: odd window size p.
        device: where the index tensor lives.

    Returns:
        ``length`` int64 indices ``clamp(i - p // 2, 0, length - p)``.
    """
    positions = torch.arange(length, device=device)
    return (positions - window // 2).clamp(0, length - window)


def window_indices(
    height: int, width: int, window: int, device: torch.device | str = "cpu"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Row and column index grids of every pixel's window.

    Returns:
        rows: p x 1 x H x 1 int64, the image row of window row ``ky`` for query row ``i``.
        cols: 1 x p x 1 x W int64, the image column of window column ``kx`` for query column ``j``.
        Indexing ``x[..., rows, cols]`` broadcasts to p x p x H x W.
    """
    offsets = torch.arange(window, device=device)
    rows = window_starts(height, window, device)[None, :] + offsets[:, None]  # p x H
    cols = window_starts(width, window, device)[None, :] + offsets[:, None]  # p x W
    return rows.view(window, 1, height, 1), cols.view(1, window, 1, width)


def gather_windows(x: torch.Tensor, window: int) -> torch.Tensor:
    """Every pixel's p x p window of ``x``.

    Args:
        x: B x C x H x W.
        window: odd window size p.

    Returns:
        B x C x p^2 x H x W; entry ``t = ky * p + kx`` holds the window element at row
        ``ky``, column ``kx`` of the (border-shifted) window of each pixel.
    """
    b, c, h, w = x.shape
    rows, cols = window_indices(h, w, window, x.device)
    windows = x[:, :, rows, cols]  # B x C x p x p x H x W
    return windows.reshape(b, c, window * window, h, w)


def relative_bias_windows(rel_pos_bias: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """The relative position bias b of eq. 8, looked up for every pixel's window.

    Args:
        rel_pos_bias: (2p-1) x (2p-1) float, indexed by (key row - query row + p - 1,
            key column - query column + p - 1).
        height: H.
        width: W.

    Returns:
        p^2 x H x W bias per window element and query pixel.
    """
    window = (rel_pos_bias.shape[0] + 1) // 2
    rows, cols = window_indices(height, width, window, rel_pos_bias.device)
    dy = rows - torch.arange(height, device=rel_pos_bias.device).view(1, 1, height, 1)
    dx = cols - torch.arange(width, device=rel_pos_bias.device).view(1, 1, 1, width)
    bias = rel_pos_bias[dy + window - 1, dx + window - 1]  # p x p x H x W
    return bias.reshape(window * window, height, width)
