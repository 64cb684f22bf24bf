"""``peer-tinc``: two tinc 1.0 daemons (``tincd``) in router mode over 127.0.0.1.

Node 1 owns the first device and announces the first /24, node 2 the second; node 2
connects to node 1 (the meta connection, TCP), and packets go over UDP between the same
ports. Each node has its own configuration directory with a fresh 2048-bit RSA key
(``tincd -K``), path MTU discovery off (so no packet takes the TCP fallback while probes
run), compression off. Node 1 starts first; node 2 starts once node 1 logs "Ready".

``--crypto none`` (default): ``Cipher = none``, ``Digest = none``, ``MACLength = 0``.
``--crypto cbc-hmac``: AES-256-CBC with an HMAC-SHA256 (16 bytes) per packet; tinc 1.0
has no AEAD cipher.
Ready: "Connection with node<N> ... activated" in both logs (debug level 1).
tincd stops on SIGTERM; SIGINT only raises its debug level.
"""

from __future__ import annotations

import sys
from pathlib import Path

from tunbench.peers.base import Daemon, Peer, Setup, run_tool
from tunbench.peers.launcher import main

CIPHERS = {
    "none": ("none", "none", 0),
    "cbc-hmac": ("aes-256-cbc", "sha256", 16),
}


class Tinc(Peer):
    name = "peer-tinc"
    module = "tunbench.peers.tinc"
    program = "tincd"
    package = "tinc"
    crypto = {  # noqa: RUF012
        "none": "no cipher, no MAC",
        "cbc-hmac": "AES-256-CBC + HMAC-SHA256 (tinc 1.0 has no AEAD)",
    }
    summary = "two tinc 1.0 daemons in router mode, UDP on 127.0.0.1, no compression"

    def daemons(self, s: Setup) -> list[Daemon]:
        confs = [self._configure(s, n) for n in (1, 2)]
        for n in (1, 2):  # each node knows the other's host file (address, subnet, key)
            other = 3 - n
            src = confs[other - 1] / "hosts" / f"node{other}"
            (confs[n - 1] / "hosts" / f"node{other}").write_text(src.read_text())
        return [
            Daemon(
                f"tincd-{n}",
                [
                    "tincd",
                    "--config",
                    str(confs[n - 1]),
                    "--no-detach",
                    "--debug=1",
                    f"--pidfile={confs[n - 1] / 'tinc.pid'}",
                ],
                s.temp[n - 1],
                rf"Connection with node{3 - n} .* activated",
                listening=r"\bReady\b" if n == 1 else None,
            )
            for n in (1, 2)
        ]

    def _configure(self, s: Setup, n: int) -> Path:
        """Node ``n``'s directory: tinc.conf, its host file, its RSA key pair."""
        conf = s.dir / f"node{n}"
        (conf / "hosts").mkdir(parents=True)
        lines = [
            f"Name = node{n}",
            f"Interface = {s.temp[n - 1]}",
            "DeviceType = tun",
            "Mode = router",
            "AddressFamily = ipv4",
            f"BindToAddress = 127.0.0.1 {s.ports[n - 1]}",
        ]
        if n == 2:
            lines.append("ConnectTo = node1")
        (conf / "tinc.conf").write_text("\n".join(lines) + "\n")
        cipher, digest, maclen = CIPHERS[s.crypto]
        host = [
            f"Address = 127.0.0.1 {s.ports[n - 1]}",
            f"Subnet = {s.subnets[n - 1]}",
            f"Cipher = {cipher}",
            f"Digest = {digest}",
            f"MACLength = {maclen}",
            "Compression = 0",
            "PMTUDiscovery = no",
        ]
        (conf / "hosts" / f"node{n}").write_text("\n".join(host) + "\n")
        # appends the public key to hosts/node<n>, writes rsa_key.priv; no prompt without a tty
        run_tool(["tincd", "--config", str(conf), "--generate-keys=2048"], stdin="")
        return conf


if __name__ == "__main__":
    sys.exit(main(Tinc))
