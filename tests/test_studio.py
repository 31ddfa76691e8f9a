"""studio: the app's logic without a browser, on a tiny untrained pipeline."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import h5py
import numpy as np
import pytest
from file_formats import read_ply
from helpers import TINY
from PIL import Image

from sdr_core import build_untrained_pipeline, methods, viz
from sdr_core.data import io
from sdr_core.metrics import compute_metrics
from sdr_core.mspn import iteration_schedule
from studio.run import (
    CLOSING_NOTE,
    TABLE_HEADERS,
    add_ablation,
    frame_at,
    recorded_frames,
    release,
    run_extras,
    run_steps,
    show_frame,
)
from studio.scene import (
    INIT_BUNDLED,
    INIT_DEPTH_ANYTHING,
    MAX_LONG_SIDE,
    MIN_LONG_SIDE,
    EstimatorLoader,
    default_init_source,
    init_sources,
    load_example,
    load_examples,
    load_scene,
    processing_size,
    valid_init_source,
)
from studio.session import (
    MAX_POINTS,
    Session,
    SparseChoice,
    build_sparse,
    default_mode,
    display_factor,
    new_session,
    no_points_message,
    points_preview,
    set_centre_hole,
    set_hole,
    set_point_depth,
    toggle_point,
)
from studio.teaching import inspect_pixel, inspect_view
from studio.widgets import (
    hole_from_layers,
    hole_layer,
    plan_text,
    points_from_slider,
    scene_text,
    slider_from_points,
    to_processing,
    unit_choice,
)

H, W = 30, 40


@pytest.fixture(scope="module")
def pipe():
    return build_untrained_pipeline(TINY, device="cpu", seed=0)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A 30 x 40 image with GT in every format the app reads."""
    folder = tmp_path_factory.mktemp("scene")
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    gt = (1.0 + 4.0 * rng.random((H, W))).astype(np.float32)
    gt[0, :5] = 0.0  # a few missing pixels
    Image.fromarray(rgb).save(folder / "image.png")
    io.write_depth_png(folder / "depth_mm.png", gt, units="mm")
    io.write_depth_png(folder / "depth_kitti.png", gt, units="kitti")
    np.save(folder / "depth.npy", gt)
    np.save(folder / "zeros.npy", np.zeros((H, W), np.float32))
    np.save(folder / "small.npy", gt[:20])
    Image.fromarray((gt * 40).astype(np.uint8)).save(folder / "depth_8bit.png")
    (folder / "broken.png").write_bytes(b"not an image at all")
    with h5py.File(folder / "nyu.h5", "w") as h5:
        h5["rgb"] = np.transpose(rgb, (2, 0, 1))
        h5["depth"] = gt
    np.save(folder / "init.npy", np.full((H, W), 2.5, np.float32))
    return {"folder": folder, "rgb": rgb, "gt": gt}


@pytest.fixture
def scene(pipe, files):
    folder = files["folder"]
    return load_scene(pipe, folder / "image.png", folder / "depth_mm.png", long_side=64)


@pytest.fixture
def session(scene):
    return new_session(scene)


# ----------------------------------------------------------------------------- sizes
def test_processing_size_keeps_aspect_and_never_upscales():
    assert processing_size(480, 640, 304) == (228, 304)
    assert processing_size(640, 480, 304) == (304, 228)
    assert processing_size(100, 120, 304) == (100, 120)


@pytest.mark.parametrize("long_side", [MIN_LONG_SIDE - 1, MAX_LONG_SIDE + 1])
def test_processing_size_bounds_the_long_side(long_side):
    with pytest.raises(ValueError, match="processing resolution"):
        processing_size(480, 640, long_side)


def test_processing_size_refuses_too_thin_images():
    with pytest.raises(ValueError, match="narrower than the 13x13 MSPN window"):
        processing_size(20, 2000, 304)


