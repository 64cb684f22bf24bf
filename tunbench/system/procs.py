"""Child processes: start inside a namespace, stop with one bounded escalation ladder.

Every process the harness starts goes through :func:`spawn` (or :func:`run_output` for a
short helper command whose output it reads) and is stopped by :func:`stop` (SIGINT, then
SIGTERM, then SIGKILL, each with a bounded wait, always reaped). A child is registered
(``spawn(register=...)``) before any signal is acted on, so none ever exists unrecorded.

A child may be a process tree (a launcher and its daemons): :meth:`Child.record_tree`
records its descendants and process-group members (PID *and* start time) while it runs,
and :func:`stop` stops the group, then whatever of the recorded tree is left. With
:func:`adopt_orphans` the harness is a child subreaper: a daemon whose launcher died is
re-parented to the harness, not to init, so it can still be stopped and reaped
(:func:`reap_adopted`). Only PIDs we started, or that descend from them, are ever
signalled; nothing is looked up or killed by name.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from tunbench.system.signals import checkpoint, deferred

PR_SET_PDEATHSIG = 1
STOP_LADDER: tuple[tuple[signal.Signals, float], ...] = (
    (signal.SIGINT, 2.0),
    (signal.SIGTERM, 2.0),
    (signal.SIGKILL, 5.0),
)
# For what is left of a tree once its leader is gone (it had the group's SIGINT, or
# ignores it: a shell's background jobs do).
LEFTOVER_LADDER: tuple[tuple[signal.Signals, float], ...] = (
    (signal.SIGTERM, 2.0),
    (signal.SIGKILL, 5.0),
)
PR_SET_CHILD_SUBREAPER = 36

# Every Popen we started, by PID, so reap_adopted() never takes one's exit status.
_started: weakref.WeakValueDictionary[int, subprocess.Popen[Any]] = weakref.WeakValueDictionary()
_adopting = False


@dataclass
class Child:
    """A process we started, with where its output goes."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path | None = None
    argv: list[str] = field(default_factory=list)
    # Descendants and process-group members seen so far (psutil checks PID + start time)
    tree: dict[int, psutil.Process] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def record_tree(self) -> list[psutil.Process]:
        """Add the child's current descendants and process-group members to :attr:`tree`;
        returns the ones not seen before.

        Only while the child is unreaped: its PID, and so its group ID, cannot belong to
        anyone else then. Recorded processes stay recorded when they leave the group
        (setsid) or lose their parent, so :func:`stop` still finds them.
        """
        if self.popen.returncode is not None:
            return []
        found: list[psutil.Process] = []
        with contextlib.suppress(psutil.Error):
            found += psutil.Process(self.pid).children(recursive=True)
        for proc in psutil.process_iter():
            if proc.pid != self.pid:
                with contextlib.suppress(OSError):
                    if os.getpgid(proc.pid) == self.pid:
                        found.append(proc)
        new = [proc for proc in found if proc.pid not in self.tree]
        for proc in new:
            self.tree[proc.pid] = proc
        return new

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
    """The argv that runs ``argv`` inside ``netns`` (via :mod:`tunbench.system.nsexec`), or
    as is."""
    if netns is None:
        return list(argv)
    pin = ["--cpus", ",".join(map(str, cpus))] if cpus else []
    parent = ["--parent", str(os.getpid())]
    return [sys.executable, "-m", "tunbench.system.nsexec", netns, *parent, *pin, "--", *argv]


def spawn(
    name: str,
    argv: Sequence[str],
    *,
    netns: str | None = None,
    log_path: Path | None = None,
    env: dict[str, str] | None = None,
    cpus: Sequence[int] | None = None,
    parent_death_signal: signal.Signals | None = None,
    register: Callable[[Child], None] | None = None,
    pipes: bool = False,
) -> Child:
    """Start ``argv`` (inside ``netns`` if given) in its own process group.

    Its own group keeps a terminal's Ctrl-C away from it, so the harness stops children in
    order. Output goes to ``log_path`` (or /dev/null). ``register`` records the child (its
    stop at teardown, the run state) before SIGINT/SIGTERM can interrupt: from before the
    fork until it returns they are deferred (:func:`tunbench.system.signals.deferred`) and raised
    only after, with the child recorded. Should ``register`` fail, the child is stopped.
    With ``parent_death_signal`` the child gets that signal when its parent dies, even by
    SIGKILL (PR_SET_PDEATHSIG; only for single-threaded parents: it fires when the forking
    *thread* ends). With ``pipes`` its stdin and stdout are pipes to us (an agent's
    channel) and only its stderr goes to ``log_path``.
    """
    full = nsexec_argv(netns, argv, cpus)
    with deferred():
        out = open(log_path, "wb") if log_path is not None else subprocess.DEVNULL  # noqa: SIM115
        try:
            popen = subprocess.Popen(
                full,
                stdin=subprocess.PIPE if pipes else subprocess.DEVNULL,
                stdout=subprocess.PIPE if pipes else out,
                stderr=out if pipes else subprocess.STDOUT,
                process_group=0,
                env=env,
                preexec_fn=_death_signal(parent_death_signal) if parent_death_signal else None,
            )
        finally:
            if log_path is not None and not isinstance(out, int):
                out.close()
        _started[popen.pid] = popen
        child = Child(name=name, popen=popen, log_path=log_path, argv=full)
        if register is not None:
            try:
                register(child)
            except BaseException:
                stop(child)
                raise
    return child


