"""Known byte streams for ``tunbench verify``: TCP and UDP, checked byte for byte.

Contract as every runner: ``*_argv`` builds the child command (run in a namespace through
:mod:`tunbench.system.nsexec`), :func:`parse` reads what it wrote. Both sides write digests of
what they sent or received; :func:`compare` says what differs.

* TCP: ``--tcp-bytes`` random bytes over one connection; SHA-256 and length of the stream.
* UDP: ``--udp-count`` datagrams of ``--udp-size`` bytes, each ``seq (4) | random``;
  SHA-256 per datagram. With ``--udp-gso`` the sender hands the kernel several datagrams
  per send (UDP_SEGMENT), so a gso forwarder sees UDP_L4 super-packets.
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


def receiver_argv(bind: str, port: int, out: Path, udp_count: int, idle: float = 3.0) -> list[str]:
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
        "--out",
        str(out),
    ]


def sender_argv(
    target: str, port: int, out: Path, tcp_bytes: int, udp_count: int, udp_size: int, udp_gso: bool
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


def _send(a: argparse.Namespace) -> dict[str, Any]:
    udp: dict[str, str] = {}
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.connect((a.host, a.port))
    burst = 8
    for first in range(0, a.udp_count, burst):
        grams = [_datagram(s, a.udp_size) for s in range(first, min(first + burst, a.udp_count))]
        for seq, g in zip(range(first, first + len(grams)), grams, strict=True):
            udp[str(seq)] = hashlib.sha256(g).hexdigest()
        if a.udp_gso and len(grams) > 1:
            u.sendmsg([b"".join(grams)], [(SOL_UDP, UDP_SEGMENT, struct.pack("H", a.udp_size))])
        else:
            for g in grams:
                u.send(g)
        time.sleep(0.002)  # paced: the check is integrity, not loss under overload
    u.close()
    data = os.urandom(a.tcp_bytes)
    t = socket.create_connection((a.host, a.port), timeout=20)
    t.sendall(data)
    t.shutdown(socket.SHUT_WR)
    t.recv(1)  # wait for the receiver to close: everything was read
    t.close()
    return {"tcp_bytes": len(data), "tcp_sha256": hashlib.sha256(data).hexdigest(), "udp": udp}


def _recv(a: argparse.Namespace) -> dict[str, Any]:
    lst = socket.create_server((a.host, a.port))
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    u.bind((a.host, a.port))
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
        ready, _, _ = select.select(socks, [], [], 0.2)
        if not ready and time.monotonic() - last > a.idle:
            break
        for s in ready:
            last = time.monotonic()
            if s is u:
                g = u.recv(65535)
                if len(g) < 4:
                    bad += 1
                    continue
                udp[str(struct.unpack_from("!I", g)[0])] = hashlib.sha256(g).hexdigest()
            elif s is lst:
                conn, _ = lst.accept()
            else:
                assert conn is not None
                chunk = conn.recv(1 << 20)
                if not chunk:
                    conn.close()
                    tcp_done = True
                    continue
                digest.update(chunk)
                tcp_bytes += len(chunk)
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
    p.add_argument("--out", required=True)
    a = p.parse_args(argv)
    doc = _send(a) if a.role == "send" else _recv(a)
    tmp = Path(a.out + ".tmp")
    tmp.write_text(json.dumps(doc))
    tmp.replace(a.out)
    return 0


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1:]))
