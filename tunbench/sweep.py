"""``tunbench sweep``: one parameter over several values, a cell per spec and value.

``--over NAME=V1,V2,...`` names either a forwarder option (``thread=1,2,4``: each cell is
the spec with ``--thread V`` appended; every spec must be a variant that has the option,
as the registry lists it) or an option of ``tunbench run`` (``parallel=1,2,4,8``,
``mtu=1500,9000``: each cell runs the spec with ``--NAME V``; any option that takes a
value works, so workload options added later are swept the same way). The cells are run
by :func:`tunbench.matrix.run_matrix` (rounds, shuffles, ``--repeat``, ``--until-ci``,
result files), each result file carrying ``sweep`` {``param``, ``value``, ``spec``}.

From the records this module makes the rows (spec x value: throughput median and mean
with its 95 % CI, CPU per Gbit/s with its CI, the forwarder's batching metrics), the
markdown table, the CSV and the chart: throughput and CPU per Gbit/s against the value,
one line per spec, CI bars.
"""

from __future__ import annotations

import math
import re
import shlex
import statistics
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from tunbench import stats
from tunbench.boundby import summarize_row
from tunbench.errors import UsageError
from tunbench.variants import VARIANTS, CellSpec, parse_spec

NAME = re.compile(r"^[a-z][a-z0-9-]*$")
# columns of the CSV, in order (numbers raw, SI units except where the name says)
CSV_COLUMNS = [
    "spec",
    "param",
    "value",
    "n",
    "failed",
    "gbps",
    "gbps_mean",
    "gbps_ci_low",
    "gbps_ci_high",
    "cpu_avg",
    "cpu_per_gbps",
    "cpu_per_gbps_ci_low",
    "cpu_per_gbps_ci_high",
    "fwd_kpps",
    "frame_bytes_read",
    "frame_bytes_written",
    "segs_per_frame",
    "bound_by",
]
PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"]


@dataclass(frozen=True)
class Over:
    """``--over NAME=V1,V2,...`` parsed."""

    name: str
    values: tuple[str, ...]

    @property
    def flag(self) -> str:
        return f"--{self.name}"


def parse_over(text: str) -> Over:
    """``"thread=1,2,4"`` -> ``Over("thread", ("1", "2", "4"))``; UsageError if malformed."""
    name, sep, rest = text.partition("=")
    name = name.strip().removeprefix("--")
    if not sep or not NAME.match(name):
        raise UsageError(f"--over wants NAME=V1,V2,... (e.g. thread=1,2,4), got {text!r}")
    values = tuple(v.strip() for v in rest.split(","))
    if not rest.strip() or any(not v for v in values):
        raise UsageError(f"--over {name}: empty value in {rest!r}")
    if len(set(values)) != len(values):
        raise UsageError(f"--over {name}: a value is given twice in {rest!r}")
    return Over(name, values)


@dataclass(frozen=True)
class Point:
    """One cell of a sweep: a spec as given, the value, the cell it runs."""

    spec: str
    value: str
    cell: CellSpec


def _variant_flags(spec: str) -> dict[str, bool]:
    """A Python variant's public options (flag -> whether it takes a value), from the
    registry by the spec's first word; {} for anything else."""
    words = spec.split()
    info = VARIANTS.get(words[0]) if words else None
    return {o.flag: bool(o.metavar) for o in info.options()} if info else {}


def kind_of(specs: Sequence[str], over: Over, workload: Collection[str]) -> str:
    """``"forwarder"`` when every spec's variant has the option, ``"workload"`` when
    ``tunbench run`` has it (``workload``: its flags that take a value); else UsageError."""
    flag = over.flag
    has = [flag in _variant_flags(s) for s in specs]
    if all(has):
        if not all(_variant_flags(s)[flag] for s in specs):
            raise UsageError(f"--over {over.name}: {flag} is a switch, it has no values")
        return "forwarder"
    if any(has):
        spec = specs[has.index(False)]
        known = ", ".join(_variant_flags(spec)) or "none"
        raise UsageError(
            f"--over {over.name}: {spec!r} has no option {flag} (its options: {known})"
        )
    if flag in workload:
        return "workload"
    spec = specs[0]
    known = ", ".join(_variant_flags(spec))
    name = spec.split()[0] if spec.split() else spec
    where = f"{name} (its options: {known})" if known else name
    raise UsageError(f"--over {over.name}: {flag} is an option of neither tunbench run nor {where}")


