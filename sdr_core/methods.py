"""The methods compared with MSPN, in one table for the evaluation and the studio.

:data:`METHODS` maps a method's key to its :class:`Method`: the label a table shows and how
it computes its H x W prediction (metres) from one :class:`MethodInputs` (the image, the
sparse depth S, the initial depth D0 that every method shares, and the point count s that
sets the iteration schedule of eq. 13):

- ``"mspn"``: both MSPN layers; ``"mspn_layer1"``: the first layer only (Fig. 10a);
- ``"mspn_no_mask"``: the same networks with the mask fixed to 1 (Fig. 10d), MSPN's schedule;
- ``"mspn_no_mask_trained"``: networks trained without the mask, MSPN's schedule;
- ``"mspn_faithful"``: networks trained in the paper's configuration, their own schedule;
- baselines without a network (``baseline=True``): ``"mde"`` (D0 alone), ``"ls_align"`` (D0
  with one least-squares scale and shift), ``"ls_interp"`` (that plus inverse-distance-weighted
  residuals), see :mod:`sdr_core.baselines`; and the training-free propagation methods of
  :mod:`sdr_core.classical`, which also read the image: ``"edge_aware"`` (the log-ratio
  S / D0 spread along the image's edges, Levin et al. 2004) and ``"ls_interp_bilateral"``
  (``"ls_interp"`` followed by one joint bilateral pass guided by the image).

:data:`BASELINES` lists the baselines in table order; :data:`CLASSICAL` those that use the
sparse depth (every baseline but ``"mde"``): the best of them, level by level, is the
classical method MSPN has to beat (:func:`sdr_core.evaluate.best_classical`).

:func:`predict` runs several at once and shares the work: ``"mspn"`` and ``"mspn_layer1"``
come from one run, since layer 2 restarts from M0 and never feeds back into layer 1.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING

import numpy as np

from sdr_core import baselines, classical

if TYPE_CHECKING:
    from sdr_core.pipeline import SDRPipeline

__all__ = ["BASELINES", "CLASSICAL", "METHODS", "Method", "MethodInputs", "predict"]


@dataclass(frozen=True)
class MethodInputs:
    """One sparse input that every method refines."""

    image: np.ndarray  # H x W x 3 uint8 RGB
    sparse: np.ndarray  # H x W float32 metres, 0 = no measurement (S)
    init_depth: np.ndarray  # H x W float32 metres, the D0 every method starts from
    # s of eq. 13: the measurement count, the mean per line for LiDAR lines (section 4.3),
    # or what a hole's size calls for (see sdr_core.evaluate)
    schedule_points: int


@dataclass
class _Request:
    """One call of :func:`predict`: the pipelines, the inputs and the shared MSPN run."""

    pipe: SDRPipeline
    others: Mapping[str, SDRPipeline]
    inputs: MethodInputs
    run_layer2: bool  # whether the shared run needs layer 2 ("mspn" was asked for)
    _mspn: tuple[np.ndarray, np.ndarray] | None = field(default=None, init=False)

    def schedule(self, pipe: SDRPipeline) -> tuple[int, int]:
        """``pipe``'s (layer 1, layer 2) iterations for these inputs (eq. 13)."""
        return pipe.schedule(*self.inputs.sparse.shape, self.inputs.schedule_points)

    def refine(self, pipe: SDRPipeline, use_mask: bool, schedule: tuple[int, int]) -> np.ndarray:
        """``pipe``'s refined depth of the inputs."""
        inputs = self.inputs
        return pipe.refine(
            inputs.image, inputs.sparse, init_depth=inputs.init_depth, use_mask=use_mask,
            schedule=schedule,
        ).depth  # fmt: skip

    def other(self, method: str) -> SDRPipeline:
        """The separately trained pipeline of ``method``."""
        if method not in self.others:
            raise ValueError(f"{method} needs its trained networks")
        return self.others[method]

    def mspn(self) -> tuple[np.ndarray, np.ndarray]:
        """(final depth, layer 1's final depth) of one MSPN run, made on first use."""
        if self._mspn is None:
            inputs = self.inputs
            first, second = self.schedule(self.pipe)
            depth = layer1 = np.where(inputs.sparse > 0, inputs.sparse, inputs.init_depth)
            depth = layer1 = depth.astype(np.float32)
            for state in self.pipe.refine_steps(
                inputs.image, inputs.sparse, init_depth=inputs.init_depth,
                schedule=(first, second if self.run_layer2 else 0),
            ):  # fmt: skip
                depth = state.depth
                if state.layer == 1:
                    layer1 = state.depth
            self._mspn = depth, layer1
        return self._mspn


