"""``tunbench fleet``: the matrix on every host of an Ansible inventory, through
ansible-runner's Python API and the playbook ``deploy/fleet.yml``.

The controller does no scheduling of its own: Ansible runs the hosts in parallel (its
``forks``), each host one ``tunbench matrix`` at a time (the host's run lock; a host whose
lock is held is ``busy``). This module starts the playbook, follows its events to give
each host an outcome (``ok``, ``failed`` with its last error line, ``unreachable``,
``busy``) and its wall time, and writes ``fleet.json`` beside the hosts' result
directories (``<out>/fleet-<id>/<inventory name>/``).

Interruption: SIGINT or SIGTERM on the controller is only recorded while the playbook
runs (:func:`tunbench.system.signals.deferred`); ansible-runner's cancel callback sees it
and kills ``ansible-playbook``. That leaves the remote matrices running (an async task
outlives its controller), so ``deploy/fleet-stop.yml`` then runs on every host, shielded
from further signals: SIGINT to the matrix (its own teardown), ``tunbench clean``, the
work directory removed. Then the interruption is raised as usual (exit 130/143).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from tunbench.analysis import results
from tunbench.errors import Interrupted, PrerequisiteError, UsageError
from tunbench.system import signals

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
PLAYBOOK = DEPLOY / "fleet.yml"
STOP_PLAYBOOK = DEPLOY / "fleet-stop.yml"
OK, FAILED, UNREACHABLE, BUSY = "ok", "failed", "unreachable", "busy"
BUSY_MARK = "busy:"  # how deploy/fleet.yml's "report a busy host" task starts its message
STOP_TIMEOUT_S = 180.0
# the playbook's own bound beyond the matrix deadline: install, fetch, cleanup
JOB_SLACK_S = 900  # the stop playbook's own bound (each host: SIGINT, 30 s, clean)


@dataclass
class FleetOptions:
    inventory: Path
    matrix_args: list[str]  # specs, then matrix options
    out: Path = Path("results")
    deadline_s: int = 3600
    wait: bool = False
    redact: bool = False
    install: bool = True
    poll_s: int = 5
    limit: str | None = None  # an Ansible host pattern (--limit)
    extra_vars: dict[str, Any] = field(default_factory=dict)


@dataclass
class HostOutcome:
    outcome: str = OK
    error: str | None = None
    task: str | None = None  # the task that failed
    wall_s: float | None = None
    result_files: int = 0
    results_dir: str | None = None


def _last_line(text: Any) -> str | None:
    lines = [line.strip() for line in str(text or "").splitlines() if line.strip()]
    return lines[-1] if lines else None


def _error_of(res: dict[str, Any]) -> str:
    """The one line that says why a task failed: stderr's last line, else its message."""
    line = _last_line(res.get("stderr")) or _last_line(res.get("msg"))
    if res.get("rc") == 124:
        return f"deadline reached: the matrix was stopped ({line or 'rc 124'})"
    return line or _last_line(res.get("stdout")) or f"rc {res.get('rc')}"


def _created(event: dict[str, Any]) -> float:
    """When the event happened on the controller (its ``created`` stamp; now without)."""
    try:
        return datetime.fromisoformat(str(event["created"])).timestamp()
    except (KeyError, ValueError):
        return time.time()


class Events:
    """Folds ansible-runner's events into one :class:`HostOutcome` per host."""

    def __init__(self, progress: Callable[[str], None]) -> None:
        self.hosts: dict[str, HostOutcome] = {}
        self._first: dict[str, float] = {}
        self._last: dict[str, float] = {}
        self.progress = progress

    def __call__(self, event: dict[str, Any]) -> bool:
        data = event.get("event_data") or {}
        host = data.get("host")
        kind = event.get("event", "")
        if host:
            now = _created(event)
            self._first.setdefault(host, now)
            self._last[host] = now
            out = self.hosts.setdefault(host, HostOutcome())
            res = data.get("res") or {}
            if kind == "runner_on_unreachable" and out.outcome == OK:
                out.outcome, out.task = UNREACHABLE, data.get("task")
                out.error = _last_line(res.get("msg")) or "unreachable"
                self.progress(f"{host}: unreachable: {out.error}")
            elif kind == "runner_on_failed" and not data.get("ignore_errors"):
                if out.outcome == OK:  # the first failure; cleanup's after it do not count
                    msg = _error_of(res)
                    busy = str(res.get("msg", "")).startswith(BUSY_MARK)
                    out.outcome, out.task = (BUSY if busy else FAILED), data.get("task")
                    out.error = msg[len(BUSY_MARK) :].strip() if busy else msg
                    self.progress(f"{host}: {out.outcome}: {out.error}")
            elif kind == "runner_on_ok" and data.get("task", "").startswith("tunbench matrix"):
                self.progress(f"{host}: matrix done")
        return True  # keep the event in the runner's artifacts too

    def finish(self) -> None:
        for host, out in self.hosts.items():
            out.wall_s = round(self._last[host] - self._first[host], 1)


