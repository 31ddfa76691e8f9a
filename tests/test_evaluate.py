"""Sparsity-sweep evaluation on a tiny untrained pipeline and hand-made 40 x 48 scenes."""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import math
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from helpers import TINY  # noqa: E402

from sdr_core import baselines, build_untrained_pipeline, classical, evaluate, sparse
from sdr_core.__main__ import add_evaluate_arguments
from sdr_core.__main__ import evaluate_config_from_args as config_from_args
from sdr_core.evaluate import (
    CLASSICAL_METHODS,
    METHOD_LABELS,
    METHODS,
    EvalConfig,
    EvalScene,
    best_classical,
    centre_hole_mask,
    evaluate_scenes,
    initial_depth,
    markdown_report,
    markdown_table,
    paired_rmse,
    read_json,
    run_evaluation,
    write_json,
    write_plot_html,
)
from sdr_core.metrics import compute_metrics


def _script(name: str) -> ModuleType:
    """A module of scripts/ (a folder, not a package), loaded from its file."""
    path = Path(__file__).resolve().parents[1] / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # its dataclasses look their module up while being made
    spec.loader.exec_module(module)
    return module


quality_bar = _script("quality_bar")  # the project's acceptance policy, outside the library
check_quality_bar = quality_bar.check_quality_bar
H, W = 40, 48
CONFIG = EvalConfig(points=(1, 10), lines=(4,), hole_points=30, n_scenes=0, middlebury=False)


def _scene(name: str, seed: int) -> EvalScene:
    """A slanted plane with a box in front, plus a few pixels of missing ground truth."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:H, 0:W]
    depth = 2.0 + 0.05 * rows + 0.02 * cols * rng.uniform(0.5, 1.5)
    depth[10:25, 12:30] -= 0.8
    depth[rng.random((H, W)) < 0.02] = 0.0
    rgb = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    return EvalScene(name, rgb, depth.astype(np.float32))


@pytest.fixture(scope="module")
def pipe():
    return build_untrained_pipeline(TINY, device="cpu", seed=0)


@pytest.fixture(scope="module")
def scenes():
    return [_scene("a", 1), _scene("b", 2)]


@pytest.fixture(scope="module")
def results(pipe, scenes):
    return evaluate_scenes(pipe, scenes, CONFIG)


def _bound(method, args, kwargs) -> dict:
    """Arguments of a call by name, whether passed by position or keyword."""
    return inspect.signature(method).bind(*args, **kwargs).arguments


def _hand_results(mspn: float, no_mask: float, ls_align: float, others: float) -> dict:
    """One split's results with fixed RMSEs, for the writers and the quality bar."""
    values = {
        "mspn": mspn,
        "mspn_layer1": others,
        "mspn_no_mask": no_mask,
        "mde": others,
        "ls_align": ls_align,
        "ls_interp": others,
        "edge_aware": others,
        "ls_interp_bilateral": others,
    }
    levels = {"points": (1, 10, 50), "lines": (4, 16), "hole": (500,)}
    return {
        setting: {
            method: {level: {"rmse": value, "d1": 1 - value} for level in setting_levels}
            for method, value in values.items()
        }
        for setting, setting_levels in levels.items()
    }


def test_results_structure(results):
    assert list(results) == ["points", "lines", "hole"]
    expected_levels = {"points": [1, 10], "lines": [4], "hole": [30]}
    for setting, by_method in results.items():
        assert list(by_method) == list(METHODS)
        for by_level in by_method.values():
            assert list(by_level) == expected_levels[setting]
            for metrics in by_level.values():
                assert set(metrics) >= {"rmse", "mae", "rel", "d1", "n_valid", "n_points"}
                assert all(math.isfinite(v) for v in metrics.values())
    assert results["points"]["mspn"][10]["n_points"] == 10


def test_every_method_refines_the_same_d0(pipe, scenes, monkeypatch):
    scene = scenes[0]
    seen_init: list[np.ndarray] = []
    estimates: list[np.ndarray] = []
    original_estimate, original_steps = pipe.estimate_depth, pipe.refine_steps

    def estimate(image):
        estimates.append(original_estimate(image))
        return estimates[-1]

    def refine_steps(*args, **kwargs):
        seen_init.append(_bound(original_steps, args, kwargs)["init_depth"])
        return original_steps(*args, **kwargs)

    monkeypatch.setattr(pipe, "estimate_depth", estimate)
    monkeypatch.setattr(pipe, "refine_steps", refine_steps)
    out = evaluate_scenes(pipe, [scene], CONFIG)

    assert len(estimates) == 1  # D0 once per scene
    init = estimates[0]
    # 4 levels x (one run for mspn + mspn_layer1, one for mspn_no_mask via pipe.refine)
    assert len(seen_init) == 8
    assert all(np.array_equal(d, init) for d in seen_init)
    for level, metrics in out["points"]["mde"].items():
        expected = compute_metrics(init, scene.depth)
        assert metrics == {**expected, "n_points": float(level)}


