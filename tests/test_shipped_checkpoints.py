"""The shipped checkpoints: size budget, offline loading, a real refinement, the ablation."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sdr_core import load_pipeline
from sdr_core.checkpoints import read_metadata
from sdr_core.data.middlebury import load_middlebury_motorcycle
from sdr_core.evaluate import ABLATION_SUBDIR, FAITHFUL_SUBDIR
from sdr_core.metrics import compute_metrics
from sdr_core.pipeline import DEFAULT_CHECKPOINT_DIR
from sdr_core.sparse import random_points


@pytest.fixture(scope="module")
def pipe():
    return load_pipeline(device="cpu")


@pytest.fixture(scope="module")
def motorcycle():
    return load_middlebury_motorcycle(size=(114, 169))


def test_checkpoints_fit_the_size_budget():
    total = sum(p.stat().st_size for p in DEFAULT_CHECKPOINT_DIR.rglob("*.safetensors"))
    assert total <= 50 * 2**20


FAITHFUL = DEFAULT_CHECKPOINT_DIR / FAITHFUL_SUBDIR  # the paper's configuration (earlier release)


def test_shipped_pipeline_runs_the_selected_design(pipe):
    # Issue 21's design (model card): layer 1 propagates log(D / D0) and layer 2 depth in
    # metres (stage R10), from D0 aligned by one median scale, shrunk at few points (k = 1,
    # chosen on the validation split); the paper's second layer of 6 iterations.
    assert pipe.config.mspn.domain == "ratio-depth"
    assert pipe.config.mspn.init_alignment == "shrunk_median_scale"
    assert pipe.config.mspn.alignment_prior_points == 1.0
    assert pipe.schedule(228, 304, 10) == (28, 6)
    faithful = pipe.with_networks_from(FAITHFUL)
    assert faithful.config.mspn.domain == "depth"  # the paper's configuration, kept
    assert faithful.schedule(228, 304, 10) == (28, 28)  # with its eq. 13 second layer


def test_shipped_pipeline_harms_a_good_metric_d0_far_less_than_the_papers_configuration(
    pipe, motorcycle
):
    # The reason for issue 21's design: given a good metric D0 (simulated), the paper's
    # configuration trained on the bundled MDE makes it 2-3x worse at few points.
    from sdr_core.data.mde_errors import simulate_init_depth

    d0 = simulate_init_depth(motorcycle.depth, "metric", 0)
    faithful = pipe.with_networks_from(FAITHFUL)
    for n_points in (1, 5, 20):
        sparse = random_points(motorcycle.depth, n_points, seed=0)
        rmse = {
            name: compute_metrics(p.refine(motorcycle.rgb, sparse, d0).depth, motorcycle.depth)[
                "rmse"
            ]
            for name, p in (("default", pipe), ("faithful", faithful))
        }
        assert rmse["default"] < 0.8 * rmse["faithful"], (n_points, rmse)


def test_shipped_pipeline_refines_a_real_scene_better_than_its_d0(pipe, motorcycle):
    sparse = random_points(motorcycle.depth, 100, seed=0)
    result = pipe.refine(motorcycle.rgb, sparse)
    refined = compute_metrics(result.depth, motorcycle.depth)["rmse"]
    initial = compute_metrics(result.init_depth, motorcycle.depth)["rmse"]
    assert np.isfinite(result.depth).all()
    assert refined < 0.9 * initial


def test_shipped_mask_ablation_matches_the_last_stage_of_the_shipped_recipe():
    # Fig. 10d compares the designs on equal terms: the ablation's final stage must use the
    # shipped model's settings, with only the mask, the folders and the starting point (the
    # ablation's own stage 5, trained without the mask) differing.
    def train_config(folder):
        return json.loads(read_metadata(folder / "mspn.safetensors")["train_config"])

    shipped = train_config(FAITHFUL)  # the ablation belongs to the paper's configuration
    ablation = train_config(FAITHFUL / ABLATION_SUBDIR)
    differing = {k for k in shipped.keys() | ablation.keys() if shipped.get(k) != ablation.get(k)}
    assert differing == {"use_mask", "out_dir", "init_dir"}
    assert ablation["init_dir"].startswith("runs/nm_")  # scripts/train_no_mask_chain.sh


def test_shipped_mask_ablation_was_trained_without_the_mask(pipe, motorcycle):
    folder = FAITHFUL / ABLATION_SUBDIR
    train_config = json.loads(read_metadata(folder / "mspn.safetensors")["train_config"])
    assert train_config["use_mask"] is False
    ablation = pipe.with_networks_from(folder)
    assert ablation.mde is pipe.mde
    sparse = random_points(motorcycle.depth, 20, seed=1)
    result = ablation.refine(motorcycle.rgb, sparse, use_mask=False)
    assert np.isfinite(result.depth).all()
    np.testing.assert_array_equal(result.depth[sparse > 0], sparse[sparse > 0])
