"""The registry of forwarder variants, baselines and external commands; spec parsing.

A spec is what the user types: ``"sync-gso --thread 2"``. Its first word names a
registered variant, a kernel baseline, or else an external forwarder command. Variant
arguments are validated with the variant's own parser before anything is created.

The variants are not listed here: every module of ``forwarders/`` that declares a
``VARIANT`` (a :class:`forwarders.variant.Variant`) is one, and its name, summary, mode,
offload, channel and options are read from that object only.
"""

from __future__ import annotations

import argparse
import importlib
import itertools
import pkgutil
import shlex
import shutil
import sys
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from forwarders.options import ForwarderArgumentError
from forwarders.variant import Variant
from tunbench.errors import UsageError
from tunbench.peers import registry as launchers

# Registry order (the order of ``tunbench list`` and the default matrix): simplest first.
MODE_ORDER = ("sync", "async")
CHANNEL_ORDER = ("-", "queue", "channel", "pool", "framed")


class RegistryError(Exception):
    """A forwarder module declares a VARIANT the registry cannot use (a bug, not input)."""


def discover() -> dict[str, Variant]:
    """Every ``VARIANT`` declared by a module of ``forwarders/``, by name.

    Sync before async, then by what sits between reader and writer (none, queue or
    channel, pool, framed), plain before GSO; a mode or channel kind not listed above
    comes after the known ones.
    """
    import forwarders

    found: list[Variant] = []
    for mod in pkgutil.iter_modules(forwarders.__path__, "forwarders."):
        variant = getattr(importlib.import_module(mod.name), "VARIANT", None)
        if variant is None:
            continue  # shared code, not a variant
        if not isinstance(variant, Variant) or variant.module != mod.name:
            raise RegistryError(
                f"{mod.name}.VARIANT must be a Variant named after its module, got {variant!r}"
            )
        found.append(variant)

    def rank(order: tuple[str, ...], value: str) -> int:
        return order.index(value) if value in order else len(order)

    found.sort(key=lambda v: (rank(MODE_ORDER, v.mode), rank(CHANNEL_ORDER, v.channel_kind), v.gso))
    return {v.name: v for v in found}


class _Registry(Mapping[str, Variant]):
    """The registered variants, discovered on first use (importing them loads trio)."""

    @cached_property
    def _found(self) -> dict[str, Variant]:
        return discover()

    def __getitem__(self, name: str) -> Variant:
        return self._found[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._found)

    def __len__(self) -> int:
        return len(self._found)


VARIANTS: Mapping[str, Variant] = _Registry()

BASELINES: dict[str, str] = {
    "kernel-veth": "a veth pair between the two namespaces, no forwarder (the ceiling)",
    "kernel-router": "veth a<->fwd<->b with IP forwarding in the forwarder namespace "
    "[--no-offload: TSO/GSO/GRO off on its veths, the per-packet ceiling]",
}
BASELINE_MODES = ("kernel-router --no-offload",)


@dataclass(frozen=True)
class Peer:
    """A named external forwarder shipped as a reference row (a C program, not ours)."""

    argv: tuple[str, ...]
    summary: str
    mode: str
    offload: str = "none"
    channel: str = "-"
    launcher: bool = False  # a tunbench/peers launcher: its daemons are sampled, not it


# Placeholders {iface1} {ip1} {iface2} {ip2} {mtu} {stats} {workdir} are filled in by the
# harness.
PEERS: dict[str, Peer] = {
    "peer-socat": Peer(
        (
            "socat",
            "-b65536",
            "TUN,tun-name={iface1},tun-type=tun,iff-no-pi",
            "TUN,tun-name={iface2},tun-type=tun,iff-no-pi",
        ),
        "socat between the two TUN devices (a C reference forwarder)",
        "peer (socat)",
    ),
    # VPN daemons, two instances each, started by a launcher in tunbench/peers/
    **{
        name: Peer(
            launcher.argv(),
            f"{launcher.summary}  {launchers.usage(name)}",
            f"peer ({launcher.program})",
            launcher=True,
        )
        for name, launcher in launchers.LAUNCHERS.items()
    },
}


