"""``tunbench agent --stdio``: one host's side of a two-host row, driven over JSON lines.

The controller starts the agent on each host over SSH and sends it requests
(:mod:`tunbench.system.agentwire`) one at a time; every request is answered at once or
within a bounded wait (``wait_ready``, ``serve``, ``sample``), never after the load has
run: a long iperf3 test is started by ``client`` and asked after with ``poll``. So the
controller can tell a dead or stuck agent from a busy one by its silence.

What it does, by op:

- ``hello``: protocol and tunbench version, the host block, a clock reading (wall and
  monotonic) for the controller's offset estimate.
- ``start``: one peer half (``--half a|b`` of a launcher, :mod:`tunbench.peers.launcher`),
  in the agent's own network namespace (where the underlay is), with a ``tb-`` device
  name; or nothing, for the ``link`` row (iperf3 over the underlay itself).
- ``wait_ready``: until the half's device exists (or the launcher died: its last line);
  then the device moves into a ``tb-<id>-<role>`` namespace, is renamed ``tun11``/
  ``tun22`` there, addressed and routed: the iperf3 end behind it.
- ``serve`` / ``client`` / ``poll``: an iperf3 server, a client and its outcome.
- ``sample``: ``start`` (after the host's own background check) and ``stop`` a sampler
  of the half's daemons (CPU, memory) and of the whole machine (Sys busy).
- ``check`` / ``check_result``: verify's ping and TCP stream through the half.
- ``shape``: a tbf on the interface towards the other host (:mod:`tunbench.cell.shaping`);
  ``probe`` a qdisc only.
- ``stop``: tear down and exit.

Everything it starts is recorded in the host's run state under its run lock (so
``tunbench clean`` on the host finds it after a kill -9) and torn down in reverse order
when stdin closes (the SSH channel went away), when ``--deadline`` passes, on ``stop``, on
SIGINT/SIGTERM, and on any error. It never waits for a signal through SSH.
"""

from __future__ import annotations

import contextlib
import functools
import os
import secrets
import select
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, BinaryIO

from pyroute2 import IPRoute

from tunbench import __version__
from tunbench.cell import hostinfo, metadata, shaping
from tunbench.cell.teardown import Teardown, stop_at_teardown
from tunbench.cell.topology import Topology
from tunbench.errors import AgentError, TunbenchError
from tunbench.load import iperf3 as iperf
from tunbench.load import ping, stream
from tunbench.peers.base import HALVES
from tunbench.peers.launcher import device_present
from tunbench.peers.registry import LAUNCHERS
from tunbench.system import agentwire as wire
from tunbench.system.procs import Child, spawn, wait_until
from tunbench.system.runstate import current as current_state
from tunbench.system.runstate import locked_run
from tunbench.system.sampler import Sampler, quiet_check, samples_to_json
from tunbench.system.signals import checkpoint, deferred

TICK_S = 0.2  # how often the loop looks at the deadline and its children
FINALS = ("tun11", "tun22")
READY_LIMIT_S = 15.0  # longest wait_ready the agent grants


def _say(text: str) -> None:
    print(f"tunbench agent: {text}", file=sys.stderr, flush=True)


@dataclass
class Half:
    """What ``start`` set up on this host."""

    role: str  # "a" or "b"
    kind: str  # "peer" or "link"
    ns: str | None = None  # the iperf3 end's namespace (None: the link row, here)
    device: str | None = None  # the half's device before it moves (tb- name)
    launcher: Child | None = None
    told: bool = False  # its exit was logged


