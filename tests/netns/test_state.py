"""The run lock, `tunbench clean`, and the host namespace staying untouched."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from pyroute2 import netns

from engines import with_engine_marks
from helpers import REPO, TUNBENCH, tb_namespaces, tb_tempdirs, tunbench

pytestmark = [pytest.mark.root, pytest.mark.timeout(120)]


def test_second_run_is_refused_at_once(tmp_path: Path) -> None:
    first = subprocess.Popen(
        [*TUNBENCH, "run", "sync-normal", "--duration", "5", "--results-dir", str(tmp_path)],
        cwd=REPO,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    assert first.stderr is not None
    for line in first.stderr:
        if "measure" in line:
            break
    before = tb_namespaces()
    t0 = time.monotonic()
    second = tunbench("run", "sync-gso", "--duration", "2", "--results-dir", str(tmp_path))
    assert time.monotonic() - t0 < 10
    assert second.returncode == 2
    assert "another tunbench run is in progress" in second.stderr
    assert len(second.stderr.strip().splitlines()) == 1
    assert tb_namespaces() == before  # the refused run created nothing
    cleaner = tunbench("clean")  # nor may clean tear the running one apart
    assert cleaner.returncode == 2
    assert "before you clean" in cleaner.stderr
    assert tb_namespaces() == before
    _, rest = first.communicate(timeout=60)
    assert first.returncode == 0, rest


def test_clean_removes_only_recorded_leftovers(tmp_path: Path) -> None:
    state_dir = Path("/run/tunbench")
    state_dir.mkdir(parents=True, exist_ok=True)
    netns.create("tb-leftover-a")
    netns.create("tb-leftover-b")
    recorded = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    unrecorded = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    dead_owner = subprocess.Popen(["true"])
    dead_owner.wait()
    state = state_dir / f"state-{dead_owner.pid}.json"
    state.write_text(
        json.dumps(
            {
                "owner": dead_owner.pid,
                "namespaces": ["tb-leftover-a"],
                "processes": {
                    str(recorded.pid): {
                        "name": "forwarder",
                        "create_time": psutil.Process(recorded.pid).create_time(),
                    }
                },
                "files": [],
            }
        )
    )
    try:
        first = tunbench("clean")
        assert first.returncode == 0, first.stderr
        assert "removed namespace tb-leftover-a" in first.stdout
        assert "removed namespace tb-leftover-b" in first.stdout
        assert f"stopped process {recorded.pid}" in first.stdout
        assert recorded.wait(10) is not None
        assert unrecorded.poll() is None  # not recorded: never touched
        assert not state.exists()
        assert tb_namespaces() == []
        second = tunbench("clean")
        assert second.returncode == 0
        assert second.stdout.strip() == ""  # idempotent: nothing more to do
    finally:
        for p in (recorded, unrecorded):
            p.kill()
            p.wait()
        for name in ("tb-leftover-a", "tb-leftover-b"):
            if name in netns.listnetns():
                netns.remove(name)


@pytest.mark.parametrize("spec", with_engine_marks(["sync-normal", "uring-normal"]))
def test_clean_after_sigkill(spec: str, tmp_path: Path) -> None:
    before = tb_tempdirs()
    proc = subprocess.Popen(
        [*TUNBENCH, "run", spec, "--duration", "20", "--results-dir", str(tmp_path)],
        cwd=REPO,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stderr is not None
    for line in proc.stderr:
        if "measure" in line:
            break
    os.kill(proc.pid, signal.SIGKILL)  # no teardown at all
    proc.wait()
    proc.stderr.close()
    assert tb_namespaces() != []
    workdirs = sorted(tb_tempdirs() - before)  # this run's, not another tb- file in /tmp
    assert workdirs, "the killed run's temporary directory should be there"
    out = tunbench("clean")
    assert out.returncode == 0
    assert "removed namespace" in out.stdout
    assert tb_namespaces() == []
    assert not any(p.exists() for p in workdirs)
    # the children die with their parent (PDEATHSIG) or are stopped by clean
    deadline = time.monotonic() + 10
    from helpers import harness_processes

    while harness_processes() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert harness_processes() == []
