"""SIGINT/SIGTERM at every phase of run and matrix: 130/143, nothing left, finished kept."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest

from tunbench import results

from helpers import REPO, TUNBENCH, matrix_argv, tb_namespaces

pytestmark = [pytest.mark.root, pytest.mark.timeout(120)]

RUN_PHASES = [
    "namespaces",
    "forwarder start",
    "topology",
    "iperf3 server",
    "background check",
    "measure",
    "teardown",
]


def start_and_wait_for(args: list[str], phase: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [*TUNBENCH, *args], cwd=REPO, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True
    )
    assert proc.stderr is not None
    deadline = time.monotonic() + 60
    for line in proc.stderr:
        if phase in line:
            return proc
        assert time.monotonic() < deadline, f"never reached phase {phase!r}"
    pytest.fail(f"run ended before phase {phase!r}: rc={proc.wait()}")


def interrupt(proc: subprocess.Popen[str], sig: signal.Signals) -> int:
    proc.send_signal(sig)
    try:
        return proc.wait(timeout=30)
    finally:
        assert proc.stderr is not None
        proc.stderr.close()


@pytest.mark.parametrize("phase", RUN_PHASES)
@pytest.mark.parametrize(("sig", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_run_interrupted_at_each_phase(
    phase: str, sig: signal.Signals, status: int, tmp_path: Path
) -> None:
    duration = "2" if phase == "teardown" else "20"
    proc = start_and_wait_for(
        [
            "run",
            "sync-normal",
            "--duration",
            duration,
            "--omit",
            "0",
            "--results-dir",
            str(tmp_path),
        ],
        phase,
    )
    assert interrupt(proc, sig) == status
    assert tb_namespaces() == []
    # the unfinished cell leaves neither a result file nor a temporary one
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("phase", ["profile sync-normal", "[3/3]"])
def test_matrix_interrupted_keeps_finished_cells(phase: str, tmp_path: Path) -> None:
    args = matrix_argv("kernel-veth", "sync-normal", results=tmp_path, flamegraphs=tmp_path / "fg")
    # "[3/3]": the second measured cell starts (the round's order is shuffled); the first
    # one's file must survive intact
    proc = start_and_wait_for(args, phase)
    time.sleep(0.5)
    assert interrupt(proc, signal.SIGTERM) == 143
    assert tb_namespaces() == []
    finished = results.load_dir(tmp_path)
    if phase.startswith("profile"):
        assert finished == []
    else:
        assert len(finished) == 1 and finished[0]["status"] == "ok"
        assert finished[0]["matrix"]["order"] == 0
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tb-")]
