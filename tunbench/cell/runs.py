"""What runs while a cell is up: a measurement that writes its result file
(:func:`run_cell`), or an unmeasured pass under the profilers (:func:`profile_cell`) or
under ``perf stat`` (:func:`diagnose_cell`); when the cell is pinned (``--placement``,
``--cpus``) the harness's own threads are kept off the forwarder's CPUs meanwhile
(:func:`pinned`). Correctness checks are :mod:`tunbench.plan.verify`'s."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from tunbench.analysis import cost, results
from tunbench.cell import diagnose, perf, record
from tunbench.cell.options import CellOptions
from tunbench.cell.session import CELL_FAILURES, Cell, Phase, perf_svg
from tunbench.cell.variants import CellSpec
from tunbench.load.measurement import Measurement


@contextlib.contextmanager
def pinned(cpus: Sequence[int]) -> Iterator[None]:
    """Pin every thread of the harness to ``cpus`` (the load generators' CPUs, away from
    the forwarder's) while a cell runs; threads started meanwhile (the sampler) inherit
    it. Nothing happens without ``cpus``."""
    if not cpus:
        yield
        return
    tids = [int(t) for t in os.listdir("/proc/self/task")]
    before = {tid: os.sched_getaffinity(tid) for tid in tids}
    for tid in tids:
        with contextlib.suppress(OSError):
            os.sched_setaffinity(tid, set(cpus))
    try:
        yield
    finally:
        for tid, mask in before.items():
            with contextlib.suppress(OSError):
                os.sched_setaffinity(tid, mask)


def run_cell(
    cell: CellSpec,
    opts: CellOptions,
    phase: Phase | None = None,
    extra: dict[str, Any] | None = None,
    after: Callable[[Cell], dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Measure one cell and write its result file; returns the result document.

    A failure of the forwarder, iperf3 or the topology gives a document with
    ``status: failed`` (also written); interruptions propagate after teardown.
    ``extra`` keys (matrix position, profile) are stored in the document as they are;
    :mod:`tunbench.cell.record` assembles the document. ``after`` (``run --verify``: the
    checks) runs in the cell once the figures are taken, a built-in forwarder's counters
    read first (:meth:`Cell.snapshot_stats`) so that its traffic is not counted in them;
    what it returns is the document's ``verify`` block.
    """
    c = Cell(cell, opts, phase)
    doc = record.skeleton(cell, opts, c.run_id, extra)
    m: Measurement | None = None
    counters = None
    try:
        with pinned(opts.load_cpus), c.up():
            m = c.measure()
            if after is None:
                counters = c.forwarder_stats()
            else:
                measured = c.snapshot_stats() if cell.kind == "python" else None
                doc["verify"] = after(c)
                counters = c.forwarder_stats()
                if measured is not None and counters is not None:  # how it ended, measured figures
                    counters = {**measured, "exit_reason": counters.get("exit_reason")}
    except CELL_FAILURES as exc:
        record.record_failure(doc, exc)
        m = None
    record.fill(doc, c.command, counters, m, c.forwarder is not None)
    results.save(doc, opts.results_dir)
    return doc


def profile_cell(
    cell: CellSpec, opts: CellOptions, svg: Path, native: bool = False, phase: Phase | None = None
) -> dict[str, Any]:
    """A separate, unmeasured pass under a profiler: py-spy and perf on a Python forwarder,
    perf on a native one. Returns ``{"svg", "gbps", "native", "error"}`` plus, for a Python
    forwarder, ``perf_svg`` (None when perf drew nothing); no ``native`` when the pass could
    not run; writes no result file.

    The throughput seen under the profiler is kept so its overhead is visible.
    """
    if cell.kind == "baseline":
        return {"svg": None, "gbps": None, "error": "none captured (kernel: no forwarder process)"}
    if cell.kind != "python" and perf.available() is None:
        return {"svg": None, "gbps": None, "error": "none captured (perf is not installed)"}
    c = Cell(cell, opts, phase)
    svg.parent.mkdir(parents=True, exist_ok=True)
    try:
        with pinned(opts.load_cpus), c.up():
            m = c.measure(profile_svg=svg, native=native)
    except CELL_FAILURES as exc:
        return {"svg": None, "gbps": None, "error": str(exc)}
    ok = svg.exists() and svg.stat().st_size > 0
    error = None
    if not ok:  # say which profiler came back empty
        error = "py-spy wrote no flamegraph" if cell.kind == "python" else "perf recorded no stacks"
    out: dict[str, Any] = {
        "svg": str(svg) if ok else None,
        "gbps": m["iperf"].bps / 1e9 if m["iperf"] else None,
        "native": native,
        "error": error,
    }
    if cell.kind == "python":
        second = perf_svg(svg, cell.kind)
        out["perf_svg"] = str(second) if second.exists() else None
    return out


def diagnose_cell(cell: CellSpec, opts: CellOptions, phase: Phase | None = None) -> dict[str, Any]:
    """A separate, unmeasured stream run under ``perf stat`` (:mod:`tunbench.cell.diagnose`):
    syscalls, context switches, migrations (and instructions and cycles where the machine
    has hardware counters) per frame the forwarder wrote. Returns those figures with
    ``counts``, ``packets``, ``hardware_counters``, ``gbps`` (seen while counted) and
    ``error``; writes no result file."""
    out: dict[str, Any] = {"error": None, "gbps": None, "hardware_counters": None}
    if cell.kind == "baseline":
        return {**out, "error": "none counted (kernel: no forwarder process)"}
    perf_bin = perf.available()
    if perf_bin is None:
        return {**out, "error": "none counted (perf is not installed)"}
    if opts.workload.kind != "stream":
        return {**out, "error": "none counted (stream workloads only)"}
    c = Cell(cell, opts, phase)
    try:
        with pinned(opts.load_cpus), c.up():
            data = c.workdir / "perf-stat.csv"
            m = c.measure(diag=data)
            text = data.read_text() if data.exists() else ""
            counters = c.forwarder_stats()
    except CELL_FAILURES as exc:
        return {**out, "error": str(exc)}
    counts = diagnose.parse(text)
    packets = cost.frames_written(counters) or cost.tun_frames(m.get("tun_packets"))
    hw = diagnose.hardware_counters(perf_bin)
    out.update(
        counts=counts,
        packets=packets,
        hardware_counters=hw,
        gbps=m["iperf"].bps / 1e9 if m["iperf"] else None,
        note=None if hw else diagnose.NO_PMU,
        **diagnose.per_packet(counts, packets),
    )
    if not counts:
        out["error"] = "perf stat counted nothing"
    return out
