"""End to end: the Gradio app around a tiny untrained pipeline, driven with gradio_client."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from file_formats import read_ply
from helpers import serve_blocks, serve_tiny_app, tiny_demo  # noqa: E402
from PIL import Image

gr = pytest.importorskip("gradio", reason="the app tests need gradio")
gradio_client = pytest.importorskip("gradio_client", reason="the app tests need gradio_client")

from sdr_core import iteration_count  # noqa: E402
from sdr_core.data import io  # noqa: E402

pytestmark = pytest.mark.e2e

SIDE = 96  # processing long side: Middlebury becomes 65 x 96
SPARSE = ("random points", 30, 16, 0)  # mode, N, lines, seed

# Outputs of /run (states and buttons are not part of the API).
RUN_FRAME, RUN_CAPTION, RUN_SCRUB, RUN_TABLE, RUN_CHART, RUN_CLOUD, RUN_FILES, RUN_NOTE = range(8)
# Outputs of /load_example, /upload and /reload.
SCENE_MD, MODE, INIT_SOURCE, PLAN_MD = 0, 4, 5, 7
NO_RUN = (None, *SPARSE, False, None)  # /run: painted hole, sparse widgets, no-mask, typed depth


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
    scene_md, plan_md = loaded[SCENE_MD], loaded[PLAN_MD]
    assert "Middlebury Motorcycle" in scene_md
    assert "processed at **96x65**" in scene_md
    assert "**30 depth points**" in plan_md
    first, second = iteration_count(65, 96, 30, window=5), 6
    assert f"layer 1 = **{first}**" in plan_md

    job = client.submit(*NO_RUN, api_name="/run")
    job.result()
    outputs = job.outputs()
    assert len(outputs) == 1 + first + second + 1  # initial, every iteration, summary
    captions = [out[RUN_CAPTION] for out in outputs]
    assert captions[0].startswith("initial depth D0")
    assert captions[1].startswith("layer 1 · iteration 1 / ")
    assert captions[first].startswith(f"layer 1 · iteration {first} / {first}")
    assert captions[-2].startswith("layer 2 · iteration 6 / 6")  # the last frame
    assert "RMSE" in captions[-2]  # the example has ground truth
    assert outputs[-2][RUN_NOTE].startswith("⏳ Last frame reached")  # closing work announced
    with Image.open(outputs[0][RUN_FRAME]) as frame:
        assert frame.format == "PNG"
        assert frame.height >= 65

    final = outputs[-1]
    methods = [row[0] for row in final[RUN_TABLE]["data"]]
    assert {"MSPN", "MDE only (D0)", "LS + IDW residuals"} <= set(methods)
    assert "MSPN w/o mask" not in methods  # only when asked for
    assert all(out[RUN_FILES] in (None, {"__type__": "update"}) for out in outputs)  # after
    assert final[RUN_NOTE].startswith(f"{1 + first + second} frames in ")
    _, downloads, _ = client.predict(api_name="/downloads")  # as the page: right after the run
    before = json.loads(next(Path(f) for f in downloads if f.endswith("metrics.json")).read_text())
    assert "MSPN w/o mask" not in before["metrics"]
    table, _, downloads = client.predict(api_name="/ablation")
    assert "MSPN w/o mask" in [row[0] for row in table["data"]]
    files = {Path(f).name: Path(f) for f in downloads}
    with Image.open(files["refined_depth_mm.png"]) as png:
        assert png.size == (96, 65)
        assert png.mode.startswith("I")
    assert io.read_depth(files["refined_depth_mm.png"]).depth.shape == (65, 96)
    assert np.load(files["refined_depth_m.npy"]).shape == (65, 96)
    points, colours = read_ply(files["point_cloud.ply"])
    assert points.shape == (65 * 96, 3)
    assert colours.shape == (65 * 96, 3)  # coloured by the image
    report = json.loads(files["metrics.json"].read_text())
    assert report["n_points"] == 30
    assert "MSPN w/o mask" in report["metrics"]  # rewritten with the ablation
    with Image.open(files["mspn_animation.gif"]) as gif:
        assert gif.is_animated

    scrubbed = client.predict(3, api_name="/frame")
    assert scrubbed[1].startswith("layer 1 · iteration 3 / " + str(first) + " — RMSE ")


def test_sessions_do_not_mix(url):
    many, few = (gradio_client.Client(url, verbose=False) for _ in range(2))
    many.predict(0, SIDE, "random points", 200, 16, 0, api_name="/load_example")
    few.predict(0, SIDE, "random points", 2, 16, 0, api_name="/load_example")
    jobs = {
        200: many.submit(None, "random points", 200, 16, 0, False, None, api_name="/run"),
        2: few.submit(None, "random points", 2, 16, 0, False, None, api_name="/run"),
    }  # both run at once (concurrency limit 2)
    for n_points, job in jobs.items():
        job.result()
        first = iteration_count(65, 96, n_points, window=5)
        assert len(job.outputs()) == 1 + first + 6 + 1
    assert few.predict(1, api_name="/frame")[1].startswith(
        f"layer 1 · iteration 1 / {iteration_count(65, 96, 2, window=5)} — "
    )


def _server_session(blocks, session_hash: str):
    """The studio session the server holds for a client (None once it was freed)."""
    from studio.session import Session

    holder = blocks.state_holder
    if session_hash not in holder:
        return None
    values = holder.session_data[session_hash].state_data.values()
    return next((value for value in values if isinstance(value, Session)), None)


def test_a_closed_tab_frees_its_session_and_open_tabs_keep_theirs(tmp_path_factory):
    # Issue 22: memory bounded per visitor. Closing a tab (the client's heartbeat ends) frees
    # its session at once: the run (every state), its downloads folder and the components'
    # last values; another visitor's open session keeps its run.
    import time

    blocks = tiny_demo(tmp_path_factory)
    with serve_blocks(blocks) as url:
        clients = [gradio_client.Client(url, verbose=False) for _ in range(3)]
        folders = []
        for client in clients:
            _load_middlebury(client)
            client.submit(*NO_RUN, api_name="/run").result()
            client.predict(api_name="/downloads")
            record = _server_session(blocks, client.session_hash).run
            assert record.states
            assert record.out_dir.is_dir()
            folders.append(record.out_dir)
        leaving, staying = clients[:2], clients[2]
        for client in leaving:
            client.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(
            c.session_hash in blocks.state_holder for c in leaving
        ):
            time.sleep(0.2)
        assert all(c.session_hash not in blocks.state_holder for c in leaving)
        assert not any(folder.exists() for folder in folders[:2])
        assert folders[2].is_dir()
        assert _server_session(blocks, staying.session_hash).run.states
        assert staying.predict(1, api_name="/frame")[1].startswith("layer 1 · iteration 1 / ")


def test_only_runs_are_bounded_in_the_queue():
    # A full queue of runs turns away a run with a plain message, never a cheap event.
    import app
    from studio.page import busy_problem

    assert busy_problem(app.RUN_QUEUE_SIZE - 1, app.RUN_QUEUE_SIZE) is None
    message = busy_problem(app.RUN_QUEUE_SIZE, app.RUN_QUEUE_SIZE)
    assert "busy" in message
    assert "kept" in message
    with gr.Blocks() as blocks:
        gr.Button().click(lambda: None)
    assert app.enable_queue(blocks)._queue.max_size is None


def test_hole_is_reported_and_run_keeps_going(client):
    _load_middlebury(client)
    _, _, plan_md = client.predict(*SPARSE, api_name="/centre_hole")
    assert "dropped by the hole" in plan_md
    job = client.submit(*NO_RUN, api_name="/run")
    job.result()
    regions = {row[1] for row in job.outputs()[-1][RUN_TABLE]["data"]}
    assert regions == {"whole image", "hole"}


def test_bad_upload_is_a_plain_error_and_the_app_keeps_working(client, tmp_path):
    assert "Middlebury" in _load_middlebury(client)[SCENE_MD]
    broken = tmp_path / "photo.png"
    broken.write_bytes(b"definitely not a png")
    refused = client.predict(
        gradio_client.handle_file(str(broken)), None, "auto (by file type)", "bundled MDE",
        None, SIDE, *SPARSE, api_name="/upload",
    )  # fmt: skip
    assert "⚠️ photo.png: not a readable" in refused[SCENE_MD]
    assert "Middlebury" in refused[SCENE_MD]  # the scene loaded before is kept
    assert refused[PLAN_MD] == {"__type__": "update"}  # and its points untouched
    assert "**30 depth points**" in client.predict(*SPARSE, api_name="/points")[1]


def test_upload_without_ground_truth_starts_with_clicks(client, tmp_path):
    image = tmp_path / "room.jpg"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(image)
    loaded = client.predict(
        gradio_client.handle_file(str(image)), None, "auto (by file type)", "bundled MDE",
        None, SIDE, *SPARSE, api_name="/upload",
    )  # fmt: skip
    assert "ground truth: no" in loaded[SCENE_MD]
    assert loaded[MODE] == "clicks only"  # random points would need ground truth
    assert "**0 depth points**" in loaded[PLAN_MD]
    assert "sampled from the ground truth" not in loaded[PLAN_MD]  # no stale warning
    assert "simulated" not in str(loaded[INIT_SOURCE])  # simulated D0 needs ground truth
    with pytest.raises(gradio_client.exceptions.ValidationError, match="no depth points to propa"):
        client.predict(None, "clicks only", 30, 16, 0, False, None, api_name="/run")


def test_mismatched_ground_truth_is_ignored_with_a_warning(client, tmp_path):
    image, depth = tmp_path / "a.png", tmp_path / "a_depth.npy"
    Image.fromarray(np.zeros((48, 64, 3), np.uint8)).save(image)
    np.save(depth, np.ones((10, 10), np.float32))
    loaded = client.predict(
        gradio_client.handle_file(str(image)), gradio_client.handle_file(str(depth)),
        "auto (by file type)", "bundled MDE", None, SIDE, *SPARSE, api_name="/upload",
    )  # fmt: skip
    assert "Ground truth ignored" in loaded[SCENE_MD]
    assert "must be the same size" in loaded[SCENE_MD]


def test_a_one_pixel_png_is_refused_for_what_it_is(client, tmp_path):
    tiny = tmp_path / "dot.png"
    Image.fromarray(np.zeros((1, 1, 3), np.uint8)).save(tiny)
    refused = client.predict(
        gradio_client.handle_file(str(tiny)), None, "auto (by file type)", "bundled MDE",
        None, SIDE, *SPARSE, api_name="/upload",
    )  # fmt: skip
    assert "1x1 pixels, smaller than" in refused[SCENE_MD]
    assert "never upscaled" in refused[SCENE_MD]
    assert "resolution" not in refused[SCENE_MD]


def test_examples_offer_a_simulated_initial_depth(client):
    good = "good metric MDE (simulated from ground truth)"
    bundled = client.predict(0, SIDE, *SPARSE, "bundled MDE", api_name="/load_example")
    assert "initial depth: bundled MDE" in bundled[SCENE_MD]
    loaded = client.predict(0, SIDE, *SPARSE, good, api_name="/load_example")  # now offered
    assert f"initial depth: {good}" in loaded[SCENE_MD]
    assert loaded[INIT_SOURCE]["value"] == good


# ----------------------------------------------------------------------------- every state
def _select_data(blocks, fn) -> gr.SelectData:
    """What a click sends: a gallery index, or (x, y) on an image."""
    gallery = any(isinstance(blocks.blocks.get(t[0]), gr.Gallery) for t in fn.targets if t[0])
    index = 0 if gallery else [3, 4]
    return gr.SelectData(None, {"index": index, "value": None, "selected": True})


LOADERS = ("on_upload", "on_reload", "on_load_example")  # called last, in this order


async def _call_every_handler(blocks, state, session_hash) -> dict[str, str]:
    """Call every event handler with the page's initial values; returns {name: outcome}.

    The loaders come last: a cleared upload, a reload without an image, then the first
    example, which leaves a scene for the next call.
    """
    outcomes = {}
    fns = [fn for fn in blocks.fns.values() if fn.fn is not None]  # None: Stop's cancel
    fns.sort(key=lambda fn: LOADERS.index(fn.name) if fn.name in LOADERS else -1)
    for fn in fns:
        inputs = [getattr(component, "value", None) for component in fn.inputs]
        if fn.name == "on_load_example":
            inputs[0] = 0  # the gallery's first scene
        try:
            out = await blocks.process_api(
                block_fn=fn, inputs=inputs, state=state, session_hash=session_hash,
                event_data=_select_data(blocks, fn),
            )  # fmt: skip
        except gr.Error as error:
            out = error
        if isinstance(out, gr.Error):
            assert not out.print_exception, f"{fn.name}: a traceback would be logged"
            assert len(str(out)) > 20, f"{fn.name}: {out!r} is no message"
            outcomes[fn.name] = f"message: {out}"
            continue
        assert len(out["data"]) == len(fn.outputs), fn.name
        outcomes[fn.name] = "updates"
    return outcomes


def test_every_handler_answers_every_state(tmp_path_factory):
    """No scene, a scene without a run, and the example's image cleared: no handler fails."""
    import asyncio

    from gradio.state_holder import SessionState
    from helpers import TINY

    import app
    from sdr_core import build_untrained_pipeline
    from studio.page import NO_SCENE
    from studio.scene import load_examples

    examples = load_examples(
        tmp_path_factory.mktemp("none"), scratch_dir=tmp_path_factory.mktemp("ex")
    )
    blocks = app.build_demo(build_untrained_pipeline(TINY, device="cpu", seed=0), examples)
    state = SessionState(blocks)
    fns = {fn.name: fn for fn in blocks.fns.values() if fn.fn is not None}

    async def scenario() -> list[dict[str, str]]:
        before = await _call_every_handler(blocks, state, "s")  # loads the example at the end
        loaded = await _call_every_handler(blocks, state, "s")  # a scene, no run
        cleared = await blocks.process_api(
            block_fn=fns["on_upload"], state=state, session_hash="s",
            inputs=[None, None, "auto (by file type)", "bundled MDE", None, SIDE, None, None,
                    *SPARSE],
        )  # fmt: skip
        scene_md = next(i for i, c in enumerate(fns["on_upload"].outputs) if c.elem_id == "scene")
        assert cleared["data"][scene_md] == NO_SCENE  # the example's image: page cleared
        after = await _call_every_handler(blocks, state, "s")
        return [before, loaded, after]

    for outcomes in asyncio.run(scenario()):
        assert len(outcomes) >= 20
        refused = {name for name, outcome in outcomes.items() if outcome != "updates"}
        assert refused <= {"on_run"}, outcomes  # Refine without points is told why


