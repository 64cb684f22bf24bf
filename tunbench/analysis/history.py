"""A forwarder's figures across its revisions: where they changed, who moved (the
forwarder or the host), and the verdict CI gates on.

A :class:`Series` is every run of one row (testbed, spec, workload) in revision order.
Each run carries its primary figure (:mod:`tunbench.analysis.primary`) and, when the
kernel row was measured in the same round, that kernel run's figure and the ratio of the
two (``% of kernel``). :func:`judge` runs the change-point detector
(:mod:`tunbench.analysis.changepoints`) on the absolute series and on the ratio series
and labels every change:

- **forwarder**: the ratio moved and the kernel row did not (the forwarder changed);
- **host**: the absolute figure moved, the ratio did not, and the kernel row moved with
  it (the machine changed under both rows); also when the kernel row moved and the
  forwarder's own figure did not (the ratio moved by its denominator only);
- **both**: the ratio and the absolute figure moved, and the kernel row moved too;
- **unlabelled**: no kernel runs were paired with the row, so nobody can tell.

An absolute change with a steady ratio and a steady kernel row (the ratio test missed
it) is the forwarder's. Kernel rows themselves are the host by definition.

:func:`check` answers CI's question for one new revision against a base (the revision
before it, a named one, or the last segment of the history): regression, no regression,
improvement, or inconclusive with an estimate of how many more runs would decide.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from tunbench.analysis import changepoints as cp
from tunbench.analysis.stats import LEVEL, MIN_EFFECT, MIN_RUNS

FORWARDER = "forwarder"
HOST = "host"
BOTH = "both"
UNLABELLED = "unlabelled"
KERNEL_P = 1 - LEVEL  # the kernel row moved at a change when Welch's p is below this


@dataclass(frozen=True)
class Run:
    """One run of a row: its figure, and its paired kernel run's (None when unpaired)."""

    rev: str
    value: float
    ratio: float | None = None
    kernel: float | None = None
    run_id: str = ""
    created: str = ""
    cpu_per: float | None = None  # forwarder CPU per unit of the figure (% of a core)


@dataclass
class Series:
    """Every run of one row on one testbed, in revision order (``revs``: the revisions
    that have runs, in order; ``runs`` sorted by revision, then by when they ran)."""

    testbed: str
    spec: str
    workload: str  # the workload's kind: stream, rr, ...
    workload_key: str
    metric: str  # the primary figure's key: gbps, transactions_per_s, ...
    higher_is_better: bool
    revs: list[str]
    runs: list[Run]
    is_kernel: bool = False
    changes: list[Change] = field(default_factory=list)

    @property
    def groups(self) -> list[int]:
        """Each run's revision index."""
        where = {r: i for i, r in enumerate(self.revs)}
        return [where[r.rev] for r in self.runs]

    def runs_of(self, rev: str) -> list[Run]:
        return [r for r in self.runs if r.rev == rev]


@dataclass(frozen=True)
class Change:
    """A confirmed change: the runs from revision ``rev`` on differ from those before."""

    rev: str  # the first revision of the new segment
    index: int  # its index in the series' revisions
    p_value: float  # the detector's permutation p-value (the smaller of the two series)
    found_in: str  # absolute, ratio or both
    label: str  # forwarder, host, both, unlabelled
    absolute: cp.Step
    ratio: cp.Step | None
    kernel: cp.Step | None

    @property
    def worse(self) -> bool:
        """Whether the figure got worse (by the absolute median, or the ratio's for a
        change of the forwarder)."""
        step = self.ratio if self.label in (FORWARDER, BOTH) and self.ratio else self.absolute
        return step.change_pct < 0


def _splits(values: Sequence[float], groups: Sequence[int], **kw: float) -> dict[int, float]:
    """Revision index -> p-value of the detector's splits."""
    found = cp.detect(values, groups, **kw)  # type: ignore[arg-type]
    return {groups[s.at]: s.p_value for s in found}


