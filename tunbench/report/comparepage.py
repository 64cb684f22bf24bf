"""``tunbench compare OLD NEW --html OUT``: the comparison as an offline page.

The table is whatever :func:`tunbench.plan.compare.compare` returns, column for column (so the
page follows compare's own columns, verdicts and p-values), sortable like the report's,
each row tinted by its verdict; below it the two sets' per-run figures side by side, per
row: one chart per primary figure (:mod:`tunbench.analysis.primary`: Gbit/s, TPS, conn/s, kpps)
present, so that no two units share an axis. Like the report, it loads ``plotly.min.js``
from beside the page.
"""

from __future__ import annotations

import html
import math
import os
from pathlib import Path
from typing import Any

import pandas as pd

from tunbench.analysis import primary, results
from tunbench.report import rowcharts, tables
from tunbench.report.htmlpage import Figures, page, write_plotly_js


def _e(value: Any) -> str:
    return html.escape(str(value))


VERDICT_COLUMNS = ("verdict", "Verdict", "Change")


def _cell(value: Any, column: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return (
            f"{value:.3g}" if "p" in column.lower().split("_") or column == "p" else f"{value:.2f}"
        )
    if isinstance(value, list) and all(isinstance(v, float) for v in value):  # an interval
        return "[" + ", ".join(f"{v:.5g}" for v in value) + "]"
    return str(value)


def _td(row: pd.Series, column: str, text: bool) -> str:
    """One cell; ``old``/``new`` with the unit of the row's figure ("15,332 TPS"), its raw
    value in ``data-v`` so that the column sorts by number."""
    value, cls = row[column], "text" if text else ""
    if column in ("old", "new") and "metric" in row.index and value is not None:
        shown = primary.of_key(str(row["metric"])).number(value, unit=True)
        return f'<td class="{cls}" data-v="{_e(value)}">{_e(shown)}</td>'
    interval = isinstance(value, list) and value and all(isinstance(v, float) for v in value)
    if interval and "metric" in row.index:  # in the unit of old/new
        m = primary.of_key(str(row["metric"]))
        return f'<td class="{cls}">[{_e(", ".join(m.number(v) for v in value))}]</td>'
    return f'<td class="{cls}">{_e(_cell(value, column))}</td>'


def _tint(row: pd.Series, verdict_col: str | None) -> str:
    verdict = str(row.get(verdict_col, "")) if verdict_col else ""
    if "faster" in verdict or "slower" in verdict:
        return "faster" if "faster" in verdict else "slower"
    if verdict == "significant":  # the older rule names no direction: the change's sign does
        delta = next((row[c] for c in row.index if "Δ" in str(c) and "Gbps" in str(c)), None)
        if isinstance(delta, float) and not math.isnan(delta):
            return "faster" if delta > 0 else "slower"
    return ""


def _table(df: pd.DataFrame) -> str:
    verdict_col = next((c for c in VERDICT_COLUMNS if c in df.columns), None)
    text = {
        c for c in df.columns if not pd.api.types.is_numeric_dtype(df[c].dropna().infer_objects())
    }
    head = "".join(
        f'<th class="text">{_e(c)}</th>' if c in text else f"<th>{_e(c)}</th>" for c in df.columns
    )
    body = []
    for _, row in df.iterrows():
        tds = "".join(_td(row, str(c), c in text) for c in df.columns)
        body.append(f'<tbody class="{_tint(row, verdict_col)}"><tr>{tds}</tr></tbody>')
    sort = "new" if "new" in df.columns else ""
    if not sort:  # a table of the older shape: its Gbps of NEW
        sort = next(
            (c for c in df.columns if "new" in str(c).lower() and "gbps" in str(c).lower()), ""
        )
    return (
        f'<div class="table-box"><table id="results" data-selftest-sort="{_e(sort)}">'
        f"<thead><tr>{head}</tr></thead>{''.join(body)}</table></div>"
    )


def _grouped(directory: Path) -> pd.DataFrame:
    return tables.grouped(results.flat(d) for d in results.load_dir(directory))


def write_compare_html(old_dir: Path, new_dir: Path, table: pd.DataFrame, out: Path) -> Path:
    """Write the comparison page to ``out`` (``plotly.min.js`` beside it); returns ``out``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    write_plotly_js(out.parent)
    figs = Figures()
    old, new = _grouped(old_dir), _grouped(new_dir)
    chart = "".join(
        figs.add(rowcharts.chart_id("distributions", m), rowcharts.distributions(old, new, m), True)
        for m in rowcharts.metrics_present(old, new)
    )
    links = []
    for side, directory in (("old", old_dir), ("new", new_dir)):
        rep = directory / "report.html"
        where = _e(str(directory))
        if rep.exists():
            where = f'<a href="{_e(os.path.relpath(rep, out.parent))}">{where}</a>'
        links.append(f"{side}: {where}")
    body = f"""<p class="sub">{" · ".join(links)}. Click a column header to sort.</p>
<h2>Change per row</h2>
{_table(table)}
<p class="why">Green rows got faster (their figure rose), red ones slower, by compare's own
verdict; the rest changed within the noise or could not be judged. <b>old</b> and
<b>new</b> are the medians of each row's figure: Gbit/s, TPS, conn/s or kpps by its
workload (<b>metric</b>; the JSON output has them raw, in <b>unit</b>).</p>
<h2>Distributions</h2>
{chart}
<p class="why">Every run's figure, old beside new, per row (Gbit/s for stream rows, the
others in their own chart and unit); a box spans the middle half.</p>"""
    out.write_text(page("tunbench compare", body, figs))
    return out
