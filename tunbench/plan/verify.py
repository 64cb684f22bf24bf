"""``tunbench verify SPEC``: prove a forwarder delivers packets intact.

Brings the cell up exactly as a measurement would, then, through the forwarder: ping
from ``-a`` to ``-b``, a known random TCP stream (several MB) and known UDP datagrams
(plain, and with UDP_SEGMENT so gso forwarders see UDP_L4 super-packets), each checked
byte for byte on arrival. Also records the forwarder's counters. ``run --verify`` runs
the same checks right after a measurement, in its cell (:func:`after_run`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tunbench.cell.options import CellOptions
from tunbench.cell.session import CELL_FAILURES, Cell, Phase
from tunbench.cell.variants import CellSpec
from tunbench.errors import MeasurementError
from tunbench.load import ping, stream
from tunbench.system.procs import wait_until

STREAM_PORT = 5301


@dataclass
class VerifyReport:
    spec: str
    ok: bool = True
    checks: dict[str, str] = field(default_factory=dict)  # name -> "ok" or the problem
    forwarder: dict[str, Any] | None = None

    def add(self, name: str, problems: list[str]) -> None:
        self.checks[name] = "ok" if not problems else "; ".join(problems)
        self.ok = self.ok and not problems


def _ping(c: Cell, report: VerifyReport) -> None:
    out = c.workdir / "verify-ping.json"
    argv = ping.argv(c.opts.ip2, ping.CHECK_COUNT, ping.CHECK_INTERVAL, out)
    child = c.spawn("verify-ping", argv, c.topo.ns_a)
    c.wait_child(child, 10.0, "ping")
    res = ping.parse(out)
    report.add(
        "ping",
        []
        if res.received == res.sent
        else [f"{res.sent - res.received} of {res.sent} echo replies missing"],
    )


def _streams(
    c: Cell,
    report: VerifyReport,
    name: str,
    tcp_bytes: int,
    udp_count: int,
    udp_size: int,
    udp_gso: bool,
    port: int,
) -> None:
    o, t = c.opts, c.topo
    recv_out = c.workdir / f"{name}-recv.json"
    send_out = c.workdir / f"{name}-send.json"
    ack = c.workdir / f"{name}.ack"
    receiver = c.spawn(
        f"{name}-recv", stream.receiver_argv(o.ip2, port, recv_out, ack, udp_count), t.ns_b
    )
    ready = recv_out.with_name(recv_out.name + ".ready")
    if (
        not wait_until(lambda: ready.exists() or receiver.poll() is not None, 5.0)
        or not ready.exists()
    ):
        raise MeasurementError(f"{name} receiver did not start: {receiver.stderr_tail(2)}")
    sender = c.spawn(
        f"{name}-send",
        stream.sender_argv(o.ip2, port, send_out, ack, tcp_bytes, udp_count, udp_size, udp_gso),
        t.ns_a,
    )
    c.wait_child(sender, 60.0, f"{name} sender")
    c.wait_child(receiver, 15.0, f"{name} receiver")
    if not send_out.exists():
        raise MeasurementError(f"{name} sender failed: {sender.stderr_tail(2)}")
    report.add(name, stream.compare(stream.parse(send_out), stream.parse(recv_out)))


def run_checks(
    c: Cell, report: VerifyReport, tcp_bytes: int = 8 << 20, udp_count: int = 400
) -> None:
    """Every check through the cell ``c``, which is up."""
    c.phase("verify")
    _ping(c, report)
    _streams(c, report, "stream", tcp_bytes, udp_count, 1200, False, STREAM_PORT)
    _streams(c, report, "stream-udp-gso", 1 << 20, udp_count, 1200, True, STREAM_PORT + 1)
    _streams(c, report, "stream-udp-large", 1 << 16, 64, 8000, False, STREAM_PORT + 2)


def verify_cell(
    cell: CellSpec,
    opts: CellOptions,
    phase: Phase | None = None,
    tcp_bytes: int = 8 << 20,
    udp_count: int = 400,
) -> VerifyReport:
    """Run every check through ``cell``; failures of the cell itself are a failed check."""
    report = VerifyReport(cell.spec)
    c = Cell(cell, opts, phase)
    try:
        with c.up():
            run_checks(c, report, tcp_bytes, udp_count)
            report.forwarder = c.forwarder_stats()
    except CELL_FAILURES as exc:
        report.add("cell", [str(exc)])
    return report


def after_run(c: Cell) -> dict[str, Any]:
    """``run --verify``: the checks through the cell a measurement has just used, as the
    result file's ``verify`` block (``ok``, ``checks``). A failure of the cell during them
    fails the checks, not the measurement, whose figures are taken."""
    report = VerifyReport(c.cell.spec)
    try:
        run_checks(c, report)
    except CELL_FAILURES as exc:
        report.add("cell", [str(exc)])
    return {"ok": report.ok, "checks": report.checks}