@dataclass(frozen=True)
class CellSpec:
    """A parsed spec: what one row of the table measures."""

    spec: str
    kind: str  # python | baseline | external
    name: str
    args: tuple[str, ...] = ()
    info: Variant | None = field(default=None, compare=False)
    peer: Peer | None = field(default=None, compare=False)
    # python variants: ``args`` as the variant's own parser reads them (defaults filled in)
    options: argparse.Namespace | None = field(default=None, compare=False)

    @property
    def label(self) -> str:
        """The name a table shows: the spec's first word (``peer-socat``, not ``socat``)."""
        return self.spec.split()[0] if self.spec.split() else self.name

    def forwarder_argv(
        self, iface1: str, ip1: str, iface2: str, ip2: str, mtu: int, stats: Path | None
    ) -> list[str]:
        """The exact command that starts this forwarder (empty for baselines)."""
        if self.kind == "python":
            assert self.info is not None
            argv = [
                sys.executable,
                "-m",
                self.info.module,
                "--iface1",
                iface1,
                "--ip1",
                ip1,
                "--iface2",
                iface2,
                "--ip2",
                ip2,
                "--mtu",
                str(mtu),
            ]
            if stats is not None:
                argv += ["--stats", str(stats)]
            return argv + list(self.args)
        if self.kind == "external":
            subs = {"iface1": iface1, "ip1": ip1, "iface2": iface2, "ip2": ip2, "mtu": str(mtu)}
            # {stats}: a file for what the forwarder reports; {workdir}: the cell's temp dir
            subs["stats"] = str(stats) if stats else ""
            subs["workdir"] = str(stats.parent) if stats else tempfile.gettempdir()
            words = [self.name, *self.args]
            if any("{" in w for w in words):
                try:
                    return [w.format(**subs) for w in words]
                except (KeyError, IndexError, ValueError) as exc:
                    raise UsageError(f"bad placeholder in {self.spec!r}: {exc}") from exc
            return [*words, "--iface1", iface1, "--ip1", ip1, "--iface2", iface2, "--ip2", ip2]
        return []


# Modes of the registered variants that users compare, run by default beside them.
DEFAULT_MODES = (
    "sync-gso --gso split",
    "sync-gso --gso split --engine native",
    "async-gso-framed --gso split",
    "async-gso-framed --gso split --engine native",
    "sync-gso --thread 2",
    "sync-gso --thread 2 --multiqueue",
)


def needs_native(spec: str) -> bool:
    """Whether a spec asks for the native offload engine (optional at install time)."""
    words = shlex.split(spec)
    return "--engine=native" in words or ("--engine", "native") in itertools.pairwise(words)


def default_matrix() -> list[str]:
    """What ``tunbench matrix`` runs without arguments: baselines, peers (less those that
    cannot forward at all, ``launchers.CANNOT_FORWARD``), every variant, then the offload
    and threading modes of ``DEFAULT_MODES`` (the native-engine ones only where that
    engine is built: the pure rows still run on a machine without a compiler; likewise a
    variant that cannot run here, e.g. uring-* without io_uring, is left out)."""
    from tunio.engine import native_available

    native = native_available()
    modes = [m for m in DEFAULT_MODES if native or not needs_native(m)]
    variants = [name for name, v in VARIANTS.items() if v.unavailable() is None]
    peers = [p for p in PEERS if p not in launchers.CANNOT_FORWARD]
    return [*BASELINES, *BASELINE_MODES, *peers, *variants, *modes]


def known_names() -> list[str]:
    return [*VARIANTS, *BASELINES, *PEERS]


