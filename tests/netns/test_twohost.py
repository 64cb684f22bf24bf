"""Two-host rows over two fake hosts (tests/netns/fakehosts.py) joined by a veth underlay:
wireguard-go's halves forward across it, a dead agent fails the row at once, Ctrl-C on
the controller leaves nothing on either host, and a shaped underlay caps both the link
row and the VPN. The fake hosts share this machine's CPUs: throughput here is the two
halves' contention, not a link's."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tunbench.analysis import results
from tunbench.cell.cleanup import clean_controller
from tunbench.system.procs import wait_until

from fakehosts import SSHD, STATE_DIR, FakeHost, fake_hosts, inventory, qdisc_kinds, underlay
from helpers import (
    REPO,
    TUNBENCH,
    harness_processes,
    session_processes,
    tb_namespaces,
    tb_tempdirs,
    tunbench,
)

pytestmark = [pytest.mark.root, pytest.mark.timeout(90)]

RUN = ("--duration", "1", "--omit", "0", "--background-wait", "0", "--background-seconds", "0.1")
SHAPE_BPS = 200e6


def _missing() -> str | None:
    for tool in (SSHD, "socat", "ssh-keygen", "unshare", "wireguard-go", "wg"):
        if shutil.which(tool) is None:
            return f"needs {tool} (Debian openssh-server, socat, util-linux, wireguard-go/-tools)"
    return None


@pytest.fixture(scope="module")
def hosts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, FakeHost]]:
    reason = _missing()
    if reason:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"CI=true and a two-host prerequisite is missing: {reason}")
        pytest.skip(reason)
    run_id = os.urandom(3).hex()
    with fake_hosts(["th-a", "th-b"], tmp_path_factory.mktemp("twohost"), run_id) as made:
        underlay(made["th-a"], made["th-b"])
        yield made


@pytest.fixture(autouse=True)
def nothing_left_behind(hosts: dict[str, FakeHost]) -> Iterator[None]:
    """conftest's check, the fake hosts' namespaces aside; and on each fake host: no
    namespace, work directory, process or qdisc of ours left."""
    ours = {h.ns for h in hosts.values()}
    assert [n for n in tb_namespaces() if n not in ours] == [], "a test leaked namespaces"
    before = tb_tempdirs()
    yield
    assert [n for n in tb_namespaces() if n not in ours] == []
    assert harness_processes() == []
    assert tb_tempdirs() <= before
    for h in hosts.values():
        wait_until(lambda h=h: not h.leftovers(), 10.0)
        assert h.leftovers() == [], h.name
        assert "tbf" not in qdisc_kinds(h), h.name


def _argv(hosts: dict[str, FakeHost], tmp: Path, spec: str, *more: str) -> list[str]:
    inv = inventory(tmp / "hosts.json", list(hosts.values()))
    return [
        *("run", spec, "--topology", "two-host", "--host-a", "th-a", "--host-b", "th-b"),
        *("--inventory", str(inv), "--results-dir", str(tmp / "results")),
        *RUN,
        *more,
    ]


def _result(tmp: Path) -> dict[str, Any]:
    (doc,) = results.load_dir(tmp / "results")
    return doc


@pytest.mark.parametrize("peer", ["peer-wireguard-go", "peer-openvpn", "peer-fastd"])
def test_halves_forward_tcp_across_the_underlay(
    peer: str, hosts: dict[str, FakeHost], tmp_path: Path
) -> None:
    if shutil.which(peer.removeprefix("peer-")) is None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"CI=true and {peer}'s daemon is not installed")
        pytest.skip(f"{peer}'s daemon is not installed")
    proc = tunbench(*_argv(hosts, tmp_path, peer, "--verify"), timeout=80)
    assert proc.returncode == 0, proc.stderr
    doc = _result(tmp_path)
    assert doc["status"] == "ok"
    assert doc["verify"] == {"ok": True, "checks": {"stream": "ok", "ping": "ok"}}
    assert doc["results"]["gbps"] > 0.01
    topo = doc["topology"]
    assert topo["kind"] == "two-host"
    assert topo["roles"] == {"a": "th-a", "b": "th-b"}
    assert topo["underlay"] == {"a": "192.168.77.1", "b": "192.168.77.2"}
    for role, name in (("a", "th-a"), ("b", "th-b")):
        part = topo["per_role"][role]
        assert part["host_block"]["hostname"] == name  # each fake host's own UTS name
        assert part["samples"], role
        assert part["summary"]["n"] > 0, role
        assert part["summary"]["cpu_avg"] > 1.0, role  # the daemon of that half worked
        assert part["device"] == ("tun11" if role == "a" else "tun22")
        # the same machine's clock: the estimate is near zero and bounded by its error
        assert abs(part["clock"]["offset_s"]) <= part["clock"]["offset_error_s"] + 0.05
    by_role = doc["results"]["cpu_by_role"]
    assert doc["results"]["cpu_avg"] == pytest.approx(by_role["a"] + by_role["b"])
    # the traffic went over the underlay: iperf3's receiver saw the tunnel's addresses
    assert doc["iperf3"]["start"]["connected"][0]["remote_host"] == "10.0.2.1"


def test_a_dead_agent_fails_the_row_within_seconds(
    hosts: dict[str, FakeHost], tmp_path: Path
) -> None:
    argv = _argv(hosts, tmp_path, "peer-wireguard-go")
    argv[argv.index("--duration") + 1] = "30"
    proc = subprocess.Popen(
        [*TUNBENCH, *argv], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    host_b = hosts["th-b"]
    try:
        started = wait_until(
            lambda: (
                any("iperf3child server" in p for p in host_b.processes())
                or proc.poll() is not None
            ),
            40.0,
        )
        assert started and proc.poll() is None, proc.communicate()
        host_b.stop()  # sshd is PID 1 of the host: the agent and its half die with it
        killed = time.monotonic()
        _, err = proc.communicate(timeout=30)
        took = time.monotonic() - killed
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if host_b.proc is None:
            host_b.start()
    assert proc.returncode == 1, err
    assert took < 8.0, f"the row took {took:.1f}s to fail"
    assert "the agent on th-b closed its channel" in err
    doc = _result(tmp_path)
    assert doc["status"] == "failed" and "th-b" in doc["error"]


def test_sigint_on_the_controller_leaves_nothing_on_either_host(
    hosts: dict[str, FakeHost], tmp_path: Path
) -> None:
    argv = _argv(hosts, tmp_path, "peer-wireguard-go")
    argv[argv.index("--duration") + 1] = "30"
    proc = subprocess.Popen(
        [*TUNBENCH, *argv],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        running = wait_until(
            lambda: all(h.namespaces() for h in hosts.values()) or proc.poll() is not None, 40.0
        )
        assert running and proc.poll() is None, proc.communicate()
        for h in hosts.values():
            assert any("agent --stdio" in p for p in h.processes()), h.processes()
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=40)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    for h in hosts.values():
        assert wait_until(lambda h=h: not h.leftovers(), 10.0), h.leftovers()


def test_controller_killed_then_cleaned_leaves_nothing(
    hosts: dict[str, FakeHost], tmp_path: Path
) -> None:
    """kill -9 of the controller: its ssh channels close, each agent reads end of input and
    tears down on its own; ``tunbench clean`` on each host then finds nothing to do, and
    the controller's clean removes its work directory (recorded under its own lock)."""
    argv = _argv(hosts, tmp_path, "peer-wireguard-go")
    argv[argv.index("--duration") + 1] = "30"
    proc = subprocess.Popen(
        [*TUNBENCH, *argv], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        running = wait_until(
            lambda: all(h.namespaces() for h in hosts.values()) or proc.poll() is not None, 40.0
        )
        assert running and proc.poll() is None, proc.communicate()
        proc.kill()
        proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    for h in hosts.values():
        assert wait_until(lambda h=h: not h.leftovers(), 15.0), (h.name, h.leftovers())
        assert _clean_on(h) == ""  # the agent removed everything itself
    assert wait_until(lambda: not session_processes(lambda _n, c: "agent --stdio" in c), 10.0)
    left = [str(d) for d in tb_tempdirs() if "-ctl-" in d.name]
    assert left, "the killed controller's work directory should be there until clean"
    removed = clean_controller()
    assert [f"removed {d}" for d in left] == [r for r in removed if "-ctl-" in r]
    assert not [d for d in tb_tempdirs() if "-ctl-" in d.name]


def _clean_on(host: FakeHost) -> str:
    clean = f"TUNBENCH_STATE_DIR={STATE_DIR} {sys.executable} -m tunbench.cli clean"
    done = subprocess.run(
        [*host.ssh_argv(), clean], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_an_agent_killed_mid_run_is_cleaned_up_by_clean_on_its_host(
    hosts: dict[str, FakeHost], tmp_path: Path
) -> None:
    """kill -9 of host b's agent in a shaped run: the row fails at once; its half's
    daemon dies with it (parent-death signals), but its namespace, work directory and
    the tbf on the underlay stay until ``tunbench clean`` on that host removes them."""
    argv = _argv(hosts, tmp_path, "peer-wireguard-go", "--shape-rate", "500M")
    argv[argv.index("--duration") + 1] = "30"
    proc = subprocess.Popen(
        [*TUNBENCH, *argv], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    host_b = hosts["th-b"]
    try:
        started = wait_until(
            lambda: (
                any("iperf3child server" in p for p in host_b.processes())
                or proc.poll() is not None
            ),
            40.0,
        )
        assert started and proc.poll() is None, proc.communicate()
        (agent,) = [p for p in host_b.processes() if "agent --stdio" in p and "ssh" not in p]
        os.kill(int(agent.split(":")[0]), signal.SIGKILL)  # the agent this run started
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 1 and "the agent on th-b closed its channel" in err, err
    assert "tbf" in qdisc_kinds(host_b)  # what only clean can know of now
    assert host_b.namespaces() and host_b.workdirs()
    out = _clean_on(host_b)
    assert "removed the tbf on tb-ul0" in out, out
    assert "removed namespace" in out, out
    assert wait_until(lambda: not host_b.leftovers(), 10.0), host_b.leftovers()


def test_a_shaped_underlay_caps_the_link_and_the_vpn(
    hosts: dict[str, FakeHost], tmp_path: Path
) -> None:
    gbps = {}
    for spec in ("link", "peer-wireguard-go"):
        out = tmp_path / spec
        out.mkdir()
        proc = tunbench(*_argv(hosts, out, spec, "--shape-rate", "200M"), timeout=80)
        assert proc.returncode == 0, proc.stderr
        doc = _result(out)
        assert doc["topology"]["shape"]["rate_bps"] == SHAPE_BPS
        gbps[spec] = doc["results"]["gbps"]
    limit = SHAPE_BPS / 1e9
    assert gbps["link"] < limit, gbps
    assert gbps["peer-wireguard-go"] < limit, gbps
    assert gbps["link"] > 0.8 * limit, gbps


def test_a_two_host_matrix_holds_the_vpn_against_its_rounds_link_row(
    hosts: dict[str, FakeHost], tmp_path: Path
) -> None:
    argv = _argv(hosts, tmp_path, "link")
    argv[0] = "matrix"
    argv[2:2] = ["peer-fastd"]  # matrix link peer-fastd --topology two-host ...
    proc = tunbench(*argv, "--repeat", "1", timeout=80)
    assert proc.returncode == 0, proc.stderr
    docs = results.load_dir(tmp_path / "results")
    assert sorted(d["cell"]["spec"] for d in docs) == ["link", "peer-fastd"]
    assert len({d["matrix"]["id"] for d in docs}) == 1
    by_spec = {d["cell"]["spec"]: d["results"]["gbps"] for d in docs}
    ratio = 100 * by_spec["peer-fastd"] / by_spec["link"]
    fastd_row = next(ln for ln in proc.stdout.splitlines() if "| peer-fastd " in ln)
    assert f"{ratio:.0f}%" in fastd_row, (ratio, fastd_row)


def test_netem_is_refused_in_one_line_naming_the_kernel_option(
    hosts: dict[str, FakeHost], tmp_path: Path
) -> None:
    proc = tunbench(*_argv(hosts, tmp_path, "link", "--shape-delay", "10"), timeout=60)
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("tunbench: error:")]
    assert len(lines) == 1 and "CONFIG_NET_SCH_NETEM" in lines[0], proc.stderr
    assert not (tmp_path / "results").exists() or not list((tmp_path / "results").iterdir())
    json.dumps(lines)  # the message is plain text
