""" "Bound by": what limited a run, decided from the CPU it used and the CPU that was left.

Inputs are a result document's samples (JSON form) over its measured window: the
forwarder's process tree (per thread when the samples carry ``cpu_threads``), the load
generators' (``load_samples``: the iperf3 client and server processes) and whole-machine
busy. The verdict, first match wins:

1. ``forwarder thread <name> saturated``: one forwarder thread used >= 95 % of a core, so
   more cores would not help it. Without per-thread samples the forwarder's total is held
   against its thread count instead (a single-threaded forwarder at >= 95 % is saturated;
   one with N threads must use >= N x 95 %, and is then called ``forwarder saturated``).
   A forwarder pinned to k CPUs (``--placement split``, ``--cpus``) that used >= k x 95 %
   in total is ``forwarder saturated (its CPU)`` too: its threads share those CPUs.
2. ``load generator saturated``: an iperf3 process used >= 95 % of a core. libiperf before
   3.16 runs every stream in one thread (the wrapper's second thread only drains a pipe),
   so without per-thread samples its total is held against one core. With the load
   generators pinned, also when their CPUs were >= 95 % busy on average (client and
   server then share them, and neither needs a full core to run out of room).
3. ``machine saturated``: the whole machine was >= 95 % busy: every core was taken, so no
   process could get a full one.
4. ``forwarder busy, threads unknown``: the forwarder used >= 95 % of a core in total but
   the samples carry no per-thread CPU, so a saturated thread can be neither seen nor
   ruled out (rather than calling such a run not CPU-bound).
5. ``not CPU-bound``: none of these; the limit is elsewhere (drops, retransmits, the
   protocol, a pacing rate), and the numbers say which of those were seen.

Per-thread CPU comes from the window averages in ``results.cpu_threads`` (thread name or
tid -> % of one core) when the file has them, else from the samples' ``cpu_threads``.

Everything here reads plain dicts, so the report can decide for files written before this
rule existed, and :mod:`tunbench.analysis.results` stores the same verdict when a cell is measured.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

SATURATED = 95.0  # % of one core for a thread or process, % of all cores for the machine
LOAD_NAMES = {"iperf3-client": "iperf3 client", "iperf3-server": "iperf3 server"}
# the diagnostic pass's figures (result key "diagnose") that the explanation names
PER_PACKET = (
    ("syscalls_per_packet", "syscalls"),
    ("cswitches_per_packet", "context switches"),
    ("migrations_per_packet", "migrations"),
    ("instructions_per_packet", "instructions"),
    ("cycles_per_packet", "cycles"),
)


@dataclass(frozen=True)
class ProcessCPU:
    """One process tree over a window: total and per-thread CPU in % of one core."""

    total: float
    threads: int = 1  # most threads seen at once
    per_thread: Mapping[str, float] | None = None  # None when the samples carry none

    def busiest(self) -> tuple[str, float] | None:
        if not self.per_thread:
            return None
        name, pct = max(self.per_thread.items(), key=lambda kv: kv[1])
        return name, pct


@dataclass(frozen=True)
class Bound:
    """A verdict and the numbers it was decided from (``also``: other limits that held)."""

    verdict: str
    numbers: dict[str, Any] = field(default_factory=dict)
    also: tuple[str, ...] = ()

    def explain(self) -> str:
        """The numbers behind the verdict as one line, e.g. for a table cell's tooltip."""
        n = self.numbers
        parts = []
        if n.get("busiest_thread"):
            parts.append(f"busiest forwarder thread {n['busiest_thread']} {n['busiest_pct']:.0f}%")
        if n.get("forwarder_pct") is not None:
            threads = n["forwarder_threads"]
            parts.append(
                f"forwarder {n['forwarder_pct']:.0f}% ({threads} thread{'s' * (threads != 1)})"
            )
        for name, pct in (n.get("load_pct") or {}).items():
            parts.append(f"{LOAD_NAMES.get(name, name)} {pct:.0f}%")
        if n.get("system_busy_pct") is not None:
            parts.append(f"machine {n['system_busy_pct']:.0f}% busy of {n['cpu_count']} cores")
        if n.get("load_cpus_busy_pct") is not None:
            parts.append(f"load CPUs {n['load_cpus_busy_pct']:.0f}% busy")
        for key, what in (("retransmits", "retransmits"), ("drops", "forwarder drops")):
            if n.get(key):
                parts.append(f"{n[key]} {what}")
        if n.get("runq_wait_share") is not None:
            parts.append(f"forwarder waited {100 * n['runq_wait_share']:.0f}% of its runnable time")
        per = [
            f"{n[key]:.2f} {what}"
            for key, what in PER_PACKET
            if isinstance(n.get(key), int | float)
        ]
        if per:
            parts.append("per packet: " + ", ".join(per))
        if self.also:
            parts.append("also: " + ", ".join(self.also))
        if n.get("closest"):
            parts.append(f"closest to a limit: {n['closest']}")
        return "; ".join(parts) + " (CPU in % of one core)"

    def to_json(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "also": list(self.also), **self.numbers}


