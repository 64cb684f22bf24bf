"""The versioned result file: one self-describing JSON document per measured cell.

Schema (``docs/results-schema.md`` has the field by field description)::

    {"schema": "tunbench.result", "version": 1, "run_id", "created",
     "cell": {"spec", "kind", "variant", "args", "mode", "offload", "channel"},
     "status": "ok" | "failed", "error": null | "one line",
     "metadata": {...machine, tools, command, mtu, offload flags, workload...},
     "window": {"start", "end", "clock", "anchor"},  # the measured interval
     "results": {...computed numbers, SI units...},
     "forwarder": {...the forwarder's own counters...} | null,
     "samples": [{"t", "dt", "cpu_pct", "cpu_user_pct", "cpu_sys_pct", "rss_bytes",
                  "system_busy_pct", "threads", "thread_pct"}],
     "load_samples": {"iperf3-client": [...], "iperf3-server": [...]},  # same fields
     "iperf3": {...raw iperf3 JSON...} | null}

This module is the one answer to "what is in a result file": :func:`skeleton`,
:func:`record_failure` and :func:`fill` assemble a document while its cell runs
(:mod:`tunbench.session` only supplies the facts), :func:`save` names and stores it,
:func:`load` checks it and :func:`flat` reduces it to the record tables are built from.

Files are written atomically (temporary ``.tb-*`` file in the same directory, then
rename), so an interrupted run never leaves half a file.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, NotRequired, TypedDict

from tunbench import boundby, fwdmetrics, metadata, primary, stats
from tunbench.errors import ForwarderError, MeasurementError, ResultFileError, UsageError
from tunbench.sampler import samples_to_json
from tunbench.signals import deferred
from tunbench.variants import CellSpec, describe
from tunbench.workloads import DEFAULTS

if TYPE_CHECKING:  # annotations only; session imports this module, so it cannot go the other way
    from tunbench.runners.iperf3 import Iperf3Result
    from tunbench.runners.ping import PingResult
    from tunbench.sampler import Background, Sample, Summary
    from tunbench.session import CellOptions

SCHEMA = "tunbench.result"
VERSION = 1
MB = 1_000_000
# A run whose receiver-side interval throughput varies more than this (coefficient of
# variation over iperf3's 1 s intervals) did not reach a steady state.
UNSTEADY_CV = 0.10

# Figures of the rr, crr and zero-loss workloads (null in other runs).
WORKLOAD_KEYS = (
    "transactions_per_s",
    "latency_p50_us",
    "latency_p90_us",
    "latency_p99_us",
    "connections_per_s",
    "zero_loss_pps",
    "zero_loss_gbps",
)
# Numbers copied from ``results`` into the flat record.
RESULT_KEYS = (
    "gbps",
    "retransmits",
    "cpu_avg",
    "cpu_user_avg",
    "cpu_sys_avg",
    "cpu_max",
    "cpu_threads",
    "mem_avg_mb",
    "mem_max_mb",
    "system_busy_avg",
    "duration_s",
    "samples",
    "sampler_error",
    "sampler_cpu_pct",
    "background_cpu_pct",
    "noisy",
    "interval_cv",
    "steady",
    "lost_percent",
    "pps",
    "jitter_ms",
    "rtt_p50_ms",
    "rtt_p99_ms",
    "rtt_count",
    *fwdmetrics.KEYS,
    "gbps_fwd",
    "gbps_rev",
    *WORKLOAD_KEYS,
)
# A run counts as measured when it has one of these (rr and crr move no bulk data: no gbps);
# tunbench.primary says which one a workload's statistics are made of.
PRIMARY_KEYS = primary.KEYS
# The flat record printed by ``--json`` and used for tables: these keys always exist.
FLAT_KEYS = ("variant", "args", "status", *RESULT_KEYS, "bound_by", "result_file")


class Measurement(TypedDict):
    """What one measurement of a cell hands to :func:`fill`."""

    iperf: Iperf3Result | None  # None: a workload without iperf3 (rr, crr)
    samples: list[Sample]
    window: dict[str, Any]  # "start", "end": time.monotonic() seconds; "anchor"
    summary: Summary
    sampler_error: str | None
    sampler_cpu_pct: float | None  # the sampler thread's own CPU, % of one core
    background: Background | None  # the check before traffic (None: not made)
    interval_bps: list[float]  # receiver side, per measured iperf3 interval
    ping: NotRequired[PingResult]  # only with the latency probe, inside the window
    load_samples: NotRequired[dict[str, list[Sample]]]  # iperf3 client and server processes
    workload: NotRequired[dict[str, Any]]  # rr/crr/zero-loss figures, copied into results
    workload_detail: NotRequired[dict[str, Any]]  # what they rest on (tool output, steps)


def skeleton(
    cell: CellSpec, opts: CellOptions, run_id: str, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A result document without measurements, as the cell starts.

    ``extra`` keys (matrix position, profile) are stored as they are.
    """
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
        "metadata": {
            **metadata.collect(),
            "mtu": opts.mtu,
            "workload": {**asdict(opts.iperf), **asdict(opts.workload)},
            "latency_probe": opts.latency,
            "cpus": {
                "forwarder": list(opts.fwd_cpus),
                "load": list(opts.load_cpus),
                "harness": list(opts.load_cpus),
            },
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
    }
    doc.update(extra or {})
    return doc


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


def slug(spec: str, limit: int = 60) -> str:
    """A file-name-safe form of a spec: ``sync-gso --thread 2`` -> ``sync-gso_--thread_2``."""
    keep = [c if c.isalnum() or c in "-_" else "_" for c in spec.replace(" ", "_")]
    return "".join(keep).strip("_")[:limit] or "cell"


