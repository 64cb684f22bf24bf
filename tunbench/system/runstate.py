"""The run lock and the run-state file: what a run holds, so it can be cleaned up.

``/run/tunbench/lock`` is held (flock) for the whole of ``tunbench run``/``matrix``; a
second run is refused at once. ``/run/tunbench/state-<pid>.json`` lists the namespaces and
the processes (PID + start time, so a recycled PID is never signalled) the run created
(and the interfaces a two-host agent shaped);
``tunbench clean`` takes the same lock and then reads every one of these files: with the
lock held, none belongs to a run in progress.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from tunbench.errors import BusyError
from tunbench.system.signals import deferred

STATE_DIR = Path(os.environ.get("TUNBENCH_STATE_DIR", "/run/tunbench"))
# A two-host controller's own lock and state (its ssh processes, its work directory):
# apart from the run lock, which the agent on this machine may hold if it is a host too.
CONTROLLER_DIR = "controller"


@dataclass
class RunState:
    """What one harness process has created and not yet removed."""

    path: Path
    namespaces: list[str] = field(default_factory=list)
    processes: dict[int, dict[str, Any]] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    qdiscs: list[str] = field(default_factory=list)  # interfaces a run shaped (tbf root 1:)

    def save(self) -> None:
        doc = {
            "owner": os.getpid(),
            "namespaces": self.namespaces,
            "processes": {str(k): v for k, v in self.processes.items()},
            "files": self.files,
            "qdiscs": self.qdiscs,
        }
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(doc))
        tmp.replace(self.path)

    def set_namespaces(self, names: list[str]) -> None:
        self.namespaces = names
        self.save()

    def add_process(self, pid: int, name: str) -> None:
        try:
            created = psutil.Process(pid).create_time()
        except psutil.Error:
            return
        self.processes[pid] = {"name": name, "create_time": created}
        self.save()

    def drop_process(self, pid: int) -> None:
        if self.processes.pop(pid, None) is not None:
            self.save()

    def add_file(self, path: str) -> None:
        self.files.append(path)
        self.save()

    def drop_file(self, path: str) -> None:
        if path in self.files:
            self.files.remove(path)
            self.save()

    def add_qdisc(self, ifname: str) -> None:
        self.qdiscs.append(ifname)
        self.save()

    def drop_qdisc(self, ifname: str) -> None:
        if ifname in self.qdiscs:
            self.qdiscs.remove(ifname)
            self.save()


_current: RunState | None = None


def current() -> RunState | None:
    """The state of the run in progress in this process, if any."""
    return _current


@contextmanager
def run_lock(state_dir: Path | None = None, doing: str = "run") -> Iterator[Path]:
    """Hold the global lock (flock) or raise BusyError at once; yields the state dir."""
    directory = state_dir or STATE_DIR
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise
            owner = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            raise BusyError(
                f"another tunbench run is in progress (pid {owner}); "
                f"wait for it or stop it before you {doing}"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield directory
    finally:
        os.close(fd)


@contextmanager
def locked_run(state_dir: Path | None = None) -> Iterator[RunState]:
    """Hold the global run lock and a state file for the duration of a run."""
    global _current
    with run_lock(state_dir) as directory:
        state = RunState(directory / f"state-{os.getpid()}.json")
        try:
            with deferred():
                state.save()
                _current = state
            yield state
        finally:
            with deferred():  # a second signal must not leave the file half updated
                _current = None
                if not (state.namespaces or state.processes or state.files or state.qdiscs):
                    state.path.unlink(missing_ok=True)
                else:
                    state.save()


def stale_states(state_dir: Path | None = None) -> list[tuple[Path, dict[str, Any]]]:
    """Every state file, with its contents ({} if unreadable): call it holding the run lock.

    Then no run is in progress, so every state file is a leftover, whatever its owner PID
    is doing now: after a crash that PID may well belong to another process, and a
    liveness check would keep the leftover forever. (Recorded child processes are still
    matched by PID *and* start time before anything is signalled.)
    """
    directory = state_dir or STATE_DIR
    out: list[tuple[Path, dict[str, Any]]] = []
    for path in sorted(directory.glob("state-*.json")):
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError):
            doc = {}
        out.append((path, doc if isinstance(doc, dict) else {}))
    return out