@dataclass
class Agent:
    """The state of one agent session: what it started, and the stack that removes it."""

    stack: Teardown
    run_id: str = field(default_factory=lambda: secrets.token_hex(3))
    workdir: Path = Path(".")
    half: Half | None = None
    topo: Topology | None = None
    server: Child | None = None
    client: Child | None = None
    client_out: Path | None = None
    samplers: dict[str, Sampler] = field(default_factory=dict)
    checks: dict[str, tuple[Child, Path]] = field(default_factory=dict)
    ips: tuple[str, str, int] = ("10.0.1.1", "10.0.2.1", 1500)
    done: bool = False

    # -- life --------------------------------------------------------------------------

    def open(self) -> None:
        state = current_state()
        self.workdir = Path(tempfile.mkdtemp(prefix=f"tb-{self.run_id}-agent-"))
        if state:
            state.add_file(str(self.workdir))
            self.stack.callback(state.drop_file, str(self.workdir))
        self.stack.callback(shutil.rmtree, self.workdir, ignore_errors=True)
        self.topo = Topology(self.run_id, on_change=state.set_namespaces if state else None)
        self.stack.callback(self.topo.remove)

    def spawn(self, name: str, argv: list[str], ns: str | None) -> Child:
        return spawn(
            name,
            argv,
            netns=ns,
            log_path=self.workdir / f"{name}.log",
            parent_death_signal=signal.SIGTERM,
            register=functools.partial(stop_at_teardown, self.stack),
        )

    def handle(self, msg: dict[str, Any]) -> dict[str, Any]:
        """One request's reply (a failure reply for a TunbenchError or bad arguments)."""
        raw_id = msg.get("id")
        msg_id = raw_id if isinstance(raw_id, int) and not isinstance(raw_id, bool) else None
        try:
            msg_id, op = wire.check_request(msg)
            args = {k: v for k, v in msg.items() if k not in ("id", "op")}
            results = getattr(self, f"op_{op}")(**args)
            return wire.reply(msg_id, **results)
        except TunbenchError as exc:
            return wire.failure(msg_id, str(exc), type(exc).__name__)
        except (TypeError, ValueError, KeyError, OSError) as exc:  # bad arguments, netlink
            return wire.failure(msg_id, f"{type(exc).__name__}: {exc}")

    def watch(self) -> None:
        """Between requests: a half whose launcher died stays dead (the next request says
        so); nothing to do here but notice it in the log."""
        h = self.half
        if h and h.launcher and h.launcher.poll() is not None and not h.told:
            _say(f"half {h.role} exited with status {h.launcher.poll()}")
            h.told = True

    # -- ops ---------------------------------------------------------------------------

    def op_hello(self) -> dict[str, Any]:
        meta = metadata.collect()
        return {
            "protocol": wire.PROTOCOL,
            "version": __version__,
            "run_id": self.run_id,
            "pid": os.getpid(),
            "host": hostinfo.collect(meta),
            "clock": self._clock(),
        }

    @staticmethod
    def _clock() -> dict[str, float]:
        return {"wall": time.time(), "mono": time.monotonic()}

    def op_start(
        self,
        role: str,
        kind: str,
        spec: str = "",
        remote: str = "",
        secret: str = "",
        port: int = 0,
        ip1: str = "10.0.1.1",
        ip2: str = "10.0.2.1",
        mtu: int = 1500,
    ) -> dict[str, Any]:
        if self.half is not None:
            raise AgentError("a half is started already")
        if role not in HALVES or kind not in ("peer", "link"):
            raise AgentError(f"bad role {role!r} or kind {kind!r}")
        if kind == "link":
            self.half = Half(role, kind)
            return {"started": None}
        words = spec.split()
        peer = LAUNCHERS.get(words[0]) if words else None
        if peer is None or not peer.halves:
            raise AgentError(f"{spec!r} is not a peer row with a half mode")
        assert self.topo is not None
        ns = f"{self.topo.prefix}-{role}"
        self.topo.create(ns)
        device = f"{self.topo.prefix}-t{HALVES.index(role) + 1}"
        argv = [
            *peer.argv()[:3],
            *words[1:],
            *("--half", role, "--remote", remote, "--secret", secret, "--port", str(port)),
            *("--iface1", f"{self.topo.prefix}-t1", "--iface2", f"{self.topo.prefix}-t2"),
            *("--ip1", ip1, "--ip2", ip2, "--mtu", str(mtu)),
            *("--stats", str(self.workdir / "half-stats.json"), "--workdir", str(self.workdir)),
        ]
        launcher = self.spawn(f"half-{role}", argv, None)
        self.half = Half(role, kind, ns, device, launcher)
        self.ips = (ip1, ip2, mtu)
        return {"started": launcher.pid, "argv": argv}

    def _launcher_dead(self) -> AgentError | None:
        h = self.half
        if h is None or h.launcher is None or h.launcher.poll() is None:
            return None
        tail = h.launcher.stderr_tail(2).replace("\n", " | ") or "no output"
        return AgentError(f"half {h.role} exited with status {h.launcher.poll()}: {tail}")

    def op_wait_ready(self, seconds: float = 10.0) -> dict[str, Any]:
        h = self.half
        if h is None:
            raise AgentError("nothing started")
        if h.kind == "link":
            return {"device": None}
        assert h.device and h.ns and h.launcher
        launcher, device = h.launcher, h.device
        ok = wait_until(
            lambda: launcher.poll() is not None or device_present(device),
            min(seconds, READY_LIMIT_S),
        )
        dead = self._launcher_dead()
        if dead:
            raise dead
        if not ok:
            raise AgentError(f"half {h.role} did not create its device within {seconds:.0f}s")
        state = current_state()
        for proc in launcher.record_tree():
            if state:
                state.add_process(proc.pid, f"{launcher.name} tree")
        i = HALVES.index(h.role)
        ip1, ip2, mtu = self.ips
        mine, theirs = (ip1, ip2) if i == 0 else (ip2, ip1)
        with IPRoute() as ipr:
            idx = ipr.link_lookup(ifname=device)[0]
            ipr.link("set", index=idx, net_ns_fd=h.ns)
        with IPRoute(netns=h.ns) as ipr:
            idx = ipr.link_lookup(ifname=device)[0]
            ipr.link("set", index=idx, ifname=FINALS[i])
        Topology.configure(h.ns, FINALS[i], mine, theirs, mtu)
        return {"device": FINALS[i], "namespace": h.ns, "pids": sorted(launcher.tree)}

    def op_serve(self, bind: str, port: int = iperf.DEFAULT_PORT) -> dict[str, Any]:
        h = self.half
        ns = h.ns if h else None
        server = self.spawn("iperf3-server", iperf.server_argv(bind, port), ns)
        if (
            not wait_until(
                lambda: server.poll() is not None or iperf.listening(server.pid, port), 5.0
            )
            or server.poll() is not None
        ):
            tail = server.stderr_tail(2) or "no output"
            raise AgentError(f"iperf3 server did not listen: {tail}")
        self.server = server
        return {"pid": server.pid}

    def op_client(self, server: str, **opts: Any) -> dict[str, Any]:
        known = {f.name for f in fields(iperf.ClientOptions)}
        copts = iperf.ClientOptions(**{k: v for k, v in opts.items() if k in known})
        self.client_out = self.workdir / "iperf3-client.json"
        argv = iperf.client_argv(server, copts, self.client_out)
        self.client = self.spawn("iperf3-client", argv, self.half.ns if self.half else None)
        return {"pid": self.client.pid, "clock": self._clock()}

    def op_poll(self) -> dict[str, Any]:
        dead = self._launcher_dead()
        if dead:
            raise dead
        if self.client is None or self.client_out is None:
            return {"done": None}
        return _outcome(self.client, self.client_out)

    def op_check(
        self, kind: str, target: str, port: int = 5301, size: int = 4 << 20
    ) -> dict[str, Any]:
        """Start one of verify's checks through the half: ``stream-recv`` (the TCP stream's
        receiver, ready when this returns), ``stream-send`` (``size`` random bytes), or
        ``ping`` (10 echoes); :meth:`op_check_result` tells how it ended."""
        ns = self.half.ns if self.half else None
        out = self.workdir / f"check-{kind}.json"
        if kind == "stream-recv":
            argv = stream.receiver_argv(target, port, out, None, 0)
        elif kind == "stream-send":
            argv = stream.sender_argv(target, port, out, None, size, 0, 1200, False)
        elif kind == "ping":
            argv = ping.argv(target, ping.CHECK_COUNT, ping.CHECK_INTERVAL, out)
        else:
            raise AgentError(f"check: unknown kind {kind!r}")
        child = self.spawn(f"check-{kind}", argv, ns)
        self.checks[kind] = (child, out)
        if kind == "stream-recv":
            ready = out.with_name(out.name + ".ready")
            if not wait_until(lambda: ready.exists() or child.poll() is not None, 5.0):
                raise AgentError(f"stream receiver did not start: {child.stderr_tail(2)}")
        return {"pid": child.pid}

    def op_check_result(self, kind: str) -> dict[str, Any]:
        child, out = self.checks[kind]
        return _outcome(child, out)

    def op_sample(
        self, action: str, background_seconds: float = 1.0, background_limit: float = 15.0
    ) -> dict[str, Any]:
        h = self.half
        if action == "start":
            bg = quiet_check(background_limit, 0.0, background_seconds, watch=checkpoint)
            pid = h.launcher.pid if h and h.launcher else None
            self.samplers = {
                "half": Sampler(pid, include_root=False).start(),
            }
            return {"background": asdict(bg)}
        if action == "stop":
            got = {name: samples_to_json(s.stop()) for name, s in self.samplers.items()}
            errors = {name: s.error for name, s in self.samplers.items() if s.error}
            self.samplers = {}
            return {"samples": got, "errors": errors, "clock": self._clock()}
        raise AgentError(f"sample: unknown action {action!r}")

    def op_shape(self, remote: str, rate_bps: float = 0.0, probe: str = "") -> dict[str, Any]:
        if probe:
            shaping.probe(probe)
            return {"probed": probe}
        dev = shaping.route_device(remote)
        state = current_state()
        with deferred():  # recorded before it exists: clean removes it after a kill -9
            if state:
                state.add_qdisc(dev)
                self.stack.callback(state.drop_qdisc, dev)
            self.stack.callback(shaping.tbf(dev, rate_bps))
        return {"device": dev, "rate_bps": rate_bps}

    def op_stop(self) -> dict[str, Any]:
        self.done = True
        return {}


