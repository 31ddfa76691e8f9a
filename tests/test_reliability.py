"""Reliability: pickles refused, runs that stop when nobody watches, sessions kept apart.

- Pickled user files (.npy/.npz object arrays) and torch-pickled checkpoints are refused
  with a clear error, and their payload never runs (a control load shows that it would).
- Closing the run generator stops the MSPN: no iteration runs after the consumer leaves.
- In the app (tiny pipeline, gradio_client): Stop is wired to cancel the run; a cancelled
  run and a client that disconnects both free their worker at once, so the next request
  gets its first frame promptly; concurrent sessions each get their own results, checked
  against the same inputs re-run alone.
- The limits in README.md are the ones in the code.

The full load test (8 sessions x 5 runs with the shipped checkpoints) is
benchmarks/load_test.py; its figures live in BENCHMARKS.md.
"""

from __future__ import annotations

import json
import pickle
import re
import select
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
import torch
from helpers import TINY, TINY_MDE, serve_blocks

from sdr_core import build_untrained_pipeline, iteration_count
from sdr_core.checkpoints import CheckpointError, read_metadata, save_module
from sdr_core.data import io
from sdr_core.pipeline import SDRPipeline, load_pipeline
from studio.run import frame_at, run_steps
from studio.scene import MAX_LONG_SIDE, MIN_LONG_SIDE, load_example, load_examples, load_scene
from studio.session import MAX_LINES, MAX_POINTS, MIN_LINES, SparseChoice, build_sparse, new_session

SIDE = 96  # processing long side: the 304 x 228 assets become 96 x 72
DOWNLOADS_FILES = 1  # index of the files among /downloads' outputs (point cloud, files, note)


# ----------------------------------------------------------------------------- pickles


