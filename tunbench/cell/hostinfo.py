"""The ``host`` block of a result file: which machine measured the cell, and what it is.

Hosts are a dimension of the results (``tunbench report --by host``, ``compare`` across
hosts), so each file says which host it is from and what may explain a difference between
hosts: kernel, CPU model and count, memory, virtualisation and steal time, the physical
NICs with their offload state, the tools' versions. :func:`collect` reads them on the
machine the cell runs on (once per process); :mod:`tunbench.analysis.results` derives the
same block, with fewer facts, for version-1 files written before the block existed.

Who the host is comes from the environment, which ``tunbench fleet``'s playbook sets per
host (a user may set them for a local run too):

- ``TUNBENCH_INVENTORY_NAME``: the host's name in the Ansible inventory;
- ``TUNBENCH_HOST_LABEL``: a label the user chose (the inventory's ``tunbench_label``),
  the name the reports show;
- ``TUNBENCH_REDACT=1``: leave the hostname and the inventory name out (files to be
  published); the label stays, so it should not be a hostname then.
"""

from __future__ import annotations

import functools
import os
import platform
import shutil
import subprocess
from pathlib import Path
from typing import Any

from tunbench.system.procs import run_output

ENV_INVENTORY = "TUNBENCH_INVENTORY_NAME"
ENV_LABEL = "TUNBENCH_HOST_LABEL"
ENV_REDACT = "TUNBENCH_REDACT"
SYS_NET = Path("/sys/class/net")
# ethtool feature names -> the short names ``ethtool -k`` users know
OFFLOADS = {
    "tso": "tx-tcp-segmentation",
    "gso": "tx-generic-segmentation",
    "gro": "rx-gro",
    "lro": "rx-lro",
    "rx-checksum": "rx-checksum",
    "tx-checksum": "tx-checksum-ip-generic",
}


def redacting() -> bool:
    """Whether ``TUNBENCH_REDACT`` asks for files without hostnames."""
    return os.environ.get(ENV_REDACT, "").strip().lower() in ("1", "yes", "true")


def memory_bytes() -> int | None:
    """MemTotal of /proc/meminfo, in bytes."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def steal_pct(stat_text: str | None = None) -> float | None:
    """Steal time since boot in % of all CPU time (``cpu`` line of /proc/stat): the share
    of time a hypervisor gave this VM's CPUs to someone else; 0 on bare metal."""
    try:
        text = stat_text if stat_text is not None else Path("/proc/stat").read_text()
        fields = [int(x) for x in text.splitlines()[0].split()[1:]]
    except (OSError, ValueError, IndexError):
        return None
    if len(fields) < 8 or text.split()[0] != "cpu":
        return None
    # user nice system idle iowait irq softirq steal [guest guest_nice]: guest time is
    # already inside user and nice
    total = sum(fields[:8])
    return 100.0 * fields[7] / total if total else None


def virtualization() -> str | None:
    """``systemd-detect-virt``'s answer (``kvm``, ``xen``, ``none``, ...); without it,
    ``vm`` when the CPU flags say a hypervisor runs us, ``none`` when they do not."""
    tool = shutil.which("systemd-detect-virt")
    if tool:
        try:
            _status, out, _err = run_output([tool], 3.0)
        except (OSError, subprocess.SubprocessError):
            out = ""
        if out.strip():
            return out.strip()
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        flags = next(line for line in lines if line.startswith("flags"))
    except (OSError, StopIteration):
        return None
    return "vm" if " hypervisor" in flags else "none"


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _offloads(ifname: str) -> dict[str, bool] | None:
    """The NIC's offload features that are on (read through pyroute2's ethtool)."""
    try:
        from pyroute2.ethtool import Ethtool

        with Ethtool() as et:
            feats = et.get_features(ifname).features
    except Exception:  # pyroute2 raises many kinds for a device it cannot query
        return None
    return {short: bool(feats[name].enable) for short, name in OFFLOADS.items() if name in feats}


def nics() -> list[dict[str, Any]]:
    """The physical NICs of this network namespace (those with a ``device``): name,
    driver, link speed (Mbit/s, None when down or unknown), MTU and offload state."""
    out = []
    for dev in sorted(SYS_NET.glob("*")):
        if not (dev / "device").exists():
            continue
        driver = dev / "device" / "driver"
        speed = _read(dev / "speed")  # -1 or unreadable while the link is down
        mtu = _read(dev / "mtu")
        out.append(
            {
                "name": dev.name,
                "driver": driver.resolve().name if driver.exists() else None,
                "speed_mbps": int(speed) if speed and speed.isdigit() and int(speed) else None,
                "mtu": int(mtu) if mtu and mtu.isdigit() else None,
                "offload": _offloads(dev.name),
            }
        )
    return out


@functools.cache
def _machine() -> dict[str, Any]:
    return {
        "hostname": platform.node(),
        "memory_bytes": memory_bytes(),
        "virtualization": virtualization(),
        "steal_pct": steal_pct(),
        "nics": nics(),
    }


def collect(metadata: dict[str, Any]) -> dict[str, Any]:
    """The host block of a result file whose ``metadata`` (:func:`tunbench.cell.metadata.collect`)
    is already known: kernel, CPU and tool versions are taken from it."""
    redact = redacting()
    inventory = os.environ.get(ENV_INVENTORY) or None
    block: dict[str, Any] = {
        "inventory_name": None if redact else inventory,
        "label": os.environ.get(ENV_LABEL) or None,
        **_machine(),
        "kernel": metadata.get("kernel"),
        "cpu_model": metadata.get("cpu_model"),
        "cpu_count": metadata.get("cpu_count"),
        "tools": {
            "python": metadata.get("python"),
            "iperf3": metadata.get("iperf3_version"),
            "tunbench": metadata.get("tunbench_version"),
            "git_sha": metadata.get("git_sha"),
        },
        "redacted": redact,
        "derived": False,
    }
    if redact:
        block["hostname"] = None
    return block
