"""The ioctl numbers in tun.py agree with the _IOW/_IOR encoding they come from."""

from __future__ import annotations

from tunio import tun

_IOC_WRITE, _IOC_READ = 1, 2


def _ioc(direction: int, typ: str, nr: int, size: int) -> int:
    return (direction << 30) | (size << 16) | (ord(typ) << 8) | nr


def test_ioctl_numbers() -> None:
    assert _ioc(_IOC_WRITE, "T", 202, 4) == tun.TUNSETIFF
    assert _ioc(_IOC_READ, "T", 207, 4) == tun.TUNGETFEATURES
    assert _ioc(_IOC_WRITE, "T", 208, 4) == tun.TUNSETOFFLOAD
    assert _ioc(_IOC_READ, "T", 215, 4) == tun.TUNGETVNETHDRSZ
    assert _ioc(_IOC_WRITE, "T", 216, 4) == tun.TUNSETVNETHDRSZ


def test_offload_names() -> None:
    assert tun.offload_names(tun.OFFLOAD_TCP) == ["csum", "tso4", "tso6"]
    assert tun.offload_names(tun.OFFLOAD_TCP | tun.OFFLOAD_UDP)[-2:] == ["uso4", "uso6"]
    assert tun.offload_names(0) == []


def test_ifreq_rejects_long_names() -> None:
    import pytest

    with pytest.raises(ValueError):
        tun._ifreq("x" * 16, tun.IFF_TUN)
    assert len(tun._ifreq("tun11", tun.IFF_TUN | tun.IFF_NO_PI)) == 40
