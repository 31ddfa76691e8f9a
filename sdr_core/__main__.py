"""Command line: ``python -m sdr_core {refine,evaluate,train,bench}``.

The only place argparse appears in ``sdr_core``, with :mod:`.cli_arguments` (every
sub-command's options): each sub-command builds config dataclasses and calls library
functions. What a user reads is in :data:`DESCRIPTION` and the help texts.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .cli_arguments import (
    add_bench_arguments,
    add_evaluate_arguments,
    add_pipeline_arguments,
    add_refine_arguments,
    add_train_arguments,
    evaluate_config_from_args,
)

if TYPE_CHECKING:
    from .pipeline import SDRPipeline

__all__ = ["add_evaluate_arguments", "evaluate_config_from_args", "main"]

DESCRIPTION = """\
MSPN depth refinement (Jun, Lee & Kim, CVPR 2024) from the command line.

A monocular depth estimate of an image is refined from sparse depth measurements by two
masked spatial propagation layers. Commands:
  refine    refine one image's depth and write the depth, an animation and metrics
  evaluate  sparsity sweep (points, LiDAR lines, hole filling) on held-out scenes
  train     train the bundled depth estimator or the guidance network + MSPN
  bench     time one full refinement (random weights)

Run `python -m sdr_core COMMAND --help` for a command's options."""

EXAMPLES = """\
example:
  python -m sdr_core refine --image assets/living_room.png \\
      --depth assets/living_room_depth.png --points 100 --out outputs/living_room"""


def _load(args: argparse.Namespace) -> SDRPipeline:
    """The pipeline named by --checkpoints, --mde-checkpoint, --backend and --device.

    Also applies --num-threads (process-wide, as ``train --num-threads`` does).
    """
    import torch

    from . import load_pipeline

    if getattr(args, "num_threads", None):
        torch.set_num_threads(args.num_threads)
    return load_pipeline(
        device=args.device,
        checkpoint_dir=args.checkpoints,
        backend=args.backend,
        mde_checkpoint=args.mde_checkpoint,
    )


def _existing(path: str | None, option: str) -> Path | None:
    """``path`` as a Path, or a FileNotFoundError naming the option and the full path."""
    if path is None:
        return None
    resolved = Path(path).expanduser().resolve()
    if not resolved.is_file():
        raise FileNotFoundError(f"{option}: no such file: {resolved}")
    return resolved


def _refine_sparse(args: argparse.Namespace, gt: np.ndarray | None, shape: tuple[int, int]):
    """The sparse depth S: --sparse as is, else points or lines sampled from --depth."""
    from .data.io import read_depth
    from .sparse import lidar_lines, random_points

    if args.sparse:
        sparse = read_depth(_existing(args.sparse, "--sparse"), units=args.units).depth
        if sparse.shape != shape:
            raise ValueError(
                f"--sparse is {sparse.shape[1]}x{sparse.shape[0]} pixels but the image is "
                f"{shape[1]}x{shape[0]}; they must be the same size"
            )
        return sparse
    if gt is None:
        raise ValueError(
            "nothing to refine from: give --depth (ground truth to sample --points or "
            "--lines from) or --sparse (a sparse depth map to use as is)"
        )
    if args.lines:
        return lidar_lines(gt, args.lines, seed=args.seed)
    return random_points(gt, args.points, seed=args.seed)


