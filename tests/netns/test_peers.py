"""Every peer row with its real daemons: TCP through it, ``verify`` through it, and nothing
left behind (namespace, device, daemon, control socket, temporary directory) after
success; and, through one launcher of each shape (``INTERRUPTED``), after SIGINT and
after kill -9 followed by ``tunbench clean``.

A daemon that is not installed skips its tests, or fails them with ``CI=true``. A row that
cannot forward at all (``CANNOT_FORWARD``: Yggdrasil) is checked to fail with its reason.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tunbench.analysis import results
from tunbench.peers.registry import CANNOT_FORWARD, LAUNCHERS
from tunbench.peers.wireguard_go import SOCKET_DIR
from tunbench.system.runstate import STATE_DIR

from helpers import (
    REPO,
    SESSION_MARK,
    TUNBENCH,
    run_json,
    session_processes,
    tb_namespaces,
    tunbench,
)

pytestmark = [pytest.mark.root, pytest.mark.timeout(90)]

PEERS = sorted(set(LAUNCHERS) - set(CANNOT_FORWARD))
DAEMONS = {p.program for p in LAUNCHERS.values()}
# daemon processes a launch runs, where not two: vtund's server forks one per session
PROCESSES = {"peer-vtun": 3}
# Daemons that write their process title over their environment (setproctitle), so the
# session mark cannot be read back: those are checked by PID and start time only.
TITLE_OVER_ENVIRON = {"vtund"}
# The interrupt paths (SIGINT; kill -9 + clean) through one launcher of each shape, not
# all of them (the suite's time budget): two plain daemons stopped by SIGTERM (OpenVPN),
# a daemon that ignores SIGINT (tinc), control sockets outside the private directory
# (wireguard-go), a server that forks the process owning a device (vtun). fastd,
# QuickTun, Nebula and GVPE are the first shape again; their run and verify still run.
INTERRUPTED = [
    p for p in PEERS if p in {"peer-openvpn", "peer-tinc", "peer-wireguard-go", "peer-vtun"}
]


@pytest.fixture
def peer(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    launcher = LAUNCHERS[name]
    crypto = next(iter(launcher.crypto))
    missing = [
        f"{prog} (Debian package {pkg})"
        for prog, pkg in launcher().needs(crypto).items()
        if shutil.which(prog) is None
    ]
    if missing:
        why = f"{name} needs {', '.join(missing)}"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"CI=true and {why}")
        pytest.skip(why)
    return name


def peer_leftovers() -> list[str]:
    """Daemon processes, launchers and tb- control sockets still there (zombies hold nothing)."""
    found = [str(p) for p in sorted(SOCKET_DIR.glob("tb-*.sock"))]
    return found + session_processes(lambda name, cmd: name in DAEMONS or "tunbench.peers." in cmd)


@pytest.fixture
def background() -> Iterator[list[subprocess.Popen[str]]]:
    """Harness processes a test starts; stopped (SIGTERM) if a failed test left them."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(30)
        if proc.stderr is not None:
            proc.stderr.close()


