"""The report page's charts, as plotly figures built from result documents.

The drill-down charts work on the result documents of one row (every run overlaid, time in
seconds from the start of the measured window, so the ``--omit`` warm-up is negative); the
summary charts, one bar per row, are :mod:`tunbench.report.rowcharts`. Nothing here writes files:
:mod:`tunbench.report.reportpage` places the figures on the page.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import plotly.graph_objects as go

from tunbench.analysis.boundby import SATURATED

PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2"]
DASHES = ["solid", "dash", "dot", "dashdot", "longdash", "longdashdot"]
HEIGHT = 300
MARGIN = {"l": 60, "r": 20, "t": 40, "b": 40}


@dataclass
class Run:
    """What the drill-down charts need from one result document."""

    label: str
    start: float  # window start, Unix s
    omit: float
    cpu_count: int
    has_forwarder: bool = True
    samples: list[dict[str, Any]] = field(default_factory=list)
    load: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    intervals: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any], label: str) -> Run | None:
        window = doc.get("window")
        if not window:
            return None
        meta = doc.get("metadata") or {}
        raw = doc.get("iperf3") or {}
        return cls(
            label=label,
            start=float(window["start"]),
            omit=float((meta.get("workload") or {}).get("omit") or 0),
            cpu_count=int(meta.get("cpu_count") or 1),
            has_forwarder=(doc.get("cell") or {}).get("kind") != "baseline",
            samples=list(doc.get("samples") or []),
            load=dict(doc.get("load_samples") or {}),
            intervals=[iv["sum"] for iv in raw.get("intervals") or [] if "sum" in iv],
        )

    def x(self, samples: Sequence[Mapping[str, Any]]) -> list[float]:
        """Sample midpoints, seconds from the window start."""
        return [round(s["t"] - s["dt"] / 2 - self.start, 3) for s in samples]


def layout(fig: go.Figure, title: str, ytitle: str, xtitle: str = "") -> go.Figure:
    fig.update_layout(
        title={"text": title, "font": {"size": 14}},
        height=HEIGHT,
        margin=MARGIN,
        legend={"font": {"size": 10}},
        hovermode="x unified",
    )
    fig.update_yaxes(title_text=ytitle, rangemode="tozero")
    if xtitle:
        fig.update_xaxes(title_text=xtitle)
    return fig


def _warmup(fig: go.Figure, runs: Sequence[Run]) -> None:
    omit = max((r.omit for r in runs), default=0.0)
    if omit:
        fig.add_vrect(
            x0=-omit,
            x1=0,
            fillcolor="#888",
            opacity=0.12,
            line_width=0,
            annotation_text="warm-up",
            annotation_position="top left",
            annotation_font_size=10,
        )


SECONDS = "s from the start of the measured window"


def intervals(runs: Sequence[Run]) -> go.Figure:
    """Gbps per iperf3 interval (as the client reports it), one line per run."""
    fig = go.Figure()
    for i, run in enumerate(runs):
        xs, ys = [], []
        for iv in run.intervals:
            shift = -run.omit if iv.get("omitted") else 0.0
            xs.append(round((iv["start"] + iv["end"]) / 2 + shift, 3))
            ys.append(iv["bits_per_second"] / 1e9)
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=ys,
                name=run.label,
                mode="lines+markers",
                line={"color": PALETTE[i % len(PALETTE)]},
                hovertemplate="%{y:.2f} Gbps",
            )
        )
    _warmup(fig, runs)
    return layout(fig, "Throughput per iperf3 interval", "Gbit/s", SECONDS)


def _threads(s: Mapping[str, Any]) -> dict[str, float]:
    threads = s.get("cpu_threads")
    if isinstance(threads, Mapping):
        return {str(k): float(v or 0) for k, v in threads.items()}
    if isinstance(threads, list):
        return {str(t.get("name") or t.get("tid")): float(t.get("cpu_pct") or 0) for t in threads}
    return {}


def _split_keys(samples: Sequence[Mapping[str, Any]]) -> list[str]:
    """User/system keys the samples carry (``cpu_user_pct``, ``cpu_sys_pct``...), if any."""
    keys = {k for s in samples[:1] for k in s if k.startswith(("cpu_user", "cpu_sys"))}
    return sorted(keys, key=lambda k: (not k.startswith("cpu_user"), k))


def forwarder_cpu(runs: Sequence[Run]) -> go.Figure:
    """The forwarder's CPU per run: total, then per thread and user/system where the
    samples carry them."""
    fig = go.Figure()
    for i, run in enumerate(runs):
        color = PALETTE[i % len(PALETTE)]
        xs = run.x(run.samples)
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=[s["cpu_pct"] for s in run.samples],
                name=f"{run.label} total",
                line={"color": color, "width": 2},
                hovertemplate="%{y:.0f}%",
            )
        )
        for j, key in enumerate(_split_keys(run.samples)):
            what = "user" if key.startswith("cpu_user") else "system"
            fig.add_trace(
                go.Scatter(
                    x=xs,
                    y=[s.get(key) for s in run.samples],
                    name=f"{run.label} {what}",
                    line={"color": color, "width": 1, "dash": DASHES[1 + j % 2]},
                    hovertemplate="%{y:.0f}%",
                )
            )
        names = sorted({n for s in run.samples for n in _threads(s)})
        for j, name in enumerate(names):
            fig.add_trace(
                go.Scatter(
                    x=xs,
                    y=[_threads(s).get(name) for s in run.samples],
                    name=f"{run.label} thread {name}",
                    line={"color": color, "width": 1, "dash": DASHES[3 + j % 3]},
                    opacity=0.8,
                    hovertemplate="%{y:.0f}%",
                )
            )
    fig.add_hline(y=100, line_dash="dot", line_color="#999", line_width=1)
    _warmup(fig, runs)
    return layout(fig, "Forwarder CPU", "% of one core", SECONDS)


def cpu_everywhere(runs: Sequence[Run]) -> go.Figure:
    """Where the machine's CPU went, what bound-by decides from: the forwarder, the iperf3
    client and server, and the whole machine (busy % x cores, so all are in % of one core).
    Colour is the process, dash the run."""
    fig = go.Figure()
    series = [("forwarder", PALETTE[0]), ("iperf3-client", PALETTE[1])]
    series += [("iperf3-server", PALETTE[2]), ("machine", "#555")]
    cores = max((r.cpu_count for r in runs), default=1)
    for i, run in enumerate(runs):
        dash = DASHES[i % len(DASHES)]
        for name, color in series:
            if name == "forwarder":
                samples = run.samples if run.has_forwarder else []
                ys = [s["cpu_pct"] for s in samples]
            elif name == "machine":
                samples = run.samples
                ys = [s["system_busy_pct"] * run.cpu_count for s in samples]
            else:
                samples = run.load.get(name) or []
                ys = [s["cpu_pct"] for s in samples]
            if not samples:
                continue
            fig.add_trace(
                go.Scatter(
                    x=run.x(samples),
                    y=ys,
                    name=f"{name} ({run.label})",
                    legendgroup=name,
                    line={"color": color, "dash": dash, "width": 1.5},
                    hovertemplate="%{y:.0f}%",
                )
            )
    fig.add_hline(
        y=100 * cores,
        line_dash="dot",
        line_color="#999",
        annotation_text=f"all {cores} cores",
        annotation_font_size=10,
    )
    fig.add_hline(
        y=SATURATED,
        line_dash="dot",
        line_color="#c00",
        line_width=1,
        annotation_text="95% of a core",
        annotation_position="bottom right",
        annotation_font_size=10,
    )
    _warmup(fig, runs)
    return layout(fig, "CPU: forwarder, load generators, machine", "% of one core", SECONDS)


def memory(runs: Sequence[Run]) -> go.Figure:
    """The forwarder's RSS per run, MB."""
    fig = go.Figure()
    for i, run in enumerate(runs):
        fig.add_trace(
            go.Scatter(
                x=run.x(run.samples),
                y=[s["rss_bytes"] / 1e6 for s in run.samples],
                name=run.label,
                line={"color": PALETTE[i % len(PALETTE)]},
                hovertemplate="%{y:.1f} MB",
            )
        )
    _warmup(fig, runs)
    return layout(fig, "Forwarder memory (RSS)", "MB", SECONDS)


