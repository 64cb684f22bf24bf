"""Helpers for the root tests: run the CLI as a real process, check for leftovers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import psutil
from pyroute2 import IPRoute, netns

REPO = Path(__file__).resolve().parents[2]
TUNBENCH = [sys.executable, "-m", "tunbench.cli"]


def tunbench(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*TUNBENCH, *args], capture_output=True, text=True, timeout=timeout, cwd=REPO
    )


def matrix_argv(*specs: str, results: Path, flamegraphs: Path, repeat: int = 1) -> list[str]:
    """A short matrix: 2 s cells, no warm-up, no waiting for a quiet machine (the
    background check still runs and is recorded), outputs in the given directories."""
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
    ]


def run_json(spec: str, results_dir: Path, *extra: str) -> dict[str, Any]:
    proc = tunbench(
        "run",
        spec,
        "--json",
        "-q",
        "--duration",
        "2",
        "--omit",
        "1",
        "--background-wait",
        "0",
        "--results-dir",
        str(results_dir),
        *extra,
    )
    assert proc.returncode == 0, proc.stderr
    rec: dict[str, Any] = json.loads(proc.stdout)
    return rec


def tb_namespaces() -> list[str]:
    return sorted(n for n in netns.listnetns() if n.startswith("tb-"))


def host_links() -> list[str]:
    with IPRoute() as ipr:
        return sorted(str(link.get("ifname")) for link in ipr.get_links())


def harness_processes() -> list[str]:
    """Processes that only tunbench starts: forwarders, iperf3 children, nsexec."""
    me = os.getpid()
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmd = " ".join(proc.info["cmdline"] or [])
        if proc.info["pid"] == me:
            continue
        if any(k in cmd for k in ("-m forwarders.", "tunbench.runners.iperf3", "tunbench.nsexec")):
            found.append(f"{proc.info['pid']}: {cmd}")
    return found


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
