"""Result documents built by hand for the tests that need no root (report, compare, page)."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tunbench.analysis import results
from tunbench.cli import cellargs
from tunbench.plan import sweep
from tunbench.plan.sweep import Over, parse_over, plan_cells


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
        ["sync-gso", "sync-normal"], over, cellargs.workload_flags(cellargs.workload_parser())
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


# Real result documents of the rr, crr and zero-loss workloads (one matrix run of sync-normal,
# sync-gso and peer-socat each, on the 2-core VM; samples outside the window trimmed).
WORKLOAD_DATA = Path(__file__).parent / "data" / "workloads"
FIGURE = {"rr": "transactions_per_s", "crr": "connections_per_s", "zero-loss": "zero_loss_pps"}


def real_docs(kind: str) -> list[dict[str, Any]]:
    """The three real documents of workload ``kind`` (``rr``, ``crr``, ``zero-loss``)."""
    return [json.loads(p.read_text()) for p in sorted(WORKLOAD_DATA.glob(f"{kind}-*.json"))]


def real_matrix(
    kind: str,
    factors: Sequence[float] = (1.0, 0.98, 1.02),
    matrix_id: str = "m-real",
    kernel: bool = False,
) -> list[dict[str, Any]]:
    """A matrix of ``len(factors)`` rounds made from :func:`real_docs`: round r is each real
    document with its workload figure times ``factors[r]``. With ``kernel``, a
    ``kernel-router`` and a ``kernel-router --no-offload`` row join, at twice sync-gso's
    figure and the same as sync-normal's."""
    base = real_docs(kind)
    if kernel:
        by_spec = {d["cell"]["spec"]: d for d in base}
        for spec, like, scale in (
            ("kernel-router", "sync-gso", 2.0),
            ("kernel-router --no-offload", "sync-normal", 1.0),
        ):
            k = copy.deepcopy(by_spec[like])
            k["cell"] = {
                "spec": spec,
                "kind": "baseline",
                "variant": "kernel-router",
                "args": spec.split()[1:],
                "mode": "kernel",
                "offload": "none" if "--no-offload" in spec else "kernel",
                "channel": "-",
            }
            k["results"][FIGURE[kind]] *= scale
            k["forwarder"] = None
            k["samples"] = []
            for key in ("cpu_avg", "cpu_user_avg", "cpu_sys_avg", "cpu_max", "mem_avg_mb"):
                k["results"][key] = None  # a kernel row has no forwarder process
            base.append(k)
    docs = []
    for r, f in enumerate(factors):
        for i, d in enumerate(base):
            c = copy.deepcopy(d)
            c["run_id"] = f"{r:02x}{i:04x}"
            c["matrix"] = {**c.get("matrix", {}), "id": matrix_id, "repeat": r, "cell": i}
            c["results"][FIGURE[kind]] *= f
            docs.append(c)
    return docs


def save_docs(docs: Sequence[dict[str, Any]], directory: Path) -> Path:
    """Write ``docs`` into ``directory`` as result files; returns it."""
    directory.mkdir(parents=True, exist_ok=True)
    start = len(list(directory.glob("*.json")))
    for i, d in enumerate(docs, start):
        results.write(d, directory, f"{i:04d}-{results.slug(d['cell']['spec'])}")
    return directory


def flat(docs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The flat records of ``docs``, as report and compare read them."""
    return [results.flat(d) for d in docs]


def base_figures(kind: str) -> dict[str, float]:
    """Spec -> the workload figure of its real document (:func:`real_docs`)."""
    return {d["cell"]["spec"]: d["results"][FIGURE[kind]] for d in real_docs(kind)}


def figures_of(page: str) -> dict[str, Any]:
    """The plotly figures a page embeds, by element id."""
    m = re.search(r'id="tb-figures">(.*?)</script>', page, re.S)
    assert m, "no figures in the page"
    figs: dict[str, Any] = json.loads(m.group(1))
    return figs


HISTORY_RUNS = 4  # rounds per revision in write_rev


def write_rev(
    directory: Path,
    rev: str,
    fwd_gbps: float,
    kernel_gbps: float = 40.0,
    seed: int = 0,
    testbed: str = "lab",
    noise: float = 0.01,
) -> None:
    """One matrix at revision ``rev``: HISTORY_RUNS rounds of sync-gso and of kernel-veth."""
    rng = np.random.default_rng(seed)
    for r in range(HISTORY_RUNS):
        for spec, gbps in (("sync-gso", fwd_gbps), ("kernel-veth", kernel_gbps)):
            d = doc(spec, float(gbps * (1 + rng.uniform(-noise, noise))), repeat=r, matrix=rev)
            d["revision"] = {"rev": rev, "source": "given"}
            d["testbed"] = testbed
            d["created"] = f"2026-12-0{1 + seed % 9}T0{r}:00:00+0000"
            if spec == "kernel-veth":
                d["cell"].update({"kind": "baseline", "mode": "kernel", "offload": "kernel"})
                d["results"]["cpu_avg"] = None  # no forwarder process to sample
            d["run_id"] = f"{rev}{r}{spec[:1]}"
            results.write(d, directory, f"{testbed}-{rev}-{r}-{spec}")