def _merge(a: dict[int, float], r: dict[int, float]) -> list[tuple[int, str, float]]:
    """One list of boundaries from the absolute (``a``) and ratio (``r``) splits: a
    boundary found in both within one revision counts once, at the ratio's revision."""
    out: list[tuple[int, str, float]] = []
    left = dict(a)
    for idx, p in sorted(r.items()):
        near = [i for i in left if abs(i - idx) <= 1]
        if near:
            out.append((idx, "both", min(p, *(left.pop(i) for i in near))))
        else:
            out.append((idx, "ratio", p))
    out += [(idx, "absolute", p) for idx, p in left.items()]
    return sorted(out)


def judge(series: Series, **detector: float) -> list[Change]:
    """The series' changes, labelled (also kept in ``series.changes``). ``detector``
    passes ``alpha``, ``permutations``, ``seed``, ``min_size`` to the detector."""
    runs, groups = series.runs, series.groups
    absolute = _splits([r.value for r in runs], groups, **detector)
    paired = [i for i, r in enumerate(runs) if r.ratio is not None]
    ratio = (
        _splits([runs[i].ratio for i in paired], [groups[i] for i in paired], **detector)  # type: ignore[misc]
        if paired and not series.is_kernel
        else {}
    )
    bounds = _merge(absolute, ratio)
    edges = [0, *(b[0] for b in bounds), len(series.revs)]
    changes = []
    for n, (idx, found_in, p) in enumerate(bounds):
        lo, hi = edges[n], edges[n + 2]
        before = [r for r, g in zip(runs, groups, strict=True) if lo <= g < idx]
        after = [r for r, g in zip(runs, groups, strict=True) if idx <= g < hi]
        abs_step = cp.describe([r.value for r in before], [r.value for r in after])
        rb = [r.ratio for r in before if r.ratio is not None]
        ra = [r.ratio for r in after if r.ratio is not None]
        kb = [r.kernel for r in before if r.kernel is not None]
        ka = [r.kernel for r in after if r.kernel is not None]
        ratio_step = cp.describe(rb, ra) if min(len(rb), len(ra)) >= 2 else None
        kernel_step = cp.describe(kb, ka) if min(len(kb), len(ka)) >= 2 else None
        abs_moved = found_in != "ratio" or abs_step.welch_p < KERNEL_P
        label = _label(series.is_kernel, found_in != "absolute", abs_moved, kernel_step)
        changes.append(
            Change(series.revs[idx], idx, p, found_in, label, abs_step, ratio_step, kernel_step)
        )
    series.changes = changes
    return changes


def _label(is_kernel: bool, ratio_moved: bool, abs_moved: bool, kernel: cp.Step | None) -> str:
    """Who moved. A kernel row that moved while the forwarder's own figure did not is the
    host even though the ratio moved (only its denominator changed)."""
    if is_kernel:
        return HOST
    if kernel is None:
        return UNLABELLED
    if not kernel.welch_p < KERNEL_P:
        return FORWARDER
    return BOTH if ratio_moved and abs_moved else HOST


REGRESSION = "regression"
NO_REGRESSION = "no regression"
IMPROVEMENT = "improvement"
INCONCLUSIVE = "inconclusive"
EXIT_CODES = {NO_REGRESSION: 0, REGRESSION: 1, INCONCLUSIVE: 2, IMPROVEMENT: 3}


@dataclass(frozen=True)
class Verdict:
    """:func:`check`'s answer for one series."""

    verdict: str
    on: str  # "% of kernel" or "absolute": which figure was judged
    base_revs: tuple[str, ...]
    n_base: int
    n_new: int
    change_pct: float | None  # change of the mean, % of the base's mean
    ci_low_pct: float | None  # Welch's 95 % interval of that change
    ci_high_pct: float | None
    more_runs: int | None  # inconclusive: about this many more runs on each side
    reason: str = ""


def base_revs(series: Series, new: str, against: str | None, last_segment: bool) -> list[str]:
    """The revisions ``new`` is judged against: ``against``; with ``last_segment`` the
    revisions since the last change before ``new``; else the revision before it."""
    if against is not None:
        return [against]
    idx = series.revs.index(new)
    if idx == 0:
        return []
    if not last_segment:
        return [series.revs[idx - 1]]
    earlier = series.revs[:idx]
    prefix = replace(series, revs=earlier, runs=[r for r in series.runs if r.rev in earlier])
    changes = judge(prefix)
    start = changes[-1].index if changes else 0
    return series.revs[start:idx]


