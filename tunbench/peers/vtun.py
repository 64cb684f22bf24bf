"""``peer-vtun``: a vtun 3.0 server and client in ``tun`` mode, UDP over 127.0.0.1.

vtun is client/server: ``vtund -s`` listens on TCP 127.0.0.1:<port>; the client connects,
both authenticate with the session's password (fresh per launch), the server hands over
the session's options (``type tun``, ``proto udp``, compression off, the cipher), and
both then move the data to a connected UDP socket on the same ports, one packet per
datagram with vtun's 2-byte frame header. The server forks one process per session, so
a launch runs three ``vtund``: the listening server (idle), the server's session process
(the first device) and the client (the second). ``multi yes`` keeps vtund from locking
the session in /var/lock/vtund/ (a file a SIGKILL would leave behind).

``--crypto none`` only: ``encrypt no``. Debian's vtun 3.0.4 has no encryption that works
here (and none with a MAC: vtun 3.0 authenticates only the session; Debian's
README.Encryption calls the protocol weak): with ``encrypt yes`` (Blowfish-128-ECB, the
default method) the client crashes with SIGSEGV right after the handshake, as OpenSSL 3
has no Blowfish in its default provider; with ``encrypt aes256cbc`` the session comes up
but the server ends it on the first TCP stream ("Invalid argument" writing a decrypted
packet to its device), at MTU 1500 and 1400 alike.

vtund resolves addresses with AI_ADDRCONFIG, which finds no IPv4 in a namespace whose
only address is 127.0.0.1 (the forwarder namespace of a cell): there the launcher adds
127.0.0.2/8 to ``lo`` first (gone with the namespace). Ready: the server's TCP port in
LISTEN before the client starts (vtund logs nothing once it listens), then "UDP
connection initialized" in both logs.
"""

from __future__ import annotations

import secrets
import socket
import struct
import sys
from dataclasses import dataclass
from pathlib import Path

from tunbench.peers.base import Daemon, Peer, Setup, first_line, run_tool
from tunbench.peers.launcher import main

CIPHERS = {"none": "no"}
TCP_LISTEN = "0A"  # the st column of /proc/net/tcp


class Vtun(Peer):
    name = "peer-vtun"
    module = "tunbench.peers.vtun"
    program = "vtund"
    package = "vtun"
    crypto = {  # noqa: RUF012 (read-only class data)
        "none": "encrypt no (Debian's vtun 3.0.4 has no cipher that works, see the module)",
    }
    summary = "a vtun server and client in tun mode, UDP on 127.0.0.1, no compression"

    def needs(self, crypto: str) -> dict[str, str]:
        return {**super().needs(crypto), "ip": "iproute2"}

    def version(self) -> str | None:
        # vtund has no version option; its usage line says only "3.X"
        return f"vtun {first_line(['dpkg-query', '--show', '--showformat=${Version}', 'vtun'])}"

    def daemons(self, s: Setup) -> list[Daemon]:
        if not _ipv4_configured():
            run_tool(["ip", "address", "add", "127.0.0.2/8", "dev", "lo"])
        session = f"tb-{secrets.token_hex(4)}"
        password = secrets.token_hex(16)
        port = s.ports[0]
        server = s.dir / "server.conf"
        _write_conf(
            server,
            f"port {port}; bindaddr {{ addr 127.0.0.1; }}; timeout 5;",
            session,
            [
                f"passwd {password};",
                "type tun;",
                "proto udp;",
                "compress no;",
                f"encrypt {CIPHERS[s.crypto]};",
                "stat no;",
                "multi yes;",
                f"device {s.temp[0]};",
            ],
        )
        client = s.dir / "client.conf"
        _write_conf(
            client,
            f"port {port}; timeout 5;",
            session,
            [
                f"passwd {password};",
                "keepalive no;",
                "persist no;",
                f"device {s.temp[1]};",
            ],
        )
        ready = r"UDP connection initialized"
        return [
            _Server(
                "vtund-server",
                ["vtund", "-n", "-s", "-f", str(server)],
                s.temp[0],
                ready,
                listening=_Server.LISTENING,
                port=port,
            ),
            Daemon(
                "vtund-client",
                ["vtund", "-n", "-f", str(client), session, "127.0.0.1"],
                s.temp[1],
                ready,
            ),
        ]


@dataclass
class _Server(Daemon):
    """vtund's server logs nothing once it listens: the log the launcher reads gets one line
    more when this namespace's /proc/net/tcp shows its port in LISTEN."""

    LISTENING = r"\[launcher\] TCP port \d+ is listening"
    port: int = 0

    def log(self) -> str:
        text = super().log()
        if _listening(self.port):
            text += f"\n[launcher] TCP port {self.port} is listening\n"
        return text


def _write_conf(path: Path, options: str, session: str, lines: list[str]) -> None:
    body = "\n".join(f"  {line}" for line in lines)
    path.write_text(f"options {{ {options} }}\n{session} {{\n{body}\n}}\n")
    path.chmod(0o600)  # it holds the password


def _ipv4_configured() -> bool:
    """Whether getaddrinfo with AI_ADDRCONFIG (as vtund calls it) returns IPv4 here."""
    try:
        socket.getaddrinfo("127.0.0.1", None, socket.AF_INET, 0, 0, socket.AI_ADDRCONFIG)
    except socket.gaierror:
        return False
    return True


def _listening(port: int) -> bool:
    try:
        rows = Path("/proc/net/tcp").read_text().splitlines()[1:]
    except OSError:
        return False
    (addr,) = struct.unpack("=I", socket.inet_aton("127.0.0.1"))  # the file's byte order
    want = f"{addr:08X}:{port:04X}"
    return any(r.split()[1] == want and r.split()[3] == TCP_LISTEN for r in rows if r.strip())


if __name__ == "__main__":
    sys.exit(main(Vtun))
