"""tunbench sweep without root: --over, the cell list, per-cell options through the
matrix, the rows, CSV, chart data and page built from synthetic result records."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest

from tunbench.cell.options import CellOptions
from tunbench.cell.variants import CellSpec
from tunbench.cli import cellargs
from tunbench.cli import main as cli
from tunbench.errors import UsageError
from tunbench.plan import matrix, sweep
from tunbench.plan.matrix import MatrixOptions
from tunbench.plan.sweep import Over, parse_over, plan_cells
from tunbench.report import sweeppage, sweeptable

from resultdocs import doc, sweep_records

WORKLOAD = cellargs.workload_flags(cellargs.workload_parser())


def test_parse_over() -> None:
    assert parse_over("thread=1,2,4") == Over("thread", ("1", "2", "4"))
    assert parse_over("--pkt-size=64, 256") == Over("pkt-size", ("64", "256"))
    for bad in ("thread", "=1,2", "thread=", "thread=1,,2", "thread=1,1", "Thread=1", "a b=1"):
        with pytest.raises(UsageError):
            parse_over(bad)


def test_forwarder_option_appends_the_flag_per_value() -> None:
    kind, points = plan_cells(["sync-gso", "sync-normal"], parse_over("thread=1,2"), WORKLOAD)
    assert kind == "forwarder"
    assert [(p.spec, p.value, p.cell.spec) for p in points] == [
        ("sync-gso", "1", "sync-gso --thread 1"),
        ("sync-gso", "2", "sync-gso --thread 2"),
        ("sync-normal", "1", "sync-normal --thread 1"),
        ("sync-normal", "2", "sync-normal --thread 2"),
    ]
    assert points[1].cell.options is not None and points[1].cell.options.thread == 2
    # only the spec with the value must be valid: --multiqueue alone needs --thread >= 2
    _, points = plan_cells(["sync-gso --multiqueue"], parse_over("thread=2,4"), WORKLOAD)
    assert [p.cell.spec for p in points] == [
        "sync-gso --multiqueue --thread 2",
        "sync-gso --multiqueue --thread 4",
    ]


def test_workload_option_keeps_the_spec() -> None:
    kind, points = plan_cells(["sync-gso"], parse_over("parallel=1,2,4,8"), WORKLOAD)
    assert kind == "workload"
    assert [(p.cell.spec, p.value) for p in points] == [("sync-gso", v) for v in "1248"]
    # any run option that takes a value is accepted, e.g. one added later
    kind, _ = plan_cells(["sync-gso"], parse_over("pkt-size=64,256"), {"--pkt-size"})
    assert kind == "workload"


@pytest.mark.parametrize(
    ("specs", "over", "message"),
    [
        (
            ["sync-normal"],
            "pool=1,2",
            "--pool is an option of neither tunbench run nor sync-normal",
        ),
        (["async-gso", "sync-gso"], "thread=1,2", "'async-gso' has no option --thread"),
        (["sync-gso"], "multiqueue=1,2", "is a switch"),
        (["kernel-veth"], "thread=1,2", "neither tunbench run nor kernel-veth"),
        (["sync-gso --thread 2"], "thread=1,2", "already sets --thread"),
        (["sync-gso --multiqueue"], "thread=1,2", r"thread=1: .*--multiqueue needs --thread 2"),
        (["sync-gso", "sync-gso"], "thread=1,2", "given twice"),
        (["sync-gso"], "results-dir=a,b", "neither"),
    ],
)
def test_refusals_are_one_line(specs: list[str], over: str, message: str) -> None:
    with pytest.raises(UsageError, match=message) as info:
        plan_cells(specs, parse_over(over), WORKLOAD)
    assert "\n" not in str(info.value)


def test_cli_refuses_bad_values_before_anything_runs(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / "never"
    code = cli.main(["sweep", "sync-gso", "--over", "parallel=1,x", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "--over parallel=x: " in err and "not a whole number" in err
    assert not out.exists()
    assert cli.main(["sweep", "sync-gso", "--over", "bogus=1"]) == 2


def test_matrix_runs_each_cell_with_its_options_and_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[str, int, Any]] = []

    def run_cell(cell: CellSpec, opts: CellOptions, extra: dict[str, Any]) -> dict[str, Any]:
        seen.append((cell.spec, opts.iperf.parallel, extra.get("sweep")))
        d = doc(cell.spec, 1.0)
        d.update(extra)
        return d

    profiled: list[tuple[str, int]] = []
    monkeypatch.setattr(matrix, "run_cell", run_cell)
    monkeypatch.setattr(
        matrix,
        "profile_cell",
        lambda cell, opts, svg, native: profiled.append((cell.spec, opts.iperf.parallel)) or {},
    )
    cell = CellSpec("x", "external", "x")
    opts = [CellOptions(iperf=cellargs.cell_options(_args(parallel=p)).iperf) for p in (1, 4)]
    extra = [{"sweep": {"value": v}} for v in ("1", "4")]
    mopts = MatrixOptions(repeat=2, seed=3, flamegraph_dir=Path("unused"))
    recs = matrix.run_matrix(
        [cell, cell], opts[0], mopts, progress=False, cell_opts=opts, cell_extra=extra
    )
    assert sorted((p, s["value"]) for _, p, s in seen) == [(1, "1"), (1, "1"), (4, "4"), (4, "4")]
    assert profiled == [("x", 1)]  # one profile per spec
    assert all(r["sweep"] for r in recs)


def _args(**kw: Any) -> Any:
    a = cli.build_parser().parse_args(["sweep", "x", "--over", "thread=1"])
    for k, v in kw.items():
        setattr(a, k, v)
    return a


def test_rows_csv_and_table() -> None:
    over, points, recs = sweep_records()
    df = sweeptable.rows(recs, over, points)
    assert list(df["spec"]) == ["sync-gso", "sync-gso", "sync-normal", "sync-normal"]
    assert list(df["value"]) == ["1", "2", "1", "2"]
    assert list(df["n"]) == [3, 3, 3, 2] and list(df["failed"]) == [0, 0, 0, 1]
    assert df["gbps"][1] == 15.0 and df["gbps_ci_low"][1] < 15.0 < df["gbps_ci_high"][1]
    assert df["cpu_per_gbps"][0] == pytest.approx((5 + 50 / 11 + 50 / 12) / 3)
    assert df["fwd_kpps"][0] == pytest.approx(0.2)  # 1000 frames over 5 s
    rows = list(csv.DictReader(io.StringIO(sweeptable.csv(df))))
    assert list(rows[0]) == sweeptable.CSV_COLUMNS
    assert [(r["spec"], r["param"], r["value"]) for r in rows] == [
        ("sync-gso", "thread", "1"),
        ("sync-gso", "thread", "2"),
        ("sync-normal", "thread", "1"),
        ("sync-normal", "thread", "2"),
    ]
    assert float(rows[2]["gbps"]) == 1.1 and rows[2]["fwd_kpps"] == ""
    table = sweeptable.markdown(df, over)
    head, *lines = table.splitlines()
    assert "--thread" in head and "fwd kpps" in head and "segs/frame" in head
    assert "15.00 ± " in lines[2] and "2 (1 failed)" in lines[4]
    assert lines[3].count(" - ") >= 3  # sync-normal has no counters: "-"


def test_chart_has_one_point_per_value_and_a_line_per_spec() -> None:
    over, points, recs = sweep_records()
    df = sweeptable.rows(recs, over, points)
    s = sweeptable.series(df)
    assert list(s) == ["sync-gso", "sync-normal"]
    assert s["sync-gso"]["x"] == ["1", "2"]
    assert s["sync-normal"]["gbps_ci_low"][1] is None  # 2 runs: no interval
    fig = sweeppage.figure(df, over, sweep.axis_label(over, "threads per direction (default 1)"))
    assert len(fig.data) == 4  # 2 specs x (throughput, CPU/Gbps)
    assert [t.showlegend for t in fig.data] == [True, False, True, False]
    assert all(list(t.x) == ["1", "2"] for t in fig.data)
    assert fig.layout.xaxis.title.text == "--thread: threads per direction"
    assert "Gbit/s" in fig.layout.yaxis.title.text
    assert "per Gbit/s" in fig.layout.yaxis2.title.text
    assert fig.data[0].error_y.array[0] is not None


def test_page_embeds_the_chart_offline() -> None:
    over, points, recs = sweep_records()
    df = sweeptable.rows(recs, over, points)
    page = sweeppage.html(df, over, "--thread: threads per direction", "kernel x")
    assert '<script src="plotly.min.js">' in page and "cdn" not in page.lower()
    figs = json.loads(re.search(r'id="tb-figures">(.*?)</script>', page, re.S).group(1))
    assert [t["x"] for t in figs["sweep"]["data"]] == [["1", "2"]] * 4
    assert 'id="results"' in page and "sweep.csv" in page


def test_axis_label() -> None:
    over = Over("parallel", ("1",))
    assert sweep.axis_label(over, "iperf3 streams (1)") == "--parallel: iperf3 streams"
    assert sweep.axis_label(over, None) == "--parallel"


def test_a_point_whose_runs_all_failed_has_no_verdict_and_says_dash() -> None:
    """No run, no Bound by: '-' (pandas held NaN there, printed as 'nan')."""
    over, points, recs = sweep_records()
    for r in recs:
        r["bound_by"] = "not CPU-bound" if r["status"] == "ok" else None
        if r["sweep"]["spec"] == "sync-normal" and r["sweep"]["value"] == "2":
            r["status"], r["gbps"], r["bound_by"] = "failed", None, None
    df = sweeptable.rows(recs, over, points)
    table = sweeptable.markdown(df, over)
    (row,) = [ln for ln in table.splitlines() if "sync-normal" in ln and "3 failed" in ln]
    assert "nan" not in row and row.rstrip(" |").endswith("-")
    assert "nan" not in sweeppage.html(df, over, "label", "m")
