"""The uring-* variants and their C reference (tools/cfwd.c) beyond what every variant's
tests check (test_verify, test_malformed, test_forwarding pick the uring ones up): a stop
signal ends each with its counters written and exit status 0."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from tunbench.cell.options import CellOptions
from tunbench.cell.session import Cell
from tunbench.cell.variants import parse_spec
from tunbench.load import ping

from engines import in_ci, with_engine_marks
from helpers import REPO

pytestmark = [pytest.mark.root, pytest.mark.timeout(60)]

CFWD = REPO / ".venv" / "bin" / "tb-cfwd"
CFWD_SPEC = "./.venv/bin/tb-cfwd {iface1} {iface2} {stats}"


def need_cfwd() -> None:
    if not CFWD.exists():
        if in_ci():
            pytest.fail(f"CI=true and {CFWD} was not built (scripts/bootstrap.sh)")
        pytest.skip(f"{CFWD} is not built (scripts/bootstrap.sh)")


SIGNAL_SPECS = [
    *with_engine_marks(["uring-normal", "uring-gso --gso split --engine native"]),
    CFWD_SPEC,
]


@pytest.mark.parametrize("spec", SIGNAL_SPECS)
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_stop_signal_writes_the_counters_and_exits_0(
    spec: str, sig: signal.Signals, tmp_path: Path
) -> None:
    if spec == CFWD_SPEC:
        need_cfwd()
    c = Cell(parse_spec(spec), CellOptions(results_dir=tmp_path))
    with c.up():
        out = tmp_path / "ping.json"
        pinger = c.spawn("ping", ping.argv(c.opts.ip2, 5, 0.05, out), c.topo.ns_a)
        c.wait_child(pinger, 10, "ping")
        assert ping.parse(out).received == 5
        fwd = c.forwarder
        assert fwd is not None and c.stats_path is not None
        os.kill(fwd.pid, sig)
        status = fwd.popen.wait(10)
        stats = json.loads(c.stats_path.read_text())
    assert status == 0
    d = stats["directions"]
    assert d["1to2"]["packets"] >= 5 and d["2to1"]["packets"] >= 5  # the echoes came back
    if spec.startswith("uring"):
        ring = stats["extra"]["uring"]["1to2"]
        assert ring["syscalls"] > 0 and ring["completions"] >= 10
        assert ring["syscalls_per_packet"] is not None
