"""Look inside one MSPN iteration: the attention window of a single pixel (teaching view).

For a query pixel ``p`` at iteration ``n`` of a layer this recomputes, with the same affine
query/key features and border rule as :mod:`sdr_core.attention.reference`, the quantities of
eqs. 6-11 for that pixel only:

- the re-imposed depth ``D~_n`` of its p x p window (eq. 6),
- the masked keys' mask values ``M_n`` in the window (eq. 7),
- the softmax attention weights over the window (eq. 8),
- ``R_n(p)`` (eq. 9), the blended depth ``D_{n+1}(p)`` (eq. 10) and ``M_{n+1}(p)`` (eq. 11).

"Iteration n" follows :class:`~sdr_core.pipeline.RefineState`: the state the app shows as
"iteration n" is the *output* of iteration n, so its attention is computed from the state
before it (the previous iteration's output, or the layer's starting state for n = 1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .attention import window_starts
from .pipeline import SDRPipeline
from .sparse import count_points
from .validation import as_depth_map, as_rgb_image, check_same_shape

__all__ = ["AttentionWindow", "attention_window", "guidance_feature", "state_before"]


@dataclass(frozen=True)
class AttentionWindow:
    """Eqs. 6-11 evaluated for one query pixel at one iteration.

    Window arrays are p x p, row-major over image rows ``top .. top + p - 1`` and columns
    ``left .. left + p - 1`` (the NATTEN border rule shifts the window inward at the border,
    so the query is not always at the centre).
    """

    y: int  # query row
    x: int  # query column
    layer: int  # 1 or 2
    iteration: int  # counts from 1 within the layer
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

    @property
    def window(self) -> int:
        """Window size p."""
        return int(self.weights.shape[0])


def _map_tensor(array: np.ndarray, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))[None, None].to(device)


def guidance_feature(
    pipeline: SDRPipeline, image: np.ndarray, sparse: np.ndarray, init_depth: np.ndarray
) -> torch.Tensor:
    """The guidance feature G of eq. 3 (1 x C x H x W) for these inputs.

    Args:
        pipeline: the pipeline whose guidance network to run.
        image: H x W x 3 uint8 RGB.
        sparse: H x W float32 metres, 0 = no measurement (after any hole mask).
        init_depth: H x W float32 metres, D0 (dense).
    """
    image = as_rgb_image(image)
    sparse = as_depth_map(sparse, "sparse depth")
    init_depth = as_depth_map(init_depth, "initial depth")
    check_same_shape(image, sparse, "image", "sparse depth")
    check_same_shape(image, init_depth, "image", "initial depth")
    device = pipeline.device
    image_t = torch.from_numpy(image).to(device).permute(2, 0, 1)[None].float() / 255
    with torch.inference_mode():
        return pipeline.guidance(
            image_t, _map_tensor(sparse, device), _map_tensor(init_depth, device)
        )


def state_before(
    pipeline: SDRPipeline,
    image: np.ndarray,
    sparse: np.ndarray,
    init_depth: np.ndarray,
    layer: int,
    iteration: int,
    use_mask: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """(D_n, M_n) entering iteration ``iteration`` of ``layer``, by replaying the pipeline.

    Layer 1 starts from ``D0`` with the measurements imposed and ``M0``; layer 2 starts from
    layer 1's final depth and ``M0`` again (ones everywhere when ``use_mask`` is False).

    Returns:
        (depth H x W float32 metres, mask H x W float32).
    """
    _check_position(pipeline, sparse, layer, iteration)
    sparse = as_depth_map(sparse, "sparse depth")
    measured = sparse > 0
    depth = np.where(measured, sparse, as_depth_map(init_depth, "initial depth")).astype(np.float32)
    initial_mask = measured.astype(np.float32) if use_mask else np.ones_like(sparse)
    if layer == 1 and iteration == 1:
        return depth, initial_mask
    full = pipeline.schedule(*sparse.shape, count_points(sparse))
    # Run exactly the iterations before this one; layer 2 restarts the mask from M0.
    schedule = (iteration - 1, 0) if layer == 1 else (full[0], iteration - 1)
    mask = initial_mask
    for state in pipeline.refine_steps(
        image, sparse, init_depth=init_depth, use_mask=use_mask, schedule=schedule
    ):
        depth, mask = state.depth, state.mask
    if layer == 2 and iteration == 1:
        mask = initial_mask
    return depth, mask


def _check_position(pipeline: SDRPipeline, sparse: np.ndarray, layer: int, iteration: int) -> None:
    schedule = pipeline.schedule(*np.shape(sparse)[:2], count_points(sparse))
    if layer not in (1, 2):
        raise ValueError(f"layer must be 1 or 2, got {layer}")
    if not 1 <= iteration <= schedule[layer - 1]:
        raise ValueError(
            f"iteration must be between 1 and {schedule[layer - 1]} for layer {layer} "
            f"with {count_points(sparse)} points, got {iteration}"
        )


def attention_window(
    pipeline: SDRPipeline,
    image: np.ndarray,
    sparse: np.ndarray,
    init_depth: np.ndarray,
    y: int,
    x: int,
    layer: int,
    iteration: int,
    *,
    use_mask: bool = True,
    before: tuple[np.ndarray, np.ndarray] | None = None,
    guidance: torch.Tensor | None = None,
) -> AttentionWindow:
    """Attention of pixel (y, x) over its p x p window at one MSPN iteration.

    Args:
        pipeline: the pipeline that ran (its guidance network and MSPN layer weights).
        image: H x W x 3 uint8 RGB.
        sparse: H x W float32 metres, 0 = no measurement (S, after any hole mask).
        init_depth: H x W float32 metres, D0.
        y: query row.
        x: query column.
        layer: 1 or 2.
        iteration: 1 .. iterations of that layer; the weights that produced this state.
        use_mask: False inspects the no-mask ablation (M_n = 1 everywhere).
        before: (D_n, M_n) entering the iteration, as :func:`state_before` returns; given
            by a caller that stored the run's states, replayed otherwise.
        guidance: G from :func:`guidance_feature`, to skip recomputing it.

    Returns:
        :class:`AttentionWindow` for the pixel.

    Raises:
        ValueError: pixel outside the image, layer or iteration out of range, no measurement.
    """
    sparse = as_depth_map(sparse, "sparse depth")
    height, width = sparse.shape
    if not (0 <= y < height and 0 <= x < width):
        raise ValueError(f"pixel (x={x}, y={y}) is outside the {height}x{width} (H x W) image")
    _check_position(pipeline, sparse, layer, iteration)
    if before is None:
        before = state_before(pipeline, image, sparse, init_depth, layer, iteration, use_mask)
    depth, mask = (as_depth_map(a, name) for a, name in zip(before, ("depth", "mask"), strict=True))
    check_same_shape(sparse, depth, "sparse depth", "depth")
    check_same_shape(sparse, mask, "sparse depth", "mask")
    if guidance is None:
        guidance = guidance_feature(pipeline, image, sparse, init_depth)

    mspn_layer = pipeline.mspn.layers[layer - 1]
    p = mspn_layer.config.window
    device = guidance.device
    top = int(window_starts(height, p)[y])
    left = int(window_starts(width, p)[x])
    rows, cols = slice(top, top + p), slice(left, left + p)
    sparse_t, depth_t, mask_t = (_map_tensor(a, device) for a in (sparse, depth, mask))
    with torch.inference_mode():
        qk = mspn_layer.affine_qk(guidance)
        measured = sparse_t > 0
        depth_tilde = torch.where(measured, sparse_t, depth_t)  # eq. 6
        query = qk.query(depth_tilde)[:, :, y, x]  # 1 x E, Q_n at the query (eq. 7)
        key = qk.key(depth_tilde, mask_t)[:, :, rows, cols]  # 1 x E x p x p, masked K_n
        dy = torch.arange(top, top + p, device=device) - y + p - 1
        dx = torch.arange(left, left + p, device=device) - x + p - 1
        bias = mspn_layer.rel_pos_bias[dy[:, None], dx[None, :]]  # p x p, b of eq. 8
        logits = (query[:, :, None, None] * key).sum(dim=1)[0] + bias  # eq. 8
        weights = torch.softmax(logits.flatten(), dim=0).view(p, p)
        window_depth = depth_tilde[0, 0, rows, cols]
        window_mask = mask_t[0, 0, rows, cols]
        refined = float((weights * window_depth).sum())  # eq. 9
        grown = float((weights * window_mask).sum())  # eq. 11
    is_measured = bool(sparse[y, x] > 0)
    d_tilde, m_n = float(depth_tilde[0, 0, y, x]), float(mask[y, x])
    if is_measured:  # measured pixels keep S and their mask value
        depth_after, mask_after = float(sparse[y, x]), m_n
    else:
        depth_after = (1 - m_n) * d_tilde + m_n * refined  # eq. 10
        mask_after = 1.0 if not use_mask else grown
    return AttentionWindow(
        y=y,
        x=x,
        layer=layer,
        iteration=iteration,
        top=top,
        left=left,
        weights=weights.float().cpu().numpy(),
        mask=window_mask.float().cpu().numpy(),
        depth=window_depth.float().cpu().numpy(),
        depth_before=d_tilde,
        mask_before=m_n,
        refined=refined,
        depth_after=depth_after,
        mask_after=mask_after,
        measured=is_measured,
    )
