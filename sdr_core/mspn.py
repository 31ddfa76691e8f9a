"""Masked Spatial Propagation Network (MSPN), eqs. 4-13 of the paper.

Jun, Lee and Kim, "Masked Spatial Propagation Network for Sparsity-Adaptive Depth
Refinement", CVPR 2024.

Two MSPN layers refine an initial depth D0 in series. Each iteration (eq. 4) re-imposes the
sparse measurements (eq. 6), attends from every pixel to its p x p window with keys masked by
the propagation mask (eqs. 7-8), replaces the depth where the mask trusts the result (eqs.
9-10) and grows the mask with the same attention weights (eq. 11). The first layer runs N
iterations chosen from the sparsity (eqs. 12-13), the second restarts from the measurement
mask M0 and runs 6.

Facts taken from the authors' public code rather than the paper:

- LayerNorm is applied to the guidance G only; the depth channel is concatenated raw and a
  single 1x1 convolution produces q and k (embed dim 64): q and k are affine in the depth,
  which the ``fast`` and ``native`` attention backends exploit.
- One attention head, no 1/sqrt(d) scaling of the logits.
- NATTEN 0.14 border rule: windows shift inward at the image border and the relative
  position bias is indexed by the true query-key offset.
- After every iteration measured pixels are reset to S and keep their mask value.
- N = max(6, floor(kappa * nu_s / (p // 2)) + 1), the code form of eq. 13.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.utils.checkpoint
from torch import nn

from . import baselines
from .attention import (
    AffineQK,
    AttendFn,
    Backend,
    WindowAttention,
    attend_windows_reference,
    prepare_attention,
    window_starts,
)
from .prefill import ALIGNMENTS, InitAlignment

__all__ = [
    "DOMAINS",
    "MSPN",
    "AttentionWindow",
    "MSPNConfig",
    "MSPNLayer",
    "PropagationState",
    "iteration_count",
    "iteration_schedule",
]


# MSPNConfig.domain -> what (layer 1, layer 2) propagate.
DOMAINS: dict[str, tuple[str, str]] = {
    "depth": ("depth", "depth"),
    "ratio": ("ratio", "ratio"),
    "ratio-depth": ("ratio", "depth"),
}
MIN_INIT_DEPTH = 1e-3  # metres; D0 is clamped here before log(S / D0) in the ratio domain


@dataclass(frozen=True)
class MSPNConfig:
    """Hyper-parameters of the two-layer MSPN (paper defaults)."""

    guidance_dim: int = 64  # C, channels of the guidance feature G
    embed_dim: int = 64  # L, channels of q and k (one head)
    window: int = 13  # p, odd window size of the pixel-to-window attention
    kappa: float = 2.0  # margin on the iteration count, eq. 13
    min_iterations: int = 6  # floor of N for the first layer
    second_layer_iterations: int = 6  # iteration count of the second layer (its minimum
    # under "eq13")
    # "fixed": the paper's second layer, always second_layer_iterations. "eq13": the second
    # layer runs as many iterations as the first (eq. 13), never fewer than
    # second_layer_iterations; a project choice, see iteration_schedule.
    second_layer_schedule: Literal["fixed", "eq13"] = "fixed"
    backend: Backend = "auto"  # attention backend, see sdr_core.attention
    # How D0 is aligned to S before the guidance network and MSPN see it (sdr_core.prefill):
    # "none" is the paper; "least_squares" / "residual_idw" are departures. A property of
    # the trained weights, so it lives in the MSPN checkpoint's config.
    init_alignment: InitAlignment = "none"
    # k of init_alignment="shrunk_median_scale": n measurements set n / (n + k) of the log
    # scale (sdr_core.baselines.shrunk_median_scale); also a property of the weights.
    alignment_prior_points: float = baselines.SHRINK_PRIOR_POINTS
    # What the layers propagate (a departure when not "depth"; a property of the trained
    # weights, stored in the checkpoint): "depth" is the paper (metres); "ratio" makes both
    # layers propagate rho = log(D / D0), starting from 0 with log(S / D0) imposed at the
    # measurements, and output D0 * exp(rho); "ratio-depth" runs layer 1 in the ratio domain
    # and layer 2 in depth. Eqs. 6-11 are unchanged; see MSPN.refine_steps.
    domain: Literal["depth", "ratio", "ratio-depth"] = "depth"

    def __post_init__(self) -> None:
        if self.window < 3 or self.window % 2 == 0:
            raise ValueError(f"window must be an odd integer >= 3, got {self.window}")
        for name in ("guidance_dim", "embed_dim", "min_iterations", "second_layer_iterations"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.kappa <= 0:
            raise ValueError(f"kappa must be > 0, got {self.kappa}")
        if self.init_alignment not in ALIGNMENTS:
            raise ValueError(
                f"init_alignment must be one of {ALIGNMENTS}, got {self.init_alignment!r}"
            )
        if not math.isfinite(self.alignment_prior_points) or self.alignment_prior_points < 0:
            raise ValueError(
                f"alignment_prior_points must be finite and >= 0, got {self.alignment_prior_points}"
            )
        if self.domain not in DOMAINS:
            raise ValueError(f"domain must be one of {sorted(DOMAINS)}, got {self.domain!r}")
        if self.second_layer_schedule not in ("fixed", "eq13"):
            raise ValueError(
                f"second_layer_schedule must be 'fixed' or 'eq13', "
                f"got {self.second_layer_schedule!r}"
            )


def iteration_count(
    h: int, w: int, s: int, window: int = 13, kappa: float = 2.0, minimum: int = 6
) -> int:
    """Sparsity-adaptive iteration count of the first MSPN layer, eqs. 12-13.

    ``nu_s = sqrt(H W / s) - 1`` is the spacing of ``s`` uniformly spread points (eq. 12); a
    p x p window moves the mask about ``p // 2`` pixels per iteration, so
    ``N = max(minimum, floor(kappa * nu_s / (p // 2)) + 1)`` (eq. 13 in the authors' form).
    Worked values at 228 x 304: s = 1 -> 88, 10 -> 28, 100 -> 9, 1000 -> 6.

    Args:
        h: image height in pixels.
        w: image width in pixels.
        s: number of sparse depth measurements; ``0`` returns 0 (nothing to propagate).
        window: odd window size p.
        kappa: margin multiplier.
        minimum: lower bound on N when s > 0.

    Returns:
        N, the number of first-layer iterations.
    """
    if h < 1 or w < 1:
        raise ValueError(f"image size must be positive, got {h}x{w}")
    if s < 0:
        raise ValueError(f"number of sparse points must be >= 0, got {s}")
    if window < 3 or window % 2 == 0:
        raise ValueError(f"window must be an odd integer >= 3, got {window}")
    if s == 0:
        return 0
    spacing = max(math.sqrt(h * w / s) - 1.0, 0.0)  # nu_s, eq. 12
    return max(minimum, math.floor(kappa * spacing / (window // 2)) + 1)  # eq. 13


def iteration_schedule(h: int, w: int, s: int, config: MSPNConfig) -> tuple[int, int]:
    """Iterations of (layer 1, layer 2) for ``s`` points; (0, 0) when ``s == 0``.

    Layer 1 runs N of eq. 13. Layer 2 runs ``config.second_layer_iterations`` (6 in the
    paper) under the ``"fixed"`` schedule, or ``max(N, second_layer_iterations)`` under
    ``"eq13"``: with few measurements the second layer then has as many iterations as the
    first to refine the whole image, with many it is the paper's 6 (N = 6 from about 1000
    points at 228 x 304). The shipped model uses ``"eq13"``, chosen on a validation split
    (``scripts/select_schedule.py``, checkpoints/README.md).
    """
    first = iteration_count(h, w, s, config.window, config.kappa, config.min_iterations)
    if not first:
        return (0, 0)
    second = config.second_layer_iterations
    if config.second_layer_schedule == "eq13":
        second = max(first, second)
    return (first, second)


@dataclass(frozen=True)
class PropagationState:
    """A layer's starting state or the state after one of its iterations (tensors).

    Iteration 0 is where a layer starts: for layer 1, D0 with S imposed and the measurement
    mask M0 (eqs. 5-6); for layer 2, layer 1's final depth and M0 again (the restart of
    Fig. 2). Iteration n >= 1 is (D_n, M_n) after n iterations. The pipeline converts these
    to numpy.
    """

    layer: int  # 1 or 2
    iteration: int  # 0 = the layer's starting state, then counts from 1
    depth: torch.Tensor  # B x 1 x H x W, metres (D_n)
    mask: torch.Tensor  # B x 1 x H x W, propagation mask in [0, 1] (M_n)


@dataclass(frozen=True)
class AttentionWindow:
    """One MSPN iteration (eqs. 6-11) evaluated at one query pixel: the teaching view.

    Host values (numpy, floats), for display. Window arrays are p x p, row-major over image
    rows ``top .. top + p - 1`` and columns ``left .. left + p - 1`` (the NATTEN border rule
    shifts the window inward at the border, so the query is not always at the centre).
    """

    y: int  # query row
    x: int  # query column
    layer: int  # 1 or 2
    iteration: int  # the iteration evaluated, counted from 1 within the layer
    top: int  # image row of the window's first row
    left: int  # image column of the window's first column
    weights: np.ndarray  # p x p float32, softmax attention (eq. 8); sums to 1
    mask: np.ndarray  # p x p float32, M_n of the keys (eq. 7), in [0, 1]
    depth: np.ndarray  # p x p float32, metres, D~_n of the keys (eq. 6)
    depth_before: float  # metres, D~_n at the query
    mask_before: float  # M_n at the query
    refined: float  # metres, R_n at the query (eq. 9)
    depth_after: float  # metres, D_{n+1} at the query (eq. 10; S if measured)
    mask_after: float  # M_{n+1} at the query (eq. 11; unchanged if measured)
    measured: bool  # the query holds a sparse measurement
    # what the layer propagates: "depth" (metres, the paper) or "ratio" (rho = log(D / D0);
    # the depths above are then D0 * exp(rho), R_n is D0 * exp(weighted rho) at the query)
    domain: str = "depth"

    @property
    def window(self) -> int:
        """Window size p."""
        return int(self.weights.shape[0])


class MSPNLayer(nn.Module):
    """One MSPN layer: the iteration Phi of eq. 4, written out as eqs. 6-11.

    Parameters: a LayerNorm over the guidance channels, one 1x1 convolution from
    ``[depth, LN(G)]`` (1 + C channels) to ``[q, k]`` (2 L channels), and a learned
    (2p-1) x (2p-1) relative position bias b (eq. 8).
    """

    def __init__(self, config: MSPNConfig) -> None:
        super().__init__()
        self.config = config
        self.norm = nn.LayerNorm(config.guidance_dim)
        self.to_qk = nn.Conv2d(1 + config.guidance_dim, 2 * config.embed_dim, kernel_size=1)
        span = 2 * config.window - 1
        self.rel_pos_bias = nn.Parameter(torch.zeros(span, span))
        nn.init.trunc_normal_(self.rel_pos_bias, std=0.02)

    @torch.no_grad()
    def init_as_refiner(self, key_logit: float = 14.0, self_bias: float = 10.0) -> None:
        """Re-initialise so the layer starts as a flooding, near-identity refiner (training).

        A training starting point, not a change to the equations: q and k start constant
        (conv bias only, ``q . k = key_logit`` for any pixel pair; guidance weights shrunk
        10x, depth weights 0) and the relative position bias ``b`` is ``self_bias`` at
        offset 0 and 0 elsewhere. Then a reached key's logit (``key_logit``) outweighs an
        unreached one's (``b``, its key being masked), so the mask floods outward (eq. 11);
        and once a pixel is reached its own logit (``key_logit + self_bias``) outweighs its
        168 neighbours', so R_n is within about 1 % of the pixel's own depth (eq. 9). The
        refinement thus starts as the identity on a good pre-filled D0 instead of a random
        blur, from which training learns where neighbours should take over.
        """
        embed = self.config.embed_dim
        self.to_qk.weight.mul_(0.1)
        self.to_qk.weight[:, 0] = 0.0  # channel 0 is the depth
        self.to_qk.bias.fill_(math.sqrt(key_logit / embed))
        self.rel_pos_bias.zero_()
        centre = self.config.window - 1
        self.rel_pos_bias[centre, centre] = self_bias

    def affine_qk(self, guidance: torch.Tensor) -> AffineQK:
        """Split f_Q and f_K of eq. 7 into depth-free bases and depth weights.

        Args:
            guidance: B x C x H x W guidance feature G.

        Returns:
            The :class:`AffineQK` for this layer; channel 0 of the 1x1 conv input is depth.
        """
        if guidance.dim() != 4 or guidance.shape[1] != self.config.guidance_dim:
            raise ValueError(
                f"guidance must be B x {self.config.guidance_dim} x H x W, "
                f"got {tuple(guidance.shape)}"
            )
        b, c, h, w = guidance.shape
        normed = self.norm(guidance.permute(0, 2, 3, 1))  # LN over C: B x H x W x C
        weight = self.to_qk.weight[:, :, 0, 0]  # 2L x (1 + C)
        # The 1x1 conv as one matrix product whose result is B x 2L x HW in channel-first
        # order: q and k come out as plain (B = 1: contiguous) views, so the attention
        # backends read them without copying (a conv on the channels-last LN output would
        # give channels-last bases, copied again by every backend).
        bias = self.to_qk.bias.view(1, -1, 1)
        flat = normed.reshape(b, h * w, c).transpose(1, 2)  # B x C x HW, no copy
        bases = torch.baddbmm(bias, weight[:, 1:].expand(b, -1, -1), flat)
        query_base, key_base = bases.view(b, -1, h, w).chunk(2, dim=1)  # each B x L x H x W
        query_depth, key_depth = weight[:, 0].chunk(2)  # each L
        return AffineQK(query_base, key_base, query_depth, key_depth)

    def prepare(self, guidance: torch.Tensor) -> AttendFn:
        """Precompute the guidance-only attention terms of this layer (once per image)."""
        return prepare_attention(self.affine_qk(guidance), self.config.window, self.config.backend)

    def step(
        self,
        attend: AttendFn,
        depth: torch.Tensor,
        mask: torch.Tensor,
        sparse: torch.Tensor,
        measured: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One iteration (D_n, M_n) -> (D_{n+1}, M_{n+1}), eqs. 6-11.

        Args:
            attend: this layer's prepared attention (see :meth:`prepare`).
            depth: B x 1 x H x W, metres (D_n).
            mask: B x 1 x H x W in [0, 1] (M_n).
            sparse: B x 1 x H x W, metres; 0 where unmeasured (S).
            measured: B x 1 x H x W bool, ``sparse > 0`` (M0 of eq. 5 as a boolean).

        Returns:
            Fresh tensors (D_{n+1}, M_{n+1}); the inputs are not modified.
        """
        depth_tilde = torch.where(measured, sparse, depth)  # eq. 6
        refined, grown_mask = attend(depth_tilde, mask, self.rel_pos_bias)  # eqs. 7-9, 11
        return _update(depth_tilde, mask, refined, grown_mask, sparse, measured)

    def window_at(
        self,
        guidance: torch.Tensor,
        sparse: torch.Tensor,
        measured: torch.Tensor,
        depth: torch.Tensor,
        mask: torch.Tensor,
        row: int,
        col: int,
    ) -> tuple[WindowAttention, torch.Tensor, torch.Tensor, torch.Tensor]:
        """One iteration (eqs. 6-11) from (D_n, M_n), evaluated at the query pixel (row, col).

        The attention is the reference backend's (:func:`attend_windows_reference`) for that
        one pixel; the update is :meth:`step`'s.

        Args:
            guidance: 1 x C x H x W guidance feature G.
            sparse: 1 x 1 x H x W, S in the layer's domain (metres, or log(S / D0)).
            measured: 1 x 1 x H x W bool, M0 of eq. 5.
            depth: 1 x 1 x H x W, D_n in the layer's domain.
            mask: 1 x 1 x H x W in [0, 1] (M_n).
            row: image row of the query pixel.
            col: image column of the query pixel.

        Returns:
            (attention over the pixel's window, D~_n, D_{n+1} and M_{n+1} at the pixel), the
            last three 1 x 1 x 1 x 1, all in the layer's domain.
        """
        depth_tilde = torch.where(measured, sparse, depth)  # eq. 6
        rows, cols = (torch.tensor([i], device=depth.device) for i in (row, col))
        attended = attend_windows_reference(
            self.affine_qk(guidance), depth_tilde, mask, self.rel_pos_bias, self.config.window,
            rows, cols,
        )  # fmt: skip
        at = (slice(None), slice(None), slice(row, row + 1), slice(col, col + 1))
        next_depth, next_mask = _update(
            depth_tilde[at], mask[at], attended.refined, attended.next_mask, sparse[at],
            measured[at],
        )  # fmt: skip
        return attended, depth_tilde[at], next_depth, next_mask


class DomainMap:
    """Maps between metres and what an MSPN layer propagates (``MSPNConfig.domain``).

    In the ``"depth"`` domain a layer propagates metres (the paper). In the ``"ratio"``
    domain it propagates rho = log(D / D0): D0 maps to 0, a measurement to log(S / D0), and
    the layer's output maps back to D0 * exp(rho). Eqs. 6-11 run unchanged on rho, so a pixel
    the mask has not reached keeps D0 (rho = 0) and a reached one takes a convex mix of its
    window's corrections rather than of its window's depths: D0's shape survives behind the
    front.
    """

    def __init__(
        self, init_depth: torch.Tensor, sparse: torch.Tensor, measured: torch.Tensor
    ) -> None:
        self.init_depth = init_depth.clamp_min(MIN_INIT_DEPTH)
        self.sparse = sparse
        self.measured = measured
        self._sparse_ratio: torch.Tensor | None = None

    def to_domain(self, depth: torch.Tensor, domain: str) -> torch.Tensor:
        """Metres -> the domain's values (rho = log(D / D0) for ``"ratio"``)."""
        if domain == "depth":
            return depth
        return torch.log(depth.clamp_min(MIN_INIT_DEPTH) / self.init_depth)

    def from_domain(self, values: torch.Tensor, domain: str) -> torch.Tensor:
        """The domain's values -> metres (D0 * exp(rho) for ``"ratio"``); S kept exactly."""
        if domain == "depth":
            return values
        return torch.where(self.measured, self.sparse, self.init_depth * torch.exp(values))

    def sparse_in(self, domain: str) -> torch.Tensor:
        """S in the domain (log(S / D0) at measured pixels, 0 elsewhere, for ``"ratio"``)."""
        if domain == "depth":
            return self.sparse
        if self._sparse_ratio is None:
            rho = torch.log(self.sparse.clamp_min(MIN_INIT_DEPTH) / self.init_depth)
            self._sparse_ratio = torch.where(self.measured, rho, torch.zeros_like(rho))
        return self._sparse_ratio


def _update(
    depth_tilde: torch.Tensor,
    mask: torch.Tensor,
    refined: torch.Tensor,
    grown_mask: torch.Tensor,
    sparse: torch.Tensor,
    measured: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(D_{n+1}, M_{n+1}) from the attention's R_n and m_{n+1}: eq. 10, measured pixels kept."""
    next_depth = (1 - mask) * depth_tilde + mask * refined  # eq. 10
    next_depth = torch.where(measured, sparse, next_depth)  # measured pixels keep S ...
    next_mask = torch.where(measured, mask, grown_mask)  # ... and their mask value
    return next_depth, next_mask


class MSPN(nn.Module):
    """Two MSPN layers in series (Fig. 2c): N adaptive iterations, then 6 from M0 again."""

    def __init__(self, config: MSPNConfig | None = None) -> None:
        super().__init__()
        self.config = config or MSPNConfig()
        self.layers = nn.ModuleList([MSPNLayer(self.config), MSPNLayer(self.config)])
        self.grad_checkpointing = False

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute each iteration in the backward pass instead of storing it (training)."""
        self.grad_checkpointing = enable

    def schedule(self, height: int, width: int, n_points: int) -> tuple[int, int]:
        """(layer-1, layer-2) iteration counts for ``n_points`` measurements, eq. 13."""
        return iteration_schedule(height, width, n_points, self.config)

    def _run_step(
        self,
        layer: MSPNLayer,
        attend: AttendFn,
        depth: torch.Tensor,
        mask: torch.Tensor,
        sparse: torch.Tensor,
        measured: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if self.grad_checkpointing and torch.is_grad_enabled():
            return torch.utils.checkpoint.checkpoint(
                layer.step, attend, depth, mask, sparse, measured, use_reentrant=False
            )
        return layer.step(attend, depth, mask, sparse, measured)

    def _iterate(
        self,
        layer: MSPNLayer,
        attend: AttendFn,
        maps: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor],
        ratio: DomainMap,
        domain: str,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One iteration: the next values and mask (eqs. 6-11) and the depth in metres.

        ``maps`` is (values, mask, S in the layer's domain, M0). A prepared attention that
        runs whole iterations (the native backend's ``iterate``) does all of it in one call,
        the same maths without torch operations between iterations; the others go through
        :meth:`MSPNLayer.step` and :class:`DomainMap`.
        """
        values, mask, target, measured = maps
        whole = getattr(attend, "iterate", None)
        if whole is not None and values.dtype == torch.float32:
            to_metres = (ratio.init_depth, ratio.sparse) if domain == "ratio" else None
            values, mask, metres = whole(
                values, mask, layer.rel_pos_bias, target, measured, to_metres
            )
            return values, mask, values if metres is None else metres
        values, mask = self._run_step(layer, attend, values, mask, target, measured)
        return values, mask, ratio.from_domain(values, domain)

    def refine_steps(
        self,
        init_depth: torch.Tensor,
        sparse: torch.Tensor,
        guidance: torch.Tensor | Callable[[], torch.Tensor],
        schedule: tuple[int, int] | None = None,
        use_mask: bool = True,
        grad_iterations: int | None = None,
    ) -> Iterator[PropagationState]:
        """Yield each layer's starting state, then the state after each of its iterations.

        The order is layer 1, iteration 0 (D0 with S imposed, mask M0), its iterations 1..N,
        then layer 2, iteration 0 (the restart: layer 1's final depth, mask M0 again) and its
        iterations. A layer with no iterations in ``schedule`` yields nothing, not even its
        starting state.

        Args:
            init_depth: B x 1 x H x W, metres; the MDE estimate D0.
            sparse: B x 1 x H x W, metres; 0 where unmeasured (S).
            guidance: B x C x H x W guidance feature G (eq. 3), or a function returning it,
                called once right after layer 1's starting state is yielded: a viewer then
                shows that state before the guidance network has run.
            schedule: (layer-1, layer-2) iterations; default from eq. 13 with the smallest
                point count in the batch. ``(0, 0)`` yields nothing.
            use_mask: False runs the paper's ablation: the mask is fixed to 1, so every pixel
                is refined from its whole window from the first iteration on.
            grad_iterations: when gradients are enabled, backpropagate only through the last
                ``grad_iterations`` iterations of each layer (truncated backpropagation, a
                training-speed approximation); earlier iterations run without a graph and may
                use an inference-only attention backend. ``None`` keeps every iteration.

        Yields:
            :class:`PropagationState` with fresh tensors: a consumer may keep every state.
        """
        _check_maps(init_depth, sparse, None if callable(guidance) else guidance)
        measured = sparse > 0
        initial_mask = measured.to(init_depth.dtype)  # M0 = Xi(S), eq. 5
        if not use_mask:
            initial_mask = torch.ones_like(initial_mask)
        if schedule is None:
            height, width = init_depth.shape[-2:]
            n_points = int(measured.flatten(1).sum(dim=1).min())
            schedule = self.schedule(height, width, n_points)
        depth = torch.where(measured, sparse, init_depth)
        domains = DOMAINS[self.config.domain]
        ratio = DomainMap(init_depth, sparse, measured)
        for layer_index, (layer, n_iterations, domain) in enumerate(
            zip(self.layers, schedule, domains, strict=True), start=1
        ):
            if n_iterations == 0:
                continue
            mask = initial_mask  # each layer starts from M0 (Fig. 2)
            # S is already imposed on depth (above, or by the last step of layer 1)
            yield PropagationState(layer_index, 0, depth.clone(), mask.clone())
            values, target = ratio.to_domain(depth, domain), ratio.sparse_in(domain)
            if callable(guidance):
                guidance = guidance()
                _check_maps(init_depth, sparse, guidance)
            n_free = 0
            if grad_iterations is not None and torch.is_grad_enabled():
                n_free = max(n_iterations - grad_iterations, 0)
            # (grad mode, first, last iteration): the first n_free run without a graph. The
            # mode is entered around each computation, never held across a yield.
            for mode, first, last in (
                (torch.no_grad, 1, n_free),
                (contextlib.nullcontext, n_free + 1, n_iterations),
            ):
                if first > last:
                    continue
                with mode():
                    attend = layer.prepare(guidance if first > n_free else guidance.detach())
                for iteration in range(first, last + 1):
                    with mode():
                        values, mask, depth = self._iterate(
                            layer, attend, (values, mask, target, measured), ratio, domain
                        )
                    if not use_mask:
                        mask = initial_mask.clone()
                    yield PropagationState(layer_index, iteration, depth, mask)

    def window_weights(
        self,
        guidance: torch.Tensor,
        sparse: torch.Tensor,
        state: PropagationState,
        row: int,
        col: int,
        use_mask: bool = True,
        init_depth: torch.Tensor | None = None,
    ) -> AttentionWindow:
        """The iteration that starts from ``state``, at one query pixel (eqs. 6-11).

        What the next iteration of ``state.layer`` does at pixel (row, col): its window
        weights, the keys' depths and mask values, R_n and the pixel's next depth and mask.
        The iteration that produced a state starts from the state before it in
        :meth:`refine_steps`; layer 2's first one from layer 2's starting state (mask M0).

        Args:
            guidance: 1 x C x H x W guidance feature G (eq. 3).
            sparse: 1 x 1 x H x W, metres; 0 where unmeasured (S).
            state: the state the iteration starts from (its depth and mask, 1 x 1 x H x W).
            row: image row of the query pixel.
            col: image column of the query pixel.
            use_mask: False: the no-mask ablation, whose next mask is 1 everywhere.
            init_depth: 1 x 1 x H x W D0 as the MSPN saw it; needed when the layer
                propagates log(D / D0) (``MSPNConfig.domain``). The window's depths are then
                D0 * exp(rho) of each key, and R_n is the pixel's D0 times exp of the
                attention-weighted rho.

        Raises:
            ValueError: for a pixel outside the image or a layer other than 1 or 2.
        """
        _check_maps(state.depth, sparse, guidance)
        _check_query(state, row, col)
        height, width = state.depth.shape[-2:]
        window = self.config.window
        domain = DOMAINS[self.config.domain][state.layer - 1]
        if domain != "depth" and init_depth is None:
            raise ValueError(f"layer {state.layer} propagates log(D / D0): pass init_depth (D0)")
        measured = sparse > 0
        mapping = DomainMap(sparse if init_depth is None else init_depth, sparse, measured)
        top = int(window_starts(height, window)[row])
        left = int(window_starts(width, window)[col])
        with torch.no_grad():
            attended, depth_tilde, next_depth, next_mask = self.layers[state.layer - 1].window_at(
                guidance, mapping.sparse_in(domain), measured,
                mapping.to_domain(state.depth, domain), state.mask, row, col,
            )  # fmt: skip
        if not use_mask:
            next_mask = torch.ones_like(next_mask)
        init_window = mapping.init_depth[0, 0, top : top + window, left : left + window]
        init_here = mapping.init_depth[0, 0, row, col]

        def grid(values: torch.Tensor) -> np.ndarray:  # B x p^2 x 1 x 1 -> p x p
            return values[0, :, 0, 0].view(window, window).float().cpu().numpy()

        def metres(values: torch.Tensor, init: torch.Tensor) -> torch.Tensor:
            return values if domain == "depth" else init * torch.exp(values)

        key_depths = metres(attended.depth[0, :, 0, 0].view(window, window), init_window)
        return AttentionWindow(
            y=row,
            x=col,
            layer=state.layer,
            iteration=state.iteration + 1,
            top=top,
            left=left,
            weights=grid(attended.weights),
            mask=grid(attended.mask),
            depth=key_depths.float().cpu().numpy(),
            depth_before=float(metres(depth_tilde, init_here)),
            mask_before=float(state.mask[0, 0, row, col]),
            refined=float(metres(attended.refined, init_here)),
            depth_after=float(metres(next_depth, init_here)),
            mask_after=float(next_mask),
            measured=bool(sparse[0, 0, row, col] > 0),
            domain=domain,
        )

    def forward(
        self,
        init_depth: torch.Tensor,
        sparse: torch.Tensor,
        guidance: torch.Tensor,
        schedule: tuple[int, int] | None = None,
        use_mask: bool = True,
        grad_iterations: int | None = None,
    ) -> torch.Tensor:
        """Refined depth after all iterations (B x 1 x H x W, metres); same path as steps.

        With no iterations to run (no measurement), returns ``init_depth`` unchanged.
        """
        final = init_depth
        for state in self.refine_steps(
            init_depth, sparse, guidance, schedule, use_mask, grad_iterations
        ):
            final = state.depth
        return final


def _check_query(state: PropagationState, row: int, col: int) -> None:
    """What :meth:`MSPN.window_weights` can look at: one image, a pixel in it, layer 1 or 2."""
    height, width = state.depth.shape[-2:]
    if state.depth.shape[0] != 1:
        raise ValueError(f"one image at a time, got a batch of {state.depth.shape[0]}")
    if not (0 <= row < height and 0 <= col < width):
        raise ValueError(f"pixel (x={col}, y={row}) is outside the {height}x{width} (H x W) image")
    if state.layer not in (1, 2):
        raise ValueError(f"layer must be 1 or 2, got {state.layer}")


def _check_maps(
    init_depth: torch.Tensor, sparse: torch.Tensor, guidance: torch.Tensor | None
) -> None:
    """Shape and value checks shared by the MSPN entry points (``None``: no guidance yet)."""
    if init_depth.dim() != 4 or init_depth.shape[1] != 1:
        raise ValueError(f"init_depth must be B x 1 x H x W, got {tuple(init_depth.shape)}")
    if sparse.shape != init_depth.shape:
        raise ValueError(
            f"sparse must match init_depth {tuple(init_depth.shape)}, got {tuple(sparse.shape)}"
        )
    if guidance is not None and (
        guidance.dim() != 4
        or guidance.shape[0] != init_depth.shape[0]
        or (guidance.shape[-2:] != init_depth.shape[-2:])
    ):
        raise ValueError(
            f"guidance must be B x C x H x W with B, H, W of init_depth "
            f"{tuple(init_depth.shape)}, got {tuple(guidance.shape)}"
        )
    if not torch.isfinite(sparse).all() or (sparse < 0).any():
        raise ValueError("sparse depth must be finite and >= 0 (0 = missing)")
    if not torch.isfinite(init_depth).all():
        raise ValueError("init_depth must be finite")
