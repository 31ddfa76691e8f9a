"""The command line's options, one function per sub-command, and the configs built from them.

:mod:`sdr_core.__main__` wires these into ``python -m sdr_core {refine,evaluate,train,bench}``
and runs the commands; here is only what a user can type: every flag, its default and its
help text. Defaults are read from the config dataclasses (``EvalConfig``, ``TrainConfig``),
so help and code cannot drift apart. :func:`add_evaluate_arguments` and
:func:`evaluate_config_from_args` also serve other front ends of the evaluation.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_args

from .d0_sources import SCENE_SOURCES, with_aliases
from .prefill import ALIGNMENTS

if TYPE_CHECKING:
    from .evaluate import EvalConfig
    from .train import TrainConfig

__all__ = [
    "add_bench_arguments",
    "add_evaluate_arguments",
    "add_pipeline_arguments",
    "add_refine_arguments",
    "add_train_arguments",
    "evaluate_config_from_args",
]


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


def _int_tuple(text: str) -> tuple[int, ...]:
    """``"1,5,10"`` -> (1, 5, 10); ``""`` -> () (skip the setting)."""
    return tuple(int(part) for part in text.split(",") if part.strip())


def _thread_count(text: str) -> int:
    """A --num-threads value: an integer >= 1, or a message that says so."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a whole number of threads, got {text!r}"
        ) from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"the number of threads must be at least 1, got {value}")
    return value


def _joined(values: tuple[Any, ...]) -> str:
    """``(1, 5, 10)`` -> ``"1,5,10"``: a default as the comma-separated option takes it."""
    return ",".join(str(v) for v in values)


