"""Child processes: start inside a namespace, stop with one bounded escalation ladder.

Every process the harness starts goes through :func:`spawn` and is stopped by :func:`stop`
(SIGINT, then SIGTERM, then SIGKILL, each with a bounded wait, always reaped). Only PIDs we
started are ever signalled; nothing is looked up or killed by name.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tunbench.signals import checkpoint

PR_SET_PDEATHSIG = 1
STOP_LADDER: tuple[tuple[signal.Signals, float], ...] = (
    (signal.SIGINT, 2.0),
    (signal.SIGTERM, 2.0),
    (signal.SIGKILL, 5.0),
)


@dataclass
class Child:
    """A process we started, with where its output goes."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path | None = None
    argv: list[str] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def poll(self) -> int | None:
        return self.popen.poll()

    def stderr_tail(self, lines: int = 5) -> str:
        """The last lines the child wrote to its log (stdout and stderr), for error reports."""
        if self.log_path is None or not self.log_path.exists():
            return ""
        text = self.log_path.read_text(errors="replace").strip().splitlines()
        return "\n".join(text[-lines:])


def nsexec_argv(
    netns: str | None,
    argv: Sequence[str],
    cpus: Sequence[int] | None = None,
) -> list[str]:
    """The argv that runs ``argv`` inside ``netns`` (via :mod:`tunbench.nsexec`), or as is."""
    if netns is None:
        return list(argv)
    pin = ["--cpus", ",".join(map(str, cpus))] if cpus else []
    return [sys.executable, "-m", "tunbench.nsexec", netns, *pin, "--", *argv]


def spawn(
    name: str,
    argv: Sequence[str],
    *,
    netns: str | None = None,
    log_path: Path | None = None,
    env: dict[str, str] | None = None,
    cpus: Sequence[int] | None = None,
    parent_death_signal: signal.Signals | None = None,
) -> Child:
    """Start ``argv`` (inside ``netns`` if given) in its own process group.

    Its own group keeps a terminal's Ctrl-C away from it, so the harness stops children in
    order. Output goes to ``log_path`` (or /dev/null). With ``parent_death_signal`` the
    child gets that signal when its parent dies, even by SIGKILL (PR_SET_PDEATHSIG; only
    for single-threaded parents: it fires when the forking *thread* ends).
    """
    full = nsexec_argv(netns, argv, cpus)
    out = open(log_path, "wb") if log_path is not None else subprocess.DEVNULL  # noqa: SIM115
    try:
        popen = subprocess.Popen(
            full,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            process_group=0,
            env=env,
            preexec_fn=_death_signal(parent_death_signal) if parent_death_signal else None,
        )
    finally:
        if log_path is not None and not isinstance(out, int):
            out.close()
    return Child(name=name, popen=popen, log_path=log_path, argv=full)


def _death_signal(sig: signal.Signals) -> Callable[[], None]:
    def set_it() -> None:  # runs in the child between fork and exec
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(sig))

    return set_it


def stop(child: Child, ladder: Sequence[tuple[signal.Signals, float]] = STOP_LADDER) -> int | None:
    """Stop ``child`` with bounded waits and reap it; returns its exit status.

    Already-exited children are just reaped. The signal goes to the child's process group
    (which it leads), so helpers it forked go too.
    """
    proc = child.popen
    if proc.poll() is not None:
        return proc.returncode
    for sig, wait_s in ladder:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            return proc.wait(timeout=wait_s)
        except subprocess.TimeoutExpired:
            continue
    return proc.poll()


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.02) -> bool:
    """Poll ``predicate()`` until it is true (True) or ``timeout`` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while True:
        checkpoint()
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
