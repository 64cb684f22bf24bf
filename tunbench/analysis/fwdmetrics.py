"""Batching metrics from a forwarder's own counters: how many frames it moved, how big.

A Python forwarder writes per-direction counters on exit (``forwarder.directions`` in the
result file, :class:`forwarders.counters.Counters`). They cover the forwarder's whole life,
whose traffic is iperf3's test: the omitted warm-up plus the measured intervals, so rates
divide by that time (iperf3's own interval timeline, omitted intervals included).

Everything is taken from the direction that wrote the most bytes (the data direction;
the other one carries ACKs), so that ``fwd_kpps`` x ``frame_bytes_written`` x 8 is about
that direction's throughput:

- ``fwd_kpps``: frames written per second, in thousands (a frame is a packet, or with
  offload a GSO super-packet and its virtio_net_hdr); None for a zero-loss search, whose
  counters add up every trial at its own rate (the window is the confirming trial's);
- ``frame_bytes_read``, ``frame_bytes_written``: mean frame size, vnet header included;
- ``segs_per_frame``: packets per frame written where the forwarder coalesced them
  itself (``--gso split``: the coalescing factor), else None: a passthrough forwarder
  writes the kernel's super-packets whole;
- ``gso_sizes``: how many frames written had which gso_size (power-of-two buckets,
  ``"0"``: no GSO), on vnet devices only.

External forwarders, peers and kernel baselines have no such counters: every figure is
None.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Flat-record keys (and ``results`` keys) this module fills.
KEYS = ("fwd_kpps", "frame_bytes_read", "frame_bytes_written", "segs_per_frame")


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def traffic_seconds(doc: Mapping[str, Any]) -> float | None:
    """How long traffic flowed: iperf3's intervals, omitted ones included; else the
    workload's duration + omit."""
    raw = doc.get("iperf3")
    intervals = (raw.get("intervals") if isinstance(raw, dict) else None) or []
    total = 0.0
    for iv in intervals:
        total += _num((iv.get("sum") or {}).get("seconds")) or 0.0
    if total > 0:
        return total
    wl = (doc.get("metadata") or {}).get("workload") or {}
    secs = (_num(wl.get("duration")) or 0.0) + (_num(wl.get("omit")) or 0.0)
    return secs or None


def data_direction(fwd: Mapping[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """The direction that wrote the most bytes, with its counters (None without any)."""
    dirs = fwd.get("directions")
    if not isinstance(dirs, dict):
        return None
    found = [
        (name, c)
        for name, c in dirs.items()
        if isinstance(c, dict) and _num(c.get("packets")) and _num(c.get("bytes"))
    ]
    if not found:
        return None
    return max(found, key=lambda item: float(item[1]["bytes"]))


def _kind(doc: Mapping[str, Any]) -> str:
    wl = (doc.get("metadata") or {}).get("workload") or {}
    return str(wl.get("kind") or "stream")


def compute(doc: Mapping[str, Any]) -> dict[str, Any]:
    """``KEYS`` plus ``fwd_direction`` and ``gso_sizes`` from a result document."""
    out: dict[str, Any] = dict.fromkeys(KEYS)
    out["fwd_direction"] = None
    out["gso_sizes"] = None
    fwd = doc.get("forwarder")
    picked = data_direction(fwd) if isinstance(fwd, dict) else None
    if picked is None:
        return out
    name, c = picked
    frames, written = float(c["packets"]), float(c["bytes"])
    out["fwd_direction"] = name
    out["frame_bytes_written"] = written / frames
    read_frames, read_bytes = _num(c.get("frames_read")), _num(c.get("bytes_read"))
    if read_frames and read_bytes is not None:
        out["frame_bytes_read"] = read_bytes / read_frames
    secs = traffic_seconds(doc)
    if secs and _kind(doc) != "zero-loss":
        out["fwd_kpps"] = frames / secs / 1e3
    out["segs_per_frame"] = _num(c.get("coalescing_factor"))
    sizes = c.get("gso_sizes")
    if isinstance(sizes, dict):
        out["gso_sizes"] = dict(sizes)
    return out
