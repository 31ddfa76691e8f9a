"""Triton kernels of the ``triton`` attention backend (imports ``triton`` at the top).

Never import this module directly: :mod:`sdr_core.attention.triton` imports it lazily, inside
functions, only once it has checked that the ``triton`` package is importable, so that
``sdr_core`` keeps working on machines without Triton.

Two kernels, both one program per (block of ``BLOCK_X`` pixels of one image row, row, batch
item):

- ``_guidance_term_kernel`` (once per MSPN layer): T0(p, t) = q0(p) . k0(p_t) for the p^2
  window elements t of every pixel p, in the B x p^2 x H x W layout of
  :func:`sdr_core.attention.fast.guidance_window_term`, plus alpha = u_q . k0 and
  beta = q0 . u_k (see :mod:`sdr_core.attention.fast`).
- ``_attend_kernel`` (once per MSPN iteration): the logits of eq. 8 from T0 + alpha + beta +
  gamma, the masked keys of eq. 7 and the relative position bias, an online softmax over the
  window (one rescale per window row), and the weighted sums of eqs. 9 and 11. With
  ``FUSE_UPDATE`` it also applies eq. 6 to every depth it reads and writes eq. 10 with the
  measured pixels reset to S (what ``MSPNLayer.step`` does around ``attend``), so one MSPN
  iteration is one kernel launch.

Window tiles are ``KX x BLOCK_X``: the ``KX`` (next power of two >= p) columns of one window
row for ``BLOCK_X`` adjacent query pixels; the x axis is the contiguous one, so T0 loads are
coalesced. The border rule is NATTEN's: a window starts at ``clamp(i - p // 2, 0, n - p)``
along each axis, and the bias is indexed by the true key-query offset. Accumulation is
float32 whatever the storage dtype of T0.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl


@triton.jit
def _guidance_term_kernel(
    query_base_ptr,  # B x E x H x W (q0)
    key_base_ptr,  # B x E x H x W (k0)
    query_depth_ptr,  # E (u_q)
    key_depth_ptr,  # E (u_k)
    term_ptr,  # out: B x P^2 x H x W (T0), any float dtype
    alpha_ptr,  # out: B x H x W float32, u_q . k0
    beta_ptr,  # out: B x H x W float32, q0 . u_k
    embed,
    height,
    width,
    P: tl.constexpr,  # window size p (odd)
    KX: tl.constexpr,  # next power of two >= P
    BLOCK_X: tl.constexpr,
):
    pid_x = tl.program_id(0)
    y = tl.program_id(1)
    b = tl.program_id(2).to(tl.int64)
    plane = height * width
    xs = pid_x * BLOCK_X + tl.arange(0, BLOCK_X)  # query columns
    x_ok = xs < width
    kx = tl.arange(0, KX)
    tile_ok = (kx < P)[:, None] & x_ok[None, :]
    row0 = tl.minimum(tl.maximum(y - P // 2, 0), height - P)  # first window row (NATTEN)
    cols = tl.minimum(tl.maximum(xs - P // 2, 0), width - P)[None, :] + kx[:, None]
    feature0 = b * embed * plane  # offset of (b, e = 0, 0, 0)
    pixel = y * width + xs

    # alpha and beta at this row's pixels: one pass over the embedding.
    alpha = tl.zeros([BLOCK_X], dtype=tl.float32)
    beta = tl.zeros([BLOCK_X], dtype=tl.float32)
    for e in range(embed):
        at = feature0 + e * plane + pixel
        q = tl.load(query_base_ptr + at, mask=x_ok, other=0.0).to(tl.float32)
        k = tl.load(key_base_ptr + at, mask=x_ok, other=0.0).to(tl.float32)
        alpha += tl.load(query_depth_ptr + e).to(tl.float32) * k
        beta += tl.load(key_depth_ptr + e).to(tl.float32) * q
    tl.store(alpha_ptr + b * plane + pixel, alpha, mask=x_ok)
    tl.store(beta_ptr + b * plane + pixel, beta, mask=x_ok)

    # T0 one window row at a time: KX x BLOCK_X dot products over the embedding.
    for ky in range(P):
        key_pixel = (row0 + ky) * width + cols  # KX x BLOCK_X
        acc = tl.zeros([KX, BLOCK_X], dtype=tl.float32)
        for e in range(embed):
            channel = feature0 + e * plane
            q = tl.load(query_base_ptr + channel + pixel, mask=x_ok, other=0.0).to(tl.float32)
            k = tl.load(key_base_ptr + channel + key_pixel, mask=tile_ok, other=0.0)
            acc += q[None, :] * k.to(tl.float32)
        t = ky * P + kx  # window element index t = ky * p + kx
        out = ((b * (P * P) + t[:, None]) * height + y) * width + xs[None, :]
        tl.store(term_ptr + out, acc.to(term_ptr.dtype.element_ty), mask=tile_ok)


@triton.jit
def _attend_kernel(
    term_ptr,  # B x P^2 x H x W (T0)
    alpha_ptr,  # B x H x W, u_q . k0
    beta_ptr,  # B x H x W, q0 . u_k
    gamma_ptr,  # 1, u_q . u_k
    depth_ptr,  # B x H x W (D~_n, or D_n when FUSE_UPDATE)
    mask_ptr,  # B x H x W (M_n)
    sparse_ptr,  # B x H x W (S; read only when FUSE_UPDATE)
    bias_ptr,  # (2P - 1) x (2P - 1)
    out_depth_ptr,  # out: R_n (eq. 9), or D_{n+1} (eq. 10) when FUSE_UPDATE
    out_mask_ptr,  # out: m_{n+1} (eq. 11), measured pixels keep M_n when FUSE_UPDATE
    height,
    width,
    P: tl.constexpr,
    KX: tl.constexpr,
    BLOCK_X: tl.constexpr,
    FUSE_UPDATE: tl.constexpr,
):
    pid_x = tl.program_id(0)
    y = tl.program_id(1)
    b = tl.program_id(2).to(tl.int64)
    plane = height * width
    image0 = b * plane
    xs = pid_x * BLOCK_X + tl.arange(0, BLOCK_X)
    x_ok = xs < width
    kx = tl.arange(0, KX)
    k_ok = kx < P
    tile_ok = k_ok[:, None] & x_ok[None, :]
    row0 = tl.minimum(tl.maximum(y - P // 2, 0), height - P)
    cols = tl.minimum(tl.maximum(xs - P // 2, 0), width - P)[None, :] + kx[:, None]
    bias_col = cols - xs[None, :] + (P - 1)  # true column offset + P - 1
    query = image0 + y * width + xs
    d_query = tl.load(depth_ptr + query, mask=x_ok, other=0.0).to(tl.float32)
    if FUSE_UPDATE:
        s_query = tl.load(sparse_ptr + query, mask=x_ok, other=0.0).to(tl.float32)
        d_query = tl.where(s_query > 0, s_query, d_query)  # eq. 6
    beta = tl.load(beta_ptr + query, mask=x_ok, other=0.0).to(tl.float32)
    gamma = tl.load(gamma_ptr).to(tl.float32)
    d_q = d_query[None, :]
    running_max = tl.full([BLOCK_X], float("-inf"), dtype=tl.float32)
    total = tl.zeros([BLOCK_X], dtype=tl.float32)
    acc_depth = tl.zeros([BLOCK_X], dtype=tl.float32)
    acc_mask = tl.zeros([BLOCK_X], dtype=tl.float32)
    for ky in range(P):
        row = row0 + ky
        key = image0 + row * width + cols  # KX x BLOCK_X
        d_key = tl.load(depth_ptr + key, mask=tile_ok, other=0.0).to(tl.float32)
        if FUSE_UPDATE:
            s_key = tl.load(sparse_ptr + key, mask=tile_ok, other=0.0).to(tl.float32)
            d_key = tl.where(s_key > 0, s_key, d_key)  # eq. 6 for the window's depths
        m_key = tl.load(mask_ptr + key, mask=tile_ok, other=0.0).to(tl.float32)
        a_key = tl.load(alpha_ptr + key, mask=tile_ok, other=0.0).to(tl.float32)
        t = ky * P + kx
        term_at = ((b * (P * P) + t[:, None]) * height + y) * width + xs[None, :]
        t0 = tl.load(term_ptr + term_at, mask=tile_ok, other=0.0).to(tl.float32)
        bias_at = (row - y + (P - 1)) * (2 * P - 1) + bias_col
        bias = tl.load(bias_ptr + bias_at, mask=tile_ok, other=0.0).to(tl.float32)
        # eq. 8: q . k with k masked by M_n (eq. 7), decomposed as in fast.py, plus the bias
        logit = m_key * (t0 + d_q * a_key + d_key * beta[None, :] + gamma * d_q * d_key) + bias
        # Padding columns (kx >= P) get -inf; padding pixels (x >= W) keep finite logits so
        # that no lane ever computes -inf - (-inf).
        logit = tl.where(k_ok[:, None], logit, float("-inf"))
        new_max = tl.maximum(running_max, tl.max(logit, axis=0))
        rescale = tl.exp(running_max - new_max)  # 0 on the first window row
        weight = tl.exp(logit - new_max[None, :])
        total = total * rescale + tl.sum(weight, axis=0)
        acc_depth = acc_depth * rescale + tl.sum(weight * d_key, axis=0)
        acc_mask = acc_mask * rescale + tl.sum(weight * m_key, axis=0)
        running_max = new_max
    refined = acc_depth / total  # R_n, eq. 9
    grown_mask = acc_mask / total  # m_{n+1}, eq. 11
    if FUSE_UPDATE:
        m_query = tl.load(mask_ptr + query, mask=x_ok, other=0.0).to(tl.float32)
        next_depth = (1 - m_query) * d_query + m_query * refined  # eq. 10
        measured = s_query > 0
        refined = tl.where(measured, s_query, next_depth)  # measured pixels keep S ...
        grown_mask = tl.where(measured, m_query, grown_mask)  # ... and their mask value
    tl.store(out_depth_ptr + query, refined.to(out_depth_ptr.dtype.element_ty), mask=x_ok)
    tl.store(out_mask_ptr + query, grown_mask.to(out_mask_ptr.dtype.element_ty), mask=x_ok)


# True when TRITON_INTERPRET=1 was set before this module was imported: the kernels then run
# on CPU tensors through Triton's numpy interpreter (tests only; slow).
INTERPRETED = type(_attend_kernel).__name__ == "InterpretedFunction"


def _block_x(width: int) -> int:
    """Query pixels per program: 64, or fewer for narrow images (a power of two >= 16)."""
    return max(16, min(64, triton.next_power_of_2(width)))


def _grid(batch: int, height: int, width: int) -> tuple[int, int, int]:
    return (triton.cdiv(width, _block_x(width)), height, batch)


def _launch_options(window: int, width: int) -> dict[str, int]:
    """Compile-time constants and launch options both kernels take."""
    return {
        "P": window,
        "KX": triton.next_power_of_2(window),
        "BLOCK_X": _block_x(width),
        "num_warps": 4,
    }


def launch_guidance_term(
    query_base: torch.Tensor,
    key_base: torch.Tensor,
    query_depth: torch.Tensor,
    key_depth: torch.Tensor,
    term: torch.Tensor,
    alpha: torch.Tensor,
    beta: torch.Tensor,
    window: int,
) -> None:
    """Fill ``term`` (B x p^2 x H x W), ``alpha`` and ``beta`` (B x H x W float32) in place.

    All tensors contiguous on one device; the caller has checked shapes.
    """
    batch, embed, height, width = query_base.shape
    _guidance_term_kernel[_grid(batch, height, width)](
        query_base,
        key_base,
        query_depth,
        key_depth,
        term,
        alpha,
        beta,
        embed,
        height,
        width,
        **_launch_options(window, width),
    )


def launch_attend(
    term: torch.Tensor,
    alpha: torch.Tensor,
    beta: torch.Tensor,
    gamma: torch.Tensor,
    depth: torch.Tensor,
    mask: torch.Tensor,
    sparse: torch.Tensor | None,
    rel_pos_bias: torch.Tensor,
    out_depth: torch.Tensor,
    out_mask: torch.Tensor,
    window: int,
) -> None:
    """One MSPN iteration's attention into ``out_depth`` and ``out_mask`` (B x 1 x H x W).

    With ``sparse`` given, the kernel also applies eqs. 6 and 10 and the measured-pixel
    reset (``measured = sparse > 0``); without it, it returns (R_n, m_{n+1}) as ``attend``.
    """
    batch, _, height, width = depth.shape
    _attend_kernel[_grid(batch, height, width)](
        term,
        alpha,
        beta,
        gamma,
        depth,
        mask,
        sparse if sparse is not None else depth,  # never read without FUSE_UPDATE
        rel_pos_bias,
        out_depth,
        out_mask,
        height,
        width,
        FUSE_UPDATE=sparse is not None,
        **_launch_options(window, width),
    )
