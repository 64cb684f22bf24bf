"""The signal policy: teardown runs to its end even when a second signal arrives, whichever
thread the kernel hands it to; the signal is raised once teardown is done."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tunbench.cell.teardown import Teardown
from tunbench.errors import Interrupted
from tunbench.system import signals
from tunbench.system.procs import Child, run_output, spawn, stop


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


@pytest.mark.usefixtures("policy")
def test_spawn_records_the_child_before_a_signal_is_raised(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The signal lands the moment the child exists, before Popen() returns."""
    real_init = subprocess.Popen.__init__

    def init(self: subprocess.Popen[bytes], *args: Any, **kwargs: Any) -> None:
        real_init(self, *args, **kwargs)
        signal.raise_signal(signal.SIGTERM)  # the handler runs before this returns

    monkeypatch.setattr(subprocess.Popen, "__init__", init)
    recorded: list[Child] = []
    with pytest.raises(Interrupted), Teardown() as stack:

        def register(child: Child) -> None:
            recorded.append(child)
            stack.callback(stop, child)

        spawn("sleeper", [sys.executable, "-c", "import time; time.sleep(60)"], register=register)
    (child,) = recorded
    assert child.popen.returncode is not None  # stopped and reaped by the teardown


@pytest.mark.usefixtures("policy")
def test_run_output_kills_and_reaps_its_command_when_interrupted(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    timer = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(Interrupted):
            run_output(["sh", "-c", f"echo $$ > {pid_file}; exec sleep 60"], timeout=30)
    finally:
        timer.cancel()
    pid = int(pid_file.read_text())
    with pytest.raises(ProcessLookupError):  # not even a zombie: reaped
        os.kill(pid, 0)


LATE_SIGNAL = """
import os, signal, sys, time
from tunbench.cli import main as cli

def command(_a):
    if sys.argv[1] == "during":
        os.kill(os.getpid(), signal.SIGTERM)  # the handler raises at once
        time.sleep(1)
    return 0

def late_signal():
    os.kill(os.getpid(), signal.SIGTERM)  # after main: the interpreter is about to shut down
    time.sleep(0.05)
    return 0

cli.COMMANDS["list"] = command
cli.main = lambda argv=["list"], m=cli.main: (m(argv), late_signal())[0]
cli.run()
"""


@pytest.mark.parametrize(("when", "status"), [("during", 143), ("after", 0)])
def test_a_signal_as_the_program_ends_never_kills_it_by_the_signal(when: str, status: int) -> None:
    """Once the command is done a late SIGTERM is recorded, then blocked: the status is 0 or
    128+N, never -15 (killed while the interpreter shut down) or 1 (a handler's traceback)."""
    out = subprocess.run([sys.executable, "-c", LATE_SIGNAL, when], capture_output=True)
    assert (out.returncode, out.stderr.count(b"Traceback")) == (status, 0), out
