"""Workloads other than one iperf3 stream: request/response, connection rate, zero-loss rate.

``--workload stream`` (the default, with ``--bidir``, ``--udp``, ``--parallel``) is
:meth:`tunbench.cell.session.Cell.measure`'s iperf3 run. The others run here, inside the same
cell, the same way: load generators in the end namespaces through the cell's
:meth:`~tunbench.cell.session.Cell.spawn` (registered, stopped at teardown), the forwarder
sampled over the measured window, the machine's background checked first:

* ``rr``: sockperf ping-pong (:mod:`tunbench.load.sockperf`): transactions per second
  and round-trip p50/p90/p99 of a ``--rr-size`` request and its echo;
* ``crr``: iperf 2 ``--connect-only`` (:mod:`tunbench.load.iperf2`): connections per
  second;
* ``zero-loss``: the highest iperf3 UDP rate of ``--pkt-size`` packets with loss within
  ``--max-loss`` (:func:`tunbench.load.search.zero_loss`), then one short trial at twice that
  rate, which should lose more (recorded, not judged).

:class:`WorkloadOptions` is stored with the iperf3 options in ``metadata.workload``, so
every field is part of the row key (:func:`tunbench.analysis.results.workload_key`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from tunbench.errors import MeasurementError
from tunbench.load import iperf2, search, sockperf
from tunbench.load import iperf3 as iperf
from tunbench.load.measurement import Measurement
from tunbench.system.procs import Child, wait_until
from tunbench.system.sampler import Background, Sample, Sampler, quiet_check, summarize

KINDS = ("stream", "rr", "crr", "zero-loss")
IPERF_PROCS = ("one", "per-stream")
UDP_IP_HEADERS = 28  # IPv4 + UDP: --pkt-size is the IP packet, iperf3's blksize the payload
MIN_PKT = 64
TRIAL_S = 1  # a search step's trial (iperf3 takes whole seconds)
# The zero-loss trials' socket buffers (iperf3 -w, both ends; the kernel doubles it, up to
# net.core.rmem_max, 4 MiB in these namespaces). With the default 208 KiB the receiving
# iperf3 lost the packets, not the forwarder: seen at ~125 kpps of 256 B, every
# confirmation's 1.5-2.2 % loss was the server socket's RcvbufErrors, with tun11's queue
# dropping nothing. 4 MiB holds ~25 ms of that rate.
ZERO_LOSS_WINDOW = 4 << 20
# Paced, iperf3 sends one packet per pass of its event loop, which tops out well below its
# unpaced rate (seen: asked for 780 kpps of 256 B, it sent 237 kpps; unpaced, 405 kpps).
# Bursts of this many packets per wake-up let a paced trial reach what the forwarder takes;
# 32 packets is far under the TUN queue's 500.
ZERO_LOSS_BURST = 32
LOAD_INTERVAL = 0.2


@dataclass(frozen=True)
class WorkloadOptions:
    """What runs through the forwarder beside the iperf3 client options; None = not used
    by this kind (so it does not split rows)."""

    kind: str = "stream"
    rr_size: int | None = None  # rr: bytes of the request and of the response
    pkt_size: int | None = None  # zero-loss: IP packet bytes (MIN_PKT..MTU)
    max_loss: float | None = None  # zero-loss: loss bound, %
    iperf_procs: str = "one"  # stream: "per-stream" = one iperf3 pair per --parallel stream
    offered_bps: float | None = None  # stream: paced at this rate, bits/s (--offered)


class Options(Protocol):
    """What a workload reads of the cell's options (:class:`tunbench.cell.options.CellOptions`)."""

    @property
    def iperf(self) -> iperf.ClientOptions: ...
    @property
    def workload(self) -> WorkloadOptions: ...
    @property
    def ip2(self) -> str: ...
    @property
    def iface1(self) -> str: ...
    @property
    def mtu(self) -> int: ...
    @property
    def grace(self) -> float: ...
    @property
    def load_cpus(self) -> tuple[int, ...]: ...
    @property
    def background_limit(self) -> float: ...
    @property
    def background_wait(self) -> float: ...
    @property
    def background_seconds(self) -> float: ...