def test_every_endpoint_before_a_scene_and_after_clearing_logs_no_traceback(url, capfd):
    client = gradio_client.Client(url, verbose=False)  # a fresh session: no scene
    calls = [
        ("/points", SPARSE), ("/point_depth", (0.4, *SPARSE)), ("/clear_points", SPARSE),
        ("/paint_hole", (None, *SPARSE)), ("/centre_hole", SPARSE), ("/clear_hole", SPARSE),
        ("/frame", (1,)), ("/downloads", ()), ("/ablation", ()),
        ("/upload", (None, None, "auto (by file type)", "bundled MDE", None, SIDE, *SPARSE)),
        ("/reload", (None, None, "auto (by file type)", "bundled MDE", None, SIDE, *SPARSE)),
    ]  # fmt: skip
    for api_name, args in calls:
        client.predict(*args, api_name=api_name)
    with pytest.raises(gradio_client.exceptions.ValidationError, match="Load an image first"):
        client.predict(*NO_RUN, api_name="/run")
    _load_middlebury(client)
    cleared = client.predict(
        None, None, "auto (by file type)", "bundled MDE", None, SIDE, *SPARSE, api_name="/upload"
    )
    assert cleared[SCENE_MD] == "No scene yet: pick an example above or upload an image."
    for api_name, args in calls:
        client.predict(*args, api_name=api_name)
    log = capfd.readouterr()
    assert "Traceback" not in log.out + log.err
    assert "didn't return enough output values" not in log.out + log.err


def test_an_output_the_page_lacks_stops_the_app_at_start_up(monkeypatch):
    from helpers import TINY

    import app
    from sdr_core import build_untrained_pipeline
    from studio import page

    outputs = {**page.OUTPUTS, "points": (*page.OUTPUTS["points"], "no_such_panel")}
    monkeypatch.setattr(page, "OUTPUTS", outputs)
    pipe = build_untrained_pipeline(TINY, device="cpu", seed=0)
    with pytest.raises(RuntimeError, match="no_such_panel"):
        app.build_demo(pipe, examples=[])
