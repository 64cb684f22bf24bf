"""``peer-gvpe``: two GVPE 3.1 nodes over UDP on 127.0.0.1.

GVPE is a virtual *Ethernet*: on Linux (Debian builds its ``native/linux`` interface)
each node opens its device as TAP, not TUN, gives it the node's MAC address
(fe:fd:80:00:00:<node id>) and forwards frames by destination MAC; broadcasts go to
every node. So in this row ARP runs through the tunnel, and each packet carries a
14-byte Ethernet header through the daemon; the harness treats the devices like any
other (addresses, routes, MTU).

Both nodes read one configuration (``gvpe.conf``: node1 and node2 on 127.0.0.1 with
their own UDP ports, ``connect = always``, compression off) from one directory. The key
pair is fresh per launch but shared by the two nodes (``hostkey``, and its public half as
``pubkey/node1`` and ``pubkey/node2``): GVPE's RSA key size is fixed at build time, 3072
bits in Debian's, and one such key took up to ~6 s to make on this busy 2-core machine,
so a second one would often put the cell past the harness's 10 s wait for its devices.
Only the handshake uses it; the per-packet path is the same.

GVPE has no runtime cipher choice: the cipher and MAC are fixed at build time. Debian's
build: AES-128 in CTR mode with an HMAC on every packet, keys from an RSA-OAEP + X25519
exchange. Ready: "connection established" in both logs.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tunbench.peers.base import Daemon, Peer, PeerError, Setup
from tunbench.peers.launcher import main

KEYGEN_TIMEOUT = 7.0  # seconds; the harness waits 10 s for the devices in all
# what GVPE adds to each frame and subtracts from "mtu" for its device (1500 -> 1434)
OVERHEAD = 66


class Gvpe(Peer):
    name = "peer-gvpe"
    module = "tunbench.peers.gvpe"
    program = "gvpe"
    package = "gvpe"
    crypto = {  # noqa: RUF012 (read-only class data)
        "ctr-hmac": "AES-128-CTR + HMAC, fixed at build time (GVPE has no cipher-less mode)",
    }
    summary = "two GVPE nodes (TAP devices: GVPE is a virtual Ethernet), UDP on 127.0.0.1"

    def needs(self, crypto: str) -> dict[str, str]:
        return {**super().needs(crypto), "gvpectrl": "gvpe"}

    def daemons(self, s: Setup) -> list[Daemon]:
        conf = s.dir / "conf"
        (conf / "pubkey").mkdir(parents=True)
        lines = [
            "enable-udp = yes",
            "compress = no",
            "connect = always",
            "loglevel = info",
            "ifpersist = no",
            "if-up = /bin/true",  # required; GVPE itself sets the MAC, the harness the rest
            "private-key = hostkey",
            f"pid-file = {s.dir}/gvpe-%s.pid",
            f"mtu = {s.args.mtu + OVERHEAD}",
            *(f"on node{i + 1} ifname = {s.temp[i]}" for i in (0, 1)),
        ]
        for i in (0, 1):
            lines += [f"node = node{i + 1}", "hostname = 127.0.0.1", f"udp-port = {s.ports[i]}"]
        (conf / "gvpe.conf").write_text("\n".join(lines) + "\n")
        _generate_key(conf, ["node1", "node2"])
        return [
            Daemon(
                f"gvpe-{i + 1}",
                ["gvpe", "--config", str(conf), "--no-detach", f"node{i + 1}"],
                s.temp[i],
                rf"node{2 - i}\(udp/127\.0\.0\.1:{s.ports[1 - i]}\): connection established",
            )
            for i in (0, 1)
        ]


def _generate_key(conf: Path, nodes: list[str]) -> None:
    """One fresh RSA key pair, ``hostkey`` for every node and its public half as each
    ``pubkey/<node>``. gvpectrl gets an empty configuration of its own: given the real one,
    it would try to read the public keys it is about to write."""
    scratch = conf.parent / "keygen"
    scratch.mkdir()
    (scratch / "gvpe.conf").write_text("")
    argv = ["gvpectrl", "--config", str(scratch), "--quiet", f"--generate-key={scratch}/key"]
    try:
        out = subprocess.run(
            argv, capture_output=True, text=True, timeout=KEYGEN_TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise PeerError(
            f"gvpectrl did not generate an RSA key within {KEYGEN_TIMEOUT:.0f}s"
        ) from exc
    if out.returncode != 0:
        tail = (out.stderr or out.stdout).strip().splitlines()[-1:] or ["no output"]
        raise PeerError(f"gvpectrl -g exited with status {out.returncode}: {tail[0]}")
    public = (scratch / "key").read_text()
    for n in nodes:
        (conf / "pubkey" / n).write_text(public)
    (scratch / "key.privkey").replace(conf / "hostkey")
    (conf / "hostkey").chmod(0o600)


if __name__ == "__main__":
    sys.exit(main(Gvpe))
