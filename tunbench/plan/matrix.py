"""``tunbench matrix``: many cells, repeated and interleaved, with profiling passes.

Order: first one profiling pass per forwarder, not measured (py-spy for a Python variant,
``perf record -g`` for an external or peer one; a kernel baseline has no forwarder process
and gets none), its SVG in ``flamegraph/<spec>.svg``; then ``repeat`` rounds of every cell
(A B C, C A B, ...) so that drift over time hits every cell alike. Within a round the
order is shuffled, seeded (``seed``, recorded), so that no cell always follows the same
neighbour. With ``until_ci`` (netperf's ``-I``), more rounds follow, of only the cells
whose 95 % CI half-width is still above that share of their mean (and the kernel runs
their ``% of kernel`` pairs with), until they meet it or reach ``max_repeat`` runs; the
interval is that of the workload's primary figure (:mod:`tunbench.analysis.primary`: Gbit/s, TPS,
conn/s, zero-loss pps). A
failed cell is recorded and the matrix goes on. Each result file carries its position
(``matrix.id/repeat/repeats/order/cell/seed/until_ci/max_repeat``) and the profile of
its spec.
"""

from __future__ import annotations

import random
import secrets
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from hashlib import sha1
from pathlib import Path
from typing import Any

from tunbench.analysis import primary, results, stats
from tunbench.cell.options import CellOptions
from tunbench.cell.runs import profile_cell, run_cell
from tunbench.cell.variants import CellSpec, describe
from tunbench.report import tables


@dataclass(frozen=True)
class MatrixOptions:
    repeat: int = 3
    profile: bool = True
    native: bool = False
    flamegraph_dir: Path = Path("flamegraph")
    until_ci: float | None = None  # target 95 % CI half-width, % of the mean
    max_repeat: int = 8  # runs per cell at most, with until_ci
    seed: int | None = None  # of the shuffles; None: a random one (recorded)


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

    def extend(self, more: int) -> None:
        """More cells to run than planned (another adaptive round)."""
        self.total += more
        if self._rich is not None:
            self._rich.update(self._task, total=self.total)


def round_order(cells: list[int], seed: int, r: int) -> list[int]:
    """Round ``r``'s order of the cell indexes ``cells``: a shuffle that depends only on
    the seed and the round, so a matrix can be replayed from its recorded seed."""
    order = list(cells)
    random.Random(f"{seed}-{r}").shuffle(order)
    return order


def plan(cells: list[CellSpec], repeat: int, seed: int) -> list[tuple[int, int, int]]:
    """The first ``repeat`` rounds: ``(round, position in it, cell index)``, every cell
    once per round, shuffled within the round."""
    return [
        (r, pos, i)
        for r in range(repeat)
        for pos, i in enumerate(round_order(list(range(len(cells))), seed, r))
    ]


def run_figure(rec: dict[str, Any]) -> float | None:
    """What a run adds to its cell's runs: its workload's primary figure (Gbit/s of a
    stream, TPS of rr, ...); None for a failed run."""
    return primary.value(rec)


def converged(runs: list[float], until_ci: float) -> bool:
    """True once the 95 % CI half-width of the mean of ``runs`` (one primary figure per
    run) is at most ``until_ci`` % of it."""
    ci = stats.mean_ci(runs)
    return ci is not None and 100 * ci.rel_half <= until_ci


