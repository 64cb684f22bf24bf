"""Flamegraphs of Python forwarders with py-spy (a separate pass, never the measured one).

py-spy attaches to the forwarder's PID and writes its SVG when stopped with SIGINT, which
is the first rung of :func:`tunbench.system.procs.stop`.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from tunbench.errors import PrerequisiteError


def py_spy_path() -> str:
    """py-spy from the same environment as this Python, else from PATH."""
    beside = Path(sys.executable).parent / "py-spy"
    if beside.exists():
        return str(beside)
    found = shutil.which("py-spy")
    if found is None:
        raise PrerequisiteError("py-spy is missing: install tunbench's dependencies")
    return found


def py_spy_argv(pid: int, svg: Path, native: bool = False, rate: int = 200) -> list[str]:
    argv = [
        py_spy_path(),
        "record",
        "--pid",
        str(pid),
        "--output",
        str(svg),
        "--format",
        "flamegraph",
        "--rate",
        str(rate),
        "--threads",
        "--nonblocking",
    ]
    return [*argv, "--native"] if native else argv
