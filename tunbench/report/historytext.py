"""``tunbench history show`` and ``check`` as text: one table per series (revisions,
median, 95 % interval, ``% of kernel``, the change points) and one line per verdict."""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from tunbench.analysis import history, primary
from tunbench.analysis.history import Change, Series, Verdict
from tunbench.analysis.stats import mean_ci

HEAD = ["Rev", "n", "Median", "Mean ± CI", "% of kernel", "Change"]


def title(s: Series) -> str:
    """``testbed · spec · workload`` (and that it is a kernel row)."""
    kernel = " (kernel row)" if s.is_kernel else ""
    return f"{s.testbed} · {s.spec}{kernel} · {s.workload}"


def change_text(c: Change) -> str:
    """``▼ -5.1 % [-6.0, -4.2] p=0.001 forwarder``: the change's direction (worse is ▼),
    its size and interval in %, the detector's p-value and its label."""
    step = c.ratio if c.label in (history.FORWARDER, history.BOTH) and c.ratio else c.absolute
    mark = "▼" if c.worse else "▲"
    on = " of kernel" if step is c.ratio else ""
    return (
        f"{mark} {step.change_pct:+.1f} %{on} [{step.ci_low_pct:+.1f}, {step.ci_high_pct:+.1f}]"
        f" p={c.p_value:.3f} {c.label}"
    )


def series_table(s: Series) -> str:
    """The markdown table of one series."""
    metric = primary.of_key(s.metric)
    at = {c.rev: c for c in s.changes}
    lines = [
        f"### {title(s)} ({metric.column})",
        "",
        "| " + " | ".join(HEAD) + " |",
        "|" + "---|" * len(HEAD),
    ]
    for rev in s.revs:
        runs = s.runs_of(rev)
        values = [r.value for r in runs]
        ratios = [r.ratio for r in runs if r.ratio is not None]
        ci = mean_ci(values)
        cells = [
            f"`{rev}`",
            str(len(values)),
            metric.number(statistics.median(values)),
            metric.ci(ci.mean, ci.low, ci.high) if ci else "-",
            f"{100 * statistics.median(ratios):.1f}" if ratios and not s.is_kernel else "-",
            change_text(at[rev]) if rev in at else "",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    if not s.changes:
        lines += ["", "No change point."]
    return "\n".join(lines)


def show(series: Sequence[Series], order: str, without_rev: int) -> str:
    """Every series' table, and a line on the revision order and runs left out."""
    if not series:
        return "No runs with a revision in the index."
    parts = [series_table(s) for s in series]
    note = f"Revisions in {order} order."
    if without_rev:
        note += f" {without_rev} runs without a revision are left out."
    return "\n\n".join([*parts, note])


def verdict_line(s: Series, new: str, v: Verdict) -> str:
    """One line of ``history check``: the series, the verdict and what it rests on."""
    base = ", ".join(v.base_revs) or "nothing"
    head = f"{title(s)}: {new} vs {base}: {v.verdict}"
    if v.change_pct is None or v.ci_low_pct is None or v.ci_high_pct is None:
        return f"{head} ({v.reason})"
    text = (
        f"{head} ({v.on} {v.change_pct:+.1f} % [{v.ci_low_pct:+.1f}, {v.ci_high_pct:+.1f}],"
        f" {v.n_base} vs {v.n_new} runs)"
    )
    if v.verdict == history.INCONCLUSIVE:
        more = (
            f"about {v.more_runs} more runs on each side would decide"
            if v.more_runs is not None
            else "the change sits on the threshold: more runs will not decide"
        )
        text += f"; {more}"
    return text
