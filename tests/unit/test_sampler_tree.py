"""The sampler's CPU is the sum of the forwarder's whole process tree, daemons included.

Exact accounting, no timing threshold: summed over all samples, the sampled CPU-seconds
telescope to (tree total at the last reading) - (tree total at the first reading). The
test measures each process's own CPU time itself and compares.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

from tunbench.system.sampler import Sampler

TICK = 0.01  # /proc CPU times come in clock ticks
PR_SET_CHILD_SUBREAPER = 36

BURN = """
import json, os, sys, time
start = time.process_time()
while time.process_time() - start < 0.3:
    pass
open(sys.argv[1], "w").write(json.dumps({"pid": os.getpid()}))
time.sleep(120)
"""

# Starts the daemon in a session of its own, then exits: the daemon is orphaned before it
# burns (it waits for its parent to go first), like a launcher script that daemonizes.
MIDDLE = """
import json, os, resource, subprocess, sys, time
daemon = "import os, time, sys\\nppid = os.getppid()\\n" \\
    "while os.getppid() == ppid: time.sleep(0.02)\\n" + sys.argv[2]
subprocess.Popen([sys.executable, "-c", daemon, sys.argv[1]], start_new_session=True)
time.sleep(1.0)
r = resource.getrusage(resource.RUSAGE_SELF)
open(sys.argv[3], "w").write(json.dumps({"cpu": r.ru_utime + r.ru_stime}))
"""

LAUNCHER = """
import subprocess, sys
d = sys.argv[1]
sys.stdin.readline()  # "go": the sampler has its first reading of this process alone
subprocess.Popen([sys.executable, "-c", sys.argv[2], d + "/a.json"])
subprocess.Popen([sys.executable, "-c", sys.argv[3], d + "/daemon.json", sys.argv[2],
                  d + "/middle.json"]).wait()
sys.stdin.readline()
"""


def cpu(pid: int) -> float:
    t = psutil.Process(pid).cpu_times()
    return t.user + t.system


def wait_for(path: Path, timeout: float = 60.0) -> dict[str, float]:
    deadline = time.monotonic() + timeout
    while not path.exists() or not path.read_text():
        assert time.monotonic() < deadline, f"{path.name} never appeared"
        time.sleep(0.02)
    doc: dict[str, float] = json.loads(path.read_text())
    return doc


def test_cpu_is_the_sum_of_the_tree_including_an_orphaned_daemon(tmp_path: Path) -> None:
    # Orphans come to this process, not to init, so that they can be reaped at the end.
    libc = ctypes.CDLL(None, use_errno=True)
    me = psutil.Process()
    before = {p.pid for p in me.children()}
    assert libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    launcher = subprocess.Popen(
        [sys.executable, "-c", LAUNCHER, str(tmp_path), BURN, MIDDLE],
        stdin=subprocess.PIPE,
        text=True,
    )
    assert launcher.stdin is not None
    try:
        time.sleep(0.5)  # the launcher is idle in readline() now
        sampler = Sampler(launcher.pid, interval=0.1).start()
        time.sleep(0.3)
        launcher_before = cpu(launcher.pid)
        launcher.stdin.write("go\n")
        launcher.stdin.flush()
        a_pid = int(wait_for(tmp_path / "a.json")["pid"])
        daemon_pid = int(wait_for(tmp_path / "daemon.json")["pid"])
        middle_cpu = wait_for(tmp_path / "middle.json")["cpu"]
        time.sleep(0.5)  # everything idle; the sampler takes a few more readings
        expected = cpu(launcher.pid) - launcher_before + cpu(a_pid) + cpu(daemon_pid) + middle_cpu
        samples = sampler.stop()
        sampled = sum(s.cpu_pct * s.dt for s in samples) / 100.0
        # the daemon burned its 0.3 s after it had been orphaned
        assert psutil.Process(daemon_pid).ppid() == os.getpid()
        assert abs(sampled - expected) < 5 * TICK, (sampled, expected)
        assert max(s.threads for s in samples) >= 3  # launcher + child + daemon, at least
    finally:
        launcher.kill()
        launcher.wait()
        launcher.stdin.close()
        assert libc.prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0) == 0
        for child in me.children():  # the launcher's child and the daemon, adopted
            if child.pid not in before:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child.pid, signal.SIGKILL)
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(child.pid, 0)