def check_writable(directory: Path) -> None:
    """Make sure ``directory`` exists (creating it) and accepts files; UsageError if not."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"results dir {directory} cannot be created: {exc.strerror}") from exc
    if not directory.is_dir() or not os.access(directory, os.W_OK | os.X_OK):
        raise UsageError(f"results dir {directory} is not writable")


def write(record: dict[str, Any], directory: Path, stem: str) -> Path:
    """Write ``record`` as ``<directory>/<stem>.json`` atomically; returns the path."""
    path = directory / f"{stem}.json"
    with deferred():  # a signal is raised after the file is whole or gone, never between
        fd, tmp = tempfile.mkstemp(prefix=".tb-", suffix=".tmp", dir=directory)
        try:
            with os.fdopen(fd, "w") as fh:
                json.dump(record, fh, indent=1, sort_keys=False)
                fh.write("\n")
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
    return path


def save(doc: dict[str, Any], directory: Path) -> Path:
    """Write a cell's document as ``<directory>/<YYYYmmdd-HHMMSS>-<spec>-<run id>.json``.

    Like :func:`load`, it records the path in ``doc["_path"]`` (not in the file).
    """
    stem = f"{time.strftime('%Y%m%d-%H%M%S')}-{slug(doc['cell']['spec'])}-{doc['run_id']}"
    path = write(doc, directory, stem)
    doc["_path"] = str(path)
    return path


def load(path: Path) -> dict[str, Any]:
    """Read and check one result file."""
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ResultFileError(f"{path}: cannot read result file: {exc}") from exc
    if not is_result(doc):
        raise ResultFileError(f"{path}: not a tunbench result file")
    return _checked(path, doc)


def is_result(doc: object) -> bool:
    """Whether ``doc`` says it is a tunbench result (the ``schema`` marker), any version."""
    return isinstance(doc, dict) and doc.get("schema") == SCHEMA


def _checked(path: Path, doc: dict[str, Any]) -> dict[str, Any]:
    if doc.get("version") != VERSION:
        raise ResultFileError(f"{path}: schema version {doc.get('version')} is not {VERSION}")
    for key in ("cell", "status", "metadata", "results"):
        if key not in doc:
            raise ResultFileError(f"{path}: missing {key!r}")
    doc["_path"] = str(path)
    return doc


def load_dir(
    directory: Path, on_skip: Callable[[list[Path]], None] | None = None
) -> list[dict[str, Any]]:
    """Every result file in ``directory``, oldest first.

    Temporary files are skipped silently; other ``*.json`` files that are not tunbench
    results (a user's notes, a report exported as JSON, anything unreadable) are skipped and
    handed to ``on_skip`` in one list. A tunbench result that this version cannot read (an
    unknown schema version, missing parts) raises ResultFileError naming the file.
    """
    if not directory.is_dir():
        raise UsageError(f"results dir {directory} does not exist")
    files = sorted(p for p in directory.glob("*.json") if not p.name.startswith(".tb-"))
    docs, foreign = [], []
    for path in files:
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError):
            doc = None
        if is_result(doc):
            docs.append(_checked(path, doc))
        else:
            foreign.append(path)
    if foreign and on_skip is not None:
        on_skip(foreign)
    docs.sort(key=lambda d: str(d.get("created", "")))
    return docs


def workload_key(doc: dict[str, Any]) -> str:
    """What must be equal for two runs to be the same measurement: the workload (iperf3
    options, ``--workload`` kind, ``--bidir``, sizes, loss bound, iperf3 processes), the
    MTU, CPU pinning and whether the latency probe ran beside it."""
    meta = doc.get("metadata", {})
    cpus = {k: (meta.get("cpus") or {}).get(k) for k in ("forwarder", "load")}
    workload = meta.get("workload")
    key = {
        # files from before a workload option existed ran its default
        "workload": {**DEFAULTS, **workload} if isinstance(workload, dict) else workload,
        "mtu": meta.get("mtu"),
        "cpus": cpus if cpus["forwarder"] or cpus["load"] else None,
        "latency": bool(meta.get("latency_probe")),
    }
    return json.dumps(key, sort_keys=True)


def flat(doc: dict[str, Any]) -> dict[str, Any]:
    """The flat record (``--json`` output): FLAT_KEYS plus table descriptors."""
    res = doc.get("results", {})
    cell = doc["cell"]
    out: dict[str, Any] = {
        "variant": cell["variant"],
        "args": cell.get("args", []),
        "spec": cell.get("spec"),
        "kind": cell.get("kind"),
        "mode": cell.get("mode"),
        "offload": cell.get("offload"),
        "channel": cell.get("channel"),
        "status": doc["status"],
        "error": doc.get("error"),
        "run_id": doc.get("run_id"),
        "created": doc.get("created"),
        "result_file": doc.get("_path"),
        "workload_key": workload_key(doc),
        "kernel": doc["metadata"].get("kernel"),
        "cpu_model": doc["metadata"].get("cpu_model"),
        "git_sha": doc["metadata"].get("git_sha"),
        "profile": doc.get("profile"),
        "matrix": doc.get("matrix"),
        "sweep": doc.get("sweep"),
        "workload": ((doc["metadata"].get("workload") or {}).get("kind")) or "stream",
    }
    for key in RESULT_KEYS:
        out[key] = res.get(key)
    # from the counters again, so that files written before these metrics get them too
    metrics = fwdmetrics.compute(doc)
    out.update({key: metrics[key] for key in fwdmetrics.KEYS})
    # decided again from the samples, so that tables and the page agree with the rule as it
    # is now, and files from before the rule get a verdict too
    bound = boundby.from_doc(doc)
    out["bound_by"] = bound.verdict if bound else res.get("bound_by")
    return out
