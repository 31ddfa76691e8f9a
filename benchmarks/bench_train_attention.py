"""Training-time cost of the differentiable native attention (``native_grad``).

Times, at training shapes (default: B=8 64x80, B=2 112x144, B=1 228x304; E = 64, p = 13;
depth 0.5-10 m, a mask with zeros), the two autograd Functions of
:mod:`sdr_core.attention.native_grad`:

- attend: one MSPN iteration (``_Attend``, eqs. 8, 9 and 11): forward alone (under
  ``torch.no_grad()``, as the iterations without gradient run), and forward + backward;
- guidance: the once-per-layer guidance term T0 (``_GuidanceTerm``): forward, and
  forward + backward.

and, for comparison, forward + backward of the same two steps in the ``fast`` torch backend
(``--fast-reps`` runs; its guidance term takes 10-100 s, so it runs at the first shape only
unless ``--fast-guidance-all``). Every cell is the median of
``--reps`` timed runs after one warm-up run, with 1 and 2 threads (``torch.set_num_threads``,
which the native kernels follow): wall time and CPU time of the process (all its threads),
in ms.

``--baseline DIR`` also loads another version of the package ``sdr_core/attention`` from DIR
(e.g. ``git archive HEAD sdr_core/attention | tar -x -C /tmp/base`` gives
``/tmp/base/sdr_core/attention``); it compiles its own C source, and every measurement then
alternates between the two versions run by run, so that both see the same machine load.

    PYTHONPATH=. python benchmarks/bench_train_attention.py
    PYTHONPATH=. python benchmarks/bench_train_attention.py --baseline /tmp/base/sdr_core/attention
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import torch
from bench_attention import cpu_model  # this folder is on sys.path when run as a script

from sdr_core.attention import AffineQK, guidance_window_term, prepare_fast


def load_attention_package(directory: Path, name: str) -> ModuleType:
    """Import ``directory`` (a copy of sdr_core/attention) as the top-level package ``name``.

    The attention package imports its siblings relatively only, so the copy is independent
    of the installed one; its native module compiles the C source next to it.
    """
    spec = importlib.util.spec_from_file_location(
        name, directory / "__init__.py", submodule_search_locations=[str(directory)]
    )
    if spec is None or spec.loader is None:
        raise ImportError(f"no package at {directory}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def timed(fns: dict[str, Callable[[], object]], reps: int) -> dict[str, tuple[float, float]]:
    """Median (wall ms, CPU ms) of each function over ``reps`` runs after a warm-up each;
    the functions take turns run by run."""
    for fn in fns.values():
        fn()
    wall: dict[str, list[float]] = {name: [] for name in fns}
    cpu: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(reps):
        for name, fn in fns.items():
            start_wall, start_cpu = time.perf_counter(), time.process_time()
            fn()
            wall[name].append(time.perf_counter() - start_wall)
            cpu[name].append(time.process_time() - start_cpu)
    return {
        name: (statistics.median(wall[name]) * 1e3, statistics.median(cpu[name]) * 1e3)
        for name in fns
    }


def make_inputs(
    batch: int, height: int, width: int, embed: int, window: int, seed: int
) -> tuple[AffineQK, torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    qk = AffineQK(
        torch.randn(batch, embed, height, width, generator=g) * 0.3,
        torch.randn(batch, embed, height, width, generator=g) * 0.3,
        torch.randn(embed, generator=g) * 0.05,
        torch.randn(embed, generator=g) * 0.05,
    )
    depth = 0.5 + 9.5 * torch.rand(batch, 1, height, width, generator=g)
    mask = (torch.rand(batch, 1, height, width, generator=g) > 0.3).float()
    mask *= torch.rand(batch, 1, height, width, generator=g)
    bias = torch.randn(2 * window - 1, 2 * window - 1, generator=g) * 0.5
    return qk, depth, mask, bias


def native_grad_steps(
    ng: ModuleType,
    qk: AffineQK,
    depth: torch.Tensor,
    mask: torch.Tensor,
    bias: torch.Tensor,
    window: int,
) -> dict[str, Callable[[], object]]:
    """attend / guidance, forward and forward + backward, of one native_grad module."""
    query = qk.query_base.permute(0, 2, 3, 1).contiguous().requires_grad_()  # B x H x W x E
    key = qk.key_base.permute(0, 2, 3, 1).contiguous().requires_grad_()
    with torch.no_grad():
        term = ng._GuidanceTerm.apply(query, key, window)
    term_grad = torch.randn_like(term)
    leaves = [
        term.requires_grad_(),
        (key.detach() * qk.query_depth).sum(dim=-1).requires_grad_(),  # alpha
        (query.detach() * qk.key_depth).sum(dim=-1).requires_grad_(),  # beta
        torch.dot(qk.query_depth, qk.key_depth).requires_grad_(),  # gamma
        depth[:, 0].contiguous().requires_grad_(),
        mask[:, 0].contiguous().requires_grad_(),
        bias.clone().requires_grad_(),
    ]
    out_grads = [torch.randn_like(depth[:, 0]) for _ in range(2)]

    def attend_forward() -> object:
        with torch.no_grad():
            return ng._Attend.apply(*leaves, window)

    def attend_backward() -> None:
        for leaf in leaves:
            leaf.grad = None
        torch.autograd.backward(ng._Attend.apply(*leaves, window), out_grads)

    def guidance_forward() -> object:
        with torch.no_grad():
            return ng._GuidanceTerm.apply(query, key, window)

    def guidance_backward() -> None:
        query.grad = key.grad = None
        ng._GuidanceTerm.apply(query, key, window).backward(term_grad)

    return {
        "attend fwd": attend_forward,
        "attend fwd+bwd": attend_backward,
        "guidance fwd": guidance_forward,
        "guidance fwd+bwd": guidance_backward,
    }


def fast_steps(
    qk: AffineQK, depth: torch.Tensor, mask: torch.Tensor, bias: torch.Tensor, window: int
) -> dict[str, Callable[[], object]]:
    """attend and guidance forward + backward of the fast torch backend."""
    q0, k0 = qk.query_base.clone().requires_grad_(), qk.key_base.clone().requires_grad_()
    with torch.no_grad():
        term = guidance_window_term(qk, window)  # B x p^2 x H x W
    term_grad = torch.randn_like(term)
    term = term.requires_grad_()
    depth, mask = depth.clone().requires_grad_(), mask.clone().requires_grad_()
    bias = bias.clone().requires_grad_()
    out_grads = [torch.randn_like(depth) for _ in range(2)]

    def attend_backward() -> None:
        # prepare_fast's attend with T0 given (so the guidance term is not in this timing)
        attend = _fast_attend_with_term(qk, term, window)
        torch.autograd.backward(attend(depth, mask, bias), out_grads)

    def guidance_backward() -> None:
        q0.grad = k0.grad = None
        guidance_window_term(AffineQK(q0, k0, qk.query_depth, qk.key_depth), window).backward(
            term_grad
        )

    return {"attend fwd+bwd": attend_backward, "guidance fwd+bwd": guidance_backward}


def _fast_attend_with_term(qk: AffineQK, term: torch.Tensor, window: int):
    """prepare_fast's attend, with its guidance term replaced by ``term`` (a leaf)."""
    import sdr_core.attention.fast as fast

    original = fast.guidance_window_term
    fast.guidance_window_term = lambda *_: term
    try:
        return prepare_fast(qk, window)
    finally:
        fast.guidance_window_term = original


