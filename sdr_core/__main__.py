"""Command line: ``python -m sdr_core {refine,evaluate,train,bench}``.

The only place argparse appears in ``sdr_core``: each sub-command builds config dataclasses
and calls library functions. What a user reads is in :data:`DESCRIPTION` and the help texts.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_args

import numpy as np

if TYPE_CHECKING:
    from .evaluate import EvalConfig
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
    """The pipeline named by --checkpoints, --mde-checkpoint, --backend and --device."""
    from . import load_pipeline

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


# refine --init-source: the simulated estimators' presets (sdr_core.data.mde_errors)
_SIMULATED_INIT = {"metric": "metric", "simulated": "harsh"}


def _refine_init_depth(
    args: argparse.Namespace, pipe: Any, image: np.ndarray, gt: np.ndarray | None
) -> tuple[np.ndarray, str]:
    """D0 of ``refine`` and how it was made: the bundled MDE, a file, or a simulation."""
    from .data.io import read_depth
    from .data.mde_errors import simulate_init_depth

    if args.init_depth:
        init = read_depth(_existing(args.init_depth, "--init-depth"), units=args.units).depth
        if init.shape != image.shape[:2]:
            raise ValueError(
                f"--init-depth is {init.shape[1]}x{init.shape[0]} pixels but the image is "
                f"{image.shape[1]}x{image.shape[0]}; they must be the same size"
            )
        if not (np.isfinite(init).all() and (init > 0).all()):
            raise ValueError("--init-depth must be finite and > 0 everywhere (D0 is dense)")
        return init, f"file {Path(args.init_depth).name}"
    if args.init_source == "mde":
        return pipe.estimate_depth(image), "bundled MDE"
    if gt is None:
        raise ValueError(f"--init-source {args.init_source} simulates D0 from --depth: give it")
    init = simulate_init_depth(gt, _SIMULATED_INIT[args.init_source], args.seed)
    return init, f"simulated ({args.init_source})"


def _refine(args: argparse.Namespace) -> int:
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
    scale = viz.depth_range(init, final, *([gt] if gt is not None else []))
    error_vmax = viz.error_range([init], gt) if gt is not None else None
    frames = [
        viz.refinement_frame(
            s.depth,
            s.mask,
            "initial depth D0"
            if s.iteration == 0
            else viz.caption(s.layer, s.iteration, s.iterations_in_layer),
            scale,
            gt,
            error_vmax,
        )
        for s in states
        if not s.is_restart  # the same depth as layer 1's last frame
    ]
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
        args.out, final, frames, summary, image=image, depth_scale=scale, fps=args.fps
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
    failures = evaluate.check_quality_bar(report)
    print(evaluate.markdown_report(report))
    print("quality bar: " + ("passed" if not failures else "NOT met:\n- " + "\n- ".join(failures)))
    out = Path(args.out_dir).resolve()
    print(f"wrote: {out / 'results.json'}, {out / 'results.md'}, {out / 'results.html'}")
    return 0


# MSPNConfig and GuidanceConfig fields the train CLI sets
_SCHEDULE_FIELDS = ("kappa", "second_layer_schedule", "init_alignment", "domain")
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


def _int_tuple(text: str) -> tuple[int, ...]:
    """``"1,5,10"`` -> (1, 5, 10); ``""`` -> () (skip the setting)."""
    return tuple(int(part) for part in text.split(",") if part.strip())


def add_evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``evaluate`` sub-command's options to ``parser`` (pipeline options excluded).

    The caller adds how to load the pipeline (checkpoint folder, device) and passes
    ``evaluate_config_from_args(args)`` and ``args.out_dir`` to :func:`run_evaluation`.
    """
    from .evaluate import INIT_SOURCES, METHODS, EvalConfig

    default = EvalConfig()

    def joined(values: tuple[Any, ...]) -> str:
        return ",".join(str(v) for v in values)

    parser.add_argument(
        "--points",
        type=_int_tuple,
        default=default.points,
        help=f"comma-separated random-point levels ('' skips; default {joined(default.points)})",
    )
    parser.add_argument(
        "--lines",
        type=_int_tuple,
        default=default.lines,
        help=f"comma-separated LiDAR-line levels ('' skips; default {joined(default.lines)})",
    )
    parser.add_argument("--no-hole", action="store_true", help="skip the hole-filling setting")
    parser.add_argument(
        "--hole-points",
        type=int,
        default=default.hole_points,
        help="random points outside the hole in the hole-filling setting",
    )
    parser.add_argument(
        "--no-hole-reach",
        action="store_true",
        help="use eq. 13 with the outside point count in the hole setting (no longer layer 1)",
    )
    parser.add_argument(
        "--n-scenes",
        type=int,
        default=default.n_scenes,
        help="held-out synthetic scenes (0 skips the split)",
    )
    parser.add_argument(
        "--size",
        type=int,
        nargs=2,
        default=default.size,
        metavar=("H", "W"),
        help="synthetic scene size",
    )
    parser.add_argument("--no-middlebury", action="store_true", help="skip the Middlebury scene")
    parser.add_argument(
        "--middlebury-size",
        type=int,
        nargs=2,
        default=default.middlebury_size,
        metavar=("H", "W"),
        help="Middlebury scene size",
    )
    parser.add_argument("--seed", type=int, default=default.seed, help="sampling seed")
    parser.add_argument(
        "--methods",
        type=lambda s: tuple(p.strip() for p in s.split(",") if p.strip()),
        default=default.methods,
        help=f"comma-separated subset of {joined(METHODS)}",
    )
    parser.add_argument(
        "--no-mask-checkpoints",
        default=None,
        help="folder with guidance + MSPN trained without the mask (adds the method "
        "mspn_no_mask_trained); default: <checkpoints>/ablation_no_mask when it exists, '' "
        "skips it",
    )
    parser.add_argument(
        "--faithful-checkpoints",
        default=None,
        help="folder with guidance + MSPN trained in the paper's configuration (adds the "
        "method mspn_faithful); default: <checkpoints>/faithful when it exists, '' skips it",
    )
    parser.add_argument(
        "--init-source",
        choices=INIT_SOURCES,
        default=default.init_source,
        help="D0 of every method: the pipeline's MDE (mde), or the ground truth with the "
        "simulated errors of a poor MDE (simulated) or of a good metric MDE (metric); does "
        "the refinement help another estimator? (the paper's Fig. 10b)",
    )
    parser.add_argument(
        "--no-mask-shape",
        action="store_true",
        help="skip the mask-shape diagnostic (one centre point, 6 first-layer iterations)",
    )
    parser.add_argument(
        "--out-dir",
        default="eval_results",
        help="folder for results.json, results.md and results.html",
    )