def in_window(samples: Iterable[Mapping[str, Any]], start: float, end: float) -> list[Any]:
    """The samples whose whole interval lies inside ``[start, end]`` (as the sampler's
    summary picks them)."""
    return [s for s in samples if s["t"] - s["dt"] >= start - 1e-3 and s["t"] <= end + 1e-3]


def weighted(samples: Sequence[Mapping[str, Any]], key: str) -> float | None:
    """Time-weighted average of ``key`` over ``samples``; None without samples."""
    span = sum(float(s["dt"]) for s in samples)
    if not samples or span <= 0:
        return None
    return sum(float(s.get(key) or 0.0) * float(s["dt"]) for s in samples) / span


def thread_avgs(samples: Sequence[Mapping[str, Any]]) -> dict[str, float] | None:
    """Per-thread time-weighted averages from samples that carry ``cpu_threads``
    (``{name: pct}``, or a list of ``{"name", "cpu_pct"}``); None when none does."""
    used: dict[str, float] = {}
    span = 0.0
    seen = False
    for s in samples:
        threads = s.get("cpu_threads")
        dt = float(s["dt"])
        span += dt
        if threads is None:
            continue
        seen = True
        pairs = (
            threads.items()
            if isinstance(threads, Mapping)
            else ((t.get("name") or t.get("tid"), t.get("cpu_pct")) for t in threads)
        )
        for name, pct in pairs:
            used[str(name)] = used.get(str(name), 0.0) + float(pct or 0.0) * dt
    if not seen or span <= 0:
        return None
    return {name: u / span for name, u in used.items()}


def process_cpu(samples: Sequence[Mapping[str, Any]]) -> ProcessCPU | None:
    """What :func:`decide` needs to know about one process tree, from its window samples."""
    total = weighted(samples, "cpu_pct")
    if total is None:
        return None
    threads = max((int(s.get("threads") or 1) for s in samples), default=1)
    return ProcessCPU(total, max(threads, 1), thread_avgs(samples))


def _saturated(p: ProcessCPU, workers: int) -> tuple[str, float] | None:
    """(thread name, pct) of a saturated thread; ("", total) when only the total says so."""
    busiest = p.busiest()
    if busiest is not None:
        return busiest if busiest[1] >= SATURATED else None
    return ("", p.total) if p.total >= SATURATED * max(workers, 1) else None


def decide(
    forwarder: ProcessCPU | None,
    load: Mapping[str, ProcessCPU],
    system_busy_pct: float | None,
    cpu_count: int,
    retransmits: int | None = None,
    drops: int | None = None,
    fwd_cpus: int = 0,
    load_cpus_busy: float | None = None,
) -> Bound:
    """The verdict for one run (see the module docstring for the rule). ``fwd_cpus``: how
    many CPUs the forwarder was pinned to (0: not pinned); ``load_cpus_busy``: the average
    busy % of the CPUs the load generators were pinned to (None: not pinned)."""
    numbers: dict[str, Any] = {
        "forwarder_pct": forwarder.total if forwarder else None,
        "forwarder_threads": forwarder.threads if forwarder else None,
        "load_pct": {name: p.total for name, p in load.items()},
        "system_busy_pct": system_busy_pct,
        "cpu_count": cpu_count,
        "retransmits": retransmits,
        "drops": drops,
        "load_cpus_busy_pct": load_cpus_busy,
    }
    if forwarder is not None and (b := forwarder.busiest()) is not None:
        numbers["busiest_thread"], numbers["busiest_pct"] = b
    found: list[str] = []
    if forwarder is not None and (hit := _saturated(forwarder, forwarder.threads)):
        name = hit[0] or ("main" if forwarder.threads == 1 else "")
        found.append(f"forwarder thread {name} saturated" if name else "forwarder saturated")
    elif forwarder is not None and fwd_cpus and forwarder.total >= SATURATED * fwd_cpus:
        found.append("forwarder saturated (its CPU)")
    for name, p in load.items():
        if _saturated(p, 1):
            found.append(f"load generator saturated ({LOAD_NAMES.get(name, name)})")
    load_full = load_cpus_busy is not None and load_cpus_busy >= SATURATED
    if load_full and not any(f.startswith("load generator") for f in found):
        found.append("load generator saturated (its CPUs)")
    if system_busy_pct is not None and system_busy_pct >= SATURATED:
        found.append("machine saturated")
    if not found and forwarder and forwarder.per_thread is None and forwarder.total >= SATURATED:
        found.append("forwarder busy, threads unknown")
    if not found:
        numbers["closest"] = _closest(forwarder, load, system_busy_pct)
        return Bound("not CPU-bound", numbers)
    return Bound(found[0], numbers, tuple(found[1:]))


