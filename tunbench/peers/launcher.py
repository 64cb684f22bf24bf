"""The life of one peer launch: two daemons started, readied, renamed, supervised, stopped.

A launcher runs inside the forwarder namespace, started by the harness as::

    python -m tunbench.peers.<daemon> --iface1 tun11 --ip1 10.0.1.1 --iface2 tun22
        --ip2 10.0.2.1 [--mtu N] [--crypto MODE] [--stats FILE] [--workdir DIR]

and then, in order:

1. exits 2 at once, saying which Debian package to install, when a program it needs is
   missing (the harness records that as this row's failure; the matrix goes on);
2. writes both daemons' configuration and keys into a private ``tb-peer-*`` directory
   inside ``--workdir`` (the cell's temporary directory, which ``tunbench clean`` removes
   after a kill -9);
3. starts two instances of the daemon with :func:`tunbench.system.procs.spawn`, each creating
   one TUN device under a temporary ``tb-`` name and talking UDP to the other over
   127.0.0.1 only; each child gets SIGTERM if the launcher dies (PR_SET_PDEATHSIG);
4. waits, with a deadline, until each daemon is ready — its own log line (device open,
   socket bound, peer reached) and its device present — never for a fixed time;
5. only then renames the devices to ``--iface1``/``--iface2``: the harness waits for
   those names, so it never moves a device a daemon is still configuring;
6. writes what it runs (daemon version, cipher, PIDs) to ``--stats`` and waits for a
   signal or for a daemon to end, without polling (pidfds). SIGINT or SIGTERM stops both
   daemons (each with its own stop signal, bounded, reaped) and exits 0; a daemon that
   dies makes it stop the other and exit 1 with the dead daemon's last log lines.

With ``--half a|b --remote ADDR --secret SEED [--port N]`` it runs one of the two
instances only (a owns ``--iface1``, b ``--iface2``), from the same configuration, and that
instance talks UDP to the other half on another host at ADDR (both on port N): the
two-host topology's agent (:mod:`tunbench.cell.agent`) starts one half on each host.

The harness records the launcher's children (PID and start time) in the run state when
the devices appear, so ``tunbench clean`` finds them even if the launcher was killed too.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import secrets
import select
import shutil
import signal
import socket
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from tunbench.errors import Interrupted
from tunbench.peers.base import (
    EXIT_MISSING,
    READY_TIMEOUT,
    STOP_WAIT,
    Daemon,
    Peer,
    PeerError,
    Setup,
    build_parser,
    check_half,
    free_ports,
    subnet24,
)
from tunbench.system import signals
from tunbench.system.procs import spawn, stop, wait_until


def device_present(name: str) -> bool:
    """Whether a network device of that name exists in this namespace."""
    try:
        socket.if_nametoindex(name)
    except OSError:
        return False
    return True


class _Teardown(contextlib.ExitStack):
    """Unwinds with SIGINT/SIGTERM held back; a signal arriving meanwhile is dropped (the
    launcher is stopping anyway), so a second Ctrl-C cannot cut teardown short."""

    def __exit__(
        self,
        et: type[BaseException] | None,
        ev: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        sigs = {signal.SIGINT, signal.SIGTERM}
        old = signal.pthread_sigmask(signal.SIG_BLOCK, sigs)
        try:
            return bool(super().__exit__(et, ev, tb))
        finally:
            for sig in sigs:
                signal.signal(sig, signal.SIG_IGN)
            signal.pthread_sigmask(signal.SIG_SETMASK, old)


@dataclass
class Launcher:
    """One launch of two daemon instances; :meth:`run` is the whole life."""

    peer: Peer
    args: argparse.Namespace
    daemons: list[Daemon] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)

    def say(self, text: str) -> None:
        print(f"{self.peer.name}: {text}", file=sys.stderr, flush=True)

    def run(self) -> int:
        """Set up, start, wait until ready, rename, supervise; teardown in reverse order."""
        with _Teardown() as stack:
            s = self._setup(stack)
            both = self.peer.daemons(s)
            self.daemons = [both[i] for i in s.instances]
            stack.callback(self._remove_leftovers, s)
            stack.callback(self._stop_daemons)
            for d in self.daemons:
                self._start(d, s)
            for d in self.daemons:
                self._wait_for(d, d.ready, "get ready", device=True)
            self.peer.configure(s, self.daemons)
            self._rename(s)
            self._write_stats(s, None)
            finals = [s.finals[i] for i in s.instances]
            on = ", ".join(f"{n} ({d.name})" for d, n in zip(self.daemons, finals, strict=True))
            self.say(f"ready: {on}; {self.stats['version']}; {self.stats['cipher']}")
            try:
                reason = self._supervise()
            except Interrupted as exc:
                self._write_stats(s, f"stopped by signal {exc.signum}")
                return 0
            self._write_stats(s, reason)
            self.say(f"error: {reason}")
            return 1
        raise AssertionError("not reached")  # the block returns or raises

    def _setup(self, stack: contextlib.ExitStack) -> Setup:
        a = self.args
        parent = a.workdir if a.workdir and a.workdir.is_dir() else None
        private = Path(tempfile.mkdtemp(prefix="tb-peer-", dir=parent))
        stack.callback(shutil.rmtree, private, ignore_errors=True)
        tag = secrets.token_hex(3)
        return Setup(
            args=a,
            dir=private,
            temp=(f"tb-{tag}-1", f"tb-{tag}-2"),
            ports=free_ports() if a.half is None else (a.port, a.port),
            subnets=(subnet24(a.ip1), subnet24(a.ip2)),
            seed=secrets.token_hex(16),
        )

    def _start(self, d: Daemon, s: Setup) -> None:
        env = {**os.environ, **d.env} if d.env else None
        d.child = spawn(
            d.name,
            d.argv,
            log_path=s.dir / f"{d.name}.log",
            env=env,
            parent_death_signal=signal.SIGTERM,
        )
        if d.listening is not None:
            self._wait_for(d, d.listening, "start listening")

    def _wait_for(self, d: Daemon, pattern: str, what: str, device: bool = False) -> None:
        rx = re.compile(pattern)

        def done() -> bool:
            assert d.child is not None
            if d.child.poll() is not None:
                raise PeerError(
                    f"{d.name} exited with status {d.child.poll()} before it could {what}: "
                    f"{d.tail(1) or 'no output'}"
                )
            return bool(rx.search(d.log())) and (not device or device_present(d.iface))

        if not wait_until(done, READY_TIMEOUT):
            raise PeerError(
                f"{d.name} did not {what} within {READY_TIMEOUT:.0f}s "
                f"(waited for /{pattern}/): {d.tail(1) or 'no output'}"
            )

    def _rename(self, s: Setup) -> None:
        from pyroute2 import IPRoute

        with IPRoute() as ipr:
            for i in s.instances:
                temp, final = s.temp[i], s.finals[i]
                if ipr.link_lookup(ifname=final):
                    raise PeerError(f"a device named {final} exists already")
                ipr.link("set", index=ipr.link_lookup(ifname=temp)[0], ifname=final)

    def _write_stats(self, s: Setup, exit_reason: str | None) -> None:
        if not self.stats:
            self.stats = {
                "variant": self.peer.name,
                "daemon": self.peer.program,
                "version": self.peer.version(),
                "crypto": s.crypto,
                "cipher": self.peer.crypto[s.crypto],
                "transport": "udp over 127.0.0.1"
                if s.half is None
                else f"udp to the other half at {s.args.remote}",
                "half": s.args.half,
                "ports": list(s.ports),
                "devices": {s.finals[i]: s.temp[i] for i in s.instances},
                "processes": {d.name: d.child.pid for d in self.daemons if d.child},
                # none of these daemons opens its device with IFF_VNET_HDR
                "offload": {s.finals[i]: [] for i in s.instances},
            }
        self.stats["exit_reason"] = exit_reason
        path: Path | None = self.args.stats
        if path is None:
            return
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.stats, indent=1))
        tmp.replace(path)

    def _supervise(self) -> str:
        """Block until a daemon ends (a signal raises Interrupted out of here)."""
        fds: dict[int, Daemon] = {}
        try:
            for d in self.daemons:
                assert d.child is not None
                fds[os.pidfd_open(d.child.pid)] = d
            while True:
                ready, _, _ = select.select(list(fds), [], [])
                d = fds[ready[0]]
                assert d.child is not None
                status = d.child.popen.wait()
                return f"{d.name} exited with status {status}: {d.tail(1) or 'no output'}"
        finally:
            for fd in fds:
                os.close(fd)

    def _stop_daemons(self) -> None:
        """Each daemon's stop signal to all at once, then reap each (SIGKILL past the wait)."""
        running = [d for d in self.daemons if d.child is not None and d.child.poll() is None]
        for d in running:
            assert d.child is not None
            with contextlib.suppress(ProcessLookupError):
                os.killpg(d.child.pid, d.stop_signal)
        for d in running:
            assert d.child is not None
            stop(d.child, ((d.stop_signal, STOP_WAIT), (signal.SIGKILL, 5.0)))

    def _remove_leftovers(self, s: Setup) -> None:
        for path in self.peer.leftovers(s):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


def main(peer: type[Peer], argv: list[str] | None = None) -> int:
    """Entry point of ``python -m tunbench.peers.<daemon>``."""
    args = build_parser(peer).parse_args(argv)
    inst = peer()
    if args.half is not None and not inst.halves:
        print(f"{peer.name}: has no half mode (two hosts) yet", file=sys.stderr)
        return EXIT_MISSING
    for program, package in inst.needs(args.crypto).items():
        if shutil.which(program) is None:
            print(
                f"{peer.name}: {program} is not installed: install the Debian package {package}",
                file=sys.stderr,
            )
            return EXIT_MISSING
    signals.install()
    launcher = Launcher(inst, args)
    try:
        check_half(inst, args)
        return launcher.run()
    except PeerError as exc:
        launcher.say(f"error: {exc}")
        return 1
    except Interrupted:
        return 0
