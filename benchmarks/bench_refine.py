"""Time one refinement of the shipped pipeline, and where the time goes (issue 23).

A held-out synthetic scene at 228 x 304, D0 given (the metric preset), the shipped
checkpoints, CPU. For each point count: the whole ``pipe.refine`` (guidance network
included, MDE excluded), then its parts: the guidance network, one layer's preparation
(q and k, the guidance-only window term T0) and the mean iteration. Medians of interleaved
repeats, so a slow spell on a shared machine touches every figure alike.

    python benchmarks/bench_refine.py                  # 1, 100 and 1000 points
    python benchmarks/bench_refine.py --points 1 100 --repeats 9 --threads 2
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import torch

from sdr_core import load_pipeline
from sdr_core.eval_scenes import heldout_scenes, initial_depth
from sdr_core.sparse import random_points


def _seconds(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _parts(pipe, image, sparse, init) -> dict[str, Callable[[], object]]:
    """The refinement's stages as callables (inference mode inside each)."""
    image_t, sparse_t, init_t = pipe._tensors(image, sparse, init)
    with torch.inference_mode():
        guidance = pipe.guidance(image_t, sparse_t, init_t)
    layer = pipe.mspn.layers[0]

    def run_guidance() -> None:
        with torch.inference_mode():
            pipe.guidance(image_t, sparse_t, init_t)

    def run_prepare() -> None:
        with torch.inference_mode():
            layer.prepare(guidance)

    return {"guidance network": run_guidance, "one layer's preparation": run_prepare}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, nargs="+", default=[1, 100, 1000])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    pipe = load_pipeline("cpu")
    scene = heldout_scenes(1)[0]
    init = initial_depth(pipe, scene, "metric")
    cases = {}
    for n in args.points:
        sparse = random_points(scene.depth, n, seed=0)
        cases[f"refine, {n} points"] = lambda s=sparse: pipe.refine(scene.rgb, s, init_depth=init)
    cases.update(_parts(pipe, scene.rgb, random_points(scene.depth, 100, seed=0), init))
    for fn in cases.values():  # warm-up: compiles the native kernels, fills the caches
        fn()
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(args.repeats):
        for name, fn in cases.items():
            times[name].append(_seconds(fn))
    print(
        f"{scene.rgb.shape[0]}x{scene.rgb.shape[1]}, {torch.get_num_threads()} threads, "
        f"shipped checkpoints, median of {args.repeats} interleaved runs:"
    )
    for name, values in times.items():
        extra = ""
        if name.startswith("refine"):
            n = int(name.split()[1])
            extra = f" (schedule {pipe.schedule(*scene.depth.shape, n)})"
        print(f"  {name}: {1000 * float(np.median(values)):.0f} ms{extra}")


if __name__ == "__main__":
    main()
