"""Shared pytest configuration: markers, --runslow, GPU auto-skip, seeded generators, the
studio tests' fixtures (tests/studio_fixtures.py)."""

from __future__ import annotations

import pytest
import torch
from attention_inputs import BackendCase, backend_cases
from studio_fixtures import files, pipe, scene, session  # noqa: F401  (the studio tests')


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
