"""The static summary chart, PNG + SVG: one bar per row (the median of its primary figure)
with min-max whiskers, one panel per workload figure present (Gbit/s, TPS, conn/s, kpps:
:mod:`tunbench.analysis.primary`), so that no two units share an axis."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt
import pandas as pd

from tunbench.analysis import primary
from tunbench.report.tables import KERNEL_REF


def throughput_chart(df: pd.DataFrame, stem: Path) -> list[Path]:
    """Draw ``df`` (from :func:`tunbench.report.tables.grouped`) to ``stem``.png and .svg."""
    keys = set(df["primary_metric"].dropna()) if "primary_metric" in df else set()
    metrics = [m for m in primary.METRICS.values() if m.key in keys] or [primary.STREAM]
    panels = [
        (m, df[(df["primary_metric"] == m.key) & df["primary_median"].notna()]) for m in metrics
    ]
    widths = [max(4.0, 0.6 * len(rows) + 2) for _, rows in panels]
    fig, axes = plt.subplots(
        1, len(panels), figsize=(max(6.0, sum(widths)), 4.5), width_ratios=widths, squeeze=False
    )
    for ax, (metric, rows) in zip(axes[0], panels, strict=True):
        names = [str(v) for v in rows["Variant"]]
        labels = [f"{n}. {v}" for n, v in zip(rows["#"], names, strict=True)]
        med = [float(v) / metric.scale for v in rows["primary_median"]]
        low = [m - float(v) / metric.scale for m, v in zip(med, rows["primary_min"], strict=True)]
        high = [float(v) / metric.scale - m for m, v in zip(med, rows["primary_max"], strict=True)]
        colors = [
            "#7f7f7f" if k == "kernel" else "#d62728" if str(k).startswith("peer") else "#1f77b4"
            for k in rows["Mode"]
        ]
        bars = ax.bar(range(len(labels)), med, yerr=[low, high], capsize=4, color=colors)
        for bar, name in zip(bars, names, strict=True):
            if name == KERNEL_REF:
                bar.set_hatch("//")
        ax.set_xticks(range(len(labels)), labels, rotation=40, ha="right", fontsize=8)
        ax.set_ylabel(metric.axis)
        ax.set_title(f"{metric.title} per row (median, whiskers min-max)", fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_suffix(".png"), stem.with_suffix(".svg")]
    for path in paths:
        fig.savefig(path)
    plt.close(fig)
    return paths
