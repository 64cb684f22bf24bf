"""What every peer launcher is made of: the peer's description (:class:`Peer`: the
programs it needs, its daemons, their configuration), the arguments every launcher takes,
and small helpers (ports, keys, tools' first lines). The life of a launch is
:mod:`tunbench.peers.launcher`'s.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, NoReturn

from tunbench.system.procs import Child

READY_TIMEOUT = 8.0  # seconds; below the harness's 10 s wait for the final device names
STOP_WAIT = 1.5  # seconds a daemon gets after its stop signal before SIGKILL
EXIT_MISSING = 2
HALVES = ("a", "b")  # --half: a owns --iface1, b owns --iface2
HALF_PORT = 51871  # both halves' UDP port on their own host unless --port says otherwise


class PeerError(Exception):
    """A daemon failed to start, to get ready, or died; the launcher exits 1."""


class PeerArgumentError(Exception):
    """Raised instead of exiting when the harness validates a spec's options."""


class _Parser(argparse.ArgumentParser):
    raise_errors = False

    def error(self, message: str) -> NoReturn:
        if self.raise_errors:
            raise PeerArgumentError(message)
        super().error(message)

    def print_help(self, file: Any = None) -> None:
        if self.raise_errors:  # validating a spec: --help would end the launcher at once
            raise PeerArgumentError("--help shows the options and exits; see tunbench list")
        super().print_help(file)

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        if self.raise_errors:  # anything else that would end the launcher at once
            raise PeerArgumentError(message or f"an option would exit with status {status}")
        super().exit(status, message)


def _path(text: str) -> Path | None:
    """An empty value (a placeholder the harness had nothing for) means: not given."""
    return Path(text) if text else None


def _mtu(text: str) -> int:
    value = int(text)
    if not 576 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"MTU must be 576..65535, got {value}")
    return value


@dataclass
class Setup:
    """What one launch decided: where files go, device names, ports, subnets, crypto."""

    args: argparse.Namespace
    dir: Path  # private directory: configuration, keys, daemon logs
    temp: tuple[str, str]  # temporary device names, renamed to iface1/iface2 when ready
    ports: tuple[int, int]  # each instance's UDP (and TCP) port on 127.0.0.1
    subnets: tuple[str, str]  # the /24 behind each device
    seed: str = ""  # random per launch: what keys derive from unless --secret is given

    @property
    def crypto(self) -> str:
        return str(self.args.crypto)

    @property
    def half(self) -> int | None:
        """Half mode: the one instance this launch runs (0 for ``--half a``, 1 for ``b``);
        None when it runs both (one host)."""
        half = getattr(self.args, "half", None)
        return None if half is None else HALVES.index(half)

    @property
    def instances(self) -> tuple[int, ...]:
        """The instances this launch starts: both, or its half's."""
        return (0, 1) if self.half is None else (self.half,)

    def endpoint(self, i: int) -> tuple[str, int]:
        """Where instance ``i`` reaches the other: 127.0.0.1, or in half mode the other
        host's underlay address (``--remote``); the port is the other instance's."""
        host = "127.0.0.1" if self.half is None else str(self.args.remote)
        return host, self.ports[1 - i]

    @property
    def bind(self) -> str:
        """The address each instance listens on: 127.0.0.1, or any in half mode (the
        underlay address is the other host's business)."""
        return "127.0.0.1" if self.half is None else "0.0.0.0"

    def secret(self, what: str) -> bytes:
        """32 bytes both halves derive alike from ``--secret`` (a key neither has to send
        the other); random per launch on one host."""
        seed = getattr(self.args, "secret", None) or self.seed
        if not seed:
            raise PeerError("no seed to derive keys from")
        return hashlib.sha256(f"{seed}/{what}".encode()).digest()

    @property
    def finals(self) -> tuple[str, str]:
        """The names the harness waits for."""
        return (str(self.args.iface1), str(self.args.iface2))


@dataclass
class Daemon:
    """One daemon instance and how to tell that it is ready."""

    name: str  # "openvpn-1"
    argv: list[str]
    iface: str  # the temporary device name it creates
    ready: str  # regex in its log: device open, socket bound, peer reached
    env: dict[str, str] | None = None  # added to the launcher's environment
    listening: str | None = None  # regex to see before the next instance may start
    stop_signal: signal.Signals = signal.SIGTERM
    child: Child | None = None

    def log(self) -> str:
        if self.child is None or self.child.log_path is None:
            return ""
        try:
            return self.child.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def tail(self, lines: int = 3) -> str:
        return self.child.stderr_tail(lines) if self.child else ""


