"""sdr_core.mde.depth_anything: the optional Depth Anything V2 backend, offline.

No weights are ever downloaded: the model is a tiny, randomly initialised Depth Anything
(DINOv2 backbone of 4 layers x 32 channels), so its depth means nothing but its shapes,
ranges and plumbing are the real ones. Tests that need `transformers` skip without it.
"""

from __future__ import annotations

import sys
import time

import numpy as np
import pytest
import torch
from helpers import TINY

from sdr_core import SDRPipeline, build_untrained_pipeline
from sdr_core.guidance import GuidanceNet
from sdr_core.mde import DepthEstimator
from sdr_core.mde import depth_anything as da
from sdr_core.mspn import MSPN
from sdr_core.sparse import random_points
from studio.scene import (
    INIT_DEPTH_ANYTHING,
    init_sources,
    load_optional_estimators,
    load_scene,
    pick_estimator,
    warning_notes,
)

H, W = 30, 40


def _tiny_model(kind: str = "metric", seed: int = 0):
    transformers = pytest.importorskip("transformers")
    backbone = transformers.Dinov2Config(
        hidden_size=32,
        num_hidden_layers=4,
        num_attention_heads=2,
        mlp_ratio=2,
        image_size=56,
        patch_size=14,
        out_indices=[1, 2, 3, 4],
        reshape_hidden_states=False,
    )
    config = transformers.DepthAnythingConfig(
        backbone_config=backbone,
        patch_size=14,
        reassemble_hidden_size=32,
        neck_hidden_sizes=[8, 8, 16, 16],
        fusion_hidden_size=8,
        head_hidden_size=8,
        depth_estimation_type=kind,
        max_depth=20,
    )
    model = transformers.DepthAnythingForDepthEstimation(config).eval()
    # transformers' own initialisation leaves this tiny head constant (10 m everywhere);
    # seeded random weights give a map that varies over the image, so resizing shows.
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(0.2 * torch.randn(parameter.shape, generator=generator))
    return model


@pytest.fixture(scope="module")
def estimator():
    return da.DepthAnythingEstimator(_tiny_model(), "cpu", input_side=42, max_input_side=84)


@pytest.fixture
def image():
    return np.random.default_rng(0).integers(0, 256, (H, W, 3), dtype=np.uint8)


# ----------------------------------------------------------------------------- sizes
@pytest.mark.parametrize(
    ("size", "expected"),
    [
        ((480, 640), (518, 686)),  # short side 518, 690.7 rounded to 49 patches
        ((228, 304), (518, 686)),  # small images grow to the same input
        ((100, 1000), (98, 1036)),  # elongated: the long side is capped at 1036 instead
        ((13, 1024), (14, 1036)),  # never fewer than one patch
    ],
)
def test_network_size(size, expected):
    assert da.network_size(*size) == expected
    assert all(side % 14 == 0 for side in da.network_size(*size))


# ----------------------------------------------------------------------------- estimator
def test_is_a_depth_estimator(estimator):
    assert isinstance(estimator, DepthEstimator)
    assert estimator.name == "Depth Anything V2"


def test_estimate_shape_positive_finite_deterministic(estimator, image):
    depth = estimator.estimate(image)
    assert depth.shape == (H, W)
    assert depth.dtype == np.float32
    assert np.isfinite(depth).all()
    assert (depth >= da.MIN_DEPTH_M).all()
    assert (depth <= 20.0).all()  # the metric head's sigmoid x max_depth
    assert depth.std() > 0  # the seeded weights give a varying map, so resizing shows
    np.testing.assert_array_equal(estimator.estimate(image), depth)


def test_predict_keeps_the_batch_and_input_size(estimator):
    batch = torch.rand(2, 3, 17, 23, generator=torch.Generator().manual_seed(1))
    depth = estimator.predict(batch)
    assert depth.shape == (2, 1, 17, 23)
    assert depth.dtype == torch.float32
    # each image is processed on its own: batching changes nothing
    # (float32 convolutions may group their sums differently for another batch size)
    torch.testing.assert_close(depth[1:], estimator.predict(batch[1:]), rtol=1e-5, atol=1e-5)


