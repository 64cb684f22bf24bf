"""The verify stream check on loopback: byte-for-byte compare and the sender's window.

No root: both ends run on 127.0.0.1, the acknowledgement channel is a Unix socket in
``tmp_path``, exactly as verify wires them through a forwarder.
"""

from __future__ import annotations

import argparse
import hashlib
import socket
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tunbench.load import stream
from tunbench.system.procs import wait_until


def _free_port() -> int:
    with socket.socket() as t, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        t.bind(("127.0.0.1", 0))
        port = t.getsockname()[1]
        u.bind(("127.0.0.1", port))
        return int(port)


@contextmanager
def _receiver(tmp_path: Path, udp_count: int) -> Iterator[tuple[int, Path, Path]]:
    """A receiver child on loopback, ready: yields its port, its output and the ack path;
    on leaving, it must have exited 0 (it is killed if it has not)."""
    port = _free_port()
    recv_out, ack = tmp_path / "recv.json", tmp_path / "a"
    proc = subprocess.Popen(stream.receiver_argv("127.0.0.1", port, recv_out, ack, udp_count))
    ready = recv_out.with_name("recv.json.ready")
    try:
        assert wait_until(lambda: ready.exists() or proc.poll() is not None, 10)
        assert ready.exists(), "the receiver exited before it was ready"
        yield port, recv_out, ack
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.parametrize(("size", "gso"), [(1200, False), (1200, True), (8000, False)])
def test_loopback_check_is_clean(tmp_path: Path, size: int, gso: bool) -> None:
    send_out = tmp_path / "send.json"
    with _receiver(tmp_path, 100) as (port, recv_out, ack):
        argv = stream.sender_argv("127.0.0.1", port, send_out, ack, 1 << 16, 100, size, gso)
        subprocess.run(argv, check=True, timeout=30)
    sent, got = stream.parse(send_out), stream.parse(recv_out)
    assert len(sent["udp"]) == 100
    assert sent["udp_unacknowledged"] == 0  # every burst was acknowledged, none waited out
    assert stream.compare(sent, got) == []
    got["udp"]["7"] = "0" * 64
    del got["udp"]["9"]
    assert stream.compare(sent, got) == [
        "UDP: 1 of 100 datagrams lost (first seq 9)",
        "UDP: 1 datagrams corrupted (first seq 7)",
    ]


def test_burst_size_keeps_bytes_per_burst() -> None:
    assert stream.burst_size(1200) == 8
    assert stream.burst_size(8000) == 1
    assert stream.burst_size(64) == 8


def test_sender_keeps_two_bursts_in_flight(tmp_path: Path) -> None:
    """Nothing beyond two bursts leaves the sender until the receiver acknowledges."""
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(("127.0.0.1", 0))
    port = u.getsockname()[1]
    tcp = socket.create_server(("127.0.0.1", port))
    ack_lst = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    ack_lst.bind(str(tmp_path / "a"))
    ack_lst.listen(1)
    args = argparse.Namespace(
        host="127.0.0.1", port=port, udp_count=40, udp_size=1200, udp_gso=False,
        tcp_bytes=1024, ack=str(tmp_path / "a"),
    )  # fmt: skip
    result: dict[str, object] = {}
    sender = threading.Thread(target=lambda: result.update(stream._send(args)), daemon=True)
    sender.start()
    conn, _ = ack_lst.accept()
    u.settimeout(5)
    first = [u.recv(65535) for _ in range(16)]
    u.settimeout(0.3)
    with pytest.raises(TimeoutError):
        u.recv(65535)  # a third burst would be here by now
    for g in first[:8]:
        conn.sendall(g[:4])
    u.settimeout(5)
    second = [u.recv(65535) for _ in range(8)]
    assert [g[:4] for g in second] == [i.to_bytes(4, "big") for i in range(16, 24)]
    for g in first[8:] + second:
        conn.sendall(g[:4])
    for _ in range(16):
        conn.sendall(u.recv(65535)[:4])
    c, _ = tcp.accept()
    data = b""
    while chunk := c.recv(1 << 16):
        data += chunk
    c.close()
    sender.join(timeout=10)
    assert not sender.is_alive()
    assert result["tcp_sha256"] == hashlib.sha256(data).hexdigest()
    for s in (u, tcp, ack_lst, conn):
        s.close()


class _DropEveryFourth(socket.socket):
    sent = 0

    def send(self, data: bytes, *args: object) -> int:  # type: ignore[override]
        _DropEveryFourth.sent += 1
        return len(data) if _DropEveryFourth.sent % 4 == 0 else super().send(data)


def test_a_lossy_path_is_reported_and_both_ends_finish(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Lost datagrams are waited out once, then the check goes on: both ends exit cleanly
    (the receiver survives the sender leaving with acknowledgements unread)."""
    with _receiver(tmp_path, 80) as (port, recv_out, ack):
        _DropEveryFourth.sent = 0
        monkeypatch.setattr(stream.socket, "socket", _DropEveryFourth)
        args = argparse.Namespace(
            host="127.0.0.1", port=port, udp_count=80, udp_size=1200, udp_gso=False,
            tcp_bytes=1 << 16, ack=str(ack),
        )  # fmt: skip
        sent = stream._send(args)
        monkeypatch.undo()
    assert sent["udp_unacknowledged"] > 0
    problems = stream.compare(sent, stream.parse(recv_out))
    assert problems == ["UDP: 20 of 80 datagrams lost (first seq 3)"]
