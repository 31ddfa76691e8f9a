"""Training: a few steps reduce the loss, resume is exact, a 2-process DDP run works."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import sdr_core.train as train_module
from sdr_core.checkpoints import load_module
from sdr_core.distill import distillation_loss, load_teacher
from sdr_core.guidance import GuidanceConfig, GuidanceNet
from sdr_core.losses import depth_edge_weights, l1_l2_loss
from sdr_core.mde.bundled import MonoDepthConfig
from sdr_core.mspn import MSPN, MSPNConfig
from sdr_core.train import TrainConfig, _batch, sample_sparse, train

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _restore_threads():
    # train() applies TrainConfig.num_threads process-wide; give the next test its threads back
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def tiny(tmp_path: Path, **overrides) -> TrainConfig:
    values = {
        "out_dir": str(tmp_path / "run"),
        "steps": 4,
        "batch_size": 2,
        "height": 32,
        "width": 40,
        "guidance": GuidanceConfig(
            out_dim=8, stem_dim=4, encoder_dims=(8, 8, 8, 8), decoder_dims=(8,) * 5
        ),
        "mspn": MSPNConfig(guidance_dim=8, embed_dim=4, window=5),
        "mde": MonoDepthConfig(encoder_dims=(8, 8, 8, 8), decoder_dims=(8, 8, 8, 8)),
        "mde_checkpoint": None,
        "init_sources": (("harsh", 1.0),),
        "max_points": 50,
        "grad_iterations": 2,
        "log_every": 1,
        "checkpoint_every": 2,
        "num_threads": 1,
    }
    values.update(overrides)
    return TrainConfig(**values)


def fake_batch(config: TrainConfig, step: int, rank: int, mde=None) -> dict:
    """A deterministic stand-in for rendered scenes: smooth depth, matching image."""
    g = torch.Generator().manual_seed(1000 * step + rank)
    b, h, w = config.batch_size, config.height, config.width
    ramp = torch.linspace(1.0, 4.0, w).view(1, 1, 1, w).expand(b, 1, h, w)
    depth = ramp * (0.8 + 0.4 * torch.rand(b, 1, 1, 1, generator=g))
    image = (depth / 5).expand(b, 3, h, w) + 0.05 * torch.rand(b, 3, h, w, generator=g)
    keep = torch.rand(b, 1, h, w, generator=g) < 0.02
    keep[:, :, h // 2, w // 2] = True
    return {
        "image": image.clamp(0, 1),
        "depth": depth.contiguous(),
        "sparse": torch.where(keep, depth, torch.zeros_like(depth)),
        "schedule": (6, 6),
        "init_kinds": ["harsh"] * b,
        "init_seeds": [step * 7 + i for i in range(b)],
    }


def test_sample_sparse_respects_ranges(tmp_path):
    import numpy as np

    config = tiny(tmp_path, lines_fraction=0.0, min_points=5, max_points=5)
    gt = np.full((32, 40), 2.0, dtype=np.float32)
    sparse, s = sample_sparse(gt, np.random.default_rng(0), config)
    assert s == 5
    assert int((sparse > 0).sum()) == 5


def test_batches_are_deterministic_by_step(tmp_path):
    config = tiny(tmp_path)
    a, b, c = _batch(config, 3, 0), _batch(config, 3, 0), _batch(config, 4, 0)
    assert torch.equal(a["image"], b["image"])
    assert torch.equal(a["sparse"], b["sparse"])
    assert not torch.equal(a["image"], c["image"])


@pytest.mark.parametrize("stage", ["sdr", "mde"])
def test_a_few_steps_reduce_the_loss_on_a_fixed_batch(tmp_path, monkeypatch, stage):
    config = tiny(tmp_path, stage=stage, steps=25, lr=3e-3, lr_milestones=())
    fixed = _batch(config, 0, 0)
    monkeypatch.setattr(train_module, "_batch", lambda *_: fixed)
    out = train(config, device="cpu")
    losses = [float(line.split(",")[1]) for line in (out / "log.csv").read_text().split()[1:]]
    assert len(losses) == 25
    assert sum(losses[-5:]) / 5 < 0.8 * sum(losses[:5]) / 5, losses


def test_resume_continues_exactly(tmp_path, monkeypatch):
    monkeypatch.setattr(train_module, "_batch", fake_batch)
    # no milestones: they are fractions of `steps`, which differs between the two b runs
    straight = train(tiny(tmp_path / "a", steps=4, lr_milestones=()), device="cpu")
    train(tiny(tmp_path / "b", steps=2, lr_milestones=()), device="cpu")
    resumed = train(tiny(tmp_path / "b", steps=4, lr_milestones=()), device="cpu")
    a = load_module(straight / "guidance.safetensors", "guidance", GuidanceConfig, GuidanceNet)
    b = load_module(resumed / "guidance.safetensors", "guidance", GuidanceConfig, GuidanceNet)
    for key, value in a.state_dict().items():
        torch.testing.assert_close(b.state_dict()[key], value)


def rank_independent_batch(config: TrainConfig, step: int, rank: int, mde=None) -> dict:
    """Same data on every rank, with an iteration count that changes per step."""
    batch = fake_batch(config, step, 0)
    batch["schedule"] = (6 + 3 * step, 6)
    return batch


def test_two_process_ddp_matches_single_process(tmp_path, monkeypatch):
    # With identical data on both ranks, DDP's averaged gradient equals the single-process
    # gradient, so the weights must agree after a few steps (measured: exactly equal).
    script = tmp_path / "ddp.py"
    script.write_text(
        textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(REPO)!r})
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from pathlib import Path
        import sdr_core.train as T
        from test_train import tiny, rank_independent_batch
        T._batch = rank_independent_batch
        T.train(tiny(Path({str(tmp_path / "ddp")!r}), steps=3), device="cpu")
    """)
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node=2",
            str(script),
        ],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    ddp_log = (tmp_path / "ddp" / "run" / "log.csv").read_text().split()
    assert len(ddp_log) == 4  # header + 3 steps

    monkeypatch.setattr(train_module, "_batch", rank_independent_batch)
    torch.set_num_threads(1)
    single = train(tiny(tmp_path / "single", steps=3), device="cpu")
    for name in ("guidance", "mspn"):
        a = load_file(str(tmp_path / "ddp" / "run" / f"{name}.safetensors"))
        b = load_file(str(single / f"{name}.safetensors"))
        for key in a:
            torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-6)


