"""Depth Anything V2 as an optional initial-depth backend, through Hugging Face ``transformers``.

Depth Anything V2 (Yang et al., NeurIPS 2024) is a DINOv2 ViT with a DPT head. Its *metric*
variants, fine-tuned on Hypersim (indoor, up to 20 m) or Virtual KITTI (outdoor, up to 80 m),
predict depth in metres, which is what MSPN refines (D0). The default here is the indoor
small one, ``depth-anything/Depth-Anything-V2-Metric-Indoor-Small-hf``, matching the
project's indoor scenes.

Only metric variants are accepted. The *relative* ones predict affine-invariant inverse depth:
turning that into metres needs a scale and a shift per image, fitted to measurements, and
doing that silently would make D0 look metric when it is not. A relative model id is refused
with a message saying so (use a ``...-Metric-...-hf`` id, or align the output yourself and
pass it as ``init_depth``).

Nothing here imports ``transformers`` at module import: :func:`depth_anything_available` only
asks whether it is installed, and :func:`load_depth_anything` imports it and fetches the
weights, raising :class:`DepthAnythingUnavailable` in plain words when either is impossible.
Preprocessing is done here in torch (the ``transformers`` image processor needs torchvision,
which the project does not install): resize so the short side is 518 px, each side a
multiple of the 14 px patch, bicubic, ImageNet normalisation, as in the authors'
``infer_image(input_size=518)``.
"""

from __future__ import annotations

import importlib.util
import logging
import threading
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..validation import as_rgb_image

__all__ = [
    "DEFAULT_MODEL_ID",
    "DepthAnythingEstimator",
    "DepthAnythingUnavailable",
    "depth_anything_available",
    "load_depth_anything",
    "network_size",
]

logger = logging.getLogger(__name__)

DEFAULT_MODEL_ID = "depth-anything/Depth-Anything-V2-Metric-Indoor-Small-hf"
INPUT_SIDE = 518  # short side fed to the ViT (37 patches of 14 px), the authors' default
MAX_INPUT_SIDE = 2 * INPUT_SIDE  # long-side cap: elongated images shrink instead of growing
MIN_DEPTH_M = 0.01  # floor of D0: the metric head's sigmoid can reach 0, MSPN needs D0 > 0
HUB_TIMEOUT_S = 10.0  # one request to the Hub before a download; no retries

# ImageNet statistics, the normalisation DINOv2 (and so Depth Anything V2) was trained with.
_IMAGE_MEAN = (0.485, 0.456, 0.406)
_IMAGE_STD = (0.229, 0.224, 0.225)