def _refine_init_depth(
    args: argparse.Namespace, pipe: Any, image: np.ndarray, gt: np.ndarray | None
) -> tuple[np.ndarray, str]:
    """D0 of ``refine`` and how it was made: the bundled MDE, a file, or a simulation.

    Each is a source of :mod:`.d0_sources` made by its builder; a simulation's seed is --seed.
    """
    from .d0_sources import D0_SOURCES, SCENE_SOURCES, d0_source
    from .data.io import read_depth

    if args.init_depth:
        init = read_depth(_existing(args.init_depth, "--init-depth"), units=args.units).depth
        if init.shape != image.shape[:2]:
            raise ValueError(
                f"--init-depth is {init.shape[1]}x{init.shape[0]} pixels but the image is "
                f"{image.shape[1]}x{image.shape[0]}; they must be the same size"
            )
        if not (np.isfinite(init).all() and (init > 0).all()):
            raise ValueError("--init-depth must be finite and > 0 everywhere (D0 is dense)")
        init = D0_SOURCES["uploaded"].build(image, depth=init)  # dense already: unchanged
        return init, f"file {Path(args.init_depth).name}"
    source = d0_source(args.init_source, SCENE_SOURCES)
    if not source.needs_gt:
        return source.build(image, estimate=pipe.estimate_depth), "bundled MDE"
    if gt is None:
        raise ValueError(f"--init-source {args.init_source} simulates D0 from --depth: give it")
    return source.build(image, gt, seed=args.seed), f"simulated ({source.name})"


def _refine(args: argparse.Namespace) -> int:
    """``refine``: refine one image, write its files, print a summary.

    The frames (and so the GIF) and the files are those the studio makes of the same run
    (:mod:`.viz.run_frames`, :mod:`.report`): the same frames, titles and colour scales.
    """
    from . import report, viz
    from .data.io import read_depth, read_image
    from .methods import BASELINES, METHODS, MethodInputs, predict
    from .metrics import compute_metrics
    from .sparse import schedule_points

    image = read_image(_existing(args.image, "--image"))
    depth_path = _existing(args.depth, "--depth")
    gt = read_depth(depth_path, units=args.units).depth if depth_path else None
    if gt is not None and gt.shape != image.shape[:2]:
        raise ValueError(
            f"--image is {image.shape[1]}x{image.shape[0]} pixels but --depth is "
            f"{gt.shape[1]}x{gt.shape[0]}; an image and its depth must be the same size"
        )
    sparse = _refine_sparse(args, gt, image.shape[:2])
    pipe = _load(args)
    init, init_label = _refine_init_depth(args, pipe, image, gt)
    n_lines = args.lines if (args.lines and not args.sparse) else None
    states = list(pipe.refine_steps(image, sparse, init_depth=init, n_lines=n_lines))
    final = states[-1].depth if states else init
    scales = viz.run_scales(init, gt)  # the studio's scales: GT and D0, the error of D0
    frames = viz.render_frames(states, scales, gt)  # layer 2's restart is no frame
    n_schedule = schedule_points(sparse, n_lines)
    summary: dict[str, object] = {
        "image": str(Path(args.image).resolve()),
        "n_points": int((sparse > 0).sum()),
        "schedule": list(pipe.schedule(*sparse.shape, n_schedule)),
        "initial_depth": init_label,
    }
    if gt is not None:  # MSPN and every baseline on the same D0 and S
        inputs = MethodInputs(image, sparse, init, n_schedule)
        predictions = {"mspn": final, **predict(BASELINES, pipe, inputs)}
        summary["metrics"] = {  # rows named as in the app and the evaluation
            METHODS[method].label: compute_metrics(depth, gt)
            for method, depth in predictions.items()
        }
    files = report.write_run_files(
        args.out,
        final,
        frames,
        summary,
        image=image,
        depth_scale=scales.depth_range,
        fps=args.fps,
    )
    _print_refine_summary(summary, files)
    return 0


def _print_refine_summary(summary: dict[str, object], files: list[Path]) -> None:
    first, second = summary["schedule"]  # type: ignore[misc]
    print(f"refined from {summary['n_points']} depth points, {first} + {second} iterations")
    metrics = dict(summary.get("metrics", {}))  # type: ignore[call-overload]
    width = max((len(method) for method in metrics), default=0)
    for method, values in metrics.items():
        print(
            f"  {method:{width}s} RMSE {values['rmse']:.3f} m, REL {values['rel']:.3f}, "
            f"delta1 {values['d1']:.3f}"
        )
    print("wrote:")
    for path in files:
        print(f"  {path.resolve()}")


