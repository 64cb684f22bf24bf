"""``tunbench compare OLD NEW --html OUT``: the comparison as an offline page.

The table is whatever :func:`tunbench.compare.compare` returns, column for column (so the
page follows compare's own columns, verdicts and p-values), sortable like the report's,
each row tinted by its verdict; below it the two runs' per-run throughput side by side, per
row. Like the report, it loads ``plotly.min.js`` from beside the page.
"""

from __future__ import annotations

import html
import math
import os
from pathlib import Path
from typing import Any

import pandas as pd

from tunbench import figures, report, results
from tunbench.htmlreport import Figures, page, write_plotly_js


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
    return str(value)


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
        tds = "".join(
            f'<td class="{"text" if c in text else ""}">{_e(_cell(row[c], str(c)))}</td>'
            for c in df.columns
        )
        body.append(f'<tbody class="{_tint(row, verdict_col)}"><tr>{tds}</tr></tbody>')
    sort = next((c for c in df.columns if "new" in str(c).lower() and "gbps" in str(c).lower()), "")
    return (
        f'<div class="table-box"><table id="results" data-selftest-sort="{_e(sort)}">'
        f"<thead><tr>{head}</tr></thead>{''.join(body)}</table></div>"
    )


def _grouped(directory: Path) -> pd.DataFrame:
    return report.grouped(results.flat(d) for d in results.load_dir(directory))


def write_compare_html(old_dir: Path, new_dir: Path, table: pd.DataFrame, out: Path) -> Path:
    """Write the comparison page to ``out`` (``plotly.min.js`` beside it); returns ``out``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    write_plotly_js(out.parent)
    figs = Figures()
    chart = figs.add(
        "distributions", figures.distributions(_grouped(old_dir), _grouped(new_dir)), tall=True
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
<p class="why">Green rows got faster, red ones slower, by compare's own verdict; the rest
changed within the noise or could not be judged.</p>
<h2>Distributions</h2>
{chart}
<p class="why">Every run's Gbps, old beside new, per row; a box spans the middle half.</p>"""
    out.write_text(page("tunbench compare", body, figs))
    return out
