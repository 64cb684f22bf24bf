"""Assemble a cell's result document while it runs: :func:`skeleton` as it starts,
:func:`record_failure` when it fails, :func:`fill` with what it measured once it is torn
down. :mod:`tunbench.analysis.results` is the schema and what reads the files back;
:mod:`tunbench.cell.session` only supplies the facts.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from forwarders.counters import spin_ns
from tunbench.analysis import boundby, cost, fwdmetrics, stats
from tunbench.analysis.results import SCHEMA, VERSION, WORKLOAD_KEYS, host_name
from tunbench.cell import hostinfo, metadata, placement
from tunbench.cell.options import CellOptions
from tunbench.cell.variants import CellSpec, describe
from tunbench.errors import ForwarderError, MeasurementError, UsageError
from tunbench.load.measurement import Measurement
from tunbench.system.sampler import samples_to_json

MB = 1_000_000
# A run whose receiver-side interval throughput varies more than this (coefficient of
# variation over iperf3's 1 s intervals) did not reach a steady state.
UNSTEADY_CV = 0.10


def skeleton(
    cell: CellSpec, opts: CellOptions, run_id: str, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A result document without measurements, as the cell starts.

    ``extra`` keys (matrix position, profile) are stored as they are.
    """
    meta = metadata.collect()
    if hostinfo.redacting():
        meta["hostname"] = None
    doc: dict[str, Any] = {
        "schema": SCHEMA,
        "version": VERSION,
        "run_id": run_id,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "cell": {
            "spec": cell.spec,
            "kind": cell.kind,
            "variant": cell.label,
            "args": list(cell.args),
            **describe(cell),
        },
        "status": "ok",
        "error": None,
        "host": hostinfo.collect(meta),
        "metadata": {
            **meta,
            "mtu": opts.mtu,
            "workload": {**asdict(opts.iperf), **asdict(opts.workload)},
            "latency_probe": opts.latency,
            "steer_receive": opts.steer_receive,
            "cpus": {
                "forwarder": list(opts.fwd_cpus),
                "load": list(opts.load_cpus),
                "harness": list(opts.load_cpus),
            },
            "placement": {
                **opts.placement.to_json(),
                # RPS of the TUN devices' receive work (tunbench.cell.placement)
                "receive": placement.receive_cpus(cell, opts),
            },
            "offered": opts.offered.to_json() if opts.offered else None,
            "spin_ns": cell_spin_ns(cell),
            "background_limit": opts.background_limit,
            "background_seconds": opts.background_seconds,
            "devices": {
                "iface1": opts.iface1,
                "ip1": opts.ip1,
                "iface2": opts.iface2,
                "ip2": opts.ip2,
            },
        },
        "window": None,
        "results": {},
        "forwarder": None,
        "samples": [],
        "iperf3": None,
        "topology": None,  # one host (tunbench.plan.twohost sets it for two)
    }
    doc["revision"] = metadata.revision(cell.kind, cell.name, opts.rev)
    doc["testbed"] = opts.testbed or host_name(doc)
    doc.update(extra or {})
    return doc


def cell_spin_ns(cell: CellSpec) -> int | None:
    """The positive control's busy-wait per frame that the cell's forwarder runs with (its
    spec's ``--spin-ns``, else ``$TUNBENCH_SPIN_NS``, which the forwarder inherits); None
    when it runs none or is not a Python variant."""
    if cell.kind != "python" or cell.options is None:
        return None
    try:
        return spin_ns(cell.options) or None
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def record_failure(doc: dict[str, Any], exc: Exception) -> None:
    """Mark ``doc`` failed with a one-line error; a dead forwarder adds ``forwarder_exit``."""
    doc["status"] = "failed"
    doc["error"] = str(exc)
    if isinstance(exc, MeasurementError) and exc.detail is not None:
        doc["workload_detail"] = exc.detail
    if isinstance(exc, ForwarderError):
        doc["forwarder_exit"] = {
            "status": exc.returncode,
            "stderr_tail": exc.stderr_tail,
            "detected_at": exc.detected_at,
        }
        if exc.stderr_tail:
            doc["error"] += f" — {exc.stderr_tail.splitlines()[-1]}"


