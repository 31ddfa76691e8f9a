"""Where the initial depth D0 comes from: one registry of D0 sources for every front end.

D0 is the dense depth the refinement starts from. The studio, ``evaluate``, ``train`` and
``refine`` name its sources with one vocabulary, the keys of :data:`D0_SOURCES`, and make it
with each source's one builder (:meth:`D0Source.build`); their own tables are views of this
one (the studio's radio labels, evaluate's ``INIT_SOURCES``, train's ``INIT_KINDS``).

====================  ============  ======================================================
name                  kind          D0
====================  ============  ======================================================
``mde``               estimator     the pipeline's MDE on the image (the bundled one)
``metric``            simulated     ground truth + errors of a good metric MDE
``harsh``             simulated     ground truth + errors of a poor MDE (alias ``simulated``)
``relative``          simulated     ground truth + a relative MDE's unknown scale and shift
``depth_anything``    estimator     Depth Anything V2 on the image (studio, when loaded)
``uploaded``          file          the user's own depth map, resized, holes filled
====================  ============  ======================================================

The simulated sources are the presets of :data:`sdr_core.data.mde_errors.INIT_DEPTH_PRESETS`
(same names). Aliases (:data:`ALIASES`) are names earlier releases used on the command line
and in results files: ``simulated`` is ``evaluate --init-source`` / ``refine --init-source``'s
name of ``harsh``. They are accepted wherever a name is read (:func:`d0_source`); what is
written uses the canonical name.

Every builder is deterministic: the same inputs and seed give the same D0, bit for bit,
whichever front end calls it. The seed each front end passes stays its own (the studio: 0
per scene; evaluate: mixed with the scene name; train: drawn per sample; refine: ``--seed``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

import numpy as np

__all__ = [
    "ALIASES",
    "D0_SOURCES",
    "SCENE_SOURCES",
    "SIMULATED_SOURCES",
    "D0Source",
    "SourceKind",
    "d0_source",
    "with_aliases",
]

# How a source makes D0: run a depth estimator on the image, simulate an MDE's errors from
# the ground truth, or take a depth map the user supplies.
SourceKind = Literal["estimator", "simulated", "file"]
Estimate = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class D0Source:
    """One source of the initial depth D0.

    Attributes:
        name: the canonical key (command line, configs, results files, checkpoints).
        label: plain words for a UI (the studio's radio button).
        description: what it loads or simulates, as a phrase for reports.
        kind: how :meth:`build` makes D0 (see :data:`SourceKind`).
        preset: for a simulated source, its key of
            :data:`sdr_core.data.mde_errors.INIT_DEPTH_PRESETS`; None otherwise.
        aliases: older names still accepted for it (documented in the module docstring).
    """

    name: str
    label: str
    description: str
    kind: SourceKind
    preset: str | None = None
    aliases: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if (self.kind == "simulated") != (self.preset is not None):
            raise ValueError(f"D0 source {self.name!r}: a preset goes with kind 'simulated'")

    @property
    def needs_gt(self) -> bool:
        """Whether D0 is made from the ground truth (a scene without it cannot use it)."""
        return self.kind == "simulated"

    def build(
        self,
        image: np.ndarray | None = None,
        gt: np.ndarray | None = None,
        *,
        seed: int = 0,
        estimate: Estimate | None = None,
        depth: np.ndarray | None = None,
    ) -> np.ndarray:
        """D0 of this source (H x W float32 metres).

        Args:
            image: H x W x 3 uint8 RGB; what an estimator runs on and the size a file's
                depth is resized to.
            gt: H x W ground truth in metres (0 or NaN = missing), for a simulated source;
                missing pixels take the nearest valid depth first, so D0 is dense.
            seed: the simulation seed (simulated sources only).
            estimate: the depth estimator, image in, H x W metres out (estimator sources:
                e.g. ``SDRPipeline.estimate_depth`` or ``DepthEstimator.estimate``).
            depth: the user's depth map (file source), any size of the image's aspect:
                resized to the image by nearest neighbour, missing values (0, NaN, inf,
                negative) filled with the median of the valid ones.

        Returns:
            H x W float32 metres. A file's or a simulation's D0 is > 0 everywhere; an
            estimator's is what it returned, untouched (an MDE's contract is H x W float32
            metres > 0; a caller that runs an optional model checks it and may fall back).

        Raises:
            ValueError: an input this kind needs is missing, or has no valid depth.
        """
        if self.kind == "estimator":
            if image is None or estimate is None:
                raise ValueError(f"D0 source {self.name!r} needs the image and an estimator")
            return estimate(image)
        if self.kind == "simulated":
            if gt is None:
                raise ValueError(f"D0 source {self.name!r} simulates D0 from ground truth")
            from .data.mde_errors import simulate_init_depth

            assert self.preset is not None
            return simulate_init_depth(gt, self.preset, seed)
        if image is None or depth is None:
            raise ValueError(f"D0 source {self.name!r} needs the image and a depth map")
        return _dense_at_image_size(depth, image.shape[:2])


def _dense_at_image_size(depth: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A user's depth map as D0: nearest-neighbour resized to ``size``, holes filled."""
    from .data.io import resize_depth_nearest
    from .mde.from_file import fill_missing

    depth = np.asarray(depth)
    if depth.shape[:2] != tuple(size):
        depth = resize_depth_nearest(depth, size)
    return fill_missing(depth)


