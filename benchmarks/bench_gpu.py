"""GPU benchmark: one MSPN iteration and the full refinement, reference vs torch fast vs Triton.

Two tables (markdown on stdout; everything also goes to ``--json PATH``):

1. **Per iteration** at 228x304, 480x640 and 240x1216, batch 1 and 8 (E = 64, p = 13):
   ``prepare`` (once per layer: T0, alpha, beta, gamma), ``attend`` (eqs. 7-9, 11, the
   backend contract) and ``step`` (a whole iteration, eqs. 6-11: ``MSPNLayer.step`` around
   ``attend``, or one launch for ``triton-fused``). Backends: ``reference``, ``fast``,
   ``triton`` (T0 in float32), ``triton-fp16`` / ``triton-bf16`` (T0 stored in half
   precision), ``triton-fused`` (``TritonAttention.step``) and, with ``--compile``,
   ``fast-compiled`` (``torch.compile`` of the fast step). ``GB/s`` is the compulsory
   traffic of one attend (T0 once, plus depth, mask, alpha, beta in and two maps out)
   divided by its time; ``roofline`` is that over the peak bandwidth (the spec from the
   device properties or ``--peak-gbs``; the measured device-to-device copy bandwidth is
   printed too).
2. **Pipeline** at 480x640, batch 1, with 1, 100 and 1000 points (untrained weights: timing
   only): MDE + guidance + every MSPN iteration of both layers, and the same without the
   MDE. Variants: ``eager`` (the library path, ``MSPN.forward``), ``loop`` (the same maths as
   a plain loop of ``MSPNLayer.step``, or of the fused step for ``triton-fused``) and
   ``cuda-graph`` (that loop captured once and replayed; ``--no-cuda-graph`` skips it).

Timing: CUDA events around ``--inner`` back-to-back calls, median (min) of ``--reps``; on CPU
``time.perf_counter``. Every cell follows a warm-up call (Triton compilation, allocator).

    PYTHONPATH=. python benchmarks/bench_gpu.py --json bench_gpu.json          # GPU machine
    PYTHONPATH=. python benchmarks/bench_gpu.py --compile --json bench_gpu.json  # + compile
    PYTHONPATH=. python benchmarks/bench_gpu.py --smoke --json /tmp/smoke.json  # CPU, ~2 s
"""

from __future__ import annotations

import argparse
import functools
import json
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from sdr_core.attention import (
    AffineQK,
    AttendFn,
    available_backends,
    prepare_fast,
    prepare_reference,
)
from sdr_core.guidance import GuidanceConfig, GuidanceNet
from sdr_core.mde.bundled import MonoDepthConfig, MonoDepthNet
from sdr_core.mspn import MSPN, MSPNConfig, MSPNLayer

Tensor = torch.Tensor


# --- timing ------------------------------------------------------------------------------------


@dataclass
class Timing:
    median_ms: float
    min_ms: float

    def cell(self) -> str:
        return f"{self.median_ms:.3f} ({self.min_ms:.3f})"


def time_ms(fn: Callable[[], object], device: torch.device, reps: int, inner: int = 1) -> Timing:
    """Per-call time of ``fn`` after one warm-up call: median and min over ``reps``."""
    fn()
    times = []
    for _ in range(reps):
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            torch.cuda.synchronize(device)
            start.record()
            for _ in range(inner):
                fn()
            end.record()
            torch.cuda.synchronize(device)
            times.append(start.elapsed_time(end) / inner)
        else:
            begin = time.perf_counter()
            for _ in range(inner):
                fn()
            times.append((time.perf_counter() - begin) * 1e3 / inner)
    return Timing(statistics.median(times), min(times))


# --- device facts ------------------------------------------------------------------------------