def spawn_piped(name: str, argv: Sequence[str], log_path: Path) -> Child:
    """:func:`spawn` with stdin and stdout as pipes to us, stderr to ``log_path``."""
    return spawn(name, argv, log_path=log_path, pipes=True)


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
            _started[popen.pid] = popen
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


def _death_signal(sig: signal.Signals) -> Callable[[], None]:
    def set_it() -> None:  # runs in the child between fork and exec
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(sig))

    return set_it


def stop(child: Child, ladder: Sequence[tuple[signal.Signals, float]] = STOP_LADDER) -> int | None:
    """Stop ``child`` and its process tree with bounded waits and reap it; returns its exit
    status.

    The ladder's signals go to the child's process group (which it leads), so helpers it
    forked go too. Then any recorded member of its tree still running (one that ignores
    SIGINT, or left the group) gets SIGTERM, then SIGKILL; those that are ours to reap (we
    adopted them) are reaped. Already-exited children are just reaped, with their trees.
    """
    proc = child.popen
    child.record_tree()  # while it is unreaped: its descendants and group are findable
    if proc.poll() is None:
        for sig, wait_s in ladder:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)
            try:
                proc.wait(timeout=wait_s)
                break
            except subprocess.TimeoutExpired:
                continue
    stop_processes(child.tree.values())
    return proc.poll()


def _gone(proc: psutil.Process) -> bool:
    """Exited: no such process (or another one under its PID), reaped here if it is our
    child, or a zombie whose parent is not us (it must reap it)."""
    try:
        if not proc.is_running():
            return True
        if proc.ppid() == os.getpid():
            with contextlib.suppress(ChildProcessError):
                return os.waitpid(proc.pid, os.WNOHANG)[0] != 0
        return proc.status() == psutil.STATUS_ZOMBIE
    except psutil.Error:
        return True


def stop_processes(
    procs: Iterable[psutil.Process],
    ladder: Sequence[tuple[signal.Signals, float]] = LEFTOVER_LADDER,
) -> None:
    """Stop processes we are entitled to (recorded descendants, adopted orphans), each
    checked by PID and start time before any signal; bounded waits; reaps our own."""
    left = [p for p in procs if not _gone(p)]
    for sig, wait_s in ladder:
        if not left:
            return
        for p in left:
            with contextlib.suppress(psutil.Error):
                p.send_signal(sig)
        deadline = time.monotonic() + wait_s
        while left and time.monotonic() < deadline:
            time.sleep(0.02)
            left = [p for p in left if not _gone(p)]


def adopt_orphans() -> None:
    """Make this process a child subreaper (PR_SET_CHILD_SUBREAPER), for the CLI's runs.

    A process whose parent exits is then re-parented to the harness instead of to init,
    so a forwarder's daemon whose launcher died can still be found, stopped and reaped by
    :func:`reap_adopted` (and an init that never reaps cannot keep it as a zombie).
    """
    global _adopting
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0:
        _adopting = True


def reap_adopted() -> list[str]:
    """Stop and reap every process this subreaper adopted (a no-op unless
    :func:`adopt_orphans` was called); returns a description of each.

    Adopted means: a child of ours that no Popen of ours started. Call it from the main
    thread between steps (teardown), when no fork helper of pyroute2 is in flight.
    """
    if not _adopting:
        return []
    ours = {pid for pid, p in _started.items() if p.returncode is None}
    adopted = []
    with contextlib.suppress(psutil.Error):
        adopted = [p for p in psutil.Process().children() if p.pid not in ours]
    said = []
    for p in adopted:
        with contextlib.suppress(psutil.Error):
            said.append(f"{p.pid} ({p.name()})")
    stop_processes(adopted)
    return said


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
