"""Types of the native offload engine (tunio/native/); see tunio.engine for the contract."""

from collections.abc import Iterable

from tunio.grocoalesce import CoalesceStats
from tunio.vnethdr import VirtioNetHdr

_Bytes = bytes | bytearray | memoryview

MAX_SEGMENTS: int
GIL_FREE_BYTES: int

def gso_split(frame: _Bytes, hdr: VirtioNetHdr, mtu: int = 1500) -> list[bytes]: ...
def split_frame(raw: _Bytes, mtu: int, /) -> tuple[list[bytes], bool]: ...
def gro_coalesce(
    packets: Iterable[_Bytes],
    udp: bool = True,
    max_size: int = 65535,
    stats: CoalesceStats | None = None,
    verify: bool = True,
    trusted: _Bytes | None = None,
) -> list[tuple[VirtioNetHdr, bytes]]: ...
def coalesce_frames(
    packets: Iterable[_Bytes],
    udp: bool = True,
    max_size: int = 65535,
    stats: CoalesceStats | None = None,
    verify: bool = True,
    trusted: _Bytes | None = None,
) -> list[bytes]: ...
def sum16(data: _Bytes, initial: int = 0, /) -> int: ...
def spin(ns: int, /) -> int: ...
