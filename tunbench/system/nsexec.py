"""Run a command inside a named network namespace: ``python -m tunbench.system.nsexec NS [--parent
PID] [--cpus 0,1] -- CMD...``.

The harness uses this instead of ``ip netns exec`` so that the PID it starts is the
command's own PID after exec (what the sampler and the stop ladder need). It also sets
PR_SET_PDEATHSIG so the command gets SIGTERM if the harness dies without tearing down (a
backstop for ``kill -9``: the harness itself stops every child it started), and with
``--cpus`` pins it (and every thread it will start) to those CPUs. PDEATHSIG is set first
thing; if the harness (``--parent``) is already gone by then, nothing is run.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1


def main(argv: list[str]) -> int:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if len(argv) > 2 and argv[1] == "--parent":
        if os.getppid() != int(argv[2]):
            return 2  # the harness died before PDEATHSIG was set: it would never fire
        argv = [argv[0], *argv[3:]]
    cpus: set[int] | None = None
    if len(argv) > 2 and argv[1] == "--cpus":
        cpus = {int(c) for c in argv[2].split(",")}
        argv = [argv[0], *argv[3:]]
    if len(argv) < 3 or argv[1] != "--":
        print(
            "usage: python -m tunbench.system.nsexec NETNS [--parent PID] [--cpus LIST] -- "
            "CMD [ARGS...]",
            file=sys.stderr,
        )
        return 2
    netns, cmd = argv[0], argv[2:]
    if cpus:
        os.sched_setaffinity(0, cpus)
    from pyroute2 import netns as pr_netns

    try:
        pr_netns.setns(netns, flags=0)
    except OSError as exc:
        print(f"tunbench.system.nsexec: cannot enter namespace {netns}: {exc}", file=sys.stderr)
        return 2
    try:
        os.execvp(cmd[0], cmd)
    except OSError as exc:
        print(f"tunbench.system.nsexec: cannot run {cmd[0]}: {exc}", file=sys.stderr)
        return 127


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
