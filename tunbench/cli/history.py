"""``tunbench history``: a forwarder's figures across its revisions, from the result files
of a directory (indexed in sqlite, :mod:`tunbench.plan.historystore`).

- ``show``: a table per series (testbed, spec, workload): revisions, median, interval,
  ``% of kernel`` and the change points, each labelled forwarder, host or both;
- ``page --out DIR``: the same as an offline plotly page;
- ``check --rev NEW``: CI's gate. Exit 0 no regression, 1 regression beyond
  ``--min-effect``, 2 inconclusive (it says how many more runs would decide), 3
  improvement; the worst series decides (regression, then inconclusive, then
  improvement). An error once the options are read (no runs of NEW, an unreadable
  result file) exits 4, never 1 or 3; a bad option exits 2 as in every command;
- ``bisect-run``: for ``git bisect run``: measures (``--measure CMD``) and judges the
  checked-out revision: exit 0 good, 1 bad, 125 skip (inconclusive or unmeasured), 128
  on an error (so that git bisect stops instead of calling the commit bad);
- ``export --format bmf|gab-bigger|gab-smaller|csv``: for Bencher and
  github-action-benchmark, or a spreadsheet.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tunbench.analysis.stats import MIN_EFFECT
from tunbench.cli.common import Parser, nonneg_float
from tunbench.errors import TunbenchError, UsageError

BISECT_GOOD, BISECT_BAD, BISECT_SKIP, BISECT_ABORT = 0, 1, 125, 128
CHECK_ERROR = 4  # check could not judge (no such revision, unreadable files)


def add_parser(sub: Any) -> None:
    h = sub.add_parser("history", help="figures across revisions: change points, CI gate")
    cmds = h.add_subparsers(
        dest="history_command",
        required=True,
        parser_class=Parser,
        metavar="{show,page,check,bisect-run,export}",
    )
    show = cmds.add_parser("show", help="a table per series with its change points")
    _common(show)
    page = cmds.add_parser("page", help="an offline page: one chart per series")
    _common(page)
    page.add_argument("--out", type=Path, required=True, metavar="DIR", help="write DIR/index.html")
    check = cmds.add_parser(
        "check", help="exit 0 ok, 1 regression, 2 inconclusive, 3 better, 4 error"
    )
    _common(check)
    _judge(check, required=True)
    bisect = cmds.add_parser("bisect-run", help="for git bisect run: 0 good, 1 bad, 125 skip")
    _common(bisect)
    _judge(bisect, required=False)
    bisect.add_argument(
        "--measure",
        default=None,
        metavar="CMD",
        help="shell command that builds and measures the checked-out revision first; it "
        'gets the revision in $TUNBENCH_REV (pass it on as --rev "$TUNBENCH_REV")',
    )
    export = cmds.add_parser("export", help="Bencher BMF, github-action-benchmark, CSV")
    _common(export)
    export.add_argument(
        "--format",
        choices=["bmf", "gab-bigger", "gab-smaller", "csv"],
        required=True,
        help="bmf: Bencher Metric Format; gab-bigger/gab-smaller: github-action-benchmark's "
        "customBiggerIsBetter/customSmallerIsBetter; csv: every run",
    )
    export.add_argument("--rev", default=None, help="the revision exported (default: the last)")
    export.add_argument("--out", type=Path, default=None, help="write here, not to stdout")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--results-dir", type=Path, default=Path("results"))
    p.add_argument(
        "--index",
        type=Path,
        default=None,
        help="the sqlite index (default: <results-dir>/history.sqlite; rebuilt when deleted)",
    )
    p.add_argument(
        "--repo",
        type=Path,
        default=None,
        help="git repository the revisions are commits of: they are put in its order "
        "(default: the order they were first measured in)",
    )
    p.add_argument("--testbed", default=None, help="only this testbed's series")
    p.add_argument(
        "--spec", action="append", default=[], help="only this spec's series (repeatable)"
    )


def _judge(p: argparse.ArgumentParser, required: bool) -> None:
    p.add_argument(
        "--rev",
        required=required,
        default=None,
        metavar="NEW",
        help="the revision judged" + ("" if required else " (default: --repo's git describe)"),
    )
    base = p.add_mutually_exclusive_group()
    base.add_argument("--against", default=None, metavar="BASE", help="judge against BASE")
    base.add_argument(
        "--last-segment",
        action="store_true",
        help="judge against every revision since the last change point before NEW",
    )
    p.add_argument(
        "--min-effect",
        type=nonneg_float,
        default=100 * MIN_EFFECT,
        metavar="PCT",
        help="smallest change called a regression or improvement, in %% (3)",
    )
    p.add_argument(
        "--figure",
        choices=["auto", "ratio", "absolute"],
        default="auto",
        help="what is judged: ratio (%% of kernel: host drift cancels), absolute (the "
        "figure itself: steadier where the kernel row is the noisier one), auto: the "
        "ratio where every run was paired with a kernel run (default)",
    )
    p.add_argument(
        "--kernel-rows",
        action="store_true",
        help="judge the kernel rows too (default: only forwarders; they are the host)",
    )


def _load(a: argparse.Namespace) -> Any:
    from tunbench.cli.common import warn_skipped
    from tunbench.plan import historystore

    done = historystore.refresh(a.results_dir, a.index)
    if done.skipped:
        warn_skipped(done.skipped)
    return historystore.load_series(a.results_dir, a.index, a.repo, a.testbed, a.spec)


def _judged(a: argparse.Namespace) -> Any:
    from tunbench.analysis import history

    loaded = _load(a)
    for s in loaded.series:
        history.judge(s)
    return loaded


def handle(a: argparse.Namespace) -> int:
    if a.history_command == "bisect-run":
        return _bisect(a)
    return {"show": _show, "page": _page, "check": _check, "export": _export}[a.history_command](a)


def _show(a: argparse.Namespace) -> int:
    from tunbench.report import historytext

    loaded = _judged(a)
    print(historytext.show(loaded.series, loaded.order, loaded.without_rev))
    return 0


def _page(a: argparse.Namespace) -> int:
    from tunbench.report.historypage import write_page

    loaded = _judged(a)
    try:
        path = write_page(loaded.series, a.out, loaded.order)
    except OSError as exc:
        raise UsageError(f"cannot write the page: {exc.strerror}: {exc.filename}") from exc
    print(path)
    return 0


def _export(a: argparse.Namespace) -> int:
    from tunbench.report.historyexport import RENDER

    loaded = _judged(a)
    text = RENDER[a.format](loaded.series, a.rev)
    if a.out is None:
        print(text)
        return 0
    try:
        a.out.write_text(text + ("" if text.endswith("\n") else "\n"))
    except OSError as exc:
        raise UsageError(f"cannot write {a.out}: {exc.strerror}") from exc
    print(a.out, file=sys.stderr)
    return 0


def verdicts(a: argparse.Namespace, rev: str) -> list[tuple[Any, Any]]:
    """(series, verdict) of every series that has runs of ``rev`` (forwarders only unless
    ``--kernel-rows``); UsageError when none has."""
    from tunbench.analysis import history

    loaded = _load(a)
    chosen = [s for s in loaded.series if rev in s.revs and (a.kernel_rows or not s.is_kernel)]
    if not chosen:
        known = sorted({r for s in loaded.series for r in s.revs})
        raise UsageError(
            f"no runs of revision {rev!r} in {a.results_dir}"
            + (f" (revisions: {', '.join(known)})" if known else "")
        )
    if a.against is not None and not any(a.against in s.revs for s in chosen):
        raise UsageError(f"--against {a.against}: no runs of it beside {rev!r}'s")
    return [
        (s, history.check(s, rev, a.against, a.last_segment, a.min_effect / 100, a.figure))
        for s in chosen
    ]


def overall(codes: list[int]) -> int:
    """The exit status of several verdicts: a regression, else an inconclusive one, else
    an improvement, else 0."""
    for code in (1, 2, 3):
        if code in codes:
            return code
    return 0


def _check(a: argparse.Namespace) -> int:
    from tunbench.analysis.history import EXIT_CODES
    from tunbench.report.historytext import verdict_line

    try:
        judged = verdicts(a, a.rev)
    except TunbenchError as exc:  # never 1 or 3: CI would read a verdict into it
        print(f"tunbench: error: {exc}", file=sys.stderr)
        return CHECK_ERROR
    for s, v in judged:
        print(verdict_line(s, a.rev, v))
    return overall([EXIT_CODES[v.verdict] for _, v in judged])


def _bisect(a: argparse.Namespace) -> int:
    """``git bisect run``'s contract: 0 good, 1 bad, 125 skip, >127 stops the bisection."""
    from tunbench.analysis.history import EXIT_CODES

    try:
        rev = a.rev or _describe(a.repo)
        if a.measure:
            env = {**os.environ, "TUNBENCH_REV": rev}
            status = subprocess.run(a.measure, shell=True, env=env, check=False).returncode
            if status != 0:
                print(f"tunbench: --measure exited {status}: skipping {rev}", file=sys.stderr)
                return BISECT_SKIP
        judged = verdicts(a, rev)
    except TunbenchError as exc:
        print(f"tunbench: error: {exc}", file=sys.stderr)
        return BISECT_ABORT
    from tunbench.report.historytext import verdict_line

    for s, v in judged:
        print(verdict_line(s, rev, v))
    code = overall([EXIT_CODES[v.verdict] for _, v in judged])
    return {0: BISECT_GOOD, 1: BISECT_BAD, 2: BISECT_SKIP, 3: BISECT_GOOD}[code]


def _describe(repo: Path | None) -> str:
    from tunbench.cell.metadata import describe_tree

    if repo is None:
        raise UsageError("bisect-run needs --rev or --repo (whose git describe names the revision)")
    rev = describe_tree(repo.resolve())
    if rev is None:
        raise UsageError(f"--repo {repo}: git describe found no revision")
    return rev
