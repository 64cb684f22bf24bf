"""One row across two hosts (``run --topology two-host``): a peer daemon's half on each
host, or the ``link`` row (iperf3 over the underlay itself), driven through each host's
agent (:mod:`tunbench.cell.agent`, over :mod:`tunbench.plan.agentchannel`).

Roles: half ``a`` on ``--host-a`` owns ``tun11`` with the iperf3 client behind it in a
``tb-`` namespace there; half ``b`` on ``--host-b`` owns ``tun22`` with the server behind
it; the two talk UDP over the underlay. In order: ``hello`` to both (three round trips
each, for the clock offset), the qdisc probes and the shaping (``--shape-rate``), both
halves started and ready, the server, each host's background check and sampler, the
client (both agents polled meanwhile: a dead one fails the row within a poll or two),
the samplers stopped, with ``--verify`` verify's ping and TCP stream through the
halves, ``stop`` to both, then their channels closed. Teardown closes the
channels on error and Ctrl-C too: end of input is the agents' signal to remove everything.

The result document is a cell's (:mod:`tunbench.cell.record`) from role a's point of view
(its clock, its iperf3 client), plus a ``topology`` block: roles -> hosts (each host's
block from its ``hello``), each role's samples on its own monotonic clock with the clock
mapping and estimated offset, and its summary. ``results.cpu_avg`` and the memory figures
are the two halves' sum (one host's row sums its two daemons alike).
"""

from __future__ import annotations

import json
import secrets
import shutil
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tunbench.analysis import cost, results
from tunbench.cell import record
from tunbench.cell.options import CellOptions
from tunbench.cell.teardown import Teardown
from tunbench.cell.variants import CellSpec, parse_spec
from tunbench.errors import AgentError, PrerequisiteError, UsageError
from tunbench.load import iperf3 as iperf
from tunbench.load import ping, stream
from tunbench.load.measurement import Measurement
from tunbench.peers.base import HALF_PORT
from tunbench.peers.registry import LAUNCHERS
from tunbench.plan.agentchannel import AgentChannel
from tunbench.plan.sshhosts import Host
from tunbench.system.agentwire import PROTOCOL, ClockSample, clock_offset
from tunbench.system.runstate import CONTROLLER_DIR, STATE_DIR, locked_run
from tunbench.system.runstate import current as current_state
from tunbench.system.sampler import Background, Sample, summarize
from tunbench.system.signals import deferred

LINK = "link"
CALL_S = 20.0  # the longest an agent may take to answer a request (hello: its host block)
READY_S = 12.0
POLL_S = 0.25
CLOCK_ROUNDS = 3
SETUP_SLACK_S = 120  # an agent's deadline beyond the test itself
VERIFY_PORT = 5301
VERIFY_S = 30.0


@dataclass(frozen=True)
class Shape:
    """What the underlay is shaped to (None: as it is)."""

    rate_bps: float | None = None
    delay_ms: float | None = None  # needs netem


def parse_row(spec: str) -> CellSpec:
    """``link``, or a peer row whose launcher has a half mode."""
    if spec.split()[:1] == [LINK]:
        if spec.split()[1:]:
            raise UsageError("link takes no arguments")
        return CellSpec(LINK, "baseline", LINK)
    cell = parse_spec(spec)
    peer = LAUNCHERS.get(cell.label)
    if peer is None or not peer.halves:
        able = ", ".join(sorted(n for n, p in LAUNCHERS.items() if p.halves))
        raise UsageError(f"--topology two-host runs {LINK} and peer rows with a half mode ({able})")
    crypto = getattr(cell.options, "crypto", None)
    if peer.half_crypto is not None and crypto not in peer.half_crypto:
        raise UsageError(
            f"{cell.label} --crypto {crypto} has no half mode (two hosts): only "
            f"--crypto {'|'.join(peer.half_crypto)}"
        )
    return cell


def host_window(
    ctl_start: float, ctl_end: float, offset: float, clock: dict[str, float]
) -> tuple[float, float]:
    """A window on the controller's wall clock as that host's monotonic clock reads it
    (``offset``: host wall minus controller wall; ``clock``: one wall/mono pair there)."""
    shift = offset - (clock["wall"] - clock["mono"])
    return ctl_start + shift, ctl_end + shift


