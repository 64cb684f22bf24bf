"""One signal policy: SIGINT and SIGTERM unwind the run (tearing down), then exit 128+N.

The handler records the signal and, outside a deferred region, raises
:class:`~tunbench.errors.Interrupted` in the main thread. Inside :func:`deferred` it only
records it; :func:`checkpoint`, called at every phase and in every wait loop, raises it
there, and leaving the region raises it at the latest. A cell runs deferred from bring-up
to teardown, so a signal is acted on only at those points: never between starting a child
and recording it, never inside pyroute2's or subprocess's fork helpers (where a raise could
be swallowed: CPython reports "Exception ignored" and moves on). :func:`shielded` regions
(teardown) raise nothing until they end, whichever thread the kernel delivered the signal
to: the Python handler always runs in the main thread and checks the same flags, which is
what a per-thread signal mask cannot promise.

pyroute2's forked helpers inherit the handler; in them it just exits, so a child never
unwinds (and tears down) the parent's stack.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from tunbench.errors import Interrupted

_main_pid = os.getpid()
_pending: list[int] = []
_deferred = 0  # depth of deferred() regions: the handler only records
_shielded = 0  # depth of shielded() regions: checkpoint() raises nothing either


def _handler(signum: int, _frame: FrameType | None) -> None:
    if os.getpid() != _main_pid:
        os._exit(128 + signum)
    _pending.append(signum)
    if _deferred:
        return  # raised at the next checkpoint, or when the region ends
    raise Interrupted(signum)


def _unraisable(info: sys.UnraisableHookArgs) -> None:
    if isinstance(info.exc_value, Interrupted):
        return  # swallowed raise: checkpoint() raises it again, no need for a traceback
    sys.__unraisablehook__(info)


def install() -> None:
    """Route SIGINT and SIGTERM through the handler (call once, from the main thread)."""
    global _main_pid, _deferred, _shielded
    _main_pid = os.getpid()
    _pending.clear()
    _deferred = _shielded = 0
    signal.signal(signal.SIGINT, _handler)
    signal.signal(signal.SIGTERM, _handler)
    sys.unraisablehook = _unraisable


def pending() -> int | None:
    """The signal received, if any."""
    return _pending[-1] if _pending else None


def checkpoint() -> None:
    """Raise Interrupted if a signal arrived (unless inside a shielded region)."""
    if _pending and not _shielded and os.getpid() == _main_pid:
        raise Interrupted(_pending[-1])


@contextmanager
def deferred() -> Iterator[None]:
    """A region where SIGINT/SIGTERM are recorded, not raised where they land: raised at the
    next :func:`checkpoint` inside, or on leaving the region. Main thread only; nests.

    Wrap every step that must not be cut in two: starting a child and recording it, creating
    a namespace or a file and registering its removal.
    """
    global _deferred
    _deferred += 1
    try:
        yield
    finally:
        _deferred -= 1
        checkpoint()  # a signal that came inside wins over an exception in flight


@contextmanager
def shielded() -> Iterator[None]:
    """Like :func:`deferred`, and checkpoints inside raise nothing: for teardown, which must
    run to its end; the signal is raised when it is done."""
    global _shielded
    _shielded += 1
    try:
        with deferred():
            yield
    finally:
        _shielded -= 1
        checkpoint()


def settle() -> int | None:
    """The command is done: from here SIGINT/SIGTERM are only recorded, never raised (a
    raise past main's handlers would be a traceback). Returns the signal received, if any.
    :func:`install` undoes it (a test calling main twice)."""
    global _deferred, _shielded
    _deferred += 1
    _shielded += 1
    return pending()


def block_until_exit() -> None:
    """Block SIGINT/SIGTERM for what is left of the process: while the interpreter shuts
    down, Python puts the default handlers back, and a late signal would kill the process
    by the signal after its work is done. Only where the process ends (its children are
    gone by then; a blocked mask would be inherited by new ones)."""
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
