"""Child processes: start inside a namespace, stop with one bounded escalation ladder.

Every process the harness starts goes through :func:`spawn` (or :func:`run_output` for a
short helper command whose output it reads) and is stopped by :func:`stop` (SIGINT, then
SIGTERM, then SIGKILL, each with a bounded wait, always reaped). A child is registered
(``spawn(register=...)``) before any signal is acted on, so none ever exists unrecorded.
Only PIDs we started are ever signalled; nothing is looked up or killed by name.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tunbench.signals import checkpoint, deferred

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
    parent = ["--parent", str(os.getpid())]
    return [sys.executable, "-m", "tunbench.nsexec", netns, *parent, *pin, "--", *argv]


def spawn(
    name: str,
    argv: Sequence[str],
    *,
    netns: str | None = None,
    log_path: Path | None = None,
    env: dict[str, str] | None = None,
    cpus: Sequence[int] | None = None,
    register: Callable[[Child], None] | None = None,
) -> Child:
    """Start ``argv`` (inside ``netns`` if given) in its own process group.

    Its own group keeps a terminal's Ctrl-C away from it, so the harness stops children in
    order. Output goes to ``log_path`` (or /dev/null). ``register`` records the child (its
    stop at teardown, the run state) before SIGINT/SIGTERM can interrupt: from before the
    fork until it returns they are deferred (:func:`tunbench.signals.deferred`) and raised
    only after, with the child recorded. Should ``register`` fail, the child is stopped.
    """
    full = nsexec_argv(netns, argv, cpus)
    with deferred():
        out = open(log_path, "wb") if log_path is not None else subprocess.DEVNULL  # noqa: SIM115
        try:
            popen = subprocess.Popen(
                full,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                process_group=0,
                env=env,
            )
        finally:
            if log_path is not None and not isinstance(out, int):
                out.close()
        child = Child(name=name, popen=popen, log_path=log_path, argv=full)
        if register is not None:
            try:
                register(child)
            except BaseException:
                stop(child)
                raise
    return child


def run_output(argv: Sequence[str], timeout: float) -> tuple[int, str, str]:
    """Run a short helper command (``perf script``, ``git``) to its end: its exit status,
    stdout and stderr (text, undecodable bytes replaced).

    Started deferred like :func:`spawn`, waited with checkpoints, and killed and reaped on
    any exception, an interrupt included. Raises :class:`subprocess.TimeoutExpired` past
    ``timeout`` (the command killed) and OSError if it cannot start.
    """
    popen: subprocess.Popen[str] | None = None
    try:
        with deferred():
            popen = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                errors="replace",
            )
        deadline = time.monotonic() + timeout
        while True:
            try:
                out, err = popen.communicate(timeout=0.1)
                return popen.returncode, out, err
            except subprocess.TimeoutExpired:
                checkpoint()
                if time.monotonic() >= deadline:
                    raise subprocess.TimeoutExpired(list(argv), timeout) from None
    except BaseException:
        if popen is not None:
            popen.kill()
            popen.wait()
            for pipe in (popen.stdout, popen.stderr):
                if pipe is not None:
                    pipe.close()
        raise


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
