"""The HTML report as a person sees it: headless Chromium renders it from file:// with no
network, the page's self-test hook says what it drew, and a screenshot is taken."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tunbench.analysis import results
from tunbench.report.reportpage import PLOTLY_JS, write_html

from resultdocs import doc

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    # no network at all: any host the page asked for would fail to resolve
    "--host-resolver-rules=MAP * ~NOTFOUND",
]


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("CI=true and chromium is missing (TB_WITH_BROWSER=1 bootstrap)")
        pytest.skip("chromium is not installed")
    return found


def series(t0: float, cpu: float, n: int = 40, dt: float = 0.1) -> list[dict[str, Any]]:
    return [
        {
            "t": t0 + dt * i,
            "dt": dt,
            "cpu_pct": cpu + (i % 5),
            "rss_bytes": 16_000_000 + 1000 * i,
            "system_busy_pct": 60.0,
            "threads": 3,
        }
        for i in range(1, n + 1)
    ]


def measured(d: dict[str, Any], gbps: float, cpu: float, kernel: bool = False) -> dict[str, Any]:
    """Fill a hand-made document with what a real run has: samples, load generator samples,
    iperf3 intervals (one warm-up), counters."""
    t0 = 1_000_000.0
    d["window"] = {"start": t0 + 1.0, "end": t0 + 4.0}
    d["metadata"].update({"cpu_count": 2, "forwarder_command": f"python -m fwd {d['cell']}"})
    d["metadata"]["workload"]["omit"] = 1
    d["samples"] = series(t0, 0.0 if kernel else cpu)
    d["load_samples"] = {"iperf3-client": series(t0, 50.0, 20, 0.2)}
    d["iperf3"] = {
        "intervals": [
            {"sum": {"start": 0, "end": 1, "bits_per_second": gbps * 0.9e9, "omitted": True}},
            *({"sum": {"start": s, "end": s + 1, "bits_per_second": gbps * 1e9}} for s in range(3)),
        ]
    }
    if not kernel:
        d["forwarder"] = {"directions": {"1to2": {"packets": 10, "bytes": 15000, "drops": 0}}}
    else:
        d["cell"].update({"kind": "baseline", "mode": "kernel"})
    return d


def make_results(directory: Path) -> list[dict[str, Any]]:
    flames = directory / "flamegraph"
    flames.mkdir(parents=True)
    svg = flames / "sync-gso.svg"
    svg.write_text('<svg xmlns="http://www.w3.org/2000/svg" width="100" height="20"></svg>')
    svg.with_suffix(".folded").write_text("fwd;main;read 30\nfwd;main;write;tun_put_user 70\n")
    profile = {"svg": str(svg), "gbps": 12.0, "native": False, "error": None}
    docs = [
        measured(doc("kernel-veth", 20.0), 20.0, 0.0, kernel=True),
        measured(doc("sync-gso", 15.0), 15.0, 99.0),
        measured(doc("sync-normal", 2.5), 2.5, 130.0),
        measured(doc("sync-gso", 14.0, repeat=1), 14.0, 98.0),
        # round 1's kernel run: % of kernel pairs each run with its own round's
        measured(doc("kernel-veth", 20.0, repeat=1), 20.0, 0.0, kernel=True),
    ]
    docs[1]["profile"] = docs[3]["profile"] = profile
    for i, d in enumerate(docs):
        results.write(d, directory, f"r{i}")
    return [results.flat(d) for d in results.load_dir(directory)]


def run(exe: str, tmp_path: Path, *args: str) -> str:
    profile = "--user-data-dir=" + str(tmp_path / "chromium-profile")
    return subprocess.run(
        [exe, *CHROMIUM_FLAGS, profile, *args],
        check=True,
        capture_output=True,
        text=True,
        timeout=90,
    ).stdout


def test_report_page_draws_sorts_and_drills_down_offline(tmp_path: Path) -> None:
    exe = chromium()
    out = tmp_path / "results" / "report.html"
    page = write_html(make_results(tmp_path / "results"), out)
    text = page.read_text()
    assert (out.parent / PLOTLY_JS).stat().st_size > 1_000_000  # written once, beside it
    assert f'<script src="{PLOTLY_JS}">' in text
    assert not re.search(r'(src|href)="(https?:)?//', text)  # nothing from the network

    dom = run(
        exe, tmp_path, "--virtual-time-budget=30000", "--dump-dom", page.as_uri() + "#tb-selftest"
    )
    found = re.search(r'<pre id="tb-selftest"[^>]*>(.*?)</pre>', dom, re.S)
    assert found and found.group(1), "the self-test wrote nothing"
    seen = json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    assert seen["errors"] == [] and seen["plotly"]
    assert seen["plots"] >= seen["figures"] > 10  # every placeholder holds a drawn plot
    assert seen["sorted_desc"] == ["kernel-veth", "sync-gso", "sync-normal"]
    assert seen["sorted_asc"] == ["sync-normal", "sync-gso", "kernel-veth"]
    drills = {d["id"]: {c["id"]: c for c in d["charts"]} for d in seen["drill"]}
    gso = drills["row-2"]  # sync-gso: two runs
    for chart in ("iv-2", "cpu-2", "all-2", "mem-2"):
        assert gso[chart]["traces"] >= 2, chart  # both runs overlaid
    assert gso["flame-2-0"]["traces"] >= 4  # the perf icicle: all, fwd, main, read, write
    assert set(drills["row-1"]) == {"iv-1", "all-1"}  # kernel: no forwarder CPU or memory
    assert ">forwarder busy, threads unknown<" in dom  # sync-gso: ~100% over 3 threads

    shot = tmp_path / "shot.png"
    run(
        exe,
        tmp_path,
        "--virtual-time-budget=15000",
        "--window-size=1400,2400",
        f"--screenshot={shot}",
        page.as_uri(),
    )
    assert shot.exists() and shot.stat().st_size > 50_000  # a rendered page, not a blank


def test_compare_page_draws_offline(tmp_path: Path) -> None:
    from tunbench.plan import compare
    from tunbench.report.comparepage import write_compare_html

    exe = chromium()
    old, new = tmp_path / "old", tmp_path / "new"
    make_results(old)
    new.mkdir()
    for i, d in enumerate(results.load_dir(old)):
        d["results"]["gbps"] *= 1.2
        results.write({k: v for k, v in d.items() if k != "_path"}, new, f"r{i}")
    page = write_compare_html(old, new, compare.compare(old, new)[0], tmp_path / "cmp" / "c.html")
    dom = run(
        exe, tmp_path, "--virtual-time-budget=20000", "--dump-dom", page.as_uri() + "#tb-selftest"
    )
    found = re.search(r'<pre id="tb-selftest"[^>]*>(.*?)</pre>', dom, re.S)
    assert found and found.group(1)
    seen = json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    assert seen["errors"] == [] and seen["plots"] >= seen["figures"] == 1
    assert seen["sorted_desc"] == ["kernel-veth", "sync-gso", "sync-normal"]


def test_sweep_page_draws_offline(tmp_path: Path) -> None:
    """The sweep page: its one chart drawn from file:// with no network, the table sorts."""
    from tunbench.report import sweeppage, sweeptable
    from tunbench.report.reportpage import write_plotly_js

    from resultdocs import sweep_records

    exe = chromium()
    over, points, recs = sweep_records()
    df = sweeptable.rows(recs, over, points)
    write_plotly_js(tmp_path)
    page = tmp_path / "sweep.html"
    page.write_text(sweeppage.html(df, over, "--thread: threads per direction", "kernel x"))
    dom = run(
        exe, tmp_path, "--virtual-time-budget=20000", "--dump-dom", page.as_uri() + "#tb-selftest"
    )
    found = re.search(r'<pre id="tb-selftest"[^>]*>(.*?)</pre>', dom, re.S)
    assert found and found.group(1)
    seen = json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    assert seen["errors"] == [] and seen["plots"] >= seen["figures"] == 1
    # rows by median Gbps: sync-gso at 2 threads first, sync-normal at 1 thread last
    assert seen["sorted_desc"] == ["sync-gso", "sync-gso", "sync-normal", "sync-normal"]
