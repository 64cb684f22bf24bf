"""Non-blocking frame I/O for the trio forwarders: one read or write, waiting only on EAGAIN.

The fds are opened with O_NONBLOCK. A call tries the syscall first and parks the task in
``trio.lowlevel.wait_readable``/``wait_writable`` only when the ring is empty (full), so a
busy device costs one syscall per frame. Errors follow :mod:`forwarders.frameio`: device-gone
errnos raise :class:`~forwarders.frameio.DeviceGone`, any other error is a counted drop.
Shared by :mod:`forwarders.asyncbase` (direct, channel and pool pumps) and
:mod:`forwarders.framed`.
"""

from __future__ import annotations

import os

import trio

from forwarders.counters import Counters
from forwarders.frameio import check_fatal

YIELD_EVERY = 64  # packets a task may move before it lets other tasks run


async def read_nb(fd: int, size: int, c: Counters) -> bytes:
    """Read one frame, waiting for readability only when the ring is empty."""
    while True:
        try:
            return os.read(fd, size)
        except BlockingIOError:
            await trio.lowlevel.wait_readable(fd)
        except OSError as exc:
            check_fatal(exc)
            c.read_errors += 1


async def readinto_nb(fd: int, buf: bytearray, c: Counters) -> int:
    """Like :func:`read_nb` into a preallocated buffer; returns the length."""
    while True:
        try:
            return os.readv(fd, [buf])
        except BlockingIOError:
            await trio.lowlevel.wait_readable(fd)
        except OSError as exc:
            check_fatal(exc)
            c.read_errors += 1


async def write_nb(fd: int, data: bytes | memoryview, c: Counters) -> None:
    """Write one frame; EAGAIN waits for writability, other errors are counted drops."""
    while True:
        try:
            os.write(fd, data)
        except BlockingIOError:
            await trio.lowlevel.wait_writable(fd)
            continue
        except OSError as exc:
            check_fatal(exc)
            c.write_error(exc.errno or 0)
            return
        c.wrote(data)
        return