def test_predict_refuses_a_bad_shape(estimator):
    with pytest.raises(ValueError, match="B x 3 x H x W"):
        estimator.predict(torch.rand(3, 10, 10))


def test_relative_models_are_refused():
    with pytest.raises(ValueError, match="relative Depth Anything model.*not metres"):
        da.DepthAnythingEstimator(_tiny_model("relative"))


def test_refines_end_to_end_inside_the_pipeline(estimator, image):
    torch.manual_seed(0)
    pipe = SDRPipeline(estimator, GuidanceNet(TINY.guidance), MSPN(TINY.mspn), "cpu")
    gt = (1.0 + 3.0 * np.random.default_rng(1).random((H, W))).astype(np.float32)
    sparse = random_points(gt, 50, seed=0)
    result = pipe.refine(image, sparse)
    np.testing.assert_array_equal(result.init_depth, estimator.estimate(image))
    assert result.depth.shape == (H, W)
    assert np.isfinite(result.depth).all()
    measured = sparse > 0
    np.testing.assert_allclose(result.depth[measured], sparse[measured], rtol=0, atol=1e-6)


# ----------------------------------------------------------------------------- loading
def test_loads_a_local_folder_offline(tmp_path):
    _tiny_model().save_pretrained(tmp_path / "tiny")
    loaded = da.load_depth_anything(str(tmp_path / "tiny"), "cpu", local_files_only=True)
    assert isinstance(loaded, da.DepthAnythingEstimator)
    assert loaded.max_depth_m == 20.0
    assert (tmp_path / "tiny" / "model.safetensors").is_file()


def test_a_saved_relative_model_is_refused_in_plain_words(tmp_path):
    _tiny_model("relative").save_pretrained(tmp_path / "relative")
    with pytest.raises(da.DepthAnythingUnavailable, match="could not be loaded: .*relative"):
        da.load_depth_anything(str(tmp_path / "relative"), local_files_only=True)


def test_unknown_model_offline_fails_fast_and_clearly(monkeypatch):
    pytest.importorskip("transformers")
    from huggingface_hub import constants

    def no_network(*args, **kwargs):
        raise AssertionError("the Hub must not be contacted when downloads are off")

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(da, "_check_hub", no_network)
    start = time.perf_counter()
    with pytest.raises(da.DepthAnythingUnavailable) as caught:
        da.load_depth_anything("no-such-org/no-such-depth-model")
    assert time.perf_counter() - start < 5  # measured: about 1 ms
    message = str(caught.value)
    assert message.startswith("Depth Anything V2 could not be loaded: ")
    assert "not in the local Hugging Face cache and downloads are off" in message


def test_unknown_model_online_fails_within_the_timeout():
    # Offline machines fail on name resolution, connected ones get a 404 from the Hub:
    # both within the 2 s asked for, never the minute of from_pretrained's retries.
    pytest.importorskip("transformers")
    start = time.perf_counter()
    with pytest.raises(da.DepthAnythingUnavailable, match="could not be loaded: "):
        da.load_depth_anything("no-such-org/no-such-depth-model", timeout_s=2)
    assert time.perf_counter() - start < 10


def test_hub_check_gives_up_after_the_timeout(monkeypatch):
    pytest.importorskip("transformers")
    import huggingface_hub

    def hang(self, *args, **kwargs):
        time.sleep(3)

    monkeypatch.setattr(huggingface_hub.HfApi, "model_info", hang)
    start = time.perf_counter()
    with pytest.raises(da.DepthAnythingUnavailable, match="did not answer within 0.2 s"):
        da._check_hub("depth-anything/anything", timeout_s=0.2)
    assert time.perf_counter() - start < 2


# ----------------------------------------------------------------------------- without transformers
@pytest.fixture
def no_transformers(monkeypatch):
    """Make `import transformers` fail as it would where the package is not installed."""
    monkeypatch.setitem(sys.modules, "transformers", None)


def test_missing_transformers_gives_the_clear_error(no_transformers):
    with pytest.raises(da.DepthAnythingUnavailable) as caught:
        da.load_depth_anything()
    assert str(caught.value) == (
        "Depth Anything V2 could not be loaded: the optional package `transformers` is not "
        "installed (pip install transformers)"
    )


