"""``tunbench clean``: remove what interrupted runs left behind, and nothing else.

Only namespaces with the ``tb-`` prefix, control sockets named after ``tb-`` devices
(wireguard-go's, left by a SIGKILLed peer daemon), processes recorded in a run-state
file (matched by PID *and* start time), the tbf root qdiscs (handle 1:) a two-host
agent recorded there and empty ``tb-quota-`` CPU cgroups (``--cpu-quota``) are
touched. clean holds the run lock, so every state file is a leftover, even if its
owner's PID has been reused since. Idempotent.
"""

from __future__ import annotations

import shutil
import signal
from pathlib import Path

import psutil
from pyroute2 import netns

from forwarders import quota
from tunbench.cell import shaping
from tunbench.cell.topology import PREFIX
from tunbench.errors import BusyError
from tunbench.system.procs import wait_until
from tunbench.system.runstate import CONTROLLER_DIR, STATE_DIR, run_lock, stale_states

# Where peer daemons put control sockets named after their (temporary, tb-) device
SOCKET_DIRS = (Path("/var/run/wireguard"),)


def _gone(proc: psutil.Process) -> bool:
    """Exited (a zombie is gone for us: its parent, not we, must reap it)."""
    try:
        return proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _stop_recorded(pid: int, info: dict[str, object]) -> str | None:
    try:
        proc = psutil.Process(pid)
        if abs(proc.create_time() - float(str(info.get("create_time", 0)))) > 0.01:
            return None  # PID recycled: not ours
    except psutil.Error:
        return None
    for sig, wait_s in ((signal.SIGTERM, 2.0), (signal.SIGKILL, 5.0)):
        try:
            proc.send_signal(sig)
        except psutil.NoSuchProcess:
            break
        if wait_until(lambda: _gone(proc), wait_s):
            break
    return f"stopped process {pid} ({info.get('name')})"


def clean(state_dir: Path | None = None) -> list[str]:
    """Remove leftovers; returns one line per thing removed.

    Holds the run lock while it works, so it refuses (BusyError) instead of tearing the
    namespaces out from under a run in progress. A two-host controller's leftovers (its
    ssh processes and work directory) are removed too, unless one is running.
    """
    with run_lock(state_dir, doing="clean"):
        return [*_clean(state_dir), *clean_controller(state_dir)]


def clean_controller(state_dir: Path | None = None) -> list[str]:
    """What a killed two-host controller left: the state files under its own lock
    (``<state dir>/controller``); nothing while a controller holds that lock."""
    directory = (state_dir or STATE_DIR) / CONTROLLER_DIR
    if not directory.is_dir():
        return []
    try:
        with run_lock(directory, doing="clean"):
            return _clean_states(directory)
    except BusyError:
        return []


def _clean(state_dir: Path | None) -> list[str]:
    done = _clean_states(state_dir)
    for directory in SOCKET_DIRS:
        for sock in sorted(directory.glob(f"{PREFIX}*.sock")):
            sock.unlink(missing_ok=True)
            done.append(f"removed {sock}")
    for group in quota.leftovers():  # --cpu-quota cgroups of forwarders no longer there
        try:
            group.rmdir()
            done.append(f"removed cgroup {group}")
        except OSError:
            pass
    for name in sorted(netns.listnetns()):
        if name.startswith(PREFIX):
            try:
                netns.remove(name)
                done.append(f"removed namespace {name}")
            except FileNotFoundError:
                pass
    return done


def _clean_states(state_dir: Path | None) -> list[str]:
    """The processes and files every state file in ``state_dir`` records."""
    done: list[str] = []
    for path, doc in stale_states(state_dir):
        for pid, info in (doc.get("processes") or {}).items():
            line = _stop_recorded(int(pid), info)
            if line:
                done.append(line)
        for f in doc.get("files") or []:
            p = Path(f)
            if not p.name.startswith(PREFIX) or not p.exists():
                continue
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink()
            done.append(f"removed {p}")
        for ifname in doc.get("qdiscs") or []:
            if shaping.remove_tbf(str(ifname)):
                done.append(f"removed the tbf on {ifname}")
        path.unlink(missing_ok=True)
    return done
