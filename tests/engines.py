"""The offload engines under test, for the ``engine`` fixtures of tests/unit and tests/bench.

The native engine is optional at install time, so without it its tests skip; with CI=true a
missing native module fails them instead, like the other prerequisites (see conftest.py).
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from tunio.engine import ENGINES, Engine, EngineUnavailable, get_engine, native_available

__all__ = ["ENGINES", "in_ci", "require_engine", "with_engine_marks"]


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


def with_engine_marks(specs: list[str]) -> list[Any]:
    """pytest parameters for ``specs``: the ones that ask for ``--engine native`` skip when
    the native module is not built here, and those of a variant that cannot run here (the
    uring-* ones without io_uring) skip too (both are left to fail under CI=true)."""
    if in_ci():
        return list(specs)
    from tunbench.cell.variants import VARIANTS

    native = native_available()
    out: list[Any] = []
    for s in specs:
        variant = VARIANTS.get(s.split()[0])
        why = variant.unavailable() if variant is not None else None
        if why is None and "--engine native" in s and not native:
            why = "the native offload engine is not built"
        out.append(pytest.param(s, marks=pytest.mark.skip(reason=why)) if why else s)
    return out
