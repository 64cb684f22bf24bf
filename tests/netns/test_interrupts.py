"""Ctrl-C and SIGTERM mid-measurement: conventional exit status, nothing left behind."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest
from helpers import REPO, TUNBENCH, tb_namespaces

pytestmark = [pytest.mark.root, pytest.mark.timeout(90)]


def start_and_wait_for(phase: str, tmp_path: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [*TUNBENCH, "run", "sync-normal", "--duration", "30", "--results-dir", str(tmp_path)],
        cwd=REPO,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stderr is not None
    deadline = time.monotonic() + 30
    for line in proc.stderr:
        if phase in line:
            break
        assert time.monotonic() < deadline, f"never reached phase {phase!r}"
    else:
        pytest.fail(f"run ended before phase {phase!r}: rc={proc.wait()}")
    return proc


@pytest.mark.parametrize(("sig", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_during_measurement(sig: signal.Signals, status: int, tmp_path: Path) -> None:
    proc = start_and_wait_for("measure", tmp_path)
    time.sleep(1.0)  # let traffic flow so the signal lands mid-measurement
    assert tb_namespaces() != []
    t0 = time.monotonic()
    proc.send_signal(sig)
    assert proc.wait(timeout=30) == status
    assert time.monotonic() - t0 < 15
    assert proc.stderr is not None
    proc.stderr.close()
    assert list(tmp_path.iterdir()) == []  # no result file, no temp file for the unfinished cell
