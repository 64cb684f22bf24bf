"""The history in the formats of the CI tools people already use, for one revision of
every series (the one given, else each series' last):

- Bencher Metric Format (BMF) JSON (``bencher run --adapter json``): an object of
  benchmarks (``testbed spec [workload]``), each an object of measures, each
  ``{"value", "lower_value", "upper_value"}``: the mean of the revision's runs and its
  95 % t-interval. Measures: the primary figure (slug from its key, e.g. ``gbps``),
  ``pct-of-kernel`` where kernel runs were paired, ``cpu-per-<unit>`` (smaller is better).
- github-action-benchmark's ``customBiggerIsBetter`` and ``customSmallerIsBetter``: a
  JSON array of ``{"name", "unit", "value", "range", "extra"}`` (``range`` and ``extra``
  are strings): the bigger-is-better file carries the primary figures and ``% of
  kernel``, the smaller-is-better one the CPU cost per unit of the figure.
- CSV: every run of every series, one line each, with the change that starts at its
  revision (if any).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import statistics
from collections.abc import Callable, Sequence
from typing import Any

from tunbench.analysis import primary
from tunbench.analysis.history import Run, Series
from tunbench.analysis.stats import mean_ci

FORMATS = ("bmf", "gab-bigger", "gab-smaller", "csv")
CSV_COLUMNS = (
    "testbed",
    "spec",
    "workload",
    "metric",
    "unit",
    "rev",
    "rev_index",
    "run_id",
    "created",
    "value",
    "pct_of_kernel",
    "kernel_value",
    "cpu_per_unit",
    "change",
)


def names(series: Sequence[Series]) -> list[str]:
    """A benchmark name per series: ``testbed spec [workload]``, and a short hash of the
    workload options where two series would otherwise share a name."""
    base = [f"{s.testbed} {s.spec} [{s.workload}]" for s in series]
    out = []
    for s, name in zip(series, base, strict=True):
        if base.count(name) > 1:
            name += " #" + hashlib.sha1(s.workload_key.encode()).hexdigest()[:6]
        out.append(name)
    return out


def _chosen(s: Series, rev: str | None) -> list[Run]:
    return s.runs_of(rev if rev is not None else s.revs[-1])


def _summary(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    ci = mean_ci(values, min_n=2)
    mean = statistics.fmean(values)
    return {
        "value": mean,
        "lower_value": ci.low if ci else mean,
        "upper_value": ci.high if ci else mean,
    }


def _figures(s: Series, runs: list[Run]) -> list[tuple[str, str, bool, list[float]]]:
    """(measure slug, unit, bigger is better, per-run values) of a series' runs."""
    metric = primary.of_key(s.metric)
    out = [
        (
            metric.key.replace("_", "-"),
            metric.label,
            metric.higher_is_better,
            [metric.shown(r.value) for r in runs],
        )
    ]
    ratios = [100 * r.ratio for r in runs if r.ratio is not None]
    if ratios and not s.is_kernel:
        out.append(("pct-of-kernel", "% of kernel", True, ratios))
    cpu = [r.cpu_per for r in runs if r.cpu_per is not None]
    if cpu:
        out.append((f"cpu-per-{metric.cpu_key}", f"% of a core per {metric.cpu_label}", False, cpu))
    return out


def bmf(series: Sequence[Series], rev: str | None = None) -> dict[str, Any]:
    """Bencher Metric Format: benchmark -> measure -> value, lower_value, upper_value."""
    doc: dict[str, Any] = {}
    for s, name in zip(series, names(series), strict=True):
        runs = _chosen(s, rev)
        measures = {
            slug: summary
            for slug, _, _, values in _figures(s, runs)
            if (summary := _summary(values)) is not None
        }
        if measures:
            doc[name] = measures
    return doc


def github_action_benchmark(
    series: Sequence[Series], bigger: bool, rev: str | None = None
) -> list[dict[str, Any]]:
    """github-action-benchmark's custom format: ``customBiggerIsBetter`` (``bigger``)
    or ``customSmallerIsBetter``, the figures that are better that way."""
    out = []
    for s, name in zip(series, names(series), strict=True):
        runs = _chosen(s, rev)
        if not runs:
            continue
        for slug, unit, higher, values in _figures(s, runs):
            summary = _summary(values)
            if higher != bigger or summary is None:
                continue
            half = (summary["upper_value"] - summary["lower_value"]) / 2
            out.append(
                {
                    "name": f"{name} {slug}",
                    "unit": unit,
                    "value": summary["value"],
                    "range": f"± {half:.4g}",
                    "extra": f"rev {runs[0].rev}\n{len(values)} runs, 95% CI of the mean",
                }
            )
    return out


def as_csv(series: Sequence[Series]) -> str:
    """Every run of every series, one CSV line each."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for s in series:
        metric = primary.of_key(s.metric)
        starts = {c.rev: c.label for c in s.changes}
        where = {r: i for i, r in enumerate(s.revs)}
        for r in s.runs:
            w.writerow(
                [
                    s.testbed,
                    s.spec,
                    s.workload,
                    s.metric,
                    metric.unit,
                    r.rev,
                    where[r.rev],
                    r.run_id,
                    r.created,
                    repr(r.value),
                    "" if r.ratio is None else repr(100 * r.ratio),
                    "" if r.kernel is None else repr(r.kernel),
                    "" if r.cpu_per is None else repr(r.cpu_per),
                    starts.get(r.rev, ""),
                ]
            )
    return buf.getvalue()


RENDER: dict[str, Callable[[Sequence[Series], str | None], str]] = {
    "bmf": lambda s, rev: json.dumps(bmf(s, rev), indent=1),
    "gab-bigger": lambda s, rev: json.dumps(github_action_benchmark(s, True, rev), indent=1),
    "gab-smaller": lambda s, rev: json.dumps(github_action_benchmark(s, False, rev), indent=1),
    "csv": lambda s, rev: as_csv(s),
}