def device_info(device: torch.device, peak_gbs: float | None) -> dict[str, object]:
    """Name, versions, spec and measured copy bandwidth (GB/s = 1e9 bytes/s)."""
    info: dict[str, object] = {
        "type": device.type,
        "torch": torch.__version__,
        "python": platform.python_version(),
    }
    try:
        import triton

        info["triton"] = triton.__version__
    except ImportError:
        info["triton"] = None
    if device.type != "cuda":
        info["name"] = platform.processor() or platform.machine()
        info["peak_gbs"] = peak_gbs
        return info
    props = torch.cuda.get_device_properties(device)
    info["name"] = props.name
    info["memory_gib"] = round(props.total_memory / 2**30, 1)
    clock_khz = getattr(props, "memory_clock_rate", None)
    bus_bits = getattr(props, "memory_bus_width", None)
    spec = 2 * clock_khz * 1e3 * bus_bits / 8 / 1e9 if clock_khz and bus_bits else None
    info["spec_gbs"] = spec
    info["copy_gbs"] = copy_bandwidth_gbs(device)
    info["peak_gbs"] = peak_gbs or spec or info["copy_gbs"]
    return info


def copy_bandwidth_gbs(device: torch.device) -> float:
    """Device-to-device copy of 1 GiB (2 GiB of traffic), GB/s."""
    source = torch.empty(2**28, dtype=torch.float32, device=device)
    target = torch.empty_like(source)
    copy = time_ms(lambda: target.copy_(source), device, reps=10)
    return 2 * source.numel() * 4 / (copy.median_ms * 1e-3) / 1e9


# --- per-iteration table -----------------------------------------------------------------------


def make_inputs(
    batch: int, height: int, width: int, embed: int, window: int, device: torch.device, seed: int
) -> tuple[AffineQK, Tensor, Tensor, Tensor]:
    """Realistic scales: logits of a few units, depths 0.5-10 m, a mask with zeros, S."""
    g = torch.Generator().manual_seed(seed)

    def rand(*shape: int) -> Tensor:
        return torch.rand(*shape, generator=g).to(device)

    def randn(*shape: int, scale: float) -> Tensor:
        return (torch.randn(*shape, generator=g) * scale).to(device)

    qk = AffineQK(
        randn(batch, embed, height, width, scale=0.3),
        randn(batch, embed, height, width, scale=0.3),
        randn(embed, scale=0.05),
        randn(embed, scale=0.05),
    )
    depth = 0.5 + 9.5 * rand(batch, 1, height, width)
    mask = (rand(batch, 1, height, width) > 0.3) * rand(batch, 1, height, width)
    sparse = (rand(batch, 1, height, width) > 0.99) * (1 + 4 * rand(batch, 1, height, width))
    return qk, depth, mask, sparse


def attend_bytes(batch: int, height: int, width: int, window: int, term_bytes: int) -> int:
    """Compulsory traffic of one attend: T0 once, 4 float32 maps in, 2 out."""
    pixels = batch * height * width
    return pixels * (window * window * term_bytes + 6 * 4)


def iteration_rows(
    args: argparse.Namespace, device: torch.device, info: dict[str, object]
) -> list[dict[str, object]]:
    """Time prepare / attend / step of every backend at every size and batch."""
    rows: list[dict[str, object]] = []
    layer = MSPNLayer(MSPNConfig(embed_dim=args.embed, window=args.window)).to(device).eval()
    for height, width in args.sizes:
        for batch in args.batches:
            group: list[dict[str, object]] = []
            inputs = make_inputs(batch, height, width, args.embed, args.window, device, args.seed)
            for name, prepare in _preparers(args, device, inputs[0], batch * height * width):
                group += bench_backend(name, prepare, layer, inputs, args, device, info)
            print_iteration_rows(group)
            rows += group
            del inputs
            if device.type == "cuda":
                torch.cuda.empty_cache()
    return rows


