"""The ``engine`` fixture: every test that takes it runs once per offload engine."""

from __future__ import annotations

import pytest

from tunio.engine import Engine

from engines import ENGINES, require_engine


@pytest.fixture(scope="session", params=ENGINES)
def engine(request: pytest.FixtureRequest) -> Engine:
    return require_engine(str(request.param))
