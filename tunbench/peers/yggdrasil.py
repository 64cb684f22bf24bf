"""``peer-yggdrasil``: listed, but it cannot carry a cell's traffic, and says why.

Yggdrasil 0.4 (Debian bookworm ships 0.4.7) is an IPv6-only overlay: its TUN device
accepts only IPv6 packets between the node addresses and /64 subnets it derives from
node keys (200::/7). 0.4 removed tunnel routing (crypto-key routing), the one way
earlier versions had to carry other prefixes, IPv4 included, so there is nothing to
configure that would route the cell's IPv4 /24s through it. Yggdrasil's own advice is
to run another tunnel (e.g. ip6gre) over its addresses, which would measure that tunnel
and the kernel too, not one daemon's per-packet path.

So the launcher refuses with that reason (exit 1, the row's error) once the package is
there, before it starts anything. Yggdrasil itself runs in this sandbox (checked by hand
with 0.4.7: two nodes peered over tcp://127.0.0.1; UDP sent to an address in node 2's
/64 through node 1's device came out of node 2's, UDP to 10.0.2.1 through the same
device never did).
"""

from __future__ import annotations

import sys

from tunbench.peers.base import Daemon, Peer, PeerError, Setup, first_line
from tunbench.peers.launcher import main

REASON = (
    "Yggdrasil 0.4 routes only IPv6 between its own 200::/7 addresses (0.4 removed "
    "tunnel routing), so it cannot carry the cell's IPv4 subnets"
)


class Yggdrasil(Peer):
    name = "peer-yggdrasil"
    module = "tunbench.peers.yggdrasil"
    program = "yggdrasil"
    package = "yggdrasil"
    crypto = {  # noqa: RUF012 (read-only class data)
        "aead": "always encrypted (no cipher-less mode); the row cannot run: IPv6 only",
    }
    summary = "cannot run: Yggdrasil 0.4 carries only IPv6 between its own addresses"
    # why the row cannot measure anything (the default matrix leaves it out)
    cannot_forward = REASON

    def version(self) -> str | None:
        # Debian's build answers -version with "Build name: unknown"
        found = first_line(["dpkg-query", "--show", "--showformat=${Version}", "yggdrasil"])
        return f"yggdrasil {found}" if found else None

    def daemons(self, s: Setup) -> list[Daemon]:
        raise PeerError(f"{self.version() or 'yggdrasil'} cannot run here: {REASON}")


if __name__ == "__main__":
    sys.exit(main(Yggdrasil))