def _evaluate(args: argparse.Namespace) -> int:
    from . import evaluate

    pipe = _load(args)
    report = evaluate.run_evaluation(pipe, evaluate_config_from_args(args), Path(args.out_dir))
    print(evaluate.markdown_report(report))
    out = Path(args.out_dir).resolve()
    print(f"wrote: {out / 'results.json'}, {out / 'results.md'}, {out / 'results.html'}")
    return 0


# MSPNConfig and GuidanceConfig fields the train CLI sets
_SCHEDULE_FIELDS = (
    "kappa",
    "second_layer_schedule",
    "init_alignment",
    "alignment_prior_points",
    "domain",
)
_GUIDANCE_FIELDS = {
    "upsample": "upsample",
    "guidance_stem_dim": "stem_dim",
    "guidance_decoder_dims": "decoder_dims",
}
_MDE_FIELDS = {"mde_working_long_side": "working_long_side", "mde_global_context": "global_context"}


def _train(args: argparse.Namespace) -> int:
    from .train import TrainConfig, train

    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    overrides = {k: v for k, v in vars(args).items() if k in fields and v is not None}
    if "crop" in overrides:
        overrides["crop"] = tuple(overrides["crop"])
    schedule = {k: v for k, v in vars(args).items() if k in _SCHEDULE_FIELDS and v is not None}
    if schedule:
        overrides["mspn"] = dataclasses.replace(TrainConfig().mspn, **schedule)
    guidance = {
        _GUIDANCE_FIELDS[k]: v
        for k, v in vars(args).items()
        if k in _GUIDANCE_FIELDS and v is not None
    }
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


def _parser() -> argparse.ArgumentParser:
    """The ``python -m sdr_core`` parser: global options and one sub-command per function."""
    parser = argparse.ArgumentParser(
        prog="python -m sdr_core",
        description=DESCRIPTION,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--device", default=None, help="cpu or cuda (default: cuda when available, else cpu)"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    refine = sub.add_parser(
        "refine",
        help="refine one image's depth from sparse measurements",
        description="Refine one image's depth: the bundled MDE gives D0, two MSPN layers\n"
        "refine it from the sparse measurements. Writes the refined depth, an animation\n"
        "of every iteration and metrics (against --depth when given), and prints where.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_refine_arguments(refine)
    refine.set_defaults(func=_refine)

    evaluate = sub.add_parser(
        "evaluate",
        help="sparsity sweep -> JSON, markdown, HTML plot",
        description="Sparsity sweep of MSPN, its ablations and the baselines (Fig. 5, Fig. 6, "
        "Table 4) on held-out synthetic scenes and the Middlebury scene.",
    )
    add_pipeline_arguments(evaluate)
    add_evaluate_arguments(evaluate)
    evaluate.set_defaults(func=_evaluate)

    train = sub.add_parser(
        "train",
        help="train the MDE (stage mde) or guidance + MSPN (sdr)",
        description="Train on procedurally generated RGB-D scenes (no downloads). Resumable: "
        "the same command continues from OUT_DIR/state.safetensors. Unset options take "
        "sdr_core.train.TrainConfig's defaults; the model card lists the shipped commands.",
    )
    add_train_arguments(train)
    train.set_defaults(func=_train)

    bench = sub.add_parser("bench", help="time a full refinement (untrained weights)")
    add_bench_arguments(bench)
    bench.set_defaults(func=_bench)
    return parser


def _error_text(error: Exception) -> str:
    """One line for the user; a file problem names the file by its full path."""
    from .data.io import RGBDFileError

    text = str(error)
    if isinstance(error, RGBDFileError) and error.path is not None:
        prefix = f"{error.path.name}: "
        if text.startswith(prefix):
            text = f"{error.path.resolve()}: {text[len(prefix) :]}"
    return text


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code. Bad input prints one line, not a traceback."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {_error_text(error)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