class Ends(Protocol):
    """The namespaces at either end of the forwarder: the load's client and server side."""

    @property
    def ns_a(self) -> str: ...
    @property
    def ns_b(self) -> str: ...


class CellRun(Protocol):
    """What a workload needs of the cell it runs in (:class:`tunbench.cell.session.Cell`):
    its options and ends, a place for files, and the cell's own ways to start, wait for,
    profile and sample processes, so that everything started is registered for teardown."""

    @property
    def opts(self) -> Options: ...
    @property
    def topo(self) -> Ends: ...
    @property
    def workdir(self) -> Path: ...
    def phase(self, name: str) -> None: ...
    def spawn(
        self, name: str, argv: Sequence[str], ns: str | None, cpus: Sequence[int] = ()
    ) -> Child: ...
    def wait_child(self, child: Child, deadline: float, what: str) -> None: ...
    def start_profiler(self, svg: Path, native: bool) -> list[Child]: ...
    def stop_profilers(self, profilers: Sequence[Child], svg: Path | None) -> None: ...
    def watch_background(self) -> None: ...
    def forwarder_sampler(self) -> Sampler: ...
    def tun_packets(self) -> dict[str, dict[str, int]] | None: ...
    @property
    def has_forwarder(self) -> bool: ...


def check_tool(kind: str) -> None:
    """PrerequisiteError (naming the Debian package) if ``kind``'s load generator is missing."""
    if kind == "rr":
        sockperf.check_available()
    elif kind == "crr":
        iperf2.check_available()


def _server(cell: CellRun, name: str, argv: list[str], port: int) -> Child:
    o, t = cell.opts, cell.topo
    server = cell.spawn(name, argv, t.ns_b, o.load_cpus)
    if (
        not wait_until(lambda: server.poll() is not None or iperf.listening(server.pid, port), 5.0)
        or server.poll() is not None
    ):
        raise MeasurementError(
            f"{name} did not start listening: {server.stderr_tail(2) or 'no output'}"
        )
    return server


class _Run:
    """The parts every workload shares: profiler, background check, samplers, window."""

    def __init__(self, cell: CellRun, profile_svg: Path | None, native: bool) -> None:
        self.cell = cell
        self.profile_svg = profile_svg
        self.native = native
        self.load: dict[str, Sampler] = {}
        self.profilers: list[Child] = []
        self.background: Background | None = None
        self.sampler = Sampler(None)  # replaced by the forwarder's in start()

    def start(self, servers: dict[str, Child]) -> None:
        c, o = self.cell, self.cell.opts
        if self.profile_svg is not None:
            self.profilers = c.start_profiler(self.profile_svg, self.native)
        else:
            c.phase("background check")
            self.background = quiet_check(
                o.background_limit,
                o.background_wait,
                o.background_seconds,
                watch=c.watch_background,
            )
        self.sampler = c.forwarder_sampler().start()
        for name, child in servers.items():
            self.watch(name, child)
        c.phase("measure")

    def watch(self, name: str, child: Child) -> None:
        self.load[name] = Sampler(child.pid, LOAD_INTERVAL).start()

    def stop(self) -> tuple[list[Sample], dict[str, list[Sample]]]:
        samples = self.sampler.stop()
        return samples, {name: s.stop() for name, s in self.load.items()}

    def finish(
        self,
        samples: list[Sample],
        load_samples: dict[str, list[Sample]],
        win: iperf.Window,
        res: iperf.Iperf3Result | None,
        figures: dict[str, Any],
        detail: dict[str, Any],
    ) -> Measurement:
        c = self.cell
        c.stop_profilers(self.profilers, self.profile_svg)
        m: Measurement = {
            "iperf": res,
            "samples": samples,
            "window": {"start": win.start, "end": win.end, "anchor": win.anchor},
            "summary": summarize(samples, win.start, win.end, process=c.has_forwarder),
            "sampler_error": self.sampler.error,
            "load_samples": load_samples,
            "sampler_cpu_pct": self.sampler.own_cpu_pct,
            "background": self.background,
            "interval_bps": iperf.receiver_interval_bps(res) if res else [],
            "workload": figures,
            "workload_detail": detail,
        }
        return m


