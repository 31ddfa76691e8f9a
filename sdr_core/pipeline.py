"""SDRPipeline: MDE -> guidance network -> two MSPN layers, one-shot and step by step (Fig. 2).

Numpy at the edges (H x W x 3 uint8 image, H x W float32 metres), torch inside. The caller
holds all per-request state: the pipeline only reads its weights, so one instance can serve
many users at once.
"""

from __future__ import annotations

import dataclasses
import logging
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .checkpoints import CheckpointError, load_module
from .guidance import GuidanceConfig, GuidanceNet
from .mde import DepthEstimator
from .mde.bundled import BundledDepthEstimator, MonoDepthConfig, MonoDepthNet
from .mspn import MSPN, AttentionWindow, MSPNConfig, PropagationState, iteration_schedule
from .prefill import align_init_depth
from .sparse import SparsityWarning, apply_hole_mask, count_points, schedule_points
from .validation import as_depth_map, as_hole_mask, as_rgb_image, check_same_shape

__all__ = [
    "DEFAULT_CHECKPOINT_DIR",
    "PipelineConfig",
    "RefineResult",
    "RefineState",
    "SDRPipeline",
    "build_untrained_pipeline",
    "load_pipeline",
    "resolve_device",
]

logger = logging.getLogger(__name__)

DEFAULT_CHECKPOINT_DIR = Path(__file__).resolve().parent.parent / "checkpoints"


@dataclass(frozen=True)
class PipelineConfig:
    """Configs of the refinement networks (the MDE carries its own)."""

    guidance: GuidanceConfig = field(default_factory=GuidanceConfig)
    mspn: MSPNConfig = field(default_factory=MSPNConfig)

    def __post_init__(self) -> None:
        if self.guidance.out_dim != self.mspn.guidance_dim:
            raise ValueError(
                f"guidance.out_dim ({self.guidance.out_dim}) must equal mspn.guidance_dim "
                f"({self.mspn.guidance_dim})"
            )


@dataclass(frozen=True)
class RefineState:
    """One state of a refinement as the public API hands it out.

    Iteration 0 is a layer's starting state: for layer 1, the depth the MSPN starts from
    (D0, aligned to S when the model does so, with S imposed) and the measurement mask M0;
    for layer 2, the restart (layer 1's final depth, M0 again). Iterations count from 1.
    """

    layer: int  # 1 or 2
    iteration: int  # 0 = the layer's starting state, then counts from 1
    schedule: tuple[int, int]  # the plan: iterations of (layer 1, layer 2), eq. 13
    depth: np.ndarray  # H x W float32, metres
    mask: np.ndarray  # H x W float32, propagation mask in [0, 1]

    @property
    def iterations_in_layer(self) -> int:
        """Iterations this state's layer runs: N of eq. 13 for layer 1."""
        return self.schedule[self.layer - 1]

    @property
    def is_restart(self) -> bool:
        """Layer 2's starting state: the depth of layer 1's last state, the mask reset to M0."""
        return self.layer > 1 and self.iteration == 0


@dataclass(frozen=True)
class RefineResult:
    """Final output of :meth:`SDRPipeline.refine`."""

    depth: np.ndarray  # H x W float32 metres, refined
    init_depth: np.ndarray  # H x W float32 metres, D0
    mask: np.ndarray  # H x W float32, final propagation mask (M0: 1 at measured pixels, else 0,
    # if no iteration ran)
    schedule: tuple[int, int]  # iterations run in (layer 1, layer 2)
    n_points: int  # sparse measurements used (after the hole mask)