def parse_shape(text: str) -> tuple[int, int, int]:
    batch, height, width = (int(part) for part in text.lower().split("x"))
    return batch, height, width


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--shapes",
        nargs="+",
        type=parse_shape,
        default=[(8, 64, 80), (2, 112, 144), (1, 228, 304)],
        help="BxHxW training shapes",
    )
    parser.add_argument("--embed", type=int, default=64, help="embedding dimension E")
    parser.add_argument("--window", type=int, default=13, help="window size p (odd)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--reps", type=int, default=7, help="timed runs per native cell")
    parser.add_argument("--fast-reps", type=int, default=3, help="timed runs per fast cell")
    parser.add_argument("--no-fast", action="store_true", help="skip the fast backend")
    parser.add_argument(
        "--fast-guidance-all", action="store_true", help="fast's guidance term at every shape"
    )
    parser.add_argument("--baseline", type=Path, default=None, help="baseline attention package")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from sdr_core.attention import native_grad

    versions = {"native_grad": native_grad}
    if args.baseline is not None:
        base = load_attention_package(args.baseline.resolve(), "baseline_attention")
        versions["native_grad (baseline)"] = importlib.import_module(f"{base.__name__}.native_grad")
    for name, module in versions.items():
        lib = importlib.import_module(module.__package__ + ".native")._require_library()
        print(f"{name}: {Path(module.__file__).parent} -> {lib.path.name}")
    print(
        f"CPU: {cpu_model()} ({os.cpu_count()} logical cores); torch {torch.__version__}; "
        f"load average {os.getloadavg()[0]:.2f} at the start"
    )
    print(
        f"E = {args.embed}, p = {args.window}; median of {args.reps} runs "
        f"(fast: {args.fast_reps}) after a warm-up; ms (wall / CPU of all threads)\n"
    )
    print("| B x H x W | threads | step | version | forward, wall | fwd+bwd, wall | fwd+bwd, CPU |")
    print("|---|---:|---|---|---:|---:|---:|")
    for index, (batch, height, width) in enumerate(args.shapes):
        qk, depth, mask, bias = make_inputs(
            batch, height, width, args.embed, args.window, args.seed
        )
        for threads in args.threads:
            torch.set_num_threads(threads)
            steps = {
                name: native_grad_steps(module, qk, depth, mask, bias, args.window)
                for name, module in versions.items()
            }
            fast = {} if args.no_fast else fast_steps(qk, depth, mask, bias, args.window)
            for step in ("attend", "guidance"):
                forward = timed({n: s[f"{step} fwd"] for n, s in steps.items()}, args.reps)
                both = timed({n: s[f"{step} fwd+bwd"] for n, s in steps.items()}, args.reps)
                if fast and (step == "attend" or index == 0 or args.fast_guidance_all):
                    both |= timed({"fast": fast[f"{step} fwd+bwd"]}, args.fast_reps)
                for name, (wall, cpu) in both.items():
                    fwd = f"{forward[name][0]:.1f}" if name in forward else "-"
                    print(
                        f"| {batch}x{height}x{width} | {threads} | {step} | {name} | {fwd} "
                        f"| {wall:.1f} | {cpu:.1f} |",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
