"""The load put through a cell: runners of the load generators and probes, one module per
tool with one contract each (``*_argv`` builds the child command, ``parse`` reads what it
wrote: :mod:`.iperf3`, :mod:`.iperf2`, :mod:`.sockperf`, :mod:`.ping`, verify's
:mod:`.stream`), the workloads built on them (:mod:`.workloads`, the zero-loss search in
:mod:`.search`) and what a measurement hands back (:mod:`.measurement`). :func:`require`
is the runners' shared check that a tool is installed."""

from __future__ import annotations

import shutil

from tunbench.errors import PrerequisiteError


def require(program: str, package: str, what: str | None = None) -> str:
    """The path of ``program``, or PrerequisiteError naming the Debian ``package``."""
    path = shutil.which(program)
    if path is None:
        raise PrerequisiteError(
            f"{what or program} is missing: install the Debian package {package}"
        )
    return path
