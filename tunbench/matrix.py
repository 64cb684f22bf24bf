"""``tunbench matrix``: many cells, repeated and interleaved, with profiling passes.

Order: first one profiling pass per forwarder, not measured (py-spy for a Python variant,
``perf record -g`` for an external or peer one; a kernel baseline has no forwarder process
and gets none), its SVG in ``flamegraph/<spec>.svg``; then ``repeat`` rounds of every cell
in the same order (A B C A B C ...) so that drift over time hits every cell alike. A
failed cell is recorded and the matrix goes on. Each result file carries its position
(``matrix.id/repeat/repeats/order``) and the profile of its spec.
"""

from __future__ import annotations

import secrets
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from hashlib import sha1
from pathlib import Path
from typing import Any

from tunbench import results
from tunbench.session import CellOptions, profile_cell, run_cell
from tunbench.variants import CellSpec


@dataclass(frozen=True)
class MatrixOptions:
    repeat: int = 3
    profile: bool = True
    native: bool = False
    flamegraph_dir: Path = Path("flamegraph")


class Progress:
    """Cell k of n, current spec, elapsed and estimated time left.

    A rich progress bar on a terminal; plain lines on stderr otherwise (CI logs).
    """

    def __init__(self, total: int, enabled: bool = True) -> None:
        self.total = total
        self.done = 0
        self.t0 = time.monotonic()
        self.enabled = enabled
        self._rich: Any = None
        self._task: Any = None

    @contextmanager
    def running(self) -> Iterator[Progress]:
        if self.enabled and sys.stderr.isatty():
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )
            from rich.progress import Progress as RichProgress

            with RichProgress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                transient=False,
            ) as bar:
                self._rich = bar
                self._task = bar.add_task("matrix", total=self.total)
                yield self
            self._rich = None
            return
        yield self

    def start(self, what: str) -> None:
        if self._rich is not None:
            self._rich.update(self._task, description=what)
        elif self.enabled:
            elapsed = time.monotonic() - self.t0
            eta = "?" if not self.done else f"{elapsed / self.done * (self.total - self.done):.0f}s"
            print(
                f"tunbench: [{self.done + 1}/{self.total}] {what} "
                f"(elapsed {elapsed:.0f}s, left ~{eta})",
                file=sys.stderr,
                flush=True,
            )

    def advance(self) -> None:
        self.done += 1
        if self._rich is not None:
            self._rich.advance(self._task)


def plan(cells: list[CellSpec], repeat: int) -> list[tuple[int, int, CellSpec]]:
    """Interleaved order: ``(repeat index, position, cell)`` for A B C A B C ..."""
    return [(r, i, cell) for r in range(repeat) for i, cell in enumerate(cells)]


def flamegraph_names(specs: list[str]) -> dict[str, str]:
    """A file name per spec: its slug, plus a short hash where two specs share a slug
    (``--thread 2`` and ``--thread=2``), so no profile overwrites another."""
    slugs = [results.slug(s) for s in specs]
    return {
        spec: name if slugs.count(name) == 1 else f"{name}-{sha1(spec.encode()).hexdigest()[:6]}"
        for spec, name in zip(specs, slugs, strict=True)
    }


def run_matrix(
    cells: list[CellSpec],
    opts: CellOptions,
    mopts: MatrixOptions,
    progress: bool = True,
    on_result: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Profile, then measure every cell ``repeat`` times; returns the flat records."""
    matrix_id = secrets.token_hex(4)
    profiled = [c for c in cells if c.kind != "baseline"] if mopts.profile else []
    order = plan(cells, mopts.repeat)
    bar = Progress(len(profiled) + len(order), enabled=progress)
    profiles: dict[str, dict[str, Any]] = {}
    recs: list[dict[str, Any]] = []
    with bar.running():
        names = flamegraph_names([c.spec for c in profiled])
        for cell in profiled:
            bar.start(f"profile {cell.spec}")
            svg = mopts.flamegraph_dir / f"{names[cell.spec]}.svg"
            profiles[cell.spec] = profile_cell(cell, opts, svg, mopts.native)
            bar.advance()
        for r, i, cell in order:
            bar.start(f"{cell.spec} (round {r + 1}/{mopts.repeat})")
            extra: dict[str, Any] = {
                "matrix": {"id": matrix_id, "repeat": r, "repeats": mopts.repeat, "order": i}
            }
            if cell.spec in profiles:
                extra["profile"] = profiles[cell.spec]
            doc = run_cell(cell, opts, extra=extra)
            rec = results.flat(doc)
            recs.append(rec)
            if on_result:
                on_result(rec)
            bar.advance()
    return recs