def plan_cells(
    specs: Sequence[str], over: Over, workload: Collection[str]
) -> tuple[str, list[Point]]:
    """The sweep's kind and its cells, spec by spec, each spec's values in the order given.

    For a forwarder option only the spec with the value appended must be valid
    (``"sync-gso --multiqueue" --over thread=2,4``)."""
    if not specs:
        raise UsageError("sweep needs at least one spec")
    if len(set(specs)) != len(specs):
        raise UsageError("sweep: a spec is given twice")
    kind = kind_of(specs, over, workload)
    points = []
    for spec in specs:
        if kind == "workload":
            cell = parse_spec(spec)
            points += [Point(spec, v, cell) for v in over.values]
            continue
        if any(a == over.flag or a.startswith(over.flag + "=") for a in spec.split()[1:]):
            raise UsageError(f"--over {over.name}: {spec!r} already sets {over.flag}")
        for v in over.values:
            try:
                points.append(Point(spec, v, parse_spec(f"{spec} {over.flag} {shlex.quote(v)}")))
            except UsageError as exc:
                raise UsageError(f"--over {over.name}={v}: {exc}") from None
    return kind, points


def axis_label(over: Over, help_text: str | None) -> str:
    """The x axis title: the flag and what its help says, without a trailing "(default
    ...)" or "(10)": ``--thread: threads per direction``."""
    text = re.sub(r"\s*\((default )?[^()]*\)$", "", help_text or "").strip()
    return f"{over.flag}: {text}" if text else over.flag


def _nums(recs: Sequence[Mapping[str, Any]], key: str) -> list[float]:
    return [float(r[key]) for r in recs if r.get(key) is not None]


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else math.nan


def rows(recs: Sequence[Mapping[str, Any]], over: Over, points: Sequence[Point]) -> pd.DataFrame:
    """One row per point (spec x value, in plan order), raw numbers: ``CSV_COLUMNS``.

    A record belongs to a point by its ``sweep`` key (``spec``, ``value``); points without
    a successful run keep NaN numbers."""
    out = []
    for p in points:
        mine = [
            r
            for r in recs
            if (r.get("sweep") or {}).get("spec") == p.spec
            and str((r.get("sweep") or {}).get("value")) == p.value
        ]
        good = [r for r in mine if r.get("status") == "ok" and r.get("gbps") is not None]
        gbps = _nums(good, "gbps")
        cpg = [
            float(r["cpu_avg"]) / float(r["gbps"])
            for r in good
            if r.get("cpu_avg") is not None and r["gbps"]
        ]
        ci, cci = stats.mean_ci(gbps), stats.mean_ci(cpg)
        out.append(
            {
                "spec": p.spec,
                "param": over.name,
                "value": p.value,
                "n": len(good),
                "failed": len(mine) - len(good),
                "gbps": _median(gbps),
                "gbps_mean": statistics.fmean(gbps) if gbps else math.nan,
                "gbps_ci_low": ci.low if ci else math.nan,
                "gbps_ci_high": ci.high if ci else math.nan,
                "cpu_avg": _median(_nums(good, "cpu_avg")),
                "cpu_per_gbps": statistics.fmean(cpg) if cpg else math.nan,
                "cpu_per_gbps_ci_low": cci.low if cci else math.nan,
                "cpu_per_gbps_ci_high": cci.high if cci else math.nan,
                "fwd_kpps": _median(_nums(good, "fwd_kpps")),
                "frame_bytes_read": _median(_nums(good, "frame_bytes_read")),
                "frame_bytes_written": _median(_nums(good, "frame_bytes_written")),
                "segs_per_frame": _median(_nums(good, "segs_per_frame")),
                "bound_by": summarize_row([r["bound_by"] for r in good if r.get("bound_by")]),
            }
        )
    return pd.DataFrame(out, columns=CSV_COLUMNS)


def csv(df: pd.DataFrame) -> str:
    return str(df.to_csv(index=False))


