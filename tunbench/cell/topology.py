"""Network namespaces, links, addresses and routes for one cell (pyroute2 only).

Layout for a forwarder cell, ``<p>`` = ``tb-<run id>``::

    <p>-a: tun11 10.0.1.1/24, route 10.0.2.0/24 dev tun11   (iperf3 client)
    <p>-fwd: the forwarder process, which created tun11 and tun22 here
    <p>-b: tun22 10.0.2.1/24, route 10.0.1.0/24 dev tun22   (iperf3 server)

Baselines use the same two end namespaces: ``kernel-veth`` joins them with one veth pair;
``kernel-router`` puts a veth pair on each side of ``<p>-fwd`` with IP forwarding on;
``kernel-router --no-offload`` turns TSO/GSO/GRO off on those veths (:func:`disable_offloads`,
through pyroute2's ethtool), so every hop handles MTU-sized packets like a forwarder
without offload.
The host namespace is never touched: every netlink call names a ``tb-`` namespace.
"""

from __future__ import annotations

import ctypes
import ipaddress
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pyroute2 import IPRoute, netns

from tunbench.errors import TopologyError

PREFIX = "tb-"


def _subnet(ip: str, prefixlen: int) -> str:
    return str(ipaddress.ip_interface(f"{ip}/{prefixlen}").network)


def write_sysctl(ns: str, key: str, value: str) -> None:
    """Write ``/proc/sys/<key>`` inside namespace ``ns``.

    setns(2) moves only the calling thread, so a short-lived thread enters the namespace,
    writes, and ends; the main thread never leaves the host namespace.
    """

    def work() -> None:
        with open("/proc/sys/" + key.replace(".", "/"), "w") as fh:
            fh.write(value)

    _in_netns(ns, f"set {key}={value}", work)


def cpu_mask(cpus: Sequence[int]) -> str:
    """A CPU list as the kernel's hex bitmap, in comma-separated 32-bit groups: [1] -> "2",
    [0, 33] -> "2,00000001"."""
    bits = sum(1 << c for c in set(cpus))
    groups = []
    while True:
        groups.append(bits & 0xFFFFFFFF)
        bits >>= 32
        if not bits:
            break
    head, *rest = reversed(groups)
    return ",".join([f"{head:x}", *(f"{g:08x}" for g in rest)])


def steer_receive(ns: str, ifname: str, cpus: Sequence[int]) -> None:
    """Receive packet steering (RPS) of ``ifname`` in ``ns`` to ``cpus``: every receive
    queue's ``rps_cpus``. sysfs shows the devices of the namespace it was mounted in, so
    the short-lived thread of :func:`_in_netns` also takes a mount namespace of its own
    (unshare(2) moves only the calling thread too) and mounts sysfs there; the host's
    mounts are never touched. (``net.core.rps_default_mask`` would be simpler, but the
    kernel does not apply it to a device moved in from another namespace.)"""
    mask = cpu_mask(cpus)

    def work() -> None:
        _private_sysfs()
        queues = sorted(Path(f"/sys/class/net/{ifname}/queues").glob("rx-*"))
        if not queues:
            raise TopologyError(f"{ifname} has no receive queues in sysfs")
        for q in queues:
            (q / "rps_cpus").write_text(mask)

    _in_netns(ns, f"steer {ifname}'s receive work to CPUs {mask}", work)


def _private_sysfs() -> None:
    """This thread in a mount namespace of its own, with a sysfs of its network namespace."""
    libc = ctypes.CDLL(None, use_errno=True)
    unshare: Callable[[int], int] = libc.unshare
    mount: Callable[[bytes, bytes, bytes | None, int, None], int] = libc.mount
    steps: list[tuple[Callable[[], int], str]] = [
        (lambda: unshare(CLONE_NEWNS), "unshare a mount namespace"),
        (lambda: mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None), "make / private"),
        (lambda: mount(b"sysfs", b"/sys", b"sysfs", 0, None), "mount sysfs"),
    ]
    for ok, what in steps:
        if ok() != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"cannot {what}: {os.strerror(err)}")


