"""Frames per second of the synthetic RGB-D generator on ONE CPU core.

    python benchmarks/bench_synthetic.py [--frames 200] [--height 228 --width 304]

Threads are limited to one (OMP/MKL/OpenBLAS and torch) before numpy and torch load, and
the process is pinned to a single core where the OS allows it. Each configuration renders
a few warm-up frames (texture bank, photo bank and caches are built once per process), then
`--frames` distinct seeds. Reports frames/s from wall time and from this process's CPU
time (the fairer figure when other processes share the core), the median and 95th
percentile wall time per frame, the machine and the load average.

Run from the repository root with the package importable (`pip install -e .` or
`PYTHONPATH=.`).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import torch  # noqa: E402

torch.set_num_threads(1)

import numpy as np  # noqa: E402

from sdr_core.data.datasets import scene_to_sample  # noqa: E402
from sdr_core.data.synthetic import SceneConfig, generate_scene  # noqa: E402


def _pin_to_one_core() -> str:
    if not hasattr(os, "sched_setaffinity"):
        return "not pinned (no sched_setaffinity)"
    core = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {core})
    return f"pinned to core {core}"


def _cpu_name() -> str:
    name = platform.processor()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return name or platform.machine()


def _time(config: SceneConfig, frames: int, warmup: int, first_seed: int, to_torch: bool):
    render = (
        (lambda s: scene_to_sample(generate_scene(s, config)))
        if to_torch
        else (lambda s: generate_scene(s, config))
    )
    for seed in range(warmup):
        render(first_seed + frames + seed)
    times = []
    start, cpu_start = time.perf_counter(), time.process_time()
    for seed in range(first_seed, first_seed + frames):
        t0 = time.perf_counter()
        render(seed)
        times.append(time.perf_counter() - t0)
    total, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    return frames / total, frames / cpu, statistics.median(times), float(np.percentile(times, 95))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--height", type=int, default=228)
    parser.add_argument("--width", type=int, default=304)
    parser.add_argument("--first-seed", type=int, default=1000)
    args = parser.parse_args()

    pinned = _pin_to_one_core()
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    print(
        f"machine: {_cpu_name()} ({platform.machine()}), {os.cpu_count()} logical cores, "
        f"{pinned}; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
    print(
        f"python {platform.python_version()}, numpy {np.__version__}, torch {torch.__version__}, "
        f"torch threads {torch.get_num_threads()}"
    )
    base = SceneConfig(height=args.height, width=args.width)
    cases = [
        ("default", base, False),
        ("sensor_effects=True", dataclasses.replace(base, sensor_effects=True), False),
        ("shadows=False", dataclasses.replace(base, shadows=False), False),
        ("default + torch sample dict", base, True),
    ]
    print(f"{args.height}x{args.width}, {args.frames} frames per case")
    print(f"{'case':30s} {'frames/s':>9s} {'CPU fr/s':>9s} {'median ms':>10s} {'p95 ms':>8s}")
    for name, config, to_torch in cases:
        fps, cpu_fps, median, p95 = _time(
            config, args.frames, args.warmup, args.first_seed, to_torch
        )
        print(f"{name:30s} {fps:9.1f} {cpu_fps:9.1f} {median * 1e3:10.1f} {p95 * 1e3:8.1f}")


if __name__ == "__main__":
    main()
