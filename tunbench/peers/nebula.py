"""``peer-nebula``: two Nebula 1.6 nodes over 127.0.0.1, each carrying one /24.

Per launch, ``nebula-cert`` makes a fresh CA and two host certificates signed by it. Node
``n`` gets overlay address 192.0.2.n/24 (TEST-NET-1, so it can never be a real network)
and the cell's n-th /24 as a certificate subnet: Nebula only accepts a packet from a
tunnel whose source address the sending host's certificate covers, and only sends one
whose source its own certificate covers. Each node reaches the other /24 through an
``unsafe_routes`` entry via the other node's overlay address, which
``static_host_map`` pins to 127.0.0.1:<port>; no lighthouse, no relays, no hole
punching. The firewall lets everything through (conntrack still runs, as in any Nebula).
Nebula would put the overlay address and a route on its device; ``install: false``
keeps the unsafe route out of the kernel, and the harness flushes the rest when it
moves the device.

Nebula has no cipher-less mode. ``--crypto aead`` (default): ``cipher: aes``
(AES-256-GCM, Nebula's default). ``--crypto chachapoly``: ChaCha20-Poly1305.
Ready: "Nebula interface is active" in its log (the device is configured and the UDP
socket bound); the handshake happens on the first packet, as in real use.
"""

from __future__ import annotations

import json
import re
import sys

from tunbench.peers.base import Daemon, Peer, Setup, first_line, run_tool
from tunbench.peers.launcher import main

CIPHERS = {"aead": "aes", "chachapoly": "chachapoly"}
OVERLAY = "192.0.2.{n}"


class Nebula(Peer):
    name = "peer-nebula"
    module = "tunbench.peers.nebula"
    program = "nebula"
    package = "nebula"
    crypto = {  # noqa: RUF012 (read-only class data)
        "aead": "AES-256-GCM (Nebula has no cipher-less mode)",
        "chachapoly": "ChaCha20-Poly1305",
    }
    summary = "two Nebula nodes (certificate subnets, unsafe routes), UDP on 127.0.0.1"

    def needs(self, crypto: str) -> dict[str, str]:
        return {**super().needs(crypto), "nebula-cert": "nebula"}

    def version(self) -> str | None:
        line = first_line([self.program, "-version"]) or ""
        found = re.search(r"Version:\s*(\S+)", line)
        return f"nebula {found.group(1)}" if found else line or None

    def daemons(self, s: Setup) -> list[Daemon]:
        d = s.dir
        run_tool(
            [
                "nebula-cert",
                "ca",
                "-name",
                "tunbench peer CA",
                "-duration",
                "48h",
                "-out-crt",
                str(d / "ca.crt"),
                "-out-key",
                str(d / "ca.key"),
            ]
        )
        out = []
        for i in (0, 1):
            n = i + 1
            run_tool(
                [
                    "nebula-cert",
                    "sign",
                    "-ca-crt",
                    str(d / "ca.crt"),
                    "-ca-key",
                    str(d / "ca.key"),
                    "-name",
                    f"node{n}",
                    "-ip",
                    OVERLAY.format(n=n) + "/24",
                    "-subnets",
                    s.subnets[i],
                    "-out-crt",
                    str(d / f"node{n}.crt"),
                    "-out-key",
                    str(d / f"node{n}.key"),
                ]
            )
            conf = d / f"node{n}.yml"
            conf.write_text(json.dumps(self._config(s, i), indent=1) + "\n")  # JSON is YAML
            out.append(
                Daemon(
                    f"nebula-{n}",
                    ["nebula", "-config", str(conf)],
                    s.temp[i],
                    r"Nebula interface is active",
                )
            )
        return out

    def _config(self, s: Setup, i: int) -> dict[str, object]:
        n, other = i + 1, 2 - i
        any_rule = [{"port": "any", "proto": "any", "host": "any"}]
        return {
            "pki": {
                "ca": str(s.dir / "ca.crt"),
                "cert": str(s.dir / f"node{n}.crt"),
                "key": str(s.dir / f"node{n}.key"),
            },
            "static_host_map": {
                OVERLAY.format(n=other): [f"127.0.0.1:{s.ports[1 - i]}"],
            },
            "lighthouse": {"am_lighthouse": False, "hosts": []},
            "listen": {"host": "127.0.0.1", "port": s.ports[i]},
            "punchy": {"punch": False},
            "relay": {"am_relay": False, "use_relays": False},
            "cipher": CIPHERS[s.crypto],
            "tun": {
                "dev": s.temp[i],
                "mtu": s.args.mtu,
                "unsafe_routes": [
                    {
                        "route": s.subnets[1 - i],
                        "via": OVERLAY.format(n=other),
                        "install": False,
                    }
                ],
            },
            "logging": {"level": "info", "format": "text"},
            "firewall": {"outbound": any_rule, "inbound": any_rule},
        }


if __name__ == "__main__":
    sys.exit(main(Nebula))
