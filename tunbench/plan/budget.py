"""How long a matrix will take, said before it starts (``bench.sh`` prints it first).

A measured cell costs its run (``--duration`` + ``--omit``) plus what surrounds it: the
namespaces, the forwarder's start, the background check (``--background-seconds``) and
the teardown, :data:`CELL_OVERHEAD_S` + the check, measured on the 2-core VM this was
written on (README, "How long bench.sh takes"). A profiling or diagnostic pass has no
background check but draws or parses what it recorded: :data:`PASS_OVERHEAD_S`. Without
``--until-ci`` or ``--resolve`` the count of runs is exact; with either, the estimate is a
range from every row converging after ``--repeat`` runs to every row taking
``--max-repeat``.
"""

from __future__ import annotations

from collections.abc import Sequence

from tunbench.cell.options import CellOptions
from tunbench.cell.variants import CellSpec
from tunbench.plan.matrix import MatrixOptions

# measured on the 2-core VM (matrix of 4 specs, --duration 3 --omit 1): a profiling pass
# 7.5 s, a diagnostic pass 6.3 s; a cell 7.3 s on average over the default bench.sh of
# 2026-12-03 (31 rows, peers' daemons and all: 1834 s for 56 passes and 197 cells; 1.7 s
# before, from 4 Python specs alone, put that run's estimate 7 % short)
CELL_OVERHEAD_S = 2.3  # namespaces, forwarder start, teardown (plus the background check)
PASS_OVERHEAD_S = 2.9  # a profiling or diagnostic pass: start, then draw or parse


def seconds(
    cells: Sequence[CellSpec], opts: Sequence[CellOptions], mopts: MatrixOptions
) -> tuple[float, float]:
    """(fewest, most) seconds the matrix can take."""
    o = opts[0]
    run = o.iperf.duration + o.iperf.omit
    cell = run + CELL_OVERHEAD_S + o.background_seconds
    forwarders = [c for c in cells if c.kind != "baseline"]
    specs = {c.spec for c in forwarders}
    passes = len(specs) * (int(mopts.profile) + int(mopts.diagnose)) * (run + PASS_OVERHEAD_S)
    paced = mopts.offered_auto or any(x.offered is not None for x in opts)
    main = len(forwarders) if paced else len(cells)
    capacity = len(cells) * mopts.capacity_repeat * cell if paced else 0.0
    adaptive = mopts.until_ci is not None or mopts.resolve is not None
    most = max(mopts.repeat, mopts.max_repeat) if adaptive else mopts.repeat
    low = passes + capacity + main * mopts.repeat * cell
    high = passes + capacity + main * most * cell
    return low, high


def estimate(cells: Sequence[CellSpec], opts: Sequence[CellOptions], mopts: MatrixOptions) -> str:
    """One line: what the matrix runs and how long that should take."""
    low, high = seconds(cells, opts, mopts)
    paced = mopts.offered_auto or any(x.offered is not None for x in opts)
    parts = [f"{len(cells)} rows"]
    n = len({c.spec for c in cells if c.kind != "baseline"})
    if mopts.profile or mopts.diagnose:
        what = " and ".join(
            w for w, on in (("profiling", mopts.profile), ("diagnostic", mopts.diagnose)) if on
        )
        parts.append(f"{what} passes of {n} forwarders")
    if paced:
        parts.append(f"{mopts.capacity_repeat} capacity rounds, then the paced cost rounds")
    span = f"{low / 60:.0f} min" if high - low < 30 else f"{low / 60:.0f}-{high / 60:.0f} min"
    return f"expecting about {span}: " + ", ".join(parts)
