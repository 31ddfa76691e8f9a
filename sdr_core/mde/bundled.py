"""The bundled monocular depth estimator: a compact U-Net trained on procedural scenes.

It is trained by this project from scratch on its own synthetic indoor scenes (no download is
possible here), so it is weak on real photographs: treat its output as a rough D0 that the
MSPN refinement corrects from the sparse measurements.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..blocks import CNNEncoder, conv_block
from ..validation import as_rgb_image

__all__ = ["BundledDepthEstimator", "MonoDepthConfig", "MonoDepthNet"]

_IMAGE_MEAN = (0.485, 0.456, 0.406)
_IMAGE_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class MonoDepthConfig:
    """Hyper-parameters of the bundled depth network."""

    encoder_dims: tuple[int, ...] = field(default=(32, 64, 128, 192))  # H/2 .. H/16
    decoder_dims: tuple[int, ...] = field(default=(128, 64, 48, 32))  # H/8 .. H
    min_depth_m: float = 0.3  # output range: min + (max - min) * sigmoid
    max_depth_m: float = 10.0
    # Resize the image so its long side has this many pixels before the network, and the
    # depth back to the image's size after it; None runs at the image's own resolution.
    # A fixed working size keeps the whole view and the apparent size of objects (the cue
    # to metric depth) the same at any input resolution, and trains on whole views cheaply.
    working_long_side: int | None = None
    # Add image-level features (global average pool of the bottleneck, two 1x1 convs) to
    # the bottleneck: how large a room is shows in the whole image, beyond any receptive
    # field. The second conv starts at zero, so the branch starts as the identity.
    global_context: bool = False

    def __post_init__(self) -> None:
        if len(self.encoder_dims) != 4 or len(self.decoder_dims) != 4:
            raise ValueError("encoder_dims and decoder_dims must each have 4 entries")
        if self.working_long_side is not None and self.working_long_side < 32:
            raise ValueError(f"working_long_side must be >= 32, got {self.working_long_side}")
        if not 0 < self.min_depth_m < self.max_depth_m:
            raise ValueError(
                f"need 0 < min_depth_m < max_depth_m, got {self.min_depth_m}, {self.max_depth_m}"
            )


class MonoDepthNet(nn.Module):
    """Image (B x 3 x H x W in [0, 1]) -> depth (B x 1 x H x W, metres)."""

    def __init__(self, config: MonoDepthConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or MonoDepthConfig()
        enc, dec = config.encoder_dims, config.decoder_dims
        self.stem = conv_block(3, 16)
        self.encoder = CNNEncoder(16, enc)
        skips = (enc[2], enc[1], enc[0], 16)
        ins = (enc[3], *dec[:-1])
        self.decoder = nn.ModuleList(
            nn.Sequential(conv_block(i + s, o), conv_block(o, o))
            for i, s, o in zip(ins, skips, dec, strict=True)
        )
        self.head = nn.Conv2d(dec[-1], 1, 3, padding=1)
        self.context: nn.Module | None = None
        if config.global_context:
            self.context = nn.Sequential(
                nn.AdaptiveAvgPool2d(1),
                nn.Conv2d(enc[3], enc[3], 1),
                nn.ReLU(inplace=True),
                nn.Conv2d(enc[3], enc[3], 1),
            )
            nn.init.zeros_(self.context[-1].weight)
            nn.init.zeros_(self.context[-1].bias)
        self.register_buffer("image_mean", torch.tensor(_IMAGE_MEAN).view(1, 3, 1, 1), False)
        self.register_buffer("image_std", torch.tensor(_IMAGE_STD).view(1, 3, 1, 1), False)

    def _working_size(self, height: int, width: int) -> tuple[int, int] | None:
        """(H, W) the network runs at, or None for the input's own size."""
        long_side = self.config.working_long_side
        if long_side is None:
            return None
        factor = long_side / max(height, width)
        return max(16, round(height * factor)), max(16, round(width * factor))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """Predict metric depth for ``image`` (B x 3 x H x W float in [0, 1]).

        Returns:
            B x 1 x H x W, metres, in [min_depth_m, max_depth_m], at the input's size.
        """
        size = image.shape[-2:]
        working = self._working_size(*size)
        if working is not None and working != tuple(size):
            image = F.interpolate(image, size=working, mode="bilinear", antialias=True)
        depth = self._predict(image)
        if depth.shape[-2:] != size:
            depth = F.interpolate(depth, size=tuple(size), mode="bilinear", align_corners=False)
        return depth

    def _predict(self, image: torch.Tensor) -> torch.Tensor:
        """Depth at the image's own size (the network proper)."""
        stem = self.stem((image - self.image_mean) / self.image_std)
        features = self.encoder(stem)
        x = features[3]
        if self.context is not None:
            x = x + self.context(x)  # image-level features, broadcast over the bottleneck
        for block, skip in zip(
            self.decoder, [features[2], features[1], features[0], stem], strict=True
        ):
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = block(torch.cat([x, skip], dim=1))
        span = self.config.max_depth_m - self.config.min_depth_m
        return self.config.min_depth_m + span * torch.sigmoid(self.head(x))


class BundledDepthEstimator:
    """:class:`DepthEstimator` wrapper around a trained :class:`MonoDepthNet`."""

    name = "bundled (synthetic-trained)"

    def __init__(self, net: MonoDepthNet, device: torch.device | str = "cpu") -> None:
        self.net = net.to(device).eval()
        self.device = torch.device(device)

    def estimate(self, image: np.ndarray) -> np.ndarray:
        """H x W x 3 uint8 RGB -> H x W float32 metres."""
        image = as_rgb_image(image)
        tensor = torch.from_numpy(image).to(self.device).permute(2, 0, 1)[None].float() / 255
        with torch.inference_mode():
            depth = self.net(tensor)
        return depth[0, 0].float().cpu().numpy()