def _closest(
    forwarder: ProcessCPU | None, load: Mapping[str, ProcessCPU], busy: float | None
) -> str | None:
    """What came nearest to its limit, for a run that hit none (``iperf3 client 93%``)."""
    near: list[tuple[float, str]] = []
    if forwarder is not None and (b := forwarder.busiest()) is not None:
        near.append((b[1], f"forwarder thread {b[0]} {b[1]:.0f}% of a core"))
    elif forwarder is not None and forwarder.threads == 1:
        near.append((forwarder.total, f"forwarder {forwarder.total:.0f}% of a core"))
    near += [(p.total, f"{LOAD_NAMES.get(n, n)} {p.total:.0f}% of a core") for n, p in load.items()]
    if busy is not None:
        near.append((busy, f"machine {busy:.0f}% busy"))
    return max(near)[1] if near else None


def _drops(counters: Mapping[str, Any] | None) -> int | None:
    directions = (counters or {}).get("directions") or {}
    if not directions:
        return None
    return sum(int(d.get("drops") or 0) for d in directions.values())


def from_doc(doc: Mapping[str, Any]) -> Bound | None:
    """The verdict for one result document; None when it has no measured window."""
    window = doc.get("window")
    if doc.get("status") != "ok" or not window:
        return None
    start, end = float(window["start"]), float(window["end"])
    meta = doc.get("metadata") or {}
    res = doc.get("results") or {}
    inside = in_window(doc.get("samples") or [], start, end)
    forwarder = process_cpu(inside) if doc.get("cell", {}).get("kind") != "baseline" else None
    if forwarder is not None and isinstance(res.get("cpu_threads"), Mapping):
        per = {str(k): float(v or 0.0) for k, v in res["cpu_threads"].items()}
        forwarder = ProcessCPU(forwarder.total, forwarder.threads, per or None)
    load = {}
    for name, samples in (doc.get("load_samples") or {}).items():
        p = process_cpu(in_window(samples, start, end))
        if p is not None:
            load[name] = p
    busy = weighted(inside, "system_busy_pct")
    cpus = meta.get("cpus") or {}
    fwd_cpus = list(cpus.get("forwarder") or [])
    load_cpus = [c for c in cpus.get("load") or [] if c not in fwd_cpus]
    bound = decide(
        forwarder,
        load,
        busy if busy is not None else res.get("system_busy_avg"),
        int(meta.get("cpu_count") or 1),
        res.get("retransmits"),
        _drops(doc.get("forwarder")),
        fwd_cpus=len(fwd_cpus),
        load_cpus_busy=cpus_busy(inside, load_cpus),
    )
    bound.numbers.update(_why(doc))
    return bound


def cpus_busy(samples: Sequence[Mapping[str, Any]], cpus: Sequence[int]) -> float | None:
    """Time-weighted busy % of the CPUs ``cpus`` together (their mean), from the samples'
    per-CPU ``cpu_busy``; None without CPUs or samples that have them."""
    if not cpus:
        return None
    used = span = 0.0
    for s in samples:
        busy = s.get("cpu_busy") or []
        if len(busy) <= max(cpus):
            continue
        dt = float(s["dt"])
        used += sum(float(busy[c]) for c in cpus) / len(cpus) * dt
        span += dt
    return used / span if span > 0 else None


def _why(doc: Mapping[str, Any]) -> dict[str, Any]:
    """Run-queue wait share (schedstat) and the diagnostic pass's per-packet figures."""
    res = doc.get("results") or {}
    out: dict[str, Any] = {}
    run, wait = res.get("cpu_sched_avg"), res.get("cpu_wait_avg")
    if isinstance(run, int | float) and isinstance(wait, int | float) and run + wait > 0:
        out["runq_wait_share"] = wait / (run + wait)
    diag = doc.get("diagnose")
    if isinstance(diag, Mapping):
        out.update({key: diag.get(key) for key, _ in PER_PACKET if diag.get(key) is not None})
    return out


def summarize_row(verdicts: Sequence[str | None]) -> str | None:
    """One cell for a table row from its runs' verdicts: the verdict when all agree, else the
    most common one with its count (``machine saturated (2/3)``)."""
    seen = [v for v in verdicts if v]
    if not seen:
        return None
    top = max(dict.fromkeys(seen), key=seen.count)  # first of the most common
    return top if seen.count(top) == len(seen) else f"{top} ({seen.count(top)}/{len(seen)})"
