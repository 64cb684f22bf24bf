"""Statistics on each workload's primary figure (tunbench/analysis/primary.py): rr's TPS, crr's
conn/s and zero-loss's packet rate get their confidence interval, min and max, % of kernel
and CPU per unit in the report and its exports, never a Gbit/s they do not have. Built from
real rr, crr and zero-loss result files (tests/data/workloads), repeated with scaled
figures."""

from __future__ import annotations

import csv
import io
import json
import statistics

import pandas as pd
import pytest

from tunbench.analysis import primary, results
from tunbench.errors import ResultFileError
from tunbench.load import workloads
from tunbench.report import tables

from resultdocs import (
    FIGURE,
    base_figures,
    doc,
    flat,
    real_docs,
    real_matrix,
)

KINDS = ["rr", "crr", "zero-loss"]


def test_every_workload_kind_has_one_primary_figure() -> None:
    assert set(primary.METRICS) == {*workloads.KINDS, "cost"}  # cost: a paced stream
    assert results.PRIMARY_KEYS == primary.KEYS
    assert all(m.higher_is_better for m in primary.METRICS.values())
    for kind in KINDS:
        for d in real_docs(kind):
            assert primary.value(results.flat(d)) == d["results"][FIGURE[kind]]
    assert primary.value(results.flat(doc("v", 12.5))) == 12.5
    assert primary.value(results.flat(doc("v", 0.0, status="failed"))) is None
    with pytest.raises(ResultFileError, match="workload 'bulk' has no figure"):
        primary.of_kind("bulk")
    rr, zl = primary.of_kind("rr"), primary.of_kind("zero-loss")
    assert rr.number(15332.1, unit=True) == "15,332 TPS"
    assert zl.number(63495.7, unit=True) == "63.5 kpps"
    assert primary.STREAM.number(0.1157) == "0.116" and primary.STREAM.number(14.2) == "14.20"
    assert rr.ci(15332.0, 15100.0, 15564.0, unit=True) == "15,332 ± 232 TPS"
    assert primary.STREAM.ci(0.058, 0.057, 0.059) == "0.058 ± 0.001"
    assert rr.cpu_per(46.0, 15_000.0) == pytest.approx(46.0 / 15.0)  # % of a core per kTPS
    assert (rr.cpu_column, zl.cpu_column, primary.STREAM.cpu_column) == (
        "CPU/kTPS",
        "CPU/kpps",
        "CPU/Gbps",
    )


def test_a_lower_is_better_figure_swaps_the_verdict_words() -> None:
    lower = primary.Metric("x", "x", "latency", "s", "s", 1.0, 2, "s", "s", 1.0, False)
    assert primary.verdict_word(lower, "faster", "faster", "slower") == "slower"
    assert primary.verdict_word(lower, "too few runs", "faster", "slower") == "too few runs"
    assert primary.verdict_word(primary.STREAM, "faster", "faster", "slower") == "faster"


@pytest.mark.parametrize("kind", KINDS)
def test_report_row_has_mean_ci_min_max_on_its_figure(kind: str) -> None:
    m = primary.of_kind(kind)
    recs = flat(real_matrix(kind, factors=(1.0, 0.98, 1.02)))
    df = tables.grouped(recs)
    base = base_figures(kind)
    assert len(df) == 3
    for _, row in df.iterrows():
        b = base[row["Variant"]]
        assert row["n"] == 3 and row["primary_metric"] == m.key
        assert row["primary_median"] == pytest.approx(b)
        assert row["primary_mean"] == pytest.approx(b)
        assert row["primary_ci_low"] < b < row["primary_ci_high"]
        assert (row["primary_min"], row["primary_max"]) == pytest.approx((0.98 * b, 1.02 * b))
    shown = tables.formatted(df).set_index("Variant")
    b = base["sync-normal"]
    row = df.set_index("Variant").loc["sync-normal"]
    assert shown.loc["sync-normal", "Mean ± CI"] == m.ci(
        row["primary_mean"], row["primary_ci_low"], row["primary_ci_high"], unit=True
    )
    assert m.label in shown.loc["sync-normal", "Mean ± CI"]
    assert shown.loc["sync-normal", "Min"] == m.number(0.98 * b, unit=True)
    assert shown.loc["sync-normal", "Max"] == m.number(1.02 * b, unit=True)
    assert shown.loc["sync-normal", "n"] == "3"


