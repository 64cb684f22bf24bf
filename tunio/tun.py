"""Open TUN devices through /dev/net/tun ioctls: flags, offload mask, vnet header size, MTU.

Values follow ../shared/KERNEL-NOTES.md §2.1-2.3 (checked on 6.18). The virtio_net_hdr codec
itself lives in :mod:`tunio.vnethdr` (pure code, no I/O) and is re-exported here.
"""

from __future__ import annotations

import array
import contextlib
import errno
import fcntl
import os
import struct
from dataclasses import dataclass, field

from tunio.vnethdr import VNET_HDR_LEN, VirtioNetHdr

__all__ = [
    "VNET_HDR_LEN",
    "TunDevice",
    "VirtioNetHdr",
    "offload_names",
    "open_tun",
]

TUN_PATH = "/dev/net/tun"

TUNSETIFF = 0x400454CA
TUNGETFEATURES = 0x800454CF
TUNSETOFFLOAD = 0x400454D0
TUNGETVNETHDRSZ = 0x800454D7
TUNSETVNETHDRSZ = 0x400454D8

IFF_TUN = 0x0001
IFF_MULTI_QUEUE = 0x0100
IFF_NO_PI = 0x1000
IFF_VNET_HDR = 0x4000

TUN_F_CSUM = 0x01
TUN_F_TSO4 = 0x02
TUN_F_TSO6 = 0x04
TUN_F_TSO_ECN = 0x08
TUN_F_USO4 = 0x20
TUN_F_USO6 = 0x40

OFFLOAD_TCP = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6
OFFLOAD_UDP = TUN_F_USO4 | TUN_F_USO6

_OFFLOAD_NAMES = {
    TUN_F_CSUM: "csum",
    TUN_F_TSO4: "tso4",
    TUN_F_TSO6: "tso6",
    TUN_F_TSO_ECN: "tso_ecn",
    TUN_F_USO4: "uso4",
    TUN_F_USO6: "uso6",
}

# Largest frame a read can return: the vnet header plus a 64 KB IP packet.
MAX_FRAME = VNET_HDR_LEN + 65535


def offload_names(mask: int) -> list[str]:
    """Names of the TUN_F_* bits set in ``mask``, e.g. ``["csum", "tso4", "tso6"]``."""
    return [name for bit, name in _OFFLOAD_NAMES.items() if mask & bit]


def _ifreq(name: str, flags: int) -> bytes:
    raw = name.encode()
    if not raw or len(raw) > 15:
        raise ValueError(f"interface name must be 1..15 bytes: {name!r}")
    return struct.pack("16sH22x", raw, flags)


@dataclass
class TunDevice:
    """One TUN device opened by this process: its queue fds and what was negotiated."""

    name: str
    fds: list[int]
    vnet_hdr: bool
    offload: int = 0
    flags: int = 0
    closed: bool = field(default=False, repr=False)

    @property
    def fd(self) -> int:
        """The first (or only) queue fd."""
        return self.fds[0]

    def close(self) -> None:
        """Close every queue fd; a non-persistent device disappears with the last one."""
        if self.closed:
            return
        self.closed = True
        for fd in self.fds:
            with contextlib.suppress(OSError):
                os.close(fd)


def _open_queue(name: str, flags: int, nonblocking: bool) -> int:
    mode = os.O_RDWR | os.O_CLOEXEC | (os.O_NONBLOCK if nonblocking else 0)
    fd = os.open(TUN_PATH, mode)
    try:
        fcntl.ioctl(fd, TUNSETIFF, _ifreq(name, flags))
    except BaseException:
        os.close(fd)
        raise
    return fd


def set_offload(fd: int, mask: int) -> None:
    """TUNSETOFFLOAD: the mask goes by value; unknown or unsupported bits raise EINVAL."""
    fcntl.ioctl(fd, TUNSETOFFLOAD, mask)


def negotiate_offload(fd: int, udp: bool = True) -> int:
    """Enable CSUM|TSO4|TSO6 (required) and, if the kernel takes it, USO4|USO6.

    Returns the mask that is in force. The probe order is the one wireguard-go and tun-rs
    use: a kernel without USO (< 6.2) answers EINVAL to the second call.
    """
    set_offload(fd, OFFLOAD_TCP)
    if not udp:
        return OFFLOAD_TCP
    try:
        set_offload(fd, OFFLOAD_TCP | OFFLOAD_UDP)
    except OSError as exc:
        if exc.errno != errno.EINVAL:
            raise
        set_offload(fd, OFFLOAD_TCP)
        return OFFLOAD_TCP
    return OFFLOAD_TCP | OFFLOAD_UDP


def vnet_hdr_size(fd: int) -> int:
    """TUNGETVNETHDRSZ: the header length the device reads and writes."""
    buf = array.array("i", [0])
    fcntl.ioctl(fd, TUNGETVNETHDRSZ, buf, True)
    return buf[0]


def set_vnet_hdr_size(fd: int, size: int) -> None:
    """TUNSETVNETHDRSZ: takes a pointer to an int; sizes below 10 raise EINVAL."""
    fcntl.ioctl(fd, TUNSETVNETHDRSZ, array.array("i", [size]))


def features() -> int:
    """TUNGETFEATURES: the IFF_* flags this kernel supports."""
    fd = os.open(TUN_PATH, os.O_RDWR | os.O_CLOEXEC)
    try:
        buf = array.array("I", [0])
        fcntl.ioctl(fd, TUNGETFEATURES, buf, True)
        return buf[0]
    finally:
        os.close(fd)


def open_tun(
    name: str,
    *,
    vnet_hdr: bool = False,
    offload: bool = False,
    udp_offload: bool = True,
    queues: int = 1,
    nonblocking: bool = False,
) -> TunDevice:
    """Create (or attach to) TUN device ``name`` with IFF_TUN|IFF_NO_PI.

    ``vnet_hdr`` adds IFF_VNET_HDR (10-byte header on every read and write). ``offload``
    (needs ``vnet_hdr``) negotiates TSO/USO so the kernel hands over GSO super-packets.
    ``queues > 1`` opens that many fds with IFF_MULTI_QUEUE, all with identical flags,
    re-applying the offload mask after every attach (KERNEL-NOTES §2.9).
    ``offload=False`` on a vnet device clears the mask, which is device state.
    """
    if offload and not vnet_hdr:
        raise ValueError("offload needs vnet_hdr")
    if queues < 1:
        raise ValueError("queues must be >= 1")
    flags = IFF_TUN | IFF_NO_PI
    if vnet_hdr:
        flags |= IFF_VNET_HDR
    if queues > 1:
        flags |= IFF_MULTI_QUEUE
    dev = TunDevice(name=name, fds=[], vnet_hdr=vnet_hdr, flags=flags)
    try:
        for _ in range(queues):
            fd = _open_queue(name, flags, nonblocking)
            dev.fds.append(fd)
            if vnet_hdr:
                set_vnet_hdr_size(fd, VNET_HDR_LEN)
                dev.offload = negotiate_offload(fd, udp_offload) if offload else 0
                if not offload:
                    set_offload(fd, 0)
    except BaseException:
        dev.close()
        raise
    return dev


def set_mtu(ifname: str, mtu: int) -> None:
    """Set the MTU of ``ifname`` in the current network namespace (netlink, no ``ip``)."""
    from pyroute2 import IPRoute

    with IPRoute() as ipr:
        index = ipr.link_lookup(ifname=ifname)
        if not index:
            raise OSError(errno.ENODEV, f"no such device: {ifname}")
        ipr.link("set", index=index[0], mtu=mtu)