def _flame_color(name: str) -> str:
    h = zlib.crc32(name.encode())
    return f"rgb({205 + h % 50},{80 + (h >> 8) % 150},{(h >> 16) % 60})"


def icicle(stacks: Mapping[str, int], title: str, min_share: float = 0.002) -> go.Figure:
    """Folded stacks (``a;b;c`` -> samples) as a flamegraph: plotly's icicle, roots at the
    bottom; click a frame to zoom into it. Frames under ``min_share`` of all samples are
    left out (their time stays in their caller)."""
    total = sum(stacks.values()) or 1
    values: dict[str, int] = {}
    for stack, n in stacks.items():
        path = ""
        for frame in stack.split(";"):
            path = f"{path};{frame}" if path else frame
            values[path] = values.get(path, 0) + n
    keep = {p: v for p, v in values.items() if v / total >= min_share}
    ids = ["all", *keep]
    parents = ["", *(p.rpartition(";")[0] or "all" for p in keep)]
    labels = ["all", *(p.rpartition(";")[2] for p in keep)]
    fig = go.Figure(
        go.Icicle(
            ids=ids,
            parents=parents,
            labels=labels,
            values=[total, *keep.values()],
            branchvalues="total",
            tiling={"orientation": "v", "flip": "y"},
            marker={"colors": [_flame_color(label) for label in labels]},
            hovertemplate="%{label}<br>%{value} samples, %{percentRoot:.1%}<extra></extra>",
            textfont={"size": 11},
            maxdepth=24,
        )
    )
    fig.update_layout(
        title={"text": f"{title} ({total} samples)", "font": {"size": 14}},
        height=520,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
    )
    return fig
