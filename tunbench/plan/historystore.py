"""The index ``tunbench history`` reads: every run of a results directory in an sqlite
database, keyed by testbed, spec, workload and revision.

The result files stay the source of truth. The index (default
``<results-dir>/history.sqlite``) only saves reading and reducing every file again:
:func:`refresh` adds the files that are new or changed since it last looked (by size and
modification time) and forgets those that are gone, and deleting the index loses
nothing (the next refresh rebuilds it). An index of another format version is rebuilt.

:func:`load_series` turns the index into :class:`tunbench.analysis.history.Series`:
each run's primary figure, paired with the kernel run of its round for ``% of kernel``
(:mod:`tunbench.report.pairing`, as the report does), the revisions in order: git order
when ``repo`` is a git repository the revisions resolve in (``git rev-list``, oldest
first; ``-dirty`` right after its commit), else the order they were first measured in.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tunbench.analysis import primary, results
from tunbench.analysis.history import Run, Series
from tunbench.errors import UsageError
from tunbench.report import pairing
from tunbench.system.procs import run_output

INDEX_NAME = "history.sqlite"
FORMAT = "1"  # bumped when the tables change: an older index is rebuilt
# the flat record's keys that pairing and primary.value need, kept per run
RECORD_KEYS = (
    "status",
    "spec",
    "variant",
    "mode",
    "offload",
    "workload",
    "workload_key",
    "host",
    "matrix",
    "offered_bps",
    "cpu_avg",
    *primary.KEYS,
)
TABLES = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS files (path TEXT PRIMARY KEY, mtime_ns INTEGER, size INTEGER);
CREATE TABLE IF NOT EXISTS runs (
    path TEXT NOT NULL REFERENCES files(path) ON DELETE CASCADE,
    run_id TEXT, created TEXT, testbed TEXT, spec TEXT, workload TEXT, workload_key TEXT,
    rev TEXT, status TEXT, metric TEXT, value REAL, record TEXT
);
CREATE INDEX IF NOT EXISTS runs_by_key ON runs (testbed, spec, workload_key, rev);
"""


def index_path(results_dir: Path, given: Path | None = None) -> Path:
    return given if given is not None else results_dir / INDEX_NAME


@dataclass(frozen=True)
class Refreshed:
    """What a refresh did: files read, forgotten, and skipped (not tunbench results)."""

    read: int
    removed: int
    unchanged: int
    skipped: list[Path]
    runs: int  # runs in the index after it


@contextmanager
def _db(path: Path) -> Iterator[sqlite3.Connection]:
    try:
        conn = sqlite3.connect(path)
    except sqlite3.Error as exc:
        raise UsageError(f"cannot open the history index {path}: {exc}") from exc
    with closing(conn):
        conn.execute("PRAGMA foreign_keys = ON")
        yield conn


def _prepare(conn: sqlite3.Connection) -> None:
    conn.executescript(TABLES)
    row = conn.execute("SELECT value FROM meta WHERE key = 'format'").fetchone()
    if row is None or row[0] != FORMAT:  # another format: start again from the files
        conn.executescript("DROP TABLE runs; DROP TABLE files; DELETE FROM meta;")
        conn.executescript(TABLES)
        conn.execute("INSERT INTO meta VALUES ('format', ?)", (FORMAT,))


def refresh(results_dir: Path, index: Path | None = None) -> Refreshed:
    """Bring the index of ``results_dir`` up to date with its files."""
    paths = results.result_paths(results_dir)
    path = index_path(results_dir, index)
    try:
        with _db(path) as conn, conn:
            return _refresh(conn, paths)
    except sqlite3.DatabaseError as exc:
        raise UsageError(
            f"history index {path} is unusable ({exc}); delete it, it is rebuilt from the files"
        ) from exc


def _refresh(conn: sqlite3.Connection, paths: Sequence[Path]) -> Refreshed:
    _prepare(conn)
    known = {p: (m, s) for p, m, s in conn.execute("SELECT path, mtime_ns, size FROM files")}
    on_disk = {str(p): p for p in paths}
    gone = [p for p in known if p not in on_disk]
    conn.executemany("DELETE FROM files WHERE path = ?", [(p,) for p in gone])
    read, unchanged, skipped = 0, 0, []
    for name, p in on_disk.items():
        st = p.stat()
        if known.get(name) == (st.st_mtime_ns, st.st_size):
            unchanged += 1
            continue
        conn.execute("DELETE FROM files WHERE path = ?", (name,))
        conn.execute("INSERT INTO files VALUES (?, ?, ?)", (name, st.st_mtime_ns, st.st_size))
        doc = results.parse(p)
        read += 1
        if doc is None:
            skipped.append(p)
            continue
        conn.execute("INSERT INTO runs VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", _row(name, doc))
    total = conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
    return Refreshed(read, len(gone), unchanged, skipped, int(total))


