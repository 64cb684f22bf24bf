"""One signal policy: SIGINT and SIGTERM unwind the run (tearing down), then exit 128+N.

The handler raises :class:`~tunbench.errors.Interrupted` in the main thread. A raise can
be swallowed when the signal lands inside an at-fork hook (``subprocess`` and pyroute2
fork; CPython reports "Exception ignored" and moves on), so the handler also records the
signal and :func:`checkpoint`, called at every phase and in every wait loop, raises it
again. pyroute2's forked helpers inherit the handler; in them it just exits, so a child
never unwinds (and tears down) the parent's stack.
"""

from __future__ import annotations

import os
import signal
import sys
from types import FrameType

from tunbench.errors import Interrupted

_main_pid = os.getpid()
_pending: list[int] = []


def _handler(signum: int, _frame: FrameType | None) -> None:
    if os.getpid() != _main_pid:
        os._exit(128 + signum)
    _pending.append(signum)
    raise Interrupted(signum)


def _unraisable(info: sys.UnraisableHookArgs) -> None:
    if isinstance(info.exc_value, Interrupted):
        return  # swallowed raise: checkpoint() raises it again, no need for a traceback
    sys.__unraisablehook__(info)


def install() -> None:
    """Route SIGINT and SIGTERM through the handler (call once, from the main thread)."""
    global _main_pid
    _main_pid = os.getpid()
    _pending.clear()
    signal.signal(signal.SIGINT, _handler)
    signal.signal(signal.SIGTERM, _handler)
    sys.unraisablehook = _unraisable


def pending() -> int | None:
    """The signal received, if any."""
    return _pending[-1] if _pending else None


def checkpoint() -> None:
    """Raise Interrupted if a signal arrived (in case its first raise was swallowed)."""
    if _pending and os.getpid() == _main_pid:
        raise Interrupted(_pending[-1])
