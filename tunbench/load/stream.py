"""Known byte streams for ``tunbench verify``: TCP and UDP, checked byte for byte.

Contract as every runner: ``*_argv`` builds the child command (run in a namespace through
:mod:`tunbench.system.nsexec`), :func:`parse` reads what it wrote. Both sides write digests of
what they sent or received; :func:`compare` says what differs.

* TCP: ``--tcp-bytes`` random bytes over one connection; SHA-256 and length of the stream.
* UDP: ``--udp-count`` datagrams of ``--udp-size`` bytes, each ``seq (4) | random``;
  SHA-256 per datagram. With ``--udp-gso`` the sender hands the kernel several datagrams
  per send (UDP_SEGMENT), so a gso forwarder sees UDP_L4 super-packets.

The UDP check is about integrity, not loss under overload, so the sender is flow
controlled: the receiver reports every datagram it got over a Unix socket at ``--ack``
(a filesystem path, so it crosses network namespaces without touching the forwarder),
and the sender keeps at most two bursts in flight. However long a forwarder is
descheduled on a busy machine, no queue on the path holds more than a few dozen
packets; a datagram missing at the end was dropped by the forwarder, not by a queue we
overfilled. Each datagram is sent once: an unacknowledged burst is waited for up to
:data:`ACK_WAIT` seconds, then left to the receiver's record (and the rest of the check is
paced, 2 ms a burst, without waiting). The receiver ends when it has everything, or
:data:`LINGER` seconds after the sender is done with both streams (``--idle`` seconds
without traffic before that).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import select
import socket
import struct
import sys
import time
from pathlib import Path
from typing import Any

from tunbench.errors import MeasurementError

UDP_SEGMENT = 103  # linux/udp.h
SOL_UDP = 17
ACK_WAIT = 2.0  # seconds the sender waits for a burst's acknowledgements
LINGER = 0.5  # seconds the receiver still waits for datagrams once the sender is done
BURST_BYTES = 9600  # 8 datagrams of 1200 bytes; one per burst when datagrams are larger


def receiver_argv(
    bind: str, port: int, out: Path, ack: Path | None, udp_count: int, idle: float = 3.0
) -> list[str]:
    """The receiver; ``ack=None``: no acknowledgement channel (TCP only, ``udp_count`` 0)."""
    return [
        sys.executable,
        "-m",
        "tunbench.load.stream",
        "recv",
        "--host",
        bind,
        "--port",
        str(port),
        "--udp-count",
        str(udp_count),
        "--idle",
        str(idle),
        "--ack",
        "" if ack is None else str(ack),
        "--out",
        str(out),
    ]


def sender_argv(
    target: str,
    port: int,
    out: Path,
    ack: Path | None,
    tcp_bytes: int,
    udp_count: int,
    udp_size: int,
    udp_gso: bool,
) -> list[str]:
    argv = [
        sys.executable,
        "-m",
        "tunbench.load.stream",
        "send",
        "--host",
        target,
        "--port",
        str(port),
        "--tcp-bytes",
        str(tcp_bytes),
        "--udp-count",
        str(udp_count),
        "--udp-size",
        str(udp_size),
        "--ack",
        "" if ack is None else str(ack),
        "--out",
        str(out),
    ]
    return [*argv, "--udp-gso"] if udp_gso else argv


def parse(path: Path) -> dict[str, Any]:
    try:
        doc: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise MeasurementError(f"stream peer wrote no usable result ({exc})") from exc
    return doc


def compare(sent: dict[str, Any], received: dict[str, Any]) -> list[str]:
    """Differences between what was sent and what arrived; empty means byte for byte."""
    problems = []
    if sent["tcp_bytes"] != received["tcp_bytes"]:
        problems.append(f"TCP: sent {sent['tcp_bytes']} bytes, received {received['tcp_bytes']}")
    elif sent["tcp_sha256"] != received["tcp_sha256"]:
        problems.append("TCP: stream content differs (SHA-256 mismatch)")
    want: dict[str, str] = sent["udp"]
    got: dict[str, str] = received["udp"]
    missing = sorted(set(want) - set(got), key=int)
    corrupt = sorted((k for k in got if k in want and got[k] != want[k]), key=int)
    if missing:
        problems.append(
            f"UDP: {len(missing)} of {len(want)} datagrams lost (first seq {missing[0]})"
        )
    if corrupt:
        problems.append(f"UDP: {len(corrupt)} datagrams corrupted (first seq {corrupt[0]})")
    if received.get("udp_bad"):
        problems.append(f"UDP: {received['udp_bad']} datagrams of unexpected shape")
    return problems


def _datagram(seq: int, size: int) -> bytes:
    return struct.pack("!I", seq) + os.urandom(size - 4)


def burst_size(udp_size: int) -> int:
    """Datagrams per burst: 8 of 1200 bytes, fewer when they are larger (never below 1)."""
    return max(1, min(8, BURST_BYTES // udp_size))


class _Acks:
    """The sender's end of the acknowledgement channel: 4-byte sequence numbers."""

    def __init__(self, path: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.buf = b""
        self.given_up = 0  # datagrams not acknowledged within ACK_WAIT

    def wait(self, outstanding: set[int], keep: int) -> None:
        """Block until at most ``keep`` of ``outstanding`` are unacknowledged, or
        :data:`ACK_WAIT` passes with none arriving (those are then given up). After one
        give-up the check has already failed unless they come late, so the rest is only
        paced, not waited for: a forwarder that drops often must not cost ACK_WAIT each."""
        if self.given_up:
            outstanding.clear()
            time.sleep(0.002)
            return
        while len(outstanding) > keep:
            ready, _, _ = select.select([self.sock], [], [], ACK_WAIT)
            chunk = self.sock.recv(4096) if ready else b""
            if not chunk:
                self.given_up += len(outstanding)
                outstanding.clear()  # lost or late: the receiver's record decides
                return
            self.buf += chunk
            n = len(self.buf) // 4 * 4
            outstanding.difference_update(struct.unpack(f"!{n // 4}I", self.buf[:n]))
            self.buf = self.buf[n:]


class _NoAcks:
    """No acknowledgement channel (``--ack ''``): a TCP-only check across two hosts, where
    no Unix socket reaches the other side."""

    given_up = 0

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)  # closed unused

    def wait(self, outstanding: set[int], keep: int) -> None:
        outstanding.clear()

    # the receiver's side of no channel
    done = True

    def socks(self) -> list[socket.socket]:
        return []

    def ack(self, seq: int) -> None:
        pass

    def handle(self, s: socket.socket) -> None:
        pass

    def close(self) -> None:
        self.sock.close()