def _preparers(
    args: argparse.Namespace, device: torch.device, qk: AffineQK, pixels: int
) -> list[tuple[str, Callable[[], AttendFn]]]:
    """(row name, prepare function) of every backend to time at this size."""
    p = args.window
    out: list[tuple[str, Callable[[], AttendFn]]] = []
    if "reference" in args.backends and pixels <= args.reference_max_pixels:
        out.append(("reference", lambda: prepare_reference(qk, p)))
    if "fast" in args.backends:
        out.append(("fast", lambda: prepare_fast(qk, p)))
    if "triton" in args.backends and "triton" in available_backends(device):
        from sdr_core.attention.triton import prepare_triton

        names = {"float32": "triton", "float16": "triton-fp16", "bfloat16": "triton-bf16"}
        for dtype_name in args.term_dtypes:
            dtype = getattr(torch, dtype_name)
            out.append((names[dtype_name], lambda dtype=dtype: prepare_triton(qk, p, dtype)))
    return out


def bench_backend(
    name: str,
    prepare: Callable[[], AttendFn],
    layer: MSPNLayer,
    inputs: tuple[AffineQK, Tensor, Tensor, Tensor],
    args: argparse.Namespace,
    device: torch.device,
    info: dict[str, object],
) -> list[dict[str, object]]:
    """The row of one backend (plus triton-fused / fast-compiled rows where they apply)."""
    qk, depth, mask, sparse = inputs
    batch, _, height, width = depth.shape
    bias = layer.rel_pos_bias.detach()
    measured = sparse > 0
    slow = name == "reference" or device.type == "cpu"
    reps, inner = (args.slow_reps, 1) if slow else (args.reps, args.inner)
    base = {"size": f"{height}x{width}", "batch": batch}
    row: dict[str, object] = {**base, "backend": name, "prepare_ms": None}
    if name != "reference":
        row["prepare_ms"] = time_ms(prepare, device, reps).median_ms
    attend = prepare()
    attend_t = time_ms(lambda: attend(depth, mask, bias), device, reps, inner)
    step_t = time_ms(lambda: layer.step(attend, depth, mask, sparse, measured), device, reps, inner)
    term_bytes = attend.term.element_size() if name.startswith("triton") else 4
    moved = attend_bytes(batch, height, width, args.window, term_bytes)
    gbs = moved / (attend_t.median_ms * 1e-3) / 1e9
    peak = info.get("peak_gbs")
    row.update(
        attend_ms=attend_t.median_ms,
        attend_min_ms=attend_t.min_ms,
        step_ms=step_t.median_ms,
        bytes=moved,
        gbs=gbs,
        roofline=gbs / float(peak) if peak else None,
    )
    rows = [row]
    empty = {"prepare_ms": None, "attend_ms": None, "attend_min_ms": None, "gbs": None}
    if name == "triton":  # eqs. 6-11 in one launch instead of attend + the torch tail
        fused = time_ms(lambda: attend.step(depth, mask, sparse, bias), device, reps, inner)
        rows.append({**base, "backend": "triton-fused", **empty, "step_ms": fused.median_ms})
    if name == "fast" and args.compile:
        compiled = torch.compile(lambda d, m: layer.step(attend, d, m, sparse, measured))
        step_c = time_ms(lambda: compiled(depth, mask), device, reps, inner)
        rows.append({**base, "backend": "fast-compiled", **empty, "step_ms": step_c.median_ms})
    return rows