def start_run(
    name: str, results_dir: Path, background: list[subprocess.Popen[str]]
) -> subprocess.Popen[str]:
    """``tunbench run`` in the background, returned once it measures."""
    proc = subprocess.Popen(
        [*TUNBENCH, "run", name, "--duration", "20", "--results-dir", str(results_dir)],
        cwd=REPO,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    background.append(proc)
    assert proc.stderr is not None
    for line in proc.stderr:
        if "measure" in line:
            return proc
    pytest.fail(f"{name}: the run ended before it measured (status {proc.wait()})")


def recorded(harness: subprocess.Popen[str], prefix: str) -> list[psutil.Process]:
    """The live processes the run state lists for this harness under names with ``prefix``,
    checked by PID and start time as ``tunbench clean`` does."""
    doc = json.loads((STATE_DIR / f"state-{harness.pid}.json").read_text())
    procs = []
    for pid, info in doc["processes"].items():
        if not info["name"].startswith(prefix):
            continue
        try:
            proc = psutil.Process(int(pid))
            same = abs(proc.create_time() - info["create_time"]) < 0.01
        except psutil.NoSuchProcess:
            continue  # a member that has ended (e.g. the launcher's pyroute2 netns helper)
        if same:  # else the PID now belongs to another process
            procs.append(proc)
    return procs


def daemons_of(harness: subprocess.Popen[str], peer: str) -> list[psutil.Process]:
    """The daemons (two, or PROCESSES[peer]), as recorded in the run state."""
    procs = recorded(harness, "forwarder tree")
    names = {p.name() for p in procs}
    assert len(procs) == PROCESSES.get(peer, 2), procs
    assert len(names) == 1 and names <= DAEMONS, procs
    # the leftover check sees only marked processes: a daemon that lost the mark would hide
    mark = os.environ[SESSION_MARK]
    assert all(
        p.name() in TITLE_OVER_ENVIRON or p.environ().get(SESSION_MARK) == mark for p in procs
    )
    return procs


def running(procs: list[psutil.Process]) -> list[psutil.Process]:
    """Those still running (PID and start time checked; a zombie has ended)."""
    alive = []
    for p in procs:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                alive.append(p)
        except psutil.NoSuchProcess:
            pass
    return alive


@pytest.mark.parametrize("peer", PEERS, indirect=True)
def test_peer_forwards_and_verifies(peer: str, tmp_path: Path) -> None:
    rec = run_json(peer, tmp_path, "--verify")  # the checks in the same cell, after the run
    assert rec["status"] == "ok"
    assert rec["verify"]["ok"] is True, rec["verify"]
    assert set(rec["verify"]["checks"]) == {"ping", "stream", "stream-udp-gso", "stream-udp-large"}
    assert rec["gbps"] > 0.01
    assert rec["cpu_avg"] > 0 and rec["mem_max_mb"] > 0.5  # the daemons, not the launcher
    doc = results.load(Path(rec["result_file"]))
    fwd = doc["forwarder"]
    assert fwd["daemon"] == LAUNCHERS[peer].program and fwd["version"]
    assert len(fwd["processes"]) == 2
    assert fwd["exit_reason"] == "stopped by signal 2"  # the harness's SIGINT, forwarded
    assert doc["cell"]["mode"] == f"peer ({LAUNCHERS[peer].program})"
    assert peer_leftovers() == []


@pytest.mark.parametrize("peer", INTERRUPTED, indirect=True)
def test_peer_interrupted(
    peer: str, tmp_path: Path, background: list[subprocess.Popen[str]]
) -> None:
    harness = start_run(peer, tmp_path, background)
    daemons = daemons_of(harness, peer)
    harness.send_signal(signal.SIGINT)
    assert harness.wait(timeout=30) == 130
    assert running(daemons) == []  # stopped and reaped before the harness exited
    assert tb_namespaces() == []
    assert peer_leftovers() == []


@pytest.mark.parametrize("peer", INTERRUPTED, indirect=True)
def test_peer_killed_then_cleaned(
    peer: str, tmp_path: Path, background: list[subprocess.Popen[str]]
) -> None:
    harness = start_run(peer, tmp_path, background)
    [launcher] = recorded(harness, "forwarder")[:1]
    assert "tunbench.peers." in " ".join(launcher.cmdline())
    daemons = daemons_of(harness, peer)  # recorded, so clean could stop them if they lived on
    # No teardown at all: the daemons lose their launcher and get its death signal
    launcher.kill()
    harness.kill()
    harness.wait()
    out = tunbench("clean")
    assert out.returncode == 0, out.stderr
    deadline = time.monotonic() + 10
    while running(daemons) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert running(daemons) == []
    assert tb_namespaces() == []
    assert peer_leftovers() == []


@pytest.mark.parametrize("peer", sorted(CANNOT_FORWARD), indirect=True)
def test_peer_that_cannot_forward_fails_its_row_with_the_reason(peer: str, tmp_path: Path) -> None:
    out = tunbench("run", peer, "--json", "-q", "--duration", "1", "--results-dir", str(tmp_path))
    assert out.returncode == 1
    rec = json.loads(out.stdout)
    assert rec["status"] == "failed" and CANNOT_FORWARD[peer] in rec["error"]
    assert tb_namespaces() == [] and peer_leftovers() == []


def test_router_without_offloads(tmp_path: Path) -> None:
    rec = run_json("kernel-router --no-offload", tmp_path)
    assert rec["status"] == "ok" and rec["gbps"] > 0.1
    assert rec["offload"] == "none" and rec["mode"] == "kernel"
