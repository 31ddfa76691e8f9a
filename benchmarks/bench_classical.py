"""Time the classical propagation methods of sdr_core.classical on CPU.

    PYTHONPATH=. python benchmarks/bench_classical.py [--sizes 228x304,480x640] [--reps 5]

For each size: a held-out synthetic scene, the metric-preset D0 and 200 random points;
the median wall and process-CPU time of

* ``edge_aware_log_ratio`` (the sparse solve with the shipped minimum-degree ordering) and,
  for comparison, the same system with scipy's default ``spsolve`` (COLAMD ordering);
* ``joint_bilateral_refine`` on the LS + IDW output, and LS + IDW itself;
* every baseline of the method table at once (what the app's metrics table runs after a run),
  and the three least-squares ones alone (the table before the classical methods).

Threads are limited to one (numpy's BLAS is not used by these methods anyway). The process
CPU time is the fairer figure when other processes share the machine; the load average is
printed with the machine.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402

import numpy as np  # noqa: E402
import scipy  # noqa: E402
import scipy.sparse.linalg  # noqa: E402

from sdr_core import baselines, classical, methods  # noqa: E402
from sdr_core.data.mde_errors import simulate_init_depth  # noqa: E402
from sdr_core.data.synthetic import SceneConfig, generate_scene  # noqa: E402
from sdr_core.sparse import random_points  # noqa: E402


def _time(function: Callable[[], object], reps: int) -> tuple[float, float]:
    """Median wall and process-CPU seconds of ``reps`` calls after one warm-up."""
    function()
    wall, cpu = [], []
    for _ in range(reps):
        start_wall, start_cpu = time.perf_counter(), time.process_time()
        function()
        wall.append(time.perf_counter() - start_wall)
        cpu.append(time.process_time() - start_cpu)
    return statistics.median(wall), statistics.median(cpu)


def _default_solver(image: np.ndarray, init: np.ndarray, sparse: np.ndarray) -> np.ndarray:
    """The edge-aware system solved by ``spsolve`` with its default ordering."""
    config = classical.EdgeAwareConfig()
    log_init = np.log(init.astype(np.float64))
    measured = sparse > 0
    horizontal, vertical = classical.edge_aware_affinities(image / 255.0, log_init, config)
    diagonal = config.data_weight * measured + config.prior_weight
    matrix = classical._system_matrix(horizontal, vertical, diagonal)
    rhs = np.zeros(init.shape)
    rhs[measured] = config.data_weight * (np.log(sparse[measured]) - log_init[measured])
    return scipy.sparse.linalg.spsolve(matrix, rhs.ravel())


def _bench(height: int, width: int, reps: int) -> None:
    scene = generate_scene(10_000_000, SceneConfig(height=height, width=width))
    init = simulate_init_depth(scene.depth, "metric", 1)
    sparse = random_points(scene.depth, 200, seed=0)
    image = scene.rgb
    idw = baselines.residual_interpolation(init, sparse, "idw")
    inputs = methods.MethodInputs(image, sparse, init, 200)
    least_squares = ("mde", "ls_align", "ls_interp")
    cases: dict[str, Callable[[], object]] = {
        "edge_aware_log_ratio": lambda: classical.edge_aware_log_ratio(image, init, sparse),
        "  same system, spsolve default ordering": lambda: _default_solver(image, init, sparse),
        "joint_bilateral_refine (on LS + IDW)": lambda: classical.joint_bilateral_refine(
            image, idw, sparse
        ),
        "LS + IDW residuals": lambda: baselines.residual_interpolation(init, sparse, "idw"),
        "all baselines (app metrics table)": lambda: methods.predict(
            methods.BASELINES, None, inputs
        ),
        "  least-squares baselines only": lambda: methods.predict(least_squares, None, inputs),
    }
    for name, function in cases.items():
        wall, cpu = _time(function, reps)
        print(f"| {height}x{width} | {name} | {1000 * wall:.0f} | {1000 * cpu:.0f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="228x304,480x640")
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} logical cores; "
        f"numpy {np.__version__}, scipy {scipy.__version__}; load average "
        f"{', '.join(f'{v:.2f}' for v in os.getloadavg())}"
    )
    print("| size | what | wall ms (median) | CPU ms (median) |\n|---|---|---:|---:|")
    for size in args.sizes.split(","):
        height, width = (int(v) for v in size.split("x"))
        _bench(height, width, args.reps)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of the process: {peak_mb:.0f} MB; load average now "
          f"{', '.join(f'{v:.2f}' for v in os.getloadavg())}")  # fmt: skip


if __name__ == "__main__":
    main()