@pytest.mark.parametrize(("height", "width"), [(1, 1), (12, 400)])
def test_images_smaller_than_the_window_say_so_not_resolution(height, width):
    with pytest.raises(ValueError, match=rf"{width}x{height} pixels, smaller than the 13x13") as e:
        processing_size(height, width, 304)
    assert "resolution" not in str(e.value)  # a larger resolution would not help
    assert "never upscaled" in str(e.value)


def test_click_mapping_undoes_the_display_upscaling():
    assert display_factor((228, 304)) == 2
    assert display_factor((480, 640)) == 1
    assert to_processing([0, 0], 2, (228, 304)) == (0, 0)
    assert to_processing([607.9, 455.2], 2, (228, 304)) == (303, 227)
    assert to_processing([99, 51], 2, (228, 304)) == (49, 25)
    assert to_processing([5000, -3], 2, (228, 304)) == (303, 0)  # clamped


def test_log_points_slider_round_trip():
    assert points_from_slider(0) == 1
    assert points_from_slider(2) == 100
    assert points_from_slider(9) == MAX_POINTS
    for n in (1, 7, 100, 1234, 5000):
        assert abs(points_from_slider(slider_from_points(n)) - n) <= 0.012 * n


# ----------------------------------------------------------------------------- loading
@pytest.mark.parametrize(
    ("name", "units"),
    [("depth_mm.png", None), ("depth_kitti.png", "kitti"), ("depth.npy", None), ("depth.npy", "m")],
)
def test_load_scene_reads_ground_truth_in_metres(pipe, files, name, units):
    folder = files["folder"]
    scene = load_scene(pipe, folder / "image.png", folder / name, units=units, long_side=64)
    assert scene.shape == (H, W)
    assert scene.original_size == (H, W)
    tolerance = 1 / 256 if units == "kitti" else 1e-3  # quantisation of the file format
    np.testing.assert_allclose(scene.gt, files["gt"], atol=tolerance)
    assert scene.init_depth.shape == (H, W)
    assert (scene.init_depth > 0).all()
    np.testing.assert_array_equal(scene.image, files["rgb"])


def test_load_scene_reads_nyu_h5_holding_both(pipe, files):
    scene = load_scene(pipe, files["folder"] / "nyu.h5", long_side=64)
    np.testing.assert_array_equal(scene.image, files["rgb"])
    np.testing.assert_allclose(scene.gt, files["gt"])


def test_load_scene_resizes_image_gt_and_camera(pipe, tmp_path):
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 256, (96, 128, 3), dtype=np.uint8)).save(tmp_path / "i.png")
    gt = rng.choice([1.0, 2.0, 3.0], size=(96, 128)).astype(np.float32)
    np.save(tmp_path / "d.npy", gt)
    scene = load_scene(
        pipe, tmp_path / "i.png", tmp_path / "d.npy", long_side=64, intrinsics=(80, 80, 64, 48)
    )
    assert scene.shape == (48, 64)
    assert scene.gt.shape == (48, 64)
    assert set(np.unique(scene.gt)) <= {1.0, 2.0, 3.0}  # nearest: no blending across edges
    assert scene.intrinsics[0] == pytest.approx(40.0)
    assert scene.original_size == (96, 128)


def test_load_scene_without_ground_truth_assumes_a_camera(pipe, files):
    scene = load_scene(pipe, files["folder"] / "image.png", long_side=64)
    assert scene.gt is None
    assert any("intrinsics assumed" in note for note in scene.notes)
    assert "ground truth: no" in scene_text(scene)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("small.npy", "must be the same size"),
        ("zeros.npy", "has no valid depth"),
        ("depth_8bit.png", "8-bit PNG cannot hold metric depth"),
        ("broken.png", "broken.png"),
    ],
)
def test_bad_ground_truth_is_ignored_with_a_note(pipe, files, name, reason):
    scene = load_scene(pipe, files["folder"] / "image.png", files["folder"] / name)
    assert scene.gt is None
    assert any(note.startswith("Ground truth ignored") and reason in note for note in scene.notes)