def test_propagation_stays_float32_under_autocast(tmp_path):
    config = tiny(tmp_path)
    model, _ = train_module._build(config, torch.device("cpu"))
    batch = fake_batch(config, 0, 0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(batch["image"], batch["sparse"], batch["depth"] * 0.9, (6, 6), None)
        every = model(batch["image"], batch["sparse"], batch["depth"], (6, 6), None, True, True)
    assert [depth.dtype for depth in out] == [torch.float32]
    assert [depth.dtype for depth in every] == [torch.float32] * 12


def test_run_schedule_governs_batches_and_the_exported_model(tmp_path, monkeypatch):
    # A first run with the paper's schedule ...
    first = train(tiny(tmp_path / "a", steps=1), device="cpu")
    eq13 = dataclasses.replace(tiny(tmp_path).mspn, second_layer_schedule="eq13")
    config = tiny(tmp_path / "b", steps=1, mspn=eq13, init_dir=str(first))
    # ... its batches get the second layer's eq. 13 count (>= 6, equal to the first's) ...
    batch = _batch(config, 0, 0)
    assert batch["schedule"][1] == max(batch["schedule"][0], 6)
    seen = []
    real_forward = train_module.SDRModel.forward

    def spy(self, image, sparse, init_depth, schedule, *rest):
        seen.append(schedule)
        return real_forward(self, image, sparse, init_depth, schedule, *rest)

    monkeypatch.setattr(train_module.SDRModel, "forward", spy)
    out = train(config, device="cpu")
    assert seen == [batch["schedule"]]
    # ... and a run started from its files exports the run's schedule with their weights.
    mspn = load_module(out / "mspn.safetensors", "mspn", MSPNConfig, MSPN)
    assert mspn.config.second_layer_schedule == "eq13"


def test_cli_schedule_flags_reach_the_config(monkeypatch):
    from sdr_core import __main__ as cli

    captured = {}

    def fake_train(config, device=None):
        captured["c"] = config
        return Path("x")

    monkeypatch.setattr(train_module, "train", fake_train)
    argv = ["train", "--out-dir", "x", "--kappa", "3", "--second-layer-schedule", "eq13"]
    assert cli.main(argv) == 0
    assert captured["c"].use_mask is True
    assert cli.main([*argv, "--no-mask"]) == 0
    assert captured["c"].use_mask is False
    assert captured["c"].mspn.kappa == 3.0
    assert captured["c"].mspn.second_layer_schedule == "eq13"
    assert captured["c"].mspn.backend == "auto"


def test_no_mask_training_runs_the_ablation(tmp_path, monkeypatch):
    seen = []
    real_steps = train_module.MSPN.refine_steps

    def spy(self, init_depth, sparse, guidance, schedule=None, use_mask=True, *rest):
        seen.append(use_mask)
        return real_steps(self, init_depth, sparse, guidance, schedule, use_mask, *rest)

    monkeypatch.setattr(train_module.MSPN, "refine_steps", spy)
    monkeypatch.setattr(train_module, "_batch", fake_batch)
    train(tiny(tmp_path, steps=1, use_mask=False), device="cpu")
    assert seen == [False]


def test_initial_depth_kinds_are_drawn_per_sample(tmp_path):
    config = tiny(tmp_path, batch_size=64, init_sources=(("metric", 3.0), ("relative", 1.0)))
    kinds = _batch(config, 0, 0)["init_kinds"]
    assert set(kinds) == {"metric", "relative"}
    assert 0.55 < kinds.count("metric") / len(kinds) < 0.95  # expected 0.75
    only = _batch(tiny(tmp_path, init_sources=(("mde", 0.0), ("harsh", 1.0))), 0, 0)
    assert only["init_kinds"] == ["harsh", "harsh"]


def test_initial_depths_follow_their_kind(tmp_path):
    from sdr_core.data.mde_errors import INIT_DEPTH_PRESETS, simulate_mde_errors

    batch = fake_batch(tiny(tmp_path), 0, 0)
    gt = batch["depth"]
    init = train_module._initial_depths(None, batch["image"], gt, ["metric", "mde"], [4, 5])
    metric = simulate_mde_errors(
        gt[:1], torch.Generator().manual_seed(4), INIT_DEPTH_PRESETS["metric"]
    )
    harsh = simulate_mde_errors(gt[1:], torch.Generator().manual_seed(5))  # no MDE: harsh
    torch.testing.assert_close(init, torch.cat([metric, harsh]), rtol=0, atol=0)


def test_iteration_loss_adds_every_tracked_iteration(tmp_path, monkeypatch):
    config = tiny(tmp_path, grad_iterations=2, iteration_loss_weight=0.5)
    model, _ = train_module._build(config, torch.device("cpu"))
    batch = fake_batch(config, 0, 0)
    batch["schedule"] = (6, 6)
    seen = []
    real = train_module.l1_l2_loss

    def spy(pred, gt):
        seen.append(pred.requires_grad)
        return real(pred, gt)

    monkeypatch.setattr(train_module, "l1_l2_loss", spy)
    train_module._loss_step(model, None, batch, config, torch.device("cpu"))
    # the final depth, then the 2 + 2 iterations with a graph (the final among them)
    assert seen == [True] * 5
    seen.clear()
    plain = dataclasses.replace(config, iteration_loss_weight=0.0)
    train_module._loss_step(model, None, batch, plain, torch.device("cpu"))
    assert seen == [True]


def test_training_aligns_d0_with_the_configured_prior_points(tmp_path):
    """The training model shrinks few points' scale by the MSPN config's k, as inference does."""
    config = tiny(tmp_path, mspn=MSPNConfig(guidance_dim=8, embed_dim=4, window=5,
                                            init_alignment="shrunk_median_scale"))  # fmt: skip
    model, _ = train_module._build(config, torch.device("cpu"))
    batch = fake_batch(config, 0, 0)
    init, sparse = batch["depth"] * 1.3, torch.zeros_like(batch["depth"])
    sparse[:, :, 5, 7] = batch["depth"][:, :, 5, 7]  # one point per sample: ratio 1 / 1.3
    seen = []
    real = train_module.align_init_depth

    def spy(*args, **kwargs):
        seen.append(real(*args, **kwargs))
        return seen[-1]

    for k in (0.0, 3.0):
        model.mspn.config = dataclasses.replace(model.mspn.config, alignment_prior_points=k)
        with pytest.MonkeyPatch.context() as patch, torch.no_grad():
            patch.setattr(train_module, "align_init_depth", spy)
            model(batch["image"], sparse, init, (2, 1))
        scale = (1 / 1.3) ** (1 / (1 + k))
        torch.testing.assert_close(seen[-1], init * scale, rtol=1e-5, atol=1e-6)


def test_starting_states_are_not_outputs(tmp_path):
    # Every iteration's depth is an output at inference; the layers' starting states
    # (iteration 0 of refine_steps) are inputs and never reach the loss.
    config = tiny(tmp_path)
    model, _ = train_module._build(config, torch.device("cpu"))
    batch = fake_batch(config, 0, 0)
    init = batch["depth"] * 1.1
    with torch.no_grad():
        depths = model(batch["image"], batch["sparse"], init, (3, 2), all_iterations=True)
        final = model(batch["image"], batch["sparse"], init, (3, 2))
    assert len(depths) == 3 + 2
    torch.testing.assert_close(depths[-1], final[0], rtol=0, atol=0)


def test_cli_initial_depth_flags_reach_the_config(monkeypatch):
    from sdr_core import __main__ as cli

    captured = {}
    monkeypatch.setattr(train_module, "train", lambda config, device=None: captured.setdefault(
        "c", config) and Path("x"))  # fmt: skip
    argv = ["train", "--out-dir", "x", "--init-sources", "metric:2,mde,relative:0.5",
            "--init-alignment", "residual_idw", "--upsample", "resize",
            "--iteration-loss-weight", "0.25"]  # fmt: skip
    assert cli.main(argv) == 0
    config = captured["c"]
    assert config.init_sources == (("metric", 2.0), ("mde", 1.0), ("relative", 0.5))
    assert config.mspn.init_alignment == "residual_idw"
    argv = ["train", "--out-dir", "x", "--init-alignment", "shrunk_median_scale",
            "--alignment-prior-points", "2.5"]  # fmt: skip
    captured.clear()
    assert cli.main(argv) == 0
    shrunk = captured["c"]
    assert (shrunk.mspn.init_alignment, shrunk.mspn.alignment_prior_points) == (
        "shrunk_median_scale", 2.5)  # fmt: skip
    assert config.guidance.upsample == "resize"
    assert config.iteration_loss_weight == 0.25
    with pytest.raises(SystemExit):
        cli.main(["train", "--init-sources", "metric:lots"])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"init_sources": (("oracle", 1.0),)}, "init_sources"),
        ({"init_sources": (("metric", 0.0),)}, "weights"),
        ({"init_sources": ()}, "init_sources"),
        ({"iteration_loss_weight": -1.0}, "iteration_loss_weight"),
    ],
)
def test_config_rejects_bad_initial_depth_settings(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        tiny(tmp_path, **kwargs)


def test_time_limit_stops_after_the_step_and_exports(tmp_path, monkeypatch):
    monkeypatch.setattr(train_module, "_batch", fake_batch)
    out = train(tiny(tmp_path, steps=50, time_limit_s=0.0, checkpoint_every=100), device="cpu")
    log = (out / "log.csv").read_text().split()
    assert log[1:] == [log[1]]  # one step was run and logged ...
    assert log[1].startswith("1,")
    mspn = load_module(out / "mspn.safetensors", "mspn", MSPNConfig, MSPN)  # ... and exported
    assert mspn.config.window == 5
    resumed = train(tiny(tmp_path, steps=2), device="cpu")  # the state resumes at step 1
    assert (resumed / "log.csv").read_text().split()[-1].startswith("2,")


def test_refiner_init_applies_to_fresh_runs_only(tmp_path):
    config = tiny(tmp_path, mspn_init="refiner")
    model, _ = train_module._build(config, torch.device("cpu"))
    for layer in model.mspn.layers:
        assert float(layer.rel_pos_bias[4, 4]) == 10.0  # window 5: offset 0 at (4, 4)
        assert float(layer.to_qk.weight[:, 0].abs().max()) == 0.0
    with pytest.raises(ValueError, match="mspn_init"):
        tiny(tmp_path, mspn_init="zeros")


def test_mask_coverage_loss_is_the_unreached_share_of_layer_one(tmp_path, monkeypatch):
    config = tiny(tmp_path, mask_coverage_weight=2.0, grad_iterations=None)
    model, _ = train_module._build(config, torch.device("cpu"))
    batch = fake_batch(config, 0, 0)
    batch["schedule"] = (3, 2)
    outputs = model(batch["image"], batch["sparse"], batch["depth"], (3, 2), None, True, False,
                    True)  # fmt: skip
    uncovered = outputs[-1]
    layer1 = [s for s in model.mspn.refine_steps(
        batch["depth"], batch["sparse"],
        model.guidance(batch["image"], batch["sparse"], batch["depth"]), (3, 2),
    ) if s.layer == 1][-1]  # fmt: skip
    torch.testing.assert_close(uncovered, 1 - layer1.mask)
    monkeypatch.setattr(train_module, "_initial_depths", lambda *a: batch["depth"])
    with_cov = train_module._loss_step(model, None, batch, config, torch.device("cpu"))
    plain = dataclasses.replace(config, mask_coverage_weight=0.0)
    without = train_module._loss_step(model, None, batch, plain, torch.device("cpu"))
    expected = 2.0 * float((1 - layer1.mask).mean())
    assert float(with_cov - without) == pytest.approx(expected, rel=1e-5)
    assert expected > 0.1  # three iterations from a few points leave most pixels unreached


def test_mask_confidence_loss_reads_layer_ones_masks_and_depths(tmp_path, monkeypatch):
    from sdr_core.losses import mask_confidence_loss

    config = tiny(tmp_path, mask_confidence_weight=0.5, grad_iterations=None)
    model, _ = train_module._build(config, torch.device("cpu"))
    batch = fake_batch(config, 0, 0)
    batch["schedule"] = (3, 2)
    init = batch["depth"] * 0.8
    outputs = model(batch["image"], batch["sparse"], init, (3, 2), None, True, False, False,
                    True)  # fmt: skip
    final, mask, layer1, aligned = outputs
    aligned_here = train_module.align_init_depth(
        init, batch["sparse"], model.mspn.config.init_alignment,
        model.mspn.config.alignment_prior_points,
    )  # fmt: skip
    guidance = model.guidance(batch["image"], batch["sparse"], aligned_here)
    states = list(model.mspn.refine_steps(aligned_here, batch["sparse"], guidance, (3, 2)))
    layer1_states = [s for s in states if s.layer == 1 and s.iteration > 0]
    assert len(layer1_states) == 3  # every one carries a graph (grad_iterations None)
    torch.testing.assert_close(mask, torch.cat([s.mask for s in layer1_states]))
    torch.testing.assert_close(layer1, torch.cat([s.depth for s in layer1_states]))
    torch.testing.assert_close(aligned, aligned_here.repeat(3, 1, 1, 1))
    torch.testing.assert_close(final, states[-1].depth)
    assert mask.requires_grad
    assert not layer1.requires_grad
    monkeypatch.setattr(train_module, "_initial_depths", lambda *a: init)
    with_term = train_module._loss_step(model, None, batch, config, torch.device("cpu"))
    plain = dataclasses.replace(config, mask_confidence_weight=0.0)
    without = train_module._loss_step(model, None, batch, plain, torch.device("cpu"))
    term = torch.stack([
        mask_confidence_loss(s.mask, s.depth, aligned_here, batch["depth"], batch["sparse"])
        for s in layer1_states
    ]).mean()  # equal pixel counts: the mean over iterations is the mean over all  # fmt: skip
    assert float(term) > 0.01
    assert float(with_term - without) == pytest.approx(0.5 * float(term), rel=1e-4)
    with pytest.raises(ValueError, match="mask_confidence_weight"):
        tiny(tmp_path, mask_confidence_weight=-1.0)
    with pytest.raises(ValueError, match="needs stage 'sdr', a mask"):
        tiny(tmp_path, mask_confidence_weight=1.0, use_mask=False)


def test_density_matched_crops_keep_the_whole_scenes_density_and_schedule(tmp_path, monkeypatch):
    from sdr_core.mspn import iteration_schedule

    full = (96, 120)
    config = tiny(
        tmp_path, height=full[0], width=full[1], crop=(24, 30), density_matched=True,
        batch_size=8, crops_per_scene=4, lines_fraction=0.0, min_points=400, max_points=400,
    )  # fmt: skip
    batch = _batch(config, 0, 0)
    # 400 points on the whole scene: the crop (1/16 of it) holds about 25 of them
    assert batch["image"].shape == (8, 3, 24, 30)
    assert batch["depth"].shape == batch["sparse"].shape == batch["init"].shape == (8, 1, 24, 30)
    counts = (batch["sparse"] > 0).flatten(1).sum(1).float()
    assert 10 < float(counts.mean()) < 45
    assert batch["schedule"] == iteration_schedule(*full, 400, config.mspn)
    # the measurements are the ground truth, D0 is a whole-scene simulation cropped
    measured = batch["sparse"] > 0
    assert torch.equal(batch["sparse"][measured], batch["depth"][measured])
    assert (batch["init"] > 0).all()
    assert not torch.equal(batch["init"], batch["depth"])
    again = _batch(config, 0, 0)
    assert torch.equal(again["sparse"], batch["sparse"])
    assert torch.equal(again["init"], batch["init"])
    # four crops per rendered scene: two scenes for eight crops
    rendered = []
    real = train_module.generate_scene
    monkeypatch.setattr(train_module, "generate_scene", lambda *a: rendered.append(a) or real(*a))
    _batch(config, 1, 0)
    assert len(rendered) == 2


@pytest.mark.parametrize(
    ("count", "lines", "crop", "batch"),
    [(400, False, (24, 30), 8), (20, False, (48, 60), 2), (3, False, (96, 120), 1),
     (16, True, (24, 30), 8), (4, True, (48, 60), 2)],
)  # fmt: skip
def test_density_matched_crop_grows_when_few_points(tmp_path, count, lines, crop, batch):
    config = tiny(tmp_path, height=96, width=120, crop=(24, 30), density_matched=True,
                  batch_size=8)  # fmt: skip
    assert train_module.density_matched_crop(config, count, lines) == (crop, batch)


def test_density_matched_training_runs_in_the_ratio_domain(tmp_path):
    config = tiny(
        tmp_path, height=48, width=60, crop=(16, 20), density_matched=True, batch_size=4,
        crops_per_scene=2, steps=2, mspn=MSPNConfig(guidance_dim=8, embed_dim=4, window=5,
                                                    domain="ratio"),
    )  # fmt: skip
    out = train(config, device="cpu")
    mspn = load_module(out / "mspn.safetensors", "mspn", MSPNConfig, MSPN)
    assert mspn.config.domain == "ratio"
    with pytest.raises(ValueError, match="needs a crop"):
        tiny(tmp_path, density_matched=True)


def test_cli_density_and_domain_flags_reach_the_config(monkeypatch):
    from sdr_core import __main__ as cli

    captured = {}
    monkeypatch.setattr(train_module, "train", lambda c, device=None: captured.setdefault("c", c))
    argv = ["train", "--crop", "64", "80", "--density-matched", "--crops-per-scene", "4",
            "--domain", "ratio-depth"]  # fmt: skip
    assert cli.main(argv) == 0
    config = captured["c"]
    assert (config.crop, config.density_matched, config.crops_per_scene) == ((64, 80), True, 4)
    assert config.mspn.domain == "ratio-depth"


def test_training_loss_uses_the_edge_weights(tmp_path, monkeypatch):
    config = tiny(tmp_path, edge_loss_weight=4.0, grad_iterations=None)
    model, _ = train_module._build(config, torch.device("cpu"))
    batch = fake_batch(config, 0, 0)
    batch["schedule"] = (2, 2)
    batch["depth"][..., :, config.width // 2 :] *= 1.5  # give the scene a depth edge
    monkeypatch.setattr(train_module, "_initial_depths", lambda *a: batch["depth"] * 0.9)
    weighted = train_module._loss_step(model, None, batch, config, torch.device("cpu")).detach()
    with torch.no_grad():
        final = model(batch["image"], batch["sparse"], batch["depth"] * 0.9, (2, 2), None, True,
                      False, False)[-1]  # fmt: skip
    expected = l1_l2_loss(final, batch["depth"], depth_edge_weights(batch["depth"], 4.0))
    assert float(weighted) == pytest.approx(float(expected), rel=1e-4)
    plain = dataclasses.replace(config, edge_loss_weight=0.0)
    unweighted = train_module._loss_step(model, None, batch, plain, torch.device("cpu")).detach()
    assert float(unweighted) == pytest.approx(float(l1_l2_loss(final, batch["depth"])), rel=1e-4)
    assert abs(float(weighted) - float(unweighted)) > 1e-4 * float(unweighted)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"edge_loss_weight": -1.0}, "edge_loss_weight must be >= 0"),
        ({"edge_loss_weight": 2.0, "loss": "silog"}, "weights eq. 14"),
    ],
)
def test_edge_loss_weight_is_checked(tmp_path, overrides, message):
    with pytest.raises(ValueError, match=message):
        tiny(tmp_path, **overrides)


