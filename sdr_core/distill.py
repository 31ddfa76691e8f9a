"""Distillation of a lighter guidance network (``train --distill-from``).

A trained model's guidance network is most of a refinement's fixed cost on a CPU (the last
full-resolution decoder block alone is about 40 % of it). A lighter one, started fresh,
learns fastest from the trained model itself: it is trained to give the trained (teacher)
MSPN layers the queries and keys of eq. 7 that the teacher's guidance gives them; the MSPN
stays frozen, and a later fine-tune (``--init-dir`` on the exported folder) trains both.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from .checkpoints import load_module
from .guidance import GuidanceConfig, GuidanceNet
from .prefill import align_init_depth

__all__ = ["distillation_loss", "load_teacher"]


def load_teacher(folder: str | Path, device: torch.device | str = "cpu") -> GuidanceNet:
    """The frozen teacher: ``folder``'s guidance network, in inference mode."""
    path = Path(folder) / "guidance.safetensors"
    teacher = load_module(path, "guidance", GuidanceConfig, GuidanceNet, device)
    return teacher.requires_grad_(False).eval()


def distillation_loss(
    model: nn.Module,
    teacher: GuidanceNet,
    image: torch.Tensor,
    sparse: torch.Tensor,
    init: torch.Tensor,
) -> torch.Tensor:
    """How far the student guidance's queries and keys are from the teacher's.

    Both guidance networks see the same inputs (D0 aligned as the MSPN config says); each
    MSPN layer of ``model`` (an :class:`~sdr_core.train.SDRModel`, possibly DDP-wrapped,
    whose MSPN is the teacher's) turns both G into its depth-free query and key bases
    (eq. 7, :meth:`~sdr_core.mspn.MSPNLayer.affine_qk`), and the loss is the mean over
    layers and over q, k of the squared error relative to the teacher's mean square. Only
    what the MSPN reads of G is matched: its LayerNorm removes each pixel's scale and
    offset of G, and directions that f_Q, f_K ignore cost nothing.

    Args:
        model: student guidance (``model.guidance``) + the teacher's MSPN (``model.mspn``).
        teacher: the teacher's guidance network (frozen).
        image: B x 3 x H x W in [0, 1].
        sparse: B x 1 x H x W sparse depths S, metres (0 = none).
        init: B x 1 x H x W initial depth D0, metres (aligned here, as the model does).

    Returns:
        Scalar loss with a graph through the student only.
    """
    net = getattr(model, "module", model)
    mspn = net.mspn.config
    init = align_init_depth(init, sparse, mspn.init_alignment, mspn.alignment_prior_points)
    with torch.no_grad():
        target = teacher(image, sparse, init).float()
    student = net.guidance(image, sparse, init).float()
    terms = []
    for layer in net.mspn.layers:
        with torch.no_grad():
            want = layer.affine_qk(target)
        got = layer.affine_qk(student)
        for ours, theirs in ((got.query_base, want.query_base), (got.key_base, want.key_base)):
            terms.append((ours - theirs).square().mean() / theirs.square().mean().clamp(min=1e-8))
    return torch.stack(terms).mean()
