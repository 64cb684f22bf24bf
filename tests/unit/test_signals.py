"""The signal policy: teardown runs to its end even when a second signal arrives, whichever
thread the kernel hands it to; the signal is raised once teardown is done."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator

import pytest

from tunbench import signals
from tunbench.errors import Interrupted
from tunbench.session import Teardown


@pytest.fixture
def policy() -> Iterator[None]:
    """Install the harness's handlers for one test, then put pytest's back."""
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    signals.install()
    try:
        yield
    finally:
        for s, handler in saved.items():
            signal.signal(s, handler)
        signals._pending.clear()


class OtherThread:
    """A thread that exists before teardown starts (like the sampler), to which the kernel
    can deliver a signal.

    Signal masks are per thread: blocking SIGTERM in the main thread does not stop it being
    delivered to this one, after which CPython runs the Python handler in the main thread.
    """

    def __init__(self) -> None:
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._done.wait, args=(10,))
        self._thread.start()

    def deliver(self, sig: signal.Signals) -> None:
        assert self._thread.ident is not None
        signal.pthread_kill(self._thread.ident, sig)

    def end(self) -> None:
        self._done.set()
        self._thread.join(5)


@pytest.mark.usefixtures("policy")
def test_teardown_is_not_cut_short_by_a_signal_to_another_thread() -> None:
    steps: list[str] = []
    other = OtherThread()

    def slow_step() -> None:
        other.deliver(signal.SIGTERM)
        for _ in range(20):  # the handler gets many chances to run in here
            time.sleep(0.01)
        steps.append("first step finished")

    try:
        with pytest.raises(Interrupted) as caught, Teardown() as stack:
            stack.callback(steps.append, "second step finished")  # runs after slow_step
            stack.callback(slow_step)
    finally:
        other.end()
    assert steps == ["first step finished", "second step finished"]
    assert caught.value.exit_code == 128 + signal.SIGTERM  # and it is not lost


@pytest.mark.usefixtures("policy")
def test_a_second_signal_during_teardown_is_raised_after_it() -> None:
    steps: list[str] = []

    def step() -> None:
        signal.raise_signal(signal.SIGINT)  # handled in this very thread, at once
        steps.append("step finished")

    with pytest.raises(Interrupted), Teardown() as stack:
        stack.callback(step)
        signal.raise_signal(signal.SIGTERM)  # the first signal starts the unwinding
    assert steps == ["step finished"]
