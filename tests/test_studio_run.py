"""The studio's runs: streaming, Stop, leaving a scene, the summary, downloads, teaching view."""

from __future__ import annotations

import json

import numpy as np
import pytest
from file_formats import read_ply
from PIL import Image
from studio_fixtures import H, W

from sdr_core import methods, viz
from sdr_core.data import io
from sdr_core.metrics import compute_metrics
from studio.run import (
    CLOSING_NOTE,
    TABLE_HEADERS,
    add_ablation,
    frame_at,
    point_cloud,
    recorded_frames,
    release,
    run_extras,
    run_steps,
    show_frame,
)
from studio.scene import (
    INIT_BUNDLED,
    INIT_DEPTH_ANYTHING,
    EstimatorLoader,
    default_init_source,
    init_sources,
    load_scene,
    valid_init_source,
)
from studio.session import (
    Session,
    SparseChoice,
    build_sparse,
    default_mode,
    display_factor,
    new_session,
    set_centre_hole,
    set_point_depth,
    toggle_point,
)
from studio.teaching import inspect_pixel, inspect_view
from studio.widgets import (
    plan_text,
)


# ----------------------------------------------------------------------------- the run
def _run(pipe, session, tmp_path, n_points=12, use_mask=True):
    inputs = build_sparse(pipe, session, SparseChoice("random points", n_points))
    updates = list(run_steps(pipe, session, inputs, use_mask, out_dir=tmp_path, min_interval_s=0))
    return inputs, updates


def test_run_streams_every_iteration_with_captions(pipe, session, tmp_path):
    inputs, updates = _run(pipe, session, tmp_path)
    first, second = inputs.schedule
    assert len(updates) == 1 + first + second + 1  # initial, iterations, summary
    assert updates[0].index == 0
    assert updates[0].caption.startswith("initial depth D0")
    expected = [viz.caption(1, i, first) for i in range(1, first + 1)]
    expected += [viz.caption(2, i, second) for i in range(1, second + 1)]
    assert [u.caption.split(" — ")[0] for u in updates[1:-1]] == expected
    assert all(" — RMSE " in u.caption for u in updates)  # the scene has ground truth
    assert all(u.total == 1 + first + second for u in updates)
    assert f"→ {updates[0].total} frames" in plan_text(inputs)  # the plan's count is the run's
    assert all(u.summary is None for u in updates[:-1])
    assert updates[-1].summary is not None
    shapes = {u.image.shape for u in updates}
    assert len(shapes) == 1
    assert updates[0].image.shape[1] > 3 * W
    assert len(session.run.states) == 1 + first + second
    assert [h["iteration"] for h in session.run.history[:3]] == [0, 1, 2]


def test_lidar_run_follows_the_shown_plan(pipe, session, tmp_path):
    """Lines set eq. 13 from points per line: the run must iterate exactly as planned."""
    inputs = build_sparse(pipe, session, SparseChoice("LiDAR lines", n_lines=8))
    first, second = inputs.schedule
    assert first > pipe.schedule(*inputs.sparse.shape, inputs.n_points)[0]  # differs from s
    updates = list(run_steps(pipe, session, inputs, True, out_dir=tmp_path, min_interval_s=0))
    assert len(updates) == 1 + first + second + 1
    assert updates[-2].caption.startswith(viz.caption(2, second, second) + " — RMSE")


def test_stopped_run_keeps_its_frames_scrubbable(pipe, session, tmp_path):
    """Stop closes the generator between iterations; the frames so far stay available."""
    assert recorded_frames(None) == 0
    assert recorded_frames(session) == 0
    inputs = build_sparse(pipe, session, SparseChoice("random points", 12))
    updates = run_steps(pipe, session, inputs, True, out_dir=tmp_path, min_interval_s=0)
    for _ in range(4):  # the initial frame and three iterations
        next(updates)
    updates.close()
    # the streamed frames and those computed ahead of the stream (test_reliability checks
    # that nothing is computed after the close)
    assert 4 <= recorded_frames(session) <= 1 + sum(inputs.schedule)
    image, caption = frame_at(session, 3)
    assert caption.startswith("layer 1")
    assert image.ndim == 3