class Peer:
    """One kind of daemon. A subclass names it and writes its two instances' configuration."""

    name: ClassVar[str]  # the table row: "peer-openvpn"
    module: ClassVar[str]  # "tunbench.peers.openvpn"
    program: ClassVar[str]  # the daemon executable
    package: ClassVar[str]  # the Debian package that ships it
    # --crypto choices -> the cipher each means; the first is the default
    crypto: ClassVar[dict[str, str]]
    summary: ClassVar[str]
    halves: ClassVar[bool] = False  # whether it can run as two halves on two hosts
    # the --crypto modes a half can run in (both halves must agree on keys without talking)
    half_crypto: ClassVar[tuple[str, ...] | None] = None  # None: every mode

    def needs(self, crypto: str) -> dict[str, str]:
        """Programs this launch runs -> the Debian package of each."""
        return {self.program: self.package}

    def version(self) -> str | None:
        """The daemon's own version line (recorded in the result file)."""
        return first_line([self.program, "--version"])

    def daemons(self, s: Setup) -> list[Daemon]:
        """Write the configuration of both instances into ``s.dir``; return how to run them."""
        raise NotImplementedError

    def configure(self, s: Setup, daemons: Sequence[Daemon]) -> None:
        """Runs once every instance is ready, before the rename (wireguard-go: ``wg set``)."""

    def leftovers(self, s: Setup) -> list[Path]:
        """Files outside ``s.dir`` a daemon killed with SIGKILL would leave behind."""
        return []

    @classmethod
    def argv(cls) -> tuple[str, ...]:
        """The harness's command, with its placeholders (filled in per cell)."""
        return (
            sys.executable,
            "-m",
            cls.module,
            "--iface1",
            "{iface1}",
            "--ip1",
            "{ip1}",
            "--iface2",
            "{iface2}",
            "--ip2",
            "{ip2}",
            "--mtu",
            "{mtu}",
            "--stats",
            "{stats}",
            "--workdir",
            "{workdir}",
        )


def spec_parser(peer: type[Peer]) -> _Parser:
    """The options a spec may give (``"peer-openvpn --crypto aead"``)."""
    p = _Parser(prog=peer.name, description=peer.summary, allow_abbrev=False)
    choices = list(peer.crypto)
    p.add_argument(
        "--crypto",
        choices=choices,
        default=choices[0],
        help="; ".join(f"{k}: {v}" for k, v in peer.crypto.items()),
    )
    return p


def build_parser(peer: type[Peer]) -> _Parser:
    """Spec options plus the ones the harness fills in."""
    p = spec_parser(peer)
    p.add_argument("--iface1", default="tun11")
    p.add_argument("--ip1", default="10.0.1.1")
    p.add_argument("--iface2", default="tun22")
    p.add_argument("--ip2", default="10.0.2.1")
    p.add_argument("--mtu", type=_mtu, default=1500)
    p.add_argument("--stats", type=_path, default=None, help="write what runs here (JSON)")
    p.add_argument(
        "--workdir", type=_path, default=None, help="parent of the private directory (/tmp)"
    )
    p.add_argument(
        "--half",
        choices=HALVES,
        default=None,
        help="run one instance only (a: --iface1, b: --iface2), talking to the other half "
        "on another host at --remote",
    )
    p.add_argument("--remote", default=None, help="the other half's underlay address")
    p.add_argument("--port", type=int, default=HALF_PORT, help="half mode: both halves' port")
    p.add_argument("--secret", default=None, help="half mode: the seed both halves share")
    return p


def check_half(peer: Peer, args: argparse.Namespace) -> None:
    """Half mode needs the other half's address and a shared seed, and a crypto mode
    whose keys both halves can derive from it (PeerError if not)."""
    if args.half is None:
        return
    if not args.remote or not args.secret:
        raise PeerError("--half needs --remote ADDR and --secret SEED")
    if peer.half_crypto is not None and args.crypto not in peer.half_crypto:
        raise PeerError(
            f"--crypto {args.crypto} has no half mode (two hosts): only "
            f"{', '.join(peer.half_crypto)}"
        )


def validate(peer: type[Peer], args: Sequence[str]) -> argparse.Namespace:
    """Parse a spec's options for the harness; PeerArgumentError on anything wrong."""
    p = spec_parser(peer)
    p.raise_errors = True
    return p.parse_args(list(args))


def first_line(argv: list[str]) -> str | None:
    """First non-empty output line of a short command (a version), or None."""
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = [ln.strip() for ln in (out.stdout + out.stderr).splitlines() if ln.strip()]
    return lines[0] if lines else None


def run_tool(argv: list[str], stdin: str | None = None) -> str:
    """A short helper command (key generation, ``wg set``); PeerError with its output."""
    try:
        out = subprocess.run(
            argv, input=stdin, capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise PeerError(f"{argv[0]} failed: {exc}") from exc
    if out.returncode != 0:
        tail = (out.stderr or out.stdout).strip().splitlines()[-1:] or ["no output"]
        raise PeerError(f"{' '.join(argv[:2])} exited with status {out.returncode}: {tail[0]}")
    return out.stdout


def free_ports() -> tuple[int, int]:
    """Two ports free for both UDP and TCP on 127.0.0.1 (tinc uses both on one port)."""
    held: list[socket.socket] = []
    ports: list[int] = []
    try:
        while len(ports) < 2:
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            held.append(udp)
            udp.bind(("127.0.0.1", 0))
            port = udp.getsockname()[1]
            tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            held.append(tcp)
            try:
                tcp.bind(("127.0.0.1", port))
            except OSError:
                continue
            ports.append(port)
    finally:
        for sock in held:
            sock.close()
    return ports[0], ports[1]


def subnet24(ip: str) -> str:
    return ".".join([*ip.split(".")[:3], "0"]) + "/24"


def write_private(path: Path, text: str) -> Path:
    """A key file only the owner can read (daemons refuse group-readable keys)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    return path


def curve25519_secret(raw: bytes) -> bytes:
    """A Curve25519 secret from 32 bytes, clamped (low 3 bits clear, top bit clear, bit
    254 set) as ``wg genkey`` and ``fastd --generate-key`` make theirs; both halves of a
    two-host row derive both instances' keys from their shared seed this way."""
    key = bytearray(raw[:32])
    key[0] &= 248
    key[31] = (key[31] & 127) | 64
    return bytes(key)
