"""studio: the app's logic without a browser, on a tiny untrained pipeline."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from helpers import TINY
from PIL import Image
from studio_fixtures import H, W

from sdr_core.data import io
from sdr_core.mspn import iteration_schedule
from studio.run import (
    run_steps,
)
from studio.scene import (
    MAX_LONG_SIDE,
    MIN_LONG_SIDE,
    load_example,
    load_examples,
    load_scene,
    processing_size,
)
from studio.session import (
    MAX_POINTS,
    Session,
    SparseChoice,
    build_sparse,
    display_factor,
    new_session,
    no_points_message,
    points_preview,
    set_centre_hole,
    set_hole,
    set_point_depth,
    toggle_point,
)
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