def test_percent_of_kernel_on_the_workload_figure() -> None:
    df = tables.grouped(flat(real_matrix("rr", kernel=True))).set_index("Variant")
    assert df.loc["sync-gso", "% of kernel"] == pytest.approx(50.0)  # kernel-router: twice
    assert df.loc["sync-normal", "% of kernel"] == pytest.approx(100.0)  # the no-offload router
    base = base_figures("rr")
    socat = 100 * base["peer-socat"] / base["sync-normal"]
    assert df.loc["peer-socat", "% of kernel"] == pytest.approx(socat)
    assert df.loc["sync-gso", "kernel_ref"] == "kernel-router"
    shown = tables.formatted(df.reset_index()).set_index("Variant")
    assert shown.loc["sync-gso", "% of kernel"] == "50%"


def test_cpu_per_unit_of_the_workload_figure() -> None:
    docs = real_matrix("rr")
    df = tables.grouped(flat(docs)).set_index("Variant")
    d = next(d for d in real_docs("rr") if d["cell"]["spec"] == "sync-normal")
    per = [
        d["results"]["cpu_avg"] / (d["results"]["transactions_per_s"] * f / 1000)
        for f in (1.0, 0.98, 1.02)
    ]
    assert df.loc["sync-normal", "CPU/kTPS"] == pytest.approx(statistics.median(per))
    assert pd.isna(df.loc["sync-normal", "CPU/Gbps"])
    shown = tables.formatted(df.reset_index())
    assert "CPU/kTPS" in shown.columns and "CPU/kpps" not in shown.columns
    stream = tables.formatted(tables.grouped(flat([doc("v", 10.0)])))
    assert "CPU/kTPS" not in stream.columns  # only where a row has that figure


def test_exports_carry_the_primary_figure() -> None:
    recs = flat([*real_matrix("rr"), doc("stream-row", 10.0), doc("stream-row", 12.0, repeat=1)])
    rows = {r["Variant"]: r for r in json.loads(tables.json_table(recs))}
    rr, st = rows["sync-normal"], rows["stream-row"]
    b = base_figures("rr")["sync-normal"]
    assert rr["primary_metric"] == "transactions_per_s" and rr["primary_unit"] == "transactions/s"
    assert rr["primary_median"] == pytest.approx(b)
    assert rr["primary_ci_low"] < b < rr["primary_ci_high"]
    assert rr["primary_min"] == pytest.approx(0.98 * b)
    assert rr["cpu_per_primary_unit"] == "kTPS" and rr["cpu_per_primary"] > 0
    assert rr["CPU/kTPS"] == rr["cpu_per_primary"] and st["CPU/kTPS"] is None
    assert rr["gbps_mean"] is None and rr["Gbps"] is None
    assert st["primary_metric"] == "gbps" and st["primary_median"] == st["Gbps"] == 11.0
    assert st["cpu_per_primary"] == st["CPU/Gbps"]
    header = next(csv.reader(io.StringIO(tables.csv(recs))))
    for col in ("primary_metric", "primary_median", "primary_ci_low", "primary_ci_high"):
        assert col in header
    assert "gbps_mean" in header and "Min" in header  # what consumers read before


def test_wide_interval_of_a_workload_figure_warns() -> None:
    text = tables.markdown(flat(real_matrix("crr", factors=(1.0, 0.7, 1.3))))
    assert "warning: sync-gso: spread 60% of the median" in text
    assert "95% CI" in text


def test_a_table_without_stream_rows_has_no_gbit_columns() -> None:
    """rr rows move no bulk data: Gbps, Retr and CPU/Gbps would be '-' in every row."""
    docs = real_matrix("rr")
    docs[0] = {**docs[0], "status": "failed", "error": "sockperf client failed"}
    header = tables.markdown(flat(docs)).splitlines()[0]
    cols = [c.strip() for c in header.strip("|").split("|")]
    assert "Gbps" not in cols and "Retr" not in cols and "CPU/Gbps" not in cols
    assert "TPS" in cols and "Mean ± CI" in cols
    stream = tables.markdown(flat([*docs, doc("sync-gso", 10.0)])).splitlines()[0]
    assert "| Gbps " in stream
