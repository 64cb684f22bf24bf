"""Runners of the load generators and probes: one module per tool, one contract each
(``*_argv`` builds the child command, ``parse`` reads what it wrote); :func:`require`
is their shared check that a tool is installed."""

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
