"""The versioned result file: one self-describing JSON document per measured cell.

Schema (``docs/results-schema.md`` has the field by field description)::

    {"schema": "tunbench.result", "version": 1, "run_id", "created",
     "cell": {"spec", "kind", "variant", "args", "mode", "offload", "channel"},
     "status": "ok" | "failed", "error": null | "one line",
     "metadata": {...machine, tools, command, mtu, offload flags, workload...},
     "window": {"start", "end"},          # Unix seconds: the measured interval
     "results": {...computed numbers, SI units...},
     "forwarder": {...the forwarder's own counters...} | null,
     "samples": [{"t", "dt", "cpu_pct", "rss_bytes", "system_busy_pct", "threads"}],
     "iperf3": {...raw iperf3 JSON...} | null}

Files are written atomically (temporary ``.tb-*`` file in the same directory, then
rename), so an interrupted run never leaves half a file.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from tunbench.errors import ResultFileError, UsageError

SCHEMA = "tunbench.result"
VERSION = 1
MB = 1_000_000

# The flat record printed by ``--json`` and used for tables: these keys always exist.
# Numbers copied from ``results`` into the flat record.
RESULT_KEYS = (
    "gbps",
    "retransmits",
    "cpu_avg",
    "cpu_max",
    "mem_avg_mb",
    "mem_max_mb",
    "system_busy_avg",
    "duration_s",
    "samples",
    "lost_percent",
    "jitter_ms",
    "rtt_p50_ms",
    "rtt_p99_ms",
)
# The flat record printed by ``--json`` and used for tables: these keys always exist.
FLAT_KEYS = ("variant", "args", "status", *RESULT_KEYS, "result_file")


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


def load(path: Path) -> dict[str, Any]:
    """Read and check one result file."""
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ResultFileError(f"{path}: cannot read result file: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        raise ResultFileError(f"{path}: not a tunbench result file")
    if doc.get("version") != VERSION:
        raise ResultFileError(f"{path}: schema version {doc.get('version')} is not {VERSION}")
    for key in ("cell", "status", "metadata", "results"):
        if key not in doc:
            raise ResultFileError(f"{path}: missing {key!r}")
    doc["_path"] = str(path)
    return doc


def load_dir(directory: Path) -> list[dict[str, Any]]:
    """Every result file in ``directory``, oldest first; temporary files are skipped."""
    if not directory.is_dir():
        raise UsageError(f"results dir {directory} does not exist")
    files = sorted(p for p in directory.glob("*.json") if not p.name.startswith(".tb-"))
    docs = [load(p) for p in files]
    docs.sort(key=lambda d: str(d.get("created", "")))
    return docs


def workload_key(doc: dict[str, Any]) -> str:
    """What must be equal for two runs to be the same measurement: the iperf3 workload, the
    MTU, CPU pinning and whether the latency probe ran beside it."""
    meta = doc.get("metadata", {})
    cpus = meta.get("cpus") or {}
    key = {
        "workload": meta.get("workload"),
        "mtu": meta.get("mtu"),
        "cpus": cpus if cpus.get("forwarder") or cpus.get("load") else None,
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
    }
    for key in RESULT_KEYS:
        out[key] = res.get(key)
    return out
