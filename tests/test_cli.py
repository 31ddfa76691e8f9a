"""The command line: refine end to end on a tiny saved pipeline, bench, clean errors."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from helpers import TINY, TINY_MDE
from PIL import Image

from sdr_core.__main__ import main
from sdr_core.checkpoints import save_module
from sdr_core.data.io import write_depth_png
from sdr_core.methods import BASELINES, METHODS
from sdr_core.pipeline import build_untrained_pipeline


@pytest.fixture
def checkpoints(tmp_path):
    pipe = build_untrained_pipeline(TINY, TINY_MDE, device="cpu")
    folder = tmp_path / "ckpt"
    save_module(folder / "mde.safetensors", pipe.mde.net, TINY_MDE, "mde")
    save_module(folder / "guidance.safetensors", pipe.guidance, TINY.guidance, "guidance")
    save_module(folder / "mspn.safetensors", pipe.mspn, TINY.mspn, "mspn")
    return folder


def _scene_files(tmp_path):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)).save(tmp_path / "i.png")
    write_depth_png(tmp_path / "d.png", (1 + 3 * rng.random((30, 40))).astype(np.float32))
    return tmp_path / "i.png", tmp_path / "d.png"


def test_refine_writes_files_with_units_in_their_names_and_says_where(
    tmp_path, checkpoints, capsys
):
    image, depth = _scene_files(tmp_path)
    out = tmp_path / "out"
    argv = ["--device", "cpu", "refine", "--image", str(image), "--depth", str(depth)]
    code = main([*argv, "--points", "20", "--out", str(out), "--checkpoints", str(checkpoints)])
    assert code == 0
    depth_png = np.asarray(Image.open(out / "refined_depth_mm.png"))
    assert depth_png.shape == (30, 40)
    assert depth_png.dtype == np.uint16
    depth_m = np.load(out / "refined_depth_m.npy", allow_pickle=False)
    assert depth_m.shape == (30, 40)
    np.testing.assert_allclose(depth_png[depth_m > 0] / 1000.0, depth_m[depth_m > 0], atol=6e-4)
    assert Image.open(out / "refined_depth_color.png").size[0] > 40  # map + colour bar
    report = json.loads((out / "metrics.json").read_text())
    assert report["n_points"] == 20
    assert set(report["metrics"]["MSPN"]) >= {"rmse", "mae", "rel", "d1"}
    # every baseline on the same D0 and S, the classical propagation methods included
    assert list(report["metrics"]) == [METHODS[m].label for m in ("mspn", *BASELINES)]
    assert "LS + IDW + joint bilateral" in report["metrics"]
    gif = Image.open(out / "mspn_animation.gif")
    assert gif.size[1] >= 30
    printed = capsys.readouterr().out
    assert "RMSE" in printed
    assert "  Edge-aware log-ratio (Levin 2004) RMSE" in printed
    for name in ("refined_depth_mm.png", "refined_depth_m.npy", "metrics.json"):
        assert str((out / name).resolve()) in printed  # full paths of what it wrote


def test_refine_takes_a_simulated_or_the_users_own_initial_depth(tmp_path, checkpoints, capsys):
    image, depth = _scene_files(tmp_path)
    base = ["--device", "cpu", "refine", "--image", str(image), "--points", "20",
            "--checkpoints", str(checkpoints)]  # fmt: skip
    out = tmp_path / "metric"
    assert main([*base, "--depth", str(depth), "--init-source", "metric", "--out", str(out)]) == 0
    report = json.loads((out / "metrics.json").read_text())
    assert report["initial_depth"] == "simulated (metric)"
    from sdr_core.data.io import read_depth
    from sdr_core.data.mde_errors import simulate_init_depth

    gt = read_depth(depth).depth
    simulated = simulate_init_depth(gt, "metric", 0)  # the preset evaluate uses, seed 0
    expected = float(np.sqrt(np.mean((simulated - gt) ** 2)))
    assert report["metrics"]["MDE only (D0)"]["rmse"] == pytest.approx(expected, rel=1e-4)
    own = tmp_path / "own.npy"  # metres by file type, as --depth's PNG is millimetres
    np.save(own, (1.1 * gt).astype(np.float32))
    out = tmp_path / "own"
    code = main([*base, "--depth", str(depth), "--init-depth", str(own), "--out", str(out)])
    assert code == 0
    report = json.loads((out / "metrics.json").read_text())
    assert report["initial_depth"] == "file own.npy"
    expected = float(np.sqrt(np.mean((0.1 * gt[gt > 0]) ** 2)))
    assert report["metrics"]["MDE only (D0)"]["rmse"] == pytest.approx(expected, rel=1e-4)
    capsys.readouterr()
    code = main([*base, "--sparse", str(depth), "--init-source", "metric", "--out", str(out)])
    assert code == 2
    assert "--init-source metric simulates D0 from --depth: give it" in capsys.readouterr().err


def test_refine_frames_and_colours_are_the_studios(tmp_path, checkpoints):
    """The GIF has the studio's frames (no restart) and the preview the run's depth scale."""
    from sdr_core import report, viz
    from sdr_core.data.io import read_depth
    from sdr_core.data.mde_errors import simulate_init_depth

    image, depth = _scene_files(tmp_path)
    out = tmp_path / "out"
    argv = ["--device", "cpu", "refine", "--image", str(image), "--depth", str(depth),
            "--points", "20", "--init-source", "metric", "--out", str(out),
            "--checkpoints", str(checkpoints)]  # fmt: skip
    assert main(argv) == 0
    first, second = json.loads((out / "metrics.json").read_text())["schedule"]
    gt = read_depth(depth).depth
    scales = viz.run_scales(simulate_init_depth(gt, "metric", 0), gt)  # D0 of seed 0
    with Image.open(out / "mspn_animation.gif") as gif:
        assert gif.n_frames == 1 + first + second  # D0, then every iteration
    expected = report.write_depth_files(
        tmp_path / "expected", np.load(out / "refined_depth_m.npy"), scales.depth_range
    )[-1]
    assert (out / "refined_depth_color.png").read_bytes() == expected.read_bytes()


def test_the_app_and_the_cli_write_the_same_file_names():
    import inspect

    from studio import run

    assert "report.write_run_files" in inspect.getsource(run)


def test_bad_input_prints_one_line_with_the_full_path_and_exits_2(tmp_path, checkpoints, capsys):
    missing = tmp_path / "missing.png"
    argv = ["refine", "--image", str(missing), "--points", "5", "--out", str(tmp_path / "o")]
    assert main([*argv, "--checkpoints", str(checkpoints)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --image: no such file: ")
    assert str(missing.resolve()) in err
    assert err.count("\n") == 1

    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    argv = ["refine", "--image", str(broken), "--points", "5", "--out", str(tmp_path / "o")]
    assert main([*argv, "--checkpoints", str(checkpoints)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {broken.resolve()}: ")  # the reader's reason, full path


def test_refine_without_measurements_says_what_to_give(tmp_path, checkpoints, capsys):
    image, _ = _scene_files(tmp_path)
    argv = ["refine", "--image", str(image), "--out", str(tmp_path / "o")]
    assert main([*argv, "--checkpoints", str(checkpoints)]) == 2
    assert "give --depth" in capsys.readouterr().err


def test_help_is_written_for_users(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    top = capsys.readouterr().out
    assert "argparse" not in top  # no developer docstring
    assert "refine one image's depth" in top
    assert "python -m sdr_core refine --image" in top  # an example to copy
    with pytest.raises(SystemExit):
        main(["refine", "--help"])
    refine = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    assert "(default: 100)" in refine
    assert "{auto,reference,fast,native_grad,native,triton}" in refine
    assert "refined_depth_mm.png (16-bit, millimetres)" in refine


@pytest.mark.parametrize("command", ["refine", "evaluate", "train"])
def test_every_option_has_help_text(command):
    from sdr_core.__main__ import _parser

    subparsers = next(a for a in _parser()._actions if a.dest == "command")
    parser = subparsers.choices[command]
    options = [a for a in parser._actions if a.option_strings and a.dest != "help"]
    assert len(options) >= 12
    assert [a.option_strings[0] for a in options if not a.help] == []


def test_train_help_states_the_config_defaults(capsys):
    """The defaults shown are TrainConfig's, so help and code cannot drift apart."""
    from sdr_core.train import TrainConfig

    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    default = TrainConfig()
    assert f"optimiser steps (default {default.steps})" in text
    assert f"(default {default.grad_iterations})" in text
    assert "halved at 50 %/67 %/83 % of the steps" in text


