"""Per-iteration attention and per-layer preparation time of the attention backends.

Times, at realistic shapes (E = 64, p = 13, batch 1; depth 0.5-10 m, a mask with zeros):

- prepare: the once-per-layer guidance term (T0, alpha, beta) of ``fast`` and ``native``;
- attend: one MSPN iteration (``attend(depth, mask, rel_pos_bias)``) of every backend. The
  reference is slow and only runs at the first size, with few repetitions.

Each cell is the median (and min) of ``--reps`` timed runs (``--slow-reps`` for the
reference and the ``fast`` backend, which take seconds) after one warm-up run, under
``torch.inference_mode()``. Prints a markdown table and the machine.

    python benchmarks/bench_attention.py
    python benchmarks/bench_attention.py --sizes 228x304 --reps 20 --threads 2
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable

import torch

from sdr_core.attention import AffineQK, native, prepare_fast, window_attention_reference


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def timed_ms(fn: Callable[[], object], reps: int) -> str:
    """'median (min)' wall time in ms of ``reps`` runs after a warm-up run."""
    fn()  # warm-up (first-use compilation, allocator, caches)
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return f"{statistics.median(times) * 1e3:.1f} ({min(times) * 1e3:.1f})"


def make_inputs(
    height: int, width: int, embed: int, window: int, seed: int
) -> tuple[AffineQK, torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    qk = AffineQK(
        torch.randn(1, embed, height, width, generator=g) * 0.3,
        torch.randn(1, embed, height, width, generator=g) * 0.3,
        torch.randn(embed, generator=g) * 0.05,
        torch.randn(embed, generator=g) * 0.05,
    )
    depth = 0.5 + 9.5 * torch.rand(1, 1, height, width, generator=g)
    mask = (torch.rand(1, 1, height, width, generator=g) > 0.3).float()
    mask *= torch.rand(1, 1, height, width, generator=g)
    bias = torch.randn(2 * window - 1, 2 * window - 1, generator=g) * 0.5
    return qk, depth, mask, bias


def parse_size(text: str) -> tuple[int, int]:
    height, width = text.lower().split("x")
    return int(height), int(width)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes", nargs="+", type=parse_size, default=[(228, 304), (240, 1216)], help="HxW sizes"
    )
    parser.add_argument("--embed", type=int, default=64, help="embedding dimension E")
    parser.add_argument("--window", type=int, default=13, help="window size p (odd)")
    parser.add_argument("--reps", type=int, default=10, help="timed runs per measurement")
    parser.add_argument(
        "--slow-reps",
        type=int,
        default=1,
        help="timed runs of the reference (first size only) and of fast",
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: torch's default)"
    )
    parser.add_argument(
        "--backends",
        nargs="+",
        default=["reference", "fast", "native"],
        choices=["reference", "fast", "native"],
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    backends = list(args.backends)
    if "native" in backends and not native.can_run_native():
        print("native backend unavailable (no C compiler?); skipping it")
        backends.remove("native")

    print(
        f"CPU: {cpu_model()} ({os.cpu_count()} logical cores); "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads"
    )
    print(
        f"E = {args.embed}, p = {args.window}, batch 1; median of {args.reps} runs "
        f"(reference and fast: {args.slow_reps}) after a warm-up\n"
    )
    print("| size | backend | prepare, ms: median (min) | attend / iteration, ms: median (min) |")
    print("|---|---|---:|---:|")
    with torch.inference_mode():
        for index, (height, width) in enumerate(args.sizes):
            with_reference = "reference" in backends and index == 0
            bench_size(height, width, args, backends, with_reference)


def bench_size(
    height: int, width: int, args: argparse.Namespace, backends: list[str], with_reference: bool
) -> None:
    """Print the table rows of one image size."""
    p = args.window
    qk, depth, mask, bias = make_inputs(height, width, args.embed, p, args.seed)
    size = f"{height}x{width}"
    if with_reference:
        attend_ms = timed_ms(
            lambda: window_attention_reference(qk, depth, mask, bias, p), args.slow_reps
        )
        print(f"| {size} | reference | - | {attend_ms} |", flush=True)
    for name, prepare in (("fast", prepare_fast), ("native", native.prepare_native)):
        if name not in backends:
            continue
        reps = args.reps if name == "native" else args.slow_reps
        prepare_ms = timed_ms(lambda prepare=prepare: prepare(qk, p), reps)
        attend = prepare(qk, p)
        attend_ms = timed_ms(lambda attend=attend: attend(depth, mask, bias), reps)
        del attend
        print(f"| {size} | {name} | {prepare_ms} | {attend_ms} |", flush=True)


if __name__ == "__main__":
    main()
