"""``tunbench compare OLD NEW``: a verdict per row between two result directories."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from tunbench.analysis.stats import MIN_EFFECT
from tunbench.cli.common import (
    nonneg_float,
    warn_skipped,
)
from tunbench.errors import UsageError


def add_parser(sub: Any) -> None:
    cmp = sub.add_parser("compare", help="change per variant between two result dirs")
    cmp.add_argument("old", type=Path)
    cmp.add_argument("new", type=Path)
    cmp.add_argument(
        "--html", type=Path, default=None, metavar="OUT", help="also write the comparison page"
    )
    cmp.add_argument(
        "--min-effect",
        type=nonneg_float,
        default=100 * MIN_EFFECT,
        metavar="PCT",
        help="smallest change of the median called faster/slower, in %% (3)",
    )
    cmp.add_argument("--format", choices=["markdown", "json"], default="markdown")


def handle(a: argparse.Namespace) -> int:
    from tunbench.plan import compare

    df, notes = compare.compare(a.old, a.new, a.min_effect / 100, on_skip=warn_skipped)
    if a.format == "json":
        print(compare.as_json(df))
        for note in notes:
            print(f"tunbench: {note}", file=sys.stderr)
    else:
        print(compare.markdown(df, notes))
    if a.html:
        from tunbench.report.comparepage import write_compare_html

        try:
            page = write_compare_html(a.old, a.new, df, a.html)
        except OSError as exc:
            raise UsageError(f"cannot write the page: {exc.strerror}: {exc.filename}") from exc
        print(f"tunbench: wrote {page}", file=sys.stderr)
    return 0
