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
conn/s, zero-loss pps). With ``resolve`` (``--resolve PCT``) the rounds after the first
``repeat`` are planned at once from each row's spread instead (:mod:`tunbench.plan.resolve`;
with ``paired``, of its log ratios to the first spec's runs of the same rounds). A
failed cell is recorded and the matrix goes on. Each result file carries its position
(``matrix.id/repeat/repeats/order/cell/seed/until_ci/max_repeat/resolve/plan``) and the
profile of its spec.
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

from tunbench.analysis import cost, results
from tunbench.cell.options import CellOptions, with_offered
from tunbench.cell.runs import diagnose_cell, profile_cell, run_cell
from tunbench.cell.variants import CellSpec, describe
from tunbench.plan import resolve as resolve_plan
from tunbench.plan.untilci import by_round, converged, row_values
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
    diagnose: bool = False  # a perf stat pass per forwarder (the CLI's default; --no-diagnose)
    offered_auto: bool = False  # --offered auto: the rate from the capacity rounds
    offered_fraction: float = cost.AUTO_FRACTION  # ... this share of the slowest row's
    offered_span: float | None = cost.GROUP_SPAN  # ... of its group (None: of all rows)
    capacity_repeat: int = 3  # at an offered load: the unpaced rounds before the paced ones
    resolve: float | None = None  # plan the rounds for a ±PCT 95 % interval (two stages)
    paired: bool = False  # every later spec is paired with the first (verdicts, --resolve)


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
    on_plan: Callable[[list[resolve_plan.RowPlan]], None] | None = None,
) -> list[dict[str, Any]]:
    """Profile, then measure every cell ``repeat`` times (and, with ``until_ci``, more
    rounds of the cells whose interval is still too wide); returns the flat records.

    At an offered load (``offered_auto``, or cells whose options carry a rate) the
    rounds come in two phases: ``capacity_repeat`` rounds of every cell unpaced (the
    capacity rows; ``--offered auto`` takes its rate from them, :func:`cost.choose_rate`),
    then the ``repeat`` (and ``until_ci``) rounds of the cells with a forwarder, paced
    (the cost rows; a kernel row has no forwarder CPU to cost). The diagnostic passes
    (``diagnose``) run before the rounds they explain, under the same options.

    ``cell_opts`` gives each cell its own options instead of ``opts`` (a sweep over a
    workload option, a placement per cell); ``cell_extra`` adds keys to each cell's
    result file. A spec is profiled and diagnosed once, with its first cell's options.
    With ``resolve``, ``on_plan`` gets each row's plan once the first stage is done.
    """
    m = _Matrix(cells, cell_opts or [opts] * len(cells), mopts, progress, on_result, cell_extra)
    m.on_plan = on_plan
    return m.run()


