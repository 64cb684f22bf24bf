"""``tunbench history page`` as a person sees it: headless Chromium renders it from
file:// with no network; the page's self-test says every chart was drawn."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from test_html_page import chromium, run

from tunbench.cli.main import main
from tunbench.report.htmlpage import PLOTLY_JS

from resultdocs import write_rev

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]


def test_history_page_draws_every_series_offline(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    exe = chromium()
    results = tmp_path / "results"
    results.mkdir()
    for i, (rev, gbps) in enumerate((("r1", 10.0), ("r2", 10.0), ("r3", 9.0))):
        write_rev(results, rev, gbps, seed=i + 1)
    out = tmp_path / "page"
    assert main(["history", "page", "--results-dir", str(results), "--out", str(out)]) == 0
    page = Path(capsys.readouterr().out.strip())
    assert page == out / "index.html"
    text = page.read_text()
    assert (out / PLOTLY_JS).stat().st_size > 1_000_000
    assert not re.search(r'(src|href)="(https?:)?//', text)  # nothing from the network
    assert "r3: ▼ -" in text and "forwarder" in text  # the change point, in the table

    dom = run(
        exe, tmp_path, "--virtual-time-budget=20000", "--dump-dom", page.as_uri() + "#tb-selftest"
    )
    found = re.search(r'<pre id="tb-selftest"[^>]*>(.*?)</pre>', dom, re.S)
    assert found and found.group(1), "the self-test wrote nothing"
    seen = json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    assert seen["errors"] == [] and seen["plotly"]
    assert seen["plots"] >= seen["figures"] == 2  # sync-gso and the kernel row
    assert sorted(seen["sorted_desc"]) == ["kernel-veth", "sync-gso"]

    shot = tmp_path / "shot.png"
    run(
        exe,
        tmp_path,
        "--virtual-time-budget=15000",
        "--window-size=1200,1400",
        f"--screenshot={shot}",
        page.as_uri(),
    )
    assert shot.exists() and shot.stat().st_size > 30_000
