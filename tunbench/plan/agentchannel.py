"""The controller's end of an agent: ``ssh HOST tunbench agent --stdio`` as a child, one
request at a time over its stdin, one reply per line from its stdout.

Every call has a deadline; while it waits it also watches the other hosts' channels,
which have no request outstanding and so must stay silent: anything there, or their end
of file, means that agent (or its SSH connection) died, and the call fails at once with
an AgentError naming that host. :meth:`AgentChannel.close` closes the agent's stdin, which
is its signal to tear down (nothing is sent through SSH as a signal), waits for it to exit
and only then stops the local ssh process, by the PID this module started.
"""

from __future__ import annotations

import os
import select
import subprocess
import time
from collections.abc import Sequence
from contextlib import suppress
from pathlib import Path
from typing import Any

from tunbench.errors import AgentError, PrerequisiteError
from tunbench.system import agentwire as wire
from tunbench.system.procs import Child, spawn_piped, stop
from tunbench.system.signals import checkpoint

CLOSE_WAIT_S = 10.0  # the agent's teardown: daemons, namespaces, qdisc
TICK_S = 0.1


class AgentChannel:
    """One host's agent, started over SSH."""

    def __init__(self, host: str, argv: Sequence[str], log: Path) -> None:
        self.host = host
        self.log = log
        self.child: Child = spawn_piped(f"agent-{host}", list(argv), log)
        self._buf = wire.LineBuffer()
        self._lines: list[bytes] = []
        self._next = 1
        self.closed = False

    @property
    def fd(self) -> int:
        out = self.child.popen.stdout
        assert out is not None
        return out.fileno()

    def _why(self) -> str:
        tail = self.child.stderr_tail(2).replace("\n", " | ")
        status = self.child.poll()
        code = f" (ssh exited with status {status})" if status is not None else ""
        return f"{tail or 'no output'}{code}"

    def _read(self) -> None:
        """Take what is readable now (call after select said so); AgentError on EOF."""
        data = os.read(self.fd, 65536)
        if not data:
            self.closed = True
            with suppress(subprocess.TimeoutExpired):
                self.child.popen.wait(timeout=1.0)
            raise AgentError(f"the agent on {self.host} closed its channel: {self._why()}")
        self._lines += self._buf.feed(data)

    def call(
        self, op: str, timeout: float, watch: Sequence[AgentChannel] = (), **args: Any
    ) -> dict[str, Any]:
        """Send one request and return its reply's results; AgentError (naming the host) if
        it fails, the channel ends, no reply comes within ``timeout`` seconds, or an agent
        in ``watch`` speaks out of turn or ends."""
        if self.closed:
            raise AgentError(f"the agent on {self.host} is gone")
        msg_id, self._next = self._next, self._next + 1
        stdin = self.child.popen.stdin
        assert stdin is not None
        try:
            stdin.write(wire.encode(wire.request(msg_id, op, **args)))
            stdin.flush()
        except (BrokenPipeError, OSError):
            self.closed = True
            raise AgentError(f"the agent on {self.host} is gone: {self._why()}") from None
        until = time.monotonic() + timeout
        others = {o.fd: o for o in watch if not o.closed}
        while True:
            while self._lines:
                rep = wire.decode(self._lines.pop(0))
                if rep.get("id") != msg_id:
                    raise AgentError(f"the agent on {self.host} answered out of order: {rep}")
                if not rep.get("ok"):
                    if rep.get("kind") == "PrerequisiteError":  # the host lacks something
                        raise PrerequisiteError(f"{self.host}: {rep.get('error')}")
                    raise AgentError(f"{self.host}: {op}: {rep.get('error')}")
                return {k: v for k, v in rep.items() if k not in ("id", "ok")}
            checkpoint()
            left = until - time.monotonic()
            if left <= 0:
                raise AgentError(f"the agent on {self.host} did not answer {op} in {timeout:.0f}s")
            ready, _, _ = select.select([self.fd, *others], [], [], min(TICK_S, left))
            for fd in ready:
                if fd == self.fd:
                    self._read()
                else:
                    other = others[fd]
                    other._read()
                    raise AgentError(f"the agent on {other.host} spoke out of turn")

    def close(self) -> None:
        """End of input for the agent (it tears down), then its exit; the ssh process is
        stopped (our own PID) if it is still there after :data:`CLOSE_WAIT_S`."""
        stdin = self.child.popen.stdin
        if stdin is not None:
            with suppress(OSError):
                stdin.close()
        try:
            self.child.popen.wait(timeout=CLOSE_WAIT_S)
        except subprocess.TimeoutExpired:
            stop(self.child)
        out = self.child.popen.stdout
        if out is not None:
            with suppress(OSError):
                out.close()
        self.closed = True