def fill(
    doc: dict[str, Any],
    command: Sequence[str],
    counters: dict[str, Any] | None,
    m: Measurement | None,
    has_forwarder: bool,
) -> None:
    """Put what the cell produced into ``doc`` once it is torn down.

    ``command`` started the forwarder (empty for baselines), ``counters`` are the
    forwarder's own (None if it wrote none), ``m`` is the measurement (None if the cell
    failed first). Numbers are SI units; MB = 10^6 bytes.
    """
    doc["forwarder"] = counters
    doc["metadata"]["forwarder_command"] = shlex.join(command) if command else None
    if m is None:
        return
    res = m["iperf"]
    s = m["summary"]
    doc["window"] = {**m["window"], "clock": "monotonic"}
    doc["samples"] = samples_to_json(m["samples"])
    doc["load_samples"] = {k: samples_to_json(v) for k, v in m.get("load_samples", {}).items()}
    doc["iperf3"] = res.raw if res else None
    doc["tun_packets"] = m.get("tun_packets")
    fwd = doc.get("forwarder") or {}
    doc["metadata"]["offload_flags"] = fwd.get("offload")
    pr = m.get("ping")
    bg = m["background"]
    intervals = m["interval_bps"]
    sampler_error = m["sampler_error"]
    if s.n == 0:
        sampler_error = sampler_error or "no samples inside the measured window"

    def proc(value: float | None, scale: float = 1.0) -> float | None:
        """A forwarder figure: None for baselines and when nothing was sampled."""
        return value / scale if has_forwarder and value is not None else None

    doc["results"] = {
        "gbps": res.bps / 1e9 if res else None,
        "bps": res.bps if res else None,
        "sent_bps": res.sent_bps if res else None,
        "retransmits": res.retransmits if res else None,
        "cpu_avg": proc(s.cpu_avg),
        "cpu_user_avg": proc(s.cpu_user_avg),
        "cpu_sys_avg": proc(s.cpu_sys_avg),
        "cpu_max": proc(s.cpu_max),
        "cpu_sched_avg": proc(s.sched_cpu_avg),
        "cpu_wait_avg": proc(s.sched_wait_avg),
        "cpu_busy_avg": s.cpu_busy_avg or None,
        "cpu_threads": s.threads if has_forwarder and s.n else None,
        "mem_avg_mb": proc(s.mem_avg_bytes, MB),
        "mem_max_mb": proc(s.mem_max_bytes, MB),
        "system_busy_avg": s.system_busy_avg,
        "duration_s": s.span,
        "samples": s.n,
        "sampler_error": sampler_error,
        "sampler_cpu_pct": m["sampler_cpu_pct"],
        "background_cpu_pct": bg.cpu_pct if bg else None,
        "background_checks": bg.checks if bg else None,
        "noisy": bg.noisy if bg else None,
        "interval_gbps": [b / 1e9 for b in intervals],
        "interval_cv": stats.cv(intervals) if len(intervals) >= 2 else None,
        "steady": stats.cv(intervals) <= UNSTEADY_CV if len(intervals) >= 2 else None,
        "lost_percent": res.lost_percent if res else None,
        "jitter_ms": res.jitter_ms if res else None,
        "udp_packets": res.packets if res else None,
        "pps": res.pps if res else None,
        "gbps_fwd": res.bps_fwd / 1e9 if res and res.bps_fwd is not None else None,
        "gbps_rev": res.bps_rev / 1e9 if res and res.bps_rev is not None else None,
        "rtt_p50_ms": pr.percentile(50) if pr else None,
        "rtt_p99_ms": pr.percentile(99) if pr else None,
        "rtt_count": pr.received if pr else None,
        "ping_loss": (pr.sent - pr.received) / pr.sent if pr and pr.sent else None,
        **{k: None for k in WORKLOAD_KEYS},
        **m.get("workload", {}),
    }
    if "workload_detail" in m:
        doc["workload_detail"] = m["workload_detail"]
    start, end = m["window"]["start"], m["window"]["end"]
    doc["results"]["load_cpu_avg"] = {
        name: boundby.weighted(boundby.in_window(samples, start, end), "cpu_pct")
        for name, samples in doc["load_samples"].items()
    }
    doc["results"].update(fwdmetrics.compute(doc))
    bound = boundby.from_doc(doc)
    doc["results"]["bound_by"] = bound.verdict if bound else None
    doc["results"]["bound_by_detail"] = bound.to_json() if bound else None
    doc["results"].update(cost.compute(doc))
