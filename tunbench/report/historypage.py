"""``tunbench history page``: an offline page with one chart per series.

Each chart has the revisions along x in their order; every run is a point (hover: the
revision, the run's id, its figure and ``% of kernel``), the median per revision a line,
and the ``% of kernel`` medians a dotted line on the right axis. A change point is a
vertical line before the first revision of its new segment: solid red where the
forwarder changed, dashed grey where the host did, purple for both, and labelled with
its size. The page is built on :mod:`tunbench.report.htmlpage` like the report: plotly
loads from beside it, nothing from the network.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import plotly.graph_objects as go

from tunbench.analysis import history, primary
from tunbench.analysis.history import Series
from tunbench.report.historytext import change_text, title
from tunbench.report.htmlpage import Figures, _e, page, write_plotly_js

PAGE = "index.html"
LINE = {
    history.FORWARDER: {"color": "#d62728", "dash": "solid"},
    history.HOST: {"color": "#7f7f7f", "dash": "dash"},
    history.BOTH: {"color": "#9467bd", "dash": "solid"},
    history.UNLABELLED: {"color": "#ff7f0e", "dash": "dot"},
}


def figure(s: Series) -> go.Figure:
    """The chart of one series."""
    metric = primary.of_key(s.metric)
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=[r.rev for r in s.runs],
            y=[metric.shown(r.value) for r in s.runs],
            mode="markers",
            name="runs",
            marker={"size": 7, "color": "#1f77b4", "opacity": 0.7},
            customdata=[
                [r.run_id, "-" if r.ratio is None else f"{100 * r.ratio:.1f}"] for r in s.runs
            ],
            hovertemplate=(
                f"rev %{{x}}<br>run %{{customdata[0]}}<br>%{{y:,.{metric.decimals}f}} "
                f"{metric.label}<br>%{{customdata[1]}} % of kernel<extra></extra>"
            ),
        )
    )
    medians = [metric.shown(statistics.median(r.value for r in s.runs_of(v))) for v in s.revs]
    counts = [len(s.runs_of(v)) for v in s.revs]
    fig.add_trace(
        go.Scatter(
            x=s.revs,
            y=medians,
            mode="lines",
            name="median",
            line={"color": "#1f77b4", "width": 2},
            customdata=counts,
            hovertemplate=(
                f"rev %{{x}}: median %{{y:,.{metric.decimals}f}} {metric.label} of "
                "%{customdata} runs<extra></extra>"
            ),
        )
    )
    ratio = [[r.ratio for r in s.runs_of(v) if r.ratio is not None] for v in s.revs]
    if not s.is_kernel and any(ratio):
        fig.add_trace(
            go.Scatter(
                x=s.revs,
                y=[100 * statistics.median(x) if x else None for x in ratio],
                mode="lines+markers",
                name="% of kernel (median)",
                yaxis="y2",
                line={"color": "#2ca02c", "dash": "dot"},
                hovertemplate="rev %{x}: %{y:.1f} % of kernel<extra></extra>",
            )
        )
    shapes, notes = [], []
    for c in s.changes:
        line = LINE[c.label]
        x = c.index - 0.5
        shapes.append(
            {
                "type": "line",
                "xref": "x",
                "yref": "paper",
                "x0": x,
                "x1": x,
                "y0": 0,
                "y1": 1,
                "line": {"color": line["color"], "dash": line["dash"], "width": 2},
            }
        )
        notes.append(
            {
                "x": x,
                "xref": "x",
                "y": 1.0,
                "yref": "paper",
                "text": _e(change_text(c)),
                "showarrow": False,
                "xanchor": "left",
                "yanchor": "bottom",
                "font": {"color": line["color"], "size": 11},
            }
        )
    layout: dict[str, Any] = {
        "title": {"text": _e(title(s))},
        "xaxis": {
            "title": {"text": "revision"},
            "type": "category",
            "categoryorder": "array",
            "categoryarray": s.revs,
        },
        "yaxis": {"title": {"text": metric.axis}, "rangemode": "tozero"},
        "shapes": shapes,
        "annotations": notes,
        "legend": {"orientation": "h", "y": -0.25},
        "margin": {"t": 90},
        "height": 460,
    }
    if len(fig.data) > 2:
        layout["yaxis2"] = {
            "title": {"text": "% of kernel"},
            "overlaying": "y",
            "side": "right",
            "rangemode": "tozero",
            "showgrid": False,
            "tickmode": "auto",  # round numbers of its own, not the left axis's ticks
        }
    fig.update_layout(**layout)
    return fig


def html(series: Sequence[Series], order: str) -> str:
    """The page: a sortable table of the series, then one chart each."""
    figs = Figures()
    rows, charts = [], []
    for i, s in enumerate(series):
        changes = "; ".join(f"{c.rev}: {change_text(c)}" for c in s.changes) or "-"
        rows.append(
            "<tbody><tr>"
            f'<td class="text">{_e(s.spec)}</td><td class="text">{_e(s.testbed)}</td>'
            f'<td class="text">{_e(s.workload)}</td><td>{len(s.revs)}</td>'
            f"<td>{len(s.runs)}</td><td>{len(s.changes)}</td>"
            f'<td class="text">{_e(changes)}</td>'
            "</tr></tbody>"
        )
        charts.append(figs.add(f"series-{i}", figure(s), tall=True))
    head = (
        '<th class="text">Variant</th><th class="text">Testbed</th>'
        '<th class="text">Workload</th><th>Revisions</th><th>Runs</th><th>Changes</th>'
        '<th class="text">Change points</th>'
    )
    body = f"""<p class="sub">{len(series)} series · revisions in {_e(order)} order.
Red line: the forwarder changed (its % of kernel moved); grey dashed: the host changed (the
kernel row moved with it, the ratio did not); purple: both.</p>
<div class="table-box"><table id="results" data-selftest-sort="Runs">
<thead><tr>{head}</tr></thead>
{"".join(rows)}</table></div>
<h2>Series</h2>
{"".join(charts)}"""
    return page("tunbench history", body, figs)


def write_page(series: Sequence[Series], out: Path, order: str) -> Path:
    """``out/index.html`` and ``out/plotly.min.js``."""
    out.mkdir(parents=True, exist_ok=True)
    write_plotly_js(out)
    path = out / PAGE
    path.write_text(html(series, order))
    return path
