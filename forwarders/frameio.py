"""One frame in, one frame out: the read/write helpers every worker loop uses.

A failed write is a counted drop (EIO while down, EINVAL if malformed), never a crash; the
errors that mean the device is gone (EBADFD, EBADF, ENODEV, ENXIO) raise :class:`DeviceGone`,
which ends the worker.
"""

from __future__ import annotations

import errno
import os
import select

from forwarders.counters import Counters
from tunio.tun import MAX_FRAME


class DeviceGone(Exception):
    """EBADFD/ENODEV/EBADF: the device was unregistered; the worker stops."""


def check_fatal(exc: OSError) -> None:
    if exc.errno in (errno.EBADFD, errno.EBADF, errno.ENODEV, errno.ENXIO):
        raise DeviceGone(str(exc)) from exc


def write_frame(dst: int, data: bytes | memoryview, c: Counters) -> bool:
    """Write one frame; a failed write is a counted drop (EIO while down, EINVAL if
    malformed), never a crash. Device-gone errors raise DeviceGone."""
    try:
        os.write(dst, data)
    except OSError as exc:
        check_fatal(exc)
        c.write_error(exc.errno or 0)
        return False
    c.wrote(data)
    return True


def read_frame(src: int, size: int, c: Counters) -> bytes | None:
    """Read one frame; None after a counted, non-fatal read error."""
    try:
        return os.read(src, size)
    except OSError as exc:
        check_fatal(exc)
        c.read_errors += 1
        return None


def read_ready(src: int, limit: int, c: Counters) -> list[bytes]:
    """Frames already waiting on an O_NONBLOCK ``src``: read until EAGAIN or ``limit``."""
    frames: list[bytes] = []
    while len(frames) < limit:
        try:
            frames.append(os.read(src, MAX_FRAME))
        except BlockingIOError:
            break
        except OSError as exc:
            check_fatal(exc)
            c.read_errors += 1
            break
    return frames


def write_wait(dst: int, data: bytes, c: Counters, writable: select.poll) -> None:
    """:func:`write_frame` for an O_NONBLOCK ``dst``: EAGAIN waits on ``writable`` (a poll
    object with ``dst`` registered for POLLOUT) and retries instead of dropping."""
    while True:
        try:
            os.write(dst, data)
        except BlockingIOError:
            writable.poll()
            continue
        except OSError as exc:
            check_fatal(exc)
            c.write_error(exc.errno or 0)
            return
        c.wrote(data)
        return


def pump_blocking(src: int, dst: int, c: Counters, size: int) -> None:
    """Blocking relay of whole frames (with their vnet header if the fds carry one)."""
    while True:
        data = read_frame(src, size, c)
        if data is not None:
            write_frame(dst, data, c)
