"""sdr_core.d0_sources: one registry of D0 sources, and every front end's D0 is its builder's.

The studio, evaluate, train and refine each make D0 through the registry; these tests pin
that each path gives exactly (bit for bit) what the source's builder gives, and that the
builders give what the paths gave before the registry (the simulation formulas written out).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import TINY, TINY_MDE
from PIL import Image

from sdr_core import build_untrained_pipeline
from sdr_core.d0_sources import (
    ALIASES,
    D0_SOURCES,
    SCENE_SOURCES,
    SIMULATED_SOURCES,
    D0Source,
    d0_source,
    with_aliases,
)
from sdr_core.data import io
from sdr_core.data.mde_errors import INIT_DEPTH_PRESETS, simulate_init_depth, simulate_mde_errors
from sdr_core.data.synthetic import SceneConfig, generate_scene
from sdr_core.mde.from_file import StaticDepthEstimator, fill_missing

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def pipe():
    return build_untrained_pipeline(TINY, device="cpu", seed=0)


@pytest.fixture(scope="module")
def scene():
    return generate_scene(5, SceneConfig(height=60, width=80))


@pytest.fixture
def files(tmp_path, scene):
    """An image, its ground truth with a hole, and a user's D0 with holes and a NaN."""
    Image.fromarray(scene.rgb).save(tmp_path / "image.png")
    gt = scene.depth.copy()
    gt[:5, :7] = 0
    io.write_depth_png(tmp_path / "depth.png", gt, units="mm")
    own = (scene.depth * 1.1).astype(np.float32)
    own[10:14, 20:30] = 0
    own[0, 0] = np.nan
    np.save(tmp_path / "own.npy", own)
    return tmp_path


class FakeEstimator:
    name = "Depth Anything V2"

    def estimate(self, image: np.ndarray) -> np.ndarray:
        return (2.5 + image[..., 0] / 255).astype(np.float32)


# ----------------------------------------------------------------------------- the registry
def test_each_source_has_one_name_and_each_preset_one_source():
    assert list(D0_SOURCES) == ["mde", "metric", "harsh", "relative", "depth_anything", "uploaded"]
    assert all(name == source.name for name, source in D0_SOURCES.items())
    every_name = [*D0_SOURCES, *ALIASES]
    assert len(set(every_name)) == len(every_name)  # no alias shadows a name
    labels = [source.label for source in D0_SOURCES.values()]
    assert len(set(labels)) == len(labels)
    simulated = {D0_SOURCES[name].preset: name for name in SIMULATED_SOURCES}
    assert simulated == {preset: preset for preset in INIT_DEPTH_PRESETS}  # same names
    assert SCENE_SOURCES == ("mde", "metric", "harsh", "relative")
    assert [n for n, s in D0_SOURCES.items() if s.needs_gt] == list(SIMULATED_SOURCES)
    assert dict(ALIASES) == {"simulated": "harsh"}
    with pytest.raises(TypeError):
        D0_SOURCES["x"] = D0_SOURCES["mde"]  # frozen
    with pytest.raises(ValueError, match="preset"):
        D0Source("odd", "odd", "odd", "simulated")


def test_a_name_or_alias_finds_its_source_and_anything_else_is_refused():
    assert d0_source("simulated") is d0_source("harsh") is D0_SOURCES["harsh"]
    assert d0_source("metric", SCENE_SOURCES) is D0_SOURCES["metric"]
    with pytest.raises(ValueError, match="init source must be one of"):
        d0_source("oracle")
    with pytest.raises(ValueError, match="'uploaded'"):
        d0_source("uploaded", SCENE_SOURCES)
    assert with_aliases(SCENE_SOURCES) == (*SCENE_SOURCES, "simulated")