class _Matrix:
    """One matrix run: its passes and phases of rounds, and the records they made."""

    def __init__(
        self,
        cells: list[CellSpec],
        options: list[CellOptions],
        mopts: MatrixOptions,
        progress: bool,
        on_result: Callable[[dict[str, Any]], None] | None,
        cell_extra: list[dict[str, Any]] | None,
    ) -> None:
        self.cells, self.options, self.mopts = cells, options, mopts
        self.on_result, self.cell_extra = on_result, cell_extra
        self.id = secrets.token_hex(4)
        self.seed = mopts.seed if mopts.seed is not None else secrets.randbelow(2**31)
        first: dict[str, int] = {}  # spec -> its first cell
        for i, c in enumerate(cells):
            first.setdefault(c.spec, i)
        self.first = [i for i in first.values() if cells[i].kind != "baseline"]
        self.paced = mopts.offered_auto or any(o.offered is not None for o in options)
        everything = list(range(len(cells)))
        self.main = (
            [i for i in everything if cells[i].kind != "baseline"] if self.paced else everything
        )
        capacity = len(cells) * mopts.capacity_repeat if self.paced else 0
        passes = len(self.first) * (int(mopts.profile) + int(mopts.diagnose))
        self.bar = Progress(passes + capacity + len(self.main) * mopts.repeat, enabled=progress)
        self.passes: dict[str, dict[str, dict[str, Any]]] = {"profile": {}, "diagnose": {}}
        self.recs: list[dict[str, Any]] = []
        self.plans: list[resolve_plan.RowPlan] = []
        self.on_plan: Callable[[list[resolve_plan.RowPlan]], None] | None = None

    def run(self) -> list[dict[str, Any]]:
        mopts = self.mopts
        with self.bar.running():
            if mopts.profile:
                self._profile()
            if self.paced and mopts.capacity_repeat:
                unpaced = [with_offered(o, None) for o in self.options]
                self._rounds(
                    list(range(len(self.cells))), unpaced, mopts.capacity_repeat, None, "capacity"
                )
            if mopts.offered_auto:
                rates = self._choose_rates()
                if not rates:
                    return self.recs
                lowest = min(rates.values(), key=lambda o: o.bps)  # a row without a capacity
                self.options = [
                    with_offered(o, rates.get(c.spec, lowest))
                    for c, o in zip(self.cells, self.options, strict=True)
                ]
            if mopts.diagnose:
                self._diagnose()
            phase = "cost" if self.paced else None
            self._rounds(self.main, self.options, mopts.repeat, mopts.until_ci, phase)
        return self.recs

    def _profile(self) -> None:
        names = flamegraph_names([self.cells[i].spec for i in self.first])
        for i in self.first:
            cell = self.cells[i]
            self.bar.start(f"profile {cell.spec}")
            svg = self.mopts.flamegraph_dir / f"{names[cell.spec]}.svg"
            self.passes["profile"][cell.spec] = profile_cell(
                cell, self.options[i], svg, self.mopts.native
            )
            self.bar.advance()

    def _diagnose(self) -> None:
        for i in self.first:
            cell = self.cells[i]
            self.bar.start(f"diagnose {cell.spec} (perf stat)")
            self.passes["diagnose"][cell.spec] = diagnose_cell(cell, self.options[i])
            self.bar.advance()

    def _choose_rates(self) -> dict[str, cost.Offered]:
        """``--offered auto``'s rates from the capacity rounds of the cells with a
        forwarder, by spec: one for all (``offered_span`` None, and a paired matrix, whose
        rows are compared round by round) or one per group of similar capacity
        (:func:`cost.choose_rates`). A row without a capacity runs at the lowest."""
        caps: dict[str, list[float]] = {}
        for r in self.recs:
            if r.get("kind") != "baseline" and r.get("gbps") is not None and r["status"] == "ok":
                caps.setdefault(str(r["spec"]), []).append(float(r["gbps"]) * 1e9)
        fraction, span = self.mopts.offered_fraction, self.mopts.offered_span
        if span is None or self.mopts.paired:
            one = cost.choose_rate(caps, fraction)
            return {} if one is None else dict.fromkeys(caps, one)
        return cost.choose_rates(caps, fraction, span)

    def _rounds(
        self,
        idx: list[int],
        options: list[CellOptions],
        repeat: int,
        until_ci: float | None,
        phase: str | None,
    ) -> None:
        """``repeat`` shuffled rounds of the cells ``idx`` (then, with ``until_ci``, the
        adaptive ones), each with its options."""
        cells = [self.cells[i] for i in idx]
        keys = [repr(options[i]) for i in idx]
        runs: dict[int, list[float]] = {j: [] for j in range(len(idx))}
        made: dict[int, list[tuple[int, dict[str, Any]]]] = {j: [] for j in range(len(idx))}
        tried: dict[int, int] = dict.fromkeys(range(len(idx)), 0)
        resolve = self.mopts.resolve if phase != "capacity" else None
        adaptive_on = until_ci is not None or resolve is not None
        rounds = max(repeat, self.mopts.max_repeat) if adaptive_on else repeat
        shift = self.mopts.capacity_repeat if phase == "cost" else 0  # its own shuffles
        plans: dict[int, dict[str, Any]] = {}
        first_stage = len(self.recs)

        def one(r: int, pos: int, j: int) -> None:
            i = idx[j]
            rec = self._measure(
                r, pos, i, options[i], phase, repeat, rounds, until_ci, plans.get(j)
            )
            tried[j] += 1
            made[j].append((r, rec))
            runs[j] = row_values([rec for _, rec in made[j]])

        for r in range(repeat):
            for pos, j in enumerate(round_order(list(range(len(idx))), self.seed, r + shift)):
                one(r, pos, j)
        if resolve is not None:
            # paired with the matrix's first spec, where that row is in these rounds (a
            # paced matrix's cost rounds have no kernel row)
            first = self.cells[0].spec
            ref = 0 if self.mopts.paired and len(idx) > 1 and cells[0].spec == first else None
            rows = resolve_plan.plan(
                [c.spec for c in cells],
                [by_round(made[j]) for j in range(len(idx))],
                resolve,
                repeat,
                self.mopts.max_repeat,
                ref,
            )
            self.plans.extend(rows)
            plans.update({j: row.to_json() for j, row in enumerate(rows)})
            self._record_plans(self.recs[first_stage:], idx, plans)
            if self.on_plan is not None:
                self.on_plan(rows)
            for r in range(repeat, max(row.planned for row in rows)):
                todo = [j for j, row in enumerate(rows) if row.planned > r]
                self.bar.extend(len(todo))
                for pos, j in enumerate(round_order(todo, self.seed, r + shift)):
                    one(r, pos, j)
            return
        adaptive = MatrixOptions(until_ci=until_ci, max_repeat=self.mopts.max_repeat)
        r = repeat
        while until_ci is not None and r < rounds:
            todo = next_round(cells, runs, tried, adaptive, keys)
            if not todo:
                break
            self.bar.extend(len(todo))
            for pos, j in enumerate(round_order(todo, self.seed, r + shift)):
                one(r, pos, j)
            r += 1

    @staticmethod
    def _record_plans(
        recs: list[dict[str, Any]], idx: list[int], plans: dict[int, dict[str, Any]]
    ) -> None:
        """Give the first stage's runs their row's plan too, in the records and in their
        files: every run of a --resolve session says how many rounds its row was given,
        also when the first stage was all of them (--max-repeat == --repeat)."""
        for rec in recs:
            m = rec.get("matrix") or {}
            if m.get("cell") not in idx:
                continue
            plan = plans[idx.index(m["cell"])]
            m["plan"] = plan
            if rec.get("result_file"):
                results.amend(Path(rec["result_file"]), "matrix", {"plan": plan})

    def _measure(
        self,
        r: int,
        pos: int,
        i: int,
        opts: CellOptions,
        phase: str | None,
        repeat: int,
        rounds: int,
        until_ci: float | None,
        plan: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        cell = self.cells[i]
        what = f"{phase} round" if phase else "round"
        self.bar.start(f"{cell.spec} ({what} {r + 1}/{repeat if r < repeat else rounds})")
        extra: dict[str, Any] = {
            "matrix": {
                "id": self.id,
                "repeat": r,
                "repeats": repeat,
                "order": pos,
                "cell": i,
                "seed": self.seed,
                "until_ci": until_ci,
                "max_repeat": self.mopts.max_repeat
                if until_ci is not None or self.mopts.resolve is not None
                else None,
                "phase": phase,
                "resolve": self.mopts.resolve if phase != "capacity" else None,
                "plan": plan,
            },
            **(self.cell_extra[i] if self.cell_extra else {}),
        }
        for name, done in self.passes.items():
            if cell.spec in done and (name != "diagnose" or phase != "capacity"):
                extra[name] = done[cell.spec]
        rec = results.flat(run_cell(cell, opts, extra=extra))
        self.recs.append(rec)
        if self.on_result:
            self.on_result(rec)
        self.bar.advance()
        return rec
