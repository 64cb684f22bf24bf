"""An external forwarder that is a process tree (a launcher and two daemons, as VPN pairs
are) is measured as one and stopped whole: the process group, then every recorded member."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tunbench.analysis import results

from helpers import REPO, TUNBENCH, adopting_orphans, session_processes, tb_namespaces, tunbench

pytestmark = [pytest.mark.root, pytest.mark.timeout(120)]

TREE = f"{sys.executable} {Path(__file__).parent / 'tree_forwarder.py'}"


def daemons() -> list[str]:
    """The tree forwarder's daemons still running (zombies are dead)."""
    return session_processes(lambda _name, cmd: "tree-daemon" in cmd)


def test_a_tree_forwarder_is_measured_as_one_and_stopped_whole(tmp_path: Path) -> None:
    with adopting_orphans() as orphans:
        proc = tunbench(
            "run", TREE, "--duration", "2", "--omit", "0", "-q", "--json",
            "--results-dir", str(tmp_path),
        )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert daemons() == []  # the one ignoring SIGINT and the one in its own session too
    assert orphans == [], "processes of the tree outlived the run (or were never reaped)"
    rec = json.loads(proc.stdout)
    doc = results.load(Path(rec["result_file"]))
    # the sampled tree: launcher (idle, 1 thread) + two daemons forwarding
    assert max(s["threads"] for s in doc["samples"]) >= 3
    assert rec["cpu_avg"] > 0 and rec["gbps"] > 0.01


def test_clean_after_sigkill_stops_the_recorded_tree(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [*TUNBENCH, "run", TREE, "--duration", "20", "--results-dir", str(tmp_path)],
        cwd=REPO,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            if "measure" in line:
                break
        state = json.loads(next(Path("/run/tunbench").glob(f"state-{proc.pid}.json")).read_text())
        names = sorted(p["name"] for p in state["processes"].values())
        assert names.count("forwarder tree") == 2, names  # the daemons, by PID and start time
    except BaseException:
        proc.terminate()  # a failed check must not leave this run holding the lock
        proc.wait(timeout=30)
        raise
    os.kill(proc.pid, signal.SIGKILL)  # no teardown at all
    proc.wait()
    proc.stderr.close()
    assert daemons() != []  # PDEATHSIG reaches the launcher only
    out = tunbench("clean")
    assert out.returncode == 0, out.stderr
    deadline = time.monotonic() + 10
    while daemons() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert daemons() == []
    assert tb_namespaces() == []
