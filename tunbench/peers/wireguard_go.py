"""``peer-wireguard-go``: two wireguard-go instances configured with ``wg``.

Each instance owns one TUN device; ``wg set`` gives each a fresh key, a listen port on
127.0.0.1's namespace, the other as its only peer (endpoint 127.0.0.1:port) with
allowed-ips covering both /24s. WireGuard has no cipher-less mode: ChaCha20-Poly1305
always.

Keys: derived from a seed (:meth:`Setup.secret`): random per launch on one host, the
shared ``--secret`` in half mode, where each host runs one instance (``--half a|b``) with
the other host's underlay address (``--remote``) as its peer's endpoint.

Ready: the instance logs "UAPI listener started" (LOG_LEVEL=verbose) and its device
exists; then ``wg set`` configures it through that control socket and returns once the
configuration is applied. The rename is safe: this wireguard-go learns the device's state
from an empty write (EINVAL = up on 6.x kernels) and from netlink, which never sees the
device again once the harness moved it.

Debian's wireguard-go (0.0.20220316) predates wireguard-go's TUN offload work
(IFF_VNET_HDR, GSO/GRO, 2023): it reads and writes one packet per syscall.
Its control sockets live in /var/run/wireguard/<temporary name>.sock; a SIGKILLed
instance leaves one behind, which the launcher (or ``tunbench clean``) removes.
"""

from __future__ import annotations

import base64
import sys
from collections.abc import Sequence
from pathlib import Path

from tunbench.peers.base import (
    Daemon,
    Peer,
    Setup,
    curve25519_secret,
    run_tool,
    write_private,
)
from tunbench.peers.launcher import main

SOCKET_DIR = Path("/var/run/wireguard")


class WireguardGo(Peer):
    name = "peer-wireguard-go"
    module = "tunbench.peers.wireguard_go"
    program = "wireguard-go"
    package = "wireguard-go"
    crypto = {"aead": "ChaCha20-Poly1305 (WireGuard has no cipher-less mode)"}  # noqa: RUF012
    summary = "two wireguard-go instances (configured with wg), UDP on 127.0.0.1"
    halves = True

    def needs(self, crypto: str) -> dict[str, str]:
        return {**super().needs(crypto), "wg": "wireguard-tools"}

    def daemons(self, s: Setup) -> list[Daemon]:
        env = {"LOG_LEVEL": "verbose"}
        return [
            Daemon(
                f"wireguard-go-{i + 1}",
                ["wireguard-go", "-f", s.temp[i]],
                s.temp[i],
                r"UAPI listener started",
                env=env,
            )
            for i in (0, 1)
        ]

    def configure(self, s: Setup, daemons: Sequence[Daemon]) -> None:
        keys = [private_key(s.secret(f"wg{i + 1}")) for i in (0, 1)]
        pubs = [run_tool(["wg", "pubkey"], stdin=k + "\n").strip() for k in keys]
        allowed = ",".join(s.subnets)
        for i in s.instances:
            host, port = s.endpoint(i)
            key = write_private(s.dir / f"wg{i + 1}.key", keys[i] + "\n")
            run_tool(
                [
                    "wg",
                    "set",
                    s.temp[i],
                    "private-key",
                    str(key),
                    "listen-port",
                    str(s.ports[i]),
                    "peer",
                    pubs[1 - i],
                    "endpoint",
                    f"{host}:{port}",
                    "allowed-ips",
                    allowed,
                ]
            )

    def leftovers(self, s: Setup) -> list[Path]:
        return [SOCKET_DIR / f"{s.temp[i]}.sock" for i in s.instances]


def private_key(raw: bytes) -> str:
    """A private key as ``wg genkey`` prints it (base64) from 32 bytes of seed."""
    return base64.b64encode(curve25519_secret(raw)).decode()


if __name__ == "__main__":
    sys.exit(main(WireguardGo))
