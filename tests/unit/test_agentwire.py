"""The agent's JSON-lines codec, its request handling and the controller's clock maths,
without root: the agent's ops that touch no network run in-process here."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tunbench.cell.agent import Agent
from tunbench.cell.teardown import Teardown
from tunbench.errors import AgentError
from tunbench.peers.wireguard_go import private_key
from tunbench.plan.sshhosts import check_pair, load_inventory, resolve
from tunbench.plan.twohost import ctl_window, host_window
from tunbench.system import agentwire as wire


def test_encode_is_one_line_and_decodes_back() -> None:
    msg = {"id": 3, "op": "hello", "text": "two\nlines", "n": 1.5}
    line = wire.encode(msg)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert wire.decode(line) == msg


def test_encode_refuses_nan() -> None:
    with pytest.raises(ValueError):
        wire.encode({"id": 1, "x": float("nan")})


@pytest.mark.parametrize("line", [b"not json", b"[1, 2]", b'"text"'])
def test_decode_refuses_what_is_not_an_object(line: bytes) -> None:
    with pytest.raises(AgentError):
        wire.decode(line)


def test_request_and_check_request() -> None:
    assert wire.check_request(wire.request(7, "poll")) == (7, "poll")
    with pytest.raises(AgentError, match="unknown agent op"):
        wire.request(1, "reboot")
    with pytest.raises(AgentError, match="integer id"):
        wire.check_request({"id": True, "op": "poll"})
    with pytest.raises(AgentError, match="integer id"):
        wire.check_request({"op": "poll"})


def test_failure_keeps_the_first_line_and_the_kind() -> None:
    rep = wire.failure(4, "first\nsecond", "PrerequisiteError")
    assert rep == {"id": 4, "ok": False, "error": "first", "kind": "PrerequisiteError"}


def test_line_buffer_joins_partial_reads_and_skips_blank_lines() -> None:
    buf = wire.LineBuffer()
    assert buf.feed(b'{"id":1') == []
    assert buf.pending == 7
    assert buf.feed(b'}\n\n{"id":2}\n{"id"') == [b'{"id":1}', b'{"id":2}']
    assert buf.pending == 5


def test_line_buffer_limit() -> None:
    buf = wire.LineBuffer(limit=10)
    with pytest.raises(AgentError, match="longer than"):
        buf.feed(b"x" * 11)


def test_clock_offset_takes_the_shortest_round_trip() -> None:
    samples = [
        wire.ClockSample(100.0, 105.4, 100.6),  # rtt 0.6, offset 5.1
        wire.ClockSample(200.0, 205.05, 200.1),  # rtt 0.1, offset 5.0
        wire.ClockSample(300.0, 306.0, 301.0),
    ]
    offset, err = wire.clock_offset(samples)
    assert offset == pytest.approx(5.0)
    assert err == pytest.approx(0.05)
    with pytest.raises(AgentError):
        wire.clock_offset([])
    with pytest.raises(AgentError, match="before it was sent"):
        wire.clock_offset([wire.ClockSample(10.0, 10.0, 9.0)])


def test_windows_map_between_clocks_and_back() -> None:
    # host: wall 1000 at mono 50, its wall 3 s ahead of the controller's
    clock = {"wall": 1000.0, "mono": 50.0}
    start, end = host_window(996.0, 997.0, 3.0, clock)
    assert (start, end) == pytest.approx((49.0, 50.0))
    assert ctl_window(start, end, 3.0, clock) == pytest.approx((996.0, 997.0))


def _agent(tmp_path: Path) -> Agent:
    agent = Agent(Teardown())
    agent.workdir = tmp_path
    return agent


def test_handle_answers_with_the_request_id(tmp_path: Path) -> None:
    agent = _agent(tmp_path)
    rep = agent.handle({"id": 5, "op": "hello"})
    assert rep["id"] == 5 and rep["ok"] is True
    assert rep["protocol"] == wire.PROTOCOL
    assert set(rep["clock"]) == {"wall", "mono"}
    assert rep["host"]["hostname"]


def test_handle_turns_bad_requests_into_failures(tmp_path: Path) -> None:
    agent = _agent(tmp_path)
    unknown = agent.handle({"id": 2, "op": "reboot"})
    assert unknown == {
        "id": 2,
        "ok": False,
        "error": "unknown agent op 'reboot'",
        "kind": "AgentError",
    }
    bad_args = agent.handle({"id": 3, "op": "poll", "surprise": 1})
    assert bad_args["ok"] is False and "TypeError" in bad_args["error"]
    nothing = agent.handle({"id": 4, "op": "wait_ready"})
    assert nothing["ok"] is False and "nothing started" in nothing["error"]
    assert agent.handle({"id": 6, "op": "poll"}) == {"id": 6, "ok": True, "done": None}
    role = agent.handle({"id": 7, "op": "start", "role": "c", "kind": "peer"})
    assert role["ok"] is False and "bad role" in role["error"]


def test_agent_process_answers_and_exits_on_eof(tmp_path: Path) -> None:
    """The real program: three requests, one broken line, then end of input: it answers
    each in order and exits, leaving nothing in its state directory but the lock."""
    lines = [
        wire.encode(wire.request(1, "hello")),
        b"{broken\n",
        wire.encode(wire.request(2, "poll")),
        wire.encode(wire.request(3, "stop")),
    ]
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-m", "tunbench.cli", "agent", "--stdio", "--state-dir", str(tmp_path)],
        input=b"".join(lines),
        capture_output=True,
        timeout=60,
        env=env,
        check=False,
    )
    replies = [json.loads(ln) for ln in out.stdout.splitlines()]
    assert [r["id"] for r in replies] == [1, None, 2, 3]
    assert [r["ok"] for r in replies] == [True, False, True, True]
    assert out.returncode == 0, out.stderr
    assert b"stopped on request" in out.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lock"]


def test_agent_deadline_ends_it(tmp_path: Path) -> None:
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    argv = [sys.executable, "-m", "tunbench.cli", "agent", "--stdio", "--deadline", "1"]
    proc = subprocess.Popen(
        [*argv, "--state-dir", str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        proc.wait(timeout=30)  # stdin stays open: only the deadline ends it
        assert proc.stderr is not None
        err = proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pipe in (proc.stdin, proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()
    assert proc.returncode == 1
    assert b"deadline of 1s passed" in err


def test_private_key_is_clamped_and_deterministic() -> None:
    import base64

    key = base64.b64decode(private_key(b"\xff" * 32))
    assert len(key) == 32
    assert key[0] & 7 == 0 and key[31] & 128 == 0 and key[31] & 64 == 64
    assert private_key(b"\x01" * 32) == private_key(b"\x01" * 32)


def test_inventory_hosts_resolve_to_ssh_commands(tmp_path: Path) -> None:
    inv = tmp_path / "inv.json"
    inv.write_text(
        json.dumps(
            {
                "all": {
                    "vars": {"tunbench_state_dir": "/run/x"},
                    "hosts": {
                        "ha": {
                            "ansible_host": "127.0.0.1",
                            "ansible_user": "root",
                            "ansible_ssh_common_args": "-o ProxyCommand='nc %h %p'",
                            "tunbench_underlay": "192.168.77.1",
                        },
                        "hb": {"ansible_host": "192.168.77.2", "tunbench_python": "/opt/py"},
                    },
                }
            }
        )
    )
    hosts = load_inventory(inv)
    a, b = resolve("ha", hosts), resolve("hb", hosts)
    assert a.underlay == "192.168.77.1" and b.underlay == "192.168.77.2"
    assert a.ssh[-1] == "root@127.0.0.1" and "ProxyCommand=nc %h %p" in a.ssh
    argv = b.agent_argv(90)
    assert argv[-1] == "/opt/py -m tunbench.cli agent --stdio --deadline 90 --state-dir /run/x"
    check_pair(a, b)
    with pytest.raises(Exception, match="not in the inventory"):
        resolve("hc", hosts)
    plain = resolve("root@10.9.8.7:2222", None)
    assert plain.underlay == "10.9.8.7" and "2222" in plain.ssh
    with pytest.raises(Exception, match="same underlay"):
        check_pair(plain, resolve("10.9.8.7", None))


def test_stdout_only_carries_replies(tmp_path: Path) -> None:
    """The agent's own messages go to stderr: stdout is the channel."""
    from tunbench.cell import agent as agent_module

    stdout = io.BytesIO()
    read, write = os.pipe()
    os.close(write)  # EOF at once
    with os.fdopen(read, "rb") as stdin:
        code = agent_module.serve(stdin, stdout, 30.0, tmp_path)
    assert code == 1  # ended by EOF, not by a stop request
    assert stdout.getvalue() == b""


def test_half_mode_needs_remote_seed_and_a_shareable_crypto_mode() -> None:
    from tunbench.peers.base import PeerError, build_parser, check_half
    from tunbench.peers.openvpn import OpenVPN

    parse = build_parser(OpenVPN).parse_args
    check_half(OpenVPN(), parse([]))  # one host: nothing to check
    with pytest.raises(PeerError, match="--remote ADDR and --secret SEED"):
        check_half(OpenVPN(), parse(["--half", "a"]))
    with pytest.raises(PeerError, match="--crypto aead has no half mode"):
        check_half(
            OpenVPN(),
            parse(["--half", "b", "--remote", "192.0.2.1", "--secret", "s", "--crypto", "aead"]),
        )
    check_half(OpenVPN(), parse(["--half", "b", "--remote", "192.0.2.1", "--secret", "s"]))