def ctl_window(
    start: float, end: float, offset: float, clock: dict[str, float]
) -> tuple[float, float]:
    """The inverse of :func:`host_window`: a host's monotonic window on the controller's wall."""
    shift = offset - (clock["wall"] - clock["mono"])
    return start - shift, end - shift


class TwoHost:
    """One two-host row's life; :meth:`run` measures it and returns the result document."""

    def __init__(
        self,
        cell: CellSpec,
        opts: CellOptions,
        a: Host,
        b: Host,
        shape: Shape,
        verify: bool = False,
    ) -> None:
        self.cell, self.opts, self.hosts, self.shape = cell, opts, {"a": a, "b": b}, shape
        self.verify = verify and cell.name != LINK
        self.run_id = secrets.token_hex(3)
        self.chans: dict[str, AgentChannel] = {}
        self.hello: dict[str, dict[str, Any]] = {}
        self.offsets: dict[str, tuple[float, float]] = {}
        self.progress: Callable[[str], None] = lambda _text: None
        self.ready: dict[str, Any] = {}

    def _other(self, role: str) -> list[AgentChannel]:
        return [c for r, c in self.chans.items() if r != role]

    def call(self, who: str, op: str, timeout: float = CALL_S, **args: Any) -> dict[str, Any]:
        """Request ``op`` of role ``who``'s agent, watching the other's channel meanwhile."""
        return self.chans[who].call(op, timeout, watch=self._other(who), **args)

    def both(self, op: str, timeout: float = CALL_S, **args: Any) -> dict[str, dict[str, Any]]:
        return {role: self.call(role, op, timeout, **args) for role in self.chans}

    def _open(self, stack: ExitStack, workdir: Path) -> None:
        o = self.opts
        deadline = int(o.iperf.duration + o.iperf.omit + o.grace + SETUP_SLACK_S)
        for role, host in self.hosts.items():
            with deferred():  # no signal between starting ssh and registering its close
                chan = AgentChannel(
                    host.name, host.agent_argv(deadline), workdir / f"agent-{role}.log"
                )
                self.chans[role] = chan
                state = current_state()
                if state:
                    state.add_process(chan.child.pid, chan.child.name)
                    stack.callback(state.drop_process, chan.child.pid)
                stack.callback(chan.close)
        for role in self.chans:
            rounds = []
            for _ in range(CLOCK_ROUNDS):
                sent = time.time()
                rep = self.call(role, "hello")
                rounds.append(ClockSample(sent, rep["clock"]["wall"], time.time()))
            if rep.get("protocol") != PROTOCOL:
                raise AgentError(
                    f"the agent on {self.hosts[role].name} speaks protocol "
                    f"{rep.get('protocol')}, this controller {PROTOCOL}: update tunbench there"
                )
            self.hello[role] = rep
            self.offsets[role] = clock_offset(rounds)

    def _shape(self) -> None:
        s = self.shape
        if s.delay_ms is not None:
            self.both("shape", remote="", probe="netem")  # refused here: no netem
            raise PrerequisiteError("--shape-delay: netem shaping is not implemented")
        if s.rate_bps is None:
            return
        for role in self.hosts:
            other = self.hosts["b" if role == "a" else "a"]
            self.call(role, "shape", remote=other.underlay, rate_bps=s.rate_bps)

    def _start(self) -> None:
        o, a, b = self.opts, self.hosts["a"], self.hosts["b"]
        kind = "link" if self.cell.name == LINK else "peer"
        secret = secrets.token_hex(16)
        common: dict[str, Any] = {"kind": kind, "spec": self.cell.spec, "secret": secret}
        common |= {"port": HALF_PORT, "ip1": o.ip1, "ip2": o.ip2, "mtu": o.mtu}
        self.progress("halves start")
        self.call("a", "start", role="a", remote=b.underlay, **common)
        self.call("b", "start", role="b", remote=a.underlay, **common)
        self.progress("halves ready")
        self.ready = self.both("wait_ready", READY_S + 5, seconds=READY_S)

    def _measure(self, workdir: Path) -> tuple[Measurement, dict[str, Any]]:
        o = self.opts
        link = self.cell.name == LINK
        server = self.hosts["b"].underlay if link else o.ip2
        self.progress("iperf3 server")
        self.call("b", "serve", bind=server, port=o.iperf.port)
        self.progress("background check")
        bg = self.both(
            "sample",
            action="start",
            background_seconds=o.background_seconds,
            background_limit=o.background_limit,
        )
        self.progress("measure")
        client = self.call("a", "client", server=server, **asdict(o.iperf))
        until = time.monotonic() + o.iperf.duration + o.iperf.omit + o.grace
        done: dict[str, Any] = {"done": False}
        while not done.get("done"):
            if time.monotonic() > until:
                raise AgentError(f"iperf3 client on {self.hosts['a'].name} hung past its deadline")
            time.sleep(POLL_S)
            done = self.call("a", "poll")
            self.call("b", "poll")  # a dead half or agent there fails the row now
        stopped = self.both("sample", action="stop")
        if not done.get("result"):
            raise AgentError(f"iperf3 client failed on {self.hosts['a'].name}: {done.get('tail')}")
        out = workdir / "iperf3-client.json"
        out.write_text(done["result"])
        res = iperf.parse(out)
        win = iperf.window(res)
        if win is None:
            end = res.mono_end or client["clock"]["mono"] + o.iperf.duration
            win = iperf.Window(end - o.iperf.duration, end, "end")
        roles = self._roles(win, stopped, bg)
        samples_a = [Sample(**d) for d in stopped["a"]["samples"].get("half", [])]
        background = bg["a"]["background"]
        m: Measurement = {
            "iperf": res,
            "samples": samples_a,
            "window": {"start": win.start, "end": win.end, "anchor": win.anchor},
            "summary": summarize(samples_a, win.start, win.end, process=not link),
            "sampler_error": stopped["a"]["errors"].get("half"),
            "load_samples": {},
            "sampler_cpu_pct": None,
            "background": Background(**background),
            "interval_bps": iperf.receiver_interval_bps(res),
            "tun_packets": None,
        }
        return m, roles

    def _roles(
        self, win: iperf.Window, stopped: dict[str, Any], bg: dict[str, Any]
    ) -> dict[str, Any]:
        """Each role's samples on its own clock, its window there, and its summary."""
        off_a, _ = self.offsets["a"]
        clock_a = stopped["a"]["clock"]
        ctl = ctl_window(win.start, win.end, off_a, clock_a)
        roles: dict[str, Any] = {}
        for role in self.chans:
            off, err = self.offsets[role]
            clock = stopped[role]["clock"]
            start, end = host_window(*ctl, off, clock) if role != "a" else (win.start, win.end)
            raw = stopped[role]["samples"].get("half", [])
            summ = summarize([Sample(**d) for d in raw], start, end, process=self.cell.name != LINK)
            roles[role] = {
                "host": self.hosts[role].name,
                "underlay": self.hosts[role].underlay,
                "host_block": self.hello[role]["host"],
                "clock": {**clock, "offset_s": off, "offset_error_s": err},
                "window": {"start": start, "end": end, "clock": "monotonic"},
                "background": bg[role]["background"],
                "summary": asdict(summ),
                "samples": raw,
                "device": (self.ready.get(role) or {}).get("device"),
            }
        return roles

    def _check_done(self, who: str, kind: str, until: float) -> dict[str, Any]:
        while True:
            done = self.call(who, "check_result", kind=kind)
            if done["done"]:
                return done
            if time.monotonic() > until:
                raise AgentError(f"{kind} on {self.hosts[who].name} did not end in time")
            time.sleep(POLL_S)

    def _verify(self, workdir: Path) -> dict[str, Any]:
        """verify's ping and TCP stream (byte for byte) through both halves: the ``verify``
        block. Its UDP checks need a Unix socket between sender and receiver, which two
        hosts do not share, so they are left out here."""
        o = self.opts
        self.progress("verify")
        checks: dict[str, str] = {}
        self.call("b", "check", kind="stream-recv", target=o.ip2, port=VERIFY_PORT)
        self.call("a", "check", kind="stream-send", target=o.ip2, port=VERIFY_PORT)
        until = time.monotonic() + VERIFY_S
        sent = self._check_done("a", "stream-send", until)
        got = self._check_done("b", "stream-recv", until)
        if not sent["result"] or not got["result"]:
            checks["stream"] = f"no result: {sent['tail'] or got['tail'] or 'no output'}"
        else:
            problems = stream.compare(json.loads(sent["result"]), json.loads(got["result"]))
            checks["stream"] = "; ".join(problems) or "ok"
        self.call("a", "check", kind="ping", target=o.ip2)
        echoed = self._check_done("a", "ping", time.monotonic() + VERIFY_S)
        if not echoed["result"]:
            checks["ping"] = f"no result: {echoed['tail'] or 'no output'}"
        else:
            out = workdir / "verify-ping.json"
            out.write_text(echoed["result"])
            res = ping.parse(out)
            lost = res.sent - res.received
            checks["ping"] = "ok" if not lost else f"{lost} of {res.sent} echo replies missing"
        return {"ok": all(v == "ok" for v in checks.values()), "checks": checks}

    def run(self, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """Measure the row, write its result file (``extra`` keys as they are: a matrix's
        position) and return its document."""
        doc = record.skeleton(self.cell, self.opts, self.run_id, extra)
        doc["testbed"] = self.opts.testbed or f"{self.hosts['a'].name}+{self.hosts['b'].name}"
        m: Measurement | None = None
        roles: dict[str, Any] | None = None
        # the controller's own lock and state, so `tunbench clean` here finds its work
        # directory and ssh processes after a kill -9 (the run lock stays free for an
        # agent, should this machine be one of the hosts)
        with locked_run(STATE_DIR / CONTROLLER_DIR) as state, Teardown() as stack:
            with deferred():
                workdir = Path(tempfile.mkdtemp(prefix=f"tb-{self.run_id}-ctl-"))
                state.add_file(str(workdir))
                stack.callback(state.drop_file, str(workdir))
                stack.callback(shutil.rmtree, workdir, ignore_errors=True)
            self.progress("agents")
            self._open(stack, workdir)
            self._shape()
            try:
                self._start()
                m, roles = self._measure(workdir)
                if self.verify:
                    doc["verify"] = self._verify(workdir)
                self.both("stop")
            except AgentError as exc:
                record.record_failure(doc, exc)
                m = None
        record.fill(doc, [], None, m, self.cell.name != LINK)
        doc["topology"] = self._block(roles)
        if roles and m is not None:
            _sum_roles(doc["results"], roles, self.cell.name != LINK)
            doc["results"].update(cost.compute(doc))  # per core of both halves
        if self.cell.name != LINK:
            doc["cell"]["channel"] = doc["cell"]["channel"].replace("udp lo", "udp underlay")
        results.save(doc, self.opts.results_dir)
        return doc

    def _block(self, roles: dict[str, Any] | None) -> dict[str, Any]:
        return {
            "kind": "two-host",
            "roles": {r: h.name for r, h in self.hosts.items()},
            "underlay": {r: h.underlay for r, h in self.hosts.items()},
            "shape": asdict(self.shape),
            "clock_offset_s": {r: o[0] for r, o in self.offsets.items()},
            "clock_offset_error_s": {r: o[1] for r, o in self.offsets.items()},
            "per_role": roles,
        }


def _sum_roles(res: dict[str, Any], roles: dict[str, Any], halves: bool) -> None:
    """The row's CPU and memory: both halves together (one host's row sums its two
    daemons alike), ``cpu_max`` the sum of each half's busiest second (an upper bound);
    Sys busy stays role a's host's, each host's is in ``system_busy_by_role``."""
    parts = {
        "cpu_avg": "cpu_avg",
        "cpu_user_avg": "cpu_user_avg",
        "cpu_sys_avg": "cpu_sys_avg",
        "cpu_sched_avg": "sched_cpu_avg",
        "cpu_max": "cpu_max",
        "mem_avg_mb": "mem_avg_bytes",
        "mem_max_mb": "mem_max_bytes",
    }
    for key, part in parts.items() if halves else ():
        vals = [roles[r]["summary"][part] for r in roles]
        if any(v is None for v in vals):
            res[key] = None
            continue
        res[key] = sum(vals) / (1e6 if key.startswith("mem") else 1.0)
    res["cpu_by_role"] = {r: roles[r]["summary"]["cpu_avg"] for r in roles} if halves else None
    res["system_busy_by_role"] = {r: roles[r]["summary"]["system_busy_avg"] for r in roles}