CLONE_NEWNS = 0x00020000
MS_REC = 0x4000
MS_PRIVATE = 0x40000


# Features ``ethtool -K DEV tso off gso off gro off`` turns off (names as the kernel's
# ETHTOOL_GFEATURES strings; TSO is every tx-tcp*-segmentation), plus UDP segmentation.
NO_OFFLOAD_PREFIXES = ("tx-tcp",)
NO_OFFLOAD_FEATURES = (
    "tx-generic-segmentation",
    "tx-udp-segmentation",
    "rx-gro",
    "rx-gro-list",
    "rx-udp-gro-forwarding",
)
# ...and what the legacy offload flags must then say
NO_OFFLOAD_FLAGS = (
    "tcp-segmentation-offload",
    "generic-segmentation-offload",
    "generic-receive-offload",
)


def _in_netns(ns: str, what: str, fn: Callable[[], None]) -> None:
    """Run ``fn`` in a short-lived thread that entered ``ns`` (setns moves only a thread)."""
    errors: list[BaseException] = []

    def work() -> None:
        try:
            netns.setns(ns, flags=0)
            fn()
        except BaseException as exc:  # reported in the caller's thread
            errors.append(exc)

    thread = threading.Thread(target=work, name=f"tb-netns-{ns}")
    thread.start()
    thread.join(10)
    if errors or thread.is_alive():
        raise TopologyError(f"cannot {what} in {ns}: {errors[0] if errors else 'hung'}")


def disable_offloads(ns: str, ifname: str) -> None:
    """TSO, GSO and GRO off on ``ifname`` in ``ns`` (pyroute2's ethtool; checked after)."""
    from pyroute2.ethtool import Ethtool

    def work() -> None:
        with Ethtool() as et:
            feats = et.get_features(ifname)
            for name, feat in feats.features.items():
                if feat.available and (
                    name in NO_OFFLOAD_FEATURES
                    or (name.startswith(NO_OFFLOAD_PREFIXES) and name.endswith("segmentation"))
                ):
                    feat.enable = False
            et.set_features(ifname, feats)
            flags = et.get_features(ifname).offload_flags
            still = [f for f in NO_OFFLOAD_FLAGS if flags.get(f)]
            if still:
                raise TopologyError(f"{ifname} still has {', '.join(still)} on")

    _in_netns(ns, f"turn offloads off on {ifname}", work)


