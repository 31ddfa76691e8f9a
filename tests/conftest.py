"""Shared pytest configuration: markers, --runslow, GPU auto-skip, seeded generators, the
studio tests' fixtures (tests/studio_fixtures.py)."""

from __future__ import annotations

import os
import shutil
import tempfile

# Gradio caches every served file under GRADIO_TEMP_DIR (default /tmp/gradio, never cleaned):
# the test servers write into a folder of this session's own, removed when the session ends.
# Set here, before any test module imports gradio (it reads the variable at import time).
_OWN_GRADIO_TEMP = "GRADIO_TEMP_DIR" not in os.environ
if _OWN_GRADIO_TEMP:
    os.environ["GRADIO_TEMP_DIR"] = tempfile.mkdtemp(prefix="mspn-tests-gradio-")

import pytest  # noqa: E402
import torch  # noqa: E402
from attention_inputs import BackendCase, backend_cases  # noqa: E402
from studio_fixtures import files, pipe, scene, session  # noqa: E402, F401  (studio tests')


def pytest_unconfigure(config: pytest.Config) -> None:
    """Remove the session's Gradio cache (only the folder this conftest made)."""
    if _OWN_GRADIO_TEMP:
        shutil.rmtree(os.environ["GRADIO_TEMP_DIR"], ignore_errors=True)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--runslow", action="store_true", default=False, help="run tests marked slow")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skip_slow = pytest.mark.skip(reason="slow: pass --runslow to run")
    skip_gpu = pytest.mark.skip(reason="gpu: CUDA is not available on this machine")
    run_slow = config.getoption("--runslow")
    has_cuda = torch.cuda.is_available()
    for item in items:
        if "slow" in item.keywords and not run_slow:
            item.add_marker(skip_slow)
        if "gpu" in item.keywords and not has_cuda:
            item.add_marker(skip_gpu)


@pytest.fixture
def generator() -> torch.Generator:
    """A seeded CPU generator so no test depends on global RNG order."""
    return torch.Generator().manual_seed(0)


@pytest.fixture(params=backend_cases())
def attention_backend(request: pytest.FixtureRequest) -> BackendCase:
    """Every attention backend on each of its devices (see tests/attention_inputs.py)."""
    return request.param