def _teacher_folder(tmp_path: Path) -> Path:
    """A tiny trained-looking teacher: one sdr run's exported guidance + MSPN."""
    return train(tiny(tmp_path / "teacher", steps=1), device="cpu")


def test_distillation_loss_is_the_relative_query_key_error(tmp_path):
    config = tiny(tmp_path, distill_from=str(_teacher_folder(tmp_path)))
    model, _ = train_module._build(config, torch.device("cpu"))
    teacher = load_teacher(config.distill_from)
    batch = fake_batch(config, 0, 0)
    image, sparse, init = batch["image"], batch["sparse"], batch["depth"] * 0.9
    loss = distillation_loss(model, teacher, image, sparse, init).detach()
    with torch.no_grad():  # by hand: the tiny config aligns nothing, two layers, q and k
        want = teacher(image, sparse, init)
        got = model.guidance(image, sparse, init)
        terms = []
        for layer in model.mspn.layers:
            t, s = layer.affine_qk(want), layer.affine_qk(got)
            for a, b in ((s.query_base, t.query_base), (s.key_base, t.key_base)):
                terms.append(float(((a - b) ** 2).sum() / (b**2).sum()))
    assert float(loss) == pytest.approx(sum(terms) / 4, rel=1e-5)
    assert float(loss) > 0.01  # a fresh student is far from the teacher
    model.guidance.load_state_dict(teacher.state_dict())  # the teacher itself: no error
    model.guidance.eval()  # (its BatchNorm as the teacher's, running statistics)
    same = distillation_loss(model, teacher, image, sparse, init)
    assert float(same.detach()) < 1e-10


