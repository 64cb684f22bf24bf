"""Tests for tunio.csum: internet checksums, checked against a word-by-word reference."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tunio.csum import checksum, fold16, fold_plan, pseudo_header_sum, sum16
from tunio.vnethdr import (
    OffloadError,
)

from packets import (
    FAST,
    TCP,
    UDP,
    V4_SRC,
    V6_DST,
    ref_checksum,
    ref_pseudo,
    ref_sum,
)

# --------------------------------------------------------------------------- checksums

EDGE_DATA = [
    b"",
    b"\x00",
    b"\xff",
    b"\xff\xff",
    b"\xff" * 7,
    b"\x00" * 6,
    b"\xff\xff" * 3 + b"\x00",
]


@FAST
@given(st.binary(max_size=600) | st.sampled_from(EDGE_DATA), st.integers(0, 0xFFFF))
def test_checksum_matches_reference(data: bytes, initial: int) -> None:
    assert checksum(data) == ref_checksum(data)
    assert checksum(data, initial) == ref_checksum(data, initial)
    assert checksum(memoryview(data), initial) == ref_checksum(data, initial)
    assert sum16(bytearray(data), initial) == ref_sum(data, initial)


@settings(database=None, deadline=None, max_examples=60)
@given(st.integers(2000, 70000), st.integers(0, 2**32), st.integers(0, 0xFFFF))
def test_checksum_large_buffers(n: int, seed: int, initial: int) -> None:
    """Buffers above the chunking threshold (odd and even lengths) give the same result."""
    data = random.Random(seed).randbytes(n)
    assert checksum(data, initial) == ref_checksum(data, initial)
    assert checksum(memoryview(data)[1:]) == ref_checksum(data[1:])


def test_checksum_large_all_ones() -> None:
    for n in (4096, 4097, 65535, 65536):
        data = b"\xff" * n
        assert checksum(data) == ref_checksum(data)
        assert checksum(bytes(n)) == 0xFFFF


@FAST
@given(st.binary(max_size=64), st.integers(0, 2**40))
def test_checksum_unfolded_initial(data: bytes, initial: int) -> None:
    assert checksum(data, initial) == ref_checksum(data, initial)


@FAST
@given(st.integers(0, 2**64))
def test_fold16_matches_end_around_carry(total: int) -> None:
    assert fold16(total) == ref_sum(b"", total)


@settings(database=None, deadline=None, max_examples=100)
@given(st.integers(0, 17000), st.integers(0, 2**32))
def test_fold_plan_keeps_the_value_modulo_0xffff(n: int, seed: int) -> None:
    data = random.Random(seed).choice([random.Random(seed).randbytes(n), b"\xff" * n])
    x = int.from_bytes(data, "big")
    want = x % 0xFFFF
    for h, mask in fold_plan(n):
        assert h % 16 == 0
        x = (x >> h) + (x & mask)
    assert x.bit_length() <= 1040 and x % 0xFFFF == want


def test_checksum_edge_cases() -> None:
    assert checksum(b"") == 0xFFFF
    assert checksum(b"\xff\xff") == 0  # sum 0xFFFF, not 0
    assert checksum(b"\xff\xff" * 1000) == 0
    assert checksum(b"\x00\x01\xff\xfe") == 0
    assert checksum(b"\x01") == 0xFEFF  # odd byte padded on the right
    # RFC 1071 section 3 example
    assert sum16(bytes.fromhex("0001f203f4f5f6f7")) == 0xDDF2


def test_checksum_validates_itself() -> None:
    data = bytearray(random.Random(1).randbytes(300)) + b"\0\0"
    data[-2:] = checksum(data).to_bytes(2, "big")
    assert checksum(data) == 0


@FAST
@given(
    st.sampled_from([4, 16]).flatmap(
        lambda n: st.tuples(st.binary(min_size=n, max_size=n), st.binary(min_size=n, max_size=n))
    ),
    st.sampled_from([TCP, UDP]),
    st.integers(0, 0xFFFF),
)
def test_pseudo_header_sum(ad: tuple[bytes, bytes], proto: int, length: int) -> None:
    src, dst = ad
    assert pseudo_header_sum(src, dst, proto, length) == ref_sum(
        ref_pseudo(src, dst, proto, length)
    )


def test_pseudo_header_sum_bad_addresses() -> None:
    with pytest.raises(OffloadError):
        pseudo_header_sum(V4_SRC, V6_DST, TCP, 20)
    with pytest.raises(OffloadError):
        pseudo_header_sum(b"\0" * 5, b"\0" * 5, TCP, 20)