class DepthAnythingUnavailable(RuntimeError):
    """Depth Anything V2 cannot be used here; ``reason`` says why in plain words."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"Depth Anything V2 could not be loaded: {reason}")
        self.reason = reason


def depth_anything_available() -> bool:
    """Whether ``transformers`` is installed (cheap: nothing is imported or downloaded).

    True does not promise that the weights can be fetched; :func:`load_depth_anything` says.
    """
    return importlib.util.find_spec("transformers") is not None


def network_size(
    height: int,
    width: int,
    input_side: int = INPUT_SIDE,
    max_input_side: int = MAX_INPUT_SIDE,
    multiple: int = 14,
) -> tuple[int, int]:
    """Size (h, w) at which an image of ``height`` x ``width`` is fed to the network.

    The short side becomes ``input_side`` and the aspect ratio is kept, unless the long side
    would then exceed ``max_input_side``, in which case the long side is set to that instead.
    Each side is rounded to the nearest multiple of the ViT patch (``multiple``, at least one
    patch), because the DINOv2 backbone works on whole patches.
    """
    if height < 1 or width < 1:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    scale = min(input_side / min(height, width), max_input_side / max(height, width))

    def fit(side: int) -> int:
        return max(multiple, round(side * scale / multiple) * multiple)

    return fit(height), fit(width)


def _config_problem(config: Any) -> str | None:
    """Why a ``transformers`` config cannot serve as a metric MDE here, or None."""
    model_type = getattr(config, "model_type", None)
    if model_type != "depth_anything":
        return f"the model is a {model_type!r} model, not Depth Anything (depth_anything)"
    kind = getattr(config, "depth_estimation_type", "relative")
    if kind != "metric":
        return (
            f"this is a {kind} Depth Anything model: it predicts inverse depth up to an unknown "
            "scale and shift, not metres; use a metric variant such as "
            f"{DEFAULT_MODEL_ID!r} (or its Outdoor counterpart)"
        )
    return None


class DepthAnythingEstimator:
    """:class:`~sdr_core.mde.DepthEstimator` around a metric Depth Anything (V2) model.

    The model arrives ready-built (from :func:`load_depth_anything`, or a randomly initialised
    one in the tests); the constructor does no I/O. Shared read-only between users: inference
    only, under ``torch.inference_mode``.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        device: torch.device | str = "cpu",
        input_side: int = INPUT_SIDE,
        max_input_side: int = MAX_INPUT_SIDE,
        min_depth_m: float = MIN_DEPTH_M,
    ) -> None:
        """Wrap ``model``.

        Args:
            model: a ``transformers`` ``DepthAnythingForDepthEstimation`` with a metric head
                (``config.depth_estimation_type == "metric"``).
            device: where the model runs; the estimator moves it there.
            input_side: short side, px, at which images are fed to the network.
            max_input_side: cap on the long side, px (see :func:`network_size`).
            min_depth_m: floor of the returned depth, metres (MSPN needs D0 > 0).

        Raises:
            ValueError: the model is not a metric Depth Anything model, or bad sizes.
        """
        problem = _config_problem(getattr(model, "config", None))
        if problem is not None:
            raise ValueError(problem)
        if not 0 < input_side <= max_input_side:
            raise ValueError(
                f"need 0 < input_side <= max_input_side, got {input_side}, {max_input_side}"
            )
        if not min_depth_m > 0:
            raise ValueError(f"min_depth_m must be positive, got {min_depth_m}")
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.patch_px = int(model.config.patch_size)
        self.max_depth_m = float(model.config.max_depth)
        self.input_side = input_side
        self.max_input_side = max_input_side
        self.min_depth_m = min_depth_m
        model_id = getattr(model.config, "name_or_path", "") or ""
        self.name = f"Depth Anything V2 ({model_id})" if model_id else "Depth Anything V2"
        mean, std = torch.tensor(_IMAGE_MEAN), torch.tensor(_IMAGE_STD)
        self._mean = mean.view(1, 3, 1, 1).to(self.device)
        self._std = std.view(1, 3, 1, 1).to(self.device)

    def predict(self, image: torch.Tensor) -> torch.Tensor:
        """Metric depth for a batch of images.

        Args:
            image: B x 3 x H x W float in [0, 1], RGB, on any device.

        Returns:
            B x 1 x H x W float32 metres on ``self.device``, in
            [``min_depth_m``, ``config.max_depth``].
        """
        if image.ndim != 4 or image.shape[1] != 3:
            raise ValueError(f"image must be B x 3 x H x W, got shape {tuple(image.shape)}")
        height, width = image.shape[-2:]
        size = network_size(height, width, self.input_side, self.max_input_side, self.patch_px)
        with torch.inference_mode():
            x = image.to(self.device, torch.float32)
            # bicubic like the authors' cv2.INTER_CUBIC; antialias only matters when shrinking
            x = F.interpolate(x, size=size, mode="bicubic", align_corners=False, antialias=True)
            x = (x.clamp(0, 1) - self._mean) / self._std
            depth = self.model(pixel_values=x).predicted_depth  # B x h x w, metres
            depth = F.interpolate(
                depth[:, None].float(), size=(height, width), mode="bilinear", align_corners=False
            )  # B x 1 x H x W
            return depth.clamp_min(self.min_depth_m)

    def estimate(self, image: np.ndarray) -> np.ndarray:
        """H x W x 3 uint8 RGB -> H x W float32 metres, >= ``min_depth_m`` everywhere."""
        image = as_rgb_image(image)
        tensor = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255  # 1 x 3 x H x W
        return self.predict(tensor)[0, 0].cpu().numpy().astype(np.float32)


def _short(error: BaseException) -> str:
    """One line naming an exception, for messages shown to people."""
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__


def _import_transformers() -> Any:
    try:
        import transformers
    except ImportError as error:
        raise DepthAnythingUnavailable(
            "the optional package `transformers` is not installed (pip install transformers)"
        ) from error
    return transformers


