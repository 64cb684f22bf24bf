"""The offload engines under test, for the ``engine`` fixtures of tests/unit and tests/bench.

The native engine is optional at install time, so without it its tests skip; with CI=true a
missing native module fails them instead, like the other prerequisites (see conftest.py).
"""

from __future__ import annotations

import os

import pytest

from tunio.engine import ENGINES, Engine, EngineUnavailable, get_engine

__all__ = ["ENGINES", "in_ci", "require_engine"]


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require_engine(name: str) -> Engine:
    """The engine, or skip (fail under CI=true) when it is not built here."""
    try:
        return get_engine(name)
    except EngineUnavailable as exc:
        if in_ci():
            pytest.fail(f"CI=true and the {name} engine is missing: {exc}")
        pytest.skip(str(exc))