def test_methods_match_direct_calls(pipe, scenes):
    """Rebuild S with the evaluation's seed and call every method by hand."""
    scene = scenes[0]
    config = EvalConfig(points=(10,), lines=(), hole=False, n_scenes=0, middlebury=False)
    out = evaluate_scenes(pipe, [scene], config)["points"]
    init = pipe.estimate_depth(scene.rgb)
    seed = evaluate._sampling_seed(config.seed, scene.name, "points", 10)
    s = sparse.random_points(scene.depth, 10, seed=seed)
    n_first, n_second = pipe.schedule(H, W, 10)
    expected = {
        "mspn": pipe.refine(scene.rgb, s, init_depth=init).depth,
        "mspn_layer1": pipe.refine(scene.rgb, s, init_depth=init, schedule=(n_first, 0)).depth,
        "mspn_no_mask": pipe.refine(scene.rgb, s, init_depth=init, use_mask=False).depth,
        "mde": init,
        "ls_align": baselines.least_squares_scale_shift(init, s),
        "ls_interp": baselines.residual_interpolation(init, s, "idw"),
        "edge_aware": classical.edge_aware_log_ratio(scene.rgb, init, s),
        "ls_interp_bilateral": classical.joint_bilateral_refine(
            scene.rgb, baselines.residual_interpolation(init, s, "idw"), s
        ),
    }
    assert set(expected) == set(METHODS)  # every default method checked by hand
    assert n_second > 0  # the layer-1-only run really differs from the full schedule
    for method, pred in expected.items():
        got = out[method][10]
        want = compute_metrics(pred, scene.depth)
        for key, value in want.items():
            assert got[key] == pytest.approx(value, rel=1e-6, abs=1e-9), (method, key)


def test_lines_use_points_per_line_for_the_schedule(pipe, scenes, monkeypatch):
    scene = scenes[0]
    schedules = []
    original_steps = pipe.refine_steps

    def refine_steps(*args, **kwargs):
        schedules.append(_bound(original_steps, args, kwargs)["schedule"])
        return original_steps(*args, **kwargs)

    monkeypatch.setattr(pipe, "refine_steps", refine_steps)
    config = EvalConfig(points=(), lines=(4,), hole=False, n_scenes=0, middlebury=False)
    out = evaluate_scenes(pipe, [scene], config)
    n_points = int(out["lines"]["mspn"][4]["n_points"])
    assert n_points > 4
    assert set(schedules) == {pipe.schedule(H, W, n_points // 4)}


def test_hole_metrics_are_inside_the_hole_only(pipe, scenes, results):
    hole = centre_hole_mask(H, W)
    valid_in_hole = [int(np.count_nonzero(hole & (s.depth > 0))) for s in scenes]
    for by_level in results["hole"].values():
        assert by_level[30]["n_valid"] == pytest.approx(np.mean(valid_in_hole))
    expected = np.mean(
        [compute_metrics(pipe.estimate_depth(s.rgb), s.depth, region=hole)["rmse"] for s in scenes]
    )
    assert results["hole"]["mde"][30]["rmse"] == pytest.approx(expected, rel=1e-6)


def test_hole_schedule_reaches_the_centre(pipe):
    hole = centre_hole_mask(228, 304)
    assert evaluate._hole_schedule_points(228, 304, hole) == 5
    assert pipe.schedule(228, 304, 5)[0] > pipe.schedule(228, 304, 500)[0]


def test_results_do_not_depend_on_scene_order(pipe, scenes, results):
    config = EvalConfig(points=(10,), lines=(), hole=False, n_scenes=0, middlebury=False)
    forward = evaluate_scenes(pipe, scenes, config)["points"]
    backward = evaluate_scenes(pipe, scenes[::-1], config)["points"]
    for method in METHODS:
        assert backward[method][10]["rmse"] == pytest.approx(forward[method][10]["rmse"])
        assert forward[method][10] == results["points"][method][10]


def test_repeated_scene_names_and_empty_input_are_rejected(pipe, scenes):
    with pytest.raises(ValueError, match="repeated"):
        evaluate_scenes(pipe, [scenes[0], scenes[0]], CONFIG)
    with pytest.raises(ValueError, match="no scene"):
        evaluate_scenes(pipe, [], CONFIG)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"points": (0,)}, "points"),
        ({"lines": (128,)}, "lines"),
        ({"methods": ("mspn", "magic")}, "methods"),
        ({"hole_points": 0}, "hole_points"),
        ({"size": (4, 4)}, "size"),
        ({"points": (), "lines": (), "hole": False}, "nothing to evaluate"),
        ({"init_source": "oracle"}, "init_source"),
    ],
)
def test_config_rejects_bad_values(kwargs, match):
    with pytest.raises(ValueError, match=match):
        EvalConfig(**kwargs)


