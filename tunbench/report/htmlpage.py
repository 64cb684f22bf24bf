"""The frame every tunbench page shares: the offline page around a body, its figures.

A page loads ``plotly.min.js`` from beside itself (:func:`write_plotly_js` writes it once per
directory) and embeds its figures as JSON (:class:`Figures`); the page's own script
(``assets/report.js``) draws them, sorts tables and runs the browser self-test. The report
(:mod:`tunbench.report.reportpage`), the comparison
(:mod:`tunbench.report.comparepage`) and the sweep
page (:mod:`tunbench.report.sweeppage`) are built on it.
"""

from __future__ import annotations

import html
import json
from importlib.resources import files
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
import plotly.io as pio
from plotly.offline import get_plotlyjs

PLOTLY_JS = "plotly.min.js"
TEMPLATE = "plotly_white"


def _asset(name: str) -> str:
    """The page's own style and script (``tunbench/report/assets/``), inlined into the page."""
    return files("tunbench.report").joinpath("assets", name).read_text()


def _e(value: Any) -> str:
    return html.escape(str(value))


def write_plotly_js(directory: Path) -> Path:
    """``directory/plotly.min.js``, written only when missing or from another plotly."""
    path = directory / PLOTLY_JS
    js = get_plotlyjs()
    if not path.exists() or path.stat().st_size != len(js.encode()) or path.read_text() != js:
        path.write_text(js)
    return path


class Figures:
    """The page's figures by element id, embedded once as JSON (without the shared
    template, which is embedded once too)."""

    def __init__(self) -> None:
        self.figs: dict[str, Any] = {}

    def add(self, fig_id: str, fig: go.Figure | None, tall: bool = False) -> str:
        """A placeholder ``div`` for ``fig``; the page's script draws it."""
        if fig is None:
            return ""
        doc = json.loads(pio.to_json(fig, validate=False))
        doc.get("layout", {}).pop("template", None)
        self.figs[fig_id] = doc
        return f'<div class="tb-plot{" tall" if tall else ""}" id="{fig_id}"></div>'

    def script_tags(self) -> str:
        template = json.dumps(pio.templates[TEMPLATE].to_plotly_json(), separators=(",", ":"))
        data = json.dumps(self.figs, separators=(",", ":"))
        safe = data.replace("</", "<\\/")
        return (
            f'<script type="application/json" id="tb-figures">{safe}</script>\n'
            f'<script type="application/json" id="tb-template">{template}</script>'
        )


def page(title: str, body: str, figs: Figures) -> str:
    """A whole page around ``body``: style, plotly.min.js by a relative path (the caller
    writes it with :func:`write_plotly_js`), the figures, the script, the error box and the
    self-test's output element."""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>{_asset("report.css")}</style>
<script src="{PLOTLY_JS}"></script>
</head>
<body>
<div id="tb-errors"></div>
<h1>{_e(title)}</h1>
{body}
<pre id="tb-selftest" hidden></pre>
{figs.script_tags()}
<script>{_asset("report.js")}</script>
</body></html>
"""