class _Trap:
    """Unpickling this creates `marker`: proof that a loader ran pickled code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str, str]]:
        return open, (str(self.marker), "w")


@pytest.mark.parametrize("suffix", [".npy", ".npz"])
def test_pickled_numpy_files_are_refused_without_running_them(tmp_path, suffix):
    marker = tmp_path / "pwned"
    path = tmp_path / f"depth{suffix}"
    payload = np.array([_Trap(marker), None], dtype=object)
    if suffix == ".npy":
        np.save(path, payload, allow_pickle=True)
    else:
        np.savez(path, depth=payload)
    # Control: a loader that allows pickles runs the payload.
    loaded = np.load(path, allow_pickle=True)
    _ = loaded if suffix == ".npy" else loaded["depth"]
    assert marker.exists()
    marker.unlink()
    with pytest.raises(io.RGBDFileError, match=rf"^depth\{suffix}: contains Python objects"):
        io.read_depth(path)
    assert not marker.exists()


def _tiny_checkpoints(folder: Path) -> SDRPipeline:
    pipeline = build_untrained_pipeline(TINY, TINY_MDE, device="cpu", seed=0)
    save_module(folder / "mde.safetensors", pipeline.mde.net, TINY_MDE, "mde")
    save_module(folder / "guidance.safetensors", pipeline.guidance, TINY.guidance, "guidance")
    save_module(folder / "mspn.safetensors", pipeline.mspn, TINY.mspn, "mspn")
    return pipeline


def test_torch_pickled_checkpoint_is_refused_without_running_it(tmp_path):
    saved = _tiny_checkpoints(tmp_path).mspn.state_dict()
    honest = load_pipeline("cpu", checkpoint_dir=tmp_path).mspn.state_dict()  # loads, as saved
    assert honest.keys() == saved.keys()
    assert all(torch.equal(honest[k], saved[k]) for k in saved)
    marker = tmp_path / "pwned"
    path = tmp_path / "mspn.safetensors"
    state = {"weight": torch.zeros(2), "trap": _Trap(marker)}
    torch.save(state, tmp_path / "trap.pt")  # torch's pickle (zip) format
    torch.load(tmp_path / "trap.pt", weights_only=False)  # control: unpickling runs it
    assert marker.exists()
    path.write_bytes((tmp_path / "trap.pt").read_bytes())  # now under the expected name
    marker.unlink()
    message = r"^mspn\.safetensors: not a readable safetensors file"
    with pytest.raises(CheckpointError, match=message):
        read_metadata(path)
    with pytest.raises(CheckpointError, match=message):
        load_pipeline("cpu", checkpoint_dir=tmp_path)
    assert not marker.exists()


def test_plain_pickle_checkpoint_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "guidance.safetensors"
    path.write_bytes(pickle.dumps({"trap": _Trap(marker)}))
    with pytest.raises(CheckpointError, match=r"^guidance\.safetensors: not a readable"):
        read_metadata(path)
    assert not marker.exists()


# ----------------------------------------------------------------------------- hostile uploads


def _hostile_files(root: Path) -> dict[str, Path]:
    from PIL import Image

    files = {"image": root / "photo.png", "sliver": root / "sliver.png"}
    Image.fromarray(np.full((48, 64, 3), 128, np.uint8)).save(files["image"])
    Image.fromarray(np.zeros((1, 5000, 3), np.uint8)).save(files["sliver"])
    files["nan"] = root / "nan.npy"
    np.save(files["nan"], np.full((48, 64), np.nan, np.float32))
    files["pickle"] = root / "pickled.npy"
    np.save(files["pickle"], np.array([None], dtype=object), allow_pickle=True)
    files["link"] = root / "linked.h5"
    with h5py.File(root / "other.h5", "w") as other:
        other["depth"] = np.ones((48, 64), np.float32)
    with h5py.File(files["link"], "w") as h5:
        h5["depth"] = h5py.ExternalLink(str(root / "other.h5"), "/depth")
    return files


@pytest.mark.parametrize(
    ("image", "gt", "init", "expected"),
    [
        ("sliver", None, None, r"the image is 5000x1 pixels, smaller than the 5x5 MSPN window"),
        ("image", "nan", None, "Ground truth ignored: nan.npy has no valid depth"),
        ("image", "pickle", None, "Ground truth ignored: pickled.npy: contains Python objects"),
        ("image", "link", None, "Ground truth ignored: linked.h5: 'depth' is a link"),
        ("image", None, "nan", "nan.npy has no valid depth value to start from"),
        ("image", None, "pickle", "pickled.npy: contains Python objects"),
        ("image", None, "link", "linked.h5: 'depth' is a link"),
    ],
)
def test_hostile_uploads_end_in_a_clear_message(tmp_path, image, gt, init, expected):
    # The upload handler calls load_scene and shows a ValueError as it is (gr.Error);
    # a bad ground truth is dropped with a note instead, so the image stays usable.
    files = _hostile_files(tmp_path)
    pipeline = build_untrained_pipeline(TINY, device="cpu", seed=0)
    try:
        scene = load_scene(
            pipeline, files[image], gt and files[gt], init_depth_path=init and files[init]
        )
    except ValueError as error:
        message = str(error)
    else:
        message = " ".join(scene.notes)
    assert re.search(expected, message), message


# ----------------------------------------------------------------------------- generators


class CountingMSPN:
    """Wraps ``pipeline.mspn.refine_steps``: counts iterations pulled (a layer's starting
    state is no iteration), notes when closed and optionally sleeps after each iteration (to
    make a tiny run last)."""

    def __init__(self, pipeline: Any, delay_s: float = 0.0) -> None:
        self.iterations = 0
        self.closed = 0
        self.delay_s = delay_s
        self._original = pipeline.mspn.refine_steps
        pipeline.mspn.refine_steps = self._steps

    def _steps(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
        try:
            for state in self._original(*args, **kwargs):
                if state.iteration:
                    self.iterations += 1
                    time.sleep(self.delay_s)
                yield state
        finally:
            self.closed += 1


@pytest.fixture(scope="module")
def examples(tmp_path_factory):
    import app

    found = load_examples(app.ASSETS_DIR, scratch_dir=tmp_path_factory.mktemp("examples"))
    assert len(found) >= 3
    return found


def _session(pipeline, example, n_points, seed):
    scene = load_example(pipeline, example, SIDE)
    session = new_session(scene)
    choice = SparseChoice("random points", n_points, 16, seed)
    return session, build_sparse(pipeline, session, choice)


def test_closing_the_run_stops_the_mspn(examples):
    pipeline = build_untrained_pipeline(TINY, device="cpu", seed=0)
    counter = CountingMSPN(pipeline, delay_s=0.02)  # a full run: about 1.8 s
    session, inputs = _session(pipeline, examples[0], 1, 0)
    updates = run_steps(pipeline, session, inputs, min_interval_s=0)  # every frame streamed
    for _ in range(4):  # the initial state, then 3 iterations
        next(updates)
    updates.close()  # what the server does on Stop or when the client leaves
    assert counter.closed == 1  # the pipeline's and the MSPN's generators are closed at once
    at_close = counter.iterations
    assert 3 <= at_close < sum(inputs.schedule) // 2  # computed ahead of the stream, a little
    time.sleep(0.2)
    assert counter.iterations == at_close  # and nothing after the close
    assert len(session.run.states) == 1 + at_close  # every state computed stays scrubbable
    assert frame_at(session, 3)[1].startswith("layer 1 · iteration 3 / ")


def test_a_run_nobody_reads_pauses_and_goes_on_when_asked(examples, monkeypatch):
    from studio import worker

    monkeypatch.setattr(worker, "AHEAD_S", 0.2)
    pipeline = build_untrained_pipeline(TINY, device="cpu", seed=0)
    counter = CountingMSPN(pipeline, delay_s=0.01)
    session, inputs = _session(pipeline, examples[0], 1, 0)
    updates = run_steps(pipeline, session, inputs, min_interval_s=0)
    next(updates)  # the page asks once, then stops reading (a stalled connection)
    paused_at = _steady(counter, quiet_s=0.3)
    assert 0 < paused_at < sum(inputs.schedule) // 2  # about 0.2 s of iterations, then waits
    frames = list(updates)  # the page reads again: the run goes on to its end and summary
    assert counter.iterations == sum(inputs.schedule)
    assert frames[-1].summary is not None
    assert counter.closed == 1


def test_closing_refine_steps_stops_the_mspn(examples):
    pipeline = build_untrained_pipeline(TINY, device="cpu", seed=0)
    counter = CountingMSPN(pipeline)
    session, inputs = _session(pipeline, examples[0], 1, 0)
    steps = pipeline.refine_steps(session.scene.image, inputs.sparse, session.scene.init_depth)
    assert [next(steps).iteration for _ in range(3)] == [0, 1, 2]  # the start, 2 iterations
    steps.close()
    assert counter.closed == 1
    assert counter.iterations == 2


# ----------------------------------------------------------------------------- the app


@pytest.fixture(scope="module")
def served(examples):
    """The app around a tiny pipeline whose MSPN iterations can be slowed down and counted."""
    gradio_client = pytest.importorskip("gradio_client")
    import app

    pipeline = build_untrained_pipeline(TINY, device="cpu", seed=0)
    counter = CountingMSPN(pipeline)
    with serve_blocks(app.build_demo(pipeline, examples=examples, frame_interval_s=0)) as url:
        yield url, pipeline, counter, gradio_client


def _client(served, example_index, n_points=1, seed=0):
    url, _, _, gradio_client = served
    client = gradio_client.Client(url, verbose=False)
    client.predict(example_index, SIDE, "random points", n_points, 16, seed,
                   api_name="/load_example")  # fmt: skip
    return client


def _submit(client, n_points=1, seed=0):
    return client.submit(None, "random points", n_points, 16, seed, False, None, api_name="/run")


def _wait_for(condition, timeout_s: float, what: str) -> float:
    start = time.perf_counter()
    while not condition():
        if time.perf_counter() - start > timeout_s:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.02)
    return time.perf_counter() - start


def _steady(counter: CountingMSPN, quiet_s: float = 0.6, started_within_s: float = 30.0) -> int:
    """The iteration count once it has not moved for `quiet_s`, after its first iteration.

    On a busy machine the run's thread may not get a core for longer than `quiet_s` before
    its first iteration; that is a slow start, not a pause (up to `started_within_s`).
    """
    deadline = time.monotonic() + started_within_s
    while counter.iterations == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    while True:
        before = counter.iterations
        time.sleep(quiet_s)
        if counter.iterations == before:
            return before


FULL_RUN_ITERATIONS = iteration_count(72, 96, 1, window=5) + 6  # 1 point: 83 + 6


@pytest.mark.e2e
def test_stop_button_cancels_the_run(served):
    import app

    config = app.build_demo(served[1], examples=[]).config
    ids = {c["props"].get("elem_id"): c["id"] for c in config["components"]}
    run = next(d for d in config["dependencies"] if d["api_name"] == "run")
    on_stop = [d for d in config["dependencies"] if (ids["stop"], "click") in d["targets"]]
    # gradio registers the click and, beside it, the cancelling dependency
    assert [d["cancels"] for d in on_stop if d["cancels"]] == [[run["id"]]]
    # its only handler, outside the queue, shows the last frame so far with its caption,
    # the scrub slider over the frames so far, Play and a note (one consistent state)
    handlers = [d for d in on_stop if d["backend_fn"]]
    assert handlers
    assert all(d["queue"] is False for d in handlers)
    names = {v: k for k, v in ids.items()}
    for handler in handlers:
        assert {"caption", "scrub", "play"} <= {names.get(o) for o in handler["outputs"]}
        assert len(handler["outputs"]) == 6  # and the frame, the metrics note and Stop itself


@pytest.mark.e2e
def test_cancelled_runs_free_their_workers(served):
    _, _, counter, _ = served
    counter.delay_s = 0.2  # a full run would take FULL_RUN_ITERATIONS x 0.2 s = 18 s
    try:
        busy = [_client(served, i) for i in range(2)]  # as many as the concurrency limit
        waiting = _client(served, 2)
        started_at, closed = counter.iterations, counter.closed
        jobs = [_submit(client) for client in busy]
        _wait_for(lambda: min(len(j.outputs()) for j in jobs) >= 3, 60, "frames")
        for job in jobs:
            job.cancel()
        _wait_for(lambda: counter.closed == closed + 2, 10, "both generators to close")
        # both stopped early: together they ran fewer iterations than one full run
        assert _steady(counter) - started_at < FULL_RUN_ITERATIONS
        assert all(job.status().code.name == "CANCELLED" for job in jobs)

        job = _submit(waiting)
        first_frame_s = _wait_for(lambda: len(job.outputs()) >= 1, 30, "a first frame")
        # Had the cancelled runs kept their workers, this would wait ~15 s for one of them.
        assert first_frame_s < 3.0
        job.cancel()
    finally:
        counter.delay_s = 0.0


LEAVING_CLIENT = textwrap.dedent(
    """
    import sys, time
    import gradio_client
    client = gradio_client.Client(sys.argv[1], verbose=False)
    client.predict(int(sys.argv[2]), 96, "random points", 1, 16, 0, api_name="/load_example")
    job = client.submit(None, "random points", 1, 16, 0, False, None, api_name="/run")
    while len(job.outputs()) < 3:
        time.sleep(0.02)
    print("streaming", flush=True)
    time.sleep(600)
    """
)


@pytest.mark.e2e
def test_clients_that_leave_free_their_workers(served):
    url, _, counter, _ = served
    counter.delay_s = 0.2
    leaving = [
        subprocess.Popen(
            [sys.executable, "-c", LEAVING_CLIENT, url, str(i)], stdout=subprocess.PIPE, text=True
        )
        for i in range(2)
    ]
    try:
        waiting = _client(served, 2)
        closed = counter.closed
        for process in leaving:  # bounded wait: a stuck client must fail, not hang
            ready, _, _ = select.select([process.stdout], [], [], 60)
            assert ready, "the leaving client never started streaming"
            assert process.stdout.readline().strip() == "streaming"
        for process in leaving:  # the tab closes: the connection drops without a word
            process.kill()
            process.wait(timeout=10)
        _wait_for(lambda: counter.closed == closed + 2, 15, "both generators to close")
        _steady(counter)
        job = _submit(waiting)
        assert _wait_for(lambda: len(job.outputs()) >= 1, 30, "a first frame") < 3.0
        job.cancel()
    finally:
        counter.delay_s = 0.0
        for process in leaving:
            process.kill()


@pytest.mark.e2e
def test_concurrent_sessions_get_their_own_results(served, examples):
    _, pipeline, _, _ = served
    inputs = [(0, 20, 11), (1, 50, 12), (2, 200, 13)]  # example, points, seed per session
    clients = [_client(served, e, n, s) for e, n, s in inputs]
    barrier = threading.Barrier(len(clients))
    results: list[Any] = [None] * len(clients)

    def session(k: int) -> None:
        barrier.wait()
        job = _submit(clients[k], *inputs[k][1:])
        job.result()
        downloads = clients[k].predict(api_name="/downloads")[DOWNLOADS_FILES]
        results[k] = (job.outputs(), clients[k].predict(1, api_name="/frame")[1], downloads)

    threads = [threading.Thread(target=session, args=(k,)) for k in range(len(clients))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert all(r is not None for r in results), "a session did not finish"

    alone = []  # the same inputs re-run alone, in this process, on the same pipeline
    for example, n_points, seed in inputs:
        session, sparse = _session(pipeline, examples[example], n_points, seed)
        steps = list(pipeline.refine_steps(session.scene.image, sparse.sparse,
                                           session.scene.init_depth))  # fmt: skip
        alone.append((steps[-1].depth, sparse.schedule))
    for k, (outputs, scrubbed, downloads) in enumerate(results):
        files = {Path(f).name: Path(f) for f in downloads}
        depth = np.load(files["refined_depth_m.npy"])
        for j, (expected, _) in enumerate(alone):
            same = depth.shape == expected.shape and np.allclose(depth, expected, atol=1e-5)
            assert same == (j == k), f"session {k} vs inputs of session {j}"
        assert json.loads(files["metrics.json"].read_text())["n_points"] == inputs[k][1]
        schedule = alone[k][1]
        assert len(outputs) == 1 + sum(schedule) + 1
        assert f"/ {schedule[0]} — " in scrubbed  # /frame reads this session's run


# ----------------------------------------------------------------------------- limits


def test_readme_limits_match_the_code():
    import app

    cpu_pipeline = build_untrained_pipeline(TINY, device="cpu", seed=0)
    config = app.build_demo(cpu_pipeline, examples=[]).config
    resolution = next(
        c["props"] for c in config["components"]
        if str(c["props"].get("label", "")).startswith("Processing resolution")
    )  # fmt: skip

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    limits = readme[readme.index("## Limits") :]
    limits = limits[: limits.index("\n## ", 1)]
    number = r"(\d[\d,]*)"

    def found(pattern: str) -> list[int]:
        match = re.search(pattern, limits)
        assert match, f"README limits lack {pattern!r}"
        return [int(g.replace(",", "")) for g in match.groups()]

    assert found(rf"upload.*?{number} MB") == [int(app.MAX_FILE_SIZE.removesuffix("mb"))]
    assert found(rf"{number} megapixels") == [io.MAX_PIXELS // 1_000_000]
    assert found(rf"long side of {number}-{number} px on CPU") == [
        resolution["minimum"],
        resolution["maximum"],
    ]
    assert resolution["minimum"] == MIN_LONG_SIDE
    assert found(rf"up to {number} px on a GPU") == [MAX_LONG_SIDE]
    assert found(rf"{number} random points") == [MAX_POINTS]
    assert found(rf"{number}-{number} LiDAR lines") == [MIN_LINES, MAX_LINES]
    assert found(rf"{number} refinements run at once") == [app.CONCURRENCY]
    assert found(rf"{number} refinements wait for a slot") == [app.RUN_QUEUE_SIZE]
    assert found(rf"expires after {number} minutes") == [app.SESSION_TTL_MIN]
