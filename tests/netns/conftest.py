from __future__ import annotations

from collections.abc import Iterator

import pytest

from helpers import harness_processes, tb_namespaces


@pytest.fixture(autouse=True)
def nothing_left_behind() -> Iterator[None]:
    """Every root test must leave no tb- namespace and no harness process behind."""
    assert tb_namespaces() == [], "a previous test leaked namespaces"
    yield
    assert tb_namespaces() == []
    assert harness_processes() == []
