"""Shared test fixtures: the root-prerequisite policy for tests marked ``root``."""

from __future__ import annotations

import os
import shutil

import pytest


def root_missing() -> str | None:
    """Why the root tests cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root"
    if not os.path.exists("/dev/net/tun"):
        return "needs /dev/net/tun"
    if shutil.which("iperf3") is None:
        return "needs iperf3 (Debian iperf3, libiperf0)"
    try:
        from tunbench.load.iperf3 import check_available

        check_available()
    except Exception as exc:
        return f"needs libiperf: {exc}"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = root_missing()
    if reason is None:
        return
    in_ci = os.environ.get("CI", "").lower() in ("1", "true", "yes")
    for item in items:
        if "root" in item.keywords:
            if in_ci:
                item.add_marker(pytest.mark.usefixtures("_fail_missing_prerequisite"))
            else:
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture
def _fail_missing_prerequisite() -> None:
    pytest.fail(f"CI=true and a root prerequisite is missing: {root_missing()}")