def evaluate_config_from_args(args: argparse.Namespace) -> EvalConfig:
    """Build the :class:`~sdr_core.evaluate.EvalConfig` of :func:`add_evaluate_arguments`."""
    from .evaluate import ABLATION_SUBDIR, FAITHFUL_SUBDIR, EvalConfig

    methods = tuple(args.methods)
    from .pipeline import DEFAULT_CHECKPOINT_DIR

    base = Path(getattr(args, "checkpoints", None) or DEFAULT_CHECKPOINT_DIR)

    def folder(given: str | None, subdir: str) -> str:
        if given is not None:
            return given
        default = base / subdir  # the shipped variant next to the checkpoints
        return str(default) if (default / "mspn.safetensors").is_file() else ""

    ablation = folder(args.no_mask_checkpoints, ABLATION_SUBDIR)
    faithful = folder(getattr(args, "faithful_checkpoints", None), FAITHFUL_SUBDIR)
    if ablation and "mspn_no_mask_trained" not in methods:
        methods += ("mspn_no_mask_trained",)
    if faithful and "mspn_faithful" not in methods:
        methods += ("mspn_faithful",)
    return EvalConfig(
        points=tuple(args.points),
        lines=tuple(args.lines),
        hole=not args.no_hole,
        hole_points=args.hole_points,
        hole_reach=not args.no_hole_reach,
        n_scenes=args.n_scenes,
        size=tuple(args.size),
        middlebury=not args.no_middlebury,
        middlebury_size=tuple(args.middlebury_size),
        seed=args.seed,
        methods=methods,
        no_mask_checkpoints=ablation or None,
        faithful_checkpoints=faithful or None,
        init_source=args.init_source,
        mask_shape=not getattr(args, "no_mask_shape", False),
    )


