"""The report page: an offline, interactive HTML file with a drill-down section per row.

At the top, the summary table (every column the text table has, sortable by clicking a
header, each row's warnings in the row and its ``Bound by`` verdict with the numbers behind
it as a tooltip) and, per workload figure present (:mod:`tunbench.report.rowcharts`: Gbit/s, TPS,
conn/s, kpps, each on its own axis), the chart of rows (median, min-max and CI whiskers,
kernel rows as reference lines, the row's numbers on hover) and the figure against CPU.
Then one section per row: its runs' figure (workloads other than a stream), throughput per
iperf3 interval, the forwarder's CPU (per thread and user/system where the samples have
them), the CPU of the forwarder, load generators and machine together, memory, every run
of the row overlaid; its flamegraph(s), zoomable; the exact command, metadata, the
forwarder's counters and the row's warnings.

Charts are plotly figures (:mod:`tunbench.report.figures`,
:mod:`tunbench.report.rowcharts`) drawn by
``plotly.min.js``, which is written once next to the page and loaded by a relative path
(:mod:`tunbench.report.htmlpage`): the page opens from ``file://`` with no network and no web
server, and a directory of pages shares one copy.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from tunbench.analysis import boundby, primary, results
from tunbench.errors import ResultFileError
from tunbench.report import figures, flamesection, rowcharts, tables
from tunbench.report.chart import throughput_chart
from tunbench.report.htmlpage import PLOTLY_JS as PLOTLY_JS
from tunbench.report.htmlpage import Figures as Figures
from tunbench.report.htmlpage import _e
from tunbench.report.htmlpage import page as page
from tunbench.report.htmlpage import write_plotly_js as write_plotly_js


def _docs_by_row(
    records: Sequence[Mapping[str, Any]], by_host: bool
) -> dict[tuple[str, str, str], list[Any]]:
    """Every record's full result document, under its row's key (host, spec, workload;
    the host is "" unless the table is by host)."""
    rows: dict[tuple[str, str, str], list[Any]] = {}
    for rec in records:
        path = rec.get("result_file")
        try:
            doc = results.load(Path(path)) if path else None
        except ResultFileError:
            doc = None
        key = (tables.host_of(rec) if by_host else "", *tables.row_key(rec))
        rows.setdefault(key, []).append(doc or {"status": rec.get("status")})
    return rows


def _run_label(doc: Mapping[str, Any], i: int) -> str:
    m = doc.get("matrix") or {}
    return f"run {m['repeat'] + 1}" if "repeat" in m else f"run {i + 1}"


def _bound_class(verdict: str) -> str:
    return "bound-saturated" if "saturated" in verdict else ""


def _in_row(warning: str, variant: str) -> str:
    """A row's warning without the variant name it repeats: ``warning: spread ...``."""
    return warning.replace(f": {variant}: ", ": ", 1)


def _numeric(value: Any) -> bool:
    """Whether a table cell reads as a number (``14.2``, ``72%``, ``3 (1 failed)``)."""
    return not isinstance(value, str) or value[:1].isdigit()


def _table(df: pd.DataFrame, shown: pd.DataFrame, bounds: dict[int, list[Any]]) -> str:
    text = {c for c in shown.columns if not any(_numeric(v) for v in shown[c])}
    head = "".join(
        f'<th class="text">{_e(c)}</th>' if c in text else f"<th>{_e(c)}</th>"
        for c in shown.columns
    )
    body = []
    for (_, row), (_, cells) in zip(df.iterrows(), shown.iterrows(), strict=True):
        tds = []
        for col, val in cells.items():
            if col == "Variant":
                tds.append(f'<td class="text"><a href="#row-{row["#"]}">{_e(val)}</a></td>')
            elif col == "Bound by":
                why = "\n".join(
                    f"{label}: {b.verdict} — {b.explain()}" for label, b in bounds[row["#"]]
                )
                tds.append(
                    f'<td class="bound {_bound_class(str(val))}" title="{_e(why)}">{_e(val)}</td>'
                )
            elif col in text:
                tds.append(f'<td class="text">{_e(val)}</td>')
            else:
                tds.append(f"<td>{_e(val)}</td>")
        warns = "<br>".join(_e(_in_row(w, row["Variant"])) for w in tables.row_warnings(row))
        line = f'<tr class="warnrow"><td colspan="{len(tds)}">{warns}</td></tr>' if warns else ""
        host = f' data-host="{_e(row["Host"])}"' if row["Host"] else ""
        body.append(
            f"<tbody{' class=warned' if warns else ''}{host}><tr>{''.join(tds)}</tr>{line}</tbody>"
        )
    rows = "".join(body)
    return (
        f'<div class="table-box"><table id="results"><thead><tr>{head}</tr></thead>'
        f"{rows}</table></div>"
    )


