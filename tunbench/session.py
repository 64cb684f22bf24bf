"""One benchmark cell: bring up the topology, start the forwarder, measure, tear down.

Teardown runs in reverse order of creation through an ExitStack on success, error,
Ctrl-C and SIGTERM: iperf3 client, server, forwarder (stop ladder, reaped), namespaces,
the cell's temporary directory. SIGINT/SIGTERM are held back while teardown runs and
delivered right after, so a second Ctrl-C cannot leave half a topology behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shlex
import shutil
import signal
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from tunbench import metadata, results
from tunbench.errors import (
    ForwarderError,
    MeasurementError,
    TopologyError,
)
from tunbench.procs import Child, spawn, stop, wait_until
from tunbench.runners import iperf3 as iperf
from tunbench.runstate import current as current_state
from tunbench.sampler import Sampler, samples_to_json, summarize
from tunbench.topology import Topology, write_sysctl
from tunbench.variants import CellSpec, describe

Phase = Callable[[str], None]


@dataclass(frozen=True)
class CellOptions:
    """Everything about a cell except which forwarder it runs."""

    results_dir: Path = Path("results")
    iperf: iperf.ClientOptions = field(default_factory=iperf.ClientOptions)
    mtu: int = 1500
    iface1: str = "tun11"
    ip1: str = "10.0.1.1"
    iface2: str = "tun22"
    ip2: str = "10.0.2.1"
    ready_timeout: float = 10.0
    grace: float = 20.0  # seconds past duration+omit before iperf3 counts as hung


class Teardown(contextlib.ExitStack):
    """An ExitStack that holds SIGINT/SIGTERM back while it unwinds.

    Only the process that built it tears down: a forked copy (pyroute2 forks helpers)
    that somehow unwinds must not remove the parent's namespaces.
    """

    def __init__(self) -> None:
        super().__init__()
        self.owner = os.getpid()

    def __exit__(
        self,
        et: type[BaseException] | None,
        ev: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        if os.getpid() != self.owner:
            os._exit(70)
        sigs = {signal.SIGINT, signal.SIGTERM}
        old = signal.pthread_sigmask(signal.SIG_BLOCK, sigs)
        try:
            return bool(super().__exit__(et, ev, tb))
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)


class Cell:
    """State of one cell while it runs; :func:`run_cell` is the public entry."""

    def __init__(self, cell: CellSpec, opts: CellOptions, phase: Phase | None) -> None:
        self.cell = cell
        self.opts = opts
        self.run_id = secrets.token_hex(3)
        self.topo = Topology(self.run_id)
        self.phase = phase or (lambda _p: None)
        self.forwarder: Child | None = None
        self.workdir = Path(".")
        self.stats_path: Path | None = None
        self.command: list[str] = []

    # -- registration helpers ------------------------------------------------
    def _spawn(self, stack: Teardown, name: str, argv: list[str], ns: str) -> Child:
        child = spawn(name, argv, netns=ns, log_path=self.workdir / f"{name}.log")
        state = current_state()
        if state:
            state.add_process(child.pid, name)

        def _stop() -> None:
            stop(child)
            if state:
                state.drop_process(child.pid)

        stack.callback(_stop)
        return child

    # -- phases ----------------------------------------------------------------
    def _start_forwarder(self, stack: Teardown) -> None:
        o = self.opts
        self.stats_path = self.workdir / "forwarder-stats.json"
        self.command = self.cell.forwarder_argv(
            o.iface1, o.ip1, o.iface2, o.ip2, o.mtu, self.stats_path
        )
        self.phase("forwarder start")
        fwd = self._spawn(stack, "forwarder", self.command, self.topo.ns_fwd)
        self.forwarder = fwd
        want = {o.iface1, o.iface2}

        def ready() -> bool:
            if fwd.poll() is not None:
                return True
            return want <= set(self.topo.links(self.topo.ns_fwd))

        wait_until(ready, o.ready_timeout, interval=0.02)
        self._check_forwarder("before creating its devices")
        if not want <= set(self.topo.links(self.topo.ns_fwd)):
            raise ForwarderError(
                f"forwarder did not create {o.iface1} and {o.iface2} within {o.ready_timeout:.0f}s",
                None,
                fwd.stderr_tail(),
            )
        self.phase("topology")
        self.topo.move_and_configure(
            o.iface1, self.topo.ns_fwd, self.topo.ns_a, o.ip1, o.ip2, o.mtu
        )
        self.topo.move_and_configure(
            o.iface2, self.topo.ns_fwd, self.topo.ns_b, o.ip2, o.ip1, o.mtu
        )

    def _check_forwarder(self, when: str) -> None:
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

    def _measure(self, stack: Teardown) -> dict[str, Any]:
        o, t = self.opts, self.topo
        self.phase("iperf3 server")
        server = self._spawn(stack, "iperf3-server", _server_argv(o, self.workdir), t.ns_b)
        if (
            not wait_until(lambda: server.poll() is not None or iperf.listening(server.pid), 5.0)
            or server.poll() is not None
        ):
            raise MeasurementError(
                f"iperf3 server did not start listening: {server.stderr_tail(2) or 'no output'}"
            )
        sampler = Sampler(self.forwarder.pid if self.forwarder else None).start()
        self.phase("measure")
        out = self.workdir / "iperf3-client.json"
        client = self._spawn(stack, "iperf3-client", iperf.client_argv(o.ip2, o.iperf, out), t.ns_a)
        deadline = o.iperf.duration + o.iperf.omit + o.grace
        t0 = time.monotonic()
        while client.poll() is None:
            self._check_forwarder("during the measurement")
            if time.monotonic() - t0 > deadline:
                stop(client)
                raise MeasurementError(
                    f"iperf3 client hung: no result within {deadline:.0f}s (killed)"
                )
            with contextlib.suppress(Exception):
                client.popen.wait(timeout=0.1)
        samples = sampler.stop()
        self._check_forwarder("during the measurement")
        if not out.exists():
            raise MeasurementError(f"iperf3 client failed: {client.stderr_tail(3)}")
        res = iperf.parse(out)
        end = res.t_end
        start = max(res.t_start + o.iperf.omit, end - o.iperf.duration)
        summ = summarize(samples, start, end)
        return {
            "iperf": res,
            "samples": samples,
            "window": {"start": start, "end": end},
            "summary": summ,
            "sampler_error": sampler.error,
        }

    def _forwarder_stats(self) -> dict[str, Any] | None:
        if self.forwarder is None or self.stats_path is None:
            return None
        stop(self.forwarder)
        try:
            doc: dict[str, Any] = json.loads(self.stats_path.read_text())
        except (OSError, ValueError):
            return None
        return doc

    def run(self) -> dict[str, Any]:
        o = self.opts
        state = current_state()
        self.topo.on_change = state.set_namespaces if state else None
        doc = self._skeleton()
        with Teardown() as stack:
            self.workdir = Path(tempfile.mkdtemp(prefix=f"tb-{self.run_id}-"))
            stack.callback(shutil.rmtree, self.workdir, ignore_errors=True)
            stack.callback(self._remove_namespaces)
            try:
                self.phase("namespaces")
                self.topo.create(self.topo.ns_fwd, self.topo.ns_a, self.topo.ns_b)
                if self.cell.kind == "baseline":
                    self._baseline()
                else:
                    self._start_forwarder(stack)
                m = self._measure(stack)
                doc["forwarder"] = self._forwarder_stats()
            except (ForwarderError, MeasurementError, TopologyError) as exc:
                doc["status"] = "failed"
                doc["error"] = str(exc)
                if isinstance(exc, ForwarderError):
                    doc["forwarder_exit"] = {
                        "status": exc.returncode,
                        "stderr_tail": exc.stderr_tail,
                    }
                    if exc.stderr_tail:
                        doc["error"] += f" — {exc.stderr_tail.splitlines()[-1]}"
                m = None
            self.phase("teardown")
        doc["metadata"]["forwarder_command"] = shlex.join(self.command) if self.command else None
        if m is not None:
            self._fill(doc, m)
        stem = f"{time.strftime('%Y%m%d-%H%M%S')}-{_slug(self.cell.spec)}-{self.run_id}"
        path = results.write(doc, o.results_dir, stem)
        doc["_path"] = str(path)
        return doc

    def _remove_namespaces(self) -> None:
        failed = self.topo.remove()
        if failed:
            raise TopologyError(f"could not remove namespaces: {', '.join(failed)}")

    def _skeleton(self) -> dict[str, Any]:
        o = self.opts
        desc = describe(self.cell)
        return {
            "schema": results.SCHEMA,
            "version": results.VERSION,
            "run_id": self.run_id,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "cell": {
                "spec": self.cell.spec,
                "kind": self.cell.kind,
                "variant": self.cell.name,
                "args": list(self.cell.args),
                **desc,
            },
            "status": "ok",
            "error": None,
            "metadata": {
                **metadata.collect(),
                "mtu": o.mtu,
                "workload": asdict(o.iperf),
                "devices": {"iface1": o.iface1, "ip1": o.ip1, "iface2": o.iface2, "ip2": o.ip2},
            },
            "window": None,
            "results": {},
            "forwarder": None,
            "samples": [],
            "iperf3": None,
        }

    def _fill(self, doc: dict[str, Any], m: dict[str, Any]) -> None:
        res: iperf.Iperf3Result = m["iperf"]
        s = m["summary"]
        doc["window"] = m["window"]
        doc["samples"] = samples_to_json(m["samples"])
        doc["iperf3"] = res.raw
        fwd = doc.get("forwarder") or {}
        doc["metadata"]["offload_flags"] = fwd.get("offload")
        has_cpu = self.forwarder is not None
        doc["results"] = {
            "gbps": res.bps / 1e9,
            "bps": res.bps,
            "sent_bps": res.sent_bps,
            "retransmits": res.retransmits,
            "cpu_avg": s.cpu_avg if has_cpu else None,
            "cpu_max": s.cpu_max if has_cpu else None,
            "mem_avg_mb": s.mem_avg_bytes / results.MB if has_cpu else None,
            "mem_max_mb": s.mem_max_bytes / results.MB if has_cpu else None,
            "system_busy_avg": s.system_busy_avg,
            "duration_s": m["window"]["end"] - m["window"]["start"],
            "samples": s.n,
            "sampler_error": m["sampler_error"],
            "lost_percent": res.lost_percent,
            "jitter_ms": res.jitter_ms,
        }


def _router_ip(ip: str) -> str:
    parts = ip.split(".")
    return ".".join([*parts[:3], "254"])


def _server_argv(o: CellOptions, workdir: Path) -> list[str]:
    return iperf.server_argv(o.ip2, workdir / "iperf3-server.json", o.iperf.port)


def _slug(spec: str) -> str:
    keep = [c if c.isalnum() or c in "-_" else "_" for c in spec.replace(" ", "_")]
    return "".join(keep).strip("_")[:60] or "cell"


def run_cell(cell: CellSpec, opts: CellOptions, phase: Phase | None = None) -> dict[str, Any]:
    """Measure one cell and write its result file; returns the result document.

    Failures of the forwarder, iperf3 or the topology give a document with
    ``status: failed`` (also written); interruptions propagate after teardown.
    """
    return Cell(cell, opts, phase).run()
