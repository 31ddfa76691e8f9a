"""Command line: ``python -m sdr_core {refine,evaluate,train,bench}``.

The only place argparse appears: each sub-command builds config dataclasses and calls one
library function.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .pipeline import SDRPipeline

__all__ = ["main"]


def _load(args: argparse.Namespace) -> SDRPipeline:
    """The pipeline named by --checkpoints, --mde-checkpoint, --backend and --device."""
    from . import load_pipeline

    return load_pipeline(
        device=args.device,
        checkpoint_dir=args.checkpoints,
        backend=args.backend,
        mde_checkpoint=args.mde_checkpoint,
    )


def _refine(args: argparse.Namespace) -> int:
    from . import viz
    from .data.io import read_depth, read_image, write_depth_npy, write_depth_png
    from .metrics import compute_metrics
    from .sparse import lidar_lines, random_points, schedule_points

    pipe = _load(args)
    image = read_image(args.image)
    gt = read_depth(args.depth, units=args.units).depth if args.depth else None
    if gt is not None and gt.shape != image.shape[:2]:
        raise ValueError(
            f"image is {image.shape[0]}x{image.shape[1]} but depth is "
            f"{gt.shape[0]}x{gt.shape[1]} (height x width)"
        )
    if args.sparse:
        sparse = read_depth(args.sparse, units=args.units).depth
    elif gt is None:
        raise ValueError("give --depth (ground truth to sample from) or --sparse")
    elif args.lines:
        sparse = lidar_lines(gt, args.lines, seed=args.seed)
    else:
        sparse = random_points(gt, args.points, seed=args.seed)
    init = pipe.estimate_depth(image)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    n_lines = args.lines if (args.lines and not args.sparse) else None
    states = list(pipe.refine_steps(image, sparse, init_depth=init, n_lines=n_lines))
    final = states[-1].depth if states else init
    write_depth_png(out / "depth.png", final)
    write_depth_npy(out / "depth.npy", final)
    vmin, vmax = viz.depth_range(init, final, *(gt[None] if gt is not None else []))
    frames = [
        viz.side_by_side(
            [viz.colorize_depth(s.depth, vmin, vmax), viz.colorize_mask(s.mask)],
            [viz.caption(s.layer, s.iteration, s.iterations_in_layer), "mask"],
        )
        for s in states
    ]
    if frames:
        viz.frames_to_gif(frames, out / "animation.gif", fps=args.fps)
    report: dict[str, object] = {
        "n_points": int((sparse > 0).sum()),
        "schedule": list(pipe.schedule(*sparse.shape, schedule_points(sparse, n_lines))),
    }
    if gt is not None:
        report["mspn"] = compute_metrics(final, gt)
        report["mde"] = compute_metrics(init, gt)
    (out / "metrics.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from . import evaluate

    pipe = _load(args)
    report = evaluate.run_evaluation(pipe, evaluate.config_from_args(args), Path(args.out_dir))
    failures = evaluate.check_quality_bar(report)
    print(evaluate.markdown_report(report))
    print("quality bar: " + ("passed" if not failures else "NOT met:\n- " + "\n- ".join(failures)))
    return 0


# MSPNConfig and GuidanceConfig fields the train CLI sets
_SCHEDULE_FIELDS = ("kappa", "second_layer_schedule", "init_alignment")
_GUIDANCE_FIELDS = ("upsample",)
_MDE_FIELDS = {"mde_working_long_side": "working_long_side", "mde_global_context": "global_context"}


def _init_sources(text: str) -> tuple[tuple[str, float], ...]:
    """``"metric:2,mde:1"`` -> (("metric", 2.0), ("mde", 1.0)); a bare kind weighs 1."""
    pairs = []
    for part in text.split(","):
        kind, _, weight = part.strip().partition(":")
        if not kind:
            continue
        try:
            pairs.append((kind, float(weight) if weight else 1.0))
        except ValueError:
            message = f"weight of {kind!r} is not a number: {weight!r}"
            raise argparse.ArgumentTypeError(message) from None
    return tuple(pairs)


def _train(args: argparse.Namespace) -> int:
    from .train import TrainConfig, train

    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    overrides = {k: v for k, v in vars(args).items() if k in fields and v is not None}
    if "crop" in overrides:
        overrides["crop"] = tuple(overrides["crop"])
    schedule = {k: v for k, v in vars(args).items() if k in _SCHEDULE_FIELDS and v is not None}
    if schedule:
        overrides["mspn"] = dataclasses.replace(TrainConfig().mspn, **schedule)
    guidance = {k: v for k, v in vars(args).items() if k in _GUIDANCE_FIELDS and v is not None}
    if guidance:
        overrides["guidance"] = dataclasses.replace(TrainConfig().guidance, **guidance)
    mde = {_MDE_FIELDS[k]: v for k, v in vars(args).items() if k in _MDE_FIELDS and v is not None}
    if mde:
        overrides["mde"] = dataclasses.replace(TrainConfig().mde, **mde)
    config = TrainConfig(**overrides)
    out = train(config, device=args.device)
    print(f"checkpoints written to {out}")
    return 0


def _bench(args: argparse.Namespace) -> int:
    import torch

    from . import build_untrained_pipeline
    from .sparse import random_points

    pipe = build_untrained_pipeline(device=args.device)
    pipe = pipe.with_mspn_config(second_layer_schedule=args.second_layer_schedule)
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (args.height, args.width, 3), dtype=np.uint8)
    gt = (1 + 4 * rng.random((args.height, args.width))).astype(np.float32)
    sparse = random_points(gt, args.points, seed=0)
    init = pipe.estimate_depth(image)
    pipe.refine(image, sparse, init_depth=init)  # warm-up (compiles the native kernel)

    def median_ms(fn: Callable[[], object]) -> float:
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return 1000 * float(np.median(times))

    image_t, sparse_t, init_t = pipe._tensors(image, sparse, init)
    with torch.inference_mode():
        guidance_ms = median_ms(lambda: pipe.guidance(image_t, sparse_t, init_t))
    mde_ms = median_ms(lambda: pipe.estimate_depth(image))
    refine_ms = median_ms(lambda: pipe.refine(image, sparse, init_depth=init))
    schedule = pipe.schedule(args.height, args.width, args.points)
    print(
        f"{args.height}x{args.width}, {torch.get_num_threads()} threads, "
        f"median of {args.repeats} runs (untrained weights; timing only):"
    )
    print(f"  MDE (bundled) forward: {mde_ms:.0f} ms")
    print(f"  guidance network forward: {guidance_ms:.0f} ms")
    print(
        f"  full refinement, {args.points} points, schedule {schedule}, guidance included, "
        f"MDE excluded: {refine_ms:.0f} ms"
    )
    return 0


def _add_mde_checkpoint(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--mde-checkpoint",
        default=None,
        help="the MDE's .safetensors file (default: mde.safetensors in --checkpoints); lets "
        "a 'train --stage sdr' output folder, which holds only guidance + MSPN, load as is",
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m sdr_core", description=__doc__)
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda if present)")
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)

    refine = sub.add_parser("refine", help="refine one image's depth from sparse measurements")
    refine.add_argument("--image", required=True)
    refine.add_argument("--depth", help="ground-truth depth to sample from and score against")
    refine.add_argument("--sparse", help="a sparse depth file to use as is")
    refine.add_argument("--units", choices=["mm", "kitti", "m"], default=None)
    group = refine.add_mutually_exclusive_group()
    group.add_argument("--points", type=int, default=100)
    group.add_argument("--lines", type=int)
    refine.add_argument("--seed", type=int, default=0)
    refine.add_argument("--fps", type=int, default=8)
    refine.add_argument("--backend", default=None)
    refine.add_argument("--checkpoints", default=None, help="folder of the three .safetensors")
    _add_mde_checkpoint(refine)
    refine.add_argument("--out", required=True)
    refine.set_defaults(func=_refine)

    evaluate = sub.add_parser("evaluate", help="sparsity sweep -> JSON, markdown, HTML plot")
    evaluate.add_argument("--checkpoints", default=None)
    evaluate.add_argument("--backend", default=None)
    _add_mde_checkpoint(evaluate)
    from .evaluate import add_evaluate_arguments

    add_evaluate_arguments(evaluate)
    evaluate.set_defaults(func=_evaluate)

    train = sub.add_parser("train", help="train the MDE (stage mde) or guidance + MSPN (sdr)")
    train.add_argument("--stage", choices=["mde", "sdr"])
    train.add_argument("--out-dir", dest="out_dir")
    for name, kind in [
        ("steps", int),
        ("batch-size", int),
        ("height", int),
        ("width", int),
        ("lr", float),
        ("lines-fraction", float),
        ("min-points", int),
        ("max-points", int),
        ("iteration-loss-weight", float),
        ("grad-iterations", int),
        ("seed", int),
        ("log-every", int),
        ("checkpoint-every", int),
        ("num-threads", int),
        ("time-limit-s", float),
    ]:
        train.add_argument(f"--{name}", dest=name.replace("-", "_"), type=kind)
    train.add_argument("--crop", type=int, nargs=2, metavar=("H", "W"))
    train.add_argument("--loss", choices=["l1l2", "silog"])
    train.add_argument("--mde-checkpoint", dest="mde_checkpoint")
    train.add_argument("--init-dir", dest="init_dir")
    train.add_argument(
        "--no-mask",
        dest="use_mask",
        action="store_const",
        const=False,
        help="train the mask ablation (Fig. 10d): propagation mask fixed to 1",
    )
    train.add_argument("--kappa", type=float, help="margin of eq. 13 (default 2)")
    train.add_argument(
        "--second-layer-schedule",
        dest="second_layer_schedule",
        choices=["fixed", "eq13"],
        help="second MSPN layer: the paper's 6 iterations, or as many as the first (eq. 13)",
    )
    train.add_argument(
        "--init-sources",
        dest="init_sources",
        type=_init_sources,
        help="D0 of the samples as kind:weight pairs, kinds mde (the bundled MDE), metric, "
        "harsh, relative (simulated from the ground truth); default 'mde:1,harsh:1'",
    )
    train.add_argument(
        "--init-alignment",
        dest="init_alignment",
        choices=["none", "least_squares", "residual_idw"],
        help="align D0 to the sparse depths before refinement (default none, the paper)",
    )
    train.add_argument(
        "--upsample",
        choices=["transposed", "resize"],
        help="guidance decoder's x2 upsampling (default transposed, the paper's 3x3 "
        "transposed conv; resize = 3x3 conv then bilinear x2, no checkerboard)",
    )
    train.add_argument(
        "--mde-working-long-side",
        dest="mde_working_long_side",
        type=int,
        help="stage mde: the network runs with the image's long side resized to this many "
        "pixels (default: the image's own size)",
    )
    train.add_argument(
        "--mde-global-context",
        dest="mde_global_context",
        action="store_const",
        const=True,
        help="stage mde: add image-level features (global pooling) to the bottleneck",
    )
    train.set_defaults(func=_train)

    bench = sub.add_parser("bench", help="time a full refinement (untrained weights)")
    bench.add_argument("--height", type=int, default=228)
    bench.add_argument("--width", type=int, default=304)
    bench.add_argument("--points", type=int, default=100)
    bench.add_argument("--repeats", type=int, default=5)
    bench.add_argument(
        "--second-layer-schedule",
        choices=["fixed", "eq13"],
        default="eq13",
        help="second MSPN layer: the paper's 6 iterations, or as many as the first (shipped)",
    )
    bench.set_defaults(func=_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code. Bad input prints one line, not a traceback."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