def test_the_builders_give_the_estimate_the_simulation_and_the_filled_file(scene):
    rgb, gt = scene.rgb, scene.depth
    estimated = np.full(gt.shape, 3.0, np.float32)
    assert D0_SOURCES["mde"].build(rgb, estimate=lambda image: estimated) is estimated
    for name in SIMULATED_SOURCES:
        built = D0_SOURCES[name].build(rgb, gt, seed=7)
        np.testing.assert_array_equal(built, simulate_init_depth(gt, name, 7))
        # what train computed on its dense synthetic ground truth before the registry
        before = simulate_mde_errors(
            torch.from_numpy(gt)[None, None],
            torch.Generator().manual_seed(7),
            INIT_DEPTH_PRESETS[name],
        )[0, 0].numpy()
        np.testing.assert_array_equal(built, before)
        assert built.dtype == np.float32
    own = np.where(np.arange(gt.size).reshape(gt.shape) % 7 == 0, 0, gt * 2)
    own = io.resize_depth_nearest(own, (120, 160))  # a file at twice the image's size
    built = D0_SOURCES["uploaded"].build(rgb, depth=own)
    before = StaticDepthEstimator(io.resize_depth_nearest(own, gt.shape)).depth
    np.testing.assert_array_equal(built, before)  # what the studio made before
    assert built.shape == gt.shape
    assert (built > 0).all()
    for name, kwargs in (("mde", {}), ("metric", {}), ("uploaded", {"gt": gt})):
        with pytest.raises(ValueError, match=name):
            D0_SOURCES[name].build(rgb, **kwargs)


def test_missing_values_are_filled_with_the_median():
    depth = np.array([[0.0, 2.0], [np.nan, 4.0]], np.float32)
    np.testing.assert_array_equal(fill_missing(depth), [[3.0, 2.0], [3.0, 4.0]])
    assert fill_missing(depth).dtype == np.float32
    with pytest.raises(ValueError, match="no valid"):
        fill_missing(np.zeros((2, 2)))
    np.testing.assert_array_equal(StaticDepthEstimator(depth).depth, fill_missing(depth))


# ----------------------------------------------------------------------------- the views
def test_every_front_end_lists_the_registrys_names_and_labels():
    from sdr_core.eval_report import INIT_LABELS
    from sdr_core.evaluate import INIT_SOURCES
    from sdr_core.train import INIT_KINDS
    from studio import scene as studio_scene

    assert INIT_SOURCES == INIT_KINDS == SCENE_SOURCES
    assert INIT_LABELS["simulated"] == INIT_LABELS["harsh"] == D0_SOURCES["harsh"].description
    # The studio's choices are the labels; a page or API client may send them, so they stay.
    assert studio_scene.INIT_BUNDLED == D0_SOURCES["mde"].label == "bundled MDE"
    assert studio_scene.INIT_UPLOADED == D0_SOURCES["uploaded"].label == "uploaded initial depth"
    assert D0_SOURCES["depth_anything"].label == studio_scene.INIT_DEPTH_ANYTHING
    assert dict(studio_scene.INIT_SIMULATED) == {
        "good metric MDE (simulated from ground truth)": "metric",
        "poor MDE (simulated from ground truth)": "harsh",
    }


# ----------------------------------------------------------------------------- each path's D0
def test_the_studios_d0_is_the_builders(pipe, files):
    from studio.scene import SIMULATION_SEED, load_scene

    image, depth = files / "image.png", files / "depth.png"
    bundled = load_scene(pipe, image, depth, long_side=64)
    expected = D0_SOURCES["mde"].build(bundled.image, estimate=pipe.estimate_depth)
    np.testing.assert_array_equal(bundled.init_depth, expected)
    for name in ("metric", "harsh", "simulated"):
        simulated = load_scene(pipe, image, depth, long_side=64, simulated_quality=name)
        source = d0_source(name)
        expected = source.build(gt=simulated.gt, seed=SIMULATION_SEED)
        np.testing.assert_array_equal(simulated.init_depth, expected)
        assert simulated.init_source == source.label
    own = load_scene(pipe, image, depth, long_side=64, init_depth_path=files / "own.npy")
    expected = D0_SOURCES["uploaded"].build(own.image, depth=io.read_depth(files / "own.npy").depth)
    np.testing.assert_array_equal(own.init_depth, expected)
    assert own.init_depth.shape == own.shape
    assert (own.init_depth > 0).all()
    estimator = FakeEstimator()
    other = load_scene(pipe, image, None, long_side=64, estimator=estimator)
    np.testing.assert_array_equal(other.init_depth, estimator.estimate(other.image))


def test_evaluates_d0_is_the_builders_with_the_scene_mixed_seed(pipe):
    from sdr_core.evaluate import _sampling_seed, heldout_scenes, initial_depth

    scene = heldout_scenes(1, size=(48, 64))[0]
    for name in with_aliases(SCENE_SOURCES):
        source = d0_source(name)
        seed = _sampling_seed(3, scene.name, "init", 0)
        expected = source.build(scene.rgb, scene.depth, seed=seed, estimate=pipe.estimate_depth)
        np.testing.assert_array_equal(initial_depth(pipe, scene, name, seed=3), expected)


