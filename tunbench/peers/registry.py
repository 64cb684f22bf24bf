"""The peer launchers by row name: what :mod:`tunbench.cell.variants` lists as the ``peer-*``
rows besides ``peer-socat``, and how a spec's options are checked and shown."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from tunbench.peers.base import Peer, PeerArgumentError, validate
from tunbench.peers.fastd import Fastd
from tunbench.peers.gvpe import Gvpe
from tunbench.peers.nebula import Nebula
from tunbench.peers.openvpn import OpenVPN
from tunbench.peers.quicktun import QuickTun
from tunbench.peers.tinc import Tinc
from tunbench.peers.vtun import Vtun
from tunbench.peers.wireguard_go import WireguardGo
from tunbench.peers.yggdrasil import Yggdrasil

LAUNCHERS: dict[str, type[Peer]] = {
    p.name: p for p in (OpenVPN, WireguardGo, Tinc, Fastd, QuickTun, Nebula, Yggdrasil, Vtun, Gvpe)
}

# Rows that are listed but cannot carry a cell's traffic here -> why (each launcher exits 1
# with that reason); the default matrix leaves them out.
CANNOT_FORWARD: dict[str, str] = {Yggdrasil.name: Yggdrasil.cannot_forward}

# Opt-in rows: the encrypted modes, next to each default (cipher-less where there is one).
CRYPTO_MODES: tuple[str, ...] = tuple(
    f"{p.name} --crypto {mode}" for p in LAUNCHERS.values() for mode in list(p.crypto)[1:]
)


def parse(name: str, args: Sequence[str]) -> argparse.Namespace:
    """A peer spec's options, validated (PeerArgumentError with a one-line reason)."""
    return validate(LAUNCHERS[name], args)


def usage(name: str) -> str:
    """The options ``tunbench list`` shows: ``[--crypto none|aead]``."""
    return f"[--crypto {'|'.join(LAUNCHERS[name].crypto)}]"


def channel(name: str, options: argparse.Namespace) -> str:
    """The table's Channel column: the hop between the daemons and its cipher."""
    return f"udp lo, {options.crypto}"


__all__ = [
    "CANNOT_FORWARD",
    "CRYPTO_MODES",
    "LAUNCHERS",
    "PeerArgumentError",
    "channel",
    "parse",
    "usage",
]