def test_train_options_reach_the_guidance_config_and_distillation(tmp_path, monkeypatch):
    import sdr_core.train as train_module

    seen = []
    monkeypatch.setattr(train_module, "train", lambda config, device=None: seen.append(config))
    args = ["train", "--out-dir", str(tmp_path), "--guidance-decoder-dims", "128,96,64,16,16"]
    args += ["--guidance-stem-dim", "8", "--upsample", "resize", "--distill-from", "teacher"]
    assert main([*args, "--edge-loss-weight", "4"]) == 0
    (config,) = seen
    assert config.guidance.decoder_dims == (128, 96, 64, 16, 16)
    assert (config.guidance.stem_dim, config.guidance.upsample) == (8, "resize")
    assert (config.distill_from, config.edge_loss_weight) == ("teacher", 4.0)


def test_evaluate_loads_a_refinement_run_folder_with_a_separate_mde(tmp_path, checkpoints, capsys):
    """A 'train --stage sdr' folder has no mde.safetensors: --mde-checkpoint supplies it."""
    run = tmp_path / "run"
    run.mkdir()
    for name in ("guidance.safetensors", "mspn.safetensors"):
        (run / name).write_bytes((checkpoints / name).read_bytes())
    args = ["--device", "cpu", "evaluate", "--checkpoints", str(run), "--points", "3"]
    args += ["--lines", "", "--no-hole", "--n-scenes", "1", "--size", "24", "32"]
    args += ["--no-middlebury", "--methods", "mspn,mde", "--no-mask-checkpoints", ""]
    assert main([*args, "--out-dir", str(tmp_path / "e0")]) == 2
    err = capsys.readouterr().err
    assert "no mde.safetensors" in err
    assert "--mde-checkpoint" in err  # says what to pass instead
    mde = str(checkpoints / "mde.safetensors")
    assert main([*args, "--mde-checkpoint", mde, "--out-dir", str(tmp_path / "e1")]) == 0
    report = json.loads((tmp_path / "e1" / "results.json").read_text())
    assert report["heldout"]["points"]["mspn"]["3"]["rmse"] > 0


