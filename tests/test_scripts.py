"""The helper scripts the model card names run as written: `python scripts/<name>.py` from the
repository root, without the package installed."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from sdr_core.checkpoints import load_module
from sdr_core.mspn import MSPN, MSPNConfig
from sdr_core.pipeline import DEFAULT_CHECKPOINT_DIR

ROOT = Path(__file__).resolve().parents[1]


def _run_script(name: str, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run(
        [sys.executable, f"scripts/{name}", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    "name",
    [
        "init_layer1_from_layer2.py",
        "select_schedule.py",
        "make_assets.py",
        "quality_bar.py",
        "select_design.py",  # imports the quality bar from scripts/
        "set_alignment.py",
        "resize_upsampling.py",
    ],
)
def test_script_starts_from_the_repository_root(name):
    result = _run_script(name, "--help")
    assert result.returncode == 0, result.stderr
    assert "usage:" in result.stdout


def test_init_layer1_from_layer2_copies_the_second_layer(tmp_path):
    result = _run_script(
        "init_layer1_from_layer2.py", "--src", str(DEFAULT_CHECKPOINT_DIR), "--out", str(tmp_path)
    )
    assert result.returncode == 0, result.stderr
    out = load_module(tmp_path / "mspn.safetensors", "mspn", MSPNConfig, MSPN)
    src = load_module(DEFAULT_CHECKPOINT_DIR / "mspn.safetensors", "mspn", MSPNConfig, MSPN)
    layer2 = src.layers[1].state_dict()
    for layer in out.layers:  # layer 1 now equals layer 2, and layer 2 is unchanged
        for name, value in layer.state_dict().items():
            torch.testing.assert_close(value, layer2[name], rtol=0, atol=0)
    assert (tmp_path / "guidance.safetensors").read_bytes() == (
        DEFAULT_CHECKPOINT_DIR / "guidance.safetensors"
    ).read_bytes()


def test_set_alignment_rewrites_the_config_and_keeps_the_weights(tmp_path):
    import shutil

    from sdr_core.checkpoints import read_metadata

    path = tmp_path / "mspn.safetensors"
    shutil.copy(DEFAULT_CHECKPOINT_DIR / "mspn.safetensors", path)
    before = read_metadata(path)
    args = ("--init-alignment", "shrunk_median_scale", "--prior-points", "2.5")
    result = _run_script("set_alignment.py", str(path), *args)
    assert result.returncode == 0, result.stderr
    out = load_module(path, "mspn", MSPNConfig, MSPN)
    src = load_module(DEFAULT_CHECKPOINT_DIR / "mspn.safetensors", "mspn", MSPNConfig, MSPN)
    assert (out.config.init_alignment, out.config.alignment_prior_points) == (
        "shrunk_median_scale",
        2.5,
    )
    assert dataclasses.replace(out.config, alignment_prior_points=src.config.alignment_prior_points,
                               init_alignment=src.config.init_alignment) == src.config  # fmt: skip
    for name, value in out.state_dict().items():
        torch.testing.assert_close(value, src.state_dict()[name], rtol=0, atol=0)
    after = read_metadata(path)
    assert after["train_config"] == before["train_config"]  # how it was trained stays said
    assert "-> 'shrunk_median_scale'" in after["alignment_changed"]
    guidance = tmp_path / "guidance.safetensors"
    shutil.copy(DEFAULT_CHECKPOINT_DIR / "guidance.safetensors", guidance)
    refused = _run_script("set_alignment.py", str(guidance), *args)
    assert refused.returncode == 2
    assert "not an MSPN checkpoint" in refused.stderr


def test_gpu_run_smoke_mode_writes_its_files(tmp_path):
    # The GPU session script, run on CPU: every stage runs and leaves its file in OUT_DIR.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHON"] = sys.executable
    out = tmp_path / "gpu"
    result = subprocess.run(
        ["bash", "scripts/gpu_run.sh", str(out), "--smoke"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(
        ["env.txt", "tests.log", "bench_gpu.md", "bench_gpu.json", "train.log", "log.csv",
         "guidance.safetensors", "mspn.safetensors"]
    )  # fmt: skip
    assert "pytest exit 0" in (out / "tests.log").read_text()
    assert "bench exit 0" in (out / "bench_gpu.md").read_text()
    assert "train exit 0" in (out / "train.log").read_text()
    assert (out / "log.csv").read_text().splitlines()[-1].startswith("2,")
    load_module(out / "mspn.safetensors", "mspn", MSPNConfig, MSPN)


def _checkerboard(g: torch.Tensor) -> float:
    """Mean |G - its 2 x 2 block mean|: the stride-2 pattern of transposed convolutions."""
    blocks = torch.nn.functional.avg_pool2d(g, 2)
    smooth = torch.nn.functional.interpolate(blocks, scale_factor=2, mode="nearest")
    return float((g[..., : smooth.shape[-2], : smooth.shape[-1]] - smooth).abs().mean())


def test_resize_upsampling_keeps_the_network_and_removes_the_checkerboard(tmp_path):
    from sdr_core.eval_scenes import heldout_scenes
    from sdr_core.guidance import GuidanceConfig, GuidanceNet

    result = _run_script(
        "resize_upsampling.py", "--src", str(DEFAULT_CHECKPOINT_DIR), "--out", str(tmp_path)
    )
    assert result.returncode == 0, result.stderr
    src = load_module(
        DEFAULT_CHECKPOINT_DIR / "guidance.safetensors", "guidance", GuidanceConfig, GuidanceNet
    )
    out = load_module(tmp_path / "guidance.safetensors", "guidance", GuidanceConfig, GuidanceNet)
    assert (src.config.upsample, out.config.upsample) == ("transposed", "resize")
    assert dataclasses.replace(out.config, upsample="transposed") == src.config
    converted = out.state_dict()
    for name, value in src.state_dict().items():  # every weight but the upsampling kept
        if ".up." not in name:
            torch.testing.assert_close(converted[name], value, rtol=0, atol=0)
    # stride 1, the transposed convolution and its converted kernel agree exactly
    up = src.blocks[0].up
    x = torch.randn(1, up.in_channels, 9, 11)
    plain = torch.nn.functional.conv2d(x, converted["blocks.0.up.conv.weight"], up.bias, padding=1)
    torch.testing.assert_close(
        plain,
        torch.nn.functional.conv_transpose2d(x, up.weight, up.bias, padding=1),
        rtol=1e-5,
        atol=1e-5,
    )
    scene = heldout_scenes(1)[0]
    image = torch.from_numpy(scene.rgb).permute(2, 0, 1)[None].float() / 255
    depth = torch.from_numpy(scene.depth)[None, None]
    sparse = torch.zeros_like(depth)
    sparse[..., 100, 150] = depth[..., 100, 150]
    with torch.no_grad():
        before, after = (net.eval()(image, sparse, depth.clamp(min=0.5)) for net in (src, out))
    pooled = torch.nn.functional.avg_pool2d(torch.cat([before, after]), 2).flatten(1)
    assert float(torch.corrcoef(pooled)[0, 1]) > 0.95  # the same features, a usable start
    assert _checkerboard(after) < _checkerboard(before) / 3
    assert (tmp_path / "mspn.safetensors").read_bytes() == (
        DEFAULT_CHECKPOINT_DIR / "mspn.safetensors"
    ).read_bytes()
    again = _run_script(
        "resize_upsampling.py", "--src", str(tmp_path), "--out", str(tmp_path / "x")
    )
    assert again.returncode == 2
    assert "already upsamples by 'resize'" in again.stderr
