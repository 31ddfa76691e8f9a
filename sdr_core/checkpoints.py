"""Save and load weights as safetensors with the component's config in the metadata.

The config travels inside the file (``json.dumps(dataclasses.asdict(config))``), so weights and
hyper-parameters cannot drift apart. Loading is strict: a missing or unexpected key raises
with the list of keys. Nothing is ever unpickled.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

__all__ = ["CheckpointError", "config_from_dict", "load_module", "read_metadata", "save_module"]

FORMAT_VERSION = "1"
ConfigT = TypeVar("ConfigT")
ModuleT = TypeVar("ModuleT", bound=nn.Module)


class CheckpointError(ValueError):
    """A checkpoint file is missing, unreadable, or does not fit the model."""


def config_from_dict(cls: type[ConfigT], values: dict[str, Any]) -> ConfigT:
    """Rebuild a (frozen) config dataclass from JSON values; lists become tuples where typed so."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - names)
    if unknown:
        raise CheckpointError(f"{cls.__name__} has no field(s) {unknown}")
    kwargs = {}
    for name, value in values.items():
        if isinstance(value, list) and "tuple" in str(hints.get(name, "")):
            value = tuple(value)
        kwargs[name] = value
    return cls(**kwargs)


def save_module(
    path: str | Path, module: nn.Module, config: Any, kind: str, extra: dict[str, str] | None = None
) -> None:
    """Write ``module``'s state dict and ``config`` to ``path`` (safetensors).

    Args:
        path: destination file.
        module: the network.
        config: its config dataclass.
        kind: a short label checked on load ("mde", "guidance", "mspn").
        extra: more string metadata (training command, steps, ...).
    """
    state = {k: v.detach().contiguous().cpu() for k, v in module.state_dict().items()}
    metadata = {
        "format_version": FORMAT_VERSION,
        "kind": kind,
        "config": json.dumps(dataclasses.asdict(config)),
        **(extra or {}),
    }
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(path), metadata=metadata)


def read_metadata(path: str | Path) -> dict[str, str]:
    """The string metadata of a safetensors file."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        with safe_open(str(path), framework="pt") as handle:
            return dict(handle.metadata() or {})
    except (SafetensorError, OSError) as error:
        raise CheckpointError(f"{path.name}: not a readable safetensors file ({error})") from error


def load_module(
    path: str | Path,
    kind: str,
    config_cls: type[ConfigT],
    build: Callable[[ConfigT], ModuleT],
    device: torch.device | str = "cpu",
) -> ModuleT:
    """Build the module from the stored config and load its weights strictly.

    Args:
        path: safetensors file written by :func:`save_module`.
        kind: expected label.
        config_cls: the config dataclass type.
        build: constructs the module from a config (no I/O inside).
        device: where the weights go.

    Returns:
        The module in eval mode on ``device``.
    """
    metadata = read_metadata(path)
    if metadata.get("kind") != kind:
        raise CheckpointError(f"{Path(path).name} holds a {metadata.get('kind')!r}, not {kind!r}")
    config = config_from_dict(config_cls, json.loads(metadata["config"]))
    module = build(config)
    state = load_file(str(path), device="cpu")
    expected = set(module.state_dict())
    missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
    if missing or unexpected:
        raise CheckpointError(
            f"{Path(path).name} does not fit {type(module).__name__}: "
            f"missing keys {missing}, unexpected keys {unexpected}"
        )
    module.load_state_dict(state, strict=True)
    return module.to(device).eval()
