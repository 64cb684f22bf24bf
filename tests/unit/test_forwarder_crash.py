"""A worker that raises ends the whole forwarder at once (no TUN devices needed)."""

from __future__ import annotations

import subprocess
import sys
import time

from forwarders.runner import EXIT_WORKER_CRASHED

PROGRAM = """
import argparse, threading
from forwarders.counters import Forwarder
from forwarders.runner import run_threads

def broken():
    raise ValueError("a bug in one direction")

def healthy():
    threading.Event().wait()  # the other direction would run forever

args = argparse.Namespace(configure=False, stats=None)
run_threads(Forwarder("test", args, []), [("healthy", healthy), ("broken", broken)])
"""


def test_one_crashed_worker_ends_the_forwarder_with_its_traceback() -> None:
    t0 = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-c", PROGRAM], capture_output=True, text=True, timeout=30
    )
    assert time.monotonic() - t0 < 10  # did not wait for the healthy worker
    assert proc.returncode == EXIT_WORKER_CRASHED
    lines = proc.stderr.strip().splitlines()
    assert lines[-1] == "ValueError: a bug in one direction"  # what the harness quotes
    assert any(line.startswith("Traceback") for line in lines)


NAMED = """
import argparse, os, threading
from forwarders.counters import Forwarder
from forwarders.runner import run_threads

def report():
    comm = f"/proc/{os.getpid()}/task/{threading.get_native_id()}/comm"
    print(open(comm).read().strip(), flush=True)

args = argparse.Namespace(configure=False, stats=None)
run_threads(Forwarder("test", args, []), [("1to2-0-rd", report)])
"""


def test_worker_threads_carry_their_names_in_the_kernel() -> None:
    """The sampler's per-thread CPU (Bound by) names a worker by its kernel thread name."""
    proc = subprocess.run([sys.executable, "-c", NAMED], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 1, proc.stderr  # its only worker ended
    assert proc.stdout.split() == ["1to2-0-rd"]