def _row(name: str, doc: dict[str, Any]) -> tuple[Any, ...]:
    rec = results.flat(doc)
    metric = primary.of_record(rec)
    rec_json = json.dumps({k: rec.get(k) for k in RECORD_KEYS})
    return (
        name,
        rec.get("run_id"),
        rec.get("created"),
        rec.get("testbed"),
        rec.get("spec"),
        rec.get("workload"),
        rec.get("workload_key"),
        rec.get("rev"),
        rec.get("status"),
        metric.key,
        primary.value(rec),
        rec_json,
    )


@dataclass(frozen=True)
class Loaded:
    """The series of an index, and what could not be placed in one."""

    series: list[Series]
    without_rev: int  # successful runs whose file names no revision
    order: str  # "git" or "first seen"


def load_series(
    results_dir: Path,
    index: Path | None = None,
    repo: Path | None = None,
    testbed: str | None = None,
    specs: Sequence[str] = (),
) -> Loaded:
    """Every series of the index (refresh it first), runs in revision order."""
    with _db(index_path(results_dir, index)) as conn:
        _prepare(conn)
        rows = conn.execute(
            "SELECT run_id, created, testbed, rev, value, record FROM runs "
            "WHERE status = 'ok' AND value IS NOT NULL ORDER BY created, run_id"
        ).fetchall()
    recs, meta = [], []
    for run_id, created, bed, rev, value, record in rows:
        if testbed is not None and bed != testbed:
            continue
        rec = json.loads(record)
        recs.append(rec)
        meta.append((run_id or "", created or "", bed or results.UNKNOWN_HOST, rev, value))
    ratios, _ = pairing.paired_ratios(recs)
    without = sum(1 for m in meta if m[3] is None)
    revs_seen = list(dict.fromkeys(m[3] for m in meta if m[3] is not None))
    ordered, how = revision_order(revs_seen, repo)
    rank = {r: i for i, r in enumerate(ordered)}
    groups: dict[tuple[str, str, str], list[tuple[dict[str, Any], Run]]] = {}
    for rec, (run_id, created, bed, rev, value), ratio in zip(recs, meta, ratios, strict=True):
        if rev is None or (specs and rec.get("spec") not in specs):
            continue
        kernel = value / ratio if ratio else None
        cpu = primary.of_record(rec).cpu_per_record(rec)
        run = Run(str(rev), float(value), ratio, kernel, run_id, created, cpu)
        groups.setdefault((bed, str(rec.get("spec")), str(rec.get("workload_key"))), []).append(
            (rec, run)
        )
    out = []
    for (bed, spec, wk), members in sorted(groups.items()):
        runs = sorted((r for _, r in members), key=lambda r: (rank[r.rev], r.created))
        metric = primary.of_record(members[0][0])
        out.append(
            Series(
                testbed=bed,
                spec=spec,
                workload=metric.kind,
                workload_key=wk,
                metric=metric.key,
                higher_is_better=metric.higher_is_better,
                revs=list(dict.fromkeys(r.rev for r in runs)),
                runs=runs,
                is_kernel=spec in pairing.KERNEL_ROWS,
            )
        )
    return Loaded(out, without, how)


def revision_order(
    revs: Sequence[str],
    repo: Path | None,
    git: Callable[[Sequence[str]], tuple[int, str]] | None = None,
) -> tuple[list[str], str]:
    """``revs`` (first-seen order) in git order where ``repo`` resolves them (oldest
    commit first, a ``-dirty`` revision right after its commit's), those git cannot
    place after them in first-seen order; without ``repo``, first-seen order."""
    if repo is None or not revs:
        return list(revs), "first seen"
    run = git or (lambda argv: _git(repo, argv))
    status, out = run(["rev-list", "--topo-order", "--reverse", "--all"])
    if status != 0:
        raise UsageError(f"--repo {repo}: not a git repository with commits")
    position = {sha: i for i, sha in enumerate(out.split())}
    placed: dict[str, tuple[int, int]] = {}
    for r in revs:
        clean = r.removesuffix("-dirty")
        status, sha = run(["rev-parse", "--verify", "--quiet", f"{clean}^{{commit}}"])
        if status == 0 and sha.strip() in position:
            placed[r] = (position[sha.strip()], 1 if r.endswith("-dirty") else 0)
    first = [r for r in revs if r not in placed]
    return sorted(placed, key=lambda r: placed[r]) + first, "git" if placed else "first seen"


def _git(repo: Path, argv: Sequence[str]) -> tuple[int, str]:
    try:
        status, out, _ = run_output(["git", "-C", str(repo), *argv], 30.0)
    except OSError as exc:
        raise UsageError(f"--repo needs git: {exc}") from exc
    return status, out