@dataclass
class Topology:
    """The namespaces of one run; removes what it created, newest first."""

    run_id: str
    created: list[str] = field(default_factory=list)
    on_change: Callable[[list[str]], None] | None = None

    @property
    def prefix(self) -> str:
        return f"{PREFIX}{self.run_id}"

    @property
    def ns_fwd(self) -> str:
        return f"{self.prefix}-fwd"

    @property
    def ns_a(self) -> str:
        return f"{self.prefix}-a"

    @property
    def ns_b(self) -> str:
        return f"{self.prefix}-b"

    def create(self, *names: str) -> None:
        """Create the namespaces, each recorded before it exists so cleanup can find it."""
        for name in names:
            if not name.startswith(PREFIX):
                raise TopologyError(f"refusing to create namespace without {PREFIX} prefix: {name}")
            self.created.append(name)
            if self.on_change:
                self.on_change(list(self.created))
            try:
                netns.create(name)
            except OSError as exc:
                raise TopologyError(f"cannot create namespace {name}: {exc}") from exc
            with IPRoute(netns=name) as ipr:
                ipr.link("set", index=ipr.link_lookup(ifname="lo")[0], state="up")
            if Path("/proc/sys/net/ipv6").is_dir():  # absent when booted with ipv6.disable=1
                write_sysctl(name, "net.ipv6.conf.all.disable_ipv6", "1")
                write_sysctl(name, "net.ipv6.conf.default.disable_ipv6", "1")

    def remove(self) -> list[str]:
        """Remove every namespace this topology created; returns the ones that failed."""
        failed = []
        while self.created:
            name = self.created.pop()
            try:
                netns.remove(name)
            except FileNotFoundError:
                pass
            except OSError:
                failed.append(name)
            if self.on_change:
                self.on_change(list(self.created))
        return failed

    @staticmethod
    def links(ns: str) -> list[str]:
        """Interface names present in ``ns``."""
        with IPRoute(netns=ns) as ipr:
            return [str(link.get("ifname")) for link in ipr.get_links()]

    @staticmethod
    def link_packets(ns: str, ifname: str) -> dict[str, int]:
        """``ifname``'s packet counters in ``ns`` (IFLA_STATS64): ``rx``, ``tx`` and
        ``tx_dropped`` (on a TUN device: packets the kernel had for the forwarder but could
        not queue, its queue being full)."""
        try:
            with IPRoute(netns=ns) as ipr:
                found = ipr.link_lookup(ifname=ifname)
                if not found:
                    raise TopologyError(f"device {ifname} not found in {ns}")
                stats = ipr.get_links(found[0])[0].get_attr("IFLA_STATS64") or {}
        except TopologyError:
            raise
        except Exception as exc:
            raise TopologyError(f"cannot read {ifname}'s counters in {ns}: {exc}") from exc
        return {
            "rx": int(stats.get("rx_packets", 0)),
            "tx": int(stats.get("tx_packets", 0)),
            "tx_dropped": int(stats.get("tx_dropped", 0)),
        }

    def move_and_configure(
        self,
        ifname: str,
        src_ns: str,
        dst_ns: str,
        ip: str,
        peer_ip: str,
        mtu: int,
        prefixlen: int = 24,
    ) -> None:
        """Move ``ifname`` from ``src_ns`` to ``dst_ns``, then address, route and bring it up.

        The device arrives down and without addresses (KERNEL-NOTES §2.7).
        """
        try:
            with IPRoute(netns=src_ns) as ipr:
                found = ipr.link_lookup(ifname=ifname)
                if not found:
                    raise TopologyError(f"device {ifname} not found in {src_ns}")
                ipr.link("set", index=found[0], net_ns_fd=dst_ns)
            self.configure(dst_ns, ifname, ip, peer_ip, mtu, prefixlen)
        except TopologyError:
            raise
        except Exception as exc:
            raise TopologyError(f"cannot move {ifname} into {dst_ns}: {exc}") from exc

    @staticmethod
    def configure(
        ns: str,
        ifname: str,
        ip: str,
        peer_ip: str | None,
        mtu: int,
        prefixlen: int = 24,
        gateway: str | None = None,
    ) -> None:
        """Address ``ifname`` in ``ns``, set its MTU, bring it up, route the peer subnet to it
        (on-link, or through ``gateway``)."""
        with IPRoute(netns=ns) as ipr:
            found = ipr.link_lookup(ifname=ifname)
            if not found:
                raise TopologyError(f"device {ifname} not found in {ns}")
            idx = found[0]
            ipr.link("set", index=idx, mtu=mtu)
            ipr.addr("add", index=idx, address=ip, prefixlen=prefixlen)
            ipr.link("set", index=idx, state="up")
            if peer_ip is not None and _subnet(peer_ip, prefixlen) != _subnet(ip, prefixlen):
                if gateway:
                    ipr.route("add", dst=_subnet(peer_ip, prefixlen), gateway=gateway)
                else:
                    ipr.route("add", dst=_subnet(peer_ip, prefixlen), oif=idx)

    def veth(self, ns1: str, name1: str, ns2: str, name2: str) -> None:
        """Create a veth pair with one end in each namespace."""
        for n in (name1, name2):
            if not n.startswith(PREFIX) or len(n) > 15:
                raise TopologyError(f"bad link name {n!r}: needs {PREFIX} prefix, <= 15 chars")
        try:
            with IPRoute(netns=ns1) as ipr:
                ipr.link("add", ifname=name1, kind="veth", peer={"ifname": name2, "net_ns_fd": ns2})
        except Exception as exc:
            raise TopologyError(f"cannot create veth {name1}/{name2}: {exc}") from exc