def measure(cell: CellRun, profile_svg: Path | None = None, native: bool = False) -> Measurement:
    """Run ``cell.opts.workload.kind`` (not ``stream``) through the cell, sampled."""
    kind = cell.opts.workload.kind
    run = _Run(cell, profile_svg, native)
    if kind == "rr":
        return _rr(cell, run)
    if kind == "crr":
        return _crr(cell, run)
    if kind == "zero-loss":
        return _zero_loss(cell, run)
    raise MeasurementError(f"unknown workload {kind!r}")


def _rr(cell: CellRun, run: _Run) -> Measurement:
    o, t, w = cell.opts, cell.topo, cell.opts.workload
    sockperf.check_available()
    port = sockperf.DEFAULT_PORT
    cell.phase("sockperf server")
    server = _server(cell, "sockperf-server", sockperf.server_argv(o.ip2, port), port)
    run.start({"sockperf-server": server})
    duration = o.iperf.duration + o.iperf.omit
    argv = sockperf.client_argv(o.ip2, port, duration, w.rr_size or 64)
    client = cell.spawn("sockperf-client", argv, t.ns_a, o.load_cpus)
    run.watch("sockperf-client", client)
    try:
        cell.wait_child(client, duration + o.grace, "sockperf client")
    finally:
        samples, load_samples = run.stop()
    end = time.monotonic()
    assert client.log_path is not None
    if client.poll() != 0:
        raise MeasurementError(f"sockperf client failed: {client.stderr_tail(2)}")
    res = sockperf.parse(client.log_path)
    # sockperf's valid window ends as it stops; it began after its own warm-up
    win = iperf.Window(end - min(res.seconds, float(o.iperf.duration)), end, "end")
    figures = {
        "transactions_per_s": res.transactions_per_s,
        "latency_p50_us": res.p(50),
        "latency_p90_us": res.p(90),
        "latency_p99_us": res.p(99),
        "latency_avg_us": res.avg_us,
    }
    detail = {"tool": "sockperf ping-pong --tcp --full-rtt", **asdict(res)}
    return run.finish(samples, load_samples, win, None, figures, detail)


def _crr(cell: CellRun, run: _Run) -> Measurement:
    o, t = cell.opts, cell.topo
    iperf2.check_available()
    port = iperf2.DEFAULT_PORT
    cell.phase("iperf2 server")
    server = _server(cell, "iperf2-server", iperf2.server_argv(o.ip2, port), port)
    run.start({"iperf2-server": server})
    out = cell.workdir / "iperf2-crr.json"
    argv = iperf2.crr_argv(o.ip2, port, o.iperf.duration, out)
    client = cell.spawn("iperf2-client", argv, t.ns_a, o.load_cpus)
    run.watch("iperf2-client", client)
    try:
        cell.wait_child(client, o.iperf.duration + o.grace, "iperf 2 client")
    finally:
        samples, load_samples = run.stop()
    res = iperf2.parse(out)
    if res.connections - res.errors <= 0:
        raise MeasurementError("iperf 2: no connection completed")
    win = iperf.Window(res.mono_start, res.mono_end, "streams")
    figures = {"connections_per_s": res.connections_per_s, "connect_errors": res.errors}
    detail = {"tool": "iperf 2 --connect-only", **asdict(res)}
    return run.finish(samples, load_samples, win, None, figures, detail)


def _queue_dropped(cell: CellRun) -> int | None:
    """Packets the sending side's TUN device could not queue for the forwarder so far
    (its tx_dropped); None for a baseline."""
    tun = cell.tun_packets()
    return None if tun is None else tun[cell.opts.iface1]["tx_dropped"]