def test_markdown_table_rows_columns_and_bold():
    table = markdown_table(_hand_results(0.1, 0.3, 0.2, 0.4), "rmse", setting="points")
    lines = table.strip().splitlines()
    assert lines[0] == "| method | 1 | 10 | 50 |"
    assert lines[1] == "|---|---:|---:|---:|"
    rows = {line.split("|")[1].strip(): line for line in lines[2:]}
    assert set(rows) == {METHOD_LABELS[m] for m in METHODS}
    assert rows["MSPN"].count("**0.100**") == 3
    assert "**" not in rows["LS scale + shift"]

    # Larger is better for the threshold accuracies: MSPN's 0.9 is the best.
    d1 = markdown_table(_hand_results(0.1, 0.3, 0.2, 0.4), "d1", setting="lines")
    assert "| MSPN | **0.900** | **0.900** |" in d1
    everything = markdown_table(_hand_results(0.1, 0.3, 0.2, 0.4))
    assert everything.count("| method |") == 3


def test_json_round_trip(tmp_path, results):
    report = {"meta": {"config": {"points": [1, 10]}}, "heldout": results}
    path = tmp_path / "results.json"
    write_json(report, path)
    assert read_json(path) == report


def test_quality_bar_passes_good_and_flags_bad_results():
    good = {
        "heldout": _hand_results(0.1, 0.3, 0.2, 0.4),
        "middlebury": _hand_results(0.1, 0.3, 0.2, 0.4),
    }
    assert check_quality_bar(good) == []

    bad_heldout = _hand_results(0.1, 0.3, 0.2, 0.4)
    bad_heldout["points"]["ls_interp"][10]["rmse"] = 0.05  # a baseline wins at 10 points
    bad_heldout["points"]["mspn_no_mask"][1]["rmse"] = 0.08  # the ablation wins at 1 point
    bad_heldout["points"]["mspn_no_mask"][50]["rmse"] = 0.08  # allowed: 50 > 20 points
    bad_middlebury = _hand_results(0.1, 0.3, 0.2, 0.4)
    bad_middlebury["lines"]["ls_align"][16]["rmse"] = 0.1  # a tie is not a win
    failures = check_quality_bar({"heldout": bad_heldout, "middlebury": bad_middlebury})
    assert len(failures) == 3
    assert any("heldout points @ 10" in f and "ls_interp" in f for f in failures)
    assert any("heldout points @ 1 " in f and "mspn_no_mask" in f for f in failures)
    assert any("middlebury lines @ 16" in f and "ls_align" in f for f in failures)

    missing = check_quality_bar({"heldout": _hand_results(0.1, 0.3, 0.2, 0.4)})
    assert missing == ["middlebury: no results, so the bar cannot be checked"]


def test_quality_bar_script_prints_the_failed_criteria(tmp_path, capsys):
    split = _hand_results(0.1, 0.3, 0.2, 0.4)
    write_json({"heldout": split, "middlebury": split}, tmp_path / "met.json")
    assert quality_bar.main([str(tmp_path / "met.json")]) == 0
    assert capsys.readouterr().out == "## Quality bar\n\nMet at every level.\n"
    write_json({"heldout": split}, tmp_path / "missed.json")
    assert quality_bar.main([str(tmp_path / "missed.json")]) == 1
    assert capsys.readouterr().out == (
        "## Quality bar\n\n- middlebury: no results, so the bar cannot be checked\n"
    )
    with pytest.raises(SystemExit):
        quality_bar.main([str(tmp_path / "absent.json")])
    assert "no such file" in capsys.readouterr().err


def test_plot_html_is_written(tmp_path, results):
    pytest.importorskip("plotly")
    path = tmp_path / "results.html"
    write_plot_html({"heldout": results, "middlebury": results}, path, include_plotlyjs="cdn")
    html = path.read_text()
    assert html.startswith("<!DOCTYPE html>")
    assert html.count("Plotly.newPlot") == 6  # 2 splits x 3 settings
    assert "heldout: random points" in html
    assert '"type":"log"' in html


