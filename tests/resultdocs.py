"""Result documents built by hand for the tests that need no root (report, compare, page)."""

from __future__ import annotations

from typing import Any

from tunbench import cli, results, sweep
from tunbench.sweep import Over, parse_over, plan_cells


def make_doc(variant: str = "sync-gso", gbps: float = 12.345, status: str = "ok") -> dict[str, Any]:
    return {
        "schema": results.SCHEMA,
        "version": results.VERSION,
        "run_id": "abc123",
        "created": "2026-11-24T03:00:00+0000",
        "cell": {
            "spec": variant,
            "kind": "python",
            "variant": variant,
            "args": [],
            "mode": "sync",
            "offload": "gso-passthrough",
            "channel": "-",
        },
        "status": status,
        "error": None if status == "ok" else "forwarder exited with status 3",
        "metadata": {"mtu": 1500},
        "window": {"start": 1.0, "end": 6.0},
        "results": {
            "gbps": gbps,
            "retransmits": 7,
            "cpu_avg": 81.25,
            "cpu_max": 99.5,
            "mem_avg_mb": 17.44,
            "mem_max_mb": 18.0,
            "system_busy_avg": 50.0,
            "duration_s": 5.0,
            "samples": 50,
        }
        if status == "ok"
        else {},
        "forwarder": None,
        "samples": [],
        "iperf3": None,
    }


def doc(
    variant: str,
    gbps: float,
    *,
    repeat: int = 0,
    parallel: int = 1,
    status: str = "ok",
    cpu: float = 80.0,
    matrix: str | None = "m1",
    udp: bool = False,
    **results: Any,
) -> dict[str, Any]:
    """A result of round ``repeat`` of matrix ``matrix`` (None: a single ``run``);
    ``results`` keys override the numbers."""
    d = make_doc(variant, gbps, status)
    d["metadata"] = {
        "mtu": 1500,
        "kernel": "6.18",
        "cpu_model": "cpu",
        "workload": {"duration": 5, "parallel": parallel, "udp": udp},
    }
    if matrix is not None:
        d["matrix"] = {"id": matrix, "repeat": repeat, "repeats": 3, "order": 0}
    if status == "ok":
        d["results"]["cpu_avg"] = cpu
        d["results"].update(results)
    return d


def sweep_records() -> tuple[Over, list[sweep.Point], list[dict[str, Any]]]:
    """A sweep over --thread 1,2 of sync-gso (with counters) and sync-normal (without; one
    failed run), three runs a point, as flat records."""
    over = parse_over("thread=1,2")
    _, points = plan_cells(
        ["sync-gso", "sync-normal"], over, cli._workload_flags(cli._workload_parser())
    )
    gbps = {
        ("sync-gso", "1"): [10.0, 11.0, 12.0],
        ("sync-gso", "2"): [14.0, 15.0, 16.0],
        ("sync-normal", "1"): [1.0, 1.1, 1.2],
        ("sync-normal", "2"): [1.5, 0.0, 1.6],
    }
    recs = []
    for p in points:
        for g in gbps[(p.spec, p.value)]:
            d = doc(p.cell.spec, g, status="ok" if g else "failed", cpu=50.0 * int(p.value))
            d["sweep"] = {"param": "thread", "value": p.value, "spec": p.spec}
            if p.spec == "sync-gso":
                d["forwarder"] = {"directions": {"1to2": {"packets": 1000, "bytes": 64_000_000}}}
                d["metadata"]["workload"]["omit"] = 0
            recs.append(results.flat(d))
    return over, points, recs
