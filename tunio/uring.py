"""Whether the io_uring rings of the uring-* variants can run here, in one line if not.

The rings are the optional extension ``tunio._uring`` (``tunio/uring/*.c`` on liburing,
built by ``scripts/bootstrap.sh`` like the native offload engine). Built or not, the kernel
may still refuse ``io_uring_setup``: ``kernel.io_uring_disabled`` (1: only root or the
``kernel.io_uring_group``; 2: nobody), a seccomp filter (containers) or a kernel without
io_uring. :func:`unavailable` tries once and says which.
"""

from __future__ import annotations

import errno
import functools
import os
from pathlib import Path

__all__ = ["unavailable"]

SYSCTL = Path("/proc/sys/kernel/io_uring_disabled")


def _sysctl_note() -> str:
    try:
        value = SYSCTL.read_text().strip()
    except OSError:
        return ""
    return f", kernel.io_uring_disabled={value}" if value != "0" else ""


@functools.cache
def unavailable() -> str | None:
    """Why the uring-* variants cannot run here (one line), or None when they can."""
    try:
        from tunio import _uring
    except ImportError as exc:
        return (
            f"the io_uring rings are not built ({exc}); install liburing-dev and run "
            "scripts/bootstrap.sh"
        )
    try:
        _uring.probe()
    except OSError as exc:
        name = errno.errorcode.get(exc.errno or 0, str(exc.errno))
        return (
            f"io_uring_setup failed here: {name} ({os.strerror(exc.errno or 0)}"
            f"{_sysctl_note()}; seccomp or the sysctl may forbid io_uring)"
        )
    return None
