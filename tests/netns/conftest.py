from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from helpers import harness_processes, tb_namespaces, tb_tempdirs


@pytest.fixture(scope="session", autouse=True)
def clean_start(request: pytest.FixtureRequest) -> None:
    """Start from a clean machine: remove what an earlier, killed run left (and say so).

    A session cut off mid-test leaves tb- namespaces that would otherwise fail every test
    here at setup. A run still in progress is not touched: clean refuses and we fail.
    """
    if os.geteuid() != 0:
        return
    from tunbench.cell.cleanup import clean

    removed = clean()
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if removed and capture is not None:
        with capture.global_and_fixture_disabled():
            print(f"\ncleaned leftovers of an earlier run: {'; '.join(removed)}")


@pytest.fixture(autouse=True)
def nothing_left_behind() -> Iterator[None]:
    """Every root test must leave no tb- namespace, temp dir or harness process behind."""
    assert tb_namespaces() == [], "a previous test leaked namespaces"
    before = tb_tempdirs()
    yield
    assert tb_namespaces() == []
    assert harness_processes() == []
    assert tb_tempdirs() <= before