def test_run_evaluation_writes_all_outputs(pipe, scenes, tmp_path, monkeypatch, capsys):
    pytest.importorskip("plotly")
    monkeypatch.setattr(evaluate, "heldout_scenes", lambda n, size: scenes[:n])
    monkeypatch.setattr(evaluate, "middlebury_scenes", lambda size: [_scene("mb", 3)])
    config = EvalConfig(points=(10,), lines=(4,), hole=False, n_scenes=1)
    report = run_evaluation(pipe, config, tmp_path / "out")
    assert report["meta"]["scenes"] == {"heldout": ["a"], "middlebury": ["mb"]}
    assert "quality_bar_failures" not in report["meta"]  # facts only: no verdict ...
    assert read_json(tmp_path / "out" / "results.json") == report
    markdown = (tmp_path / "out" / "results.md").read_text()
    assert "## heldout" in markdown
    assert "## Quality bar" not in markdown
    failures = check_quality_bar(report)  # ... the script gives it, from results.json
    assert quality_bar.main([str(tmp_path / "out" / "results.json")]) == (1 if failures else 0)
    assert capsys.readouterr().out == quality_bar.quality_bar_section(failures)
    for split in ("heldout", "middlebury"):
        assert report["best_classical"][split] == best_classical(report[split])
    assert "| best classical method |" in markdown
    assert "## best_classical" not in markdown  # not a split of its own
    assert (tmp_path / "out" / "results.html").stat().st_size > 0


def test_cli_arguments_build_the_config():
    parser = argparse.ArgumentParser()
    add_evaluate_arguments(parser)
    none = ["--no-mask-checkpoints", "", "--faithful-checkpoints", ""]
    assert config_from_args(parser.parse_args(none)) == EvalConfig()
    # by default the paper's configuration shipped in checkpoints/faithful is reported too
    found = config_from_args(parser.parse_args([]))
    assert found.faithful_checkpoints.endswith("faithful")
    assert found.methods == (*EvalConfig().methods, "mspn_faithful")
    args = parser.parse_args(
        ["--points", "1,10", "--lines", "", "--no-hole", "--n-scenes", "2", "--size", "30", "40"]
        + ["--methods", "mspn,mde", "--no-middlebury", "--out-dir", "x", *none]
    )
    config = config_from_args(args)
    assert config == EvalConfig(
        points=(1, 10), lines=(), hole=False, n_scenes=2, size=(30, 40), methods=("mspn", "mde"),
        middlebury=False,
    )  # fmt: skip
    assert args.out_dir == "x"


def test_middlebury_split():
    (scene,) = evaluate.middlebury_scenes((57, 84))
    assert scene.name == "middlebury_motorcycle"
    assert scene.rgb.shape == (57, 84, 3)
    assert scene.depth.shape == (57, 84)


def test_heldout_split_is_deterministic():
    pytest.importorskip("sdr_core.data.synthetic")
    first = evaluate.heldout_scenes(2, size=(24, 32), seed_start=123_456)
    again = evaluate.heldout_scenes(2, size=(24, 32), seed_start=123_456)
    assert [s.name for s in first] == ["synthetic_123456", "synthetic_123457"]
    assert first[0].rgb.shape == (24, 32, 3)
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a.depth, b.depth)


def _save_refiner(pipe, folder):
    from sdr_core.checkpoints import save_module

    save_module(folder / "guidance.safetensors", pipe.guidance, pipe.config.guidance, "guidance")
    save_module(folder / "mspn.safetensors", pipe.mspn, pipe.config.mspn, "mspn")


def test_retrained_ablation_runs_without_the_mask_on_the_same_d0(pipe, scenes, tmp_path):
    # With the pipeline's own weights as the "retrained" ablation, it must equal the
    # inference-time ablation exactly: same D0, same sparse input, same schedule.
    _save_refiner(pipe, tmp_path)
    config = EvalConfig(
        points=(1, 10), lines=(4,), hole=False, n_scenes=0, middlebury=False,
        methods=("mspn", "mspn_no_mask", "mspn_no_mask_trained"),
        no_mask_checkpoints=str(tmp_path),
    )  # fmt: skip
    out = evaluate_scenes(pipe, scenes, config)
    for setting, levels in (("points", (1, 10)), ("lines", (4,))):
        for level in levels:
            trained = out[setting]["mspn_no_mask_trained"][level]["rmse"]
            assert trained == out[setting]["mspn_no_mask"][level]["rmse"]


