"""Charts and sweeps of a workload's primary figure: a zero-loss sweep tables and charts
packets per second, an rr sweep TPS, and the report page draws each figure on its own axis
(the real result files of tests/data/workloads, repeated with scaled figures)."""

from __future__ import annotations

import copy
import csv
import io
from pathlib import Path
from typing import Any

import pytest

from tunbench.analysis import primary, results
from tunbench.cli import cellargs
from tunbench.errors import UsageError
from tunbench.plan import sweep
from tunbench.report import sweeppage, sweeptable, tables
from tunbench.report.reportpage import write_html

from resultdocs import (
    base_figures,
    doc,
    figures_of,
    flat,
    real_docs,
    real_matrix,
    save_docs,
)


def _zero_loss_sweep() -> tuple[sweeptable.Over, list[sweep.Point], list[dict[str, Any]]]:
    over = sweep.parse_over("pkt-size=64,256,1400")
    specs = ["sync-normal", "sync-gso", "peer-socat"]
    _, points = sweep.plan_cells(specs, over, cellargs.workload_flags(cellargs.workload_parser()))
    real = {d["cell"]["spec"]: d for d in real_docs("zero-loss")}
    recs = []
    for p in points:
        for r, f in enumerate((1.0, 0.98, 1.02)):
            d = copy.deepcopy(real[p.spec])
            d["results"]["zero_loss_pps"] *= f * 256 / int(p.value)  # smaller packets: more pps
            d["metadata"]["workload"]["pkt_size"] = int(p.value)
            d["matrix"]["repeat"] = r
            d["sweep"] = {"param": "pkt-size", "value": p.value, "spec": p.spec}
            recs.append(results.flat(d))
    return over, points, recs


def test_zero_loss_sweep_tables_and_charts_packets_per_second() -> None:
    over, points, recs = _zero_loss_sweep()
    df = sweeptable.rows(recs, over, points)
    real = base_figures("zero-loss")
    assert list(df["n"]) == [3] * 9
    assert df["zero_loss_pps"][0] == pytest.approx(real["sync-normal"] * 4)
    header = next(csv.reader(io.StringIO(sweeptable.csv(df))))
    assert header == sweeptable.csv_columns(primary.of_kind("zero-loss"))
    for col in ("zero_loss_pps", "zero_loss_pps_mean", "zero_loss_pps_ci_low", "cpu_per_kpps"):
        assert col in header
    assert not any("gbps" in c for c in header)
    fig = sweeppage.figure(df, over, "--pkt-size: IP packet bytes")
    assert "kpps" in fig.layout.yaxis.title.text and "Gbit" not in fig.layout.yaxis.title.text
    assert "per kpps" in fig.layout.yaxis2.title.text
    assert fig.data[0].y[0] == pytest.approx(real["sync-normal"] * 4 / 1000)  # in kpps
    table = sweeptable.markdown(df, over)
    assert "0-loss kpps" in table.splitlines()[0] and "CPU/kpps" in table.splitlines()[0]
    page = sweeppage.html(df, over, "--pkt-size: IP packet bytes", "kernel x")
    assert "kpps" in page and "Gbit/s it moved" not in page


def test_rr_sweep_counts_its_runs() -> None:
    over = sweep.parse_over("rr-size=64,1000")
    _, points = sweep.plan_cells(
        ["sync-normal"], over, cellargs.workload_flags(cellargs.workload_parser())
    )
    real = next(d for d in real_docs("rr") if d["cell"]["spec"] == "sync-normal")
    recs = []
    for p in points:
        for r in range(3):
            d = copy.deepcopy(real)
            d["matrix"]["repeat"] = r
            d["sweep"] = {"param": "rr-size", "value": p.value, "spec": p.spec}
            recs.append(results.flat(d))
    df = sweeptable.rows(recs, over, points)
    assert list(df["n"]) == [3, 3]
    assert df["transactions_per_s"][0] == pytest.approx(real["results"]["transactions_per_s"])
    assert "TPS" in sweeppage.figure(df, over, "--rr-size").layout.yaxis.title.text


def test_a_sweep_over_the_workload_kind_is_refused() -> None:
    over = sweep.parse_over("workload=stream,rr")
    with pytest.raises(UsageError, match="one workload"):
        sweep.plan_cells(["sync-gso"], over, cellargs.workload_flags(cellargs.workload_parser()))


def test_report_page_charts_each_figure_on_its_own_axis(tmp_path: Path) -> None:
    docs = [*real_matrix("rr"), *real_matrix("zero-loss", matrix_id="m-zl")]
    docs += [doc("stream-row", g, repeat=i) for i, g in enumerate((10.0, 11.0, 12.0))]
    directory = save_docs(docs, tmp_path / "res")
    recs = flat(results.load_dir(directory))
    page = write_html(recs, directory / "report.html").read_text()
    df = tables.grouped(recs).set_index("Workload")
    stream_no = int(df.loc["tcp mtu 1500", "#"])
    rr = tables.grouped(recs)
    rr_no = int(
        rr[(rr["Variant"] == "sync-normal") & rr["Workload"].str.startswith("rr")]["#"].iloc[0]
    )
    figs = figures_of(page)
    ytitle = {k: f["layout"]["yaxis"]["title"]["text"] for k, f in figs.items()}
    assert figs["throughput"]["data"][0]["x"] == [f"{stream_no}. stream-row"]  # no TPS in Gbit/s
    tps = [k for k, t in ytitle.items() if t.startswith("TPS") and not k.startswith("runs-")]
    kpps = [k for k, t in ytitle.items() if t.startswith("kpps") and not k.startswith("runs-")]
    assert tps and kpps
    bars = figs[tps[0]]["data"][0]
    assert len(bars["x"]) == 3
    assert f"{rr_no}. sync-normal" in bars["x"]
    # each rr row's section draws its runs' TPS, and its heading gives the figure
    runs = figs[f"runs-{rr_no}"]
    assert ytitle[f"runs-{rr_no}"].startswith("TPS") and len(runs["data"][0]["y"]) == 3
    start = page.index(f'id="row-{rr_no}"')
    section = page[start : page.index("</section>", start)]
    assert "FAILED" not in section and "15,332 TPS" in section
