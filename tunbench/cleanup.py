"""``tunbench clean``: remove what interrupted runs left behind, and nothing else.

Only namespaces with the ``tb-`` prefix, and processes recorded in a run-state file whose
owner is gone (matched by PID *and* start time) are touched. Idempotent.
"""

from __future__ import annotations

import signal
from pathlib import Path

import psutil
from pyroute2 import netns

from tunbench.runstate import stale_states
from tunbench.topology import PREFIX


def _stop_recorded(pid: int, info: dict[str, object]) -> str | None:
    try:
        proc = psutil.Process(pid)
        if abs(proc.create_time() - float(str(info.get("create_time", 0)))) > 0.01:
            return None  # PID recycled: not ours
    except psutil.Error:
        return None
    try:
        proc.send_signal(signal.SIGTERM)
        proc.wait(2)
    except psutil.TimeoutExpired:
        proc.kill()
        proc.wait(5)
    except psutil.Error:
        pass
    return f"stopped process {pid} ({info.get('name')})"


def clean(state_dir: Path | None = None) -> list[str]:
    """Remove leftovers; returns one line per thing removed."""
    done: list[str] = []
    for path, doc in stale_states(state_dir):
        for pid, info in (doc.get("processes") or {}).items():
            line = _stop_recorded(int(pid), info)
            if line:
                done.append(line)
        for f in doc.get("files") or []:
            p = Path(f)
            if p.name.startswith(PREFIX) and p.exists():
                p.unlink()
                done.append(f"removed file {p}")
        path.unlink(missing_ok=True)
    for name in sorted(netns.listnetns()):
        if name.startswith(PREFIX):
            try:
                netns.remove(name)
                done.append(f"removed namespace {name}")
            except FileNotFoundError:
                pass
    return done