def test_missing_transformers_leaves_the_option_out_of_the_app(no_transformers, tmp_path):
    import app

    estimators, notes = load_optional_estimators("cpu")
    assert estimators == {}
    assert notes[0].startswith("Depth Anything V2 could not be loaded: the optional package")
    assert init_sources(estimators) == ["bundled MDE"]
    pipe = build_untrained_pipeline(TINY, device="cpu", seed=0)
    blocks = app.build_demo(pipe, examples=[], estimators=estimators)
    assert _init_choices(blocks) == ["bundled MDE"]


def test_a_loaded_estimator_is_offered_in_the_app(estimator):
    import app

    pipe = build_untrained_pipeline(TINY, device="cpu", seed=0)
    blocks = app.build_demo(pipe, examples=[], estimators={INIT_DEPTH_ANYTHING: estimator})
    assert _init_choices(blocks) == ["bundled MDE", "Depth Anything V2"]


def _init_choices(blocks) -> list[str]:
    radios = [
        block
        for block in blocks.blocks.values()
        if getattr(block, "label", None) == "Initial depth D0"
    ]
    assert len(radios) == 1
    return [value for _, value in radios[0].choices]


def test_importing_the_module_does_not_import_transformers():
    code = (
        "import sys, sdr_core.mde.depth_anything as m, studio.scene; "
        "m.depth_anything_available(); "
        "sys.exit('transformers' in sys.modules)"
    )
    import subprocess

    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


# ----------------------------------------------------------------------------- the demo
def test_load_scene_uses_the_chosen_estimator(estimator, tmp_path):
    from PIL import Image

    rgb = np.random.default_rng(2).integers(0, 256, (H, W, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "image.png")
    pipe = build_untrained_pipeline(TINY, device="cpu", seed=0)
    scene = load_scene(pipe, tmp_path / "image.png", long_side=64, estimator=estimator)
    assert scene.init_source == "Depth Anything V2"
    np.testing.assert_array_equal(scene.init_depth, estimator.estimate(rgb))
    assert warning_notes(scene) == []


class _Broken:
    name = "Depth Anything V2"

    def estimate(self, image: np.ndarray) -> np.ndarray:
        raise RuntimeError("CUDA out of memory")


def test_a_failing_estimator_falls_back_to_the_bundled_mde(tmp_path):
    from PIL import Image

    Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(tmp_path / "image.png")
    pipe = build_untrained_pipeline(TINY, device="cpu", seed=0)
    scene = load_scene(pipe, tmp_path / "image.png", long_side=64, estimator=_Broken())
    assert scene.init_source.startswith("bundled MDE")
    assert warning_notes(scene) == [
        "Depth Anything V2 failed on this image (CUDA out of memory); the bundled MDE was used."
    ]


def test_pick_estimator_falls_back_with_a_warning_when_unavailable(estimator):
    assert pick_estimator("bundled MDE", {}) == (None, None)
    assert pick_estimator("uploaded initial depth", {}) == (None, None)
    chosen = pick_estimator("Depth Anything V2", {"Depth Anything V2": estimator})
    assert chosen == (estimator, None)
    missing, warning = pick_estimator("Depth Anything V2", {})
    assert missing is None
    assert "not available on this server" in warning
    assert "the bundled MDE was used instead" in warning


@pytest.mark.e2e
def test_the_app_loads_a_scene_with_depth_anything(estimator, tmp_path):
    gradio_client = pytest.importorskip("gradio_client")
    from helpers import serve_blocks
    from PIL import Image

    import app

    Image.fromarray(np.full((H, W, 3), 128, np.uint8)).save(tmp_path / "image.png")
    pipe = build_untrained_pipeline(TINY, device="cpu", seed=0)
    blocks = app.build_demo(pipe, examples=[], estimators={INIT_DEPTH_ANYTHING: estimator})
    with serve_blocks(blocks) as url:
        client = gradio_client.Client(url, verbose=False)
        image = gradio_client.handle_file(str(tmp_path / "image.png"))
        sparse = ("clicks only", 30, 16, 0)
        loaded = client.predict(
            image, None, "auto (by file type)", "Depth Anything V2", None, 64, *sparse,
            api_name="/upload",
        )  # fmt: skip
    assert "initial depth: Depth Anything V2" in loaded[0]
