"""End to end: the Gradio app around a tiny untrained pipeline, driven with gradio_client."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from file_formats import read_ply
from helpers import serve_tiny_app  # noqa: E402
from PIL import Image

gr = pytest.importorskip("gradio", reason="the app tests need gradio")
gradio_client = pytest.importorskip("gradio_client", reason="the app tests need gradio_client")

from sdr_core import iteration_count  # noqa: E402
from sdr_core.data import io  # noqa: E402

pytestmark = pytest.mark.e2e

SIDE = 96  # processing long side: Middlebury becomes 65 x 96
SPARSE = ("random points", 30, 16, 0)  # mode, N, lines, seed

# Outputs of /run (states and buttons are not part of the API).
RUN_FRAME, RUN_CAPTION, RUN_SCRUB, RUN_TABLE, RUN_CHART, RUN_CLOUD, RUN_FILES = range(7)


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    with serve_tiny_app(tmp_path_factory) as address:
        yield address


@pytest.fixture
def client(url):
    return gradio_client.Client(url, verbose=False)  # one client = one session


def _load_middlebury(client) -> tuple:
    return client.predict(0, SIDE, *SPARSE, api_name="/load_example")


def test_example_runs_end_to_end_and_streams_every_iteration(client):
    loaded = _load_middlebury(client)
    scene_md, plan_md = loaded[0], loaded[5]
    assert "Middlebury Motorcycle" in scene_md
    assert "processed at **96x65**" in scene_md
    assert "**30 depth points**" in plan_md
    first, second = iteration_count(65, 96, 30, window=5), 6
    assert f"layer 1 = **{first}**" in plan_md

    job = client.submit(None, *SPARSE, False, api_name="/run")
    job.result()
    outputs = job.outputs()
    assert len(outputs) == 1 + first + second + 1  # initial, every iteration, summary
    captions = [out[RUN_CAPTION] for out in outputs]
    assert captions[0].startswith("initial depth D0")
    assert captions[1].startswith("layer 1 · iteration 1 / ")
    assert captions[first].startswith(f"layer 1 · iteration {first} / {first}")
    assert captions[-1].startswith("layer 2 · iteration 6 / 6")
    assert "RMSE" in captions[-1]  # the example has ground truth
    with Image.open(outputs[0][RUN_FRAME]) as frame:
        assert frame.format == "PNG"
        assert frame.height >= 65

    final = outputs[-1]
    methods = [row[0] for row in final[RUN_TABLE]["data"]]
    assert {"MSPN", "MDE only", "MSPN without mask (ablation)"} <= set(methods)
    files = {Path(f).name: Path(f) for f in final[RUN_FILES]}
    with Image.open(files["refined_depth_mm.png"]) as png:
        assert png.size == (96, 65)
        assert png.mode.startswith("I")
    assert io.read_depth(files["refined_depth_mm.png"]).depth.shape == (65, 96)
    assert np.load(files["refined_depth.npy"]).shape == (65, 96)
    points, colours = read_ply(files["point_cloud.ply"])
    assert points.shape == (65 * 96, 3)
    assert colours.shape == (65 * 96, 3)  # coloured by the image
    assert json.loads(files["metrics.json"].read_text())["n_points"] == 30
    with Image.open(files["mspn_animation.gif"]) as gif:
        assert gif.is_animated

    scrubbed = client.predict(3, api_name="/frame")
    assert scrubbed[1] == "layer 1 · iteration 3 / " + str(first)


def test_sessions_do_not_mix(url):
    many, few = (gradio_client.Client(url, verbose=False) for _ in range(2))
    many.predict(0, SIDE, "random points", 200, 16, 0, api_name="/load_example")
    few.predict(0, SIDE, "random points", 2, 16, 0, api_name="/load_example")
    jobs = {
        200: many.submit(None, "random points", 200, 16, 0, False, api_name="/run"),
        2: few.submit(None, "random points", 2, 16, 0, False, api_name="/run"),
    }  # both run at once (concurrency limit 2)
    for n_points, job in jobs.items():
        job.result()
        first = iteration_count(65, 96, n_points, window=5)
        assert len(job.outputs()) == 1 + first + 6 + 1
    assert few.predict(1, api_name="/frame")[1].endswith(
        f"/ {iteration_count(65, 96, 2, window=5)}"
    )


def test_hole_is_reported_and_run_keeps_going(client):
    _load_middlebury(client)
    _, _, plan_md = client.predict(*SPARSE, api_name="/centre_hole")
    assert "dropped by the hole" in plan_md
    job = client.submit(None, *SPARSE, False, api_name="/run")
    job.result()
    regions = {row[1] for row in job.outputs()[-1][RUN_TABLE]["data"]}
    assert regions == {"whole image", "hole"}


def test_bad_upload_is_a_plain_error_and_the_app_keeps_working(client, tmp_path):
    broken = tmp_path / "photo.png"
    broken.write_bytes(b"definitely not a png")
    with pytest.raises(gradio_client.exceptions.AppError, match="photo.png: not a readable"):
        client.predict(
            gradio_client.handle_file(str(broken)), None, "auto (by file type)", "bundled MDE",
            None, SIDE, *SPARSE, api_name="/upload",
        )  # fmt: skip
    assert "Middlebury" in _load_middlebury(client)[0]


def test_upload_without_ground_truth_needs_points(client, tmp_path):
    image = tmp_path / "room.jpg"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(image)
    loaded = client.predict(
        gradio_client.handle_file(str(image)), None, "auto (by file type)", "bundled MDE",
        None, SIDE, *SPARSE, api_name="/upload",
    )  # fmt: skip
    assert "ground truth: no" in loaded[0]
    assert "click on the image" in loaded[5]
    with pytest.raises(gradio_client.exceptions.AppError, match="no depth points to propagate"):
        client.predict(None, *SPARSE, False, api_name="/run")


def test_mismatched_ground_truth_is_ignored_with_a_warning(client, tmp_path):
    image, depth = tmp_path / "a.png", tmp_path / "a_depth.npy"
    Image.fromarray(np.zeros((48, 64, 3), np.uint8)).save(image)
    np.save(depth, np.ones((10, 10), np.float32))
    loaded = client.predict(
        gradio_client.handle_file(str(image)), gradio_client.handle_file(str(depth)),
        "auto (by file type)", "bundled MDE", None, SIDE, *SPARSE, api_name="/upload",
    )  # fmt: skip
    assert "Ground truth ignored" in loaded[0]
    assert "must be the same size" in loaded[0]
