"""Which offload engine does the per-byte work of ``--gso split``: pure Python or native C.

Both engines implement one contract (the docstrings of :func:`tunio.gsosplit.gso_split` and
:func:`tunio.grocoalesce.gro_coalesce`: same arguments, outputs, counters and OffloadError
messages), checked differentially by the tests. A forwarder picks one with
:func:`get_engine` and calls its functions; Python keeps the control flow (when to read,
split, coalesce and write) either way.

Besides the two contract functions an engine offers the two shapes the data path wants:
``split_frame(raw, mtu)`` takes a whole TUN read (virtio_net_hdr + packet) and returns its
packets with a flag saying whether their L4 checksums were computed entirely by the split
(:func:`tunio.gsosplit.computes_l4_csum`), and ``coalesce_frames(...)`` returns
ready-to-write bytes (virtio_net_hdr + packet); its ``trusted`` argument takes those flags,
one byte per packet, so that coalescing does not sum the split's own checksums again.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass

from tunio.grocoalesce import gro_coalesce, gro_coalesce_frames
from tunio.gsosplit import computes_l4_csum, gso_split
from tunio.vnethdr import VNET_HDR_LEN, VirtioNetHdr

__all__ = [
    "ENGINES",
    "Engine",
    "EngineUnavailable",
    "engine_arg",
    "get_engine",
    "native_available",
]

ENGINES = ("python", "native")

_Bytes = bytes | bytearray | memoryview
SplitFn = Callable[[_Bytes, VirtioNetHdr, int], list[bytes]]
SplitFrameFn = Callable[[_Bytes, int], tuple[list[bytes], bool]]
CoalesceFn = Callable[..., list[tuple[VirtioNetHdr, bytes]]]
CoalesceFramesFn = Callable[..., list[bytes]]


class EngineUnavailable(RuntimeError):
    """The requested engine cannot be used here (e.g. the native module was not built)."""


@dataclass(frozen=True, slots=True)
class Engine:
    """One engine's functions; all engines have identical signatures and results.

    ``gso_split(frame, hdr, mtu=1500)`` and ``gro_coalesce(packets, udp=True,
    max_size=65535, stats=None, verify=True, trusted=None)`` are the contract;
    ``split_frame(raw, mtu) -> (packets, checksums_computed_here)`` and
    ``coalesce_frames(packets, udp=True, max_size=65535, stats=None, verify=True,
    trusted=None)`` the data path's shapes of the same work.
    """

    name: str
    gso_split: SplitFn
    gro_coalesce: CoalesceFn
    split_frame: SplitFrameFn
    coalesce_frames: CoalesceFramesFn


def _py_split_frame(raw: _Bytes, mtu: int) -> tuple[list[bytes], bool]:
    hdr = VirtioNetHdr.unpack(raw)
    return gso_split(memoryview(raw)[VNET_HDR_LEN:], hdr, mtu), computes_l4_csum(hdr)


PYTHON = Engine("python", gso_split, gro_coalesce, _py_split_frame, gro_coalesce_frames)

_native: Engine | None = None
_native_error: str | None = None


def _load_native() -> Engine:
    global _native, _native_error
    if _native is not None:
        return _native
    if _native_error is None:
        try:
            from tunio import _native as mod
        except ImportError as exc:
            _native_error = (
                f"the native offload engine is not built ({exc}); "
                "run scripts/bootstrap.sh (needs gcc and the Python headers)"
            )
        else:
            _native = Engine(
                "native", mod.gso_split, mod.gro_coalesce, mod.split_frame, mod.coalesce_frames
            )
            return _native
    raise EngineUnavailable(_native_error)


def native_available() -> bool:
    """True when the native module is built and loads."""
    try:
        _load_native()
    except EngineUnavailable:
        return False
    return True


def get_engine(name: str) -> Engine:
    """The engine called ``name`` ("python" or "native").

    Raises EngineUnavailable (one-line message) for an unknown name or an unbuilt module.
    """
    if name == "python":
        return PYTHON
    if name == "native":
        return _load_native()
    raise EngineUnavailable(f"unknown offload engine {name!r} (choose from {', '.join(ENGINES)})")


def engine_arg(text: str) -> str:
    """argparse type of ``--engine``: a known engine that can run here, else one line why."""
    try:
        get_engine(text)
    except EngineUnavailable as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text