def _fmt(value: Any, fmt: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return format(value, fmt)


def _ci(mean: float, low: float, high: float, fmt: str) -> str:
    if math.isnan(low):
        return "-"
    return f"{format(mean, fmt)} ± {format((high - low) / 2, fmt)}"


def formatted(df: pd.DataFrame, over: Over) -> pd.DataFrame:
    """The table as people read it; "-" where a row has no such figure."""
    frames = []
    for r, w in zip(df["frame_bytes_read"], df["frame_bytes_written"], strict=True):
        if math.isnan(w):
            frames.append("-")
        elif math.isnan(r) or abs(r - w) <= 0.01 * w:
            frames.append(f"{w:.0f}")
        else:
            frames.append(f"{r:.0f}/{w:.0f}")
    return pd.DataFrame(
        {
            "Variant": df["spec"],
            over.flag: df["value"],
            "Gbps": [_fmt(v, ".2f") for v in df["gbps"]],
            "Mean ± CI": [
                _ci(m, lo, hi, ".2f")
                for m, lo, hi in zip(
                    df["gbps_mean"], df["gbps_ci_low"], df["gbps_ci_high"], strict=True
                )
            ],
            "CPU Avg": [_fmt(v, ".0f") + ("%" if not math.isnan(v) else "") for v in df["cpu_avg"]],
            "CPU/Gbps": [
                _ci(m, lo, hi, ".1f") if not math.isnan(lo) else _fmt(m, ".1f")
                for m, lo, hi in zip(
                    df["cpu_per_gbps"],
                    df["cpu_per_gbps_ci_low"],
                    df["cpu_per_gbps_ci_high"],
                    strict=True,
                )
            ],
            "fwd kpps": [_fmt(v, ".1f") for v in df["fwd_kpps"]],
            "frame B": frames,
            "segs/frame": [_fmt(v, ".1f") for v in df["segs_per_frame"]],
            "n": [
                f"{n}" + (f" ({f} failed)" if f else "")
                for n, f in zip(df["n"], df["failed"], strict=True)
            ],
            "Bound by": [b or "-" for b in df["bound_by"]],
        }
    )


def markdown(df: pd.DataFrame, over: Over) -> str:
    return str(
        formatted(df, over).to_markdown(index=False, tablefmt="github", disable_numparse=True)
    )


def series(df: pd.DataFrame) -> dict[str, dict[str, list[Any]]]:
    """The chart's data per spec: ``x`` (the values), ``gbps`` and ``cpu_per_gbps`` (means)
    with their CI as ``*_low``/``*_high`` (None where a point has fewer than 3 runs)."""

    def num(v: Any) -> float | None:
        return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)

    out: dict[str, dict[str, list[Any]]] = {}
    for spec, g in df.groupby("spec", sort=False):
        out[str(spec)] = {
            "x": [str(v) for v in g["value"]],
            **{k: [num(v) for v in g[k]] for k in ("gbps_mean", "cpu_per_gbps")},
            **{
                k: [num(v) for v in g[k]]
                for k in (
                    "gbps_ci_low",
                    "gbps_ci_high",
                    "cpu_per_gbps_ci_low",
                    "cpu_per_gbps_ci_high",
                )
            },
        }
    return out


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


def figure(df: pd.DataFrame, over: Over, label: str) -> go.Figure:
    """Two panels side by side: mean Gbit/s and mean CPU per Gbit/s against the value,
    one line per spec (same colour in both, one legend entry), 95 % CI bars."""
    fig = make_subplots(
        rows=1,
        cols=2,
        subplot_titles=("Throughput (mean of runs)", "CPU cost (mean of runs)"),
        horizontal_spacing=0.1,
    )
    values = list(dict.fromkeys(str(v) for v in df["value"]))
    for k, (spec, s) in enumerate(series(df).items()):
        color = PALETTE[k % len(PALETTE)]
        for col, key, unit in (
            (1, "gbps_mean", "Gbit/s"),
            (2, "cpu_per_gbps", "% of a core per Gbit/s"),
        ):
            low, high = key.replace("_mean", "") + "_ci_low", key.replace("_mean", "") + "_ci_high"
            fig.add_trace(
                go.Scatter(
                    x=s["x"],
                    y=s[key],
                    mode="lines+markers",
                    name=spec,
                    legendgroup=spec,
                    showlegend=col == 1,
                    line={"color": color, "width": 2},
                    marker={"size": 8},
                    error_y=_err(s[key], s[low], s[high]),
                    hovertemplate=(
                        f"{spec}<br>{over.flag} %{{x}}<br>%{{y:.2f}} {unit}<extra></extra>"
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
    fig.update_yaxes(title_text="Gbit/s received", rangemode="tozero", row=1, col=1)
    fig.update_yaxes(
        title_text="forwarder CPU, % of one core per Gbit/s", rangemode="tozero", row=1, col=2
    )
    fig.update_layout(
        title={"text": f"Sweep over {over.flag}: throughput and CPU per Gbit/s"},
        legend={"title": {"text": "spec"}, "orientation": "h", "y": -0.25},
        margin={"t": 90, "b": 40},
        height=520,
    )
    return fig


def html(df: pd.DataFrame, over: Over, label: str, machine: str) -> str:
    """The sweep's offline page: the table (sortable), the chart, what they show; it loads
    ``plotly.min.js`` from beside itself, as the report page does."""
    from tunbench.htmlpage import Figures, _e, page

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
<p class="why">x: {_e(label)}. Left: mean
throughput of the runs; right: the forwarder's CPU (% of one core) per Gbit/s it moved, the
cost of each bit. One line per spec; bars: 95% confidence interval of the mean, drawn where
a point has 3 or more runs.</p>
<h2>Table</h2>
<div class="table-box"><table id="results" data-selftest-sort="Gbps"><thead><tr>{head}</tr></thead>
{body_rows}</table></div>
<p class="why"><b>fwd kpps</b>, <b>frame B</b> and <b>segs/frame</b> come from the forwarder's
own counters (the data direction): frames written per second, mean frame size (read/written
where they differ) and packets per written frame where the forwarder coalesced them; "-"
where a row has no counters. The data: <a href="sweep.csv">sweep.csv</a>.</p>"""
    return page(f"tunbench sweep over {over.flag}", body, figs)