def _send(a: argparse.Namespace) -> dict[str, Any]:
    udp: dict[str, str] = {}
    acks = _Acks(a.ack) if a.ack else _NoAcks()
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.connect((a.host, a.port))
    burst = burst_size(a.udp_size)
    outstanding: set[int] = set()
    for first in range(0, a.udp_count, burst):
        seqs = range(first, min(first + burst, a.udp_count))
        grams = [_datagram(s, a.udp_size) for s in seqs]
        for seq, g in zip(seqs, grams, strict=True):
            udp[str(seq)] = hashlib.sha256(g).hexdigest()
        acks.wait(outstanding, burst)  # at most two bursts in flight
        outstanding.update(seqs)
        if a.udp_gso and len(grams) > 1:
            u.sendmsg([b"".join(grams)], [(SOL_UDP, UDP_SEGMENT, struct.pack("H", a.udp_size))])
        else:
            for g in grams:
                u.send(g)
    acks.wait(outstanding, 0)
    u.close()
    acks.sock.close()
    data = os.urandom(a.tcp_bytes)
    t = socket.create_connection((a.host, a.port), timeout=20)
    t.sendall(data)
    t.shutdown(socket.SHUT_WR)
    t.recv(1)  # wait for the receiver to close: everything was read
    t.close()
    return {
        "tcp_bytes": len(data),
        "tcp_sha256": hashlib.sha256(data).hexdigest(),
        "udp": udp,
        "udp_unacknowledged": acks.given_up,
    }


