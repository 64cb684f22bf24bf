"""Helpers for the root tests: run the CLI as a real process, check for leftovers."""

from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import psutil
from pyroute2 import IPRoute, netns

REPO = Path(__file__).resolve().parents[2]
# Every run's background check measures 0.2 s instead of 1 s: ~130 runs in the suite, and
# only test_statistics judges the figure (it asks for 1 s explicitly).
os.environ.setdefault("TUNBENCH_BACKGROUND_SECONDS", "0.2")
# Every process this test session starts, directly or through tunbench, inherits this mark:
# the leftover check judges this session's processes only, not another user's tunbench or
# iperf3 running on the same machine at the same time.
SESSION_MARK = "TUNBENCH_TEST_SESSION"
os.environ[SESSION_MARK] = f"{os.getpid()}-{os.urandom(6).hex()}"
TUNBENCH = [sys.executable, "-m", "tunbench.cli"]


PR_SET_CHILD_SUBREAPER = 36


def tunbench(
    *args: str, timeout: float = 120, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*TUNBENCH, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        env={**os.environ, **env} if env else None,
    )


@contextmanager
def adopting_orphans() -> Iterator[list[str]]:
    """Collect every process that outlives its parent among those started inside.

    This process becomes a child subreaper (PR_SET_CHILD_SUBREAPER): a process whose parent
    exits is re-parented to it instead of to init. So when ``tunbench`` has exited, any
    process it started and did not stop *and reap* is now a child of ours, alive or a
    zombie, for certain and at once; no waiting for PDEATHSIG to maybe kill it. On exit the
    yielded list describes them (they are then killed and reaped).
    """
    libc = ctypes.CDLL(None, use_errno=True)
    me = psutil.Process()
    before = {p.pid for p in me.children()}
    found: list[str] = []
    assert libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    try:
        yield found
    finally:
        assert libc.prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0) == 0
        for proc in me.children():
            if proc.pid in before:
                continue
            try:
                found.append(
                    f"{proc.pid} {proc.status()}: {' '.join(proc.cmdline()) or proc.name()}"
                )
            except psutil.Error:
                found.append(f"{proc.pid}: (gone)")
            with suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
            with suppress(ChildProcessError):
                os.waitpid(proc.pid, 0)


def matrix_argv(
    *specs: str, results: Path, flamegraphs: Path, repeat: int = 1, diagnose: bool = False
) -> list[str]:
    """A short matrix: 2 s cells, no warm-up, no waiting for a quiet machine (the
    background check still runs and is recorded), outputs in the given directories; no
    diagnostic pass unless asked for (it costs a run per forwarder)."""
    return [
        "matrix",
        *specs,
        "--repeat",
        str(repeat),
        "--duration",
        "2",
        "--omit",
        "0",
        "--background-wait",
        "0",
        "--results-dir",
        str(results),
        "--flamegraph-dir",
        str(flamegraphs),
        *([] if diagnose else ["--no-diagnose"]),
    ]


def run_json(
    spec: str, results_dir: Path, *extra: str, env: dict[str, str] | None = None
) -> dict[str, Any]:
    """``tunbench run SPEC --json`` for 1 s, its record. No warm-up second is left out:
    these tests check that figures exist and are sane, not their size (the tests that
    judge a figure, e.g. test_statistics, set their own --omit and --duration); ~40 runs,
    and each second less is 40 s less."""
    proc = tunbench(
        "run",
        spec,
        "--json",
        "-q",
        "--duration",
        "1",
        "--omit",
        "0",
        "--background-wait",
        "0",
        "--results-dir",
        str(results_dir),
        *extra,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    rec: dict[str, Any] = json.loads(proc.stdout)
    return rec


def tb_namespaces() -> list[str]:
    return sorted(n for n in netns.listnetns() if n.startswith("tb-"))


def tb_tempdirs() -> set[Path]:
    return set(Path(tempfile.gettempdir()).glob("tb-*"))


def host_links() -> list[str]:
    with IPRoute() as ipr:
        return sorted(str(link.get("ifname")) for link in ipr.get_links())


def session_processes(match: Callable[[str, str], bool]) -> list[str]:
    """This session's live processes (see SESSION_MARK) for which ``match(name, cmdline)``
    holds, as ``"pid: cmdline"``; zombies hold nothing and are left out."""
    me, mark = os.getpid(), os.environ[SESSION_MARK]
    found = []
    for proc in psutil.process_iter(["pid", "name", "cmdline", "status"]):
        cmd = " ".join(proc.info["cmdline"] or [])
        if proc.info["pid"] == me or proc.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        if match(proc.info["name"] or "", cmd):
            try:
                ours = proc.environ().get(SESSION_MARK) == mark
            except psutil.NoSuchProcess:
                continue  # ended while we looked
            if ours:
                found.append(f"{proc.info['pid']}: {cmd}")
    return found


def harness_processes() -> list[str]:
    """This session's processes that only tunbench starts: forwarders, iperf3 children,
    nsexec."""
    keys = ("-m forwarders.", "tunbench.load.iperf3", "tunbench.system.nsexec")
    return session_processes(lambda _name, cmd: any(k in cmd for k in keys))


def host_snapshot() -> dict[str, Any]:
    """Links, addresses and routes of the host namespace (to prove they are untouched)."""
    with IPRoute() as ipr:
        links = sorted(
            (str(x.get("ifname")), x.get("state"), x.get("mtu")) for x in ipr.get_links()
        )
        addrs = sorted(
            (x.get("index"), str(x.get("address")), x.get("prefixlen")) for x in ipr.get_addr()
        )
        routes = sorted(
            (
                str(x.get("dst")),
                x.get("dst_len"),
                str(x.get("gateway")),
                x.get("oif"),
                x.get("table"),
            )
            for x in ipr.get_routes(family=2)
        )
    return {"links": links, "addrs": addrs, "routes": routes}
