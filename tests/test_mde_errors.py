"""Simulated initial depths: the presets of sdr_core.data.mde_errors."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from sdr_core.data.mde_errors import (
    INIT_DEPTH_PRESETS,
    MDEErrorConfig,
    simulate_init_depth,
    simulate_mde_errors,
)
from sdr_core.data.synthetic import SceneConfig, generate_scene
from sdr_core.metrics import compute_metrics


@pytest.fixture(scope="module")
def rooms() -> list[np.ndarray]:
    config = SceneConfig(height=114, width=152)
    return [generate_scene(seed, config).depth for seed in (9_500_000, 9_500_001, 9_500_002)]


def test_harsh_preset_is_the_first_release_default():
    # The "simulated" evaluation of earlier releases must reproduce bit for bit.
    assert INIT_DEPTH_PRESETS["harsh"] == MDEErrorConfig()
    depth = torch.linspace(1.0, 6.0, 40 * 48).view(1, 1, 40, 48)
    a = simulate_mde_errors(depth, torch.Generator().manual_seed(5))
    b = simulate_mde_errors(depth, torch.Generator().manual_seed(5), INIT_DEPTH_PRESETS["harsh"])
    torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_preset_qualities_are_ordered(rooms):
    # Metric D0 is what a good metric MDE gives on NYU-size rooms (about 0.2-0.4 m RMSE),
    # far better than the harsh one; the relative one is off by its unknown scale.
    rmse = {
        quality: np.mean(
            [
                compute_metrics(simulate_init_depth(gt, quality, s), gt)["rmse"]
                for s in range(4)
                for gt in rooms
            ]  # fmt: skip
        )
        for quality in INIT_DEPTH_PRESETS
    }
    assert 0.1 < rmse["metric"] < 0.4, rmse
    assert rmse["harsh"] > 1.8 * rmse["metric"], rmse
    assert rmse["relative"] > 2.0 * rmse["metric"], rmse


def test_metric_scale_stays_within_ten_percent(rooms):
    no_structure = dataclasses.replace(
        INIT_DEPTH_PRESETS["metric"], shift_m=0.0, warp_strength=0.0, tilt_strength=0.0,
        min_blur_px=0.0, max_blur_px=0.0,
    )  # fmt: skip
    gt = torch.from_numpy(rooms[0])[None, None]
    ratios = [
        float((simulate_mde_errors(gt, torch.Generator().manual_seed(s), no_structure) / gt)
              .median())
        for s in range(30)
    ]  # fmt: skip
    assert min(ratios) >= 0.9 - 1e-6
    assert max(ratios) <= 1.1 + 1e-6
    assert max(ratios) - min(ratios) > 0.1  # the scale does vary


def test_simulate_init_depth_is_dense_seeded_and_checked():
    gt = np.full((30, 40), 3.0, np.float32)
    gt[:, :5] = 0.0
    gt[3, 7] = np.nan
    a = simulate_init_depth(gt, "metric", 1)
    assert a.shape == gt.shape
    assert a.dtype == np.float32
    assert np.isfinite(a).all()
    assert (a > 0).all()
    np.testing.assert_array_equal(a, simulate_init_depth(gt, "metric", 1))
    assert not np.array_equal(a, simulate_init_depth(gt, "metric", 2))
    with pytest.raises(ValueError, match="unknown initial-depth quality"):
        simulate_init_depth(gt, "oracle", 0)
    with pytest.raises(ValueError, match="no valid pixel"):
        simulate_init_depth(np.zeros((4, 4), np.float32), "metric", 0)
    with pytest.raises(ValueError, match="H x W"):
        simulate_init_depth(np.ones((4, 4, 3), np.float32), "metric", 0)


@pytest.mark.parametrize(
    ("field", "value"),
    [("scale_range", (1.2, 1.1)), ("min_blur_px", 7.0), ("tilt_strength", -0.1),
     ("region_probability", 1.5), ("warp_grid", 1)],
)  # fmt: skip
def test_error_config_rejects_bad_values(field, value):
    with pytest.raises(ValueError, match=field):
        MDEErrorConfig(**{field: value})
