"""Summary charts, one mark per row, each of one workload's primary figure.

They work on :func:`tunbench.report.tables.grouped`'s frame. A table may hold rows of several
workloads (stream, rr, crr, zero-loss), whose figures have different units
(:mod:`tunbench.analysis.primary`: Gbit/s, TPS, conn/s, kpps); every function here takes the
:class:`~tunbench.analysis.primary.Metric` to draw and draws only the rows of that figure, so a TPS
never stands on a Gbit/s axis. Callers draw one chart per metric present
(:func:`metrics_present`). Nothing here writes files.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import plotly.graph_objects as go

from tunbench.analysis import primary
from tunbench.analysis.primary import Metric
from tunbench.report.figures import layout


def metrics_present(*frames: pd.DataFrame) -> list[Metric]:
    """The primary figures of the rows of ``frames``, in :data:`tunbench.analysis.primary.METRICS`
    order (stream first)."""
    keys = {str(k) for df in frames for k in df.get("primary_metric", [])}
    return [m for m in primary.METRICS.values() if m.key in keys]


def chart_id(prefix: str, metric: Metric) -> str:
    """An element id: ``prefix`` alone for a stream's chart (as the page always had it),
    ``prefix-<kind>`` for the others (``throughput-rr``)."""
    return prefix if metric == primary.STREAM else f"{prefix}-{metric.kind}"


def _rows(df: pd.DataFrame, metric: Metric) -> pd.DataFrame:
    return df[(df["primary_metric"] == metric.key) & df["primary_median"].notna()]


def row_color(mode: str, variant: str) -> str:
    if mode == "kernel":
        return "#7f7f7f"
    if str(mode).startswith("peer") or str(variant).startswith("peer"):
        return "#d62728"
    return "#1f77b4"


def _shown(values: pd.Series, metric: Metric) -> pd.Series:
    return values.astype(float) / metric.scale


def per_row(df: pd.DataFrame, shown: pd.DataFrame, metric: Metric) -> go.Figure | None:
    """The median of ``metric`` per row of that figure, min-max whiskers, the 95 % CI
    where the row has one, kernel rows as reference lines; ``shown`` is the formatted
    table, whose cells make the hover text. None when no row has the figure."""
    ok = (df["primary_metric"] == metric.key) & df["primary_median"].notna()
    rows, cells = df[ok], shown[ok.to_numpy()]
    if rows.empty:
        return None
    labels = [f"{n}. {v}" for n, v in zip(rows["#"], rows["Variant"], strict=True)]
    hover = [
        "<br>".join(f"{col}: {val}" for col, val in cell.items() if col != "#")
        for _, cell in cells.iterrows()
    ]
    med = _shown(rows["primary_median"], metric)
    fig = go.Figure(
        go.Bar(
            x=labels,
            y=med,
            name="median, whiskers min-max",
            marker_color=[
                row_color(m, v) for m, v in zip(rows["Mode"], rows["Variant"], strict=True)
            ],
            error_y={
                "type": "data",
                "symmetric": False,
                "array": _shown(rows["primary_max"], metric) - med,
                "arrayminus": med - _shown(rows["primary_min"], metric),
                "color": "#555",
                "thickness": 1.2,
                "width": 6,
            },
            hovertext=hover,
            hoverinfo="text",
        )
    )
    lo, hi = _shown(rows["primary_ci_low"], metric), _shown(rows["primary_ci_high"], metric)
    has = lo.notna() & hi.notna()
    fig.add_trace(
        go.Scatter(
            x=[lab for lab, h in zip(labels, has, strict=True) if h],
            y=med[has],
            mode="markers",
            name="95% CI",
            marker={"color": "black", "size": 5},
            error_y={
                "type": "data",
                "symmetric": False,
                "array": hi[has] - med[has],
                "arrayminus": med[has] - lo[has],
                "color": "black",
                "thickness": 3,
                "width": 0,
            },
            hoverinfo="skip",
        )
    )
    several = rows["Workload"].nunique() > 1
    for _, k in rows[rows["Mode"] == "kernel"].iterrows():
        what = f" ({k['Workload']})" if several else ""
        fig.add_hline(
            y=float(k["primary_median"]) / metric.scale,
            line_dash="dash",
            line_color="#7f7f7f",
            line_width=1,
            annotation_text=f"{k['Variant']}{what}: {metric.number(k['primary_median'])}",
            annotation_position="top right",
            annotation_font_size=10,
        )
    layout(fig, f"{metric.title} per row", metric.axis)
    fig.update_layout(
        height=420, hovermode="closest", showlegend=True, legend={"orientation": "h", "y": 1.08}
    )
    fig.update_xaxes(tickangle=-35)
    return fig


def efficiency(df: pd.DataFrame, metric: Metric) -> go.Figure | None:
    """``metric`` against forwarder CPU, one point per forwarder row of that figure: up and
    left is better. None without such rows."""
    rows = _rows(df, metric)
    rows = rows[rows["CPU Avg"].notna() & (rows["Mode"] != "kernel")]
    if rows.empty:
        return None
    y = _shown(rows["primary_median"], metric)
    fig = go.Figure(
        go.Scatter(
            x=rows["CPU Avg"],
            y=y,
            mode="markers+text",
            text=[f"{n}. {v}" for n, v in zip(rows["#"], rows["Variant"], strict=True)],
            textposition="top center",
            textfont={"size": 10},
            marker={
                "size": 10,
                "color": [
                    row_color(m, v) for m, v in zip(rows["Mode"], rows["Variant"], strict=True)
                ],
            },
            hovertemplate=(
                f"%{{text}}<br>%{{y:,.{metric.decimals}f}} {metric.label} at %{{x:.0f}}% CPU"
                "<extra></extra>"
            ),
        )
    )
    title = f"{metric.title} against forwarder CPU"
    layout(fig, title, metric.axis, "forwarder CPU, % of one core")
    fig.update_layout(height=420, hovermode="closest", showlegend=False)
    lo, hi = float(rows["CPU Avg"].min()), float(rows["CPU Avg"].max())
    pad = max(10.0, 0.15 * (hi - lo))  # room for the labels at both ends
    fig.update_xaxes(range=[max(0.0, lo - pad), hi + pad])
    fig.update_yaxes(range=[0, 1.15 * float(y.max())])
    return fig


def runs(values: Sequence[float | None], labels: Sequence[str], metric: Metric) -> go.Figure:
    """One row's runs: each run's figure, and its median as a line (a row's section, for
    workloads without iperf3 intervals to draw)."""
    pts = [(lab, v / metric.scale) for lab, v in zip(labels, values, strict=True) if v is not None]
    fig = go.Figure(
        go.Scatter(
            x=[p[0] for p in pts],
            y=[p[1] for p in pts],
            mode="markers",
            name=metric.label,
            marker={"size": 10, "color": "#1f77b4"},
            hovertemplate=f"%{{x}}: %{{y:,.{metric.decimals}f}} {metric.label}<extra></extra>",
        )
    )
    title = f"{metric.title} per run"
    if pts:  # the median as a line, its value in the title (a label would cover a point)
        mid = float(pd.Series([p[1] for p in pts]).median())
        fig.add_hline(y=mid, line_dash="dash", line_color="#7f7f7f", line_width=1)
        title += f" (dashed: median, {metric.number(mid * metric.scale, unit=True)})"
    layout(fig, title, metric.axis)
    fig.update_layout(hovermode="closest", showlegend=False)
    fig.update_xaxes(type="category")
    return fig


def distributions(old: pd.DataFrame, new: pd.DataFrame, metric: Metric) -> go.Figure | None:
    """Per-run ``metric`` of every row of that figure in two result sets, side by side (box
    and every point), for ``tunbench compare --html``; rows are matched on spec and
    workload. None when neither set has such rows."""
    old, new = _rows(old, metric), _rows(new, metric)
    if old.empty and new.empty:
        return None
    several = pd.concat([old["Workload"], new["Workload"]]).nunique() > 1
    fig = go.Figure()
    for side, df, color in (("old", old, "#7f7f7f"), ("new", new, "#1f77b4")):
        xs: list[str] = []
        ys: list[float] = []
        for _, row in df.iterrows():
            label = f"{row['Variant']} ({row['Workload']})" if several else str(row["Variant"])
            xs += [label] * len(row["primary_runs"])
            ys += [float(v) / metric.scale for v in row["primary_runs"]]
        fig.add_trace(
            go.Box(
                x=xs,
                y=ys,
                name=side,
                marker_color=color,
                boxpoints="all",
                jitter=0.3,
                pointpos=0,
                hovertemplate=f"%{{y:,.{metric.decimals}f}} {metric.label}",
            )
        )
    layout(fig, f"{metric.title} per run, old and new", metric.axis)
    fig.update_layout(boxmode="group", height=440, hovermode="closest")
    fig.update_xaxes(tickangle=-35)
    return fig