def parse_spec(spec: str) -> CellSpec:
    """Parse and validate a spec; raises UsageError with a one-line reason."""
    try:
        words = shlex.split(spec)
    except ValueError as exc:
        raise UsageError(f"cannot parse spec {spec!r}: {exc}") from exc
    if not words:
        raise UsageError("empty spec")
    name, args = words[0], tuple(words[1:])
    if name in VARIANTS:
        info = VARIANTS[name]
        return CellSpec(spec, "python", name, args, info, options=validate_args(info, args))
    if name in launchers.LAUNCHERS:  # a missing daemon fails its own row, not the parse
        peer = PEERS[name]
        try:
            ns = launchers.parse(name, args)
        except launchers.PeerArgumentError as exc:
            raise UsageError(f"{name}: {exc}") from exc
        argv = (*peer.argv[1:], *args)
        return CellSpec(spec, "external", peer.argv[0], argv, peer=peer, options=ns)
    if name in PEERS:
        if args:
            raise UsageError(f"{name} takes no arguments, got {' '.join(args)!r}")
        peer = PEERS[name]
        if shutil.which(peer.argv[0]) is None:
            raise UsageError(f"{name} needs {peer.argv[0]}, which is not installed")
        return CellSpec(spec, "external", peer.argv[0], peer.argv[1:], peer=peer)
    if name in BASELINES:
        allowed = [m.split(None, 1)[1] for m in BASELINE_MODES if m.split()[0] == name]
        if args and " ".join(args) not in allowed:
            what = f"only {' or '.join(allowed)}" if allowed else "no arguments"
            raise UsageError(f"{name} takes {what}, got {' '.join(args)!r}")
        return CellSpec(spec, "baseline", name, args)
    if ("/" in name and Path(name).is_file()) or ("/" not in name and shutil.which(name)):
        return CellSpec(spec, "external", name, args)
    raise UsageError(
        f"unknown variant {name!r}; known: {', '.join(known_names())} "
        "(or give a path to an external forwarder command)"
    )


def validate_args(info: Variant, args: tuple[str, ...]) -> argparse.Namespace:
    """Parse ``args`` with the variant's own parser; bad options raise UsageError."""
    parser = info.build_parser()
    parser.raise_errors = True
    for reserved in parser.harness_flags:
        if any(a == reserved or a.startswith(reserved + "=") for a in args):
            raise UsageError(f"{info.name}: {reserved} belongs to the harness, not to a spec")
    try:
        ns: argparse.Namespace = parser.parse_args(list(args))
    except ForwarderArgumentError as exc:
        raise UsageError(f"{info.name}: {exc}") from exc
    return ns


def describe(cell: CellSpec) -> dict[str, str]:
    """Mode / Offload / Channel columns for the table."""
    if cell.kind == "baseline":
        offload = "none" if "--no-offload" in cell.args else "kernel"
        return {"mode": "kernel", "offload": offload, "channel": "-"}
    if cell.peer is not None:
        channel = cell.peer.channel
        if cell.label in launchers.LAUNCHERS and cell.options is not None:
            channel = launchers.channel(cell.label, cell.options)
        return {"mode": cell.peer.mode, "offload": cell.peer.offload, "channel": channel}
    if cell.kind == "external":
        return {"mode": "external", "offload": "?", "channel": "?"}
    assert cell.info is not None and cell.options is not None
    ns = cell.options  # the values the forwarder will really use
    offload = "none"
    if cell.info.gso:
        # the split path names its engine: gso-split/python, gso-split/native
        offload = f"gso-split/{ns.engine}" if ns.gso == "split" else "gso-passthrough"
    channel = cell.info.channel_kind
    if channel in ("queue", "channel"):
        channel = f"{channel}({ns.depth})"
    elif channel == "pool":
        channel = f"pool({ns.pool})"
    mode = cell.info.mode
    threads = getattr(ns, "thread", 1)
    if threads != 1:
        mode += f" x{threads}" + (" mq" if ns.multiqueue else "")
    return {"mode": mode, "offload": offload, "channel": channel}
