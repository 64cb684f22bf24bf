"""The agent's wire format: JSON lines between the controller and ``tunbench agent --stdio``.

One request per line, one reply per line, in order, over the agent's stdin and stdout (an
SSH channel). A request is ``{"id": N, "op": NAME, ...arguments}``; its reply carries the
same ``id`` and ``"ok": true`` with the op's results, or ``"ok": false`` and a one-line
``"error"``. Nothing else is ever written to stdout (the agent's own messages go to
stderr), so a line that does not decode means the channel is broken.

:class:`LineBuffer` turns the bytes a non-blocking read returns into whole lines;
:func:`clock_offset` estimates how far a host's wall clock is from the controller's from
``hello`` round trips (the one with the shortest round trip, as NTP's filter does).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from tunbench.errors import AgentError

PROTOCOL = 1
MAX_LINE = 8 * 1024 * 1024  # an iperf3 JSON with its intervals is well below this
OPS = (
    "hello",
    "start",
    "wait_ready",
    "serve",
    "client",
    "poll",
    "sample",
    "check",
    "check_result",
    "shape",
    "stop",
)


def encode(msg: dict[str, Any]) -> bytes:
    """One message as one line (JSON never contains a raw newline)."""
    return json.dumps(msg, separators=(",", ":"), allow_nan=False).encode() + b"\n"


def decode(line: bytes | str) -> dict[str, Any]:
    """One line back into a message; AgentError if it is not a JSON object."""
    text = line.decode(errors="replace") if isinstance(line, bytes) else line
    try:
        msg = json.loads(text)
    except ValueError as exc:
        raise AgentError(f"undecodable line on the agent channel: {text[:80]!r}") from exc
    if not isinstance(msg, dict):
        raise AgentError(f"agent channel message is not an object: {text[:80]!r}")
    return msg


def request(msg_id: int, op: str, **args: Any) -> dict[str, Any]:
    """A request message; AgentError for an op the agent does not know."""
    if op not in OPS:
        raise AgentError(f"unknown agent op {op!r}")
    return {"id": msg_id, "op": op, **args}


def check_request(msg: dict[str, Any]) -> tuple[int, str]:
    """The id and op of a received request (AgentError if either is missing or wrong)."""
    msg_id, op = msg.get("id"), msg.get("op")
    if not isinstance(msg_id, int) or isinstance(msg_id, bool):
        raise AgentError("request without an integer id")
    if op not in OPS:
        raise AgentError(f"unknown agent op {op!r}")
    return msg_id, str(op)


def reply(msg_id: int, **results: Any) -> dict[str, Any]:
    return {"id": msg_id, "ok": True, **results}


def failure(msg_id: int | None, error: str, kind: str = "AgentError") -> dict[str, Any]:
    """A failed request's reply: the first line of ``error`` and the error's class name
    (the controller raises a PrerequisiteError again as one)."""
    first = (error.strip().splitlines() or ["failed"])[0]
    return {"id": msg_id, "ok": False, "error": first, "kind": kind}


class LineBuffer:
    """Bytes in, whole lines out; a line longer than ``limit`` is an AgentError."""

    def __init__(self, limit: int = MAX_LINE) -> None:
        self.limit = limit
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        self._buf += data
        lines = []
        while (i := self._buf.find(b"\n")) >= 0:
            lines.append(bytes(self._buf[:i]))
            del self._buf[: i + 1]
        if len(self._buf) > self.limit:
            raise AgentError(f"agent channel line longer than {self.limit} bytes")
        return [ln for ln in lines if ln.strip()]

    @property
    def pending(self) -> int:
        """Bytes of an unfinished line."""
        return len(self._buf)


@dataclass(frozen=True)
class ClockSample:
    """One round trip: controller wall time at send and at receipt, the host's in between."""

    sent: float
    remote: float
    received: float

    @property
    def rtt(self) -> float:
        return self.received - self.sent

    @property
    def offset(self) -> float:
        """Host clock minus controller clock, assuming a symmetric path."""
        return self.remote - (self.sent + self.received) / 2


def clock_offset(samples: Iterable[ClockSample]) -> tuple[float, float]:
    """(offset, its uncertainty) in seconds: host wall clock minus the controller's, from
    the sample with the shortest round trip; the uncertainty is half that round trip."""
    best = min(samples, key=lambda s: s.rtt, default=None)
    if best is None:
        raise AgentError("no clock samples")
    if best.rtt < 0:
        raise AgentError("clock sample received before it was sent")
    return best.offset, best.rtt / 2
