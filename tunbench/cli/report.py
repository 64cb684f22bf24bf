"""``tunbench report``: the table or the page from the result files of a directory."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from tunbench.analysis import results
from tunbench.cli.common import (
    warn_skipped,
)
from tunbench.errors import UsageError


def add_parser(sub: Any) -> None:
    rep = sub.add_parser("report", help="summary table from result files")
    rep.add_argument("--results-dir", type=Path, default=Path("results"))
    rep.add_argument("--format", choices=["markdown", "csv", "json", "html"], default="markdown")
    rep.add_argument(
        "--out",
        type=Path,
        default=None,
        help="write here (html default: <results-dir>/report.html)",
    )
    rep.add_argument(
        "--by",
        choices=["host"],
        default=None,
        help="host: one row per host and spec (a Host column; rows of hosts never merged)",
    )


def handle(a: argparse.Namespace) -> int:
    from tunbench.report import tables

    docs = results.load_dir(a.results_dir, on_skip=warn_skipped)
    recs = [results.flat(d) for d in docs]
    by_host = a.by == "host"
    try:
        if a.format == "html":
            from tunbench.report.reportpage import write_html

            print(write_html(recs, a.out or a.results_dir / "report.html", by_host))
            return 0
        render = {"markdown": tables.markdown, "csv": tables.csv, "json": tables.json_table}
        text = render[a.format](recs, by_host)
        if a.out:
            a.out.write_text(text + "\n")
            print(a.out)
        else:
            print(text)
    except OSError as exc:
        raise UsageError(f"cannot write the report: {exc.strerror}: {exc.filename}") from exc
    return 0
