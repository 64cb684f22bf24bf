"""--window: how its value is read, which rows ``auto`` caps, and that the cap is part of
a row's workload (so a capped row is never averaged with an uncapped one)."""

from __future__ import annotations

import argparse

import pytest

from tunbench.analysis import results
from tunbench.cell import window
from tunbench.cell.options import CellOptions
from tunbench.cell.variants import CellSpec, parse_spec
from tunbench.cli.common import window_bytes
from tunbench.load.iperf3 import ClientOptions
from tunbench.load.workloads import WorkloadOptions
from tunbench.report.text import workload_text

from resultdocs import make_doc


def test_window_option_reads_binary_suffixes_and_auto() -> None:
    assert window_bytes("512K") == 512 * 1024 and window_bytes("4m") == 4 << 20
    assert window_bytes("65536") == 65536 and window_bytes("0") == 0
    assert window_bytes(" Auto ") == "auto"
    for bad in ("1.5M", "-4K", "4G", "12", "lots"):
        with pytest.raises(argparse.ArgumentTypeError):
            window_bytes(bad)


def test_auto_caps_rows_of_mtu_sized_packets_at_a_third_of_their_tun_queue() -> None:
    opts = CellOptions()
    assert window.capped(1500) == 244 * 1024  # 500 x 1500 B / 3, whole KiB
    assert window.capped(9000) * 3 <= window.queue_bytes(9000)
    capped = ("sync-normal", "uring-normal", "async-normal-channel", "kernel-router --no-offload")
    for spec in capped:
        assert window.auto(parse_spec(spec), opts).iperf.window == 244 * 1024, spec
    for spec in ("sync-gso", "sync-gso --gso split", "kernel-router", "kernel-veth"):
        assert window.auto(parse_spec(spec), opts).iperf.window == 0, spec
    external = CellSpec("./fwd", "external", "./fwd")  # of unknown kind: not capped
    assert window.auto(external, opts).iperf.window == 0


def test_auto_leaves_udp_and_other_workloads_alone() -> None:
    cell = parse_spec("sync-normal")
    udp = CellOptions(iperf=ClientOptions(udp=True))
    rr = CellOptions(workload=WorkloadOptions(kind="rr", rr_size=64))
    assert window.auto(cell, udp) == udp and window.auto(cell, rr) == rr


def test_the_window_is_part_of_the_row_and_shown_in_its_workload() -> None:
    capped, free = make_doc("sync-normal", 1.5), make_doc("sync-normal", 1.6)
    capped["metadata"]["workload"] = {"window": 244 * 1024}
    free["metadata"]["workload"] = {"window": 0}
    assert results.workload_key(capped) != results.workload_key(free)
    assert "win 244K" in workload_text(results.workload_key(capped))
    assert "win" not in workload_text(results.workload_key(free))
