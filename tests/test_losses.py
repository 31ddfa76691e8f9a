"""Losses of section 3.6 and the edge-weighted variant of eq. 14, against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from sdr_core.losses import depth_edge_weights, l1_l2_loss, mask_confidence_loss


def test_l1_l2_loss_is_the_valid_mean_of_abs_plus_square():
    pred = torch.tensor([[[[1.5, 3.0, 7.0]]]])
    gt = torch.tensor([[[[1.0, 2.0, 0.0]]]])  # the third pixel has no ground truth
    # (0.5 + 0.25) + (1 + 1), over 2 valid pixels
    assert float(l1_l2_loss(pred, gt)) == pytest.approx(2.75 / 2)


def test_weighted_l1_l2_divides_by_the_valid_pixels_weight():
    pred = torch.tensor([[[[1.5, 3.0, 7.0]]]])
    gt = torch.tensor([[[[1.0, 2.0, 0.0]]]])
    weight = torch.tensor([[[[1.0, 3.0, 100.0]]]])  # the invalid pixel's weight must not count
    assert float(l1_l2_loss(pred, gt, weight)) == pytest.approx((1 * 0.75 + 3 * 2.0) / 4)


def test_edge_weights_mark_a_band_around_a_depth_step():
    gt = torch.ones(1, 1, 5, 10)
    gt[..., 6:] = 2.0  # a step between columns 5 and 6
    weights = depth_edge_weights(gt, extra=3.0, radius=1)[0, 0]
    expected = torch.ones(10)
    expected[4:8] = 4.0  # the pair (5, 6) dilated by one pixel
    torch.testing.assert_close(weights, expected.expand(5, 10))


def test_edge_weights_ignore_slopes_and_missing_depth():
    ramp = torch.exp(0.03 * torch.arange(12.0)).expand(1, 1, 6, 12).clone()  # 3 % per pixel
    torch.testing.assert_close(depth_edge_weights(ramp, extra=5.0), torch.ones_like(ramp))
    holed = torch.ones(1, 1, 6, 12)
    holed[..., 3, 5] = 0.0  # a missing pixel is no edge with its neighbours
    torch.testing.assert_close(depth_edge_weights(holed, extra=5.0), torch.ones_like(holed))
    vertical = torch.ones(1, 1, 8, 4)
    vertical[..., 4:, :] = 1.2  # a horizontal edge, found by the row differences
    band = depth_edge_weights(vertical, extra=1.0, radius=0)[0, 0, :, 0]
    torch.testing.assert_close(band, torch.tensor([1.0, 1, 1, 2, 2, 1, 1, 1]))


def test_mask_confidence_is_the_cross_entropy_against_where_the_refinement_beats_d0():
    row = lambda *values: torch.tensor(values).view(1, 1, 1, -1)  # noqa: E731
    gt = row(2.0, 2.0, 2.0, 2.0, 0.0)
    init = row(1.0, 1.0, 1.0, 1.0, 1.0)  # log error log 2 everywhere
    refined = row(2.1, 1.0, 0.4, 2.0, 2.0)  # better, D0 itself, worse, measured, no truth
    sparse = row(0.0, 0.0, 0.0, 2.0, 0.0)
    mask = row(
        0.8,
        0.3,
        0.5,
        0.1,
        0.9,
    ).requires_grad_()
    loss = mask_confidence_loss(mask, refined, init, gt, sparse)
    # targets 1, 0, 0 on the first three pixels; the measured one and the one without
    # ground truth are left out
    expected = -(math.log(0.801) + math.log(0.701) + math.log(0.501)) / 3  # eps 1e-3
    assert float(loss.detach()) == pytest.approx(expected, rel=1e-6)
    loss.backward()
    assert mask.grad[0, 0, 0, 3] == 0
    assert mask.grad[0, 0, 0, 4] == 0
    assert mask.grad[0, 0, 0, 0] < 0 < mask.grad[0, 0, 0, 1]  # up where better, down where not


def test_mask_confidence_without_a_valid_pixel_is_zero_with_a_graph():
    mask = torch.full((1, 1, 2, 2), 0.5, requires_grad=True)
    ones = torch.ones(1, 1, 2, 2)
    loss = mask_confidence_loss(mask, ones, ones, torch.zeros(1, 1, 2, 2), torch.zeros_like(ones))
    assert float(loss) == 0.0
    loss.backward()
    assert torch.equal(mask.grad, torch.zeros_like(mask))


def test_mask_confidence_moves_a_saturated_mask():
    # A trained layer-1 mask is exactly 1 at its last iteration; where the refinement is
    # worse than D0 the loss must still pull it down.
    ones = torch.ones(1, 1, 1, 1)
    mask = torch.ones(1, 1, 1, 1, requires_grad=True)
    loss = mask_confidence_loss(mask, ones * 3.0, ones * 2.1, ones * 2.0, ones * 0.0)
    loss.backward()
    assert float(loss.detach()) == pytest.approx(-math.log(1e-3))
    assert float(mask.grad) == pytest.approx(1e3)
