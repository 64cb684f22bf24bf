"""Which kernel row ``% of kernel`` divides by: the router with or without offloads."""

from __future__ import annotations

from typing import Any

import pytest

from tunbench.analysis import results
from tunbench.report import tables

from resultdocs import doc


def row(spec: str, gbps: float, mode: str, offload: str, parallel: int = 1) -> dict[str, Any]:
    d = doc(spec, gbps, parallel=parallel)
    d["cell"].update(spec=spec, mode=mode, offload=offload)
    return results.flat(d)


def test_reference_choice() -> None:
    assert tables.kernel_reference("sync", "none")[0] == "kernel-router --no-offload"
    assert tables.kernel_reference("peer (openvpn)", "none")[0] == "kernel-router --no-offload"
    assert tables.kernel_reference("sync", "gso-split")[0] == "kernel-router"
    assert tables.kernel_reference("kernel", "none")[0] == "kernel-router"  # kernel rows too
    assert tables.kernel_reference("external", "?")[-2] == "kernel-veth"
    # a two-host matrix has no kernel row: its underlay's link row is the last resort
    assert tables.kernel_reference("peer (fastd)", "none")[-1] == "link"
    assert tables.kernel_reference("kernel", "kernel")[-1] == "link"


def test_two_host_rows_are_held_against_the_link_row_of_their_round() -> None:
    recs = [
        row("link", 10.0, "kernel", "kernel"),
        row("peer-fastd", 2.5, "peer (fastd)", "none"),
        row("peer-openvpn", 1.0, "peer (openvpn)", "none"),
    ]
    df = tables.grouped(recs)
    pct = dict(zip(df["Variant"], df["% of kernel"], strict=True))
    assert pct["link"] == pytest.approx(100.0)
    assert pct["peer-fastd"] == pytest.approx(25.0)
    assert pct["peer-openvpn"] == pytest.approx(10.0)


def test_no_offload_rows_against_the_no_offload_router_and_the_table_says_so() -> None:
    recs = [
        row("kernel-veth", 40.0, "kernel", "kernel"),
        row("kernel-router", 20.0, "kernel", "kernel"),
        row("kernel-router --no-offload", 4.0, "kernel", "none"),
        row("sync-normal", 1.0, "sync", "none"),
        row("peer-openvpn", 0.5, "peer (openvpn)", "none"),
        row("sync-gso", 10.0, "sync", "gso-passthrough"),
    ]
    df = tables.grouped(recs)
    pct = dict(zip(df["Variant"], df["% of kernel"], strict=True))
    assert pct["sync-normal"] == pytest.approx(25.0)
    assert pct["peer-openvpn"] == pytest.approx(12.5)
    assert pct["sync-gso"] == pytest.approx(50.0)
    assert pct["kernel-router --no-offload"] == pytest.approx(20.0)
    assert pct["kernel-veth"] == pytest.approx(200.0)
    text = tables.markdown(recs)
    assert "note: % of kernel for rows 4, 5 is relative to kernel-router --no-offload" in text
    assert "note: % of kernel for rows 1, 2, 3, 6 is relative to kernel-router" in text


def test_older_result_sets_fall_back_to_kernel_veth() -> None:
    df = tables.grouped(
        [row("kernel-veth", 20.0, "kernel", "kernel"), row("sync-normal", 2.0, "sync", "none")]
    )
    assert df.iloc[1]["% of kernel"] == pytest.approx(10.0)
    assert df.iloc[1]["kernel_ref"] == "kernel-veth"


def test_reference_of_the_same_workload_only() -> None:
    df = tables.grouped(
        [
            row("kernel-router --no-offload", 4.0, "kernel", "none", parallel=4),
            row("sync-normal", 1.0, "sync", "none"),
        ]
    )
    assert df.iloc[1]["kernel_ref"] is None
