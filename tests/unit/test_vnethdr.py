"""Tests for tunio.vnethdr: the virtio_net_hdr codec."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tunio.vnethdr import (
    VNET_HDR_LEN,
    OffloadError,
    VirtioNetHdr,
)

from packets import (
    FAST,
)

# --------------------------------------------------------------------------- header


U16 = st.integers(0, 0xFFFF)


@FAST
@given(st.builds(VirtioNetHdr, st.integers(0, 255), st.integers(0, 255), U16, U16, U16, U16))
def test_vnet_hdr_round_trip(hdr: VirtioNetHdr) -> None:
    raw = hdr.pack()
    assert len(raw) == VNET_HDR_LEN
    assert VirtioNetHdr.unpack(raw) == hdr
    assert VirtioNetHdr.unpack(memoryview(raw + b"\xee" * 5)) == hdr
    assert VirtioNetHdr.unpack(bytearray(raw)) == hdr


def test_vnet_hdr_layout_is_little_endian() -> None:
    # what a TCP bulk read looked like on 6.18 (KERNEL-NOTES §2.4)
    hdr = VirtioNetHdr(1, 1, 52, 1448, 20, 16)
    assert hdr.pack() == bytes([1, 1, 52, 0, 0xA8, 0x05, 20, 0, 16, 0])


@pytest.mark.parametrize("n", range(VNET_HDR_LEN))
def test_vnet_hdr_truncated(n: int) -> None:
    with pytest.raises(OffloadError):
        VirtioNetHdr.unpack(bytes(n))


@pytest.mark.parametrize("fields", [(256, 0, 0, 0, 0, 0), (0, 0, 0, 0x10000, 0, 0), (-1,)])
def test_vnet_hdr_pack_out_of_range(fields: tuple[int, ...]) -> None:
    with pytest.raises(OffloadError):
        VirtioNetHdr(*fields).pack()
