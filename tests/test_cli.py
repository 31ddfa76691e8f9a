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
from sdr_core.pipeline import build_untrained_pipeline


@pytest.fixture
def checkpoints(tmp_path):
    pipe = build_untrained_pipeline(TINY, TINY_MDE, device="cpu")
    folder = tmp_path / "ckpt"
    save_module(folder / "mde.safetensors", pipe.mde.net, TINY_MDE, "mde")
    save_module(folder / "guidance.safetensors", pipe.guidance, TINY.guidance, "guidance")
    save_module(folder / "mspn.safetensors", pipe.mspn, TINY.mspn, "mspn")
    return folder


def test_refine_writes_depth_animation_and_metrics(tmp_path, checkpoints, capsys):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)).save(tmp_path / "i.png")
    write_depth_png(tmp_path / "d.png", (1 + 3 * rng.random((30, 40))).astype(np.float32))
    out = tmp_path / "out"
    code = main(
        [
            "--device",
            "cpu",
            "refine",
            "--image",
            str(tmp_path / "i.png"),
            "--depth",
            str(tmp_path / "d.png"),
            "--points",
            "20",
            "--out",
            str(out),
            "--checkpoints",
            str(checkpoints),
        ]
    )
    assert code == 0
    depth_png = np.asarray(Image.open(out / "depth.png"))
    assert depth_png.shape == (30, 40)
    assert depth_png.dtype == np.uint16
    assert np.load(out / "depth.npy", allow_pickle=False).shape == (30, 40)
    report = json.loads((out / "metrics.json").read_text())
    assert report["n_points"] == 20
    assert set(report["mspn"]) >= {"rmse", "mae", "rel", "d1"}
    gif = Image.open(out / "animation.gif")
    assert gif.size[1] >= 30
    assert "rmse" in capsys.readouterr().out


def test_bad_input_prints_one_line_and_exits_2(tmp_path, checkpoints, capsys):
    code = main(
        [
            "refine",
            "--image",
            str(tmp_path / "missing.png"),
            "--points",
            "5",
            "--out",
            str(tmp_path / "o"),
            "--checkpoints",
            str(checkpoints),
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    assert "missing.png" in err


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
