"""Types of the io_uring rings (tunio/uring/*.c); see tunio/uring/module.c for the contract."""

from collections.abc import Sequence
from typing import Any

_Bytes = bytes | bytearray | memoryview

GSO_BUCKETS: int
MAX_DEPTH: int
MAX_BATCH: int

class Ring:
    gone: int
    setup: str
    registered: bool
    multishot: bool
    depth: int
    batch: int
    def __init__(
        self,
        src: int,
        dst: int,
        depth: int,
        batch: int,
        bufsize: int,
        vnet: bool = False,
        split: bool = False,
        multishot: bool = True,
        register: bool = True,
    ) -> None: ...
    def pump(self, budget: int, timeout_ms: int, /) -> int: ...
    def read_frames(self, limit: int, timeout_ms: int, /) -> list[bytes]: ...
    def write_frames(self, frames: Sequence[_Bytes], /) -> None: ...
    def stats(self) -> dict[str, Any]: ...
    def stop(self) -> None: ...
    def feed(self, frames: Sequence[_Bytes | int], /) -> None: ...
    def written(self) -> list[bytes]: ...
    def submit_sizes(self) -> list[int]: ...
    def max_inflight(self) -> int: ...

def probe() -> str: ...
def fake_ring(
    depth: int,
    batch: int,
    bufsize: int = 2048,
    vnet: bool = False,
    split: bool = False,
    multishot: bool = False,
    sq_entries: int = 0,
) -> Ring: ...