def source_archive(dest: Path) -> Path:
    """This checkout as ``dest`` (.tar.gz) for the hosts: the files git knows (tracked and
    untracked but not ignored), so no venv, results or build products travel."""
    try:
        out = subprocess.run(
            [
                "git",
                "-C",
                str(REPO),
                "ls-files",
                "-z",
                "--cached",
                "--others",
                "--exclude-standard",
            ],
            capture_output=True,
            check=True,
            timeout=30,
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise PrerequisiteError(f"cannot list the checkout's files with git: {exc}") from exc
    with tarfile.open(dest, "w:gz") as tar:
        for name in sorted(filter(None, out.decode().split("\0"))):
            if (REPO / name).is_file():
                tar.add(REPO / name, arcname=name)
    return dest


def _runner() -> Any:
    try:
        import ansible_runner
    except ImportError:
        raise PrerequisiteError(
            "tunbench fleet needs ansible-runner and ansible-core: pip install "
            "'tunbench[fleet]' (scripts/bootstrap.sh installs them)"
        ) from None
    here = Path(sys.executable).parent / "ansible-playbook"
    if not here.exists() and shutil.which("ansible-playbook") is None:
        raise PrerequisiteError(
            "ansible-playbook is missing: pip install 'ansible-core>=2.16,<2.20'"
        )
    return ansible_runner


def _envvars(private: Path) -> dict[str, str]:
    """Ansible's environment: no SSH connection kept open after the run (ControlPersist
    would leave a master process behind, unless the user set their own SSH arguments),
    local temporary files in the run's private directory, ansible-playbook of this venv.

    Pipelining sends each module over the task's one SSH connection instead of copying it
    first (a third of the connections; the tasks need no tty). The Python interpreter is
    found quietly unless an inventory names one (``ansible_python_interpreter``): as
    configuration, not a play variable, so the inventory's word wins. A user's own
    ANSIBLE_* environment wins over both."""
    env = {
        "ANSIBLE_LOCAL_TEMP": str(private / "tmp"),
        "ANSIBLE_RETRY_FILES_ENABLED": "0",
        "ANSIBLE_NOCOLOR": "1",
        "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
    }
    for key, value in (
        ("ANSIBLE_PIPELINING", "1"),
        ("ANSIBLE_PYTHON_INTERPRETER", "auto_silent"),
    ):
        env[key] = os.environ.get(key, value)
    if "ANSIBLE_SSH_ARGS" not in os.environ:
        env["ANSIBLE_SSH_ARGS"] = "-o ControlMaster=no"
    return env


def _play(
    runner: Any,
    playbook: Path,
    opts: FleetOptions,
    private: Path,
    extravars: dict[str, Any],
    events: Events | None,
    cancel: Callable[[], bool] | None,
    timeout: float | None = None,
) -> Any:
    kwargs: dict[str, Any] = {
        "private_data_dir": str(private),
        "playbook": str(playbook),
        "inventory": str(opts.inventory.resolve()),
        "extravars": extravars,
        "envvars": _envvars(private),
        "quiet": True,
        "settings": {"pexpect_timeout": 0.5, "suppress_ansible_output": True},
        "cancel_callback": cancel or (lambda: False),
    }
    if events is not None:
        kwargs["event_handler"] = events
    if opts.limit:
        kwargs["limit"] = opts.limit
    if timeout:
        kwargs["timeout"] = int(timeout)
    return runner.run(**kwargs)


def run_fleet(opts: FleetOptions, progress: Callable[[str], None]) -> tuple[Path, dict[str, Any]]:
    """Run the matrix on every host; returns the fleet directory and what ``fleet.json``
    says. If the controller got SIGINT/SIGTERM, the hosts were stopped first and the
    signal is still pending: the caller's next :func:`tunbench.system.signals.checkpoint`
    raises it (so the summary can be printed before the exit status 130/143)."""
    runner = _runner()
    if not opts.inventory.exists():
        raise UsageError(f"inventory {opts.inventory} does not exist")
    fleet_id = secrets.token_hex(4)
    fleet_dir = (opts.out / f"fleet-{fleet_id}").resolve()
    results.check_writable(fleet_dir)
    private = Path(tempfile.mkdtemp(prefix=f"tb-fleet-{fleet_id}-"))
    extravars = {
        **opts.extra_vars,
        "tunbench_fleet_id": fleet_id,
        "tunbench_matrix_args": opts.matrix_args,
        "tunbench_fetch_dir": str(fleet_dir),
        "tunbench_deadline": opts.deadline_s,
        "tunbench_wait": opts.wait,
        "tunbench_redact": opts.redact,
        "tunbench_install": opts.install,
        "tunbench_poll": opts.poll_s,
    }
    events = Events(progress)
    started, t0 = time.strftime("%Y-%m-%dT%H:%M:%S%z"), time.monotonic()
    doc: dict[str, Any] = {}
    try:
        with signals.deferred():  # a signal is only recorded; the cancel callback acts on it
            if opts.install:
                extravars["tunbench_archive"] = str(source_archive(private / "tunbench.tar.gz"))
            progress(f"fleet {fleet_id}: {' '.join(opts.matrix_args) or 'default matrix'}")
            run = _play(
                runner,
                PLAYBOOK,
                opts,
                private,
                extravars,
                events,
                lambda: bool(signals.pending()),
                opts.deadline_s + JOB_SLACK_S,
            )
            with signals.shielded():  # from here to fleet.json, whatever arrives
                interrupted = bool(signals.pending()) or run.status == "canceled"
                if interrupted or run.status == "timeout":  # ansible-playbook was killed
                    what = "interrupted" if interrupted else "timed out"
                    progress(f"{what}: stopping the matrices on every host")
                    stop = STOP_PLAYBOOK
                    _play(runner, stop, opts, private, extravars, None, None, STOP_TIMEOUT_S)
                events.finish()
                doc = _summary(fleet_id, opts, events, fleet_dir, started, t0, interrupted)
                results.write(doc, fleet_dir, Path(results.FLEET_FILE).stem)
    except Interrupted:
        # still pending: the caller's next checkpoint raises it again, after the summary
        if not doc:
            raise
    finally:
        shutil.rmtree(private, ignore_errors=True)
    return fleet_dir, doc


def _summary(
    fleet_id: str,
    opts: FleetOptions,
    events: Events,
    fleet_dir: Path,
    started: str,
    t0: float,
    interrupted: bool,
) -> dict[str, Any]:
    for host, out in events.hosts.items():
        mine = fleet_dir / host
        if mine.is_dir():
            out.results_dir = host
            out.result_files = len(results.load_dir(mine, on_skip=lambda _paths: None))
        if interrupted and out.outcome == OK:
            out.outcome, out.error = FAILED, "interrupted on the controller"
    return {
        "fleet_id": fleet_id,
        "inventory": str(opts.inventory),
        "matrix_args": opts.matrix_args,
        "deadline_s": opts.deadline_s,
        "started": started,
        "wall_s": round(time.monotonic() - t0, 1),
        "interrupted": interrupted,
        "redacted": opts.redact,
        "hosts": {host: asdict(out) for host, out in sorted(events.hosts.items())},
    }


def load_summary(fleet_dir: Path) -> dict[str, Any]:
    """``fleet.json`` of a fleet directory."""
    doc: dict[str, Any] = json.loads((fleet_dir / results.FLEET_FILE).read_text())
    return doc
