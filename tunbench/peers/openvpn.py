"""``peer-openvpn``: two OpenVPN 2.6 instances in point-to-point mode over 127.0.0.1.

Each instance owns one TUN device. No ``--ifconfig`` (the harness addresses the devices),
data-channel offload off (``--disable-dco``: the kernel module would do the forwarding,
not OpenVPN), compression off, ``--tun-mtu`` = the cell's MTU.

``--crypto none`` (default): no TLS and no key, so OpenVPN runs its data channel in
clear text without authentication (2.6 still allows it and logs a deprecation warning;
2.7 drops it). Ready: the "UDPv4 link remote" line, its last before the event loop.
This mode also runs as two halves on two hosts (``--half``), each instance sending to the
other host's underlay address.

``--crypto aead``: 2.6's static-key mode (``--secret``) only knows CBC ciphers with an
HMAC, so the modern AEAD path is TLS: one ``--tls-server`` and one ``--tls-client`` with
self-signed P-256 certificates made by ``openssl``, each pinned by
``--peer-fingerprint``; the data channel negotiates AES-256-GCM. Ready: "Initialization
Sequence Completed", printed once the TLS handshake with the other instance is done.
"""

from __future__ import annotations

import hashlib
import ssl
import sys
from pathlib import Path

from tunbench.peers.base import Daemon, Peer, Setup, run_tool
from tunbench.peers.launcher import main


class OpenVPN(Peer):
    name = "peer-openvpn"
    module = "tunbench.peers.openvpn"
    program = "openvpn"
    package = "openvpn"
    crypto = {  # noqa: RUF012 (read-only class data)
        "none": "no cipher, no HMAC",
        "aead": "TLS 1.3 + AES-256-GCM data channel",
    }
    summary = "two OpenVPN 2.6 instances, p2p over UDP on 127.0.0.1, no DCO, no compression"
    halves = True
    half_crypto = ("none",)  # aead's certificates are made per launch: one host only

    def needs(self, crypto: str) -> dict[str, str]:
        need = super().needs(crypto)
        if crypto == "aead":
            need["openssl"] = "openssl"
        return need

    def daemons(self, s: Setup) -> list[Daemon]:
        out = []
        for i in (0, 1):
            host, port = s.endpoint(i)
            argv = [
                "openvpn",
                "--dev",
                s.temp[i],
                "--dev-type",
                "tun",
                "--proto",
                "udp4",
                "--local",
                s.bind,
                "--lport",
                str(s.ports[i]),
                "--remote",
                host,
                "--rport",
                str(port),
                "--disable-dco",
                "--allow-compression",
                "no",
                "--tun-mtu",
                str(s.args.mtu),
                "--verb",
                "3",
            ]
            ready = r"UDPv4 link remote"
            if s.crypto == "aead":
                argv += self._tls(s, i)
                ready = r"Initialization Sequence Completed"
            out.append(Daemon(f"openvpn-{i + 1}", argv, s.temp[i], ready))
        return out

    def _tls(self, s: Setup, i: int) -> list[str]:
        """TLS options of instance ``i``; makes both certificates on the first call."""
        certs = [_certificate(s.dir, n) for n in (1, 2)]
        role = ["--tls-server", "--dh", "none"] if i == 0 else ["--tls-client"]
        return [
            *role,
            "--cert",
            str(certs[i][0]),
            "--key",
            str(certs[i][1]),
            "--peer-fingerprint",
            _fingerprint(certs[1 - i][0]),
            "--data-ciphers",
            "AES-256-GCM",
        ]


def _certificate(directory: Path, n: int) -> tuple[Path, Path]:
    """A self-signed P-256 certificate and key (made once per launch)."""
    cert, key = directory / f"cert{n}.pem", directory / f"key{n}.pem"
    if not cert.exists():
        run_tool(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-days",
                "2",
                "-subj",
                f"/CN=tunbench-peer-{n}",
                "-keyout",
                str(key),
                "-out",
                str(cert),
            ]
        )
    return cert, key


def _fingerprint(cert: Path) -> str:
    """SHA-256 of the certificate's DER, as ``--peer-fingerprint`` wants it (AB:CD:...)."""
    der = ssl.PEM_cert_to_DER_cert(cert.read_text())
    digest = hashlib.sha256(der).hexdigest().upper()
    return ":".join(digest[k : k + 2] for k in range(0, len(digest), 2))


if __name__ == "__main__":
    sys.exit(main(OpenVPN))
