"""The HTML report as a person sees it: headless Chromium renders it, screenshot taken."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tunbench import results
from tunbench.htmlreport import write_html

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
]


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("CI=true and chromium is missing (TB_WITH_BROWSER=1 bootstrap)")
        pytest.skip("chromium is not installed")
    return found


def make_results(directory: Path) -> list[dict[str, object]]:
    docs = [
        doc("kernel-veth", 20.0),
        doc("sync-gso", 15.0),
        doc("sync-normal", 2.5),
        doc("sync-gso", 14.0, repeat=1),
        doc("kernel-veth", 20.0, repeat=1),
    ]
    directory.mkdir()
    for i, d in enumerate(docs):
        results.write(d, directory, f"r{i}")
    return [results.flat(d) for d in results.load_dir(directory)]


def test_report_page_renders_table_and_chart(tmp_path: Path) -> None:
    exe = chromium()
    page = write_html(make_results(tmp_path / "results"), tmp_path / "results" / "report.html")
    profile = ["--user-data-dir=" + str(tmp_path / "profile")]
    shot = tmp_path / "shot.png"
    subprocess.run(
        [
            exe,
            *CHROMIUM_FLAGS,
            *profile,
            f"--screenshot={shot}",
            "--window-size=1200,1400",
            page.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=90,
    )
    assert shot.exists() and shot.stat().st_size > 20_000  # a rendered page, not a blank
    dom = subprocess.run(
        [exe, *CHROMIUM_FLAGS, *profile, "--dump-dom", page.as_uri()],
        check=True,
        capture_output=True,
        text=True,
        timeout=90,
    ).stdout
    assert 'id="results"' in dom
    for name in ("kernel-veth", "sync-gso", "sync-normal"):
        assert f"<td>{name}</td>" in dom
    assert 'id="chart"' in dom and "report-throughput.svg" in dom
    assert "<td>72%</td>" in dom  # sync-gso: median of 15 / 20 and 14 / 20, round by round