def test_retrained_ablation_method_and_folder_go_together(tmp_path):
    with pytest.raises(ValueError, match="go together"):
        EvalConfig(methods=("mspn", "mspn_no_mask_trained"))
    with pytest.raises(ValueError, match="go together"):
        EvalConfig(no_mask_checkpoints=str(tmp_path))


def test_cli_finds_the_shipped_ablation_next_to_the_checkpoints(pipe, tmp_path):
    parser = argparse.ArgumentParser()
    parser.add_argument("--checkpoints")
    add_evaluate_arguments(parser)
    # No ablation folder: the method is not run.
    assert (
        "mspn_no_mask_trained"
        not in config_from_args(parser.parse_args(["--checkpoints", str(tmp_path)])).methods
    )
    _save_refiner(pipe, tmp_path / evaluate.ABLATION_SUBDIR)
    found = config_from_args(parser.parse_args(["--checkpoints", str(tmp_path)]))
    assert found.methods[-1] == "mspn_no_mask_trained"
    assert found.no_mask_checkpoints == str(tmp_path / evaluate.ABLATION_SUBDIR)
    skipped = config_from_args(
        parser.parse_args(["--checkpoints", str(tmp_path), "--no-mask-checkpoints", ""])
    )
    assert skipped.no_mask_checkpoints is None
    assert "mspn_no_mask_trained" not in skipped.methods


def test_quality_bar_uses_the_retrained_ablation_when_present():
    heldout = _hand_results(0.1, 0.08, 0.2, 0.4)  # the inference-time ablation wins ...
    for level in heldout["points"]["mspn"]:
        heldout["points"].setdefault("mspn_no_mask_trained", {})[level] = {"rmse": 0.3}
    report = {"heldout": heldout, "middlebury": _hand_results(0.1, 0.3, 0.2, 0.4)}
    assert check_quality_bar(report) == []  # ... but the paper's ablation is the retrained one
    heldout["points"]["mspn_no_mask_trained"][10]["rmse"] = 0.09
    failures = check_quality_bar(report)
    assert len(failures) == 1
    assert "@ 10 points" in failures[0]
    assert "mspn_no_mask_trained" in failures[0]


# ----------------------------------------------------------------------------- paired differences


def _rows(*rmses: float) -> list[dict[str, float]]:
    return [{"rmse": value, "mae": 0.0} for value in rmses]


def test_paired_rmse_by_hand():
    per_scene = {
        ("points", "mspn", 5): _rows(1.0, 2.0),
        ("points", "ls_align", 5): _rows(1.5, 2.5),  # worse by 0.5 on both scenes
        ("points", "mde", 5): _rows(0.5, 3.0),  # -0.5 and +1.0
        ("lines", "mde", 4): _rows(1.0, 1.0),  # no MSPN at this level: left out
    }
    paired = paired_rmse(per_scene)
    assert list(paired) == ["points"]
    assert set(paired["points"]) == {"ls_align", "mde"}
    gap = paired["points"]["ls_align"][5]
    assert gap == {"mean": 0.5, "low": 0.5, "high": 0.5, "n": 2, "share_positive": 1.0}
    mixed = paired["points"]["mde"][5]
    assert mixed["mean"] == pytest.approx(0.25)
    assert mixed["share_positive"] == 0.5
    assert mixed["low"] == pytest.approx(-0.5)
    assert mixed["high"] == pytest.approx(1.0)
    assert paired_rmse({("points", "mde", 5): _rows(1.0)}) == {}


def test_report_pairs_every_method_with_mspn(pipe, scenes, tmp_path, monkeypatch):
    monkeypatch.setattr(evaluate, "heldout_scenes", lambda n, size: scenes[:n])
    config = EvalConfig(points=(10,), lines=(), hole=False, n_scenes=2, middlebury=False)
    report = run_evaluation(pipe, config, tmp_path / "out")
    paired = report["paired"]["heldout"]["points"]
    assert set(paired) == set(METHODS) - {"mspn"}
    means = report["heldout"]["points"]
    for method, by_level in paired.items():
        diff = by_level[10]
        # The mean of the per-scene differences is the difference of the means.
        expected = means[method][10]["rmse"] - means["mspn"][10]["rmse"]
        assert diff["mean"] == pytest.approx(expected, abs=1e-12)
        assert diff["low"] <= diff["mean"] <= diff["high"]
        assert diff["n"] == 2
    assert read_json(tmp_path / "out" / "results.json") == report
    markdown = (tmp_path / "out" / "results.md").read_text()
    assert "RMSE difference to MSPN, scene by scene" in markdown
    assert "## paired" not in markdown  # not a split of its own