def resolve_device(device: torch.device | str | None = None) -> torch.device:
    """``None`` -> CUDA when available, else CPU; strings are checked."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was requested but CUDA is not available here")
    return device


class SDRPipeline:
    """Sparsity-adaptive depth refinement: ``refine`` and ``refine_steps`` (the contract)."""

    def __init__(
        self,
        mde: DepthEstimator,
        guidance: GuidanceNet,
        mspn: MSPN,
        device: torch.device | str = "cpu",
    ) -> None:
        self.device = torch.device(device)
        self.mde = mde
        self.guidance = guidance.to(self.device).eval()
        self.mspn = mspn.to(self.device).eval()
        self.config = PipelineConfig(guidance.config, mspn.config)

    def with_mspn_config(self, **changes: Any) -> SDRPipeline:
        """The same weights with some MSPN settings changed, as a new pipeline.

        For settings that do not change the weights' shapes: the iteration schedule
        (``kappa``, ``min_iterations``, ``second_layer_iterations``,
        ``second_layer_schedule``) or the attention ``backend``. The MDE and the guidance
        network are shared with this pipeline, not copied. Example: the paper's schedule,
        ``pipe.with_mspn_config(kappa=2.0, second_layer_schedule="fixed")``.

        Raises:
            ValueError: for an unknown or invalid setting, or one that changes the shape of
                the MSPN's weights.
        """
        shaped = {"guidance_dim", "embed_dim", "window"} & changes.keys()
        if shaped:
            raise ValueError(f"{sorted(shaped)} would change the MSPN weights' shapes")
        try:
            config = dataclasses.replace(self.config.mspn, **changes)
        except TypeError as error:  # an unknown field name
            raise ValueError(f"unknown MSPN setting: {error}") from None
        mspn = MSPN(config).to(self.device).eval()
        mspn.load_state_dict(self.mspn.state_dict())
        return SDRPipeline(self.mde, self.guidance, mspn, self.device)

    def with_networks_from(self, folder: str | Path) -> SDRPipeline:
        """This pipeline's MDE with the guidance and MSPN networks stored in ``folder``.

        For comparing trained refiners on the same D0, e.g. the mask ablation trained
        without the mask (``checkpoints/faithful/ablation_no_mask``). The folder needs
        ``guidance.safetensors`` and ``mspn.safetensors`` only; the MSPN keeps this
        pipeline's attention backend.
        """
        guidance, mspn = _load_refiner(Path(folder), self.device, self.config.mspn.backend)
        return SDRPipeline(self.mde, guidance, mspn, self.device)

    def estimate_depth(self, image: np.ndarray) -> np.ndarray:
        """D0 from the pipeline's MDE (H x W float32 metres)."""
        return self.mde.estimate(as_rgb_image(image))

    def schedule(self, height: int, width: int, n_points: int) -> tuple[int, int]:
        """(layer-1, layer-2) iterations for ``n_points`` measurements (eq. 13)."""
        return iteration_schedule(height, width, n_points, self.config.mspn)

    def _prepare(
        self,
        image: np.ndarray,
        sparse: np.ndarray,
        init_depth: np.ndarray | None,
        hole_mask: np.ndarray | None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Validate and convert inputs; returns (image, sparse, init_depth) as numpy."""
        image = as_rgb_image(image)
        sparse = as_depth_map(sparse, "sparse depth")
        check_same_shape(image, sparse, "image", "sparse depth")
        if hole_mask is not None:
            sparse = apply_hole_mask(sparse, as_hole_mask(hole_mask, image.shape, "hole_mask"))
        if init_depth is None:
            init_depth = self.estimate_depth(image)
        init_depth = as_depth_map(init_depth, "initial depth")
        check_same_shape(image, init_depth, "image", "initial depth")
        if not (init_depth > 0).all():
            raise ValueError("initial depth must be positive everywhere (D0 is dense)")
        window = self.config.mspn.window
        if min(image.shape[:2]) < window:
            raise ValueError(
                f"image of {image.shape[0]}x{image.shape[1]} pixels is smaller than the "
                f"{window}x{window} MSPN window"
            )
        return image, sparse, init_depth

    def _plan(
        self,
        image: np.ndarray,
        sparse: np.ndarray,
        init_depth: np.ndarray | None,
        hole_mask: np.ndarray | None,
        schedule: tuple[int, int] | None,
        n_lines: int | None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, tuple[int, int]]:
        """Validated inputs, the measurement count and the iteration schedule (eq. 13)."""
        image, sparse, init_depth = self._prepare(image, sparse, init_depth, hole_mask)
        n_points = count_points(sparse)
        if schedule is None:
            schedule = self.schedule(*sparse.shape, schedule_points(sparse, n_lines))
        return image, sparse, init_depth, n_points, schedule

    def _as_map(self, values: np.ndarray) -> torch.Tensor:
        """H x W array -> 1 x 1 x H x W float32 tensor on the pipeline's device."""
        array = np.ascontiguousarray(values, dtype=np.float32)
        return torch.from_numpy(array)[None, None].to(self.device)

    def _tensors(
        self, image: np.ndarray, sparse: np.ndarray, init_depth: np.ndarray
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        image_t = torch.from_numpy(image).to(self.device).permute(2, 0, 1)[None].float() / 255
        return image_t, self._as_map(sparse), self._as_map(init_depth)

    def _start(
        self, image: np.ndarray, sparse: np.ndarray, init_depth: np.ndarray
    ) -> tuple[torch.Tensor, torch.Tensor, Callable[[], torch.Tensor]]:
        """(S, D0 aligned as the model does, a function computing G) for validated inputs.

        The tensors are 1 x 1 x H x W; G (1 x C x H x W) is computed in inference mode.
        """
        image_t, sparse_t, init_t = self._tensors(image, sparse, init_depth)
        mspn = self.config.mspn
        init_t = align_init_depth(
            init_t, sparse_t, mspn.init_alignment, mspn.alignment_prior_points
        )

        def guidance() -> torch.Tensor:
            with torch.inference_mode():
                return self.guidance(image_t, sparse_t, init_t)

        return sparse_t, init_t, guidance

    def guidance_feature(
        self, image: np.ndarray, sparse: np.ndarray, init_depth: np.ndarray | None = None
    ) -> torch.Tensor:
        """The guidance feature G of eq. 3 for these inputs: 1 x C x H x W (inference).

        Arguments as in :meth:`refine_steps`, ``sparse`` with any hole already applied.
        Keep G to pass to :meth:`window_weights` for many pixels of one run.
        """
        image, sparse, init_depth = self._prepare(image, sparse, init_depth, None)
        return self._start(image, sparse, init_depth)[2]()

    def _given_guidance(
        self,
        given: torch.Tensor | Callable[[], torch.Tensor] | None,
        shape: tuple[int, ...],
        compute: Callable[[], torch.Tensor],
    ) -> Callable[[], torch.Tensor]:
        """G for the layers (computed on first use): ``given`` once checked, else ``compute``."""
        if given is None:
            return compute
        expected = (1, self.config.guidance.out_dim, *shape)

        def checked() -> torch.Tensor:
            guidance = given() if callable(given) else given
            if not isinstance(guidance, torch.Tensor) or tuple(guidance.shape) != expected:
                got = tuple(guidance.shape) if isinstance(guidance, torch.Tensor) else guidance
                raise ValueError(f"guidance must be a tensor of shape {expected}, got {got}")
            return guidance.to(self.device, torch.float32)

        if not callable(given):
            checked()  # a wrong G is refused before anything is yielded
        return checked

    def refine_steps(
        self,
        image: np.ndarray,
        sparse: np.ndarray,
        init_depth: np.ndarray | None = None,
        hole_mask: np.ndarray | None = None,
        use_mask: bool = True,
        schedule: tuple[int, int] | None = None,
        n_lines: int | None = None,
        guidance: torch.Tensor | Callable[[], torch.Tensor] | None = None,
    ) -> Iterator[RefineState]:
        """Yield the depth and mask after every MSPN iteration of both layers.

        Args:
            image: H x W x 3 uint8 RGB.
            sparse: H x W float32 metres; 0 where there is no measurement (S).
            init_depth: optional H x W metres replacing the MDE ("bring your own MDE").
            hole_mask: optional H x W bool; measurements inside are dropped.
            use_mask: False runs the no-mask ablation (mask fixed to 1).
            schedule: override the (layer 1, layer 2) iteration counts of eq. 13.
            n_lines: the measurements are this many LiDAR lines: eq. 13 then uses the mean
                number of measurements per line (section 4.3) instead of their total.
            guidance: G of eq. 3 already computed by :meth:`guidance_feature` for these
                same inputs (image, S after the hole, D0), or a function returning it
                (called after the first state is out), so the guidance network is skipped;
                computed here when None. G of other inputs gives other results: the caller
                keeps G with the inputs it was computed for.

        Yields:
            :class:`RefineState`: layer 1's starting state (iteration 0), each of its
            iterations, layer 2's starting state (the restart from M0) and each of its
            iterations. With no measurement nothing is yielded and a
            :class:`~sdr_core.sparse.SparsityWarning` says so.
        """
        image, sparse, init_depth, n_points, schedule = self._plan(
            image, sparse, init_depth, hole_mask, schedule, n_lines
        )
        if n_points == 0:
            warnings.warn(
                "no sparse depth measurement: nothing to propagate, the initial depth is "
                "returned unchanged",
                SparsityWarning,
                stacklevel=2,
            )
            return
        # G is computed after the first state (D0 with S, M0) is out, so a viewer shows it at
        # once. Inference mode is entered per step, never held across a yield: a consumer
        # such as a web server may resume this generator on another thread, where the mode
        # (a thread-local setting) would not be active.
        sparse_t, init_t, compute_guidance = self._start(image, sparse, init_depth)
        with torch.inference_mode():
            states = self.mspn.refine_steps(
                init_t, sparse_t, self._given_guidance(guidance, sparse.shape, compute_guidance),
                schedule, use_mask,
            )  # fmt: skip
        while True:
            with torch.inference_mode():
                state = next(states, None)
                if state is None:
                    return
                public = RefineState(
                    layer=state.layer,
                    iteration=state.iteration,
                    schedule=schedule,
                    # copies: on CPU .numpy() would share memory with the live state
                    depth=state.depth[0, 0].float().cpu().numpy().copy(),
                    mask=state.mask[0, 0].float().cpu().numpy().copy(),
                )
            yield public

    def window_weights(
        self,
        image: np.ndarray,
        sparse: np.ndarray,
        init_depth: np.ndarray | None,
        state: RefineState,
        row: int,
        col: int,
        *,
        hole_mask: np.ndarray | None = None,
        use_mask: bool = True,
        guidance: torch.Tensor | None = None,
    ) -> AttentionWindow:
        """One pixel's attention window in the iteration that starts from ``state``.

        The iteration that produced a state of :meth:`refine_steps` starts from the state
        before it (layer 2's first iteration from layer 2's starting state, mask M0). The
        attention is the reference backend's at that pixel, the update the MSPN's
        (:meth:`sdr_core.mspn.MSPN.window_weights`).

        Args:
            image: H x W x 3 uint8 RGB, as given to :meth:`refine_steps`.
            sparse: H x W float32 metres (S), as given to :meth:`refine_steps`.
            init_depth: the D0 given to :meth:`refine_steps` (None: the MDE's); unused when
                ``guidance`` is given.
            state: a state of that run, not the last of its layer.
            row: image row of the query pixel.
            col: image column of the query pixel.
            hole_mask: as given to :meth:`refine_steps`.
            use_mask: as given to :meth:`refine_steps` (False: the no-mask ablation).
            guidance: G from :meth:`guidance_feature`, to skip recomputing it per pixel.

        Returns:
            The :class:`~sdr_core.mspn.AttentionWindow` of pixel (row, col).

        Raises:
            ValueError: bad inputs, a pixel outside the image, or a state that starts no
                iteration of its layer.
        """
        if not 0 <= state.iteration < state.iterations_in_layer:
            raise ValueError(
                f"layer {state.layer} runs {state.iterations_in_layer} iterations: no "
                f"iteration of it starts from its state {state.iteration}"
            )
        image = as_rgb_image(image)
        sparse = as_depth_map(sparse, "sparse depth")
        if hole_mask is not None:
            sparse = apply_hole_mask(sparse, as_hole_mask(hole_mask, image.shape, "hole_mask"))
        for name, values in (("state depth", state.depth), ("state mask", state.mask)):
            check_same_shape(sparse, np.asarray(values), "sparse depth", name)
        image, sparse, init_depth = self._prepare(image, sparse, init_depth, None)
        sparse_t, init_t, compute_guidance = self._start(image, sparse, init_depth)
        if guidance is None:
            guidance = compute_guidance()
        start = PropagationState(
            state.layer, state.iteration, self._as_map(state.depth), self._as_map(state.mask)
        )
        with torch.inference_mode():
            return self.mspn.window_weights(guidance, sparse_t, start, row, col, use_mask, init_t)

    def refine(
        self,
        image: np.ndarray,
        sparse: np.ndarray,
        init_depth: np.ndarray | None = None,
        hole_mask: np.ndarray | None = None,
        use_mask: bool = True,
        schedule: tuple[int, int] | None = None,
        n_lines: int | None = None,
    ) -> RefineResult:
        """Run every iteration and return the final depth (same code path as the steps)."""
        image, sparse, init_depth, n_points, schedule = self._plan(
            image, sparse, init_depth, hole_mask, schedule, n_lines
        )
        depth, mask = np.where(sparse > 0, sparse, init_depth), (sparse > 0).astype(np.float32)
        with warnings.catch_warnings():
            if n_points == 0:  # refine_steps warns; re-issue it from here for the caller
                warnings.simplefilter("ignore", SparsityWarning)
            for state in self.refine_steps(image, sparse, init_depth, None, use_mask, schedule):
                depth, mask = state.depth, state.mask
        if n_points == 0:
            warnings.warn(
                "no sparse depth measurement: the initial depth is returned unchanged",
                SparsityWarning,
                stacklevel=2,
            )
        return RefineResult(depth.astype(np.float32), init_depth, mask, schedule, n_points)


def build_untrained_pipeline(
    config: PipelineConfig | None = None,
    mde_config: MonoDepthConfig | None = None,
    device: torch.device | str | None = None,
    seed: int = 0,
) -> SDRPipeline:
    """A randomly initialised pipeline (tests, training start). Its outputs mean nothing."""
    config = config or PipelineConfig()
    torch.manual_seed(seed)
    device = resolve_device(device)
    mde = BundledDepthEstimator(MonoDepthNet(mde_config), device)
    return SDRPipeline(mde, GuidanceNet(config.guidance), MSPN(config.mspn), device)


def _load_refiner(
    folder: Path, device: torch.device, backend: str | None
) -> tuple[GuidanceNet, MSPN]:
    """The guidance network and MSPN stored in ``folder``; ``backend`` overrides the file's."""
    guidance = load_module(
        folder / "guidance.safetensors", "guidance", GuidanceConfig, GuidanceNet, device
    )

    def build_mspn(config: MSPNConfig) -> MSPN:
        if backend is not None:
            config = dataclasses.replace(config, backend=backend)
        return MSPN(config)

    mspn = load_module(folder / "mspn.safetensors", "mspn", MSPNConfig, build_mspn, device)
    return guidance, mspn


def load_pipeline(
    device: torch.device | str | None = None,
    checkpoint_dir: str | Path | None = None,
    backend: str | None = None,
    mde_checkpoint: str | Path | None = None,
) -> SDRPipeline:
    """Load the bundled checkpoints (``mde``, ``guidance``, ``mspn`` .safetensors).

    Args:
        device: ``None`` picks CUDA when available, else CPU.
        checkpoint_dir: folder holding the three files; default ``checkpoints/`` of the repo.
        backend: override the MSPN attention backend stored in the checkpoint ("auto", ...).
        mde_checkpoint: the MDE's file, default ``<checkpoint_dir>/mde.safetensors``. A
            refinement training run (``train --stage sdr``) writes only guidance + MSPN, so
            point this at the MDE it was trained with to load the run's folder as is.

    Returns:
        A ready :class:`SDRPipeline` in eval mode.
    """
    device = resolve_device(device)
    folder = Path(checkpoint_dir) if checkpoint_dir is not None else DEFAULT_CHECKPOINT_DIR
    mde_path = Path(mde_checkpoint) if mde_checkpoint is not None else folder / "mde.safetensors"
    refiner_only = not mde_path.is_file() and (folder / "mspn.safetensors").is_file()
    if mde_checkpoint is None and refiner_only:
        raise CheckpointError(
            f"{folder} holds guidance + MSPN but no mde.safetensors (a 'train --stage sdr' "
            "folder?): name the MDE with mde_checkpoint (CLI: --mde-checkpoint), e.g. "
            "checkpoints/mde.safetensors"
        )
    mde_net = load_module(mde_path, "mde", MonoDepthConfig, MonoDepthNet, device)
    guidance, mspn = _load_refiner(folder, device, backend)
    logger.info("loaded pipeline from %s on %s", folder, device)
    return SDRPipeline(BundledDepthEstimator(mde_net, device), guidance, mspn, device)