def check(
    series: Series,
    new: str,
    against: str | None = None,
    last_segment: bool = False,
    min_effect: float = MIN_EFFECT,
    figure: str = "auto",
) -> Verdict:
    """Regression, no regression, improvement or inconclusive for revision ``new``.

    The figure judged (``figure`` auto) is ``% of kernel`` where every run on both sides
    was paired with a kernel run (host drift cancels), else the absolute figure;
    ``figure`` absolute or ratio forces one (ratio without pairing: inconclusive). With
    ``d`` the change of the mean in the better direction and ``[lo, hi]`` its 95 % Welch
    interval:
    regression when ``hi < 0`` and ``d <= -min_effect``; improvement when ``lo > 0`` and
    ``d >= min_effect``; no regression when ``lo >= -min_effect`` (the interval rules
    out a regression beyond it); otherwise inconclusive.
    """
    revs = base_revs(series, new, against, last_segment) if new in series.revs else []
    base = [r for r in series.runs if r.rev in revs]
    fresh = series.runs_of(new)
    nb, nn = len(base), len(fresh)
    if min(nb, nn) < MIN_RUNS:
        what = "no base revision" if not revs else f"{nb} base and {nn} new runs"
        more = max(MIN_RUNS - nb, MIN_RUNS - nn, 0) if revs else None
        return Verdict(INCONCLUSIVE, "absolute", tuple(revs), nb, nn, None, None, None, more, what)
    paired = all(r.ratio is not None for r in (*base, *fresh)) and not series.is_kernel
    if figure == "ratio" and not paired:
        why = "not every run was paired with a kernel run: no % of kernel"
        return Verdict(
            INCONCLUSIVE, "% of kernel", tuple(revs), nb, nn, None, None, None, None, why
        )
    use_ratio = paired and figure != "absolute"

    def pick(r: Run) -> float:
        return float(r.ratio) if use_ratio and r.ratio is not None else r.value

    before = [pick(r) for r in base]
    after = [pick(r) for r in fresh]
    mean_b = statistics.fmean(before)
    lo, hi = cp.welch_interval(before, after)
    change = 100.0 * (statistics.fmean(after) - mean_b) / mean_b
    lo_pct, hi_pct = 100.0 * lo / mean_b, 100.0 * hi / mean_b
    sign = 1.0 if series.higher_is_better else -1.0
    d, dlo, dhi = sign * change, *sorted((sign * lo_pct, sign * hi_pct))
    limit = 100.0 * min_effect
    more = None
    if dhi < 0 and d <= -limit:
        verdict = REGRESSION
    elif dlo > 0 and d >= limit:
        verdict = IMPROVEMENT
    elif dlo >= -limit:
        verdict = NO_REGRESSION
    else:
        verdict = INCONCLUSIVE
        more = runs_to_decide(min(nb, nn), (dhi - dlo) / 2, d, limit)
    on = "% of kernel" if use_ratio else "absolute"
    return Verdict(verdict, on, tuple(revs), nb, nn, change, lo_pct, hi_pct, more)


def runs_to_decide(n: int, half: float, d: float, limit: float) -> int | None:
    """About how many more runs per side would make an inconclusive interval decide,
    if the change stayed ``d`` and the spread stayed as it is: the half-width shrinks
    as 1/sqrt(n) until it clears ``-limit`` (no regression) or 0 (a regression).
    None when no number of runs decides (no change at all and no ``limit``)."""
    target = d + limit if d > -limit else -d
    if target <= 1e-9 or half <= 0:
        return None
    needed = n * (half / target) ** 2
    return max(1, math.ceil(needed - n))


def synthetic_groups(revisions: int, per_rev: int) -> list[int]:
    """Revision indices of ``per_rev`` runs per revision (for tests and examples)."""
    return list(np.repeat(np.arange(revisions), per_rev).tolist())
