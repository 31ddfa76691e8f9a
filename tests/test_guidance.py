"""Guidance network (eq. 3): shapes, and the decoder's upsampling without a checkerboard."""

from __future__ import annotations

import pytest
import torch

from sdr_core.guidance import GuidanceConfig, GuidanceNet

SMALL = dict(out_dim=8, stem_dim=4, encoder_dims=(8, 8, 8, 8), decoder_dims=(8,) * 5)


def _parity_spread(upsample: str) -> float:
    """How much G's 2 x 2 pixel-parity classes differ on a constant input (interior only).

    A constant image and depth make every encoder feature constant away from the border, so
    any difference between the four parity classes of G comes from the decoder's x2
    upsampling: a stride-2 3x3 transposed conv gives pixels of different parity different
    numbers of kernel taps.
    """
    torch.manual_seed(0)
    net = GuidanceNet(GuidanceConfig(upsample=upsample, **SMALL)).eval()
    for module in net.modules():  # the NAF blocks start as the identity; wake them up
        if hasattr(module, "beta"):
            torch.nn.init.normal_(module.beta, std=0.5)
            torch.nn.init.normal_(module.gamma, std=0.5)
    size = 96
    with torch.no_grad():
        g = net(torch.full((1, 3, size, size), 0.5), torch.zeros(1, 1, size, size),
                torch.full((1, 1, size, size), 3.0))[0]  # fmt: skip
    interior = g[:, 32:64, 32:64]
    means = torch.stack([interior[:, i::2, j::2].mean(dim=(1, 2)) for i in (0, 1) for j in (0, 1)])
    return float((means.max(dim=0).values - means.min(dim=0).values).max() / g.std())


def test_resize_upsampling_has_no_checkerboard_and_transposed_has_one():
    assert _parity_spread("transposed") > 0.05  # measured: 0.90
    assert _parity_spread("resize") < 1e-3  # measured: 6e-5 (float32 rounding)


@pytest.mark.parametrize("upsample", ["transposed", "resize"])
def test_output_shape_for_odd_sizes(upsample):
    net = GuidanceNet(GuidanceConfig(upsample=upsample, **SMALL))
    g = net(torch.rand(2, 3, 57, 75), torch.zeros(2, 1, 57, 75), torch.ones(2, 1, 57, 75))
    assert g.shape == (2, 8, 57, 75)


def test_config_rejects_unknown_upsampling():
    with pytest.raises(ValueError, match="upsample"):
        GuidanceConfig(upsample="pixelshuffle")
