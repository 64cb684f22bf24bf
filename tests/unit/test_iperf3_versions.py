"""The iperf3 runner on every libiperf 3.x code path of the PyPI wrapper, over loopback.

The wrapper reads the client's JSON from its stdout pipe unless the version string starts
with "iperf 3.1" (3.1, 3.10-3.19); everywhere else (3.2-3.9, 3.20+) that pipe is what the
runner's drain thread reads too. The installed libiperf is real; only the version the
wrapper believes is faked, so each path runs for real.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tunbench.errors import PrerequisiteError
from tunbench.load import iperf3 as iperf

BOOT = """
import sys
import iperf3
VERSION = sys.argv.pop(1)
iperf3.IPerf3.iperf_version = property(lambda self: VERSION)
from tunbench.load.iperf3child import _child
sys.exit(_child(sys.argv[1:]))
"""


def libiperf_missing() -> str | None:
    try:
        iperf.check_available()
    except PrerequisiteError as exc:
        return str(exc)
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def as_version(argv: list[str], version: str) -> list[str]:
    """``argv`` (``python -m tunbench.load.iperf3child ...``) with the version faked."""
    assert argv[1:3] == ["-m", "tunbench.load.iperf3child"]
    return [argv[0], "-c", BOOT, version, *argv[3:]]


def require_libiperf() -> None:
    """Skip without libiperf; in CI (``CI=true``) fail instead."""
    missing = libiperf_missing()
    if missing:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(missing)
        pytest.skip(missing)


@contextlib.contextmanager
def serving(argv: list[str], port: int) -> Iterator[None]:
    """A one-test iperf3 server from ``argv``, listening on ``port`` within 10 s; killed,
    reaped and its stderr closed on the way out."""
    server = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while not iperf.listening(server.pid, port):
            assert server.poll() is None, server.communicate()[1]
            assert time.monotonic() < deadline, "server never listened"
            time.sleep(0.02)
        yield
    finally:
        server.kill()
        server.wait()
        assert server.stderr is not None
        server.stderr.close()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("version", ["iperf 3.9", "iperf 3.12", "iperf 3.20"])
def test_client_result_on_each_wrapper_code_path(version: str, tmp_path: Path) -> None:
    require_libiperf()
    port = free_port()
    with serving(as_version(iperf.server_argv("127.0.0.1", port), version), port):
        out = tmp_path / "client.json"
        opts = iperf.ClientOptions(duration=1, omit=0, port=port)
        client = subprocess.run(
            as_version(iperf.client_argv("127.0.0.1", opts, out), version),
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert client.returncode == 0, client.stderr
        res = iperf.parse(out)
        assert res.bps > 0
        assert res.raw["end"]["sum_received"]["bytes"] > 0


@pytest.mark.timeout(60)
def test_a_paced_udp_window_reaches_the_servers_socket(tmp_path: Path) -> None:
    """``window`` is set on the server's socket too (the zero-loss trials rely on the
    receiver's buffer, not only the sender's), and a burst still sends the asked rate."""
    require_libiperf()
    port = free_port()
    with serving(iperf.server_argv("127.0.0.1", port), port):
        out = tmp_path / "client.json"
        opts = iperf.ClientOptions(
            duration=1, omit=0, port=port, udp=True, bandwidth=50_000_000, blksize=500,
            window=1 << 20, burst=16,
        )  # fmt: skip
        client = subprocess.run(
            iperf.client_argv("127.0.0.1", opts, out), capture_output=True, text=True, timeout=30
        )
        assert client.returncode == 0, client.stderr
        res = iperf.parse(out)
        assert res.raw["server_output_json"]["start"]["rcvbuf_actual"] >= 1 << 20
        assert res.sent_bps == pytest.approx(50e6, rel=0.1)


def test_libiperf_without_the_json_string_is_refused_up_front(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import iperf3

    class OldLib:  # libiperf 3.0.x: no iperf_get_test_json_output_string
        pass

    class OldClient:
        iperf_version = "iperf 3.0.11"
        lib = OldLib()

    if libiperf_missing():
        pytest.skip("needs libiperf to get past the library check")
    monkeypatch.setattr(iperf3, "Client", OldClient)
    with pytest.raises(PrerequisiteError, match=r"too old \(iperf 3.0.11\).*3.1 or later"):
        iperf.check_available()


def test_the_server_writes_no_result_file() -> None:
    argv = iperf.server_argv("10.0.2.1", 5201)
    assert "--out" not in argv