def _zero_loss(cell: CellRun, run: _Run) -> Measurement:
    o, t, w = cell.opts, cell.topo, cell.opts.workload
    pkt = w.pkt_size or o.mtu
    blksize = pkt - UDP_IP_HEADERS
    max_loss = w.max_loss if w.max_loss is not None else 0.1
    run.start({})
    confirmed: list[tuple[search.Trial, iperf.Iperf3Result]] = []
    count = [0]

    def trial(rate: float | None, full: bool) -> search.Trial:
        count[0] += 1
        n = count[0]
        copts = replace(
            o.iperf,
            udp=True,
            bandwidth=0 if rate is None else max(1, int(rate * blksize * 8)),
            duration=o.iperf.duration if full else TRIAL_S,
            omit=o.iperf.omit if full else 0,
            blksize=blksize,
            bidir=False,
            window=ZERO_LOSS_WINDOW,
            burst=ZERO_LOSS_BURST,
        )
        before = _queue_dropped(cell)
        cell.phase(f"zero-loss trial {n}: {'unlimited' if rate is None else f'{rate:,.0f} pps'}")
        server = _server(
            cell, f"iperf3-server-{n}", iperf.server_argv(o.ip2, copts.port), copts.port
        )
        out = cell.workdir / f"iperf3-client-{n}.json"
        client = cell.spawn(
            f"iperf3-client-{n}", iperf.client_argv(o.ip2, copts, out), t.ns_a, o.load_cpus
        )
        cell.wait_child(client, copts.duration + copts.omit + o.grace, "iperf3 client")
        cell.wait_child(server, 5.0, "iperf3 server")
        if not out.exists():
            raise MeasurementError(f"iperf3 client failed: {client.stderr_tail(3)}")
        res = iperf.parse(out)
        after = _queue_dropped(cell)
        got = search.Trial(
            offered_pps=res.sent_bps / (blksize * 8),
            received_pps=res.pps or 0.0,
            loss_percent=res.lost_percent if res.lost_percent is not None else 100.0,
            full=full,
            queue_drops=None if before is None or after is None else after - before,
        )
        if full:
            confirmed.append((got, res))
        return got

    try:
        found = search.zero_loss(trial, max_loss)
    finally:
        samples, load_samples = run.stop()
    steps = [s.to_json() for s in found.steps]
    detail = {
        "tool": "iperf3 UDP",
        "pkt_size": pkt,
        "blksize": blksize,
        "max_loss_percent": max_loss,
        "resolution": search.RESOLUTION,
        "trial_s": TRIAL_S,
        "steps": steps,
    }
    held = [res for got, res in confirmed if got is found.confirmed]
    if found.confirmed is None or not held:
        raise MeasurementError(_no_rate(found.steps, max_loss), detail)
    res = held[0]
    win = iperf.window(res)
    if win is None:
        end = res.mono_end if res.mono_end is not None else time.monotonic()
        win = iperf.Window(end - o.iperf.duration, end, "end")
    pps = found.confirmed.offered_pps
    figures = {
        "zero_loss_pps": pps,
        "zero_loss_gbps": pps * pkt * 8 / 1e9,
        "zero_loss_loss_percent": found.confirmed.loss_percent,
        "zero_loss_hit_upper": found.hit_upper,
        "zero_loss_above_loss_percent": found.above.loss_percent if found.above else None,
        "zero_loss_unsettled": found.unsettled,
    }
    return run.finish(samples, load_samples, win, res, figures, detail)


def _no_rate(steps: list[search.Step], max_loss: float) -> str:
    """Why a zero-loss search kept no rate: the lowest rate asked, and the least loss of the
    short trials apart from that of the full-length confirmations (a short trial may pass
    where every confirmation, at the same rates for longer, lost too much)."""
    asked = [s.rate_pps for s in steps if s.rate_pps is not None]
    short = [s.trial.loss_percent for s in steps if s.phase != "confirm"]
    full = [s.trial.loss_percent for s in steps if s.phase == "confirm"]
    seen = f"least loss {min(short):.2g}% in a short trial" if short else ""
    if full:
        seen += f"{', ' if seen else ''}{min(full):.2g}% in a confirmation"
    return (
        f"zero-loss: no rate kept loss within {max_loss:g}% ({len(steps)} trials"
        + (f", the lowest at {min(asked):,.0f} pps" if asked else "")
        + (f"; {seen}" if seen else "")
        + "; every trial is in workload_detail.steps)"
    )
