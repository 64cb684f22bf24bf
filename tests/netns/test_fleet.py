"""``tunbench fleet`` over fake hosts (tests/netns/fakehosts.py): results tagged with their
host, busy and unreachable hosts told apart, and an interrupted fleet run that leaves
nothing behind on any host. The fake hosts share this machine's CPUs: these tests check
tagging, merging and cleanup, not speed."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tunbench.analysis import results
from tunbench.system.procs import wait_until

from fakehosts import SSHD, FakeHost, fake_hosts, inventory
from helpers import REPO, TUNBENCH, harness_processes, tb_namespaces, tb_tempdirs, tunbench

pytestmark = [pytest.mark.root, pytest.mark.timeout(120)]

# the shortest matrix that measures: one 1 s run of one row, no profile, no diagnostic pass
MATRIX = [
    *("sync-normal", "--", "--repeat", "1", "--duration", "1", "--omit", "0"),
    *("--background-wait", "0", "--background-seconds", "0.1", "--no-profile", "--no-diagnose"),
]
VENV_TUNBENCH = REPO / ".venv" / "bin" / "tunbench"  # what the hosts run (--no-install)


def _missing() -> str | None:
    for tool in (SSHD, "socat", "ssh-keygen", "unshare"):
        if shutil.which(tool) is None:
            return f"needs {tool} (Debian openssh-server, socat, util-linux)"
    if not (Path(sys.executable).parent / "ansible-playbook").exists():
        return "needs ansible-core and ansible-runner (pip install 'tunbench[fleet]')"
    if not VENV_TUNBENCH.exists():
        return f"needs the venv of scripts/bootstrap.sh ({VENV_TUNBENCH})"
    return None


@pytest.fixture(scope="module")
def hosts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, FakeHost]]:
    """Two fake hosts for the whole module: a test leaves them as it found them (the
    per-test check below), so sharing them saves their start-up only."""
    reason = _missing()
    if reason:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"CI=true and a fleet prerequisite is missing: {reason}")
        pytest.skip(reason)
    run_id = os.urandom(3).hex()
    with fake_hosts(["fh-a", "fh-b"], tmp_path_factory.mktemp("fakehosts"), run_id) as made:
        yield made


@pytest.fixture(autouse=True)
def nothing_left_behind(hosts: dict[str, FakeHost]) -> Iterator[None]:
    """conftest's check, the fake hosts' namespaces aside; and on every fake host: no
    namespace, work directory or process left by the fleet run."""
    ours = {h.ns for h in hosts.values()}
    assert [n for n in tb_namespaces() if n not in ours] == [], "a test leaked namespaces"
    before = tb_tempdirs()
    yield
    assert [n for n in tb_namespaces() if n not in ours] == []
    assert harness_processes() == []
    assert tb_tempdirs() <= before
    for h in hosts.values():
        # sshd may still be closing the last connection's session
        wait_until(lambda h=h: not h.leftovers(), 10.0)
        assert h.leftovers() == [], h.name


def fleet_argv(inv: Path, out: Path, *matrix: str) -> list[str]:
    """``fleet INV SPEC... --out OUT ... -- MATRIX OPTIONS`` (the specs follow the inventory)."""
    cut = matrix.index("--")
    own = ["--out", str(out), "--no-install", "--poll", "1"]
    return ["fleet", str(inv), *matrix[:cut], *own, *matrix[cut:]]


def host_inventory(path: Path, hosts: list[FakeHost]) -> Path:
    return inventory(path, hosts, tunbench_dir=str(REPO))


def fleet_dir_of(out: Path) -> Path:
    (one,) = out.glob("fleet-*")
    return one


def outcomes(fleet_dir: Path) -> dict[str, dict[str, Any]]:
    hosts: dict[str, dict[str, Any]] = json.loads((fleet_dir / "fleet.json").read_text())["hosts"]
    return hosts


def test_fleet_of_two_hosts_tags_each_result_with_its_host(
    hosts: dict[str, FakeHost], tmp_path: Path
) -> None:
    inv = host_inventory(tmp_path / "hosts.yml", [hosts["fh-a"], hosts["fh-b"]])
    proc = tunbench(*fleet_argv(inv, tmp_path / "out", *MATRIX), timeout=110)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    fleet_dir = fleet_dir_of(tmp_path / "out")
    summary = outcomes(fleet_dir)
    assert {h: o["outcome"] for h, o in summary.items()} == {"fh-a": "ok", "fh-b": "ok"}
    assert all(o["result_files"] == 1 and o["wall_s"] > 0 for o in summary.values())
    assert sorted(p.name for p in fleet_dir.iterdir() if p.is_dir()) == ["fh-a", "fh-b"]
    for name in ("fh-a", "fh-b"):
        (d,) = results.load_dir(fleet_dir / name)
        assert d["status"] == "ok", d["error"]
        # the inventory name from the playbook, the hostname from the host's UTS namespace
        assert (d["host"]["inventory_name"], d["host"]["hostname"]) == (name, name)
        assert d["host"]["derived"] is False
    report = tunbench("report", "--by", "host", "--results-dir", str(fleet_dir))
    assert report.returncode == 0, report.stderr
    body = [line for line in report.stdout.splitlines()[2:] if line.startswith("| ")]
    assert [line.split("|")[2].strip() for line in body] == ["fh-a", "fh-b"]
    assert "rows combine" not in report.stdout + report.stderr


def test_busy_and_unreachable_hosts_are_told_apart(
    hosts: dict[str, FakeHost], tmp_path: Path
) -> None:
    tmp_path.joinpath("extra").mkdir()
    with fake_hosts(["fh-c"], tmp_path / "extra", os.urandom(3).hex()) as extra:
        extra["fh-c"].stop()  # its namespace stays, nothing listens in it
        inv = host_inventory(tmp_path / "hosts.yml", [*hosts.values(), extra["fh-c"]])
        with hosts["fh-a"].lock_held() as lock:
            proc = tunbench(*fleet_argv(inv, tmp_path / "out", *MATRIX), timeout=110)
            assert lock.exists()
    assert proc.returncode == 1, proc.stdout + proc.stderr
    fleet_dir = fleet_dir_of(tmp_path / "out")
    summary = outcomes(fleet_dir)
    assert {h: o["outcome"] for h, o in summary.items()} == {
        "fh-a": "busy",
        "fh-b": "ok",
        "fh-c": "unreachable",
    }
    assert "/run/tb-state/lock" in summary["fh-a"]["error"]
    assert summary["fh-c"]["error"]
    assert sorted(p.name for p in fleet_dir.iterdir() if p.is_dir()) == ["fh-b"]
    (d,) = results.load_dir(fleet_dir / "fh-b")
    assert d["status"] == "ok" and d["host"]["inventory_name"] == "fh-b"
    assert "| fh-a | busy |" in proc.stdout and "| fh-c | unreachable |" in proc.stdout


def test_interrupted_fleet_leaves_nothing_on_the_hosts(
    hosts: dict[str, FakeHost], tmp_path: Path
) -> None:
    inv = host_inventory(tmp_path / "hosts.yml", list(hosts.values()))
    long = list(MATRIX)
    long[long.index("--duration") + 1] = "30"  # still measuring when the SIGINT comes
    # its own session, as a shell starts a job: the SIGINT goes to its process group
    proc = subprocess.Popen(
        [*TUNBENCH, *fleet_argv(inv, tmp_path / "out", *long)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        # the matrix is measuring on both hosts: its namespaces exist there
        running = wait_until(
            lambda: all(h.namespaces() for h in hosts.values()) or proc.poll() is not None, 60.0
        )
        assert running and proc.poll() is None, proc.communicate()[0]
        # what the check for leftovers must find gone: the matrix, seen in the host's
        # PID namespace
        for h in hosts.values():
            assert any(" matrix " in p for p in h.processes()), (h.name, h.processes())
        os.killpg(proc.pid, signal.SIGINT)
        out, _ = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, out
    summary = outcomes(fleet_dir_of(tmp_path / "out"))
    assert {o["outcome"] for o in summary.values()} == {"failed"}, summary
    for h in hosts.values():
        assert h.namespaces() == [] and h.workdirs() == [], h.name