def next_round(
    cells: list[CellSpec],
    runs: dict[int, list[float]],
    tried: dict[int, int],
    mopts: MatrixOptions,
    workloads: list[str] | None = None,
) -> list[int]:
    """The cells an adaptive round runs: those not converged yet that have runs left
    (``max_repeat``) and at least one successful run so far; and, when any runs, the
    kernel cells whose runs their ``% of kernel`` is paired with (the one of the same
    workload, where cells have their own: ``workloads`` holds a key per cell)."""
    assert mopts.until_ci is not None
    pending = [
        i
        for i in range(len(cells))
        if tried[i] < mopts.max_repeat and runs[i] and not converged(runs[i], mopts.until_ci)
    ]
    if not pending:
        return []
    wk = workloads or [""] * len(cells)
    index = {(c.spec, wk[i]): i for i, c in enumerate(cells)}
    refs = set()
    for i in pending:
        d = describe(cells[i])
        names = tables.kernel_reference(d["mode"], d["offload"])
        refs |= {index[(s, wk[i])] for s in names if (s, wk[i]) in index}
    return sorted(set(pending) | {i for i in refs if tried[i] < mopts.max_repeat})


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
    cell_opts: list[CellOptions] | None = None,
    cell_extra: list[dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """Profile, then measure every cell ``repeat`` times (and, with ``until_ci``, more
    rounds of the cells whose interval is still too wide); returns the flat records.

    ``cell_opts`` gives each cell its own options instead of ``opts`` (a sweep over a
    workload option: the same spec with another workload); ``cell_extra`` adds keys to
    each cell's result file. A spec is profiled once, with its first cell's options.
    """
    matrix_id = secrets.token_hex(4)
    seed = mopts.seed if mopts.seed is not None else secrets.randbelow(2**31)
    options = cell_opts or [opts] * len(cells)
    first: dict[str, int] = {}  # spec -> its first cell
    for i, c in enumerate(cells):
        first.setdefault(c.spec, i)
    profiled = [i for i in first.values() if cells[i].kind != "baseline"] if mopts.profile else []
    workloads = [repr(o) for o in options] if cell_opts else None
    order = plan(cells, mopts.repeat, seed)
    bar = Progress(len(profiled) + len(order), enabled=progress)
    profiles: dict[str, dict[str, Any]] = {}
    recs: list[dict[str, Any]] = []
    runs: dict[int, list[float]] = {i: [] for i in range(len(cells))}
    tried: dict[int, int] = dict.fromkeys(range(len(cells)), 0)
    rounds = mopts.repeat if mopts.until_ci is None else max(mopts.repeat, mopts.max_repeat)

    def measure(r: int, pos: int, i: int) -> None:
        cell = cells[i]
        bar.start(f"{cell.spec} (round {r + 1}/{mopts.repeat if r < mopts.repeat else rounds})")
        extra: dict[str, Any] = {
            "matrix": {
                "id": matrix_id,
                "repeat": r,
                "repeats": mopts.repeat,
                "order": pos,
                "cell": i,
                "seed": seed,
                "until_ci": mopts.until_ci,
                "max_repeat": mopts.max_repeat if mopts.until_ci is not None else None,
            },
            **(cell_extra[i] if cell_extra else {}),
        }
        if cell.spec in profiles:
            extra["profile"] = profiles[cell.spec]
        rec = results.flat(run_cell(cell, options[i], extra=extra))
        recs.append(rec)
        tried[i] += 1
        figure = run_figure(rec)
        if figure is not None:
            runs[i].append(figure)
        if on_result:
            on_result(rec)
        bar.advance()

    with bar.running():
        names = flamegraph_names([cells[i].spec for i in profiled])
        for i in profiled:
            cell = cells[i]
            bar.start(f"profile {cell.spec}")
            svg = mopts.flamegraph_dir / f"{names[cell.spec]}.svg"
            profiles[cell.spec] = profile_cell(cell, options[i], svg, mopts.native)
            bar.advance()
        for r, pos, i in order:
            measure(r, pos, i)
        r = mopts.repeat
        while mopts.until_ci is not None and r < rounds:
            todo = next_round(cells, runs, tried, mopts, workloads)
            if not todo:
                break
            bar.extend(len(todo))
            for pos, i in enumerate(round_order(todo, seed, r)):
                measure(r, pos, i)
            r += 1
    return recs


def convergence(
    recs: list[dict[str, Any]], until_ci: float
) -> tuple[list[str], list[tuple[str, float | None, int]]]:
    """Rows (spec and workload) that met the CI target, and those that did not with their
    half-width in % of the mean (None: fewer than 3 successful runs) and run count."""
    rows: dict[tuple[str, str], list[float]] = {}
    for r in recs:
        key = (str(r.get("spec") or r["variant"]), str(r.get("workload_key")))
        rows.setdefault(key, [])
        figure = run_figure(r)
        if figure is not None:
            rows[key].append(figure)
    met, missed = [], []
    for (spec, _), runs in rows.items():
        ci = stats.mean_ci(runs)
        if converged(runs, until_ci):
            met.append(spec)
        else:
            missed.append((spec, 100 * ci.rel_half if ci else None, len(runs)))
    return met, missed
