"""Shared by the tests and scripts/screenshots.py: a tiny pipeline config, a local app
server and the flags for Debian's headless Chromium."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from sdr_core import PipelineConfig
from sdr_core.guidance import GuidanceConfig
from sdr_core.mde.bundled import MonoDepthConfig
from sdr_core.mspn import MSPNConfig

# Small enough that a whole refinement takes milliseconds; its outputs mean nothing.
TINY = PipelineConfig(
    GuidanceConfig(out_dim=8, stem_dim=4, encoder_dims=(8, 8, 8, 8), decoder_dims=(8,) * 5),
    MSPNConfig(guidance_dim=8, embed_dim=4, window=5),
)
TINY_MDE = MonoDepthConfig(encoder_dims=(8, 8, 8, 8), decoder_dims=(8, 8, 8, 8))

# Debian's Chromium, never a browser download; background networking off because this
# machine's network is closed.
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serve_tiny_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Launch app.py's UI around a tiny untrained pipeline on loopback; yields its URL."""
    with serve_blocks(tiny_demo(tmp_path_factory)) as url:
        yield url


def tiny_demo(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """app.py's UI (a gr.Blocks, not launched) around a tiny untrained pipeline."""
    import app
    from sdr_core import build_untrained_pipeline
    from studio.scene import load_examples

    pipeline = build_untrained_pipeline(TINY, device="cpu", seed=0)
    examples = load_examples(
        tmp_path_factory.mktemp("no_assets"), scratch_dir=tmp_path_factory.mktemp("examples")
    )
    return app.build_demo(pipeline, examples=examples, frame_interval_s=0)


@contextmanager
def serve_blocks(blocks: Any) -> Iterator[str]:
    """Queue and launch a gr.Blocks from app.py on a free loopback port; yields its URL."""
    import app

    app.enable_queue(blocks)
    port = free_port()
    blocks.launch(
        server_name="127.0.0.1",
        server_port=port,
        prevent_thread_lock=True,
        quiet=True,
        **app.launch_kwargs(),
    )
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        blocks.close()


def imported_packages(module: Any) -> set[str]:
    """Top-level packages a module's source imports (read from its syntax tree, not run)."""
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(module))
    return {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in (node.names if isinstance(node, ast.Import) else [ast.alias(node.module)])
    }
