"""Network building blocks shared by the guidance network and the bundled depth estimator."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["CNNEncoder", "LayerNorm2d", "NAFBlock", "ResidualStage", "conv_block"]


class LayerNorm2d(nn.Module):
    """LayerNorm over the channels of a B x C x H x W map (per pixel)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalise ``x`` (B x C x H x W) over C."""
        return self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class NAFBlock(nn.Module):
    """Nonlinear-activation-free block (Chen et al., NAFNet, ECCV 2022), as used in sec. 3.3.

    Two residual branches: LN -> 1x1 -> depthwise 3x3 -> SimpleGate -> simplified channel
    attention -> 1x1, then LN -> 1x1 -> SimpleGate -> 1x1; each scaled by a learned,
    zero-initialised per-channel factor so the block starts as the identity.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm1 = LayerNorm2d(channels)
        self.expand = nn.Conv2d(channels, 2 * channels, 1)
        self.depthwise = nn.Conv2d(2 * channels, 2 * channels, 3, padding=1, groups=2 * channels)
        self.channel_attention = nn.Conv2d(channels, channels, 1)
        self.project = nn.Conv2d(channels, channels, 1)
        self.norm2 = LayerNorm2d(channels)
        self.ffn_expand = nn.Conv2d(channels, 2 * channels, 1)
        self.ffn_project = nn.Conv2d(channels, channels, 1)
        self.beta = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.gamma = nn.Parameter(torch.zeros(1, channels, 1, 1))

    @staticmethod
    def _simple_gate(x: torch.Tensor) -> torch.Tensor:
        a, b = x.chunk(2, dim=1)
        return a * b

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """B x C x H x W -> B x C x H x W."""
        y = self._simple_gate(self.depthwise(self.expand(self.norm1(x))))
        y = y * self.channel_attention(F.adaptive_avg_pool2d(y, 1))
        x = x + self.beta * self.project(y)
        y = self.ffn_project(self._simple_gate(self.ffn_expand(self.norm2(x))))
        return x + self.gamma * y


def conv_block(in_dim: int, out_dim: int, stride: int = 1) -> nn.Sequential:
    """3x3 conv (no bias) -> BatchNorm -> ReLU."""
    return nn.Sequential(
        nn.Conv2d(in_dim, out_dim, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(out_dim),
        nn.ReLU(inplace=True),
    )


class ResidualStage(nn.Module):
    """Stride-2 conv then a residual 3x3 pair: one encoder stage of the built-in CNN."""

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.down = conv_block(in_dim, out_dim, stride=2)
        self.body = nn.Sequential(
            conv_block(out_dim, out_dim),
            nn.Conv2d(out_dim, out_dim, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """B x C_in x H x W -> B x C_out x ceil(H/2) x ceil(W/2)."""
        x = self.down(x)
        return F.relu(x + self.body(x))


class CNNEncoder(nn.Module):
    """Four stride-2 stages: features at H/2, H/4, H/8, H/16."""

    def __init__(self, in_dim: int, dims: tuple[int, ...]) -> None:
        super().__init__()
        self.stages = nn.ModuleList(
            ResidualStage(a, b) for a, b in zip((in_dim, *dims[:-1]), dims, strict=True)
        )
        self.dims = dims

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Features of every stage, finest first."""
        features = []
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        return features