def test_paired_table_bolds_intervals_that_exclude_zero():
    report = {
        "meta": {"scenes": {"heldout": ["a", "b"]}},
        "heldout": _hand_results(0.1, 0.3, 0.2, 0.4),
        "paired": {
            "heldout": {
                "points": {
                    "ls_align": {10: {"mean": 0.1, "low": 0.05, "high": 0.2, "n": 2}},
                    "mspn_no_mask": {10: {"mean": -0.01, "low": -0.03, "high": 0.02, "n": 2}},
                }
            }
        },
    }
    markdown = markdown_report(report)
    assert "| LS scale + shift | **+0.100 [+0.050, +0.200]** |" in markdown
    assert "| MSPN w/o mask | -0.010 [-0.030, +0.020] |" in markdown
    report["meta"]["scenes"]["heldout"] = ["a"]  # one scene: no interval to show
    assert "RMSE difference to MSPN" not in markdown_report(report)


def test_quality_bar_failure_quotes_the_interval():
    heldout = _hand_results(0.1, 0.3, 0.2, 0.4)
    heldout["points"]["mspn_no_mask"][10]["rmse"] = 0.09
    diff = {"mean": -0.01, "low": -0.03, "high": 0.02, "n": 24}
    report = {
        "heldout": heldout,
        "middlebury": _hand_results(0.1, 0.3, 0.2, 0.4),
        "paired": {"heldout": {"points": {"mspn_no_mask": {10: diff}}}},
    }
    (failure,) = check_quality_bar(report)
    assert failure.endswith(
        "(paired difference -0.0100 m, 95 % CI [-0.0300, +0.0200] over 24 scenes)"
    )


# ----------------------------------------------------------------------------- D0 sources


def test_simulated_initial_depth_is_dense_seeded_and_not_the_truth(pipe, scenes):
    scene = scenes[0]
    assert (scene.depth == 0).any()  # the hand-made scene has holes in its ground truth
    a = initial_depth(pipe, scene, "simulated", seed=0)
    assert a.shape == scene.depth.shape
    assert a.dtype == np.float32
    assert np.isfinite(a).all()
    assert (a > 0).all()
    np.testing.assert_array_equal(a, initial_depth(pipe, scene, "simulated", seed=0))
    assert not np.array_equal(a, initial_depth(pipe, scene, "simulated", seed=1))
    assert not np.array_equal(a, initial_depth(pipe, scenes[1], "simulated", seed=0)[:H, :W])
    valid = scene.depth > 0
    assert not np.allclose(a[valid], scene.depth[valid])
    np.testing.assert_array_equal(initial_depth(pipe, scene, "mde"), pipe.estimate_depth(scene.rgb))


def test_simulated_initial_depth_rejects_bad_input(pipe, scenes):
    with pytest.raises(ValueError, match="init source"):
        initial_depth(pipe, scenes[0], "oracle")
    empty = EvalScene("empty", scenes[0].rgb, np.zeros((H, W), np.float32))
    with pytest.raises(ValueError, match="no ground truth"):
        initial_depth(pipe, empty, "simulated")


def test_evaluation_refines_the_simulated_d0(pipe, scenes):
    config = EvalConfig(
        points=(10,), lines=(), hole=False, n_scenes=0, middlebury=False,
        methods=("mde",), init_source="simulated",
    )  # fmt: skip
    out = evaluate_scenes(pipe, [scenes[0]], config)
    expected = compute_metrics(initial_depth(pipe, scenes[0], "simulated"), scenes[0].depth)
    assert out["points"]["mde"][10] == {**expected, "n_points": 10.0}


def test_cli_init_source():
    parser = argparse.ArgumentParser()
    add_evaluate_arguments(parser)
    for given, stored in (("simulated", "harsh"), ("harsh", "harsh"), ("relative", "relative")):
        args = parser.parse_args(["--init-source", given, "--no-mask-checkpoints", ""])
        assert config_from_args(args).init_source == stored  # an alias is stored by its name
    with pytest.raises(SystemExit):
        parser.parse_args(["--init-source", "oracle"])


def test_a_results_file_of_an_earlier_release_still_names_its_d0():
    from sdr_core.eval_report import INIT_LABELS

    assert INIT_LABELS["simulated"] == INIT_LABELS["harsh"]  # "simulated" in old results.json
    assert "poor MDE" in INIT_LABELS["harsh"]


