"""Training throughput on this CPU: seconds and CPU-seconds per step, crops and pixels per hour.

Runs real training steps (rendered scenes, the frozen bundled MDE for "mde" samples, forward,
backward, AdamW) of two recipes, the same code path as ``python -m sdr_core train``:

- ``before``: the recipe of the issue-15 runs (checkpoints/README.md, "What was tried"):
  112x144 crops, batch 2, full backpropagation, the eq. 13 second layer, points drawn per
  crop (the batch runs the schedule of its sample with the fewest points);
- ``after``: density-matched 64x80 crops (points drawn on the whole 228x304 scene and cropped
  with it, one count per step, larger crops and smaller batches when few points), 4 crops per
  rendered scene, batch 8, gradients through the last 4 iterations of each layer, the paper's
  6-iteration second layer.

The first step of each recipe is a warm-up (compiles the C kernels, allocates) and is left
out. Steps are the run's own (same seeds), so both recipes see their usual mix of point
counts, D0 kinds and crop sizes.

    python benchmarks/bench_train_throughput.py [--steps 30] [--threads 2] [--recipes before after]
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import resource
import time

import torch

from sdr_core.train import TrainConfig, _batch, _build, _loss_step

RECIPES = {
    "before": {
        "crop": (112, 144),
        "batch_size": 2,
        "grad_iterations": 1000,
        "init_sources": (("metric", 2.0), ("harsh", 1.0), ("mde", 1.0), ("relative", 1.0)),
        "mspn_changes": {"second_layer_schedule": "eq13"},
    },
    "after": {
        "crop": (64, 80),
        "batch_size": 8,
        "density_matched": True,
        "crops_per_scene": 4,
        "grad_iterations": 4,
        "init_sources": (("metric", 3.0), ("harsh", 1.0), ("mde", 1.0), ("relative", 1.0)),
        "mspn_changes": {"second_layer_schedule": "fixed", "domain": "ratio"},
    },
}


def recipe_config(name: str, seed: int) -> TrainConfig:
    """The TrainConfig of one recipe (see the module docstring)."""
    values = dict(RECIPES[name])
    mspn = dataclasses.replace(TrainConfig().mspn, **values.pop("mspn_changes"))
    return TrainConfig(out_dir="/nonexistent", seed=seed, mspn=mspn, **values)


def cpu_seconds() -> float:
    """User + system CPU time of this process so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def time_recipe(name: str, steps: int, seed: int) -> dict[str, float]:
    """Wall and CPU seconds per step, crops and pixels per step, over ``steps`` steps."""
    config = recipe_config(name, seed)
    device = torch.device("cpu")
    model, mde = _build(config, device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr)
    wall = cpu = crops = pixels = 0.0
    for step in range(steps + 1):
        wall0, cpu0 = time.perf_counter(), cpu_seconds()
        batch = _batch(config, step, 0, mde)
        loss = _loss_step(model, mde, batch, config, device)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step == 0:
            continue  # warm-up
        wall += time.perf_counter() - wall0
        cpu += cpu_seconds() - cpu0
        crops += batch["image"].shape[0]
        pixels += batch["image"][:, 0].numel()
    return {
        "s_per_step": wall / steps,
        "cpu_s_per_step": cpu / steps,
        "crops_per_step": crops / steps,
        "crops_per_hour": 3600 * crops / wall,
        "kpixels_per_s": pixels / wall / 1e3,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=71)
    parser.add_argument("--recipes", nargs="+", default=list(RECIPES), choices=list(RECIPES))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(
        f"{platform.processor() or platform.machine()}, {args.threads} threads, "
        f"{args.steps} steps after one warm-up"
    )
    print("| recipe | s / step | CPU-s / step | crops / step | crops / hour | kpixels / s |")
    print("|---|---|---|---|---|---|")
    for name in args.recipes:
        r = time_recipe(name, args.steps, args.seed)
        print(
            f"| {name} | {r['s_per_step']:.2f} | {r['cpu_s_per_step']:.2f} | "
            f"{r['crops_per_step']:.1f} | {r['crops_per_hour']:.0f} | {r['kpixels_per_s']:.1f} |"
        )


if __name__ == "__main__":
    main()
