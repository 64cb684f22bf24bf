"""The versioned result file: one self-describing JSON document per measured cell.

Schema (``docs/results-schema.md`` has the field by field description)::

    {"schema": "tunbench.result", "version": 4, "run_id", "created",
     "cell": {"spec", "kind", "variant", "args", "mode", "offload", "channel"},
     "status": "ok" | "failed", "error": null | "one line",
     "revision": {"rev": "v1.2-3-gabc" | null, "source": "given" | "git-describe" | ...},
     "testbed": "the testbed's name",
     "host": {"inventory_name", "label", "hostname", "kernel", "cpu_model", "cpu_count",
              "memory_bytes", "virtualization", "steal_pct", "nics", "tools", ...},
     "metadata": {...machine, tools, command, mtu, offload flags, workload...},
     "window": {"start", "end", "clock", "anchor"},  # the measured interval
     "results": {...computed numbers, SI units...},
     "forwarder": {...the forwarder's own counters...} | null,
     "samples": [{"t", "dt", "cpu_pct", "cpu_user_pct", "cpu_sys_pct", "rss_bytes",
                  "system_busy_pct", "threads", "thread_pct"}],
     "load_samples": {"iperf3-client": [...], "iperf3-server": [...]},  # same fields
     "iperf3": {...raw iperf3 JSON...} | null}

This module is the one answer to "what is in a result file" for everything that reads
one: the schema's keys, :func:`save` names and stores a document, :func:`load` checks it
and :func:`flat` reduces it to the record tables are built from. A document is assembled
while its cell runs by :mod:`tunbench.cell.record`, from the facts the cell supplies.

Version 2 added the ``host`` block (:mod:`tunbench.cell.hostinfo`); version-1 files are
still read, and get a host block derived from their metadata (``"derived": true``).
Version 3 added ``revision`` and ``testbed`` (``--rev``, ``--testbed``: what ``tunbench
history`` files a run under); older files get them derived: a built-in row's revision is
the tunbench commit it ran (``metadata.git_sha``, ``"source": "derived"``), an external
one's is unknown (null), and the testbed is the host's name. Version 4 added
``topology``: null for a one-host cell, the roles, hosts, clock offsets and per-role
samples of a two-host row (:mod:`tunbench.plan.twohost`); older files read as null.

Files are written atomically (temporary ``.tb-*`` file in the same directory, then
rename), so an interrupted run never leaves half a file.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tunbench.analysis import boundby, cost, fwdmetrics, primary
from tunbench.errors import ResultFileError, UsageError
from tunbench.system.signals import deferred

SCHEMA = "tunbench.result"
VERSION = 4
FLEET_FILE = "fleet.json"  # what tunbench fleet writes beside the hosts' result directories
# the versions load() accepts; older ones get a derived host block (1), revision and testbed
READABLE = (1, 2, 3, 4)
# The workload options a file is keyed by (``metadata.workload``). A file from before
# an option existed ran its default, so missing keys read as these; they are the defaults
# of :class:`tunbench.load.workloads.WorkloadOptions` (a unit test holds the two together).
WORKLOAD_DEFAULTS: dict[str, Any] = {
    "kind": "stream",
    "rr_size": None,
    "pkt_size": None,
    "max_loss": None,
    "iperf_procs": "one",
    "offered_bps": None,
    "bidir": False,
}

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
    "cpu_sched_avg",
    "cpu_wait_avg",
    *cost.KEYS,
)
# A run counts as measured when it has one of these (rr and crr move no bulk data: no gbps);
# tunbench.analysis.primary says which one a workload's statistics are made of.
PRIMARY_KEYS = primary.KEYS
# The flat record printed by ``--json`` and used for tables: these keys always exist.
FLAT_KEYS = (
    "variant",
    "args",
    "status",
    *RESULT_KEYS,
    "bound_by",
    "placement",
    "diagnose",
    "result_file",
)


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


def amend(path: Path, key: str, updates: dict[str, Any]) -> None:
    """Update the ``key`` block of a result file already written (atomically, as
    :func:`write`): what a later step decided about that run, e.g. the plan ``matrix
    --resolve`` made for its row after its first stage."""
    doc = json.loads(path.read_text())
    doc.setdefault(key, {}).update(updates)
    write(doc, path.parent, path.stem)


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
    if doc.get("version") not in READABLE:
        raise ResultFileError(
            f"{path}: schema version {doc.get('version')} is not one of "
            f"{', '.join(map(str, READABLE))}"
        )
    for key in ("cell", "status", "metadata", "results"):
        if key not in doc:
            raise ResultFileError(f"{path}: missing {key!r}")
    if not isinstance(doc.get("host"), dict):
        doc["host"] = derived_host(doc["metadata"])
    if not isinstance(doc.get("revision"), dict):
        doc["revision"] = derived_revision(doc)
    if not doc.get("testbed"):
        doc["testbed"] = host_name(doc)
    doc.setdefault("topology", None)  # before version 4: one host
    doc["_path"] = str(path)
    return doc


def derived_revision(doc: dict[str, Any]) -> dict[str, Any]:
    """The revision block of a file written before it existed (versions 1 and 2): a
    built-in row ran this project at ``metadata.git_sha``; an external one is unknown."""
    sha = (doc.get("metadata") or {}).get("git_sha")
    if (doc.get("cell") or {}).get("kind") != "external" and sha:
        return {"rev": str(sha), "source": "derived"}
    return {"rev": None, "source": None}


def derived_host(meta: dict[str, Any]) -> dict[str, Any]:
    """The host block of a file written before it existed (version 1): what its metadata
    knew; the facts only version 2 records are None."""
    return {
        "inventory_name": None,
        "label": None,
        "hostname": meta.get("hostname"),
        "memory_bytes": None,
        "virtualization": None,
        "steal_pct": None,
        "nics": None,
        "kernel": meta.get("kernel"),
        "cpu_model": meta.get("cpu_model"),
        "cpu_count": meta.get("cpu_count"),
        "tools": {
            "python": meta.get("python"),
            "iperf3": meta.get("iperf3_version"),
            "tunbench": meta.get("tunbench_version"),
            "git_sha": meta.get("git_sha"),
        },
        "redacted": False,
        "derived": True,
    }


UNKNOWN_HOST = "unknown host"


def host_name(doc: dict[str, Any]) -> str:
    """The name reports show for a file's host: its label, else its inventory name, else
    its hostname (a redacted file without a label is ``unknown host``)."""
    host = doc.get("host") or derived_host(doc.get("metadata") or {})
    for key in ("label", "inventory_name", "hostname"):
        if host.get(key):
            return str(host[key])
    return UNKNOWN_HOST


def result_paths(directory: Path) -> list[Path]:
    """The ``*.json`` files of a results directory that may be results, sorted (a fleet
    run's: every host's directory of files; temporary ``.tb-*`` files left out)."""
    if not directory.is_dir():
        raise UsageError(f"results dir {directory} does not exist")
    # a fleet run's directory: fleet.json, and each host's files in a directory of its own
    pattern = "*/*.json" if (directory / FLEET_FILE).is_file() else "*.json"
    return sorted(p for p in directory.glob(pattern) if not p.name.startswith(".tb-"))


def parse(path: Path) -> dict[str, Any] | None:
    """A file's tunbench result document (checked, as :func:`load`), None when the file is
    not a tunbench result at all (unreadable, not JSON, another schema); ResultFileError
    for a tunbench result this version cannot read."""
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return _checked(path, doc) if is_result(doc) else None


def load_dir(
    directory: Path, on_skip: Callable[[list[Path]], None] | None = None
) -> list[dict[str, Any]]:
    """Every result file in ``directory``, oldest first.

    A fleet run's directory (it holds ``fleet.json``) is read one level down: every host's
    directory of files. Temporary files are skipped silently; other ``*.json`` files that
    are not tunbench results (a user's notes, a report exported as JSON, anything
    unreadable) are skipped and handed to ``on_skip`` in one list. A tunbench result that
    this version cannot read (an unknown schema version, missing parts) raises
    ResultFileError naming the file.
    """
    docs, foreign = [], []
    for path in result_paths(directory):
        doc = parse(path)
        if doc is not None:
            docs.append(doc)
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
        "workload": {**WORKLOAD_DEFAULTS, **workload} if isinstance(workload, dict) else workload,
        "mtu": meta.get("mtu"),
        "cpus": cpus if cpus["forwarder"] or cpus["load"] else None,
        "latency": bool(meta.get("latency_probe")),
    }
    if meta.get("steer_receive"):  # another measurement: the forwarder's CPU without the
        key["steer_receive"] = True  # endpoints' receive work (files before it: absent)
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
        "host": host_name(doc),
        "rev": (doc.get("revision") or {}).get("rev"),
        "testbed": doc.get("testbed") or host_name(doc),
        "workload_key": workload_key(doc),
        "kernel": doc["metadata"].get("kernel"),
        "cpu_model": doc["metadata"].get("cpu_model"),
        "git_sha": doc["metadata"].get("git_sha"),
        "profile": doc.get("profile"),
        "matrix": doc.get("matrix"),
        "sweep": doc.get("sweep"),
        "verify": doc.get("verify"),
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
    # the cost figures and capacity flags too (from the verdict as it is now)
    out.update(cost.compute({**doc, "results": {**res, "bound_by": out["bound_by"]}}))
    placement = doc["metadata"].get("placement")
    out["placement"] = placement.get("label") if isinstance(placement, dict) else None
    diag = doc.get("diagnose")
    out["diagnose"] = diag
    for key, _ in boundby.PER_PACKET:  # the diagnostic pass's figures, per packet
        out[key] = diag.get(key) if isinstance(diag, dict) else None
    out["offered"] = doc["metadata"].get("offered")
    return out
