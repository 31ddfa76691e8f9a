"""Pre-filling D0 from the sparse depths (sdr_core.prefill) and the pipeline path through it."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from helpers import TINY

from sdr_core import baselines, build_untrained_pipeline
from sdr_core.prefill import align_init_depth
from sdr_core.sparse import random_points

H, W = 32, 40


def _maps(n_points: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:H, 0:W]
    gt = (2.0 + 0.04 * rows + 0.03 * cols).astype(np.float32)
    gt[8:20, 10:25] -= 0.7
    init = (1.2 * gt + 0.3 + 0.05 * rng.standard_normal((H, W))).astype(np.float32)
    return gt, init, random_points(gt, n_points, seed=seed)


@pytest.mark.parametrize(
    ("mode", "baseline"),
    [
        ("median_scale", baselines.median_scale),
        ("shrunk_median_scale", baselines.shrunk_median_scale),  # the default k on both sides
        ("least_squares", baselines.least_squares_scale_shift),
        ("residual_idw", baselines.residual_interpolation),
    ],
)
def test_alignment_is_the_baseline_per_sample(mode, baseline):
    maps = [_maps(n, seed) for n, seed in ((1, 0), (30, 1), (200, 2))]
    init = torch.stack([torch.from_numpy(m[1])[None] for m in maps])
    sparse = torch.stack([torch.from_numpy(m[2])[None] for m in maps])
    out = align_init_depth(init, sparse, mode)
    assert out.shape == init.shape
    assert out.dtype == init.dtype
    for i, (_, d0, s) in enumerate(maps):
        np.testing.assert_array_equal(out[i, 0].numpy(), baseline(d0, s))


def test_alignment_corrects_a_scaled_d0_and_none_keeps_it():
    gt, init, sparse = _maps(100)
    d0, s = torch.from_numpy(init)[None, None], torch.from_numpy(sparse)[None, None]
    assert align_init_depth(d0, s, "none") is d0
    before = float((d0[0, 0] - torch.from_numpy(gt)).abs().mean())
    for mode in ("least_squares", "residual_idw"):
        after = float((align_init_depth(d0, s, mode)[0, 0] - torch.from_numpy(gt)).abs().mean())
        assert after < 0.2 * before, (mode, before, after)  # measured: 0.92 m -> 0.033 m


def test_median_scale_is_the_median_ratio_and_robust_to_one_outlier():
    d0 = np.full((4, 5), 2.0, dtype=np.float32)
    d0[0, 0] = 4.0
    sparse = np.zeros_like(d0)
    sparse[0, 0], sparse[1, 1], sparse[2, 2] = 4.4, 2.2, 9.0  # ratios 1.1, 1.1, 4.5
    out = baselines.median_scale(d0, sparse)
    np.testing.assert_allclose(out, 1.1 * d0, rtol=1e-6)
    np.testing.assert_array_equal(baselines.median_scale(d0, np.zeros_like(d0)), d0)


def test_shrunk_median_scale_trusts_few_points_in_part():
    """Hand-computed: ratio 1.5 everywhere measured, D0 = 2 m, k = 4."""
    d0 = np.full((4, 5), 2.0, dtype=np.float32)
    one = np.zeros_like(d0)
    one[1, 1] = 3.0
    np.testing.assert_allclose(
        baselines.shrunk_median_scale(d0, one, 4.0), 2.0 * 1.5**0.2, rtol=1e-6
    )
    four = np.zeros_like(d0)
    four[0, :4] = 3.0
    np.testing.assert_allclose(
        baselines.shrunk_median_scale(d0, four, 4.0), 2.0 * 1.5**0.5, rtol=1e-6
    )
    # k = 0 is the median scale; no measurement keeps D0
    _, init, sparse = _maps(7)
    np.testing.assert_array_equal(
        baselines.shrunk_median_scale(init, sparse, 0.0), baselines.median_scale(init, sparse)
    )
    np.testing.assert_array_equal(baselines.shrunk_median_scale(d0, np.zeros_like(d0)), d0)
    for bad in (-1.0, float("nan")):
        with pytest.raises(ValueError, match="prior_points"):
            baselines.shrunk_median_scale(d0, one, bad)


def test_alignment_passes_the_prior_points_through():
    _, init, sparse = _maps(3)
    d0, s = torch.from_numpy(init)[None, None], torch.from_numpy(sparse)[None, None]
    out = align_init_depth(d0, s, "shrunk_median_scale", prior_points=1.0)
    np.testing.assert_array_equal(
        out[0, 0].numpy(), baselines.shrunk_median_scale(init, sparse, 1.0)
    )
    assert not np.array_equal(out[0, 0].numpy(), baselines.shrunk_median_scale(init, sparse, 4.0))


def test_alignment_without_measurements_keeps_d0():
    _, init, _ = _maps(10)
    d0 = torch.from_numpy(init)[None, None]
    out = align_init_depth(d0, torch.zeros_like(d0), "residual_idw")
    torch.testing.assert_close(out, d0)


def test_alignment_rejects_bad_arguments():
    d0 = torch.ones(1, 1, 8, 8)
    with pytest.raises(ValueError, match="init alignment"):
        align_init_depth(d0, d0, "median")
    with pytest.raises(ValueError, match="B x 1 x H x W"):
        align_init_depth(d0, torch.ones(1, 1, 8, 9), "least_squares")


def test_pipeline_refines_the_aligned_d0():
    # A pipeline configured to pre-fill equals the same weights fed the baseline's map.
    gt, init, sparse = _maps(60)
    image = np.random.default_rng(3).integers(0, 256, (H, W, 3), dtype=np.uint8)
    plain = build_untrained_pipeline(TINY, device="cpu", seed=0)
    aligned = plain.with_mspn_config(init_alignment="residual_idw")
    assert aligned.config.mspn.init_alignment == "residual_idw"
    ours = aligned.refine(image, sparse, init_depth=init)
    prefilled = baselines.residual_interpolation(init, sparse)
    expected = plain.refine(image, sparse, init_depth=prefilled)
    np.testing.assert_allclose(ours.depth, expected.depth, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(ours.init_depth, init)  # the caller's D0 is reported as is
    unaligned = plain.refine(image, sparse, init_depth=init)
    assert np.abs(unaligned.depth - ours.depth).max() > 0.1


def test_mspn_config_validates_the_alignment():
    with pytest.raises(ValueError, match="init_alignment"):
        dataclasses.replace(TINY.mspn, init_alignment="nearest")
    with pytest.raises(ValueError, match="alignment_prior_points"):
        dataclasses.replace(TINY.mspn, alignment_prior_points=-2.0)


def test_pipeline_shrunk_alignment_with_no_prior_is_the_median_scale():
    gt, init, sparse = _maps(1)
    image = np.random.default_rng(4).integers(0, 256, (H, W, 3), dtype=np.uint8)
    plain = build_untrained_pipeline(TINY, device="cpu", seed=0)
    median = plain.with_mspn_config(init_alignment="median_scale").refine(
        image, sparse, init_depth=init
    )
    shrunk = plain.with_mspn_config(init_alignment="shrunk_median_scale")
    same = shrunk.with_mspn_config(alignment_prior_points=0.0).refine(
        image, sparse, init_depth=init
    )
    np.testing.assert_array_equal(same.depth, median.depth)
    one_point = shrunk.refine(image, sparse, init_depth=init)  # k = 1: half of the log scale
    assert np.abs(one_point.depth - median.depth).max() > 1e-3