def _add_mde_checkpoint(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--mde-checkpoint",
        default=None,
        metavar="FILE",
        help="the MDE's .safetensors file (default: mde.safetensors in --checkpoints); lets "
        "a 'train --stage sdr' output folder, which holds only guidance + MSPN, load as is",
    )


def _add_pipeline_arguments(parser: argparse.ArgumentParser) -> None:
    """Which weights to load and how to run them (refine and evaluate)."""
    from .attention import Backend

    parser.add_argument(
        "--checkpoints",
        default=None,
        metavar="DIR",
        help="folder holding mde, guidance and mspn .safetensors (default: the bundled "
        "checkpoints/ of the repository)",
    )
    _add_mde_checkpoint(parser)
    parser.add_argument(
        "--backend",
        default=None,
        choices=get_args(Backend),
        help="MSPN attention backend (default: the one stored in the checkpoint; 'auto' "
        "takes the fastest this device can run: native on CPU, triton on CUDA when "
        "installed; reference is the slow, readable oracle)",
    )


def _add_refine_arguments(refine: argparse.ArgumentParser) -> None:
    refine.add_argument(
        "--image", required=True, metavar="FILE", help="RGB image (PNG, JPEG, WebP, BMP, TIFF)"
    )
    refine.add_argument(
        "--depth",
        metavar="FILE",
        help="ground-truth depth of the image (16-bit PNG in mm, .npy in metres, ...): "
        "--points / --lines are sampled from it and the result is scored against it",
    )
    refine.add_argument(
        "--sparse",
        metavar="FILE",
        help="a sparse depth map of the image's size to use as is (0 = no measurement); "
        "replaces --points / --lines",
    )
    refine.add_argument(
        "--units",
        choices=["mm", "kitti", "m"],
        default=None,
        help="units of --depth and --sparse (default: by file type: integer PNG = mm, "
        ".npy = m; kitti = 16-bit PNG / 256)",
    )
    group = refine.add_mutually_exclusive_group()
    group.add_argument(
        "--points",
        type=int,
        default=100,
        metavar="N",
        help="random ground-truth pixels used as measurements (default: 100)",
    )
    group.add_argument(
        "--lines",
        type=int,
        metavar="K",
        help="simulated LiDAR scan lines (of a 64-line scanner) instead of random points",
    )
    init = refine.add_mutually_exclusive_group()
    init.add_argument(
        "--init-source",
        choices=["mde", *_SIMULATED_INIT],
        default="mde",
        help="D0: the bundled MDE (default), or simulated from --depth with the errors of a "
        "good metric MDE (metric) or of a poor one (simulated), as in evaluate",
    )
    init.add_argument(
        "--init-depth",
        metavar="FILE",
        help="your own D0: a dense depth map of the image's size (units as --units, else by "
        "file type)",
    )
    refine.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the point / line sampling and of a simulated D0 (default: 0)",
    )
    refine.add_argument(
        "--fps", type=int, default=8, help="frames per second of the animation (default: 8)"
    )
    _add_pipeline_arguments(refine)
    refine.add_argument(
        "--out",
        required=True,
        metavar="DIR",
        help="output folder (created): refined_depth_mm.png (16-bit, millimetres), "
        "refined_depth_m.npy (metres), refined_depth_color.png, mspn_animation.gif, "
        "point_cloud.ply, metrics.json",
    )