_SOURCES = (
    D0Source(
        "mde",
        "bundled MDE",
        "the pipeline's MDE",
        "estimator",
    ),
    D0Source(
        "metric",
        "good metric MDE (simulated from ground truth)",
        "ground truth with simulated errors of a good metric MDE (metric preset)",
        "simulated",
        preset="metric",
    ),
    D0Source(
        "harsh",
        "poor MDE (simulated from ground truth)",
        "ground truth with simulated errors of a poor MDE (harsh preset)",
        "simulated",
        preset="harsh",
        aliases=("simulated",),
    ),
    D0Source(
        "relative",
        "relative MDE, unknown scale (simulated from ground truth)",
        "ground truth with simulated errors of a relative MDE of unknown scale and shift "
        "(relative preset)",
        "simulated",
        preset="relative",
    ),
    D0Source(
        "depth_anything",
        "Depth Anything V2",
        "Depth Anything V2 (metric indoor) on the image",
        "estimator",
    ),
    D0Source(
        "uploaded",
        "uploaded initial depth",
        "the user's own depth map, resized to the image, holes filled with its median",
        "file",
    ),
)

# Every D0 source by canonical name, in the order UIs list them.
D0_SOURCES: Mapping[str, D0Source] = MappingProxyType({s.name: s for s in _SOURCES})
# Older names, each to its canonical name.
ALIASES: Mapping[str, str] = MappingProxyType(
    {alias: s.name for s in _SOURCES for alias in s.aliases}
)
# The simulated sources: D0 from the ground truth alone.
SIMULATED_SOURCES: tuple[str, ...] = tuple(s.name for s in _SOURCES if s.kind == "simulated")
# What a scene and the pipeline alone can make (no user file, no optional model): the
# sources evaluate, train and refine accept.
SCENE_SOURCES: tuple[str, ...] = ("mde", *SIMULATED_SOURCES)


def d0_source(name: str, allowed: Iterable[str] | None = None) -> D0Source:
    """The source called ``name`` (a canonical name or an alias).

    Args:
        name: the name to look up.
        allowed: canonical names the caller can build (default: every source).

    Raises:
        ValueError: an unknown name, or one outside ``allowed``; the message lists the
            names that would do.
    """
    allowed = tuple(D0_SOURCES if allowed is None else allowed)
    canonical = ALIASES.get(name, name)
    if canonical not in allowed:
        raise ValueError(f"init source must be one of {allowed}, got {name!r}")
    return D0_SOURCES[canonical]


def with_aliases(names: Iterable[str]) -> tuple[str, ...]:
    """``names`` followed by their aliases: what a command line accepts for them."""
    names = tuple(names)
    return (*names, *(alias for name in names for alias in D0_SOURCES[name].aliases))
