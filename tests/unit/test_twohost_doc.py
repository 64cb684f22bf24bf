"""A two-host row's document without hosts: the topology block the controller assembles
from its agents' replies, the per-role windows on each host's clock, the summed CPU, and
every key of it listed in docs/results-schema.md."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import pytest
from test_resultdoc import SCHEMA_DOC, documented

from tunbench.cell.options import CellOptions
from tunbench.errors import UsageError
from tunbench.load.iperf3 import Window
from tunbench.plan.sshhosts import Host
from tunbench.plan.twohost import LINK, Shape, TwoHost, _sum_roles, parse_row
from tunbench.system.sampler import Sample


def _sample(t: float, cpu: float) -> dict[str, Any]:
    return asdict(Sample(t, 0.1, cpu, 20_000_000, 40.0, 4))


def _row() -> TwoHost:
    a = Host("ha", ("ssh", "ha"), "192.168.77.1", "python3")
    b = Host("hb", ("ssh", "hb"), "192.168.77.2", "python3")
    row = TwoHost(parse_row("peer-wireguard-go"), CellOptions(), a, b, Shape(200e6))
    # host b's wall clock 2 s ahead of the controller's, host a's on time
    row.offsets = {"a": (0.0, 0.001), "b": (2.0, 0.002)}
    row.hello = {r: {"host": {"hostname": h}} for r, h in (("a", "ha"), ("b", "hb"))}
    row.ready = {"a": {"device": None}, "b": {"device": None}}
    row.chans = {"a": None, "b": None}  # type: ignore[dict-item]
    return row


def _stopped() -> dict[str, Any]:
    # a: mono 100 <-> wall 1000; b: mono 500 <-> wall 1002 (2 s ahead)
    return {
        "a": {
            "clock": {"wall": 1000.0, "mono": 100.0},
            "samples": {"half": [_sample(90.0 + 0.1 * i, 30.0) for i in range(1, 101)]},
            "errors": {},
        },
        "b": {
            "clock": {"wall": 1002.0, "mono": 500.0},
            "samples": {"half": [_sample(490.0 + 0.1 * i, 50.0) for i in range(1, 101)]},
            "errors": {},
        },
    }


def test_each_role_gets_the_window_on_its_own_clock() -> None:
    row = _row()
    bg = {r: {"background": {"cpu_pct": 1.0, "checks": [1.0], "noisy": False}} for r in "ab"}
    roles = row._roles(Window(95.0, 98.0, "streams"), _stopped(), bg)
    assert roles["a"]["window"]["start"] == pytest.approx(95.0)
    # a's 95 is wall 995 on the controller; b reads that as wall 997 = its mono 495
    assert roles["b"]["window"]["start"] == pytest.approx(495.0)
    assert roles["b"]["window"]["end"] == pytest.approx(498.0)
    assert roles["b"]["summary"]["n"] == 30
    assert roles["b"]["summary"]["cpu_avg"] == pytest.approx(50.0)
    assert roles["b"]["clock"]["offset_s"] == 2.0


def test_the_row_sums_both_halves() -> None:
    res: dict[str, Any] = {"system_busy_avg": 40.0}
    roles = {
        r: {
            "summary": {
                "cpu_avg": c,
                "cpu_user_avg": c / 2,
                "cpu_sys_avg": c / 2,
                "sched_cpu_avg": c,
                "cpu_max": c + 5,
                "mem_avg_bytes": 2e7,
                "mem_max_bytes": 3e7,
                "system_busy_avg": 40.0 + c,
            }
        }
        for r, c in (("a", 30.0), ("b", 50.0))
    }
    _sum_roles(res, roles, halves=True)
    assert res["cpu_avg"] == pytest.approx(80.0)
    assert res["cpu_max"] == pytest.approx(90.0)
    assert res["mem_avg_mb"] == pytest.approx(40.0)
    assert res["cpu_by_role"] == {"a": 30.0, "b": 50.0}
    assert res["system_busy_by_role"] == {"a": 70.0, "b": 90.0}
    assert res["system_busy_avg"] == 40.0  # host a's, not a sum
    link: dict[str, Any] = {"cpu_avg": None}
    _sum_roles(link, roles, halves=False)
    assert link["cpu_avg"] is None and link["cpu_by_role"] is None


def test_every_topology_key_is_in_the_schema_doc() -> None:
    row = _row()
    bg = {r: {"background": {"cpu_pct": 1.0, "checks": [1.0], "noisy": False}} for r in "ab"}
    roles = row._roles(Window(95.0, 98.0, "streams"), _stopped(), bg)
    block = row._block(roles)
    res: dict[str, Any] = {}
    _sum_roles(res, roles, halves=True)
    text = SCHEMA_DOC.read_text()
    keys = [("", "topology"), *(("topology", k) for k in block)]
    keys += [("topology.per_role", k) for k in roles["a"]]
    keys += [("results", k) for k in ("cpu_by_role", "system_busy_by_role")]
    missing = [f"{p}.{k}" if p else k for p, k in keys if not documented(text, p, k)]
    assert missing == []


def test_rows_two_hosts_can_run() -> None:
    assert parse_row("link").name == LINK
    assert parse_row("peer-wireguard-go").label == "peer-wireguard-go"
    with pytest.raises(UsageError, match="half mode"):
        parse_row("sync-normal")
    with pytest.raises(UsageError, match="no arguments"):
        parse_row("link --fast")
    with pytest.raises(UsageError, match="--crypto aead has no half mode"):
        parse_row("peer-openvpn --crypto aead")
    assert parse_row("peer-fastd --crypto aead").label == "peer-fastd"


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["run", "link"], "link is the underlay between two hosts"),
        (["run", "sync-normal", "--host-a", "x"], "need --topology two-host"),
        (["run", "link", "--topology", "two-host", "--host-a", "x"], "needs --host-a and --host-b"),
        (
            ["run", "sync-normal", "--topology", "two-host", "--host-a", "a", "--host-b", "b"],
            "peer rows with a half mode",
        ),
        (
            ["run", "link", "--topology", "two-host", "--host-a", "h", "--host-b", "h"],
            "same underlay address",
        ),
        (
            [
                *("matrix", "link", "--topology", "two-host", "--host-a", "a", "--host-b", "b"),
                *("--until-ci", "3"),
            ],
            "--until-ci and --paired",
        ),
    ],
)
def test_the_cli_refuses_what_two_hosts_cannot_do_in_one_line(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from tunbench.cli.main import main

    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and says in err[0], err
