"""Training losses of section 3.6: L1 + L2 (eq. 14, NYUv2) and scale-invariant log (eq. 15)."""

from __future__ import annotations

import torch

__all__ = ["l1_l2_loss", "silog_loss", "valid_mask"]


def valid_mask(gt: torch.Tensor) -> torch.Tensor:
    """Pixels with a usable ground truth: finite and > 0 (B x 1 x H x W bool)."""
    return torch.isfinite(gt) & (gt > 0)


def l1_l2_loss(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """Eq. 14: (1/|D|) sum over valid pixels of |d^ - d| + |d^ - d|^2.

    Args:
        pred: B x 1 x H x W predicted depth, metres.
        gt: B x 1 x H x W ground truth, metres; 0 / non-finite = invalid.

    Returns:
        Scalar loss; 0 (with a graph) when no pixel is valid.
    """
    valid = valid_mask(gt)
    diff = (pred - torch.where(valid, gt, pred)).abs()  # 0 at invalid pixels, keeps the graph
    count = valid.sum().clamp(min=1)
    return (diff + diff.square()).sum() / count


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
