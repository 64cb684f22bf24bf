"""Typed errors raised by the library; only the CLI turns them into messages and exit codes."""

from __future__ import annotations

import time
from typing import Any


class TunbenchError(Exception):
    """Base class. ``exit_code`` is what the CLI exits with; ``str()`` is a one-line message."""

    exit_code = 1


class UsageError(TunbenchError):
    """Bad input from the user: unknown variant, bad option value, unusable results dir."""

    exit_code = 2


class PrerequisiteError(TunbenchError):
    """The machine lacks something the run needs: root, /dev/net/tun, iperf3/libiperf."""

    exit_code = 2


class BusyError(TunbenchError):
    """Another tunbench run holds the lock."""

    exit_code = 2


class TopologyError(TunbenchError):
    """Namespaces, links or addresses could not be set up."""


class ForwarderError(TunbenchError):
    """The forwarder failed to start, never created its devices, or exited mid-run."""

    def __init__(self, message: str, returncode: int | None = None, stderr_tail: str = "") -> None:
        super().__init__(message)
        self.returncode = returncode
        self.stderr_tail = stderr_tail
        self.detected_at = time.time()  # Unix seconds: when the harness noticed


class MeasurementError(TunbenchError):
    """iperf3 failed, hung past its deadline, or produced no usable result. ``detail``:
    what the failed measurement did find (e.g. a zero-loss search's trials), kept in the
    result file as ``workload_detail``."""

    def __init__(self, message: str, detail: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.detail = detail


class AgentError(TunbenchError):
    """A host's agent (two-host topology) could not be reached, broke its protocol, died,
    or failed a request; the message names the host."""


class ResultFileError(TunbenchError):
    """A result file is missing, malformed or of an unknown schema version."""


class Interrupted(BaseException):
    """SIGINT or SIGTERM arrived; carries the conventional exit status (130 or 143)."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"interrupted by signal {signum}")
        self.signum = signum
        self.exit_code = 128 + signum
