"""Shaping the underlay of a two-host row: a ``tbf`` root qdisc (pyroute2's tc) on the
interface that leads to the other host, removed again at teardown.

A qdisc the kernel lacks is refused before anything is shaped: :func:`probe` adds it to a
veth inside a scratch ``tb-`` namespace (removed at once, whatever happens) and turns the
kernel's refusal into a one-line PrerequisiteError naming the kernel option
(``CONFIG_NET_SCH_NETEM`` for ``netem``: this project's kernel has none, so delay and loss
cannot be emulated, only rate).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from contextlib import suppress

from pyroute2 import IPRoute, netns

from tunbench.errors import PrerequisiteError, TopologyError

KERNEL_OPTION = {
    "tbf": "CONFIG_NET_SCH_TBF",
    "htb": "CONFIG_NET_SCH_HTB",
    "netem": "CONFIG_NET_SCH_NETEM",
}
PROBE_ARGS: dict[str, dict[str, object]] = {
    "tbf": {"rate": "10mbit", "burst": 16384, "latency": "50ms"},
    "netem": {"delay": 1000},
    "htb": {"default": 0x10},
}
MAX_TBF_BPS = 8 * (2**32 - 1)  # tbf's 32-bit rate in bytes/s (no TCA_TBF_RATE64 here)
LATENCY = "50ms"  # how long a packet may wait in the bucket before it is dropped
OUR_HANDLE = 0x10000  # "1:", the handle every qdisc tunbench adds has


def _kind_error(kind: str, exc: Exception) -> PrerequisiteError:
    option = KERNEL_OPTION.get(kind, f"CONFIG_NET_SCH_{kind.upper()}")
    return PrerequisiteError(
        f"this kernel has no {kind} qdisc ({option} is not set: {exc}); "
        f"shaping with {kind} is not possible here"
    )


def probe(kind: str) -> None:
    """PrerequisiteError unless the kernel can add a ``kind`` root qdisc (tried on a veth in
    a scratch ``tb-`` namespace, which is removed before this returns)."""
    if kind not in PROBE_ARGS:
        raise PrerequisiteError(f"unknown qdisc {kind!r}")
    ns = f"tb-{secrets.token_hex(3)}-qd"
    try:
        netns.create(ns)
    except OSError as exc:
        raise TopologyError(f"cannot create namespace {ns}: {exc}") from exc
    try:
        with IPRoute(netns=ns) as ipr:
            ipr.link("add", ifname="tb-qd0", kind="veth", peer="tb-qd1")
            idx = ipr.link_lookup(ifname="tb-qd0")[0]
            try:
                ipr.tc("add", kind, index=idx, handle="1:", **PROBE_ARGS[kind])
            except Exception as exc:  # NetlinkError ENOENT/EOPNOTSUPP: no such qdisc
                raise _kind_error(kind, exc) from None
    finally:
        with suppress(OSError):
            netns.remove(ns)


def burst_bytes(rate_bps: float) -> int:
    """The bucket: 10 ms at the rate, at least 64 KB (one GSO super-packet)."""
    return max(65536, int(rate_bps / 8 / 100))


def tbf(ifname: str, rate_bps: float, ns: str | None = None) -> Callable[[], None]:
    """Shape ``ifname`` (in ``ns``, else here) to ``rate_bps`` with a tbf root qdisc;
    returns what removes it (the interface gets its default qdisc back)."""
    if not 0 < rate_bps <= MAX_TBF_BPS:
        raise PrerequisiteError(f"--shape-rate must be above 0 and at most {MAX_TBF_BPS} bit/s")
    probe("tbf")
    kw = {"netns": ns} if ns else {}
    with IPRoute(**kw) as ipr:
        found = ipr.link_lookup(ifname=ifname)
        if not found:
            raise TopologyError(f"cannot shape {ifname}: no such device")
        idx = found[0]
        try:
            ipr.tc(
                "add",
                "tbf",
                index=idx,
                handle="1:",
                rate=f"{int(rate_bps)}bit",
                burst=burst_bytes(rate_bps),
                latency=LATENCY,
            )
        except Exception as exc:
            raise TopologyError(f"cannot add tbf to {ifname}: {exc}") from exc

    def remove() -> None:
        with IPRoute(**kw) as ipr, suppress(Exception):  # already gone is fine
            ipr.tc("del", index=idx, handle="1:", root=True)

    return remove


def remove_tbf(ifname: str) -> bool:
    """Remove a tbf root qdisc with our handle (1:) from ``ifname`` here, if it has one
    (``tunbench clean``, after an agent was killed); whether there was one."""
    with IPRoute() as ipr:
        found = ipr.link_lookup(ifname=ifname)
        if not found:
            return False
        for q in ipr.get_qdiscs(found[0]):
            if q.get_attr("TCA_KIND") == "tbf" and q["handle"] == OUR_HANDLE:
                with suppress(Exception):
                    ipr.tc("del", index=found[0], handle="1:", root=True)
                    return True
    return False


def route_device(remote: str) -> str:
    """The interface the kernel sends packets for ``remote`` out of (this namespace)."""
    with IPRoute() as ipr:
        try:
            routes = ipr.route("get", dst=remote)
        except Exception as exc:
            raise TopologyError(f"no route to {remote}: {exc}") from exc
        oif = routes[0].get_attr("RTA_OIF") if routes else None
        if oif is None:
            raise TopologyError(f"no route to {remote}")
        links = ipr.get_links(oif)
        return str(links[0].get_attr("IFLA_IFNAME"))
