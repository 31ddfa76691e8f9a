"""G and the baselines computed before Refine (studio.prefetch): same results, less waiting."""

from __future__ import annotations

import copy
import threading
import time

import numpy as np
import pytest

from sdr_core import methods
from studio.page import Studio
from studio.prefetch import Prefetch, PrefetchSlot
from studio.run import forget
from studio.session import Session, SparseChoice, build_sparse, new_session

SPARSE = ("random points", 12, 16, 0)


def _wait(prefetch: Prefetch, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not prefetch.done():
        assert time.monotonic() < deadline, "the prefetch did not end"
        time.sleep(0.01)


def _inputs(pipe, scene, n_points=12, seed=0):
    return build_sparse(pipe, new_session(scene), SparseChoice("random points", n_points, 16, seed))


def _count_guidance(pipe, monkeypatch) -> list[int]:
    calls: list[int] = []
    forward = pipe.guidance.forward
    monkeypatch.setattr(pipe.guidance, "forward", lambda *a: calls.append(1) or forward(*a))
    return calls


def test_a_prefetch_computes_what_the_run_would(pipe, scene):
    inputs = _inputs(pipe, scene)
    prefetch = Prefetch(pipe, scene, inputs.sparse, inputs.schedule_points, delay_s=0)
    _wait(prefetch)
    expected_g = pipe.guidance_feature(scene.image, inputs.sparse, scene.init_depth)
    np.testing.assert_array_equal(prefetch.guidance().numpy(), expected_g.numpy())
    method_inputs = methods.MethodInputs(
        scene.image, inputs.sparse, scene.init_depth, inputs.schedule_points
    )
    expected = methods.predict(methods.BASELINES, pipe, method_inputs)
    baselines = prefetch.baselines()
    assert baselines.keys() == expected.keys()
    for name, depth in expected.items():
        np.testing.assert_array_equal(baselines[name], depth)


def test_nothing_is_computed_when_claimed_or_replaced_before_the_delay(pipe, scene, monkeypatch):
    calls = _count_guidance(pipe, monkeypatch)
    inputs = _inputs(pipe, scene)
    early = Prefetch(pipe, scene, inputs.sparse, inputs.schedule_points, delay_s=30)
    assert early.claim() is False  # a run came first: it computes everything itself
    slot = PrefetchSlot()
    replaced = Prefetch(pipe, scene, inputs.sparse, inputs.schedule_points, delay_s=30)
    slot.put(replaced)
    slot.put(None)  # a new plan (or a session that leaves) replaces it
    for prefetch in (early, replaced):
        _wait(prefetch, timeout_s=5)  # ends at once, not after its 30 s
        with pytest.raises(RuntimeError, match="not prefetched"):
            prefetch.guidance()
    assert calls == []


def test_the_slot_gives_a_prefetch_only_for_the_same_inputs(pipe, scene, files):
    from studio.scene import load_scene

    inputs = _inputs(pipe, scene)
    other_points = _inputs(pipe, scene, seed=1).sparse
    other_scene = load_scene(pipe, files["folder"] / "image.png", None, long_side=64)
    for sparse, where in ((other_points, scene), (inputs.sparse, other_scene)):
        slot = PrefetchSlot()
        prefetch = Prefetch(pipe, scene, inputs.sparse, inputs.schedule_points, delay_s=0)
        slot.put(prefetch)
        _wait(prefetch)
        assert slot.take(where, sparse) is None
    slot = PrefetchSlot()
    prefetch = Prefetch(pipe, scene, inputs.sparse, inputs.schedule_points, delay_s=0)
    slot.put(prefetch)
    _wait(prefetch)
    assert slot.take(scene, inputs.sparse.copy()) is prefetch
    assert slot.take(scene, inputs.sparse) is prefetch  # Refine again on the same plan
    assert slot.take(scene, other_points) is None  # another plan: dropped
    assert slot.current is None
    assert slot.take(scene, inputs.sparse) is None


def test_a_run_after_a_prefetch_is_the_run_without_it(pipe, scene, monkeypatch):
    studio = Studio(pipe, [], frame_interval_s=0)
    plain = list(studio.run(new_session(scene), None, *SPARSE, False, None))
    session = new_session(scene)
    studio.points(session, *SPARSE)  # the plan is shown: the prefetch starts
    prefetch = session.prefetched.current
    assert prefetch is not None
    _wait(prefetch)
    calls = _count_guidance(pipe, monkeypatch)
    prefetched = list(studio.run(session, None, *SPARSE, False, None))
    assert calls == []  # G came from the prefetch
    assert len(prefetched) == len(plain)
    for view, reference in zip(prefetched, plain, strict=True):
        if "frame" in view.changes:
            np.testing.assert_array_equal(view.changes["frame"], reference.changes["frame"])
            assert view.changes["caption"] == reference.changes["caption"]
    assert prefetched[-1].changes["table"] == plain[-1].changes["table"]
    again = list(studio.run(session, None, *SPARSE, False, None))  # Refine again: kept
    assert calls == []
    np.testing.assert_array_equal(again[-2].changes["frame"], plain[-2].changes["frame"])


def test_a_session_copy_gets_an_empty_slot_and_forget_clears_it(pipe, scene):
    session = new_session(scene)
    Studio(pipe, []).points(session, *SPARSE)
    assert session.prefetched.current is not None
    assert copy.deepcopy(Session()).prefetched.current is None
    forget(session)
    assert session.prefetched.current is None


def test_a_claimed_prefetch_computes_everything_even_when_replaced(pipe, scene, monkeypatch):
    # a run waits for the claimed results; a new plan meanwhile (e.g. the hole editor's
    # echo) must not leave it without its baselines
    inputs = _inputs(pipe, scene)
    started, release = threading.Event(), threading.Event()
    feature = pipe.guidance_feature

    def slow_feature(*args):
        started.set()
        release.wait(10)
        return feature(*args)

    monkeypatch.setattr(pipe, "guidance_feature", slow_feature)
    slot = PrefetchSlot()
    prefetch = Prefetch(pipe, scene, inputs.sparse, inputs.schedule_points, delay_s=0)
    slot.put(prefetch)
    assert started.wait(10)
    assert slot.take(scene, inputs.sparse) is prefetch  # claimed while G is computed
    slot.put(None)  # replaced while the work goes on
    release.set()
    assert set(prefetch.baselines()) == set(methods.BASELINES)
    assert prefetch.guidance().shape[1] == pipe.config.guidance.out_dim
