"""``peer-quicktun``: two QuickTun daemons in TUN mode over 127.0.0.1.

QuickTun is configured through environment variables only, as ifupdown hands them over:
Debian's build reads options with the ``IF_QT_`` prefix ifupdown gives ``qt_*`` lines
(plain ``PROTOCOL`` etc. are ignored) and the device name from ``IFACE``. Each instance
binds 127.0.0.1:<port> and connects its UDP socket to the other's; no packet information
header (``USE_PI=0``).

``--crypto none`` (default): protocol ``raw``, packets go as they are.
``--crypto aead``: protocol ``nacltai``, NaCl's crypto_box (Curve25519,
XSalsa20-Poly1305) with TAI64 timestamps as nonces; key pairs from Debian's ``keypair``.
Ready: "The tunnel is now operational!" (printed after the device is open).
"""

from __future__ import annotations

import sys

from tunbench.peers.base import Daemon, Peer, Setup, run_tool
from tunbench.peers.launcher import main

PROTOCOLS = {"none": "raw", "aead": "nacltai"}


class QuickTun(Peer):
    name = "peer-quicktun"
    module = "tunbench.peers.quicktun"
    program = "quicktun"
    package = "quicktun"
    crypto = {  # noqa: RUF012
        "none": "protocol raw",
        "aead": "protocol nacltai (XSalsa20-Poly1305)",
    }
    summary = "two QuickTun daemons in TUN mode, UDP on 127.0.0.1"

    def needs(self, crypto: str) -> dict[str, str]:
        need = super().needs(crypto)
        if crypto == "aead":
            need["keypair"] = "quicktun"
        return need

    def version(self) -> str | None:
        return f"QuickTun {_package_version('quicktun') or '?'}"

    def daemons(self, s: Setup) -> list[Daemon]:
        keys = [_keypair() for _ in (0, 1)] if s.crypto == "aead" else []
        out = []
        for i in (0, 1):
            env = {
                "TUN_MODE": "1",
                "USE_PI": "0",
                "PROTOCOL": PROTOCOLS[s.crypto],
                "LOCAL_ADDRESS": "127.0.0.1",
                "LOCAL_PORT": str(s.ports[i]),
                "REMOTE_ADDRESS": "127.0.0.1",
                "REMOTE_PORT": str(s.ports[1 - i]),
            }
            if keys:
                env |= {
                    "PRIVATE_KEY": keys[i][0],
                    "PUBLIC_KEY": keys[1 - i][1],
                    "TIME_WINDOW": "5",
                }
            out.append(
                Daemon(
                    f"quicktun-{i + 1}",
                    ["quicktun"],
                    s.temp[i],
                    r"The tunnel is now operational",
                    env={"IFACE": s.temp[i], **{f"IF_QT_{k}": v for k, v in env.items()}},
                )
            )
        return out


def _keypair() -> tuple[str, str]:
    """(secret, public) from Debian's ``keypair`` tool, hex."""
    found = dict(line.split(": ", 1) for line in run_tool(["keypair"]).splitlines() if ": " in line)
    return found["SECRET"].strip(), found["PUBLIC"].strip()


def _package_version(package: str) -> str | None:
    from tunbench.peers.base import first_line

    return first_line(["dpkg-query", "--show", "--showformat=${Version}", package])


if __name__ == "__main__":
    sys.exit(main(QuickTun))