def test_distillation_trains_only_the_student_and_exports_a_checkpoint_folder(
    tmp_path, monkeypatch
):
    teacher_dir = _teacher_folder(tmp_path)
    lighter = GuidanceConfig(out_dim=8, stem_dim=2, encoder_dims=(8, 8, 8, 8),
                             decoder_dims=(8, 8, 8, 4, 4))  # fmt: skip
    config = tiny(tmp_path, steps=25, lr=3e-3, lr_milestones=(), guidance=lighter,
                  distill_from=str(teacher_dir))  # fmt: skip
    fixed = fake_batch(config, 0, 0)
    fixed["init"] = fixed["depth"] * 0.9
    monkeypatch.setattr(train_module, "_batch", lambda *_: fixed)
    out = train(config, device="cpu")
    losses = [float(line.split(",")[1]) for line in (out / "log.csv").read_text().split()[1:]]
    assert sum(losses[-5:]) / 5 < 0.8 * sum(losses[:5]) / 5, losses
    student = load_module(out / "guidance.safetensors", "guidance", GuidanceConfig, GuidanceNet)
    assert student.config == lighter
    exported = load_file(out / "mspn.safetensors")
    for key, value in load_file(teacher_dir / "mspn.safetensors").items():
        assert torch.equal(exported[key], value), key  # the teacher's MSPN, untouched
    # A fine-tune of the student (its folder as init_dir, no guidance options) exports the
    # student's configuration with its weights, not the default one.
    monkeypatch.undo()
    tuned = train(tiny(tmp_path / "tuned", steps=1, guidance=GuidanceConfig(), init_dir=str(out)),
                  device="cpu")  # fmt: skip
    assert load_module(tuned / "guidance.safetensors", "guidance", GuidanceConfig,
                       GuidanceNet).config == lighter  # fmt: skip


def test_distillation_and_guidance_options_are_checked(tmp_path):
    teacher_dir = _teacher_folder(tmp_path)
    with pytest.raises(ValueError, match="distill_from needs"):
        tiny(tmp_path, distill_from=str(teacher_dir), init_dir=str(teacher_dir))
    other = GuidanceConfig(out_dim=8, stem_dim=2, encoder_dims=(8, 8, 8, 8), decoder_dims=(8,) * 5)
    with pytest.raises(ValueError, match="has its own configuration"):
        train_module._build(tiny(tmp_path, init_dir=str(teacher_dir), guidance=other), "cpu")
