"""A tiny real sweep: two thread counts of sync-normal, one run each; its CSV rows, its
table, and a chart with one x value per swept value."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest

from tunbench.analysis import results

from helpers import tunbench

pytestmark = [pytest.mark.root, pytest.mark.timeout(90)]


def test_sweep_over_threads_writes_csv_table_and_chart(tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    argv = ["sweep", "sync-normal", "--over", "thread=1,2", "--repeat", "1"]
    argv += ["--duration", "1", "--omit", "0", "--no-profile", "--no-diagnose"]
    argv += ["--background-wait", "0"]
    proc = tunbench(*argv, "--out", str(out), "-q", timeout=80)
    assert proc.returncode == 0, proc.stderr
    docs = results.load_dir(out)
    assert sorted(d["cell"]["spec"] for d in docs) == [
        "sync-normal --thread 1",
        "sync-normal --thread 2",
    ]
    assert sorted(d["sweep"]["value"] for d in docs) == ["1", "2"]
    assert all(
        d["forwarder"]["extra"]["threads_per_direction"] == int(d["sweep"]["value"]) for d in docs
    )
    with (out / "sweep.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["spec"], r["param"], r["value"], r["n"]) for r in rows] == [
        ("sync-normal", "thread", "1", "1"),
        ("sync-normal", "thread", "2", "1"),
    ]
    for r in rows:
        assert float(r["gbps"]) > 0.01 and float(r["cpu_per_gbps"]) > 0
        # the forwarder's counters: plain packets, about an MTU each, thousands per second
        assert 500 < float(r["frame_bytes_written"]) <= 1500
        assert float(r["fwd_kpps"]) > 1 and r["segs_per_frame"] == ""
    assert "sync-normal" in proc.stdout and "--thread" in proc.stdout.splitlines()[0]
    page = (out / "sweep.html").read_text()
    assert (out / "plotly.min.js").stat().st_size > 1_000_000
    figs = json.loads(re.search(r'id="tb-figures">(.*?)</script>', page, re.S).group(1))
    traces = figs["sweep"]["data"]
    assert len(traces) == 2  # throughput and CPU per Gbit/s, one spec
    assert all(t["x"] == ["1", "2"] for t in traces)
    assert all(y is not None and y > 0 for t in traces for y in t["y"])
