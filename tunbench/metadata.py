"""Facts about the machine and the tools, recorded in every result file."""

from __future__ import annotations

import functools
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import tunbench

REPO = Path(__file__).resolve().parent.parent


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def git_sha() -> str | None:
    """The commit of the tunbench checkout, with ``-dirty`` when it has local changes."""
    try:
        sha = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain", "-uno"],
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return sha + ("-dirty" if dirty else "")


@functools.cache
def _static() -> dict[str, Any]:
    from tunbench.runners.iperf3 import check_available

    return {
        "kernel": platform.release(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "iperf3_version": check_available(),
        "tunbench_version": tunbench.__version__,
        "git_sha": git_sha(),
        "hostname": platform.node(),
    }


def collect() -> dict[str, Any]:
    """Machine and tool facts (cached per process)."""
    return dict(_static())
