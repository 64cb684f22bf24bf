"""compare on a workload's primary figure: two rr result sets get a verdict on their TPS,
the table and the page show it with its unit (the real rr files of tests/data/workloads,
repeated with scaled figures)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tunbench.analysis import results
from tunbench.plan import compare
from tunbench.report.comparepage import write_compare_html

from resultdocs import (
    base_figures,
    doc,
    figures_of,
    real_matrix,
    save_docs,
)


def _rr_sets(tmp_path: Path, new_factor: float) -> tuple[Path, Path]:
    old = save_docs(real_matrix("rr", factors=(1.0, 0.99, 1.01, 1.0, 1.005)), tmp_path / "old")
    f = new_factor
    new = save_docs(
        real_matrix("rr", factors=(f, 0.99 * f, 1.01 * f, f, 1.005 * f), matrix_id="m2"),
        tmp_path / "new",
    )
    return old, new


def test_compare_gives_workload_rows_a_verdict_on_their_figure(tmp_path: Path) -> None:
    old, new = _rr_sets(tmp_path, 0.8)
    df, _ = compare.compare(old, new)
    assert list(df["verdict"]) == ["slower"] * 3
    assert set(df["metric"]) == {"transactions_per_s"} and set(df["unit"]) == {"transactions/s"}
    b = base_figures("rr")
    for _, row in df.iterrows():
        assert row["old"] == pytest.approx(b[row["variant"]])
        assert row["new"] == pytest.approx(0.8 * b[row["variant"]])
        assert row["old_gbps"] is None and row["change_pct"] == pytest.approx(-20.0)
        assert row["old_ci"][0] < row["old"] < row["old_ci"][1]
    text = compare.markdown(df)
    head = text.splitlines()[0]
    assert "TPS old" in head and "TPS new" in head and "Gbps" not in head
    assert "15,332" in text  # sync-normal's median, as the report writes TPS
    rows = json.loads(compare.as_json(df))
    assert {"metric", "unit", "old", "new", "old_gbps", "new_gbps"} <= set(rows[0])


def test_compare_table_of_mixed_workloads_writes_each_unit(tmp_path: Path) -> None:
    old, new = _rr_sets(tmp_path, 1.0)
    for directory, g in ((old, 10.0), (new, 10.1)):
        for i in range(3):
            results.write(doc("stream-row", g, repeat=i), directory, f"stream-{i}")
    df, _ = compare.compare(old, new)
    st = df[df["variant"] == "stream-row"].iloc[0]
    assert st["metric"] == "gbps" and st["old_gbps"] == st["old"] == 10.0
    head, _, *lines = compare.markdown(df).splitlines()
    assert " old " in head and "Gbps old" not in head and "TPS old" not in head
    assert any("10.00 Gbps" in line for line in lines)
    assert any("15,332 TPS" in line for line in lines)


def test_compare_page_draws_each_figure_on_its_own_axis(tmp_path: Path) -> None:
    old, new = _rr_sets(tmp_path, 0.8)
    df, _ = compare.compare(old, new)
    page = write_compare_html(old, new, df, tmp_path / "cmp.html").read_text()
    figs = figures_of(page)
    titles = {k: f["layout"]["yaxis"]["title"]["text"] for k, f in figs.items()}
    assert any("TPS" in t for t in titles.values())
    assert not any("Gbit/s" in t for t in titles.values())
    rr = next(f for k, f in figs.items() if "TPS" in titles[k])
    assert sum(len(t["y"]) for t in rr["data"]) == 30  # 3 rows x 5 runs x old/new


def test_compare_page_writes_intervals_in_the_figure_unit(tmp_path: Path) -> None:
    """Zero-loss rows: old/new in kpps, so their intervals too (not '[1.0271e+05, ...]')."""
    fs = (1.0, 0.99, 1.01, 1.0, 1.005)
    old = save_docs(real_matrix("zero-loss", factors=fs), tmp_path / "old")
    new = save_docs(real_matrix("zero-loss", factors=fs, matrix_id="m2"), tmp_path / "new")
    df, _ = compare.compare(old, new)
    page = write_compare_html(old, new, df, tmp_path / "cmp.html").read_text()
    assert "e+0" not in page.split("<script")[0]
    low, high = df.iloc[0]["old_ci"]
    assert f"[{low / 1e3:,.1f}, {high / 1e3:,.1f}]" in page
