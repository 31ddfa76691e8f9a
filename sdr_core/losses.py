"""Training losses of section 3.6: L1 + L2 (eq. 14, NYUv2) and scale-invariant log (eq. 15)."""

from __future__ import annotations

import torch

__all__ = ["depth_edge_weights", "l1_l2_loss", "mask_confidence_loss", "silog_loss", "valid_mask"]


def valid_mask(gt: torch.Tensor) -> torch.Tensor:
    """Pixels with a usable ground truth: finite and > 0 (B x 1 x H x W bool)."""
    return torch.isfinite(gt) & (gt > 0)


def depth_edge_weights(
    gt: torch.Tensor, extra: float, jump: float = 0.05, radius: int = 2
) -> torch.Tensor:
    """Per-pixel loss weights: 1, and ``1 + extra`` within ``radius`` px of a depth edge.

    An edge lies between two 4-neighbours whose valid ground-truth depths differ by more than
    ``jump`` in log depth (5 %: a step between surfaces, not a slanted plane's slope). Both
    pixels of such a pair are edge pixels; the band is their (2 radius + 1)^2 dilation. Where
    depth is refined the error concentrates there (an MDE's softened edges), and eq. 14
    averages over all pixels, so an edge band that is a few per cent of the image gets a few
    per cent of the gradient; the weights let training spend more of it where RMSE is made.

    Args:
        gt: B x 1 x H x W ground truth, metres; 0 / non-finite = invalid (never an edge).
        extra: the band's added weight, >= 0 (0 gives all ones).
        jump: the log-depth step that makes an edge.
        radius: the band's half-width in pixels.

    Returns:
        B x 1 x H x W float weights, no graph.
    """
    valid = valid_mask(gt)
    log_depth = torch.log(torch.where(valid, gt, torch.ones_like(gt)))
    edge = torch.zeros_like(valid)
    for dim in (2, 3):
        step = (log_depth.diff(dim=dim).abs() > jump) & valid.narrow(dim, 1, gt.shape[dim] - 1)
        step = step & valid.narrow(dim, 0, gt.shape[dim] - 1)
        edge.narrow(dim, 1, gt.shape[dim] - 1).logical_or_(step)  # the pair's far pixel
        edge.narrow(dim, 0, gt.shape[dim] - 1).logical_or_(step)  # and its near pixel
    band = torch.nn.functional.max_pool2d(
        edge.float(), kernel_size=2 * radius + 1, stride=1, padding=radius
    )
    return 1.0 + extra * band


def l1_l2_loss(
    pred: torch.Tensor, gt: torch.Tensor, weight: torch.Tensor | None = None
) -> torch.Tensor:
    """Eq. 14: (1/|D|) sum over valid pixels of |d^ - d| + |d^ - d|^2.

    Args:
        pred: B x 1 x H x W predicted depth, metres.
        gt: B x 1 x H x W ground truth, metres; 0 / non-finite = invalid.
        weight: optional B x 1 x H x W per-pixel weights (e.g. :func:`depth_edge_weights`);
            the sum is then weighted and divided by the valid pixels' total weight.

    Returns:
        Scalar loss; 0 (with a graph) when no pixel is valid.
    """
    valid = valid_mask(gt)
    diff = (pred - torch.where(valid, gt, pred)).abs()  # 0 at invalid pixels, keeps the graph
    if weight is None:
        return (diff + diff.square()).sum() / valid.sum().clamp(min=1)
    total = (weight * valid).sum().clamp(min=1e-12)
    return (weight * (diff + diff.square())).sum() / total


def silog_loss(
    pred: torch.Tensor, gt: torch.Tensor, alpha: float = 10.0, lam: float = 0.85
) -> torch.Tensor:
    """Eq. 15: alpha * sqrt(mean(e^2) - lam * mean(e)^2), e = log d^ - log d (per image).

    The paper writes the bracket without the square root's argument guard; a clamp at 1e-8
    keeps the gradient finite when the prediction is exact. Averaged over the batch.
    """
    valid = valid_mask(gt)
    safe_gt = torch.where(valid, gt, torch.ones_like(gt))
    error = torch.where(valid, torch.log(pred.clamp(min=1e-3)) - torch.log(safe_gt), 0.0)
    count = valid.flatten(1).sum(dim=1).clamp(min=1)
    mean = error.flatten(1).sum(dim=1) / count
    mean_sq = error.square().flatten(1).sum(dim=1) / count
    return (alpha * (mean_sq - lam * mean.square()).clamp(min=1e-8).sqrt()).mean()


def mask_confidence_loss(
    mask: torch.Tensor,
    refined: torch.Tensor,
    init: torch.Tensor,
    gt: torch.Tensor,
    sparse: torch.Tensor,
    eps: float = 1e-3,
) -> torch.Tensor:
    """Binary cross-entropy of a mask against where the refinement beats D0.

    Eq. 11 grows the mask by the same attention weights that move depth (eqs. 8-10), so a
    mask that may only be high where the refined depth is closer to the truth than D0 asks
    the attention to stop where a correction would do harm: at depth edges, across which a
    measurement says nothing. Not in the paper (it trains the mask through eq. 14 alone).

    Args:
        mask: B x 1 x H x W mask in [0, 1] (e.g. layer 1's last, eq. 11), with a graph.
        refined: B x 1 x H x W depth that mask belongs to, metres (no graph needed).
        init: B x 1 x H x W D0, metres, as the refinement saw it (aligned).
        gt: B x 1 x H x W ground truth, metres; 0 / non-finite = invalid.
        sparse: B x 1 x H x W measurements (> 0 where measured): left out, the mask is 1
            there by eq. 5 whatever it learns.
        eps: added inside the logarithms, log(m + eps) and log(1 - m + eps): bounded, and
            with a gradient at a mask of exactly 0 or 1 (a trained mask saturates there;
            clamping would stop its gradient).

    Returns:
        Scalar mean over valid, unmeasured pixels (0 with a graph when there is none). The
        target is 1 where |log refined - log gt| < |log D0 - log gt|, else 0 (a pixel the
        refinement left at D0 is not better: target 0).
    """
    valid = valid_mask(gt) & (sparse <= 0) & (refined > 0) & (init > 0)
    safe = torch.where(valid, gt, torch.ones_like(gt))
    refined_error = (torch.log(torch.where(valid, refined, safe)) - torch.log(safe)).abs()
    init_error = (torch.log(torch.where(valid, init, safe)) - torch.log(safe)).abs()
    target = (refined_error < init_error).to(mask.dtype)
    bce = -(target * torch.log(mask + eps) + (1.0 - target) * torch.log(1.0 - mask + eps))
    return torch.where(valid, bce, torch.zeros_like(bce)).sum() / valid.sum().clamp(min=1)