def test_trains_d0_is_the_builders_for_every_kind():
    import sdr_core.train as train_module
    from sdr_core.mde.bundled import MonoDepthNet

    torch.manual_seed(0)
    mde = MonoDepthNet(TINY_MDE).eval()
    scenes = [generate_scene(seed, SceneConfig(height=48, width=64)) for seed in (1, 2)]
    image = torch.from_numpy(np.stack([s.rgb for s in scenes])).permute(0, 3, 1, 2).float() / 255
    gt = torch.from_numpy(np.stack([s.depth for s in scenes]))[:, None]
    kinds, seeds = ["metric", "relative"], [11, 12]
    batch = train_module._initial_depths(mde, image, gt, kinds, seeds)
    for i, (kind, seed) in enumerate(zip(kinds, seeds, strict=True)):
        expected = D0_SOURCES[kind].build(gt=scenes[i].depth, seed=seed)
        np.testing.assert_array_equal(batch[i, 0].numpy(), expected)
    no_mde = train_module._initial_depths(None, image, gt, ["mde", "mde"], [5, 6])
    for i, seed in enumerate((5, 6)):  # no MDE: the fallback, harsh
        expected = D0_SOURCES["harsh"].build(gt=scenes[i].depth, seed=seed)
        np.testing.assert_array_equal(no_mde[i, 0].numpy(), expected)
    assert train_module.MDE_FALLBACK == "harsh"

    def estimate(rgb):
        return train_module._predict_depth(mde, rgb)

    rgb, depth = scenes[0].rgb, scenes[0].depth
    for kind in SCENE_SOURCES:
        expected = D0_SOURCES[kind].build(rgb, depth, seed=9, estimate=estimate)
        np.testing.assert_array_equal(
            train_module._initial_depth(kind, 9, rgb, depth, estimate), expected
        )
    fallback = train_module._initial_depth("mde", 9, rgb, depth, None)
    np.testing.assert_array_equal(fallback, D0_SOURCES["harsh"].build(gt=depth, seed=9))


def test_refines_d0_is_the_builders(pipe, scene, tmp_path):
    from sdr_core import __main__ as cli
    from sdr_core.cli_arguments import add_refine_arguments

    parser = argparse.ArgumentParser()
    add_refine_arguments(parser)
    for name in ("metric", "harsh", "relative", "simulated"):  # "simulated": the alias
        args = parser.parse_args(
            ["--image", "x.png", "--out", "o", "--init-source", name, "--seed", "2"]
        )
        depth, label = cli._refine_init_depth(args, pipe, scene.rgb, scene.depth)
        np.testing.assert_array_equal(depth, d0_source(name).build(gt=scene.depth, seed=2))
        assert label == f"simulated ({d0_source(name).name})"
    np.save(tmp_path / "own.npy", scene.depth)
    args = parser.parse_args(
        ["--image", "x.png", "--out", "o", "--init-depth", str(tmp_path / "own.npy")]
    )
    depth, _ = cli._refine_init_depth(args, pipe, scene.rgb, scene.depth)
    np.testing.assert_array_equal(depth, scene.depth)  # a dense file is D0 as it is
    args = argparse.Namespace(init_depth=None, init_source="mde", seed=2, units=None)
    depth, _ = cli._refine_init_depth(args, pipe, scene.rgb, scene.depth)
    expected = D0_SOURCES["mde"].build(scene.rgb, estimate=pipe.estimate_depth)
    np.testing.assert_array_equal(depth, expected)


# ----------------------------------------------------------------------------- stored names
def test_the_init_sources_stored_in_the_shipped_checkpoints_still_load():
    from sdr_core.checkpoints import read_metadata
    from sdr_core.train import TrainConfig

    stored = []
    for path in sorted((REPO / "checkpoints").rglob("*.safetensors")):
        train_config = json.loads(read_metadata(path).get("train_config", "{}"))
        if "init_sources" in train_config:
            stored.append(tuple((kind, weight) for kind, weight in train_config["init_sources"]))
    assert stored  # the shipped guidance + MSPN name their D0 mix
    for init_sources in stored:
        assert {kind for kind, _ in init_sources} <= set(SCENE_SOURCES)
        assert TrainConfig(init_sources=init_sources).init_sources == init_sources
