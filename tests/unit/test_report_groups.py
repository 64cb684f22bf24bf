"""Grouping repeats, % of kernel, spread warnings, compare and the HTML page."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tunbench import compare, report, results
from tunbench.errors import ResultFileError
from tunbench.htmlreport import write_html

from resultdocs import doc


def recs(*docs: dict[str, Any]) -> list[dict[str, Any]]:
    return [results.flat(d) for d in docs]


def test_repeats_are_one_row_with_median_min_max() -> None:
    df = report.grouped(
        recs(
            doc("sync-gso", 10.0), doc("sync-gso", 12.0, repeat=1), doc("sync-gso", 11.0, repeat=2)
        )
    )
    assert len(df) == 1
    row = df.iloc[0]
    assert (row["Gbps"], row["Min"], row["Max"], row["n"]) == (11.0, 10.0, 12.0, 3)


def test_different_workloads_are_never_merged() -> None:
    df = report.grouped(recs(doc("sync-gso", 10.0), doc("sync-gso", 20.0, parallel=4)))
    assert list(df["Gbps"]) == [10.0, 20.0]
    text = report.markdown(recs(doc("sync-gso", 10.0), doc("sync-gso", 20.0, parallel=4)))
    assert "Workload" in text.splitlines()[0] and "-P 4" in text


def test_pinning_and_latency_probe_are_part_of_the_workload() -> None:
    pinned = doc("sync-gso", 16.0, repeat=1)
    pinned["metadata"]["cpus"] = {"forwarder": [1], "load": [0]}
    probed = doc("sync-gso", 9.0, repeat=2)
    probed["metadata"]["latency_probe"] = True
    unpinned = doc("sync-gso", 18.0)
    unpinned["metadata"]["cpus"] = {"forwarder": [], "load": []}  # same as not recorded
    df = report.grouped(recs(unpinned, pinned, probed, doc("sync-gso", 17.0, repeat=1)))
    assert list(df["Gbps"]) == [17.5, 16.0, 9.0]
    assert list(df["Workload"]) == ["tcp mtu 1500", "tcp mtu 1500 cpus 1:0", "tcp mtu 1500 +ping"]


def test_runs_of_different_code_in_one_row_warn() -> None:
    old, new = doc("v", 10.0), doc("v", 11.0, repeat=1)
    old["metadata"]["git_sha"], new["metadata"]["git_sha"] = "aaa111", "bbb222"
    text = report.markdown(recs(old, new))
    assert "v: its runs come from different code (aaa111, bbb222)" in text
    new["metadata"]["git_sha"] = "aaa111"
    assert "different code" not in report.markdown(recs(old, new))


def test_empty_results_render_in_every_format() -> None:
    assert report.markdown([]) == "(no results)"
    assert report.csv([]).strip().startswith("#,Variant")
    assert json.loads(report.json_table([])) == []


def test_percent_of_kernel_and_cpu_per_gbps() -> None:
    df = report.grouped(recs(doc("kernel-veth", 20.0), doc("sync-gso", 15.0, cpu=60.0)))
    gso = df[df["Variant"] == "sync-gso"].iloc[0]
    assert gso["% of kernel"] == pytest.approx(75.0)
    assert gso["CPU/Gbps"] == pytest.approx(4.0)


def test_percent_of_kernel_only_against_the_same_workload() -> None:
    df = report.grouped(recs(doc("kernel-veth", 20.0, parallel=4), doc("sync-gso", 15.0)))
    assert pd.isna(df[df["Variant"] == "sync-gso"].iloc[0]["% of kernel"])


@pytest.mark.parametrize(
    ("values", "warn"), [([10.0, 10.5, 10.2], False), ([10.0, 11.5, 10.4], True)]
)
def test_spread_warning_threshold(values: list[float], warn: bool) -> None:
    assert report.exceeds(values) is warn
    text = report.markdown(recs(*(doc("v", g, repeat=i) for i, g in enumerate(values))))
    assert ("spread" in text) is warn


def test_spread_helper_edges() -> None:
    assert report.spread([5.0]) == 0.0
    assert report.spread([9.0, 11.0]) == pytest.approx(0.2)
    assert not report.exceeds([9.5, 10.5])  # exactly 10 % is not above 10 %


def test_failed_runs_are_shown_and_counted() -> None:
    text = report.markdown(recs(doc("v", 10.0), doc("v", 0.0, repeat=1, status="failed")))
    assert "1 (1 failed)" in text
    assert "failed: v: forwarder exited with status 3" in text
    only_failed = report.markdown(recs(doc("w", 0.0, status="failed")))
    assert "FAILED" in only_failed


def test_mixed_machines_warn() -> None:
    other = doc("v", 10.0, repeat=1)
    other["metadata"]["kernel"] = "5.15"
    assert "different kernels" in report.markdown(recs(doc("v", 10.0), other))


def test_csv_and_json_have_the_aggregate_columns() -> None:
    r = recs(doc("v", 10.0), doc("v", 12.0, repeat=1))
    header = report.csv(r).splitlines()[0]
    for col in ("Gbps", "Min", "Max", "n", "% of kernel", "CPU/Gbps"):
        assert col in header


def write_set(directory: Path, values: dict[str, list[float]]) -> None:
    directory.mkdir()
    for variant, gbps in values.items():
        for i, g in enumerate(gbps):
            results.write(doc(variant, g, repeat=i), directory, f"{variant}-{i}")


def test_compare_marks_only_disjoint_ranges_significant(tmp_path: Path) -> None:
    old, new = tmp_path / "old", tmp_path / "new"
    write_set(old, {"a": [10.0, 11.0], "b": [10.0, 11.0], "c": [5.0], "gone": [1.0, 1.0]})
    write_set(new, {"a": [10.5, 11.5], "b": [12.0, 13.0], "c": [9.0], "new": [2.0, 2.0]})
    df = compare.compare(old, new).set_index("Variant")
    assert df.loc["a", "Change"] == "within noise"
    assert df.loc["b", "Change"] == "significant"
    assert df.loc["b", "Δ Gbps"] == pytest.approx(2.0)
    assert df.loc["b", "Δ %"] == pytest.approx(100 * 2.0 / 10.5)
    assert df.loc["c", "Change"] == "too few runs"
    assert df.loc["gone", "Change"] == "removed"
    assert df.loc["new", "Change"] == "added"
    assert "significant" in compare.markdown(df.reset_index())


def test_compare_errors(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(ResultFileError, match="no result files"):
        compare.compare(tmp_path / "empty", tmp_path / "empty")


def test_html_page_has_table_chart_and_flamegraphs(tmp_path: Path) -> None:
    svg = tmp_path / "flamegraph" / "sync-gso.svg"
    svg.parent.mkdir()
    svg.write_text("<svg xmlns='http://www.w3.org/2000/svg'></svg>")
    with_prof = doc("sync-gso", 12.0)
    with_prof["profile"] = {"svg": str(svg), "gbps": 6.5, "error": None}
    without = copy.deepcopy(doc("kernel-veth", 20.0))
    without["profile"] = {"svg": None, "gbps": None, "error": "none captured (kernel baseline)"}
    page = write_html(recs(with_prof, without), tmp_path / "out" / "report.html")
    text = page.read_text()
    assert "<table" in text and "sync-gso" in text and "kernel-veth" in text
    assert "data='../flamegraph/sync-gso.svg'" in text  # embedded, by a relative path
    assert "6.50 Gbps under the profiler" in text
    assert "none captured (kernel baseline)" in text
    # rows without any profiling record still say why there is no flamegraph
    base, plain = doc("kernel-router", 19.0), doc("sync-normal", 2.0)
    base["cell"]["mode"] = "kernel"
    text = write_html(recs(base, plain), tmp_path / "o2" / "report.html").read_text()
    assert text.count("Flamegraph: none captured (kernel: no forwarder process)") == 1
    assert "Flamegraph: none captured (no profiling pass" in text
    chart = tmp_path / "out" / "report-throughput.svg"
    assert chart.exists() and (tmp_path / "out" / "report-throughput.png").stat().st_size > 1000
    assert 'href="report-throughput.svg"' in text  # a static copy beside the plotly chart


def test_compare_page_shows_whatever_columns_compare_returns(tmp_path: Path) -> None:
    import pandas as pd

    from tunbench import results as res
    from tunbench.htmlcompare import write_compare_html

    for side in ("old", "new"):
        (tmp_path / side).mkdir()
        res.write(doc("sync-gso", 12.0), tmp_path / side, "r0")
    rows = pd.DataFrame(
        {
            "variant": ["sync-gso", "sync-normal"],
            "old_gbps": [12.0, 2.0],
            "new_gbps": [13.5, 1.5],
            "p_value": [0.0123456, 0.5],
            "verdict": ["faster", "no significant change"],
        }
    )
    text = write_compare_html(tmp_path / "old", tmp_path / "new", rows, tmp_path / "c.html")
    html = text.read_text()
    assert '<tbody class="faster">' in html and '<td class="">0.0123</td>' in html
    assert 'data-selftest-sort="new_gbps"' in html and ">p_value</th>" in html
    assert (tmp_path / "plotly.min.js").exists()