def test_bench_runs_on_a_small_image(capsys):
    assert (
        main(
            [
                "--device",
                "cpu",
                "bench",
                "--height",
                "32",
                "--width",
                "40",
                "--points",
                "5",
                "--repeats",
                "1",
            ]
        )
        == 0
    )
    assert "full refinement" in capsys.readouterr().out


@pytest.mark.parametrize(("schedule", "second"), [("eq13", "N"), ("fixed", "6")])
def test_bench_times_the_chosen_second_layer_schedule(capsys, schedule, second):
    argv = ["--device", "cpu", "bench", "--height", "32", "--width", "40", "--points", "1"]
    assert main([*argv, "--repeats", "1", "--second-layer-schedule", schedule]) == 0
    first, layer2 = re.search(r"schedule \((\d+), (\d+)\)", capsys.readouterr().out).groups()
    assert layer2 == (first if second == "N" else "6")


def test_readme_names_the_files_the_writer_writes():
    from pathlib import Path

    from sdr_core import report

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    names = [report.DEPTH_MM_PNG, report.DEPTH_M_NPY, report.DEPTH_COLOR_PNG,
             report.ANIMATION_GIF, report.POINT_CLOUD_PLY, report.METRICS_JSON]  # fmt: skip
    assert [name for name in names if name not in readme] == []
    assert "pip install -e ." in readme
    assert "skipped" in readme  # the browser test without Chromium


def test_num_threads_is_applied_and_a_bad_count_is_refused(tmp_path, checkpoints, capsys):
    """--num-threads sets torch's threads for refine / evaluate; 0 or "two" get a message."""
    import torch

    image, depth = _scene_files(tmp_path)
    argv = ["--device", "cpu", "refine", "--image", str(image), "--depth", str(depth)]
    argv += ["--points", "5", "--out", str(tmp_path / "o"), "--checkpoints", str(checkpoints)]
    threads = torch.get_num_threads()
    wanted = 1 if threads > 1 else 2
    try:
        assert main([*argv, "--num-threads", str(wanted)]) == 0
        assert torch.get_num_threads() == wanted
    finally:
        torch.set_num_threads(threads)
    capsys.readouterr()
    for bad, says in (("0", "at least 1, got 0"), ("two", "whole number of threads")):
        with pytest.raises(SystemExit):
            main(["evaluate", "--num-threads", bad])
        assert says in capsys.readouterr().err