def test_metric_initial_depth_is_the_metric_preset(pipe, scenes):
    from sdr_core.data.mde_errors import simulate_init_depth

    scene = scenes[0]
    metric = initial_depth(pipe, scene, "metric", seed=0)
    seed = evaluate._sampling_seed(0, scene.name, "init", 0)
    np.testing.assert_array_equal(metric, simulate_init_depth(scene.depth, "metric", seed))
    harsh = initial_depth(pipe, scene, "simulated", seed=0)
    np.testing.assert_array_equal(harsh, simulate_init_depth(scene.depth, "harsh", seed))
    valid = scene.depth > 0
    err = {k: np.abs(v - scene.depth)[valid].mean() for k, v in (("m", metric), ("h", harsh))}
    assert err["m"] < err["h"]


# ----------------------------------------------------------------------------- mask shape


def test_centre_point_takes_the_valid_pixel_nearest_the_centre():
    depth = np.full((9, 11), 2.0, np.float32)
    depth[4, 5] = 0.0  # the centre itself has no ground truth
    depth[4, 4] = 3.0
    point = evaluate.centre_point(depth)
    assert np.count_nonzero(point) == 1
    assert point[3, 5] == 2.0 or point[4, 4] == 3.0 or point[4, 6] == 2.0 or point[5, 5] == 2.0
    with pytest.raises(ValueError, match="no valid pixel"):
        evaluate.centre_point(np.zeros((4, 4), np.float32))


def test_mask_shape_measures_the_reached_region(pipe, scenes, monkeypatch):
    from sdr_core.pipeline import RefineState

    # A fake run whose last mask is a plus sign (5 of the 9 pixels of its 3 x 3 box) in
    # scene "a" and a filled 2 x 3 block in scene "b".
    def fake_steps(rgb, sparse_depth, init_depth=None, schedule=None, **_):
        assert schedule == (6, 0)
        mask = np.zeros((H, W), np.float32)
        if rgb is scenes[0].rgb:
            mask[20, 23:26] = 0.9
            mask[19:22, 24] = 0.9
        else:
            mask[5:7, 5:8] = 0.6
        yield RefineState(1, 6, (6, 0), sparse_depth, mask)

    monkeypatch.setattr(pipe, "refine_steps", fake_steps)
    shape = evaluate.mask_shape(pipe, scenes)
    assert shape["scenes"]["a"] == {"fill": 5 / 9, "area_px": 5, "bbox_px": [3, 3]}
    assert shape["scenes"]["b"] == {"fill": 1.0, "area_px": 6, "bbox_px": [2, 3]}
    assert shape["mean_fill"] == pytest.approx((5 / 9 + 1) / 2)
    assert (shape["distinct"], shape["n"]) == (2, 2)


def test_mask_shape_runs_the_real_first_layer(pipe, scenes):
    shape = evaluate.mask_shape(pipe, scenes, iterations=3)
    for name, row in shape["scenes"].items():
        assert 0 < row["fill"] <= 1, name
        assert row["area_px"] >= 1  # the measured pixel keeps mask 1


def _metric_report(
    mspn: dict[int, float], mde: float, ls: float, ls_idw: float, edge: float = 0.5
) -> dict:
    """A metric-D0 report; the image-guided methods (``edge``, and 0.5 for the bilateral
    pass) lose to LS + IDW unless a test says otherwise."""
    split = {"points": {}, "lines": {}}
    rows = (
        ("mspn", mspn), ("mde", mde), ("ls_align", ls), ("ls_interp", ls_idw),
        ("edge_aware", edge), ("ls_interp_bilateral", 0.5),
    )  # fmt: skip
    for method, values in rows:
        for level in (1, 20, 200):
            value = values[level] if isinstance(values, dict) else values
            split["points"].setdefault(method, {})[level] = {"rmse": value}
        split["lines"].setdefault(method, {})[4] = {"rmse": 0.1 if method == "mspn" else 0.3}
    split["points"]["mspn_no_mask"] = {1: {"rmse": 9.0}, 20: {"rmse": 9.0}}
    return {
        "meta": {"config": {"init_source": "metric"}},
        "heldout": split,
        "middlebury": split,
    }


