"""The sweep's chart and page (``sweep.html``): the sweep's figure and CPU per unit of it
against the swept value, one line per spec, 95 % CI bars, above the table of
:func:`tunbench.plan.sweep.formatted`.

The figure is the workload's primary one (:mod:`tunbench.analysis.primary`): Gbit/s for a stream,
TPS, conn/s or kpps for the others, with CPU per Gbit/s, kTPS, k conn/s or kpps beside it.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from tunbench.analysis import primary
from tunbench.report.htmlpage import Figures, _e, page
from tunbench.report.sweeptable import Over, formatted, metric_of, series

PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"]


def _err(
    mean: list[float | None], low: list[float | None], high: list[float | None]
) -> dict[str, Any]:
    plus = [
        h - m if h is not None and m is not None else None for m, h in zip(mean, high, strict=True)
    ]
    minus = [
        m - lo if lo is not None and m is not None else None
        for m, lo in zip(mean, low, strict=True)
    ]
    return {
        "type": "data",
        "symmetric": False,
        "array": plus,
        "arrayminus": minus,
        "thickness": 1.5,
        "width": 5,
    }


def _scaled(values: list[float | None], scale: float) -> list[float | None]:
    return [None if v is None else v / scale for v in values]


def _per(m: primary.Metric) -> str:
    """What CPU is counted per: ``Gbit/s``, ``kTPS``, ``kpps``."""
    return m.unit if m == primary.STREAM else m.cpu_label


def figure(df: pd.DataFrame, over: Over, label: str) -> go.Figure:
    """Two panels side by side: the mean of the sweep's figure (Gbit/s, TPS, conn/s, kpps)
    and mean CPU per unit of it against the value, one line per spec (same colour in both,
    one legend entry), 95 % CI bars."""
    m = metric_of(df)
    cpu, per = f"cpu_per_{m.cpu_key}", _per(m)
    fig = make_subplots(
        rows=1,
        cols=2,
        subplot_titles=(f"{m.title} (mean of runs)", "CPU cost (mean of runs)"),
        horizontal_spacing=0.1,
    )
    values = list(dict.fromkeys(str(v) for v in df["value"]))
    panels = (
        (1, m.key, f"{m.key}_mean", m.scale, m.label, m.decimals),
        (2, cpu, cpu, 1.0, f"% of a core per {per}", m.cpu_decimals),
    )
    for k, (spec, s) in enumerate(series(df).items()):
        color = PALETTE[k % len(PALETTE)]
        for col, base, key, scale, unit, digits in panels:
            y = _scaled(s[key], scale)
            low, high = _scaled(s[f"{base}_ci_low"], scale), _scaled(s[f"{base}_ci_high"], scale)
            fig.add_trace(
                go.Scatter(
                    x=s["x"],
                    y=y,
                    mode="lines+markers",
                    name=spec,
                    legendgroup=spec,
                    showlegend=col == 1,
                    line={"color": color, "width": 2},
                    marker={"size": 8},
                    error_y=_err(y, low, high),
                    hovertemplate=(
                        f"{spec}<br>{over.flag} %{{x}}<br>%{{y:,.{digits}f}} {unit}<extra></extra>"
                    ),
                ),
                row=1,
                col=col,
            )
    for col in (1, 2):
        fig.update_xaxes(
            title_text=label,
            type="category",
            categoryorder="array",
            categoryarray=values,
            row=1,
            col=col,
        )
    ytitle = "Gbit/s received" if m == primary.STREAM else m.axis
    fig.update_yaxes(title_text=ytitle, rangemode="tozero", row=1, col=1)
    fig.update_yaxes(
        title_text=f"forwarder CPU, % of one core per {per}", rangemode="tozero", row=1, col=2
    )
    fig.update_layout(
        title={"text": f"Sweep over {over.flag}: {m.name} and CPU per {per}"},
        legend={"title": {"text": "spec"}, "orientation": "h", "y": -0.25},
        margin={"t": 90, "b": 40},
        height=520,
    )
    return fig


# what one unit of CPU per kTPS, k conn/s, kpps is paid for
ITEM = {"rr": "transaction", "crr": "connection", "zero-loss": "packet"}


def _why(m: primary.Metric) -> str:
    """The chart's caption: what its two panels show."""
    if m == primary.STREAM:
        return (
            "Left: mean throughput of the runs; right: the forwarder's CPU (% of one core) per "
            "Gbit/s it moved, the cost of each bit."
        )
    return (
        f"Left: mean of the runs' {m.name} ({m.label}); right: the forwarder's CPU (% of one "
        f"core) per {m.cpu_label}, the cost of each {ITEM[m.kind]}: 1% per {m.cpu_label} is "
        f"10 µs of CPU per {ITEM[m.kind]}."
    )


def html(df: pd.DataFrame, over: Over, label: str, machine: str) -> str:
    """The sweep's offline page: the table (sortable), the chart, what they show; it loads
    ``plotly.min.js`` from beside itself, as the report page does."""
    shown = formatted(df, over)
    text_cols = {"Variant", over.flag, "Bound by"}
    head = "".join(
        f'<th class="text">{_e(c)}</th>' if c in text_cols else f"<th>{_e(c)}</th>"
        for c in shown.columns
    )
    body_rows = "".join(
        "<tbody><tr>"
        + "".join(
            f'<td class="text">{_e(v)}</td>' if c in text_cols else f"<td>{_e(v)}</td>"
            for c, v in cells.items()
        )
        + "</tr></tbody>"
        for _, cells in shown.iterrows()
    )
    figs = Figures()
    chart = figs.add("sweep", figure(df, over, label), tall=True)
    body = f"""<p class="sub">{_e(machine)} · {len(df)} cells ({df["spec"].nunique()} specs x
{len(over.values)} values of <code>{_e(over.flag)}</code>) · {int(df["n"].sum())} successful runs.
Click a column header to sort.</p>
<h2>Chart</h2>
{chart}
<p class="why">x: {_e(label)}. {_e(_why(metric_of(df)))} One line per spec; bars: 95%
confidence interval of the mean, drawn where a point has 3 or more runs.</p>
<h2>Table</h2>
<div class="table-box"><table id="results" data-selftest-sort="{_e(metric_of(df).column)}">
<thead><tr>{head}</tr></thead>
{body_rows}</table></div>
<p class="why"><b>fwd kpps</b>, <b>frame B</b> and <b>segs/frame</b> come from the forwarder's
own counters (the data direction): frames written per second, mean frame size (read/written
where they differ) and packets per written frame where the forwarder coalesced them; "-"
where a row has no counters. The data: <a href="sweep.csv">sweep.csv</a>.</p>"""
    return page(f"tunbench sweep over {over.flag}", body, figs)