def _from_pretrained(transformers: Any, model_id: str, local_files_only: bool) -> Any:
    """Config first (one small file), so a wrong id fails before a 100 MB download."""
    config = transformers.AutoConfig.from_pretrained(model_id, local_files_only=local_files_only)
    problem = _config_problem(config)
    if problem is not None:
        raise DepthAnythingUnavailable(f"{model_id!r}: {problem}")
    return transformers.DepthAnythingForDepthEstimation.from_pretrained(
        model_id, config=config, local_files_only=local_files_only, use_safetensors=True
    )


def _check_hub(model_id: str, timeout_s: float) -> None:
    """One request, no retries, at most ``timeout_s``: a closed network fails fast.

    ``from_pretrained`` alone retries each file five times with back-off (26 s measured on
    this offline machine with huggingface_hub 2.4), which would stall the app's start.
    """
    from huggingface_hub import HfApi
    from huggingface_hub.errors import RepositoryNotFoundError

    outcome: list[BaseException | None] = []

    def ask() -> None:
        try:
            HfApi().model_info(model_id, timeout=timeout_s)
            outcome.append(None)
        except Exception as error:  # network errors of whichever HTTP client the hub uses
            outcome.append(error)

    # The HTTP timeout does not cover name resolution, which can block far longer on a
    # network that drops packets; a daemon thread bounds the whole question.
    asker = threading.Thread(target=ask, name="depth-anything-hub-check", daemon=True)
    asker.start()
    asker.join(timeout_s)
    if not outcome:
        raise DepthAnythingUnavailable(
            f"the Hugging Face Hub did not answer within {timeout_s:g} s, and {model_id!r} is "
            "not in the local cache"
        )
    error = outcome[0]
    if isinstance(error, RepositoryNotFoundError):
        raise DepthAnythingUnavailable(
            f"there is no model {model_id!r} on the Hugging Face Hub (or it is private)"
        ) from error
    if error is not None:
        raise DepthAnythingUnavailable(
            f"the Hugging Face Hub could not be reached ({_short(error)}), and {model_id!r} is "
            "not in the local cache"
        ) from error


def load_depth_anything(
    model_id: str = DEFAULT_MODEL_ID,
    device: torch.device | str = "cpu",
    *,
    local_files_only: bool | None = None,
    timeout_s: float = HUB_TIMEOUT_S,
) -> DepthAnythingEstimator:
    """Load a metric Depth Anything V2 model, from the local cache or the Hugging Face Hub.

    The local cache is tried first, without touching the network. Otherwise, unless
    downloads are off, one request with ``timeout_s`` checks that the Hub answers and knows
    ``model_id`` before the weights (safetensors only) are downloaded.

    Args:
        model_id: a metric Depth Anything model on the Hub, e.g. :data:`DEFAULT_MODEL_ID` or
            ``"depth-anything/Depth-Anything-V2-Metric-Outdoor-Small-hf"``, or a local folder.
        device: where the model runs.
        local_files_only: never download; default: the Hub's offline setting
            (``HF_HUB_OFFLINE=1``).
        timeout_s: how long the Hub may take to answer the first request.

    Returns:
        The ready :class:`DepthAnythingEstimator`.

    Raises:
        DepthAnythingUnavailable: ``transformers`` is missing, the weights cannot be found or
            fetched, or ``model_id`` is not a metric Depth Anything model. The message starts
            with "Depth Anything V2 could not be loaded:" and says why in plain words.
    """
    transformers = _import_transformers()
    from huggingface_hub import constants as hub_constants

    offline = hub_constants.HF_HUB_OFFLINE if local_files_only is None else local_files_only
    try:
        model = _from_pretrained(transformers, model_id, local_files_only=True)
    except DepthAnythingUnavailable:
        raise
    except Exception as cache_error:  # not (completely) cached: any loader error lands here
        if offline:
            raise DepthAnythingUnavailable(
                f"{model_id!r} is not in the local Hugging Face cache and downloads are off "
                f"({_short(cache_error)})"
            ) from cache_error
        _check_hub(model_id, timeout_s)
        logger.info("downloading %s from the Hugging Face Hub", model_id)
        try:
            model = _from_pretrained(transformers, model_id, local_files_only=False)
        except DepthAnythingUnavailable:
            raise
        except Exception as error:
            raise DepthAnythingUnavailable(
                f"fetching {model_id!r} failed ({_short(error)})"
            ) from error
    logger.info("loaded %s on %s", model_id, device)
    return DepthAnythingEstimator(model, device)
