"""The throughput chart: one bar per row (median Gbps) with min-max whiskers, PNG + SVG."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt
import pandas as pd

from tunbench.report import KERNEL_REF


def throughput_chart(df: pd.DataFrame, stem: Path) -> list[Path]:
    """Draw ``df`` (from :func:`tunbench.report.grouped`) to ``stem``.png and .svg."""
    ok = df[df["Gbps"].notna()]
    labels = [str(v) for v in ok["Variant"]]
    med = [float(v) for v in ok["Gbps"]]
    low = [m - float(lo) for m, lo in zip(med, ok["Min"], strict=True)]
    high = [float(hi) - m for m, hi in zip(med, ok["Max"], strict=True)]
    kinds = list(ok["Mode"])
    colors = [
        "#7f7f7f" if k == "kernel" else "#d62728" if str(k).startswith("peer") else "#1f77b4"
        for k in kinds
    ]
    fig, ax = plt.subplots(figsize=(max(6.0, 0.6 * len(labels) + 2), 4.5))
    bars = ax.bar(range(len(labels)), med, yerr=[low, high], capsize=4, color=colors)
    for bar, name in zip(bars, labels, strict=True):
        if name == KERNEL_REF:
            bar.set_hatch("//")
    ax.set_xticks(range(len(labels)), labels, rotation=40, ha="right", fontsize=8)
    ax.set_ylabel("Gbit/s (median, whiskers min-max)")
    ax.set_title("Throughput per variant")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_suffix(".png"), stem.with_suffix(".svg")]
    for path in paths:
        fig.savefig(path)
    plt.close(fig)
    return paths