@dataclass(frozen=True)
class Method:
    """One row of the comparison tables."""

    label: str  # the row's name in tables and plots
    predict: Callable[[_Request], np.ndarray]  # H x W float32 metres
    baseline: bool = False  # a classical method without a network


def _no_mask(request: _Request) -> np.ndarray:
    return request.refine(request.pipe, False, request.schedule(request.pipe))


def _no_mask_trained(request: _Request) -> np.ndarray:
    # the main model's schedule, as in Fig. 10d
    other = request.other("mspn_no_mask_trained")
    return request.refine(other, False, request.schedule(request.pipe))


def _faithful(request: _Request) -> np.ndarray:
    other = request.other("mspn_faithful")  # its own configuration, schedule included
    return request.refine(other, True, request.schedule(other))


def _fit(
    baseline: Callable[[np.ndarray, np.ndarray], np.ndarray],
) -> Callable[[_Request], np.ndarray]:
    """A baseline of :mod:`sdr_core.baselines`, fitted to the inputs' D0 and S."""
    return lambda request: baseline(request.inputs.init_depth, request.inputs.sparse)


def _idw_residuals(init_depth: np.ndarray, sparse: np.ndarray) -> np.ndarray:
    return baselines.residual_interpolation(init_depth, sparse, "idw")


def _edge_aware(request: _Request) -> np.ndarray:
    inputs = request.inputs
    return classical.edge_aware_log_ratio(inputs.image, inputs.init_depth, inputs.sparse)


def _idw_bilateral(request: _Request) -> np.ndarray:
    inputs = request.inputs
    interpolated = _idw_residuals(inputs.init_depth, inputs.sparse)
    return classical.joint_bilateral_refine(inputs.image, interpolated, inputs.sparse)


METHODS: Mapping[str, Method] = MappingProxyType(
    {
        "mspn": Method("MSPN", lambda request: request.mspn()[0]),
        "mspn_layer1": Method("MSPN, layer 1 only", lambda request: request.mspn()[1]),
        "mspn_no_mask": Method("MSPN w/o mask", _no_mask),
        "mspn_no_mask_trained": Method("MSPN w/o mask, retrained", _no_mask_trained),
        "mspn_faithful": Method("MSPN, paper's configuration", _faithful),
        "mde": Method("MDE only (D0)", _fit(baselines.mde_only), baseline=True),
        "ls_align": Method(
            "LS scale + shift", _fit(baselines.least_squares_scale_shift), baseline=True
        ),
        "ls_interp": Method("LS + IDW residuals", _fit(_idw_residuals), baseline=True),
        "edge_aware": Method("Edge-aware log-ratio (Levin 2004)", _edge_aware, baseline=True),
        "ls_interp_bilateral": Method("LS + IDW + joint bilateral", _idw_bilateral, baseline=True),
    }
)
BASELINES = tuple(name for name, method in METHODS.items() if method.baseline)
# The baselines that use the measurements: MSPN is compared with the best of them per level.
CLASSICAL = tuple(name for name in BASELINES if name != "mde")


def predict(
    methods: Sequence[str],
    pipe: SDRPipeline,
    inputs: MethodInputs,
    others: Mapping[str, SDRPipeline] | None = None,
) -> dict[str, np.ndarray]:
    """Every requested method's H x W prediction (float32 metres) from the same D0 and S.

    Args:
        methods: keys of :data:`METHODS`, in the order of the result.
        pipe: the pipeline of MSPN and its inference-time ablations.
        inputs: image, S, D0 and the eq. 13 point count.
        others: the separately trained pipelines by method key
            (``"mspn_no_mask_trained"``, ``"mspn_faithful"``), when those are asked for.

    Raises:
        ValueError: an unknown method, or a trained variant without its pipeline.
    """
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown methods {unknown}; choose from {list(METHODS)}")
    request = _Request(pipe, others or {}, inputs, run_layer2="mspn" in methods)
    return {method: METHODS[method].predict(request) for method in methods}
