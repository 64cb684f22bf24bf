"""``peer-fastd``: two fastd daemons in TUN mode over 127.0.0.1.

Each instance has a fresh key pair (a secret derived from the launch's seed, its public
key from ``fastd --show-key``), binds 127.0.0.1:<port>,
and has the other as its one peer (``remote 127.0.0.1:<port>``); TUN mode carries one
peer per device, which is exactly this shape.

``--crypto none`` (default): method ``null`` — the handshake still authenticates the
peer's key, packets are neither encrypted nor authenticated.
``--crypto aead``: method ``aes128-gcm`` (AES-128-CTR with GHASH, fastd's GCM).
Ready: "connection with <node...> established" in both logs.
Half mode (two hosts): one instance, bound to any address, its peer at the other host's
underlay address; both halves derive both keys from the shared ``--secret``.
"""

from __future__ import annotations

import sys

from tunbench.peers.base import Daemon, Peer, Setup, curve25519_secret, run_tool, write_private
from tunbench.peers.launcher import main

METHODS = {"none": "null", "aead": "aes128-gcm"}


class Fastd(Peer):
    name = "peer-fastd"
    module = "tunbench.peers.fastd"
    program = "fastd"
    package = "fastd"
    crypto = {"none": "method null", "aead": "method aes128-gcm"}  # noqa: RUF012
    summary = "two fastd daemons in TUN mode, UDP on 127.0.0.1"

    halves = True

    def daemons(self, s: Setup) -> list[Daemon]:
        keys = [secret_key(s.secret(f"fastd{n}")) for n in (1, 2)]
        publics = [self._public(s, key, n) for n, key in enumerate(keys, 1)]
        out = []
        for i in (0, 1):
            host, port = s.endpoint(i)
            conf = s.dir / f"fastd{i + 1}.conf"
            conf.write_text(
                "\n".join(
                    [
                        "log level verbose;",
                        f'interface "{s.temp[i]}";',
                        "mode tun;",
                        f'method "{METHODS[s.crypto]}";',
                        f"bind {s.bind}:{s.ports[i]};",
                        f'include "{s.dir / f"secret{i + 1}.conf"}";',
                        f"mtu {s.args.mtu};",
                        f'peer "node{2 - i}" {{',
                        f'  key "{publics[1 - i]}";',
                        f"  remote {host}:{port};",
                        "}",
                    ]
                )
                + "\n"
            )
            out.append(
                Daemon(
                    f"fastd-{i + 1}",
                    ["fastd", "--config", str(conf)],
                    s.temp[i],
                    rf"connection with <node{2 - i}> established",
                )
            )
        return out

    def _public(self, s: Setup, secret: str, n: int) -> str:
        """Write node ``n``'s secret (0600) and return its public key."""
        path = write_private(s.dir / f"secret{n}.conf", f'secret "{secret}";\n')
        shown = run_tool(["fastd", "--machine-readable", "--show-key", "--config", str(path)])
        return shown.strip()


def secret_key(raw: bytes) -> str:
    """A secret key as ``fastd --generate-key`` prints it (hex) from 32 bytes of seed."""
    return curve25519_secret(raw).hex()


if __name__ == "__main__":
    sys.exit(main(Fastd))