def _parser() -> argparse.ArgumentParser:
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
    _add_refine_arguments(refine)
    refine.set_defaults(func=_refine)

    evaluate = sub.add_parser(
        "evaluate",
        help="sparsity sweep -> JSON, markdown, HTML plot",
        description="Sparsity sweep of MSPN, its ablations and the baselines (Fig. 5, Fig. 6, "
        "Table 4) on held-out synthetic scenes and the Middlebury scene.",
    )
    _add_pipeline_arguments(evaluate)
    add_evaluate_arguments(evaluate)
    evaluate.set_defaults(func=_evaluate)

    from .train import TrainConfig

    train_default = TrainConfig()
    train = sub.add_parser(
        "train",
        help="train the MDE (stage mde) or guidance + MSPN (sdr)",
        description="Train on procedurally generated RGB-D scenes (no downloads). Resumable: "
        "the same command continues from OUT_DIR/state.safetensors. Unset options take "
        "sdr_core.train.TrainConfig's defaults; the model card lists the shipped commands.",
    )
    train.add_argument(
        "--stage", choices=["mde", "sdr"], help="mde: the bundled MDE; sdr: guidance + MSPN"
    )
    train.add_argument(
        "--out-dir",
        dest="out_dir",
        help=f"folder for weights, state and log.csv (default {train_default.out_dir})",
    )
    for name, kind, text in [
        ("steps", int, "optimiser steps"),
        ("batch-size", int, "samples per step"),
        ("height", int, "scene height in pixels"),
        ("width", int, "scene width in pixels"),
        (
            "lr",
            float,
            "AdamW learning rate, halved at "
            + "/".join(f"{m * 100:.0f} %%" for m in train_default.lr_milestones)
            + " of the steps",
        ),
        ("lines-fraction", float, "share of samples with LiDAR lines"),
        ("min-points", int, "fewest random points per sample"),
        ("max-points", int, "most random points per sample (log-uniform)"),
        ("iteration-loss-weight", float, "weight of a loss on every intermediate iteration"),
        ("mask-coverage-weight", float, "weight of a loss on where layer 1's mask has not reached"),
        ("grad-iterations", int, "backpropagate through the last K iterations per layer"),
        ("seed", int, "data and initialisation seed"),
        ("log-every", int, "steps between log.csv rows"),
        ("checkpoint-every", int, "steps between saved states"),
        ("num-threads", int, "torch CPU threads (None: torch's own choice)"),
        (
            "time-limit-s",
            float,
            "stop, save and export after this many seconds (None: run every step)",
        ),
    ]:
        dest = name.replace("-", "_")
        default = getattr(train_default, dest)
        train.add_argument(f"--{name}", dest=dest, type=kind, help=f"{text} (default {default})")
    train.add_argument(
        "--crop",
        type=int,
        nargs=2,
        metavar=("H", "W"),
        help="random crop of each scene, for speed (default: the whole scene)",
    )
    train.add_argument(
        "--loss", choices=["l1l2", "silog"], help="eq. 14 (default) or eq. 15 (stage sdr)"
    )
    train.add_argument(
        "--mde-checkpoint",
        dest="mde_checkpoint",
        help=f"frozen MDE giving D0 in stage sdr (default {train_default.mde_checkpoint})",
    )
    train.add_argument(
        "--init-dir",
        dest="init_dir",
        help="start from the weights in this folder (guidance/mspn, or mde) instead of random",
    )
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
        choices=["none", "median_scale", "least_squares", "residual_idw"],
        help="align D0 to the sparse depths before refinement (default none, the paper)",
    )
    train.add_argument(
        "--domain",
        choices=["depth", "ratio", "ratio-depth"],
        help="what the MSPN layers propagate: depth (default, the paper), rho = log(D / D0) "
        "from 0 (ratio), or ratio in layer 1 and depth in layer 2 (ratio-depth)",
    )
    train.add_argument(
        "--density-matched",
        dest="density_matched",
        action="store_const",
        const=True,
        help="with --crop: points drawn on the whole scene and cropped with it, one count "
        "per step, the whole scene's schedule (eq. 13); larger crops when few points",
    )
    train.add_argument(
        "--crops-per-scene",
        dest="crops_per_scene",
        type=int,
        help=f"crops taken from each rendered scene with --density-matched "
        f"(default {train_default.crops_per_scene})",
    )
    train.add_argument(
        "--upsample",
        choices=["transposed", "resize"],
        help="guidance decoder's x2 upsampling (default transposed, the paper's 3x3 "
        "transposed conv; resize = 3x3 conv then bilinear x2, no checkerboard)",
    )
    train.add_argument(
        "--mspn-init",
        dest="mspn_init",
        choices=["default", "refiner"],
        help="how a fresh MSPN starts: PyTorch's default, or as a flooding near-identity "
        "refiner (for a pre-filled D0); ignored with --init-dir",
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