class _AckServer:
    """The receiver's end of the acknowledgement channel: one sender, told every seq."""

    def __init__(self, path: str) -> None:
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(path)
        self.listener.listen(1)
        self.conn: socket.socket | None = None
        self.early: list[int] = []  # received before the sender's connection was accepted
        self.done = False

    def socks(self) -> list[socket.socket]:
        if self.done:
            return []
        return [self.conn] if self.conn is not None else [self.listener]

    def handle(self, s: socket.socket) -> None:
        if s is self.listener:
            self.conn, _ = self.listener.accept()
            for seq in self.early:
                self.ack(seq)
        elif self.conn is not None:
            try:
                more = self.conn.recv(1)
            except OSError:  # reset: the sender left with acknowledgements unread
                more = b""
            if not more:  # the sender is done with UDP
                self.close()

    def ack(self, seq: int) -> None:
        if self.conn is None and not self.done:
            self.early.append(seq)
        elif self.conn is not None:
            try:
                self.conn.sendall(struct.pack("!I", seq))
            except OSError:  # the sender gave up on this burst and left
                self.close()

    def close(self) -> None:
        self.done = True
        for s in (self.conn, self.listener):
            if s is not None:
                s.close()
        self.conn = None


def _recv(a: argparse.Namespace) -> dict[str, Any]:
    lst = socket.create_server((a.host, a.port))
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    u.bind((a.host, a.port))
    acks = _AckServer(a.ack) if a.ack else _NoAcks()
    Path(a.out + ".ready").write_text("")
    digest = hashlib.sha256()
    tcp_bytes = 0
    udp: dict[str, str] = {}
    bad = 0
    conn: socket.socket | None = None
    tcp_done = False
    last = time.monotonic()
    while not (tcp_done and len(udp) >= a.udp_count):
        socks = [u, conn if conn is not None else lst] if not tcp_done else [u]
        ready, _, _ = select.select([*socks, *acks.socks()], [], [], 0.2)
        # the sender is done with both: what is missing now was sent before a whole TCP
        # stream that has arrived since (and not acknowledged for ACK_WAIT): lost
        idle = LINGER if tcp_done and acks.done else a.idle
        if not ready and time.monotonic() - last > idle:
            break
        for s in ready:
            last = time.monotonic()
            if s is u:
                g = u.recv(65535)
                if len(g) < 4:
                    bad += 1
                    continue
                seq = struct.unpack_from("!I", g)[0]
                udp[str(seq)] = hashlib.sha256(g).hexdigest()
                acks.ack(seq)
            elif s is lst:
                conn, _ = lst.accept()
            elif s is conn:
                chunk = conn.recv(1 << 20)
                if not chunk:
                    conn.close()
                    tcp_done = True
                    continue
                digest.update(chunk)
                tcp_bytes += len(chunk)
            else:
                acks.handle(s)
    acks.close()
    return {"tcp_bytes": tcp_bytes, "tcp_sha256": digest.hexdigest(), "udp": udp, "udp_bad": bad}


def _child(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="tunbench.load.stream")
    p.add_argument("role", choices=["send", "recv"])
    p.add_argument("--host", required=True)
    p.add_argument("--port", type=int, default=5301)
    p.add_argument("--tcp-bytes", type=int, default=8 << 20)
    p.add_argument("--udp-count", type=int, default=512)
    p.add_argument("--udp-size", type=int, default=1200)
    p.add_argument("--udp-gso", action="store_true")
    p.add_argument("--idle", type=float, default=3.0)
    p.add_argument(
        "--ack",
        required=True,
        help="Unix socket path for UDP acknowledgements ('': none, TCP only)",
    )
    p.add_argument("--out", required=True)
    a = p.parse_args(argv)
    if not a.ack and a.udp_count:
        p.error("--ack '' (no acknowledgements) checks TCP only: give --udp-count 0")
    doc = _send(a) if a.role == "send" else _recv(a)
    tmp = Path(a.out + ".tmp")
    tmp.write_text(json.dumps(doc))
    tmp.replace(a.out)
    return 0


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1:]))