def test_quality_bar_with_a_metric_d0():
    # D0 0.30 m, LS 0.25, LS + IDW 0.20: at 1 point MSPN need only not exceed D0; from 20
    # points it must beat 0.20, from 200 points reach 0.85 x 0.20 = 0.17.
    good = _metric_report({1: 0.30, 20: 0.19, 200: 0.165}, 0.30, 0.25, 0.20)
    assert check_quality_bar(good) == []
    bad = _metric_report({1: 0.31, 20: 0.20, 200: 0.171}, 0.30, 0.25, 0.20)
    failures = [f for f in check_quality_bar(bad) if f.startswith("heldout")]
    assert len(failures) == 3, failures
    assert "points @ 1 points" in failures[0]
    assert "above mde" in failures[0]
    assert "points @ 20 points" in failures[1]
    assert "not below ls_interp 0.2000 m (best classical method; ratio 1.000)" in failures[1]
    assert "points @ 200 points" in failures[2]
    assert "above 0.85 x ls_interp" in failures[2]
    assert "ratio 0.855" in failures[2]
    # Under the bundled MDE's D0 the same numbers must beat every baseline at every level.
    bundled = _metric_report({1: 0.30, 20: 0.19, 200: 0.17}, 0.30, 0.25, 0.20)
    bundled["meta"]["config"]["init_source"] = "mde"
    assert any("points @ 1 points" in f and "ls_interp" in f for f in check_quality_bar(bundled))


def test_quality_bar_checks_the_mask_shape():
    report = _metric_report({1: 0.30, 20: 0.19, 200: 0.165}, 0.30, 0.25, 0.20)
    report["mask_shape"] = {"heldout": {"mean_fill": 0.9, "distinct": 1, "n": 3,
                                        "iterations": 6, "threshold": 0.5}}  # fmt: skip
    failures = check_quality_bar(report)
    assert any("fills 90.0 %" in f for f in failures)
    assert any("only 1 different masks in 3 scenes" in f for f in failures)
    report["mask_shape"]["heldout"].update(mean_fill=0.7, distinct=3)
    assert check_quality_bar(report) == []


def test_classical_methods_are_the_baselines_that_use_the_measurements():
    assert CLASSICAL_METHODS == ("ls_align", "ls_interp", "edge_aware", "ls_interp_bilateral")
    assert set(CLASSICAL_METHODS) < set(METHODS)


def test_best_classical_by_hand():
    results = _hand_results(0.1, 0.3, 0.2, 0.4)  # ls_align 0.2 is the best classical method
    results["points"]["edge_aware"][10]["rmse"] = 0.05  # ... but at 10 points edge_aware
    results["lines"]["mspn"].pop(16)  # no MSPN at one level: no ratio there
    best = best_classical(results)
    assert list(best) == ["points", "lines", "hole"]
    assert best["points"][1] == {"method": "ls_align", "rmse": 0.2, "mspn": 0.1, "ratio": 0.5}
    assert best["points"][10] == {"method": "edge_aware", "rmse": 0.05, "mspn": 0.1, "ratio": 2.0}
    assert best["lines"][16] == {"method": "ls_align", "rmse": 0.2, "mspn": None, "ratio": None}
    # D0 alone is no classical method, however good it is.
    results["points"]["mde"][50]["rmse"] = 0.01
    assert best_classical(results)["points"][50]["method"] == "ls_align"

    markdown = markdown_report({"heldout": results})
    assert "| best classical method | LS scale + shift | Edge-aware log-ratio (Levin 2004) |" in (
        markdown
    )
    assert "| MSPN / best | **0.50** | 2.00 | **0.50** |" in markdown


def test_quality_bar_holds_mspn_to_the_best_classical_method():
    # The edge-aware method (0.18) beats LS + IDW (0.20): from 20 points MSPN must beat it,
    # from 200 points reach 0.85 x 0.18 = 0.153.
    report = _metric_report({1: 0.30, 20: 0.19, 200: 0.16}, 0.30, 0.25, 0.20, edge=0.18)
    failures = [f for f in check_quality_bar(report) if f.startswith("heldout")]
    assert len(failures) == 2, failures
    assert "points @ 20 points" in failures[0]
    assert "not below edge_aware 0.1800 m (best classical method; ratio 1.056)" in failures[0]
    assert "points @ 200 points" in failures[1]
    assert "above 0.85 x edge_aware" in failures[1]
    # Under the bundled MDE's D0 the same holds at every level of points and lines.
    report["meta"]["config"]["init_source"] = "mde"
    bundled = [f for f in check_quality_bar(report) if f.startswith("heldout")]
    assert any("points @ 1 points" in f and "edge_aware" in f for f in bundled)
    # A classical method the report lacks fails the bar: it was not checked.
    del report["heldout"]["points"]["ls_interp_bilateral"]
    failures = check_quality_bar(report)
    assert "heldout points @ 20 points: no ls_interp_bilateral result" in failures
