"""The thread runner: start the workers, stop on a signal, end on a crash.

On SIGINT or SIGTERM the forwarder writes its counters as JSON to ``--stats`` and exits 0;
on SIGUSR1 it writes them as they are (:data:`forwarders.counters.SNAPSHOT_SIGNAL`) and
goes on forwarding.
A worker that hits an unrecoverable error (EBADFD: the device was unregistered) ends; when
every worker has ended the forwarder exits 1. A worker that raises anything else (a bug)
ends the whole forwarder at once, never leaving one direction dead and the other running:
its traceback goes to stderr, the counters to ``--stats``, and the exit status is 70
(EX_SOFTWARE).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Sequence

from forwarders.counters import SNAPSHOT_SIGNAL, Forwarder
from forwarders.frameio import DeviceGone
from tunio.tun import set_mtu


def configure_devices(args: argparse.Namespace) -> None:
    """Standalone use only: MTU, address and up, through pyroute2."""
    from pyroute2 import IPRoute

    for ifname, ip in ((args.iface1, args.ip1), (args.iface2, args.ip2)):
        set_mtu(ifname, args.mtu)
        with IPRoute() as ipr:
            idx = ipr.link_lookup(ifname=ifname)[0]
            ipr.addr("add", index=idx, address=ip, prefixlen=24)
            ipr.link("set", index=idx, state="up")


EXIT_WORKER_CRASHED = 70  # EX_SOFTWARE: a worker raised; its traceback is on stderr


def report_crash(fwd: Forwarder, exc: BaseException) -> None:
    """Record a worker's crash as the exit reason and print its traceback to stderr.

    A group of one (what a trio nursery raises) is unwrapped, so the traceback ends with
    the exception itself, which is the line the harness quotes.
    """
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    fwd.exit_reason = f"worker crashed: {exc!r}"
    print(f"{fwd.name}: a worker crashed; stopping the forwarder", file=sys.stderr)
    traceback.print_exception(exc, file=sys.stderr)
    sys.stderr.flush()


PR_SET_NAME = 15  # prctl: the calling thread's name (/proc/<pid>/task/<tid>/comm)
Worker = tuple[str, Callable[[], None]]  # a thread's name (at most 15 bytes) and its loop


def name_os_thread(name: str) -> None:
    """Give the calling thread ``name`` in the kernel too, so per-thread CPU (the harness's
    sampler, top -H, py-spy) says which worker it is, not a bare thread id."""
    import ctypes

    ctypes.CDLL(None).prctl(PR_SET_NAME, name.encode()[:15], 0, 0, 0)


def run_threads(fwd: Forwarder, workers: Sequence[Worker]) -> int:
    """Run ``workers`` as named daemon threads until a signal (exit 0), a worker crashes
    (exit :data:`EXIT_WORKER_CRASHED` at once) or all of them end (exit 1)."""
    if fwd.args.configure:
        configure_devices(fwd.args)
    done = threading.Event()
    stop_signal: list[int] = []
    crashed: list[BaseException] = []
    alive = [len(workers)]
    lock = threading.Lock()

    def wrap(name: str, fn: Callable[[], None]) -> Callable[[], None]:
        def body() -> None:
            try:
                name_os_thread(name)
                fn()
            except DeviceGone as exc:
                fwd.exit_reason = f"device gone: {exc}"
            except BaseException as exc:  # a bug: end the whole forwarder, loudly
                with lock:
                    first = not crashed
                    crashed.append(exc)
                if first:
                    report_crash(fwd, exc)
                done.set()
            finally:
                with lock:
                    alive[0] -= 1
                    if alive[0] == 0:
                        done.set()

        return body

    def on_signal(signum: int, _frame: object) -> None:
        stop_signal.append(signum)
        done.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    # runs in this (main) thread, which only waits: the workers go on meanwhile
    signal.signal(SNAPSHOT_SIGNAL, lambda _s, _f: fwd.write_stats())
    for name, fn in workers:
        threading.Thread(target=wrap(name, fn), name=name, daemon=True).start()
    while not done.wait(0.5):
        pass
    fwd.write_stats()
    sys.stdout.flush()
    sys.stderr.flush()
    # Daemon threads may sit in a blocking read(); leave without joining them.
    if crashed:
        os._exit(EXIT_WORKER_CRASHED)
    os._exit(0 if stop_signal else 1)