def add_evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``evaluate`` sub-command's options to ``parser`` (pipeline options excluded).

    The caller adds how to load the pipeline (checkpoint folder, device) and passes
    ``evaluate_config_from_args(args)`` and ``args.out_dir`` to :func:`run_evaluation`.
    """
    from .evaluate import EvalConfig

    default = EvalConfig()
    _add_sweep_arguments(parser, default)
    _add_evaluated_methods_arguments(parser, default)


def _add_sweep_arguments(parser: argparse.ArgumentParser, default: EvalConfig) -> None:
    """``evaluate``'s sparsity levels, settings, scenes and seed (defaults: ``default``)."""
    parser.add_argument(
        "--points",
        type=_int_tuple,
        default=default.points,
        help=f"comma-separated random-point levels ('' skips; default {_joined(default.points)})",
    )
    parser.add_argument(
        "--lines",
        type=_int_tuple,
        default=default.lines,
        help=f"comma-separated LiDAR-line levels ('' skips; default {_joined(default.lines)})",
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


def _add_evaluated_methods_arguments(parser: argparse.ArgumentParser, default: EvalConfig) -> None:
    """``evaluate``'s methods, the trained variants, D0, the diagnostic and the output folder."""
    from .evaluate import INIT_SOURCES, METHODS

    parser.add_argument(
        "--methods",
        type=lambda s: tuple(p.strip() for p in s.split(",") if p.strip()),
        default=default.methods,
        help=f"comma-separated subset of {_joined(METHODS)}",
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
        choices=with_aliases(INIT_SOURCES),
        default=default.init_source,
        help="D0 of every method: the pipeline's MDE (mde), or the ground truth with the "
        "simulated errors of a good metric MDE (metric), of a poor MDE (harsh; 'simulated' "
        "is its earlier name) or of a relative MDE of unknown scale (relative); does the "
        "refinement help another estimator? (the paper's Fig. 10b)",
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


def add_pipeline_arguments(parser: argparse.ArgumentParser) -> None:
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
    parser.add_argument(
        "--num-threads",
        type=_thread_count,
        default=None,
        metavar="N",
        help="torch CPU threads (default: torch's own choice, one per core); 1 lets two "
        "evaluations share two cores without slowing each other down",
    )


def add_refine_arguments(refine: argparse.ArgumentParser) -> None:
    """Add the ``refine`` sub-command's options: the inputs, the measurements, D0, the output."""
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
        choices=with_aliases(SCENE_SOURCES),
        default="mde",
        help="D0: the bundled MDE (default), or simulated from --depth with the errors of a "
        "good metric MDE (metric), of a poor one (harsh, or by its earlier name simulated) "
        "or of a relative one (relative), as in evaluate",
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
    add_pipeline_arguments(refine)
    refine.add_argument(
        "--out",
        required=True,
        metavar="DIR",
        help="output folder (created): refined_depth_mm.png (16-bit, millimetres), "
        "refined_depth_m.npy (metres), refined_depth_color.png, mspn_animation.gif, "
        "point_cloud.ply, metrics.json",
    )


def _train_number_options(train_default: TrainConfig) -> list[tuple[str, type, str]]:
    """``train``'s plain numeric options: (flag without --, type, help before the default)."""
    return [
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
        (
            "mask-confidence-weight",
            float,
            "weight of a loss making layer 1's mask 1 where its depth beats D0, else 0",
        ),
        ("edge-loss-weight", float, "extra weight of eq. 14 within 2 px of a depth edge"),
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
    ]


def add_train_arguments(train: argparse.ArgumentParser) -> None:
    """Add the ``train`` sub-command's options; an unset one takes TrainConfig's default.

    Every option defaults to None so that :func:`_train` overrides only what was given; the
    help texts quote TrainConfig's defaults, so help and code cannot drift apart.
    """
    from .train import TrainConfig

    train_default = TrainConfig()
    _add_train_run_arguments(train, train_default)
    _add_train_refiner_arguments(train)
    _add_train_crop_and_network_arguments(train, train_default)


def _add_train_run_arguments(train: argparse.ArgumentParser, train_default: TrainConfig) -> None:
    """The stage, the output, the optimiser and sampling numbers, the crop, loss and inputs."""
    train.add_argument(
        "--stage", choices=["mde", "sdr"], help="mde: the bundled MDE; sdr: guidance + MSPN"
    )
    train.add_argument(
        "--out-dir",
        dest="out_dir",
        help=f"folder for weights, state and log.csv (default {train_default.out_dir})",
    )
    for name, kind, text in _train_number_options(train_default):
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


def _add_train_refiner_arguments(train: argparse.ArgumentParser) -> None:
    """What the MSPN refines and how: the mask, its schedule, the D0 of the samples, the domain."""
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
        "harsh, relative (simulated from the ground truth; sdr_core.d0_sources); default "
        "'mde:1,harsh:1'",
    )
    train.add_argument(
        "--init-alignment",
        dest="init_alignment",
        choices=list(ALIGNMENTS),
        help="align D0 to the sparse depths before refinement (default none, the paper)",
    )
    train.add_argument(
        "--alignment-prior-points",
        dest="alignment_prior_points",
        type=float,
        help="k of --init-alignment shrunk_median_scale: n measurements set n / (n + k) of "
        "the log scale (default 1)",
    )
    train.add_argument(
        "--domain",
        choices=["depth", "ratio", "ratio-depth"],
        help="what the MSPN layers propagate: depth (default, the paper), rho = log(D / D0) "
        "from 0 (ratio), or ratio in layer 1 and depth in layer 2 (ratio-depth)",
    )


def _add_train_crop_and_network_arguments(
    train: argparse.ArgumentParser, train_default: TrainConfig
) -> None:
    """Density-matched crops, the guidance upsampling, a fresh MSPN's start and the MDE's."""
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
        "--guidance-stem-dim",
        dest="guidance_stem_dim",
        type=int,
        help="channels of each guidance input branch at full resolution (default 16)",
    )
    train.add_argument(
        "--guidance-decoder-dims",
        dest="guidance_decoder_dims",
        type=_int_tuple,
        help="channels of the guidance decoder's five blocks, e.g. 128,96,64,16,16 "
        "(default 128,96,64,32,32); a fresh guidance network only (not with --init-dir)",
    )
    train.add_argument(
        "--distill-from",
        dest="distill_from",
        help="train a fresh guidance network (--guidance-* options) to give this folder's "
        "MSPN the queries and keys its own guidance gives (distillation; MSPN frozen)",
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


def add_bench_arguments(bench: argparse.ArgumentParser) -> None:
    """The image size, point count, repeats and second-layer schedule of ``bench``."""
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