def _outcome(child: Child, out: Path) -> dict[str, Any]:
    """How a child that writes ``out`` is doing: not done, or its status and that file."""
    if child.poll() is None:
        return {"done": False}
    text = out.read_text() if out.exists() else None
    return {"done": True, "status": child.poll(), "result": text, "tail": child.stderr_tail(3)}


def serve(
    stdin: BinaryIO, stdout: BinaryIO, deadline_s: float, state_dir: Path | None = None
) -> int:
    """The agent's life: requests from ``stdin`` until EOF, ``stop`` or the deadline;
    everything torn down on the way out. 0 after a clean ``stop``, 1 otherwise."""
    fd = stdin.fileno()
    buf = wire.LineBuffer()
    until = time.monotonic() + deadline_s
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # a closed channel is read as EOF instead
    how = "stdin closed"
    with locked_run(state_dir), deferred(), Teardown() as stack:
        agent = Agent(stack)
        agent.open()
        while not agent.done:
            checkpoint()
            left = until - time.monotonic()
            if left <= 0:
                how = f"deadline of {deadline_s:.0f}s passed"
                break
            ready, _, _ = select.select([fd], [], [], min(TICK_S, left))
            agent.watch()
            if not ready:
                continue
            data = os.read(fd, 65536)
            if not data:
                break
            try:
                lines = buf.feed(data)
            except AgentError as exc:
                how = str(exc)
                break
            for line in lines:
                try:
                    msg = wire.decode(line)
                except AgentError as exc:
                    rep = wire.failure(None, str(exc))
                else:
                    rep = agent.handle(msg)
                try:
                    stdout.write(wire.encode(rep))
                    stdout.flush()
                except (BrokenPipeError, OSError):
                    how = "stdout closed"
                    agent.done = True
                    break
                if agent.done:
                    break
        if agent.done and how == "stdin closed":
            how = "stopped on request"
        _say(f"{how}: tearing down")
        clean = how == "stopped on request"
    with contextlib.suppress(OSError):
        stdout.flush()
    return 0 if clean else 1