def _kv(rows: Sequence[tuple[str, Any]]) -> str:
    cells = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows)
    return f'<table class="kv">{cells}</table>'


def _flat_meta(meta: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for k, v in meta.items():
        if isinstance(v, Mapping) and v and all(not isinstance(x, Mapping) for x in v.values()):
            out += [(f"{prefix}{k}.{kk}", json.dumps(vv)) for kk, vv in v.items()]
        elif isinstance(v, Mapping | list):
            out.append((f"{prefix}{k}", json.dumps(v)))
        else:
            out.append((f"{prefix}{k}", v))
    return out


def _metadata(docs: Sequence[Mapping[str, Any]]) -> str:
    """One line per metadata key; keys whose value differs between runs list each."""
    values: dict[str, list[str]] = {}
    for d in docs:
        for k, v in _flat_meta(d.get("metadata") or {}):
            if k == "forwarder_command":
                continue  # shown above, in full
            seen = values.setdefault(k, [])
            if str(v) not in seen:
                seen.append(str(v))
    return _kv([(k, " | ".join(v)) for k, v in values.items()])


COUNTERS = (
    "packets",
    "bytes",
    "drops",
    "read_errors",
    "write_errors",
    "malformed",
    "segments_in",
    "frames_out",
)


def _counters(docs: Sequence[Mapping[str, Any]], labels: Sequence[str]) -> str:
    rows = []
    extra = []
    for d, label in zip(docs, labels, strict=True):
        fwd = d.get("forwarder") or {}
        for name, c in (fwd.get("directions") or {}).items():
            cells = "".join(f"<td>{_e(c.get(k, '-'))}</td>" for k in COUNTERS)
            rows.append(f"<tr><td class='text'>{_e(label)}</td><td>{_e(name)}</td>{cells}</tr>")
        rest = {k: v for k, v in fwd.items() if k not in ("directions", "pid")}
        if rest:
            extra.append(f"<p>{_e(label)}: <code>{_e(json.dumps(rest))}</code></p>")
    if not rows:
        return "<p>No forwarder counters (kernel baseline, or the forwarder wrote none).</p>"
    head = "".join(f"<th>{_e(k)}</th>" for k in ("run", "direction", *COUNTERS))
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>{''.join(extra)}"


def _pct(v: Any) -> str:
    return "-" if v is None else f"{v:.0f}%"


def _runs_table(
    docs: Sequence[Mapping[str, Any]], labels: Sequence[str], out: Path, metric: primary.Metric
) -> str:
    extra = [] if metric == primary.STREAM else [metric.label]  # the row's own figure
    head = ["run", "status", *extra, "Gbps", "Retr", "CPU Avg", "iperf3 client", "iperf3 server"]
    head += ["machine busy", "Bound by", "file"]
    rows = []
    for d, label in zip(docs, labels, strict=True):
        res = d.get("results") or {}
        load = res.get("load_cpu_avg") or {}
        b = boundby.from_doc(d)
        gbps = res.get("gbps")
        path = d.get("_path")
        link = f'<a href="{_e(os.path.relpath(path, out.parent))}">json</a>' if path else ""
        status = d.get("status") or "-"
        if d.get("error"):
            status += f": {d['error']}"
        cells = [
            label,
            status,
            *(metric.number(res.get(metric.key)) for _ in extra),
            "-" if gbps is None else f"{gbps:.2f}",
            "-" if res.get("retransmits") is None else res["retransmits"],
            _pct(res.get("cpu_avg")),
            _pct(load.get("iperf3-client")),
            _pct(load.get("iperf3-server")),
            _pct(res.get("system_busy_avg")),
        ]
        tds = "".join(f"<td>{_e(c)}</td>" for c in cells)
        verdict = f"{b.verdict}<br><span class='why'>{_e(b.explain())}</span>" if b else "-"
        rows.append(f"<tr>{tds}<td class='text'>{verdict}</td><td>{link}</td></tr>")
    head = [f"<th class='text'>{h}</th>" if h == "Bound by" else f"<th>{h}</th>" for h in head]
    return "<table><tr>" + "".join(head) + "</tr>" + "".join(rows) + "</table>"


def _command(doc: Mapping[str, Any]) -> str:
    """The forwarder's command line, its per-run temporary directory (``tb-<run id>-...``,
    where ``--stats`` goes) written as ``tb-<run>`` so that runs of one row show one line."""
    cmd = str((doc.get("metadata") or {}).get("forwarder_command"))
    return re.sub(r"/tb-[0-9a-f]{6}-[^/\s]+/", "/tb-<run>/", cmd)


def _drill(row: pd.Series, docs: Sequence[Any], out: Path, figs: Figures) -> str:
    n = row["#"]
    ok = [d for d in docs if d.get("status") == "ok" and d.get("window")]
    labels = [_run_label(d, i) for i, d in enumerate(docs)]
    runs = [
        r
        for r in (figures.Run.from_doc(d, lab) for d, lab in zip(docs, labels, strict=True))
        if r is not None
    ]
    kernel = row.get("Mode") == "kernel"
    title = f"{n}. {row['Host'] + ' · ' if row['Host'] else ''}{row['Variant']}"
    sub = row.get("Workload") or ""
    metric = primary.of_key(str(row["primary_metric"]))
    median = row["primary_median"]
    figure = "FAILED" if pd.isna(median) else metric.number(median, unit=True)
    verdict = row.get("Bound by") or "-"
    bounds = [b for b in (boundby.from_doc(d) for d in ok) if b is not None]
    why = _e(bounds[0].explain()) if len(bounds) == 1 else "see the runs below"
    warns = tables.row_warnings(row)
    charts = []
    if metric != primary.STREAM:
        values = [
            (d.get("results") or {}).get(metric.key) if d.get("status") == "ok" else None
            for d in docs
        ]
        charts.append(figs.add(f"runs-{n}", rowcharts.runs(values, labels, metric)))
    if metric == primary.STREAM or any(r.intervals for r in runs):
        charts.append(figs.add(f"iv-{n}", figures.intervals(runs) if runs else None))
    if not kernel:
        charts.append(figs.add(f"cpu-{n}", figures.forwarder_cpu(runs) if runs else None))
    charts.append(figs.add(f"all-{n}", figures.cpu_everywhere(runs) if runs else None))
    if not kernel:
        charts.append(figs.add(f"mem-{n}", figures.memory(runs) if runs else None))
    commands = sorted({_command(d) for d in ok})
    cmd = (
        "".join(f"<pre class='cmd'>{_e(c)}</pre>" for c in commands if c != "None")
        or "<p>No forwarder process: the kernel forwards (see the metadata).</p>"
    )
    return f"""
<section class="drill{" kernel" if kernel else ""}" id="row-{n}">
<h3>{_e(title)} <small>{_e(sub)} · {_e(figure)} · n = {row["n"]}</small>
<a class="back" href="#results">back to the table</a></h3>
<p class="verdict">Bound by: <b class="{_bound_class(verdict)}">{_e(verdict)}</b>
<span class="why">— {why}</span></p>
{"<ul class='notes'>" + "".join(f"<li>{_e(w)}</li>" for w in warns) + "</ul>" if warns else ""}
<div class="charts2">{"".join(charts) or "<p>No measured run.</p>"}</div>
<h4>Flamegraph</h4>
{flamesection.section(row, out, figs)}
<h4>Command</h4>
{cmd}
<h4>Runs</h4>
{_runs_table(docs, labels, out, metric)}
<details><summary>Forwarder counters</summary>{_counters(docs, labels)}</details>
<details><summary>Metadata</summary>{_metadata(docs)}</details>
</section>"""


def _charts(df: pd.DataFrame, shown: pd.DataFrame, figs: Figures) -> str:
    """The per-row and efficiency charts of each workload figure; by host, one set per
    host (each in a ``data-host`` block the page's host selector shows or hides)."""
    hosts = [h for h in dict.fromkeys(df["Host"]) if h]
    out = []
    for i, host in enumerate(hosts or [""]):
        mine = (df["Host"] == host).to_numpy()
        sub, cells = df[mine].reset_index(drop=True), shown[mine].reset_index(drop=True)
        suffix = f"-host{i + 1}" if host else ""
        charts = "".join(
            figs.add(
                rowcharts.chart_id("throughput", m) + suffix,
                rowcharts.per_row(sub, cells, m),
                tall=True,
            )
            + figs.add(
                rowcharts.chart_id("efficiency", m) + suffix,
                rowcharts.efficiency(sub, m),
                tall=True,
            )
            for m in rowcharts.metrics_present(sub)
        )
        head = f'<h3 class="host">{_e(host)}</h3>' if host else ""
        out.append(
            f'<div class="host-charts" data-host="{_e(host)}">{head}'
            f'<div class="charts2">{charts}</div></div>'
            if host
            else f'<div class="charts2">{charts}</div>'
        )
    return "".join(out)


def _host_selector(df: pd.DataFrame) -> str:
    hosts = [h for h in dict.fromkeys(df["Host"]) if h]
    if not hosts:
        return ""
    options = "".join(f'<option value="{_e(h)}">{_e(h)}</option>' for h in hosts)
    return (
        '<p class="hosts"><label>Host <select id="tb-host"><option value="">every host'
        f"</option>{options}</select></label> · rows of different hosts are never merged; "
        "% of kernel is against the same host's kernel row</p>"
    )


def _paired(verdicts: pd.DataFrame | None, note: str) -> str:
    """The A/B verdicts of a matrix session (tunbench.plan.paired's table), above the rest:
    they are what such a matrix was run for."""
    if verdicts is None or verdicts.empty:
        return ""
    head = "".join(f'<th class="text">{_e(c)}</th>' for c in verdicts.columns)
    rows = "".join(
        "<tr>" + "".join(f'<td class="text">{_e(v)}</td>' for col, v in cells.items()) + "</tr>"
        for _, cells in verdicts.iterrows()
    )
    return (
        f'<h2>Paired verdicts</h2>\n<div class="table-box"><table id="paired"><thead><tr>'
        f'{head}</tr></thead>{rows}</table></div>\n<p class="why">{_e(note.replace("`", ""))}</p>\n'
    )


def write_html(
    records: list[dict[str, Any]],
    out: Path,
    by_host: bool = False,
    verdicts: pd.DataFrame | None = None,
    verdicts_note: str = "",
) -> Path:
    """Write the page to ``out`` (and ``plotly.min.js`` plus a static PNG/SVG of the
    throughput chart next to it); returns ``out``. ``by_host``: the table by host, a host
    selector above it and the charts per host. ``verdicts``: a matrix's paired A/B
    verdicts as text cells (:func:`tunbench.plan.paired.frame`), shown first, with
    ``verdicts_note`` saying what the columns mean."""
    df = tables.grouped(records, by_host)
    shown = tables.formatted(df)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_plotly_js(out.parent)
    static = throughput_chart(df, out.with_name(out.stem + "-throughput"))
    by_row = _docs_by_row(records, by_host)
    figs = Figures()
    docs_of = {
        n: by_row.get((h, v, k), [])
        for n, h, v, k in zip(df["#"], df["Host"], df["Variant"], df["workload_key"], strict=True)
    }
    bounds: dict[int, list[Any]] = {}
    for n, docs in docs_of.items():
        bounds[n] = [
            (_run_label(d, i), b)
            for i, d in enumerate(docs)
            if (b := boundby.from_doc(d)) is not None
        ]
    metrics = rowcharts.metrics_present(df)
    charts = _charts(df, shown, figs)
    heading = "Throughput" if metrics in ([], [primary.STREAM]) else "Per row"
    units = ", ".join(f"{m.title.lower()} in {m.label}" for m in metrics)
    drills = "".join(_drill(row, docs_of[row["#"]], out, figs) for _, row in df.iterrows())
    in_rows = {w for _, row in df.iterrows() for w in tables.row_warnings(row)}
    notes = "".join(f"<li>{_e(n)}</li>" for n in tables.warnings(df) if n not in in_rows)
    first = records[0] if records else {}
    machine = f"kernel {first.get('kernel')}, {first.get('cpu_model')}"
    if by_host:
        machine = f"{df['Host'].nunique()} hosts"
    body = f"""<p class="sub">{_e(machine)} · {len(records)} result files · {len(df)} rows.
Click a column header to sort, a variant to see its runs. CPU is in % of one core.</p>
{_paired(verdicts, verdicts_note)}<h2>Table</h2>
{_host_selector(df)}
{_table(df, shown, bounds)}
<ul class="notes">{notes}</ul>
<p class="why"><b>Bound by</b> says what limited a row: a forwarder thread at ≥ 95% of a
core, an iperf3 process at a full core (load generator), the whole machine ≥ 95% busy, or
none of these (not CPU-bound: look at retransmits and drops). Hover it for the numbers.</p>
<h2>{heading}</h2>
{charts}
<p class="why">One chart per workload figure ({_e(units)}). Bars: median of the
row's runs, thin whiskers min to max, thick black whiskers the 95% confidence interval where
the row has one; dashed lines: kernel rows of that workload (the ceiling a forwarder is
measured against). Static copies: <a href="{_e(static[0].name)}">PNG</a>,
<a href="{_e(static[1].name)}">SVG</a>.</p>
<h2>Rows in detail</h2>
<p class="why">Time runs from the start of the measured window; the grey band is the
warm-up (<code>--omit</code>), not counted.</p>
{drills}"""
    out.write_text(page("tunbench report", body, figs))
    return out
