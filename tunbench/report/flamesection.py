"""A report row's flamegraph section: perf's folded stacks as an interactive icicle,
py-spy's SVG embedded with zoom buttons (the drill-down of :mod:`tunbench.report.reportpage`).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pandas as pd

from tunbench.report import figures
from tunbench.report.htmlpage import Figures, _e


def section(row: pd.Series, out: Path, figs: Figures) -> str:
    """The row's flamegraph(s): perf stacks (``.folded`` beside the SVG) as an interactive
    icicle, py-spy's SVG in an ``<object>`` (its own script zooms on click and searches),
    any other SVG with zoom buttons."""
    n = row["#"]
    svg = row.get("profile_svg")
    if not svg or not Path(str(svg)).exists():
        why = row.get("profile_error") or (
            "none captured (kernel: no forwarder process)"
            if row.get("Mode") == "kernel"
            else "none captured (no profiling pass: --no-profile, or not a matrix run)"
        )
        return f"<p>Flamegraph: {_e(why)}</p>"
    gbps = row.get("profile_gbps")  # None for an rr/crr pass: it has no iperf3 figure
    seen = f"; {gbps:.2f} Gbps under the profiler" if gbps else ""
    intro = (
        "<p class='why'>From a separate profiling pass, not the measured runs"
        f"{_e(seen)}, so the profiler's cost shows.</p>"
    )
    parts = [intro]
    for i, path in enumerate(_profile_files(row)):
        rel = _e(os.path.relpath(path, out.parent))
        folded = path.with_suffix(".folded")
        if folded.exists():
            stacks = _read_folded(folded)
            title = f"perf record -g: {row['Variant']}"
            div = figs.add(f"flame-{n}-{i}", figures.icicle(stacks, title) if stacks else None)
            parts.append(
                f"<div class='flame'><p class='why'>perf stacks (kernel and native frames); "
                f"click a frame to zoom in, the bar above it to zoom out. "
                f"<a href='{rel}'>static SVG</a></p>{div}</div>"
            )
        else:
            oid = f"flame-{n}-{i}"
            size = _svg_size(path)
            ratio = f" style='aspect-ratio: {size[0]:g} / {size[1]:g}'" if size else ""
            parts.append(
                f"<div class='flame'><p class='why flame-tools' data-for='{oid}'>"
                f"py-spy (Python frames): click a frame to zoom, Ctrl-F searches. Width: "
                f"<button data-zoom='1.5'>+</button> <button data-zoom='0.67'>&minus;</button> "
                f"<button data-zoom='1'>fit</button> <a href='{rel}'>open alone</a></p>"
                f"<div class='flame-box'><object id='{oid}' class='flame-svg'{ratio} "
                f"type='image/svg+xml' data='{rel}'>{rel}</object></div></div>"
            )
    return "".join(parts)


def _profile_files(row: pd.Series) -> list[Path]:
    """The profile SVG, and perf's of the same pass beside py-spy's when it drew one."""
    second = row.get("profile_perf_svg")
    extra = [Path(str(second))] if second and Path(str(second)).exists() else []
    return [Path(str(row["profile_svg"])), *extra]


def _read_folded(path: Path) -> dict[str, int]:
    stacks: dict[str, int] = {}
    for line in path.read_text(errors="replace").splitlines():
        stack, _, n = line.rpartition(" ")
        if stack and n.isdigit():
            stacks[stack] = stacks.get(stack, 0) + int(n)
    return stacks


def _svg_size(path: Path) -> tuple[float, float] | None:
    """An SVG's own width and height (attributes of its root element), if it states them."""
    head = path.read_text(errors="replace")[:4096]
    root = re.search(r"<svg\b[^>]*>", head)
    if not root:
        return None
    size = [re.search(rf'\b{k}="([0-9.]+)"', root.group(0)) for k in ("width", "height")]
    return (float(size[0].group(1)), float(size[1].group(1))) if size[0] and size[1] else None