def test_unreadable_image_raises_a_plain_message(pipe, files):
    with pytest.raises(ValueError, match=r"broken\.png: not a readable image"):
        load_scene(pipe, files["folder"] / "broken.png")


def _png_header_only(path: Path, width: int, height: int) -> None:
    """A PNG whose header claims width x height (valid CRC) but holds no pixel data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 16)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )


def test_gigantic_image_is_refused_before_decoding(pipe, tmp_path):
    _png_header_only(tmp_path / "huge.png", 20_000, 10_000)
    with pytest.raises(ValueError, match="exceeds the limit of 40 megapixels"):
        load_scene(pipe, tmp_path / "huge.png")


def test_uploaded_initial_depth_replaces_the_mde(pipe, files):
    folder = files["folder"]
    scene = load_scene(pipe, folder / "image.png", init_depth_path=folder / "init.npy")
    np.testing.assert_array_equal(scene.init_depth, np.full((H, W), 2.5, np.float32))
    assert scene.init_source.startswith("uploaded")
    with pytest.raises(ValueError, match="must have the image's size"):
        load_scene(pipe, folder / "image.png", init_depth_path=folder / "small.npy")
    with pytest.raises(ValueError, match="no valid depth"):
        load_scene(pipe, folder / "image.png", init_depth_path=folder / "zeros.npy")


def test_examples_json_and_middlebury(pipe, files, tmp_path):
    folder = files["folder"]
    entries = [
        {"name": "a", "title": "Scene A", "description": "d", "image": str(folder / "image.png"),
         "depth": str(folder / "depth_mm.png"), "intrinsics": [40, 40, 20, 15]},
        {"name": "gone", "image": "missing.png"},
    ]  # fmt: skip
    (tmp_path / "examples.json").write_text(json.dumps(entries))
    examples = load_examples(tmp_path, scratch_dir=tmp_path / "scratch")
    assert [e.name for e in examples] == ["a", "middlebury_motorcycle"]
    assert examples[0].intrinsics == (40.0, 40.0, 20.0, 15.0)
    scene = load_example(pipe, examples[1], long_side=96)
    assert scene.shape == (65, 96)
    assert scene.gt is not None
    assert scene.name == "Middlebury Motorcycle"


def test_example_units_come_from_the_json(pipe, files, tmp_path):
    folder = files["folder"]
    entries = [
        {"name": "k", "image": str(folder / "image.png"), "depth": str(folder / "depth_kitti.png"),
         "depth_units": "kitti"},
        {"name": "bad", "image": str(folder / "image.png"), "depth_units": "furlongs"},
    ]  # fmt: skip
    (tmp_path / "examples.json").write_text(json.dumps(entries))
    examples = load_examples(tmp_path, middlebury=False)
    assert [e.name for e in examples] == ["k"]
    assert unit_choice(examples[0].units) == "KITTI (16-bit PNG / 256)"
    scene = load_example(pipe, examples[0], long_side=64)
    np.testing.assert_allclose(scene.gt, files["gt"], atol=1 / 256)


def test_bundled_examples_load(pipe):
    assets = Path(__file__).parents[1] / "assets"
    if not (assets / "examples.json").is_file():
        pytest.skip("assets/examples.json has not been generated")
    examples = load_examples(assets, middlebury=False)
    assert examples
    for example in examples:
        assert example.image.is_file()
        assert example.depth is not None
        assert example.depth.is_file()
    scene = load_example(pipe, examples[0], long_side=64)
    assert scene.gt is not None


def test_examples_without_json_still_offer_middlebury(tmp_path):
    examples = load_examples(tmp_path / "nothing", scratch_dir=tmp_path / "scratch")
    assert [e.name for e in examples] == ["middlebury_motorcycle"]
    assert io.read_depth(examples[0].depth).depth.max() > 2.0


# ----------------------------------------------------------------------------- sparse depth
def test_build_sparse_random_points_and_plan(pipe, session):
    inputs = build_sparse(pipe, session, SparseChoice("random points", 25, seed=3))
    assert inputs.n_points == 25
    assert inputs.n_in_hole == 0
    assert inputs.schedule == iteration_schedule(H, W, 25, TINY.mspn)
    measured = inputs.sparse > 0
    np.testing.assert_allclose(inputs.sparse[measured], session.scene.gt[measured])
    text = plan_text(inputs)
    assert "**25 depth points**" in text
    assert f"layer 1 = **{inputs.schedule[0]}**" in text
    assert f"→ {1 + sum(inputs.schedule)} frames" in text  # D0 is a frame too


def test_build_sparse_lidar_lines(pipe, session):
    inputs = build_sparse(pipe, session, SparseChoice("LiDAR lines", n_lines=8))
    rows = np.unique(np.nonzero(inputs.sparse)[0])
    assert inputs.n_points > 0
    assert rows.size < H


def test_build_sparse_without_ground_truth_explains_itself(pipe, files):
    scene = load_scene(pipe, files["folder"] / "image.png", long_side=64)
    inputs = build_sparse(pipe, new_session(scene), SparseChoice())
    assert inputs.n_points == 0
    assert inputs.schedule == (0, 0)
    assert "only clicked points are used (click the image" in plan_text(inputs)
    assert "no depth points" in no_points_message(inputs)


def test_too_many_points_are_capped_with_a_note(pipe, session):
    inputs = build_sparse(pipe, session, SparseChoice("random points", 5000))
    assert inputs.n_points == int((session.scene.gt > 0).sum())
    assert any("returning all of them" in note for note in inputs.notes)


def test_hole_drops_points_and_is_counted(pipe, session):
    choice = SparseChoice("random points", 200)
    holed = set_centre_hole(session)
    inputs = build_sparse(pipe, holed, choice)
    assert inputs.n_in_hole > 0
    assert inputs.n_points + inputs.n_in_hole == 200
    assert not inputs.sparse[holed.hole].any()
    assert "dropped by the hole" in plan_text(inputs)


def test_hole_covering_everything_names_the_hole(pipe, session):
    everything = set_hole(session, np.ones(session.scene.shape, bool))
    inputs = build_sparse(pipe, everything, SparseChoice("random points", 10))
    assert inputs.n_points == 0
    assert "The hole covers all 10 depth points" in no_points_message(inputs)
    with pytest.raises(ValueError, match="The hole covers all"):
        next(run_steps(pipe, everything, inputs))


def test_set_hole_checks_the_shape(session):
    with pytest.raises(ValueError, match="the hole mask is 3x2"):
        set_hole(session, np.ones((2, 3), bool))
    assert set_hole(session, np.zeros(session.scene.shape, bool)).hole is None


def test_hole_layer_round_trips_through_the_editor_format():
    hole = np.zeros((15, 20), bool)
    hole[3:9, 4:15] = True
    layer = hole_layer(hole, factor=3)
    assert layer.shape == (45, 60, 4)
    np.testing.assert_array_equal(hole_from_layers([layer], (15, 20)), hole)
    assert hole_from_layers([np.zeros((45, 60, 4), np.uint8)], (15, 20)) is None
    assert hole_from_layers(None, (15, 20)) is None


def test_a_brush_stroke_must_cover_half_a_processing_pixel():
    layer = np.zeros((45, 60, 4), np.uint8)
    layer[15, :, 3] = 255  # one display row = a third of processing row 5 at factor 3
    assert hole_from_layers([layer], (15, 20)) is None
    layer[16, :, 3] = 255  # two thirds
    hole = hole_from_layers([layer], (15, 20))
    assert hole[5].all()
    assert hole.sum() == 20


# ----------------------------------------------------------------------------- clicks
def test_click_adds_a_gt_point_and_a_second_click_removes_it(pipe, session):
    choice = SparseChoice("clicks only")
    added, message = toggle_point(session, choice, 10, 12)
    assert "from GT" in message
    assert added.clicks == {(10, 12): None}
    inputs = build_sparse(pipe, added, choice)
    assert inputs.n_points == 1
    assert inputs.sparse[12, 10] == session.scene.gt[12, 10]
    removed, message = toggle_point(added, choice, 11, 13)  # within the pick radius
    assert message.startswith("Removed")
    assert removed.clicks == {}


def test_click_removes_a_generated_point(pipe, session):
    choice = SparseChoice("random points", 5, seed=1)
    y, x = np.argwhere(build_sparse(pipe, session, choice).sparse > 0)[0]
    updated, message = toggle_point(session, choice, int(x), int(y))
    assert message.startswith("Removed")
    assert (int(x), int(y)) in updated.removed
    assert build_sparse(pipe, updated, choice).n_points == 4


def test_click_without_gt_uses_the_estimate_then_the_typed_depth(pipe, files):
    scene = load_scene(pipe, files["folder"] / "image.png", long_side=64)
    state = new_session(scene)
    choice = SparseChoice("clicks only")
    state, message = toggle_point(state, choice, 5, 6)
    assert "type its measured depth" in message
    assert state.selected == (5, 6)
    assert state.clicks[(5, 6)] == pytest.approx(scene.init_depth[6, 5])
    state = set_point_depth(state, 3.25)
    assert build_sparse(pipe, state, choice).sparse[6, 5] == pytest.approx(3.25)
    for bad in (None, 0.0, -1.0, float("nan"), 5000.0):
        with pytest.raises(ValueError, match="metres"):
            set_point_depth(state, bad)


def test_each_click_commits_the_typed_depth_to_the_point_before(pipe, files):
    # The page sends the depth box with every click: the value belongs to the point selected
    # before the click, whether or not Enter or Tab committed it first.
    from studio.page import Studio

    studio = Studio(pipe, [])
    scene = load_scene(pipe, files["folder"] / "image.png", long_side=64)
    state = new_session(scene)
    factor = display_factor(scene.shape)
    sparse = ("clicks only", 100, 16, 0)
    typed = None
    for x, value in ((5, 1.5), (20, 2.0), (35, 2.5)):
        view = studio.click(state, (x * factor, 6 * factor), typed, *sparse)
        state, typed = view.changes["session"], value  # then the user types the value
    state = studio.point_depth(state, typed, *sparse).changes["session"]  # Enter at the end
    result = build_sparse(pipe, state, SparseChoice("clicks only"))
    assert result.n_points == 3
    assert [float(result.sparse[6, x]) for x in (5, 20, 35)] == pytest.approx([1.5, 2.0, 2.5])
    bad = studio.click(state, (50 * factor, 6 * factor), -1.0, *sparse)
    assert "metres" in bad.warnings[0]
    assert "session" not in bad.changes  # the click is refused, nothing is lost


def test_typing_a_depth_needs_a_clicked_point(session):
    with pytest.raises(ValueError, match="Click on the image"):
        set_point_depth(session, 2.0)


def test_points_preview_is_upscaled_and_shows_points(pipe, session):
    inputs = build_sparse(pipe, session, SparseChoice("random points", 3))
    preview = points_preview(session, inputs)
    factor = display_factor(session.scene.shape)
    assert preview.shape == (H * factor, W * factor, 3)
    plain = np.repeat(np.repeat(session.scene.image, factor, 0), factor, 1)
    assert (preview != plain).any(axis=2).sum() >= 3 * factor**2


def test_session_functions_need_a_scene(pipe):
    empty = Session()
    with pytest.raises(ValueError, match="Load an image first"):
        build_sparse(pipe, empty, SparseChoice())


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
    assert recorded_frames(session) == 4
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
    assert run_extras(holed).point_cloud is not None
    final = holed.run.states[-1].depth
    cloud = run_extras(holed).point_cloud.data[0]  # every pixel, depth on the y axis
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
