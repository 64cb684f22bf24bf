"""One benchmark cell: bring up the topology, start the forwarder, measure, tear down.

:meth:`Cell.up` brings the cell up and yields; teardown runs in reverse order of creation
through an ExitStack on success, error, Ctrl-C and SIGTERM: the traffic peers (iperf3,
ping, verify's streams) and the profiler, the forwarder (stop ladder, reaped), namespaces,
the cell's temporary directory. From bring-up to the end of teardown SIGINT/SIGTERM are
acted on only at checkpoints (each phase, each wait; :mod:`tunbench.system.signals`), never
between creating something and registering its removal, and not at all while teardown
runs (they are raised right after it), so a second Ctrl-C cannot leave half a topology
behind. What runs while the cell is up is a measurement or a profiling pass
(:mod:`tunbench.cell.runs`) or a correctness check (:mod:`tunbench.plan.verify`). What a
result file holds is :mod:`tunbench.cell.record`'s and :mod:`tunbench.analysis.results`'
business.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

from forwarders import quota
from forwarders.counters import SNAPSHOT_SIGNAL
from tunbench.cell import diagnose, perf, placement
from tunbench.cell.options import CellOptions
from tunbench.cell.teardown import Teardown, stop_at_teardown
from tunbench.cell.topology import Topology, disable_offloads, steer_receive, write_sysctl
from tunbench.cell.variants import CellSpec
from tunbench.errors import ForwarderError, MeasurementError, TopologyError
from tunbench.load import iperf3 as iperf
from tunbench.load import ping
from tunbench.load.measurement import Measurement
from tunbench.system.procs import Child, reap_adopted, spawn, stop, wait_until
from tunbench.system.runstate import current as current_state
from tunbench.system.sampler import Sampler, quiet_check, summarize
from tunbench.system.signals import checkpoint, deferred

Phase = Callable[[str], None]
# The load generators are sampled less often than the forwarder: they only feed bound-by's
# window averages, and every sampler costs CPU on the machine it measures.
LOAD_INTERVAL = 0.2
CELL_FAILURES = (ForwarderError, MeasurementError, TopologyError)
PING_INTERVAL_S = 0.1
SNAPSHOT_WAIT_S = 5.0  # seconds a forwarder gets to write its counters on SNAPSHOT_SIGNAL
PING_MARGIN_S = 1.5  # the probe starts before iperf3's test does, and must outlast it


class Cell:
    """One cell's topology and processes while it is up."""

    def __init__(self, cell: CellSpec, opts: CellOptions, phase: Phase | None = None) -> None:
        self.cell = cell
        self.opts = opts
        self.run_id = secrets.token_hex(3)
        self.topo = Topology(self.run_id)
        self._show = phase or (lambda _p: None)
        self.forwarder: Child | None = None
        self.workdir = Path(".")
        self.stats_path: Path | None = None
        self.command: list[str] = []
        self.stack = Teardown()
        self.receive_cpus = placement.receive_cpus(cell, opts)

    def phase(self, name: str) -> None:
        """Announce a phase; also where a swallowed signal is raised again."""
        checkpoint()
        self._show(name)

    def spawn(
        self, name: str, argv: Sequence[str], ns: str | None, cpus: Sequence[int] = ()
    ) -> Child:
        """Start a child that is recorded in the run state and stopped at teardown.

        Both happen before any signal is acted on (:func:`tunbench.system.procs.spawn` calls
        :meth:`_register` inside a deferred region), so no child ever exists unrecorded.
        """
        return spawn(
            name,
            argv,
            netns=ns,
            log_path=self.workdir / f"{name}.log",
            cpus=cpus or None,
            register=self._register,
        )

    def _register(self, child: Child) -> None:
        """Teardown stops ``child`` (:func:`stop_at_teardown`); :meth:`record_tree` adds
        the tree's members to the run state."""
        stop_at_teardown(self.stack, child)

    def record_tree(self, child: Child) -> None:
        """Record the processes ``child`` has started so far (a launcher's daemons) in the
        run state too, by PID and start time: after a ``kill -9`` of the harness, ``clean``
        stops them even if they left the child's process group."""
        state = current_state()
        for proc in child.record_tree():
            if state:
                state.add_process(proc.pid, f"{child.name} tree")

    @contextlib.contextmanager
    def up(self) -> Iterator[Cell]:
        """Namespaces, then the forwarder (or the baseline's links); torn down on exit."""
        state = current_state()
        self.topo.on_change = state.set_namespaces if state else None
        # Deferred from here to the end of teardown: a signal is acted on only at a
        # checkpoint (each phase, each wait), never between creating something and
        # registering its removal.
        with deferred(), self.stack:
            self.workdir = Path(tempfile.mkdtemp(prefix=f"tb-{self.run_id}-"))
            if state:
                state.add_file(str(self.workdir))
                self.stack.callback(state.drop_file, str(self.workdir))
            self.stack.callback(reap_adopted)  # after the children and namespaces are gone
            self.stack.callback(shutil.rmtree, self.workdir, ignore_errors=True)
            self.stack.callback(self._remove_namespaces)
            self.phase("namespaces")
            self.topo.create(self.topo.ns_fwd, self.topo.ns_a, self.topo.ns_b)
            if self.cell.kind == "baseline":
                self._baseline()
            else:
                self._start_forwarder()
            yield self
            self.phase("teardown")

    def _remove_namespaces(self) -> None:
        failed = self.topo.remove()
        if failed:
            raise TopologyError(f"could not remove namespaces: {', '.join(failed)}")

    def _start_forwarder(self) -> None:
        o = self.opts
        self.stats_path = self.workdir / "forwarder-stats.json"
        self.command = self.cell.forwarder_argv(
            o.iface1, o.ip1, o.iface2, o.ip2, o.mtu, self.stats_path
        )
        self.phase("forwarder start")
        # after the forwarder is stopped (callbacks run last-in first-out): its
        # --cpu-quota cgroup, which it cannot remove itself
        self.stack.callback(self._remove_quota)
        fwd = self.spawn("forwarder", self.command, self.topo.ns_fwd, o.fwd_cpus)
        self.forwarder = fwd
        want = {o.iface1, o.iface2}

        def ready() -> bool:
            return fwd.poll() is not None or want <= set(self.topo.links(self.topo.ns_fwd))

        wait_until(ready, o.ready_timeout)
        self.record_tree(fwd)  # a launcher has started its daemons by now
        self.check_forwarder("before creating its devices")
        if not want <= set(self.topo.links(self.topo.ns_fwd)):
            raise ForwarderError(
                f"forwarder did not create {o.iface1} and {o.iface2} within {o.ready_timeout:.0f}s",
                None,
                fwd.stderr_tail(),
            )
        self.record_tree(fwd)  # and whatever it started while creating them
        self.phase("topology")
        t = self.topo
        t.move_and_configure(o.iface1, t.ns_fwd, t.ns_a, o.ip1, o.ip2, o.mtu)
        t.move_and_configure(o.iface2, t.ns_fwd, t.ns_b, o.ip2, o.ip1, o.mtu)
        for ns, ifname in ((t.ns_a, o.iface1), (t.ns_b, o.iface2)) if self.receive_cpus else ():
            steer_receive(ns, ifname, self.receive_cpus)

    def _remove_quota(self) -> None:
        if self.forwarder is None:
            return
        try:
            quota.remove_of(self.forwarder.pid)
        except OSError as exc:
            raise TopologyError(f"could not remove the forwarder's quota cgroup: {exc}") from exc

    def check_forwarder(self, when: str) -> None:
        """ForwarderError (with its status and last output lines) if the forwarder exited."""
        fwd = self.forwarder
        if fwd is not None and fwd.poll() is not None:
            raise ForwarderError(
                f"forwarder exited with status {fwd.poll()} {when}", fwd.poll(), fwd.stderr_tail()
            )

    def _baseline(self) -> None:
        o, t = self.opts, self.topo
        p = t.prefix
        self.phase("topology")
        if self.cell.name == "kernel-veth":
            t.veth(t.ns_a, f"{p}-va", t.ns_b, f"{p}-vb")
            t.configure(t.ns_a, f"{p}-va", o.ip1, o.ip2, o.mtu)
            t.configure(t.ns_b, f"{p}-vb", o.ip2, o.ip1, o.mtu)
            return
        gw_a, gw_b = _router_ip(o.ip1), _router_ip(o.ip2)
        t.veth(t.ns_a, f"{p}-a0", t.ns_fwd, f"{p}-a1")
        t.veth(t.ns_fwd, f"{p}-b1", t.ns_b, f"{p}-b0")
        t.configure(t.ns_fwd, f"{p}-a1", gw_a, None, o.mtu)
        t.configure(t.ns_fwd, f"{p}-b1", gw_b, None, o.mtu)
        t.configure(t.ns_a, f"{p}-a0", o.ip1, o.ip2, o.mtu, gateway=gw_a)
        t.configure(t.ns_b, f"{p}-b0", o.ip2, o.ip1, o.mtu, gateway=gw_b)
        write_sysctl(t.ns_fwd, "net.ipv4.ip_forward", "1")
        if "--no-offload" in self.cell.args:
            for ns, dev in ((t.ns_a, "a0"), (t.ns_fwd, "a1"), (t.ns_fwd, "b1"), (t.ns_b, "b0")):
                disable_offloads(ns, f"{p}-{dev}")

    def wait_child(self, child: Child, deadline: float, what: str) -> None:
        """Wait for ``child`` to exit, watching the forwarder; kill it past ``deadline``."""
        t0 = time.monotonic()
        while child.poll() is None:
            checkpoint()
            self.check_forwarder(f"while {what} ran")
            if time.monotonic() - t0 > deadline:
                stop(child)
                raise MeasurementError(f"{what} hung: no result within {deadline:.0f}s (killed)")
            with contextlib.suppress(Exception):
                child.popen.wait(timeout=0.1)
        self.check_forwarder(f"while {what} ran")

    def measure(
        self, profile_svg: Path | None = None, native: bool = False, diag: Path | None = None
    ) -> Measurement:
        """One iperf3 run through the cell, sampled.

        With ``profile_svg``, under a profiler that draws it: py-spy on a Python forwarder
        (and perf beside it, drawn to :func:`perf_svg`), perf on a native one. With
        ``diag``, under ``perf stat`` counting into that file (:mod:`tunbench.cell.diagnose`).
        Neither pass checks the machine's background first: it is not measured. Workloads
        other than a stream run in :mod:`tunbench.load.workloads`.
        """
        if self.opts.workload.kind != "stream":
            from tunbench.load import workloads

            return workloads.measure(self, profile_svg, native)
        o, t = self.opts, self.topo
        # --iperf-procs per-stream: one pair per stream on its own port (iperf3 < 3.16 runs
        # every stream of one process on one thread)
        pairs = o.iperf.parallel if o.workload.iperf_procs == "per-stream" else 1
        copts = replace(o.iperf, parallel=1) if pairs > 1 else o.iperf
        names = ["", *(f"-{i}" for i in range(1, pairs))]
        self.phase("iperf3 server")
        servers = []
        for i, suffix in enumerate(names):
            port = o.iperf.port + i
            server = self.spawn(
                f"iperf3-server{suffix}", iperf.server_argv(o.ip2, port), t.ns_b, o.load_cpus
            )
            if not wait_until(partial(_listening, server, port), 5.0) or server.poll() is not None:
                raise MeasurementError(
                    f"iperf3 server did not start listening: {server.stderr_tail(2) or 'no output'}"
                )
            servers.append(server)
        profilers = self.start_profiler(profile_svg, native) if profile_svg else []
        if diag is not None:
            profilers.append(self.start_counting(diag))
        background = None
        if profile_svg is None and diag is None:  # a measured run: is the machine quiet?
            self.phase("background check")
            background = quiet_check(
                o.background_limit,
                o.background_wait,
                o.background_seconds,
                watch=self.watch_background,
            )
        sampler = self.forwarder_sampler().start()
        load = {  # for bound-by
            f"iperf3-server{n}": Sampler(s.pid, LOAD_INTERVAL).start()
            for n, s in zip(names, servers, strict=True)
        }
        self.phase("measure")
        outs, clients = [], []
        for i, suffix in enumerate(names):
            out = self.workdir / f"iperf3-client{suffix}.json"
            argv = iperf.client_argv(o.ip2, replace(copts, port=o.iperf.port + i), out)
            client = self.spawn(f"iperf3-client{suffix}", argv, t.ns_a, o.load_cpus)
            load[f"iperf3-client{suffix}"] = Sampler(client.pid, LOAD_INTERVAL).start()
            outs.append(out)
            clients.append(client)
        pinger = None
        if o.latency:  # outlasts the test: only the probes inside its window count
            count = int((o.iperf.duration + o.iperf.omit + PING_MARGIN_S) / PING_INTERVAL_S)
            pinger = self.spawn(
                "ping",
                ping.argv(o.ip2, count, PING_INTERVAL_S, self.workdir / "ping.json"),
                t.ns_a,
                o.load_cpus,
            )
        try:
            for client in clients:
                self.wait_child(client, o.iperf.duration + o.iperf.omit + o.grace, "iperf3 client")
        finally:
            samples = sampler.stop()
            load_samples = {name: s.stop() for name, s in load.items()}
        tun = self.tun_packets()
        for out, client in zip(outs, clients, strict=True):
            if not out.exists():
                raise MeasurementError(f"iperf3 client failed: {client.stderr_tail(3)}")
        res = iperf.combine([iperf.parse(out) for out in outs])
        win = iperf.window(res)
        if win is None:  # no interval timeline: the last `duration` seconds before it ended
            end = res.mono_end if res.mono_end is not None else time.monotonic()
            win = iperf.Window(end - o.iperf.duration, end, "end")
        m: Measurement = {
            "iperf": res,
            "samples": samples,
            "window": {"start": win.start, "end": win.end, "anchor": win.anchor},
            "summary": summarize(samples, win.start, win.end, process=self.forwarder is not None),
            "sampler_error": sampler.error,
            "load_samples": load_samples,
            "sampler_cpu_pct": sampler.own_cpu_pct,
            "background": background,
            "interval_bps": iperf.receiver_interval_bps(res),
            "tun_packets": tun,
        }
        if pinger is not None:
            self.wait_child(pinger, PING_MARGIN_S + 5.0, "ping")
            m["ping"] = ping.parse(self.workdir / "ping.json").inside(win.start, win.end)
        self.stop_profilers(profilers, profile_svg)
        return m

    def tun_packets(self) -> dict[str, dict[str, int]] | None:
        """The TUN devices' own packet counters now (``{"tun11": {"rx", "tx"}, ...}``: rx
        is what the forwarder wrote into a device); None for a baseline or on failure."""
        if self.forwarder is None:
            return None
        o, t = self.opts, self.topo
        try:
            return {
                o.iface1: t.link_packets(t.ns_a, o.iface1),
                o.iface2: t.link_packets(t.ns_b, o.iface2),
            }
        except TopologyError:
            return None

    def start_counting(self, out: Path) -> Child:
        """``perf stat`` on the forwarder's processes (a peer's daemons without their
        launcher) into ``out``, for the diagnostic pass."""
        perf_bin = perf.available()
        if perf_bin is None or self.forwarder is None:
            raise MeasurementError("perf is not installed (Debian package linux-perf)")
        launcher = self.cell.peer is not None and self.cell.peer.launcher
        pids = [*([] if launcher else [self.forwarder.pid]), *self._live_tree()]
        hw = diagnose.hardware_counters(perf_bin)
        return self.spawn("perf-stat", diagnose.argv(pids, out, perf_bin, hw), None)

    @property
    def has_forwarder(self) -> bool:
        """Whether a forwarder process runs (False for the kernel baselines)."""
        return self.forwarder is not None

    def forwarder_sampler(self) -> Sampler:
        """A sampler of the forwarder (None: a baseline, the machine only); a peer launcher's
        own process is left out, only the daemons it started are the forwarder."""
        launcher = self.cell.peer is not None and self.cell.peer.launcher
        return Sampler(self.forwarder.pid if self.forwarder else None, include_root=not launcher)

    def stop_profilers(self, profilers: Sequence[Child], svg: Path | None) -> None:
        """Stop what :meth:`start_profiler` started (py-spy writes ``svg`` as it stops),
        then draw perf's stacks to :func:`perf_svg`."""
        for profiler in profilers:
            stop(profiler)
        if svg is not None and any(p.name == "perf" for p in profilers):
            self._draw_perf(perf_svg(svg, self.cell.kind))

    def watch_background(self) -> None:
        checkpoint()
        self.check_forwarder("while the machine's background load was measured")

    def start_profiler(self, svg: Path, native: bool) -> list[Child]:
        """py-spy on a Python forwarder, with perf on the same process when it is installed
        (py-spy sees where the Python code spends time, perf where the kernel does: for a
        TUN forwarder most of it); perf alone on a native one."""
        assert self.forwarder is not None
        pid = self.forwarder.pid
        perf_bin = perf.available()
        data = self.workdir / "perf.data"
        if self.cell.kind == "python":
            from tunbench.cell.profile import py_spy_argv

            children = [self.spawn("py-spy", py_spy_argv(pid, svg, native), None)]
            if perf_bin is not None:
                children.append(self.spawn("perf", perf.argv([pid], data, perf_bin), None))
            return children
        if perf_bin is None:
            raise MeasurementError("perf is not installed (Debian package linux-perf)")
        return [self.spawn("perf", perf.argv([pid, *self._live_tree()], data, perf_bin), None)]

    def _live_tree(self) -> list[int]:
        """The forwarder's descendants running now: the tree is looked at again (vtund's
        server forks its session as the client connects) and the ones that ended are left
        out (``perf -p`` with a PID that is gone records nothing at all)."""
        assert self.forwarder is not None
        self.record_tree(self.forwarder)
        return [pid for pid, proc in self.forwarder.tree.items() if proc.is_running()]

    def _draw_perf(self, svg: Path) -> None:
        """Draw perf's stacks; beside py-spy a perf failure loses only the second view."""
        from tunbench.report import flamesvg

        perf_bin = perf.available() or "perf"
        try:
            stacks = perf.parse(self.workdir / "perf.data", perf_bin)
        except MeasurementError:
            if self.cell.kind == "python":
                return
            raise
        if stacks:
            flamesvg.write(stacks, svg, f"{self.cell.spec} (perf, {perf.RATE_HZ} Hz)")

    def snapshot_stats(self) -> dict[str, Any]:
        """The counters of a built-in forwarder as they are now, the forwarder going on: it
        writes them to its stats file on :data:`SNAPSHOT_SIGNAL` (``run --verify`` takes
        the measured run's counters so, before the checks add their traffic)."""
        assert self.forwarder is not None and self.stats_path is not None
        assert self.cell.kind == "python", "only the built-in forwarders take the signal"
        self.stats_path.unlink(missing_ok=True)
        os.kill(self.forwarder.pid, SNAPSHOT_SIGNAL)
        path, fwd = self.stats_path, self.forwarder
        if not wait_until(lambda: path.exists() or fwd.poll() is not None, SNAPSHOT_WAIT_S):
            raise MeasurementError(f"forwarder wrote no counters within {SNAPSHOT_WAIT_S:.0f}s")
        self.check_forwarder("while its counters were read")
        doc: dict[str, Any] = json.loads(path.read_text())
        return doc

    def forwarder_stats(self) -> dict[str, Any] | None:
        """Stop the forwarder (it writes its counters on SIGINT) and read the counters."""
        if self.forwarder is None or self.stats_path is None:
            return None
        stop(self.forwarder)
        try:
            doc: dict[str, Any] = json.loads(self.stats_path.read_text())
        except (OSError, ValueError):
            return None
        return doc


def perf_svg(svg: Path, kind: str) -> Path:
    """Where perf's flamegraph goes: ``svg`` itself for a native forwarder, ``<name>-perf.svg``
    beside py-spy's for a Python one."""
    return svg if kind != "python" else svg.with_name(f"{svg.stem}-perf.svg")


def _listening(server: Child, port: int) -> bool:
    """Done waiting: ``server`` exited, or it listens on ``port``."""
    return server.poll() is not None or iperf.listening(server.pid, port)


def _router_ip(ip: str) -> str:
    return ".".join([*ip.split(".")[:3], "254"])
