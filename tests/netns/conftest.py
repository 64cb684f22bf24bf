from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers import harness_processes, tb_namespaces


def tb_tempdirs() -> set[Path]:
    return set(Path(tempfile.gettempdir()).glob("tb-*"))


@pytest.fixture(autouse=True)
def nothing_left_behind() -> Iterator[None]:
    """Every root test must leave no tb- namespace, temp dir or harness process behind."""
    assert tb_namespaces() == [], "a previous test leaked namespaces"
    before = tb_tempdirs()
    yield
    assert tb_namespaces() == []
    assert harness_processes() == []
    assert tb_tempdirs() <= before
