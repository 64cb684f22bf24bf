"""SIGINT/SIGTERM at every phase of run and matrix: 130/143, nothing left, finished kept."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tunbench.analysis import results

from helpers import REPO, TUNBENCH, adopting_orphans, matrix_argv, tb_namespaces, tb_tempdirs

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
    return interrupt_and_read(proc, sig)[0]


def interrupt_and_read(proc: subprocess.Popen[str], sig: signal.Signals) -> tuple[int, str]:
    """Send ``sig``; the exit status and what the run printed on stderr from then on."""
    proc.send_signal(sig)
    assert proc.stderr is not None
    try:
        rest = proc.stderr.read()
        return proc.wait(timeout=30), rest
    finally:
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
    status, said = interrupt_and_read(proc, signal.SIGTERM)
    assert status == 143
    assert tb_namespaces() == []
    finished = results.load_dir(tmp_path)
    if phase.startswith("profile"):
        assert finished == []
        assert "0 result files written" in said
    else:
        assert len(finished) == 1 and finished[0]["status"] == "ok"
        assert finished[0]["matrix"]["order"] == 0
        assert "1 result file written" in said
    # and how to get the table of what was measured
    assert f"tunbench report --results-dir {tmp_path}" in said
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tb-")]


HOOK = Path(__file__).parent / "interrupt_at_spawn.py"
QUICK_RUN = ["run", "sync-normal", "--duration", "1", "--omit", "0", "-q"]


@pytest.mark.parametrize(
    ("sig", "child", "argv"),
    [
        (signal.SIGINT, "-m forwarders.", QUICK_RUN),
        (signal.SIGTERM, "-m forwarders.", QUICK_RUN),
        (signal.SIGTERM, "iperf3child server", QUICK_RUN),
        (signal.SIGTERM, "iperf3child client", QUICK_RUN),
        (signal.SIGTERM, "tunbench.load.ping", [*QUICK_RUN, "--latency"]),
        (signal.SIGTERM, "rev-parse HEAD", QUICK_RUN),  # git, for the result's metadata
        (
            signal.SIGINT,
            "py-spy record",
            [
                "matrix",
                "sync-normal",
                "--no-diagnose",
                "--repeat",
                "1",
                "--duration",
                "1",
                "--omit",
                "0",
                "-q",
                "--flamegraph-dir",
                "{tmp}/fg",
            ],
        ),
    ],
)
def test_signal_right_after_a_child_starts_leaves_no_process(
    sig: signal.Signals, child: str, argv: list[str], tmp_path: Path
) -> None:
    """The child exists, the Popen() that started it has not returned: the worst moment."""
    res = tmp_path / "results"
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    before = tb_tempdirs()
    with adopting_orphans() as orphans:
        proc = subprocess.run(
            [sys.executable, str(HOOK), sig.name, child, "--", *argv, "--results-dir", str(res)],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=90,
        )
    assert proc.returncode == 128 + sig, proc.stderr
    assert orphans == [], "processes the run started outlived it"
    assert tb_namespaces() == []
    assert tb_tempdirs() <= before
    assert not res.exists() or list(res.iterdir()) == []


@pytest.mark.parametrize("seed", range(8))
def test_signal_at_a_random_moment_leaves_nothing(seed: int, tmp_path: Path) -> None:
    """A signal a random few milliseconds after a random phase starts (children are started
    right after their phase is announced): finished or interrupted, nothing is left over."""
    rng = random.Random(seed)
    phase = rng.choice(RUN_PHASES)
    sig = rng.choice([signal.SIGINT, signal.SIGTERM])
    before = tb_tempdirs()
    with adopting_orphans() as orphans:
        proc = start_and_wait_for(
            [
                "run",
                "sync-normal",
                "--duration",
                "1",
                "--omit",
                "0",
                "--results-dir",
                str(tmp_path),
            ],
            phase,
        )
        time.sleep(rng.uniform(0.0, 0.15))
        status = interrupt(proc, sig)
    assert status in (0, 128 + sig), f"{phase}: exit {status}"
    assert orphans == [], f"processes the run started outlived it ({phase})"
    assert tb_namespaces() == []
    assert tb_tempdirs() <= before
    kept = results.load_dir(tmp_path)  # only whole result files, never a temporary one
    assert len(kept) == (1 if status == 0 else len(kept))
    assert len(kept) <= 1
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".tb-")] == []
