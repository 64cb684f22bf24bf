"""A static HTML page: the table, the throughput chart, links to each flamegraph."""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import Any

from tunbench import report
from tunbench.chart import throughput_chart

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>tunbench report</title>
<style>
body {{ font-family: sans-serif; margin: 2em; }}
table {{ border-collapse: collapse; font-size: 0.9em; }}
th, td {{ border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: right; }}
td {{ white-space: nowrap; }}
th {{ background: #eee; }} td:nth-child(2) {{ text-align: left; }}
.notes li {{ color: #a00; }}
</style></head>
<body>
<h1>tunbench report</h1>
<p>{machine}</p>
<h2>Table</h2>
{table}
<ul class="notes">{notes}</ul>
<h2>Throughput</h2>
<img id="chart" src="{chart}" alt="throughput chart" width="760">
<h2>Flamegraphs</h2>
<p>From a separate profiling pass (py-spy for Python variants, perf for external and peer
forwarders), not the measured runs; the Gbps seen under the profiler shows its cost.</p>
<ul id="flamegraphs">{flames}</ul>
</body></html>
"""


def write_html(records: list[dict[str, Any]], out: Path) -> Path:
    """Write the page (and its chart next to it) to ``out``; returns ``out``."""
    df = report.grouped(records)
    out.parent.mkdir(parents=True, exist_ok=True)
    chart = throughput_chart(df, out.with_name(out.stem + "-throughput"))
    table = report.formatted(df).to_html(index=False, border=0, table_id="results")
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in report.warnings(df))
    flames = []
    for _, row in df.iterrows():
        name = html.escape(str(row["Variant"]))
        if row.get("profile_svg") and Path(str(row["profile_svg"])).exists():
            rel = os.path.relpath(str(row["profile_svg"]), out.parent)
            gbps = row.get("profile_gbps")
            seen = f" ({gbps:.2f} Gbps under the profiler)" if gbps else ""
            flames.append(f'<li><a href="{html.escape(rel)}">{name}</a>{seen}</li>')
        else:
            why = row.get("profile_error") or (
                "none captured (kernel: no forwarder process)"
                if row.get("Mode") == "kernel"
                else "none captured (no profiling pass: --no-profile or a single run)"
            )
            flames.append(f"<li>{name}: {html.escape(str(why))}</li>")
    first = records[0] if records else {}
    machine = html.escape(f"kernel {first.get('kernel')}, {first.get('cpu_model')}")
    out.write_text(
        PAGE.format(
            machine=machine,
            chart=html.escape(chart[1].name),
            table=table,
            notes=notes,
            flames="".join(flames),
        )
    )
    return out