def test_the_stream_skips_frames_it_has_no_time_to_show_but_records_them(pipe, scene, tmp_path):
    session = new_session(scene)
    inputs = build_sparse(pipe, session, SparseChoice("random points", 3))
    updates = list(run_steps(pipe, session, inputs, out_dir=tmp_path, min_interval_s=3600))
    total = 1 + sum(inputs.schedule)
    # the first frame, the last one, then the summary; every state is kept and can be drawn
    assert [u.index for u in updates] == [0, total - 1, total - 1]
    assert len(session.run.states) == total
    assert len(session.run.frame_metrics) == total
    image, caption = frame_at(session, total // 2)
    assert image.ndim == 3
    assert caption.startswith("layer ")


def test_stop_is_offered_only_while_a_run_goes_on(pipe, scene):
    from studio.page import Studio

    studio = Studio(pipe, [], frame_interval_s=0)
    session = new_session(scene)
    views = list(studio.run(session, None, "random points", 12, 16, 0, False, None))
    assert views[0].changes["stop_btn"].props == {"interactive": True}
    assert all("stop_btn" not in view.changes for view in views[1:-1])
    assert views[-1].changes["stop_btn"].props == {"interactive": False}  # the run ended
    assert studio.stop(session).changes == {}  # nothing to stop any more
    cleared = studio.upload(None, None, "auto (by file type)", "bundled MDE", None, 64, None,
                            session, "random points", 12, 16, 0)  # fmt: skip
    assert cleared.changes["stop_btn"].props == {"interactive": False}


def test_stop_shows_one_consistent_state_and_the_run_yields_no_more(pipe, scene, tmp_path):
    from studio.page import Studio

    studio = Studio(pipe, [], frame_interval_s=0)  # every frame streamed
    session = new_session(scene)
    views = studio.run(session, None, "random points", 12, 16, 0, False, None)
    # Stop can be pressed while a run goes on, and only then (issue 22, item 11)
    assert next(views).changes["stop_btn"].props == {"interactive": True}
    for _ in range(3):  # three more frames
        next(views)
    count = recorded_frames(session)  # at least the four shown (the stream may skip some)
    assert count >= 4
    changes = studio.stop(session).changes
    assert changes["stop_btn"].props == {"interactive": False}
    last = count - 1
    assert changes["scrub"].props == {
        "minimum": 0, "maximum": last, "value": last, "interactive": True,
    }  # fmt: skip
    assert changes["caption"] == frame_at(session, last)[1]
    assert changes["play_btn"].props["interactive"] is True
    assert f"Stopped after {count} of {session.run.total_frames} frames" in changes["metrics_note"]
    assert list(views) == []  # a frame on its way is dropped: the page keeps the stop's state
    assert recorded_frames(session) == count
    assert studio.stop(session).changes == {}  # a second Stop changes nothing


@pytest.mark.parametrize("leave", ["clear the image", "upload another", "refine again"])
def test_a_run_stops_when_its_scene_leaves(pipe, scene, files, leave):
    # Loading another scene, clearing the image or starting a new run stops the run: it
    # yields nothing more, so its frames and metrics never show under another scene.
    from studio.page import Studio

    studio = Studio(pipe, [], frame_interval_s=0)  # every frame streamed
    session = new_session(scene)
    sparse = ("random points", 12, 16, 0)
    views = studio.run(session, None, *sparse, False, None)
    for _ in range(3):
        next(views)
    record = session.run
    unit, source, side = "auto (by file type)", "bundled MDE", 64
    if leave == "clear the image":
        view = studio.upload(None, None, unit, source, None, side, None, session, *sparse)
        assert view.changes["session"].scene is None
    elif leave == "upload another":
        image = str(files["folder"] / "image.png")
        view = studio.upload(image, None, unit, source, None, side, None, session, *sparse)
        assert view.changes["session"].scene is not session.scene
    else:
        again = studio.run(session, None, *sparse, False, None)
        next(again)
        assert session.run is not record
    assert record.stopped
    assert list(views) == []  # the old run says nothing more


def test_run_problem_says_why_a_run_cannot_start(pipe, scene):
    from studio.page import LOAD_FIRST, Studio
    from studio.session import Session

    studio = Studio(pipe, [])
    assert studio.run_problem(Session(), None, "random points", 12, 16, 0, False, None) == (
        LOAD_FIRST
    )
    session = new_session(scene)
    assert studio.run_problem(session, None, "random points", 12, 16, 0, False, None) is None
    no_points = studio.run_problem(session, None, "clicks only", 12, 16, 0, False, None)
    assert no_points.startswith("There are no depth points to propagate")


def test_verdict_says_when_the_refinement_made_d0_worse():
    from studio.run import verdict_note

    def row(rmse):
        return {"whole image": {"rmse": rmse}}

    worse = {"MSPN": row(0.502), "MDE only (D0)": row(0.236), "LS + IDW residuals": row(0.2)}
    text = verdict_note(worse, "mspn")
    assert text.startswith("MSPN is worse than D0 here: 0.502 vs 0.236 m RMSE.")
    assert "behind the best classical method, LS + IDW residuals (0.200 m)" in text
    better = {"MSPN": row(0.1), "MDE only (D0)": row(0.236), "LS + IDW residuals": row(0.2)}
    assert verdict_note(better, "mspn").startswith("MSPN improves on D0: 0.236 → 0.100 m")
    assert "ahead of the best classical method" in verdict_note(better, "mspn")
    assert verdict_note({}, "mspn") == ""  # no ground truth, nothing to say


def test_finished_run_note_carries_the_verdict(pipe, session, tmp_path):
    _, updates = _run(pipe, session, tmp_path)
    note = updates[-1].summary.note
    assert " than D0 here: " in note or "improves on D0" in note


def test_run_keeps_measurements_and_matches_the_pipeline(pipe, session, tmp_path):
    inputs, _ = _run(pipe, session, tmp_path)
    final = session.run.states[-1].depth
    reference = pipe.refine(session.scene.image, inputs.sparse, session.scene.init_depth)
    np.testing.assert_allclose(final, reference.depth, rtol=1e-5, atol=1e-5)
    measured = inputs.sparse > 0
    np.testing.assert_array_equal(final[measured], inputs.sparse[measured])


def test_run_summary_table_has_baselines_ablation_and_hole(pipe, session, tmp_path):
    holed = set_centre_hole(session)
    _, updates = _run(pipe, holed, tmp_path, n_points=60)
    summary = updates[-1].summary
    rows = {row[0] for row in summary.table}
    assert rows == {"MSPN", "MDE only (D0)", "LS scale + shift", "LS + IDW residuals",
                    "Edge-aware log-ratio (Levin 2004)", "LS + IDW + joint bilateral"}  # fmt: skip
    assert {row[1] for row in summary.table} == {"whole image", "hole"}
    assert all(len(row) == len(TABLE_HEADERS) for row in summary.table)
    assert summary.iteration_figure is not None
    with_ablation = add_ablation(pipe, holed)
    assert {row[0] for row in with_ablation.table} == rows | {"MSPN w/o mask"}
    assert {row[1] for row in with_ablation.table} == {"whole image", "hole"}
    final = holed.run.states[-1].depth
    cloud = point_cloud(holed).data[0]  # every pixel, depth on the y axis
    np.testing.assert_allclose(np.sort(cloud.y), np.sort(final.ravel()), rtol=1e-6)
    assert holed.run.hole_history
    assert holed.run.hole is not None


def test_the_table_is_the_library_method_table(pipe, session, tmp_path):
    # labels and predictions of sdr_core.methods, on the run's own D0 and S
    inputs, updates = _run(pipe, session, tmp_path)
    summary = updates[-1].summary
    labels = [methods.METHODS[name].label for name in ("mspn", *methods.BASELINES)]
    assert [row[0] for row in summary.table] == labels
    scene = session.scene
    method_inputs = methods.MethodInputs(
        scene.image, inputs.sparse, scene.init_depth, inputs.schedule_points
    )
    idw = methods.predict(["ls_interp"], pipe, method_inputs)["ls_interp"]
    expected = compute_metrics(idw, scene.gt)["rmse"]
    assert summary.metrics["LS + IDW residuals"]["whole image"]["rmse"] == pytest.approx(expected)


def test_no_mask_run_swaps_the_rows_and_fixes_the_mask(pipe, session, tmp_path):
    _, updates = _run(pipe, session, tmp_path, use_mask=False)
    assert all((state.mask == 1).all() for state in session.run.states)
    assert updates[-1].summary.table[0][0] == "MSPN w/o mask"
    assert "MSPN" not in {row[0] for row in updates[-1].summary.table}
    assert "MSPN" in {row[0] for row in add_ablation(pipe, session).table}


def _clicked_run(pipe, files, tmp_path, depth_m):
    """A run of the scene without ground truth from one clicked point at (3, 4)."""
    scene = load_scene(pipe, files["folder"] / "image.png", long_side=64)
    state, _ = toggle_point(new_session(scene), SparseChoice("clicks only"), 3, 4)
    state = set_point_depth(state, depth_m)
    inputs = build_sparse(pipe, state, SparseChoice("clicks only"))
    return state, list(run_steps(pipe, state, inputs, out_dir=tmp_path, min_interval_s=0))


def test_run_without_ground_truth_hides_error_and_metrics(pipe, files, tmp_path):
    state, updates = _clicked_run(pipe, files, tmp_path, 2.0)
    assert all(u.metrics is None for u in updates)
    first = state.run.states[0]
    two_panels = viz.refinement_frame(first.depth, first.mask, "t", state.run.depth_range)
    assert updates[0].image.shape == two_panels.shape  # depth | mask, no error panel
    summary = updates[-1].summary
    assert summary.table == []
    assert summary.iteration_figure is None
    files = {f.name for f in run_extras(state).files}
    assert files >= {"refined_depth_mm.png", "point_cloud.ply"}
    with pytest.raises(ValueError, match="needs ground truth"):
        add_ablation(pipe, state)


def test_run_with_zero_points_says_how_to_add_some(pipe, session):
    inputs = build_sparse(pipe, session, SparseChoice("clicks only"))
    with pytest.raises(ValueError, match="no depth points to propagate"):
        next(run_steps(pipe, session, inputs))


def test_downloads_are_valid_files(pipe, session, tmp_path):
    _, updates = _run(pipe, session, tmp_path)
    files = {f.name: f for f in run_extras(session).files}
    assert {"mspn_animation.gif", "refined_depth_mm.png", "refined_depth_m.npy",
            "refined_depth_color.png", "point_cloud.ply", "metrics.json"} <= set(files)  # fmt: skip
    assert run_extras(session).files == list(files.values())  # made once
    final = session.run.states[-1].depth
    with Image.open(files["refined_depth_mm.png"]) as png:
        assert png.size == (W, H)
        assert png.mode.startswith("I")
    np.testing.assert_allclose(io.read_depth(files["refined_depth_mm.png"]).depth, final, atol=6e-4)
    np.testing.assert_array_equal(np.load(files["refined_depth_m.npy"]), final)
    points, colours = read_ply(files["point_cloud.ply"])
    assert points.shape == (H * W, 3)
    assert colours.shape == (H * W, 3)
    report = json.loads(files["metrics.json"].read_text())
    assert report["n_points"] == 12
    assert report["metrics"]["MSPN"]["whole image"]["rmse"] > 0
    with Image.open(files["mspn_animation.gif"]) as gif:
        assert gif.is_animated
        assert gif.size == updates[0].image.shape[1::-1]


def test_frame_at_rerenders_and_clamps(pipe, session, tmp_path):
    _, updates = _run(pipe, session, tmp_path)
    image, caption = frame_at(session, 3)
    np.testing.assert_array_equal(image, updates[3].image)
    assert caption == updates[3].caption
    assert frame_at(session, 10_000)[1] == updates[-1].caption
    with pytest.raises(ValueError, match="Run the refinement first"):
        frame_at(new_session(session.scene), 0)


def test_release_removes_only_owned_download_folders(pipe, session, tmp_path):
    inputs = build_sparse(pipe, session, SparseChoice("random points", 12))
    list(run_steps(pipe, session, inputs))  # owns a temporary folder
    owned = session.run.out_dir
    assert owned.is_dir()
    list(run_steps(pipe, session, inputs, out_dir=tmp_path))  # replaces the run
    assert not owned.exists()
    assert tmp_path.is_dir()
    release(session)
    assert tmp_path.is_dir()  # not ours to delete


def test_forget_empties_a_dropped_session_and_its_folder(pipe, session):
    # The server drops a session (closed tab, expired): nothing of its run stays reachable
    # through the object, which Gradio may hold a moment longer, and its downloads go.
    from studio.run import forget

    inputs = build_sparse(pipe, session, SparseChoice("random points", 12))
    list(run_steps(pipe, session, inputs))
    folder = session.run.out_dir
    forget(session)
    assert session.run is None
    assert session.scene is None
    assert not folder.exists()
    forget(None)  # a session that never got a value


def test_closing_work_is_announced_and_the_ablation_waits_until_asked(
    pipe, session, tmp_path, monkeypatch
):
    calls = []
    original = type(pipe).refine

    def counted(self, *args, **kwargs):
        calls.append(kwargs.get("use_mask"))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(type(pipe), "refine", counted)
    _, updates = _run(pipe, session, tmp_path)
    assert updates[-2].note == CLOSING_NOTE  # the last frame says work goes on
    assert updates[-2].summary is None
    assert all(u.note == "" for u in updates[:-2])
    assert calls == []  # no second refinement before the user asks
    assert session.run.extras is None  # nor downloads: they come after the page is complete
    assert not updates[-1].summary.has_ablation
    summary = add_ablation(pipe, session)
    assert calls == [False]
    assert summary.has_ablation
    assert add_ablation(pipe, session) is summary  # once per run
    assert calls == [False]


def test_scrubbed_frames_keep_their_metrics_and_set_the_frame_on_screen(pipe, session, tmp_path):
    _, updates = _run(pipe, session, tmp_path)
    assert session.frame == len(updates) - 2  # the run ends on its last frame
    index, image, caption = show_frame(session, 3)
    assert (index, session.frame) == (3, 3)
    assert caption == updates[3].caption
    assert " — RMSE " in caption
    np.testing.assert_array_equal(image, updates[3].image)
    assert show_frame(session, 10_000)[0] == len(updates) - 2  # clamped
    assert session.frame == len(updates) - 2


def test_run_note_and_metrics_json_name_the_typed_depth(pipe, files, tmp_path):
    state, updates = _clicked_run(pipe, files, tmp_path, 0.4)
    assert "clicked: (x=3, y=4) S = 0.400 m" in updates[-1].summary.note
    metrics = next(f for f in run_extras(state).files if f.name == "metrics.json")
    assert json.loads(metrics.read_text())["clicked_points"] == [
        {"x": 3, "y": 4, "depth_m": pytest.approx(0.4)}
    ]


def test_scenes_without_ground_truth_start_with_clicks(pipe, files, scene):
    bare = load_scene(pipe, files["folder"] / "image.png", long_side=64)
    assert default_mode(bare, "random points") == "clicks only"
    assert default_mode(scene, "clicks only") == "random points"
    assert default_mode(scene, "LiDAR lines") == "LiDAR lines"


def test_simulated_initial_depth_needs_ground_truth_and_follows_its_quality(pipe, files, scene):
    folder = files["folder"]
    gt = scene.gt
    good = load_scene(
        pipe, folder / "image.png", folder / "depth_mm.png", long_side=64,
        simulated_quality="metric",
    )  # fmt: skip
    poor = load_scene(
        pipe, folder / "image.png", folder / "depth_mm.png", long_side=64,
        simulated_quality="harsh",
    )  # fmt: skip
    assert good.init_source == "good metric MDE (simulated from ground truth)"
    assert poor.init_source == "poor MDE (simulated from ground truth)"
    valid = gt > 0

    def rmse(d0):
        return float(np.sqrt(np.mean((d0[valid] - gt[valid]) ** 2)))

    assert rmse(good.init_depth) < rmse(poor.init_depth)
    assert rmse(good.init_depth) < rmse(scene.init_depth)  # better than the bundled MDE here
    again = load_scene(
        pipe, folder / "image.png", folder / "depth_mm.png", long_side=64,
        simulated_quality="metric",
    )  # fmt: skip
    np.testing.assert_array_equal(again.init_depth, good.init_depth)  # one fixed draw
    bare = load_scene(pipe, folder / "image.png", long_side=64, simulated_quality="metric")
    assert bare.init_source.startswith("bundled MDE")
    assert any("needs ground truth" in note for note in bare.notes)
    assert init_sources({}, has_gt=True) == [
        "bundled MDE",
        "good metric MDE (simulated from ground truth)",
        "poor MDE (simulated from ground truth)",
    ]
    assert init_sources({}, has_gt=False) == ["bundled MDE"]  # no file, no such choice
    assert init_sources({}, uploaded=True) == ["bundled MDE", "uploaded initial depth"]
    assert valid_init_source("poor MDE (simulated from ground truth)", {}, False) == ("bundled MDE")
    assert valid_init_source("uploaded initial depth", {}, False) == "bundled MDE"


def test_an_uploaded_initial_depth_is_offered_and_used_once_there(pipe, files):
    # Issue 22, item 11: "uploaded initial depth" is no choice before a file is uploaded;
    # uploading one selects and uses it, clearing it goes back to the MDE.
    from studio.page import Studio

    studio = Studio(pipe, [], frame_interval_s=0)
    folder = files["folder"]
    image, gt = str(folder / "image.png"), str(folder / "depth_mm.png")
    common = ("auto (by file type)", "bundled MDE")
    rest = (64, None, Session(), "random points", 12, 16, 0)
    before = studio.upload(image, gt, *common, None, *rest).changes["init_source"].props
    assert "uploaded initial depth" not in before["choices"]
    assert "uploaded initial depth" not in studio.init_choices()[0]
    view = studio.init_file(image, gt, *common, str(folder / "init.npy"), *rest)
    offered = view.changes["init_source"].props
    assert "uploaded initial depth" in offered["choices"]
    assert offered["value"] == "uploaded initial depth"
    np.testing.assert_array_equal(view.changes["session"].scene.init_depth, 2.5)
    cleared = studio.init_file(image, gt, *common[:1], "uploaded initial depth", None, *rest)
    props = cleared.changes["init_source"].props
    assert "uploaded initial depth" not in props["choices"]
    assert props["value"] == "bundled MDE"
    assert cleared.changes["session"].scene.init_source.startswith("bundled MDE")


def test_estimator_loader_never_blocks_and_offers_what_loaded():
    import threading

    release_it = threading.Event()
    fake = object()
    notes_seen = []

    def slow_load():
        release_it.wait(10)
        return {INIT_DEPTH_ANYTHING: fake}, ("a note",)

    loader = EstimatorLoader(slow_load, notes_seen.extend).start()
    assert dict(loader.available()) == {}  # still loading: nothing offered, nobody waits
    assert default_init_source(loader.available()) == INIT_BUNDLED
    release_it.set()
    assert loader.wait(10)
    assert dict(loader.available()) == {INIT_DEPTH_ANYTHING: fake}
    assert default_init_source(loader.available()) == INIT_DEPTH_ANYTHING
    assert notes_seen == ["a note"]

    def broken():
        raise RuntimeError("no network")

    failed = EstimatorLoader(broken).start()
    assert failed.wait(10)
    assert dict(failed.available()) == {}


# ----------------------------------------------------------------------------- teaching view
def test_inspect_pixel_matches_the_stored_next_state(pipe, session, tmp_path):
    _run(pipe, session, tmp_path)
    states = session.run.states
    for index in (1, 4, len(states) - 6, len(states) - 1):  # layer 2 starts at -6
        inspection = inspect_pixel(pipe, session, index, 17, 11)
        window = inspection.window
        assert window.weights.shape == (5, 5)
        assert window.weights.sum() == pytest.approx(1.0, abs=1e-5)
        assert window.depth_after == pytest.approx(float(states[index].depth[11, 17]), abs=1e-4)
        assert window.mask_after == pytest.approx(float(states[index].mask[11, 17]), abs=1e-5)
        assert "pixel (x=17, y=11)" in inspection.text
    assert session.run.guidance is not None  # computed once, then cached


def test_inspect_pixel_in_the_ratio_domain_matches_the_stored_next_state(pipe, scene, tmp_path):
    # weights that propagate log(D / D0): the teaching view shows metres and says so
    ratio = pipe.with_mspn_config(domain="ratio")
    session = new_session(scene)
    _run(ratio, session, tmp_path)
    states = session.run.states
    for index in (1, len(states) - 1):
        inspection = inspect_pixel(ratio, session, index, 17, 11)
        assert inspection.window.domain == "ratio"
        assert inspection.window.depth_after == pytest.approx(
            float(states[index].depth[11, 17]), rel=1e-4
        )
        assert "log(D / D0)" in inspection.text


def test_inspect_view_outlines_the_window(pipe, session, tmp_path):
    _run(pipe, session, tmp_path)
    plain = inspect_view(session.scene, session.run, 2)
    inspection = inspect_pixel(pipe, session, 2, 0, 0)
    assert inspection.image.shape == plain.shape
    factor = display_factor(session.scene.shape)
    changed = np.argwhere((inspection.image != plain).any(axis=2)) // factor
    assert changed.max(axis=0).tolist() == [4, 4]  # window of the corner pixel: rows/cols 0-4


def test_inspect_needs_a_run(pipe, session):
    with pytest.raises(ValueError, match="Run the refinement first"):
        inspect_pixel(pipe, session, 0, 1, 1)


def test_every_event_has_one_output_list_and_its_views_stay_inside_it():
    from studio.page import OUTPUTS, Studio, View, check_view

    assert all(callable(getattr(Studio, event, None)) for event in OUTPUTS)
    assert check_view("points", View({"plan_md": "x"})).changes == {"plan_md": "x"}
    with pytest.raises(RuntimeError, match=r"Studio.points changed \['frame'\]"):
        check_view("points", View({"frame": None}))


def test_leaving_waits_until_the_stream_of_a_stopped_run_has_closed(pipe, session):
    # A frame the page's stream yielded just before the scene left may still be on its way;
    # release() returns only once the stream has closed (it closes when asked for the next
    # frame), so the new scene's update goes out after that frame, never under it.
    import threading
    import time

    from studio import run as run_module

    inputs = build_sparse(pipe, session, SparseChoice("random points", 12))
    updates = run_steps(pipe, session, inputs)
    next(updates)
    record = session.run
    record.streaming = True
    closer = threading.Timer(0.2, lambda: setattr(record, "streaming", False))
    closer.start()
    start = time.monotonic()
    run_module.release(session)
    waited = time.monotonic() - start
    assert record.stopped
    assert 0.15 < waited < run_module.STREAM_CLOSE_WAIT_S
    record.streaming, record.stopped = True, False  # a stream that never closes
    start = time.monotonic()
    run_module.release(session)
    assert time.monotonic() - start >= run_module.STREAM_CLOSE_WAIT_S  # bounded wait


def test_the_point_cloud_is_sent_only_to_a_page_that_shows_it(pipe, scene):
    # 60,000 coloured points are MBs a browser keeps: sent after every run to a page that
    # never opens the tab, they made later runs slower (issue 22)
    from studio.page import CLOUD_TAB, Studio

    studio = Studio(pipe, [], frame_interval_s=0)
    session = new_session(scene)
    assert studio.result_tab(session, CLOUD_TAB).changes == {"cloud_open": True}  # no run yet
    list(studio.run(session, None, "random points", 12, 16, 0, False, None))
    closed = studio.downloads(session, False).changes
    assert "cloud" not in closed
    assert closed["files"]
    assert session.run.point_cloud is None  # not even made
    assert studio.result_tab(session, "Metrics").changes == {"cloud_open": False}
    opened = studio.result_tab(session, CLOUD_TAB).changes
    assert opened["cloud_open"] is True
    final = session.run.states[-1].depth
    np.testing.assert_allclose(np.sort(opened["cloud"].data[0].y), np.sort(final.ravel()))
    list(studio.run(session, None, "random points", 20, 16, 0, False, None))  # tab still open
    changes = studio.downloads(session, True).changes
    assert changes["cloud"] is session.run.point_cloud is point_cloud(session)  # made once
    final = session.run.states[-1].depth
    np.testing.assert_allclose(np.sort(changes["cloud"].data[0].y), np.sort(final.ravel()))
