"""Facts about the machine and the tools, recorded in every result file; and the revision
a row measured (:func:`revision`), which ``tunbench history`` files it under."""

from __future__ import annotations

import functools
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import tunbench
from tunbench.system.procs import run_output
from tunbench.system.sampler import online_cpus

REPO = Path(__file__).resolve().parent.parent


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def cpu_governor() -> str | None:
    """The CPU frequency governor(s) (``performance``, ``powersave``, ...), comma-separated
    where CPUs differ; None where the kernel exposes none (typical in a VM)."""
    found = set()
    for path in Path("/sys/devices/system/cpu").glob("cpu[0-9]*/cpufreq/scaling_governor"):
        try:
            found.add(path.read_text().strip())
        except OSError:
            continue
    return ",".join(sorted(found)) or None


def git_sha() -> str | None:
    """The commit of the tunbench checkout, with ``-dirty`` when it has local changes."""
    try:
        status, sha, _ = run_output(["git", "-C", str(REPO), "rev-parse", "HEAD"], 5.0)
        _, dirty, _ = run_output(["git", "-C", str(REPO), "status", "--porcelain", "-uno"], 5.0)
    except (OSError, subprocess.SubprocessError):
        return None
    if status != 0:
        return None
    return sha.strip() + ("-dirty" if dirty.strip() else "")


def describe_tree(path: Path) -> str | None:
    """``git describe --always --dirty`` of the git work tree ``path`` lies in (a file or
    a directory), None when it is in none or git is missing."""
    where = path if path.is_dir() else path.parent
    try:
        status, out, _ = run_output(
            ["git", "-C", str(where), "describe", "--always", "--dirty"], 5.0
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if status != 0:
        return None
    return out.strip() or None


def revision(kind: str, command: str, given: str | None) -> dict[str, Any]:
    """What revision a row measured, and how that is known: ``given`` (``--rev``) as it
    is; an external forwarder (``kind`` external) that is a path inside a git work tree:
    that tree's ``git describe``; otherwise (built-in variants, baselines) this project's
    commit. ``{"rev": ..., "source": "given" | "git-describe" | "tunbench" | None}``."""
    if given:
        return {"rev": given, "source": "given"}
    if kind == "external" and "/" in command:
        found = describe_tree(Path(command).resolve())
        return {"rev": found, "source": "git-describe" if found else None}
    if kind == "external":
        return {"rev": None, "source": None}  # a command on $PATH: nothing says which build
    sha = _static()["git_sha"]
    return {"rev": sha, "source": "tunbench" if sha else None}


@functools.cache
def _static() -> dict[str, Any]:
    from tunbench.load.iperf3 import check_available

    return {
        "kernel": platform.release(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "iperf3_version": check_available(),
        "tunbench_version": tunbench.__version__,
        "git_sha": git_sha(),
        "hostname": platform.node(),
        "cpu_governor": cpu_governor(),
    }


def collect() -> dict[str, Any]:
    """Machine and tool facts (cached per process), and the load on the machine now: the
    1/5/15-minute load average and the CPUs online, taken as each cell starts."""
    return {
        **_static(),
        "online_cpus": online_cpus(),
        "loadavg": list(os.getloadavg()),
    }
