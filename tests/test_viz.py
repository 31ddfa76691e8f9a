"""Tests of sdr_core.viz: colormaps, overlays, mosaics, animation writers, plotly figures."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from PIL import Image

from sdr_core import viz


def _luminance(rgb: np.ndarray) -> np.ndarray:
    return rgb.astype(np.float64) @ np.array([0.2126, 0.7152, 0.0722])


def _ramp(height: int = 4, width: int = 64, near: float = 1.0, far: float = 9.0) -> np.ndarray:
    """Depth increasing left to right (near at x = 0)."""
    return np.tile(np.linspace(near, far, width, dtype=np.float32), (height, 1))


def _history(n1: int = 8, n2: int = 6) -> list[dict[str, float]]:
    items = [
        {"layer": 1, "iteration": i, "rmse": 1.0 / i, "rel": 0.2 / i, "d1": 1 - 0.4 / i}
        for i in range(1, n1 + 1)
    ]
    items += [
        {"layer": 2, "iteration": i, "rmse": 0.1 - 0.005 * i, "rel": 0.02, "d1": 0.97}
        for i in range(1, n2 + 1)
    ]
    return items


# ------------------------------------------------------------------------- colormaps
def test_colormap_tables_are_read_only_256x3_uint8():
    for name, lut in viz.COLORMAPS.items():
        assert lut.shape == (256, 3), name
        assert lut.dtype == np.uint8, name
        assert not lut.flags.writeable, name
    with pytest.raises(TypeError):
        viz.COLORMAPS["new"] = viz.COLORMAPS["gray"]  # type: ignore[index]


def test_turbo_table_hits_published_values():
    # sRGB of the published 256-entry Turbo LUT at entries 0, 128 and 255, times 255.
    turbo = viz.COLORMAPS["turbo"].astype(int)
    np.testing.assert_allclose(turbo[0], [48, 18, 59], atol=1)
    np.testing.assert_allclose(turbo[128], [164, 252, 60], atol=1)
    np.testing.assert_allclose(turbo[255], [122, 4, 3], atol=1)


@pytest.mark.parametrize(
    ("name", "flag"),
    [("turbo", "COLORMAP_TURBO"), ("viridis", "COLORMAP_VIRIDIS"), ("magma", "COLORMAP_MAGMA")],
)
def test_colormaps_are_opencvs_tables_exactly(name, flag):
    cv2 = pytest.importorskip("cv2")
    ramp = np.arange(256, dtype=np.uint8)[None, :]  # 1 x 256 grey image
    expected = cv2.applyColorMap(ramp, getattr(cv2, flag))[0, :, ::-1]  # BGR -> RGB
    np.testing.assert_array_equal(viz.COLORMAPS[name], expected)
    # and the public functions use them: a mask ramp is the table itself
    if name == "viridis":
        np.testing.assert_array_equal(viz.colorize_mask(ramp / 255.0)[0], expected)


def test_colorbar_shows_the_panels_mapping_with_round_ticks_in_metres():
    bar = viz.colorbar(1.2, 5.7, 200, "turbo", "m", reverse=True)
    assert bar.shape[0] == 200
    assert bar.dtype == np.uint8
    column = bar[:, 6].astype(int)  # inside the gradient strip
    turbo = viz.COLORMAPS["turbo"].astype(int)
    inside = column[column.sum(axis=1) < 3 * 250]  # drop the white margins
    # top = far = vmax = low end of turbo (blue), bottom = near = high end (dark red)
    np.testing.assert_array_equal(inside[0], turbo[0])
    np.testing.assert_array_equal(inside[-1], turbo[255])
    assert viz.mosaic._nice_ticks(1.2, 5.7) == [2.0, 3.0, 4.0, 5.0]
    assert viz.mosaic._tick_text(0.25, [0.0, 0.25, 0.5], "m") == "0.25 m"
    assert viz.mosaic._tick_text(0.5, [0.0, 0.5, 1.0], "") == "0.5"
    mask_bar = viz.colorbar(0.0, 1.0, 200, "viridis", "")
    mask_inside = mask_bar[:, 6][mask_bar[:, 6].astype(int).sum(axis=1) < 3 * 250]
    np.testing.assert_array_equal(mask_inside[0], viz.COLORMAPS["viridis"][255])  # 1 on top


def test_an_open_topped_bar_labels_its_top_as_at_least_vmax():
    # An error scale set by a percentile clips larger errors: the top label says ">= vmax".
    closed = viz.colorbar(0.0, 0.453, 200, "magma", "m")
    opened = viz.colorbar(0.0, 0.453, 200, "magma", "m", open_top=True)
    np.testing.assert_array_equal(opened[:, :12], closed[:, :12])  # the same gradient
    assert opened.shape[1] > closed.shape[1]  # the wider ">= 0.45 m" label
    top = (opened[:20, 20:] < 128).any(axis=2).sum()
    assert top > (closed[:20, 20:] < 128).any(axis=2).sum()  # ink at the top only when open


def test_the_frames_error_bar_is_open_topped(monkeypatch):
    calls = []
    real = viz.colorbar
    monkeypatch.setattr(
        viz.mosaic, "colorbar", lambda *a, **k: calls.append((a[3], k)) or real(*a, **k)
    )
    depth = _ramp(40, 60)
    viz.refinement_frame(depth, np.ones((40, 60)), "t", (1.0, 9.0), gt_m=depth + 1, error_vmax=0.5)
    assert {cmap: k.get("open_top", False) for cmap, k in calls} == {
        "turbo": False, "viridis": False, "magma": True,
    }  # fmt: skip


def test_with_colorbar_keeps_the_panel_and_adds_a_bar():
    panel = viz.colorize_depth(_ramp(40, 60), 1.0, 9.0)
    out = viz.depth_with_colorbar(panel, 1.0, 9.0)
    assert out.shape[0] == 40
    assert out.shape[1] > 60 + 20
    np.testing.assert_array_equal(out[:, :60], panel)
    with pytest.raises(ValueError, match="vmin < vmax"):
        viz.colorbar(2.0, 2.0, 40)
    with pytest.raises(ValueError, match="height"):
        viz.colorbar(0.0, 1.0, 3)


def test_plotly_colorscale_matches_the_depth_panels():
    scale = viz.plotly_colorscale("turbo", reverse=True, n=3)
    turbo = viz.COLORMAPS["turbo"]
    assert scale[0] == [0.0, "rgb({},{},{})".format(*turbo[255])]  # near end = vmin
    assert scale[-1] == [1.0, "rgb({},{},{})".format(*turbo[0])]


def test_side_by_side_title_is_a_full_width_line():
    panels = [np.zeros((100, 60, 3), np.uint8)] * 2
    plain = viz.side_by_side(panels, ["a", "b"])
    titled = viz.side_by_side(panels, ["a", "b"], title="initial depth D0 · plan 51 + 51")
    assert titled.shape[0] > plain.shape[0]
    strip = titled[: titled.shape[0] - plain.shape[0]]
    dark = np.nonzero((strip < 128).all(axis=2).any(axis=0))[0]
    assert dark.min() < 60 < dark.max()  # the title's text spans both panels


def test_colorize_depth_shape_dtype_and_hxwx1():
    depth = _ramp(5, 7)
    rgb = viz.colorize_depth(depth)
    assert rgb.shape == (5, 7, 3)
    assert rgb.dtype == np.uint8
    np.testing.assert_array_equal(viz.colorize_depth(depth[:, :, None]), rgb)


def test_colorize_depth_invalid_pixels_get_invalid_color():
    depth = _ramp(3, 10)
    depth[0, 0] = 0.0
    depth[1, 1] = np.nan
    depth[2, 2] = -1.0
    rgb = viz.colorize_depth(depth, 1.0, 9.0)
    for y, x in [(0, 0), (1, 1), (2, 2)]:
        np.testing.assert_array_equal(rgb[y, x], [0, 0, 0])
    custom = viz.colorize_depth(depth, 1.0, 9.0, invalid_color=(255, 0, 255))
    np.testing.assert_array_equal(custom[1, 1], [255, 0, 255])
    assert not np.array_equal(rgb[0, 5], [0, 0, 0])


@pytest.mark.parametrize("cmap", ["viridis", "magma", "gray"])
def test_sequential_colormaps_get_brighter_towards_near(cmap):
    rgb = viz.colorize_depth(_ramp(1, 200), 1.0, 9.0, cmap=cmap)
    luminance = _luminance(rgb[0])  # left = near
    assert np.all(np.diff(luminance) <= 1.0), "luminance must not rise with depth"
    assert luminance[0] - luminance[-1] > 100


def test_turbo_near_is_warm_far_is_cool():
    rgb = viz.colorize_depth(_ramp(1, 50), 1.0, 9.0, cmap="turbo").astype(int)
    near, far = rgb[0, 0], rgb[0, -1]
    assert near[0] > near[2]  # red > blue
    assert far[2] > far[0]  # blue > red
    # Red minus blue ("warmth") changes sign once, from warm near to cool far.
    warmth = rgb[0, :, 0] - rgb[0, :, 2]
    assert np.count_nonzero(np.diff(np.sign(warmth)) != 0) == 1


def test_consistent_scale_same_value_same_colour_across_calls():
    a = _ramp(2, 30, 1.0, 3.0)
    b = _ramp(2, 30, 2.0, 8.0)
    vmin, vmax = viz.depth_range(a, b)
    a[0, 0] = b[0, 0] = 2.5
    rgb_a = viz.colorize_depth(a, vmin, vmax)
    rgb_b = viz.colorize_depth(b, vmin, vmax)
    np.testing.assert_array_equal(rgb_a[0, 0], rgb_b[0, 0])
    # Without a shared range the same depth would get different colours.
    assert not np.array_equal(viz.colorize_depth(a)[0, 0], viz.colorize_depth(b)[0, 0])


def test_depth_range_pools_maps_and_ignores_invalid():
    a = np.array([[1.0, 2.0], [0.0, np.nan]], np.float32)
    b = np.array([[3.0, 4.0], [-1.0, 5.0]], np.float32)
    assert viz.depth_range(a, b, percentile=(0, 100)) == (1.0, 5.0)
    vmin, vmax = viz.depth_range(np.full((3, 3), 2.0))
    assert vmin < 2.0 < vmax


def test_depth_range_errors():
    with pytest.raises(ValueError, match="at least one"):
        viz.depth_range()
    with pytest.raises(ValueError, match="no valid depth"):
        viz.depth_range(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="percentile"):
        viz.depth_range(_ramp(), percentile=(90, 10))


def test_colorize_depth_bad_arguments():
    with pytest.raises(ValueError, match="unknown colormap 'jet'"):
        viz.colorize_depth(_ramp(), cmap="jet")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="vmin < vmax"):
        viz.colorize_depth(_ramp(), 5.0, 5.0)
    with pytest.raises(ValueError, match="must be HxW"):
        viz.colorize_depth(np.ones((2, 3, 4)))
    with pytest.raises(ValueError, match="invalid_color"):
        viz.colorize_depth(_ramp(), invalid_color=(0, 0))  # type: ignore[arg-type]


def test_colorize_mask_ends_and_errors():
    mask = np.array([[0.0, 1.0], [0.5, 1.0 + 1e-6]], np.float32)
    rgb = viz.colorize_mask(mask)
    assert rgb.shape == (2, 2, 3)
    assert rgb.dtype == np.uint8
    np.testing.assert_array_equal(rgb[0, 0], viz.COLORMAPS["viridis"][0])
    np.testing.assert_array_equal(rgb[0, 1], viz.COLORMAPS["viridis"][255])
    np.testing.assert_array_equal(viz.colorize_mask(mask > 0.5)[0, 1], rgb[0, 1])
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        viz.colorize_mask(np.full((2, 2), 1.5))
    with pytest.raises(ValueError, match="NaN"):
        viz.colorize_mask(np.array([[np.nan, 0.0]]))


# ---------------------------------------------------------------------------- errors
def test_colorize_error_values_and_invalid_gt_is_grey():
    gt = np.array([[2.0, 2.0, 0.0], [2.0, np.nan, 2.0]], np.float32)
    pred = np.array([[2.0, 3.0, 1.0], [2.5, 2.0, 9.0]], np.float32)
    rgb = viz.colorize_error(pred, gt, vmax=1.0)
    assert rgb.shape == (2, 3, 3)
    assert rgb.dtype == np.uint8
    magma = viz.COLORMAPS["magma"]
    np.testing.assert_array_equal(rgb[0, 0], magma[0])  # zero error
    np.testing.assert_array_equal(rgb[0, 1], magma[255])  # error == vmax
    np.testing.assert_array_equal(rgb[1, 2], magma[255])  # clipped above vmax
    np.testing.assert_array_equal(rgb[0, 2], [128, 128, 128])
    np.testing.assert_array_equal(rgb[1, 1], [128, 128, 128])
    assert _luminance(rgb[1, 0]) < _luminance(rgb[0, 1])


def test_error_range_and_consistent_error_scale():
    gt = np.full((4, 4), 2.0, np.float32)
    preds = [gt + 0.1, gt + 1.0]
    assert viz.error_range(preds, gt, percentile=100) == pytest.approx(1.0)
    assert viz.error_range(np.stack(preds), gt, percentile=100) == pytest.approx(1.0)
    assert viz.error_range(gt, gt) == pytest.approx(1e-6)
    vmax = viz.error_range(preds, gt)
    first = viz.colorize_error(preds[0], gt, vmax=vmax)
    again = viz.colorize_error(preds[0], gt, vmax=vmax)
    np.testing.assert_array_equal(first, again)


def test_error_functions_reject_bad_input():
    gt = np.ones((3, 4), np.float32)
    with pytest.raises(ValueError, match="must match"):
        viz.colorize_error(np.ones((4, 3), np.float32), gt)
    with pytest.raises(ValueError, match="must match"):
        viz.error_range([np.ones((2, 2))], gt)
    with pytest.raises(ValueError, match="empty"):
        viz.error_range([], gt)
    with pytest.raises(ValueError, match="no valid pixel"):
        viz.error_range([gt], np.zeros_like(gt))
    with pytest.raises(ValueError, match="vmax"):
        viz.colorize_error(gt, gt, vmax=0.0)


# -------------------------------------------------------------------------- overlays
def test_single_pixel_point_becomes_visible():
    image = np.full((20, 20, 3), 128, np.uint8)
    sparse = np.zeros((20, 20), np.float32)
    sparse[10, 10] = 3.0
    out = viz.draw_points(image, sparse, vmin=1.0, vmax=5.0)
    changed = np.any(out != image, axis=-1)
    assert changed.sum() >= 9
    assert out.dtype == np.uint8
    assert out.shape == image.shape
    np.testing.assert_array_equal(image, 128)  # input untouched
    # The centre carries the depth colour of the same scale as colorize_depth.
    expected = viz.colorize_depth(np.full((1, 1), 3.0), 1.0, 5.0)[0, 0]
    np.testing.assert_array_equal(out[10, 10], expected)
    # Radius 0: the pixel plus its 1-pixel outline ring, 3 x 3.
    tiny = viz.draw_points(image, sparse, radius=0, color=(255, 0, 0))
    assert np.any(tiny != image, axis=-1).sum() == 9
    np.testing.assert_array_equal(tiny[10, 10], [255, 0, 0])


def test_draw_points_edges_empty_and_errors():
    image = np.zeros((6, 6, 3), np.uint8)
    sparse = np.zeros((6, 6), np.float32)
    np.testing.assert_array_equal(viz.draw_points(image, sparse), image)
    sparse[0, 0] = sparse[5, 5] = 2.0
    assert viz.draw_points(image, sparse, radius=3).shape == (6, 6, 3)
    with pytest.raises(ValueError, match="must match"):
        viz.draw_points(image, np.zeros((5, 6)))
    with pytest.raises(ValueError, match="radius"):
        viz.draw_points(image, sparse, radius=-1)


def test_draw_hole_tints_only_the_hole():
    image = np.full((10, 10, 3), 100, np.uint8)
    hole = np.zeros((10, 10), bool)
    hole[2:7, 3:8] = True
    out = viz.draw_hole(image, hole, alpha=0.5)
    np.testing.assert_array_equal(out[~hole], image[~hole])
    np.testing.assert_array_equal(out[4, 5], [178, 178, 178])  # interior: 50 % blend to white
    np.testing.assert_array_equal(out[2, 5], [255, 255, 255])  # border
    with pytest.raises(ValueError, match="alpha"):
        viz.draw_hole(image, hole, alpha=1.5)
    with pytest.raises(ValueError, match="must match"):
        viz.draw_hole(image, hole[:5])


# --------------------------------------------------------------------------- mosaics
def test_side_by_side_shapes_and_labels():
    a = np.zeros((20, 30, 3), np.uint8)
    b = np.zeros((10, 15), np.uint8)  # grey and shorter
    plain = viz.side_by_side([a, b], gap=4)
    assert plain.shape == (20, 30 + 4 + 15, 3)
    assert plain.dtype == np.uint8
    np.testing.assert_array_equal(plain[:, 30:34], 255)  # the gap
    labelled = viz.side_by_side([a, b], labels=["depth", viz.caption(1, 7, 28)])
    strip = labelled.shape[0] - 20
    assert strip > 0
    assert labelled.shape[1] == plain.shape[1]
    assert (labelled[:strip] < 128).any()  # some text was drawn


def test_side_by_side_errors():
    with pytest.raises(ValueError, match="at least one panel"):
        viz.side_by_side([])
    with pytest.raises(ValueError, match="2 labels for 1 panels"):
        viz.side_by_side([np.zeros((4, 4, 3), np.uint8)], labels=["a", "b"])


def test_caption_exact_text():
    assert viz.caption(1, 7, 28) == "layer 1 \u00b7 iteration 7 / 28"
    assert viz.caption(2, 6, 6) == "layer 2 · iteration 6 / 6"
    with pytest.raises(ValueError, match="iteration"):
        viz.caption(1, 0, 28)
    with pytest.raises(ValueError, match="iteration"):
        viz.caption(1, 29, 28)


# ------------------------------------------------------------------------- animation
def _frames(n: int = 5, height: int = 24, width: int = 33) -> list[np.ndarray]:
    return [viz.colorize_depth(_ramp(height, width, 1.0 + k, 9.0 + k), 1.0, 14.0) for k in range(n)]


def test_gif_has_all_frames_and_size(tmp_path):
    path = viz.frames_to_gif(_frames(), tmp_path / "sub" / "anim.gif", fps=10)
    assert path.exists()
    with Image.open(path) as gif:
        assert gif.n_frames == 5
        assert gif.size == (33, 24)
        assert gif.info["duration"] == 100
        assert gif.info["loop"] == 0


def test_gif_and_mp4_reject_bad_frames(tmp_path):
    with pytest.raises(ValueError, match="empty"):
        viz.frames_to_gif([], tmp_path / "a.gif")
    with pytest.raises(ValueError, match="empty"):
        viz.frames_to_mp4([], tmp_path / "a.mp4")
    mixed = [np.zeros((4, 4, 3), np.uint8), np.zeros((4, 5, 3), np.uint8)]
    with pytest.raises(ValueError, match=r"frames\[1\] is 4x5"):
        viz.frames_to_gif(mixed, tmp_path / "a.gif")
    with pytest.raises(ValueError, match="fps"):
        viz.frames_to_gif(_frames(2), tmp_path / "a.gif", fps=0)


def test_mp4_returns_file_or_none(tmp_path):
    result = viz.frames_to_mp4(_frames(4, 23, 31), tmp_path / "anim.mp4")  # odd sizes
    assert result is None or (result.exists() and result.stat().st_size > 0)


def test_mp4_without_encoder_returns_none(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)  # import now fails
    assert viz.frames_to_mp4(_frames(2), tmp_path / "anim.mp4") is None


# --------------------------------------------------------------------------- figures
def test_iteration_metrics_figure_traces():
    pytest.importorskip("plotly")
    refs = {"MDE only": 0.5, "least squares": 0.3}
    fig = viz.iteration_metrics_figure(_history(), refs)
    assert len(fig.data) == 4  # layer 1, layer 2, two reference lines
    assert list(fig.data[1].x) == list(range(9, 15))  # layer 2 continues after layer 1's 8
    assert fig.data[2].y == (0.5, 0.5)
    per_metric = {"MDE only": {"rmse": 0.5, "rel": 0.1, "d1": 0.8}, "LS": {"rmse": 0.3}}
    stacked = viz.iteration_metrics_figure(_history(), per_metric, metric=viz.ITERATION_METRICS)
    assert len(stacked.data) == 3 * 2 + 3 + 1
    assert sum(bool(t.showlegend) for t in stacked.data) == 4  # each name once


def test_iteration_metrics_figure_errors():
    pytest.importorskip("plotly")
    with pytest.raises(ValueError, match="history is empty"):
        viz.iteration_metrics_figure([])
    with pytest.raises(ValueError, match=r"history\[0\] is missing key 'rel'"):
        viz.iteration_metrics_figure([{"layer": 1, "iteration": 1, "rmse": 1.0}], metric="rel")
    with pytest.raises(ValueError, match="one number but 3 metrics"):
        viz.iteration_metrics_figure(_history(), {"MDE": 0.5}, metric=viz.ITERATION_METRICS)


def test_point_cloud_figure_is_upright_and_subsampled():
    pytest.importorskip("plotly")
    depth = np.full((48, 64), 2.0, np.float32)
    depth[:4] = 0.0
    rgb = np.zeros((48, 64, 3), np.uint8)
    fig = viz.point_cloud_figure(depth, rgb, max_points=500)
    assert len(fig.data) == 1
    trace = fig.data[0]
    assert 0 < len(trace.x) <= 500
    x, up = np.asarray(trace.x), np.asarray(trace.z)
    np.testing.assert_allclose(trace.y, 2.0)  # depth axis
    assert up.max() > 0 > up.min()  # image top above the optical axis, bottom below
    again = viz.point_cloud_figure(depth, rgb, max_points=500)
    np.testing.assert_array_equal(again.data[0].x, x)  # deterministic
    # Top-left pixel (row 4 after the invalid rows, column 0): left (x < 0) and up.
    full = viz.point_cloud_figure(depth, rgb, intrinsics=(50.0, 50.0, 32.0, 24.0))
    assert full.data[0].x[0] == pytest.approx((0 - 32.0) * 2.0 / 50.0)
    assert full.data[0].z[0] == pytest.approx((24.0 - 4) * 2.0 / 50.0)
    with pytest.raises(ValueError, match="must match"):
        viz.point_cloud_figure(depth, rgb[:10])
    with pytest.raises(ValueError, match="no valid pixel"):
        viz.point_cloud_figure(np.zeros_like(depth), rgb)


def test_sparsity_figure_one_line_per_method_log_x():
    pytest.importorskip("plotly")
    results = {"MSPN": {100: 0.2, 1000: 0.08, 500: 0.1}, "MDE": {100: 0.5, 500: 0.5, 1000: 0.5}}
    fig = viz.sparsity_figure(results, "RMSE vs points", "points")
    assert len(fig.data) == 2
    assert fig.layout.xaxis.type == "log"
    assert list(fig.data[0].x) == [100, 500, 1000]
    with pytest.raises(ValueError, match="levels must be > 0"):
        viz.sparsity_figure({"MSPN": {0: 1.0}}, "t", "x")
    with pytest.raises(ValueError, match="empty"):
        viz.sparsity_figure({}, "t", "x")


def test_figures_explain_missing_plotly(monkeypatch):
    monkeypatch.setitem(sys.modules, "plotly", None)
    monkeypatch.setitem(sys.modules, "plotly.graph_objects", None)
    with pytest.raises(ImportError, match="pip install plotly"):
        viz.sparsity_figure({"MSPN": {100: 0.2}}, "t", "x")
