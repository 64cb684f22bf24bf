"""``tunbench compare OLD NEW``: a verdict per row between two result directories;
``compare --hosts A,B FLEET_DIR``: between two hosts of a fleet run; ``compare --a SPEC
--b SPEC DIR``: B against A, their rounds of one matrix session paired."""

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
    cmp.add_argument("old", type=Path, help="OLD results dir (with --hosts: the fleet run's)")
    cmp.add_argument("new", type=Path, nargs="?", default=None, help="NEW results dir")
    cmp.add_argument(
        "--hosts",
        type=_two_hosts,
        default=None,
        metavar="A,B",
        help="compare host A (OLD) with host B (NEW) in one directory (a fleet run's)",
    )
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
    cmp.add_argument(
        "--a",
        dest="spec_a",
        default=None,
        metavar="SPEC",
        help="with --b and one directory: a paired A/B of two specs of the same matrix session",
    )
    cmp.add_argument(
        "--b", dest="spec_b", default=None, metavar="SPEC", help="B of the paired A/B (see --a)"
    )
    cmp.add_argument("--format", choices=["markdown", "json"], default="markdown")


def _two_hosts(text: str) -> tuple[str, str]:
    names = [n.strip() for n in text.split(",")]
    if len(names) != 2 or not all(names) or names[0] == names[1]:
        raise argparse.ArgumentTypeError(f"expected two different host names A,B, got {text!r}")
    return names[0], names[1]


def handle(a: argparse.Namespace) -> int:
    from tunbench.plan import compare

    if a.spec_a is not None or a.spec_b is not None:
        return _paired(a)
    if a.hosts is None and a.new is None:
        raise UsageError("compare needs OLD and NEW directories, or --hosts A,B and one directory")
    if a.hosts is not None and a.new is not None:
        raise UsageError("compare --hosts A,B takes one directory (a fleet run's), not two")
    if a.hosts is not None and a.html:
        raise UsageError("compare --html needs two directories; for two hosts give their dirs")
    df, notes = compare.compare(a.old, a.new, a.min_effect / 100, warn_skipped, a.hosts)
    if a.format == "json":
        print(compare.as_json(df))
        for note in notes:
            print(f"tunbench: {note}", file=sys.stderr)
    else:
        print(compare.markdown(df, notes))
    if a.html:
        from tunbench.report.comparepage import write_compare_html

        try:
            page = write_compare_html(a.old, a.new or a.old, df, a.html)
        except OSError as exc:
            raise UsageError(f"cannot write the page: {exc.strerror}: {exc.filename}") from exc
        print(f"tunbench: wrote {page}", file=sys.stderr)
    return 0


def _paired(a: argparse.Namespace) -> int:
    from tunbench.analysis import results
    from tunbench.plan import paired

    if a.spec_a is None or a.spec_b is None:
        raise UsageError("a paired comparison needs both --a SPEC and --b SPEC")
    if a.new is not None or a.hosts is not None or a.html:
        raise UsageError("compare --a/--b takes one directory (a matrix's), without --hosts/--html")
    recs = [results.flat(d) for d in results.load_dir(a.old, warn_skipped)]
    specs = paired.specs_of(recs)
    for spec in (a.spec_a, a.spec_b):
        if spec not in specs:
            raise UsageError(f"no runs of {spec!r} in {a.old} (specs: {', '.join(specs)})")
    rows = paired.pair(recs, a.spec_a, a.spec_b, a.min_effect)
    if not rows:
        raise UsageError(f"{a.spec_a!r} and {a.spec_b!r} ran no workload in common in {a.old}")
    if a.format == "json":
        print(paired.as_json(rows))
    else:
        print(paired.markdown(rows))
    if all(r.verdict.n == 0 for r in rows):
        print(
            "tunbench: no round has both: A and B were not measured in the same matrix "
            "session; `tunbench compare` on two directories judges separate sets (Welch)",
            file=sys.stderr,
        )
    return 0