def _fmt(value: object, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def print_iteration_header() -> None:
    print(
        "| size | batch | backend | prepare ms | attend ms | step ms | attend GB/s "
        "| roofline | attend vs fast | step vs fast |"
    )
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|")


def print_iteration_rows(group: list[dict[str, object]]) -> None:
    """Markdown rows of one (size, batch), with speed-ups over the fast backend."""
    fast = next((r for r in group if r["backend"] == "fast"), None)

    def ratio(row: dict[str, object], key: str) -> str:
        if fast is None or row.get(key) is None or fast.get(key) is None:
            return "-"
        return f"{float(fast[key]) / float(row[key]):.1f}x"

    for row in group:
        roofline = row.get("roofline")
        print(
            f"| {row['size']} | {row['batch']} | {row['backend']} | {_fmt(row['prepare_ms'])} "
            f"| {_fmt(row.get('attend_ms'))} | {_fmt(row['step_ms'])} "
            f"| {_fmt(row.get('gbs'), 0)} "
            f"| {'-' if roofline is None else f'{100 * float(roofline):.0f} %'} "
            f"| {ratio(row, 'attend_ms')} | {ratio(row, 'step_ms')} |",
            flush=True,
        )


# --- pipeline table ----------------------------------------------------------------------------


@dataclass
class Networks:
    mde: MonoDepthNet
    guidance: GuidanceNet
    mspn: MSPN


def build_networks(args: argparse.Namespace, backend: str, device: torch.device) -> Networks:
    """Untrained networks with the shipped configs (smoke: tiny ones); timing only."""
    torch.manual_seed(args.seed)
    if args.smoke:
        mde = MonoDepthNet(MonoDepthConfig(encoder_dims=(8, 8, 8, 8), decoder_dims=(8,) * 4))
        guidance = GuidanceNet(
            GuidanceConfig(out_dim=16, stem_dim=4, encoder_dims=(8,) * 4, decoder_dims=(8,) * 5)
        )
        mspn = MSPN(MSPNConfig(guidance_dim=16, embed_dim=8, window=args.window, backend=backend))
    else:
        mde, guidance = MonoDepthNet(), GuidanceNet()
        mspn = MSPN(MSPNConfig(window=args.window, backend=backend))
    return Networks(mde.to(device).eval(), guidance.to(device).eval(), mspn.to(device).eval())


def library_refine(
    nets: Networks, image: Tensor, sparse: Tensor, init: Tensor | None, schedule: tuple[int, int]
) -> Tensor:
    """MDE (when ``init`` is None) + guidance + ``MSPN.forward``: the library's own path."""
    if init is None:
        init = nets.mde(image)
    return nets.mspn(init, sparse, nets.guidance(image, sparse, init), schedule)


def loop_refine(
    nets: Networks,
    image: Tensor,
    sparse: Tensor,
    init: Tensor | None,
    schedule: tuple[int, int],
    fused: bool,
) -> Tensor:
    """MDE (when ``init`` is None) + guidance + both layers as a plain loop; no host sync.

    The same maths as ``MSPN.forward`` (eqs. 4-11), written without its input checks (which
    read values back to the host) so that the whole function can be captured in a CUDA graph.
    """
    if init is None:
        init = nets.mde(image)
    guidance = nets.guidance(image, sparse, init)
    measured = sparse > 0
    initial_mask = measured.to(init.dtype)  # M0, eq. 5
    depth = torch.where(measured, sparse, init)
    for layer, n_iterations in zip(nets.mspn.layers, schedule, strict=True):
        attend = layer.prepare(guidance)
        mask = initial_mask
        for _ in range(n_iterations):
            if fused:
                depth, mask = attend.step(depth, mask, sparse, layer.rel_pos_bias)
            else:
                depth, mask = layer.step(attend, depth, mask, sparse, measured)
    return depth


def graph_of(fn: Callable[[], Tensor], device: torch.device) -> Callable[[], Tensor]:
    """Capture ``fn`` (static inputs, no host sync) in a CUDA graph.

    Returns a function that replays the graph and returns its (static) output tensor.
    """
    stream = torch.cuda.Stream(device)
    stream.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(stream):
        fn()  # warm-up on a side stream, as torch.cuda.graph asks
    torch.cuda.current_stream(device).wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = fn()

    def replay() -> Tensor:
        graph.replay()
        return out

    return replay


def sparse_maps(truth: Tensor, counts: list[int], generator: torch.Generator) -> dict[int, Tensor]:
    """S with ``n`` random distinct pixels of ``truth`` (1 x 1 x H x W) for each count."""
    pixels = truth.numel()
    maps = {}
    for n_points in counts:
        picked = torch.randperm(pixels, generator=generator)[:n_points].to(truth.device)
        sparse = torch.zeros(pixels, device=truth.device)
        sparse[picked] = truth.view(-1)[picked]
        maps[n_points] = sparse.view_as(truth)
    return maps


def pipeline_rows(args: argparse.Namespace, device: torch.device) -> list[dict[str, object]]:
    """Full refinement times per backend, variant and point count.

    ``max_diff_m`` compares each variant's final depth (no-MDE call) with the first row of
    the same point count (the fast backend's library path unless ``--backends`` leaves it
    out): a check that every variant computes the same thing.
    """
    height, width = args.pipeline_size
    g = torch.Generator().manual_seed(args.seed)
    image = torch.rand(1, 3, height, width, generator=g).to(device)
    truth = (1 + 4 * torch.rand(1, 1, height, width, generator=g)).to(device)
    sparse_by_count = sparse_maps(truth, args.points, g)
    backends = ["fast"] if "fast" in args.backends else []
    if "triton" in args.backends and "triton" in available_backends(device):
        backends += ["triton", "triton-fused"]
    rows: list[dict[str, object]] = []
    baseline: dict[int, Tensor] = {}
    for backend in backends:
        fused = backend == "triton-fused"
        nets = build_networks(args, "triton" if fused else backend, device)
        for n_points, sparse in sparse_by_count.items():
            schedule = nets.mspn.schedule(height, width, n_points)
            with torch.inference_mode():
                init = nets.mde(image)
                for variant, (full, no_mde) in _variants(nets, image, sparse, init, schedule,
                                                          fused, args, device).items():  # fmt: skip
                    full_t = time_ms(full, device, args.pipeline_reps)
                    no_mde_t = time_ms(no_mde, device, args.pipeline_reps)
                    depth = no_mde().clone()
                    baseline.setdefault(n_points, depth)
                    row = {
                        "size": f"{height}x{width}",
                        "points": n_points,
                        "schedule": list(schedule),
                        "backend": backend,
                        "variant": variant,
                        "full_ms": full_t.median_ms,
                        "no_mde_ms": no_mde_t.median_ms,
                        "max_diff_m": float((depth - baseline[n_points]).abs().max()),
                    }
                    rows.append(row)
                    print(
                        f"| {row['size']} | {n_points} | {schedule[0]} + {schedule[1]} "
                        f"| {backend} | {variant} | {full_t.cell()} | {no_mde_t.cell()} "
                        f"| {row['max_diff_m']:.1e} |",
                        flush=True,
                    )
        del nets
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return rows


def _variants(
    nets: Networks,
    image: Tensor,
    sparse: Tensor,
    init: Tensor,
    schedule: tuple[int, int],
    fused: bool,
    args: argparse.Namespace,
    device: torch.device,
) -> dict[str, tuple[Callable[[], Tensor], Callable[[], Tensor]]]:
    """variant -> (with MDE, without MDE) callables returning the refined depth."""
    variants = {}
    if not fused:  # the library path has no fused step
        variants["eager"] = (
            functools.partial(library_refine, nets, image, sparse, None, schedule),
            functools.partial(library_refine, nets, image, sparse, init, schedule),
        )
    variants["loop"] = (
        functools.partial(loop_refine, nets, image, sparse, None, schedule, fused),
        functools.partial(loop_refine, nets, image, sparse, init, schedule, fused),
    )
    if device.type == "cuda" and args.cuda_graph:
        full, no_mde = variants["loop"]
        try:
            variants["cuda-graph"] = (graph_of(full, device), graph_of(no_mde, device))
        except RuntimeError as error:  # e.g. a host sync inside the loop; report, go on
            print(f"cuda-graph capture failed: {error}".splitlines()[0], flush=True)
    return variants


# --- main --------------------------------------------------------------------------------------


def parse_size(text: str) -> tuple[int, int]:
    height, width = text.lower().split("x")
    return int(height), int(width)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--smoke", action="store_true", help="CPU, tiny sizes, one thread, no triton: a quick check"
    )
    parser.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    parser.add_argument(
        "--sizes", nargs="+", type=parse_size, default=[(228, 304), (480, 640), (240, 1216)]
    )
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 8])
    parser.add_argument("--embed", type=int, default=64)
    parser.add_argument("--window", type=int, default=13)
    parser.add_argument(
        "--backends", nargs="+", default=["reference", "fast", "triton"], help="subset to run"
    )
    parser.add_argument(
        "--term-dtypes",
        nargs="+",
        default=["float32", "float16", "bfloat16"],
        choices=["float32", "float16", "bfloat16"],
        help="storage dtypes of T0 for the triton rows",
    )
    parser.add_argument("--reps", type=int, default=20, help="timed runs per cell")
    parser.add_argument("--slow-reps", type=int, default=3, help="timed runs of slow cells")
    parser.add_argument("--inner", type=int, default=10, help="calls per timed run (CUDA)")
    parser.add_argument(
        "--reference-max-pixels",
        type=int,
        default=8 * 480 * 640,
        help="skip the reference above this many B*H*W pixels",
    )
    parser.add_argument("--compile", action="store_true", help="add torch.compile of fast")
    parser.add_argument("--pipeline-size", type=parse_size, default=(480, 640))
    parser.add_argument("--points", nargs="+", type=int, default=[1, 100, 1000])
    parser.add_argument("--pipeline-reps", type=int, default=5)
    parser.add_argument(
        "--no-cuda-graph", dest="cuda_graph", action="store_false", help="skip the graph variant"
    )
    parser.add_argument("--peak-gbs", type=float, default=None, help="peak bandwidth, GB/s")
    parser.add_argument("--json", type=Path, default=None, help="write all results here")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.smoke:
        args.device = "cpu"
        args.sizes, args.batches, args.embed = [(16, 20)], [1, 2], 8
        args.backends = [b for b in args.backends if b != "triton"]
        args.reps, args.slow_reps, args.inner, args.pipeline_reps = 1, 1, 1, 1
        args.pipeline_size, args.points = (16, 20), [1, 100]
        args.compile = False
        torch.set_num_threads(1)  # tiny tensors: more threads only add contention
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    info = device_info(device, args.peak_gbs)
    print(f"device: {info['name']} ({device.type}); torch {info['torch']}, triton {info['triton']}")
    if device.type == "cuda":
        spec = info.get("spec_gbs")
        print(
            f"memory bandwidth: copy {float(info['copy_gbs']):.0f} GB/s measured, spec "
            f"{_fmt(spec, 0)} GB/s; roofline uses {float(info['peak_gbs']):.0f} GB/s"
        )
    if "triton" in args.backends and "triton" not in available_backends(device):
        from sdr_core.attention.triton import triton_unavailable_reason

        print(f"triton rows skipped: {triton_unavailable_reason(device)}")
    print(
        f"\nE = {args.embed}, p = {args.window}; ms per call, median of {args.reps} runs "
        f"({args.slow_reps} for slow cells) of {args.inner} calls after a warm-up\n"
    )
    results: dict[str, object] = {"device": info, "args": _jsonable(vars(args))}
    with torch.inference_mode():
        print_iteration_header()
        rows = iteration_rows(args, device, info)
    results["iteration"] = rows
    print(
        "\n| size | points | iterations | backend | variant | MDE + guidance + MSPN, ms "
        "| guidance + MSPN (no MDE), ms | max diff vs first row, m |"
    )
    print("|---|---:|---:|---|---|---:|---:|---:|")
    results["pipeline"] = pipeline_rows(args, device)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
        print(f"\nwrote {args.json}")


def _jsonable(values: dict[str, object]) -> dict[str, object]:
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in values.items()}


if __name__ == "__main__":
    main()
