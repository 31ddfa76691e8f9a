"""Guidance network G = Theta(I, S, D0), eq. 3 and section 3.3 of the paper.

A U-Net-style encoder-decoder. High-frequency image features (3x3 conv minus 1x1 conv of the
first image features) are merged with features of the sparse depth S (with its validity
mask) and of the initial depth D0, encoded to H/16 x W/16, and decoded by five blocks of
``3x3 transposed conv -> LayerNorm -> ReLU -> NAF block`` with encoder skips concatenated into
the last four. The output G has ``out_dim`` (64) channels at full resolution.

The paper's encoder is PVT-Base (ImageNet-pretrained). No pretrained weights can be
downloaded here, so the default encoder is a compact CNN trained from scratch, sized so one
228 x 304 forward pass fits the CPU budget; ``encoder="timm:<name>"`` builds any timm
backbone with ``pretrained=False`` when timm is installed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import CNNEncoder, LayerNorm2d, NAFBlock, conv_block

__all__ = ["GuidanceConfig", "GuidanceNet"]

# ImageNet statistics: the image is normalised with them before the first convolution.
_IMAGE_MEAN = (0.485, 0.456, 0.406)
_IMAGE_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class GuidanceConfig:
    """Hyper-parameters of the guidance network."""

    out_dim: int = 64  # C, channels of G (must equal MSPNConfig.guidance_dim)
    stem_dim: int = 16  # channels of each input branch at full resolution
    encoder: str = "cnn"  # "cnn" (built-in) or "timm:<model name>" (optional dependency)
    encoder_dims: tuple[int, ...] = field(default=(32, 64, 96, 128))  # H/2, /4, /8, /16
    decoder_dims: tuple[int, ...] = field(default=(128, 96, 64, 32, 32))  # five blocks
    depth_scale_m: float = 10.0  # depths are divided by this before entering the network
    # x2 upsampling of the decoder blocks: "transposed" is the paper's 3x3 stride-2
    # transposed conv, whose uneven kernel overlap leaves a stride-2 checkerboard in G (and
    # dots along the mask front); "resize" is a 3x3 conv then bilinear x2 (a departure, at
    # the same cost).
    upsample: Literal["transposed", "resize"] = "transposed"

    def __post_init__(self) -> None:
        if len(self.encoder_dims) != 4:
            raise ValueError(f"encoder_dims must have 4 stages, got {self.encoder_dims}")
        if len(self.decoder_dims) != 5:
            raise ValueError(f"decoder_dims must have 5 blocks, got {self.decoder_dims}")
        if self.out_dim < 1 or self.stem_dim < 1:
            raise ValueError("out_dim and stem_dim must be >= 1")
        if not (self.encoder == "cnn" or self.encoder.startswith("timm:")):
            raise ValueError(f"encoder must be 'cnn' or 'timm:<name>', got {self.encoder!r}")
        if self.depth_scale_m <= 0:
            raise ValueError(f"depth_scale_m must be > 0, got {self.depth_scale_m}")
        if self.upsample not in ("transposed", "resize"):
            raise ValueError(f"upsample must be 'transposed' or 'resize', got {self.upsample!r}")


class _TimmEncoder(nn.Module):
    """Any timm backbone with ``features_only`` at strides 2-16 (optional dependency)."""

    def __init__(self, in_dim: int, name: str, dims: tuple[int, ...]) -> None:
        super().__init__()
        try:
            import timm
        except ImportError as error:
            raise ValueError(
                f"encoder 'timm:{name}' needs the optional package timm (pip install timm)"
            ) from error
        self.backbone = timm.create_model(
            name, pretrained=False, features_only=True, in_chans=in_dim, out_indices=(0, 1, 2, 3)
        )
        native = self.backbone.feature_info.channels()
        self.adapt = nn.ModuleList(nn.Conv2d(c, d, 1) for c, d in zip(native, dims, strict=True))
        self.dims = dims

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = self.backbone(x)
        size = x.shape[-2:]
        out = []
        for level, (feature, adapt) in enumerate(zip(features, self.adapt, strict=True), 1):
            target = (-(-size[0] // 2**level), -(-size[1] // 2**level))  # ceil division
            out.append(adapt(F.interpolate(feature, size=target, mode="bilinear")))
        return out


class _ConvResize(nn.Module):
    """A 3x3 conv at the input's resolution, then a bilinear resize to the target size.

    x2 upsampling without the checkerboard of a stride-2 transposed conv (whose kernel
    overlaps output pixels of different parity a different number of times), at the same
    cost: the conv runs on the input grid, and bilinear interpolation treats every output
    pixel alike.
    """

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_dim, out_dim, 3, padding=1)

    def forward(self, x: torch.Tensor, output_size: tuple[int, int]) -> torch.Tensor:
        x = self.conv(x)
        return F.interpolate(x, size=tuple(output_size), mode="bilinear", align_corners=False)


class _DecoderBlock(nn.Module):
    """x2 upsampling -> LayerNorm -> ReLU -> NAF block (sec. 3.3).

    The upsampling is the paper's 3x3 transposed conv or, as a departure, conv + resize.
    """

    def __init__(self, in_dim: int, out_dim: int, upsample: str = "transposed") -> None:
        super().__init__()
        if upsample == "resize":
            self.up: nn.Module = _ConvResize(in_dim, out_dim)
        else:
            self.up = nn.ConvTranspose2d(in_dim, out_dim, 3, stride=2, padding=1)
        self.norm = LayerNorm2d(out_dim)
        self.naf = NAFBlock(out_dim)

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        x = self.up(x, output_size=size)
        return self.naf(F.relu(self.norm(x)))


class GuidanceNet(nn.Module):
    """Theta of eq. 3: (image, sparse depth, initial depth) -> guidance feature G."""

    def __init__(self, config: GuidanceConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or GuidanceConfig()
        stem = config.stem_dim
        self.image_features = conv_block(3, stem)
        self.high_freq_3x3 = nn.Conv2d(stem, stem, 3, padding=1)
        self.high_freq_1x1 = nn.Conv2d(stem, stem, 1)
        self.sparse_features = conv_block(2, stem)  # [S, M0]
        self.depth_features = conv_block(1, stem)  # D0
        merged = 3 * stem
        if config.encoder == "cnn":
            self.encoder: nn.Module = CNNEncoder(merged, config.encoder_dims)
        else:
            self.encoder = _TimmEncoder(merged, config.encoder[5:], config.encoder_dims)
        enc, dec = config.encoder_dims, config.decoder_dims
        # Block 1 upsamples the H/16 bottleneck to H/8; blocks 2-4 take a skip (H/8, H/4,
        # H/2) and upsample; block 5 takes the full-resolution stem as its skip and keeps the
        # resolution (stride-1 transposed conv is a plain 3x3 conv).
        up = config.upsample
        self.blocks = nn.ModuleList(
            [
                _DecoderBlock(enc[3], dec[0], up),
                _DecoderBlock(dec[0] + enc[2], dec[1], up),
                _DecoderBlock(dec[1] + enc[1], dec[2], up),
                _DecoderBlock(dec[2] + enc[0], dec[3], up),
            ]
        )
        self.final = nn.Sequential(
            nn.ConvTranspose2d(dec[3] + merged, dec[4], 3, stride=1, padding=1),
            LayerNorm2d(dec[4]),
            nn.ReLU(inplace=True),
            NAFBlock(dec[4]),
        )
        self.head = nn.Conv2d(dec[4], config.out_dim, 1)
        self.register_buffer("image_mean", torch.tensor(_IMAGE_MEAN).view(1, 3, 1, 1), False)
        self.register_buffer("image_std", torch.tensor(_IMAGE_STD).view(1, 3, 1, 1), False)

    def forward(
        self, image: torch.Tensor, sparse: torch.Tensor, init_depth: torch.Tensor
    ) -> torch.Tensor:
        """Compute G.

        Args:
            image: B x 3 x H x W float in [0, 1] (RGB).
            sparse: B x 1 x H x W, metres; 0 = no measurement (S).
            init_depth: B x 1 x H x W, metres (D0).

        Returns:
            B x out_dim x H x W guidance feature G.
        """
        scale = self.config.depth_scale_m
        image = (image - self.image_mean) / self.image_std
        features = self.image_features(image)
        high_freq = self.high_freq_3x3(features) - self.high_freq_1x1(features)  # sec. 3.3
        measured = (sparse > 0).to(sparse.dtype)
        stem = torch.cat(
            [
                high_freq,
                self.sparse_features(torch.cat([sparse / scale, measured], dim=1)),
                self.depth_features(init_depth / scale),
            ],
            dim=1,
        )
        skips = self.encoder(stem)  # H/2, H/4, H/8, H/16
        x = self.blocks[0](skips[3], skips[2].shape[-2:])
        for block, skip, target in zip(
            self.blocks[1:], skips[2::-1], [skips[1], skips[0], stem], strict=True
        ):
            x = block(torch.cat([x, skip], dim=1), target.shape[-2:])
        x = self.final(torch.cat([x, stem], dim=1))
        return self.head(x)
