"""Bad input: one line, exit 2, nothing created."""

from __future__ import annotations

import ctypes.util
import os
from pathlib import Path

import pytest

from tunbench.cli import cellargs, common
from tunbench.cli import main as cli


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    if code != 0:
        assert captured.out == "", "an error must not print anything else (e.g. a help text)"
    return code, captured.err.strip()


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["run", "nosuch"], "unknown variant 'nosuch'"),
        (["run", "sync-gso --thread 0"], "--thread: must be >= 1"),
        (["run", "sync-gso", "--duration", "-1"], "--duration: must be >= 1"),
        (["run", "sync-gso", "--duration", "abc"], "not a whole number"),
        (["run", "sync-gso", "--mtu", "100"], "576..65535"),
        (["run", "sync-gso", "--mtu", "70000"], "576..65535"),
        (["frobnicate"], "invalid choice"),
        (["run", "sync-gso --mt 9000"], "unrecognized arguments: --mt 9000"),  # no abbrevs
        (["run", "sync-gso --stat /tmp/x"], "unrecognized arguments: --stat"),
        (["run", "sync-gso --mtu 9000"], "--mtu belongs to the harness"),
        (["run", "sync-gso --configure"], "--configure belongs to the harness"),
        (["run", "sync-gso --help"], "--help shows the options and exits"),
        (["matrix", "sync-normal", "async-gso -h"], "--help shows the options and exits"),
        (["run", "sync-gso --multiqueue"], "--multiqueue needs --thread 2 or more"),
        (["run", "/bin/true {iface1} {iface2} {stats}", "--verify"], "would count the checks"),
        (
            ["matrix", "kernel-veth", "--until-ci", "3", "--repeat", "5", "--max-repeat", "4"],
            "--max-repeat 4 is below --repeat 5",
        ),
        (["matrix", "kernel-veth", "--until-ci", "0"], "a percentage above 0"),
        (["run", "kernel-veth", "--background-limit", "x"], "expected a number"),
        (["compare", "a", "b", "--min-effect", "-1"], "a number >= 0"),
    ],
)
def test_bad_input_one_line_exit_2(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    argv: list[str],
    needle: str,
) -> None:
    code, err = run(
        capsys, *argv, *(["--results-dir", str(tmp_path / "r")] if argv[0] == "run" else [])
    )
    assert code == 2
    assert needle in err
    assert len(err.splitlines()) == 1
    assert not (tmp_path / "r").exists()


def test_not_root(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    code, err = run(capsys, "run", "sync-gso", "--results-dir", str(tmp_path / "r"))
    assert code == 2
    assert "needs root (CAP_NET_ADMIN)" in err
    assert not (tmp_path / "r").exists()


def test_missing_libiperf_names_the_package(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: "/nonexistent/libiperf.so.0")
    if not os.path.exists("/dev/net/tun"):
        pytest.skip("the /dev/net/tun check comes first")
    code, err = run(capsys, "run", "sync-gso", "--results-dir", str(tmp_path / "r"))
    assert code == 2
    assert "libiperf0" in err and "iperf3" in err


def test_unwritable_results_dir(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(common, "check_prerequisites", lambda: "iperf 3.12")
    blocker = tmp_path / "file"
    blocker.write_text("")
    code, err = run(capsys, "run", "sync-gso", "--results-dir", str(blocker / "r"))
    assert code == 2
    assert "results dir" in err


def test_report_on_missing_dir(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, err = run(capsys, "report", "--results-dir", str(tmp_path / "none"))
    assert code == 2
    assert "does not exist" in err


def test_report_to_an_unwritable_place(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "r").mkdir()
    for fmt in ("markdown", "csv", "json"):
        out = tmp_path / "no" / "such" / "dir" / "x"
        code, err = run(
            capsys,
            "report",
            "--results-dir",
            str(tmp_path / "r"),
            "--format",
            fmt,
            "--out",
            str(out),
        )
        assert code == 2, err
        assert err.startswith("tunbench: error: cannot write the report") and "\n" not in err


def test_missing_dev_net_tun(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    real_exists = os.path.exists
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(os.path, "exists", lambda p: p != "/dev/net/tun" and real_exists(p))
    code, err = run(capsys, "run", "sync-gso", "--results-dir", str(tmp_path / "r"))
    assert code == 2
    assert "/dev/net/tun is missing" in err
    assert not (tmp_path / "r").exists()


def test_verify_and_matrix_validate_before_creating(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, err = run(capsys, "verify", "nosuch")
    assert code == 2 and "unknown variant" in err
    code, err = run(capsys, "matrix", "sync-gso", "--repeat", "0")
    assert code == 2 and "--repeat" in err
    code, err = run(capsys, "matrix", "sync-gso", "--cpus", "0:99")
    assert code == 2 and "CPU 99 does not exist" in err


def test_every_workload_option_reaches_the_cell_options() -> None:
    a = cli.build_parser().parse_args(
        [
            "run",
            "sync-gso",
            "--duration",
            "7",
            "--omit",
            "2",
            "--mtu",
            "1400",
            "--udp",
            "--bandwidth",
            "5",
            "--parallel",
            "3",
            "--reverse",
            "--latency",
            "--cpus",
            "0:0",
            "--grace",
            "9",
            "--results-dir",
            "/tmp/x",
        ]
    )
    o = cellargs.cell_options(a)
    assert (o.mtu, o.latency, o.grace, o.fwd_cpus, o.load_cpus) == (1400, True, 9.0, (0,), (0,))
    assert str(o.results_dir) == "/tmp/x"
    i = o.iperf
    assert (i.duration, i.omit, i.udp, i.bandwidth, i.parallel, i.reverse, i.blksize) == (
        7,
        2,
        True,
        5,
        3,
        True,
        1372,
    )


@pytest.mark.parametrize(
    ("workload", "needle"),
    [("rr", "install the Debian package sockperf"), ("crr", "install the Debian package iperf")],
)
def test_missing_load_generator(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    workload: str,
    needle: str,
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing on it
    code, err = run(
        capsys, "run", "sync-normal", "--workload", workload, "--results-dir", str(tmp_path / "r")
    )
    assert code == 2
    assert needle in err and len(err.splitlines()) == 1
    assert not (tmp_path / "r").exists()
