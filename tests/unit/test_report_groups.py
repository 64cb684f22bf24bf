"""Grouping repeats, % of kernel, spread warnings, compare and the HTML page."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tunbench.analysis import results, stats
from tunbench.errors import ResultFileError
from tunbench.plan import compare
from tunbench.report import tables
from tunbench.report.reportpage import write_html

from resultdocs import doc


def recs(*docs: dict[str, Any]) -> list[dict[str, Any]]:
    return [results.flat(d) for d in docs]


def test_repeats_are_one_row_with_median_min_max() -> None:
    df = tables.grouped(
        recs(
            doc("sync-gso", 10.0), doc("sync-gso", 12.0, repeat=1), doc("sync-gso", 11.0, repeat=2)
        )
    )
    assert len(df) == 1
    row = df.iloc[0]
    assert (row["Gbps"], row["Min"], row["Max"], row["n"]) == (11.0, 10.0, 12.0, 3)


def test_different_workloads_are_never_merged() -> None:
    df = tables.grouped(recs(doc("sync-gso", 10.0), doc("sync-gso", 20.0, parallel=4)))
    assert list(df["Gbps"]) == [10.0, 20.0]
    text = tables.markdown(recs(doc("sync-gso", 10.0), doc("sync-gso", 20.0, parallel=4)))
    assert "Workload" in text.splitlines()[0] and "-P 4" in text


def test_pinning_and_latency_probe_are_part_of_the_workload() -> None:
    pinned = doc("sync-gso", 16.0, repeat=1)
    pinned["metadata"]["cpus"] = {"forwarder": [1], "load": [0]}
    probed = doc("sync-gso", 9.0, repeat=2)
    probed["metadata"]["latency_probe"] = True
    unpinned = doc("sync-gso", 18.0)
    unpinned["metadata"]["cpus"] = {"forwarder": [], "load": []}  # same as not recorded
    df = tables.grouped(recs(unpinned, pinned, probed, doc("sync-gso", 17.0, repeat=1)))
    assert list(df["Gbps"]) == [17.5, 16.0, 9.0]
    assert list(df["Workload"]) == ["tcp mtu 1500", "tcp mtu 1500 cpus 1:0", "tcp mtu 1500 +ping"]


def test_runs_of_different_code_in_one_row_warn() -> None:
    old, new = doc("v", 10.0), doc("v", 11.0, repeat=1)
    old["metadata"]["git_sha"], new["metadata"]["git_sha"] = "aaa111", "bbb222"
    text = tables.markdown(recs(old, new))
    assert "v: its runs come from different code (aaa111, bbb222)" in text
    new["metadata"]["git_sha"] = "aaa111"
    assert "different code" not in tables.markdown(recs(old, new))


def test_empty_results_render_in_every_format() -> None:
    assert tables.markdown([]) == "(no results)"
    assert tables.csv([]).strip().startswith("#,Variant")
    assert json.loads(tables.json_table([])) == []


def test_percent_of_kernel_and_cpu_per_gbps() -> None:
    df = tables.grouped(recs(doc("kernel-veth", 20.0), doc("sync-gso", 15.0, cpu=60.0)))
    gso = df[df["Variant"] == "sync-gso"].iloc[0]
    assert gso["% of kernel"] == pytest.approx(75.0)
    assert gso["CPU/Gbps"] == pytest.approx(4.0)


def test_percent_of_kernel_only_against_the_same_workload() -> None:
    df = tables.grouped(recs(doc("kernel-veth", 20.0, parallel=4), doc("sync-gso", 15.0)))
    assert pd.isna(df[df["Variant"] == "sync-gso"].iloc[0]["% of kernel"])


@pytest.mark.parametrize(
    ("values", "warn"), [([10.0, 10.5, 10.2], False), ([10.0, 11.5, 10.4], True)]
)
def test_spread_warning_threshold(values: list[float], warn: bool) -> None:
    assert tables.exceeds(values) is warn
    text = tables.markdown(recs(*(doc("v", g, repeat=i) for i, g in enumerate(values))))
    assert ("spread" in text) is warn


def test_spread_helper_edges() -> None:
    assert tables.spread([5.0]) == 0.0
    assert tables.spread([9.0, 11.0]) == pytest.approx(0.2)
    assert not tables.exceeds([9.5, 10.5])  # exactly 10 % is not above 10 %


def test_failed_runs_are_shown_and_counted() -> None:
    text = tables.markdown(recs(doc("v", 10.0), doc("v", 0.0, repeat=1, status="failed")))
    assert "1 (1 failed)" in text
    assert "failed: v: forwarder exited with status 3" in text
    only_failed = tables.markdown(recs(doc("w", 0.0, status="failed")))
    assert "FAILED" in only_failed


def test_mixed_machines_warn() -> None:
    other = doc("v", 10.0, repeat=1)
    other["metadata"]["kernel"] = "5.15"
    assert "different kernels" in tables.markdown(recs(doc("v", 10.0), other))


def test_csv_and_json_have_the_aggregate_columns() -> None:
    r = recs(doc("v", 10.0), doc("v", 12.0, repeat=1))
    header = tables.csv(r).splitlines()[0]
    for col in ("Gbps", "Min", "Max", "n", "% of kernel", "CPU/Gbps"):
        assert col in header


def write_set(directory: Path, values: dict[str, list[float]]) -> None:
    directory.mkdir()
    for variant, gbps in values.items():
        for i, g in enumerate(gbps):
            results.write(doc(variant, g, repeat=i), directory, f"{variant}-{i}")


def test_compare_verdicts(tmp_path: Path) -> None:
    old, new = tmp_path / "old", tmp_path / "new"
    base = [10.0, 10.1, 9.9, 10.05, 9.95]
    write_set(
        old,
        {
            "same": base,
            "slow": base,
            "fast": base,
            "tiny": [10.0, 10.01, 9.99, 10.005, 9.995],
            "few": [5.0, 5.1],
            "gone": [1.0, 1.0, 1.0],
        },
    )
    write_set(
        new,
        {
            "same": [10.02, 9.93, 10.08, 9.97, 10.0],
            "slow": [x * 0.88 for x in base],
            "fast": [x * 1.1 for x in base],
            "tiny": [x * 1.01 for x in [10.0, 10.01, 9.99, 10.005, 9.995]],
            "few": [9.0, 9.1, 9.2],
            "new": [2.0, 2.0, 2.0],
        },
    )
    df, notes = compare.compare(old, new)
    v = df.set_index("variant")
    assert v.loc["same", "verdict"] == "no significant change"
    assert v.loc["slow", "verdict"] == "slower" and v.loc["slow", "p_value"] < 0.05
    assert v.loc["slow", "change_pct"] == pytest.approx(-12.0)
    assert v.loc["fast", "verdict"] == "faster"
    assert v.loc["tiny", "verdict"] == "no significant change"  # 1 % < the 3 % minimum
    assert v.loc["tiny", "p_value"] < 0.05
    assert v.loc["few", "verdict"] == "too few runs" and v.loc["few", "p_value"] is None
    assert v.loc["gone", "verdict"] == "removed" and v.loc["new", "verdict"] == "added"
    assert list(df["variant"])[-1] == "new"  # OLD's order, then what only NEW has
    assert v.loc["slow", "n_old"] == 5 and v.loc["slow", "mw_p_value"] < 0.05
    assert notes == []
    # a smaller minimum effect turns the 1 % change into a verdict
    df2, _ = compare.compare(old, new, min_effect=0.005)
    assert df2.set_index("variant").loc["tiny", "verdict"] == "faster"
    text = compare.markdown(df, notes)
    assert "| slow " in text and "slower" in text and "-12.0%" in text and "<0.001" in text
    rows = json.loads(compare.as_json(df))
    for row in rows:
        for key in ("variant", "workload", "old_gbps", "new_gbps", "change_pct", "p_value"):
            assert key in row
        assert row["verdict"] in stats.VERDICTS
    slow = next(r for r in rows if r["variant"] == "slow")
    assert slow["n_old"] == 5 and isinstance(slow["n_old"], int)
    assert slow["workload"] == "tcp mtu 1500"


def test_compare_failed_rows_and_machine_warnings(tmp_path: Path) -> None:
    old, new = tmp_path / "old", tmp_path / "new"
    old.mkdir()
    new.mkdir()
    for i in range(3):
        results.write(doc("v", 10.0 + i, repeat=i), old, f"v-{i}")
        d = doc("v", 0.0, repeat=i, status="failed")
        d["metadata"]["kernel"] = "6.19"
        d["metadata"]["iperf3_version"] = "iperf 3.17"
        d["results"]["noisy"] = True
        results.write(d, new, f"v-{i}")
    df, notes = compare.compare(old, new)
    assert list(df["verdict"]) == ["failed"]
    assert any("differ in kernel: 6.18 -> 6.19" in n for n in notes)
    assert any("iperf3 version" in n for n in notes)
    assert "warning: 3 of 3 runs in NEW started on a busy machine" in notes


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
    from tunbench.analysis import results as res
    from tunbench.report.comparepage import write_compare_html

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


def test_confidence_interval_in_table_csv_and_json() -> None:
    runs = [10.0, 10.2, 9.8, 10.1, 9.9]
    r = recs(*(doc("v", g, repeat=i) for i, g in enumerate(runs)))
    row = tables.grouped(r).iloc[0]
    ci = stats.mean_ci(runs)
    assert ci is not None
    assert (row["gbps_mean"], row["gbps_ci_low"], row["gbps_ci_high"]) == pytest.approx(
        (ci.mean, ci.low, ci.high)
    )
    text = tables.markdown(r)
    assert f"10.00 ± {ci.half:.2f}" in text and "Mean ± CI" in text.splitlines()[0]
    assert "95% CI" not in text  # +-2 % of the mean: no warning
    header = tables.csv(r).splitlines()[0].split(",")
    assert "gbps_ci_low" in header and "gbps_ci_high" in header
    row_json = json.loads(tables.json_table(r))[0]
    assert row_json["gbps_ci_low"] == pytest.approx(ci.low)
    # two runs: no interval
    two = tables.markdown(recs(doc("w", 10.0), doc("w", 11.0, repeat=1)))
    assert "± " not in two.splitlines()[2]


def test_wide_interval_warns() -> None:
    runs = [10.0, 10.9, 9.4]
    text = tables.markdown(recs(*(doc("v", g, repeat=i) for i, g in enumerate(runs))))
    assert "warning: v: spread 15% of the median (> 10%) and 95% CI ±" in text
    assert "of the mean (> 5%) over 3 runs" in text
    target = [doc("v", g, repeat=i) for i, g in enumerate(runs)]
    for d in target:
        d["matrix"]["until_ci"] = 3.0
    assert "over 3 runs; target ±3% not reached" in tables.markdown(recs(*target))
    close = [doc("v", g, repeat=i) for i, g in enumerate([10.0, 10.2, 10.4])]
    for d in close:
        d["matrix"]["until_ci"] = 3.0
    # +-4.9 %: within the 5 % warning, but not the 3 % target
    text = tables.markdown(recs(*close))
    assert "note: v: did not converge to ±3% in 3 runs (95% CI ±4.9%)" in text
    assert "warning: v:" not in text


def test_a_row_without_a_ci_target_beside_one_with_it_names_none() -> None:
    runs = [10.0, 10.9, 9.4]
    with_target = [doc("v", g, repeat=i, matrix="m1") for i, g in enumerate(runs)]
    for d in with_target:
        d["matrix"]["until_ci"] = 3.0
    without = [doc("w", g, repeat=i, matrix="m2") for i, g in enumerate(runs)]
    text = tables.markdown(recs(*with_target, *without))
    assert "v: spread 15%" in text and "over 3 runs; target ±3% not reached" in text
    assert "nan" not in text  # w's target column was NaN, which reads as a target


def test_percent_of_kernel_is_paired_per_round() -> None:
    # the machine got 20 % faster in round 1: both rows see it, the ratio does not move
    r = recs(
        doc("kernel-veth", 20.0, repeat=0),
        doc("sync-gso", 10.0, repeat=0),
        doc("kernel-veth", 24.0, repeat=1),
        doc("sync-gso", 12.0, repeat=1),
        doc("kernel-veth", 21.0, repeat=2),
        doc("sync-gso", 10.5, repeat=2),
    )
    df = tables.grouped(r).set_index("Variant")
    assert df.loc["sync-gso", "% of kernel"] == pytest.approx(50.0)
    assert df.loc["kernel-veth", "% of kernel"] == pytest.approx(100.0)
    # ratio of medians would say 10.5 / 21 too, but not with a skewed round
    skew = recs(
        doc("kernel-veth", 20.0, repeat=0),
        doc("v", 10.0, repeat=0),
        doc("kernel-veth", 30.0, repeat=1),
        doc("v", 15.0, repeat=1),
        doc("kernel-veth", 25.0, repeat=2),
        doc("v", 11.0, repeat=2),
    )
    v = tables.grouped(skew).set_index("Variant").loc["v"]
    assert v["% of kernel"] == pytest.approx(50.0)  # median of 50, 50, 44
    assert "each run over the kernel-veth run of the same round" in tables.markdown(skew)


def test_percent_of_kernel_never_crosses_matrices() -> None:
    r = recs(doc("kernel-veth", 20.0, matrix="a"), doc("sync-gso", 10.0, matrix="b"))
    df = tables.grouped(r).set_index("Variant")
    assert pd.isna(df.loc["sync-gso", "% of kernel"])
    text = tables.markdown(r)
    assert "rows combine 2 matrix runs (a, b)" in text
    single = recs(doc("kernel-veth", 20.0, matrix=None), doc("sync-gso", 10.0, matrix=None))
    assert pd.isna(tables.grouped(single).set_index("Variant").loc["sync-gso", "% of kernel"])
    # a row whose rounds span two matrices pairs each run inside its own matrix
    both = recs(
        doc("kernel-veth", 20.0, matrix="a"),
        doc("v", 10.0, matrix="a"),
        doc("kernel-veth", 40.0, matrix="b"),
        doc("v", 20.0, matrix="b"),
        doc("v", 20.0, matrix="b", repeat=1),  # no kernel run in round 1 of b
    )
    row = tables.grouped(both).set_index("Variant").loc["v"]
    assert row["% of kernel"] == pytest.approx(50.0)


def test_kernel_reference_is_one_hook(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        tables,
        "kernel_reference",
        lambda mode, offload: (
            ("kernel-router", "kernel-veth") if offload == "none" else ("kernel-veth",)
        ),
    )
    plain = doc("sync-normal", 4.0)
    plain["cell"]["offload"] = "none"
    r = recs(doc("kernel-veth", 20.0), doc("kernel-router", 8.0), plain)
    df = tables.grouped(r).set_index("Variant")
    assert df.loc["sync-normal", "% of kernel"] == pytest.approx(50.0)
    assert df.loc["kernel-router", "% of kernel"] == pytest.approx(40.0)


def test_cpu_per_gbps_is_per_run_then_median() -> None:
    # per run 5, 10 and 2 %/Gbps: median 5; median CPU over median Gbps would say 50 / 11
    r = recs(
        doc("v", 10.0, cpu=50.0),
        doc("v", 11.0, cpu=110.0, repeat=1),
        doc("v", 12.0, cpu=24.0, repeat=2),
    )
    assert tables.grouped(r).iloc[0]["CPU/Gbps"] == pytest.approx(5.0)


def test_noisy_unsteady_and_unsampled_runs_are_counted_and_warned() -> None:
    r = recs(
        doc("v", 10.0, noisy=True, background_cpu_pct=63.0),
        doc("v", 10.1, repeat=1, steady=False, interval_cv=0.19),
        doc("v", 10.2, repeat=2, samples=0, cpu_avg=None, sampler_error="no samples"),
    )
    text = tables.markdown(r)
    assert "3 (1 noisy, 1 unsteady)" in text
    assert "warning: v: 1 of 3 runs started on a busy machine (background CPU up to 63%" in text
    assert "note: v: 1 of 3 runs not steady" in text and "19%" in text
    assert "warning: v: 1 of 3 runs had no CPU sample inside the measured window" in text


def test_udp_and_latency_columns_only_where_measured() -> None:
    tcp = tables.markdown(recs(doc("v", 10.0)))
    assert "Loss %" not in tcp and "RTT p50 ms" not in tcp and "Sys busy" in tcp
    udp = doc("u", 1.0, udp=True, lost_percent=2.5, pps=83000.0, jitter_ms=0.012)
    text = tables.markdown(recs(udp))
    header = text.splitlines()[0]
    assert "Loss %" in header and "pps" in header and "Jitter ms" in header
    assert "2.50" in text and "83,000" in text and "0.012" in text
    probed = doc("p", 1.0, rtt_p50_ms=0.21, rtt_p99_ms=1.5)
    probed["metadata"]["latency_probe"] = True
    text = tables.markdown(recs(probed))
    assert "RTT p50 ms" in text.splitlines()[0] and "0.210" in text and "1.500" in text
    assert "RTT p99 ms" in tables.csv(recs(probed)).splitlines()[0]


def test_harness_pinning_is_not_part_of_the_row_key() -> None:
    a, b = doc("v", 10.0), doc("v", 11.0, repeat=1)
    a["metadata"]["cpus"] = {"forwarder": [0], "load": [1]}
    b["metadata"]["cpus"] = {"forwarder": [0], "load": [1], "harness": [1]}
    assert len(tables.grouped(recs(a, b))) == 1


def test_rows_follow_the_matrix_spec_order_not_the_shuffle() -> None:
    first = doc("b", 1.0)
    first["matrix"]["cell"] = 1
    second = doc("a", 2.0)
    second["matrix"]["cell"] = 0
    loose = doc("z", 3.0, matrix=None)
    df = tables.grouped(recs(loose, first, second))
    assert list(df["Variant"]) == ["a", "b", "z"] and list(df["#"]) == [1, 2, 3]


def test_a_row_whose_every_run_failed_beside_one_with_a_verdict(tmp_path: Path) -> None:
    """The failed row has no Bound by: '-' in the text and a page that still builds (it
    was pandas' NaN: 'nan' in the table, and the page died on it)."""
    ok = doc("sync-gso", 12.0, bound_by="not CPU-bound")
    failed = doc("peer-fastd", 0.0, status="failed")
    table = tables.markdown(recs(ok, failed))
    (row,) = [ln for ln in table.splitlines() if ln.startswith("|") and "peer-fastd" in ln]
    assert "nan" not in row and "FAILED" in row
    page = write_html(recs(ok, failed), tmp_path / "report.html").read_text()
    assert "peer-fastd" in page and "not CPU-bound" in page


def test_flamegraph_notes_without_nan(tmp_path: Path) -> None:
    """A row without a profile beside one whose profile failed, and an rr row profiled
    beside stream rows: neither says 'nan' (pandas holds NaN, not None, in such columns)."""
    failed_prof = doc("peer-socat", 1.0)
    failed_prof["profile"] = {"svg": None, "gbps": None, "error": "perf is not installed"}
    kernel = doc("kernel-veth", 20.0)
    kernel["cell"]["mode"] = "kernel"
    svg = tmp_path / "rr.svg"
    svg.write_text("<svg xmlns='http://www.w3.org/2000/svg'></svg>")
    rr = doc("sync-normal", 0.0, transactions_per_s=15000.0)
    rr["metadata"]["workload"]["kind"] = "rr"
    rr["results"]["gbps"] = None
    rr["profile"] = {"svg": str(svg), "gbps": None, "error": None}
    with_gbps = doc("sync-gso", 12.0)
    with_gbps["profile"] = {"svg": str(svg), "gbps": 6.5, "error": None}
    page = write_html(recs(failed_prof, kernel, rr, with_gbps), tmp_path / "r.html").read_text()
    assert "Flamegraph: perf is not installed" in page
    assert "Flamegraph: nan" not in page and "nan Gbps" not in page
    assert "6.50 Gbps under the profiler" in page
