"""The iperf3 child process: ``python -m tunbench.load.iperf3child server|client ...``.

It sets the test up with the wrapper's ``Server``/``Client`` and runs it by calling libiperf
itself, in a daemon thread so SIGINT still reaches Python; the client records the
monotonic timeline (:class:`StreamWatch`) and writes ``--out``. Why it works this way, and
what the parent does with the output, is :mod:`tunbench.load.iperf3`'s docstring.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

from tunbench.load.iperf3 import BIDIR, DEFAULT_PORT, JSON_STRING


def _run(test: Any, role: str) -> str:
    """Run ``test`` with libiperf (not the wrapper's ``run()``); its JSON text.

    libiperf runs in a daemon thread so that SIGINT still reaches Python in the main
    thread while it blocks in select(). Errors come back as ``{"error": ...}``, as the
    wrapper would put them.
    """
    lib = test.lib
    status: list[int] = []
    call = lib.iperf_run_server if role == "server" else lib.iperf_run_client
    worker = threading.Thread(target=lambda: status.append(call(test._test)), daemon=True)
    worker.start()
    while worker.is_alive():
        worker.join(0.1)
    text = ctypes.c_char_p(getattr(lib, JSON_STRING)(test._test)).value
    if not status or status[0] < 0 or not text:
        return json.dumps({"error": test._error_to_string(test._errno)})
    return text.decode("utf-8", errors="replace")


class StreamWatch:
    """Notes ``time.monotonic()`` when this process holds ``count`` more sockets than when
    it started (the control connection and every data stream): the test starts one
    control message later.

    A thread polls ``/proc/self/fd`` every millisecond until then (reading the socket
    tables in ``/proc/net`` instead costs milliseconds per read); libiperf's run() releases
    the GIL, so the thread runs beside it.
    """

    def __init__(self, count: int, timeout: float = 60.0) -> None:
        self.count = count
        self.timeout = timeout
        self.seen: float | None = None
        self.base = self.sockets()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def sockets() -> int:
        n = 0
        for fd in os.listdir("/proc/self/fd"):
            try:
                n += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
            except OSError:
                continue
        return n

    def _run(self) -> None:
        deadline = time.monotonic() + self.timeout
        while not self._done.wait(0.001) and time.monotonic() < deadline:
            if self.sockets() - self.base >= self.count:
                self.seen = time.monotonic()
                return

    def start(self) -> StreamWatch:
        self._thread.start()
        return self

    def stop(self) -> float | None:
        self._done.set()
        self._thread.join(1.0)
        return self.seen


def _set_int(test: Any, name: str, value: int) -> None:
    """Call libiperf's ``name(test, value)`` setter through the wrapper's library handle."""
    from ctypes import c_int, c_void_p

    fn = getattr(test.lib, name)
    fn.restype = None
    fn.argtypes = (c_void_p, c_int)
    fn(test._test, value)


def _ask_server_output(test: Any) -> None:
    """Have the server send its results (its intervals are the receiver's)."""
    _set_int(test, "iperf_set_test_get_server_output", 1)


def _child(argv: list[str]) -> int:
    import iperf3

    p = argparse.ArgumentParser(prog="tunbench.load.iperf3")
    p.add_argument("role", choices=["server", "client"])
    p.add_argument("--bind", default="")
    p.add_argument("--server", default="")
    p.add_argument("--port", type=int, default=DEFAULT_PORT)
    p.add_argument("--duration", type=int, default=10)
    p.add_argument("--omit", type=int, default=0)
    p.add_argument("--parallel", type=int, default=1)
    p.add_argument("--bandwidth", type=int, default=0)
    p.add_argument("--blksize", type=int, default=0)
    p.add_argument("--window", type=int, default=0)
    p.add_argument("--burst", type=int, default=0)
    p.add_argument("--udp", action="store_true")
    p.add_argument("--reverse", action="store_true")
    p.add_argument("--bidir", action="store_true")
    p.add_argument("--out", help="client: where the result goes")
    a = p.parse_args(argv)
    if a.role == "client" and not a.out:
        p.error("the client needs --out")

    test: Any
    if a.role == "server":
        test = iperf3.Server()
        test.bind_address = a.bind
    else:
        test = iperf3.Client()
        test.server_hostname = a.server
        test.duration = a.duration
        test.omit = a.omit
        test.num_streams = a.parallel
        test.reverse = a.reverse
        if a.udp:
            test.protocol = "udp"
            test.bandwidth = a.bandwidth  # 0 = unlimited
        elif a.bandwidth:
            test.bandwidth = a.bandwidth
        if a.blksize:
            test.blksize = a.blksize
        if a.window:  # sent to the server in the test's parameters: it sets it too
            _set_int(test, "iperf_set_test_socket_bufsize", a.window)
        if a.burst:
            _set_int(test, "iperf_set_test_burst", a.burst)
    test.port = a.port
    test.verbose = False
    if a.role == "client" and a.bidir:
        if not hasattr(test.lib, BIDIR):
            print(f"tunbench.load.iperf3: {test.iperf_version} lacks {BIDIR}", file=sys.stderr)
            return 2
        _set_int(test, BIDIR, 1)  # the wrapper has no attribute for it
    if not hasattr(test.lib, JSON_STRING):
        print(f"tunbench.load.iperf3: {test.iperf_version} lacks {JSON_STRING}", file=sys.stderr)
        return 2
    # libiperf also prints its JSON (and any text) to stdout: nobody reads it, so nothing
    # may block on it
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)
    watch = None
    if a.role == "client":
        _ask_server_output(test)
        watch = StreamWatch(1 + a.parallel * (2 if a.bidir else 1)).start()
    t_start, mono_start = time.time(), time.monotonic()
    try:
        raw = _run(test, a.role)
    except KeyboardInterrupt:  # stopped by the harness (SIGINT, the first rung)
        return 130
    t_end, mono_end = time.time(), time.monotonic()
    if a.role == "server":
        return 0
    out = Path(a.out)
    tmp = out.with_suffix(".tmp")
    doc = {
        "t_start": t_start,
        "t_end": t_end,
        "mono_start": mono_start,
        "mono_end": mono_end,
        "mono_streams": watch.stop() if watch else None,
        "raw": raw,
    }
    tmp.write_text(json.dumps(doc))
    tmp.replace(out)
    return 1 if "error" in json.loads(raw) else 0


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1:]))
