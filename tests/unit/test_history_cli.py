"""``tunbench history``: the sqlite index over result files, ``show``, ``check``'s exit
codes, ``bisect-run``'s, and revision order, on hand-made result files."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from tunbench.cli.main import main
from tunbench.plan import historystore

from resultdocs import write_rev


@pytest.fixture
def hist(tmp_path: Path) -> Path:
    """r1 and r2 at the same speed, r3 10 % slower (the kernel row steady)."""
    out = tmp_path / "results"
    out.mkdir()
    for i, (rev, gbps) in enumerate((("r1", 10.0), ("r2", 10.0), ("r3", 9.0))):
        write_rev(out, rev, gbps, seed=i + 1)
    return out


def run(*argv: str) -> int:
    return main(list(argv))


def test_index_is_built_refreshed_and_rebuildable(hist: Path) -> None:
    done = historystore.refresh(hist)
    assert (done.read, done.removed, done.runs) == (24, 0, 24)
    again = historystore.refresh(hist)
    assert (again.read, again.unchanged) == (0, 24)
    next(hist.glob("lab-r3-0-sync-gso.json")).unlink()
    assert historystore.refresh(hist).removed == 1
    (hist / historystore.INDEX_NAME).unlink()  # nothing is lost: rebuilt from the files
    assert historystore.refresh(hist).runs == 23
    loaded = historystore.load_series(hist)
    fwd = next(s for s in loaded.series if s.spec == "sync-gso")
    assert fwd.revs == ["r1", "r2", "r3"] and len(fwd.runs) == 11
    assert all(r.ratio == pytest.approx(r.value / r.kernel) for r in fwd.runs)
    assert fwd.runs[0].ratio == pytest.approx(0.25, rel=0.03)


def test_a_corrupt_index_is_a_usage_error(hist: Path) -> None:
    (hist / historystore.INDEX_NAME).write_bytes(b"not sqlite at all" * 100)
    with pytest.raises(Exception, match="delete it"):
        historystore.refresh(hist)


def test_show_finds_the_change_at_r3_labelled_forwarder(
    hist: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("history", "show", "--results-dir", str(hist)) == 0
    out = capsys.readouterr().out
    sections = {part.split("\n", 1)[0]: part for part in out.split("### ")[1:]}
    fwd = sections["lab · sync-gso · stream (Gbps)"]
    [line] = [ln for ln in fwd.splitlines() if ln.startswith("| `r3`")]
    assert "▼ -9." in line or "▼ -10." in line
    assert line.endswith("forwarder |")
    assert "▼" not in fwd.replace(line, "")  # r1 and r2: no change
    assert "No change point." in sections["lab · kernel-veth (kernel row) · stream (Gbps)"]


@pytest.mark.parametrize(
    ("argv", "code"),
    [
        (["--rev", "r3"], 1),
        (["--rev", "r2"], 0),
        (["--rev", "r3", "--against", "r1"], 1),
        (["--rev", "r3", "--min-effect", "20"], 0),  # -10 % is within a 20 % allowance
        (["--rev", "r1", "--against", "r3"], 3),  # r1 is faster than r3
    ],
)
def test_check_exit_codes(
    hist: Path, argv: list[str], code: int, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("history", "check", "--results-dir", str(hist), *argv) == code
    out = capsys.readouterr().out
    assert "sync-gso" in out and "kernel-veth" not in out  # the kernel row is the host
    assert "% of kernel" in out


def test_check_judges_the_figure_asked_for(hist: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["history", "check", "--results-dir", str(hist), "--rev", "r3"]
    assert run(*base, "--figure", "absolute") == 1
    out = capsys.readouterr().out
    assert "regression (absolute -" in out and "% of kernel" not in out
    assert run(*base, "--figure", "ratio") == 1
    assert "regression (% of kernel -" in capsys.readouterr().out
    for path in hist.glob("lab-r3-*-kernel-veth.json"):  # r3 without its kernel row
        path.unlink()
    assert run(*base) == 1  # auto: the absolute figure, since r3 has no % of kernel
    assert "regression (absolute -" in capsys.readouterr().out
    assert run(*base, "--figure", "ratio") == 2
    assert "no % of kernel" in capsys.readouterr().out


def test_check_is_inconclusive_with_too_few_or_noisy_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    noisy = tmp_path / "noisy"
    noisy.mkdir()
    write_rev(noisy, "a", 10.0, seed=1, noise=0.15)
    write_rev(noisy, "b", 9.7, seed=2, noise=0.15)
    assert run("history", "check", "--results-dir", str(noisy), "--rev", "b") == 2
    out = capsys.readouterr().out
    assert "inconclusive" in out and "more runs" in out


def test_check_that_cannot_judge_exits_4(hist: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("history", "check", "--results-dir", str(hist), "--rev", "r9") == 4
    assert "no runs of revision 'r9'" in capsys.readouterr().err
    assert run("history", "check", "--results-dir", str(hist / "missing"), "--rev", "r1") == 4
    future = hist / "future.json"  # a result file this tunbench cannot read
    future.write_text('{"schema": "tunbench.result", "version": 99}')
    assert run("history", "check", "--results-dir", str(hist), "--rev", "r3") == 4
    assert "future.json" in capsys.readouterr().err


def test_check_against_an_unknown_base_exits_4(
    hist: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("history", "check", "--results-dir", str(hist), "--rev", "r3", "--against", "x") == 4
    assert "--against x" in capsys.readouterr().err


def test_runs_to_decide_shrinks_with_the_interval() -> None:
    from tunbench.analysis.history import runs_to_decide

    # d = -2 % against a 3 % threshold: the interval must shrink to +-1 % to rule it out
    assert runs_to_decide(4, 6.0, -2.0, 3.0) == 4 * 36 - 4
    assert runs_to_decide(4, 2.0, -2.0, 3.0) == 12
    # d = -5 %: past the threshold, the interval must clear 0 to call it a regression
    assert runs_to_decide(4, 10.0, -5.0, 3.0) == 12
    assert runs_to_decide(4, 2.0, -3.0, 3.0) == 1  # on the threshold: the interval is narrow
    assert runs_to_decide(4, 2.0, 0.0, 0.0) is None  # no change, no allowance: nothing decides


def test_last_segment_takes_every_revision_since_the_last_change(tmp_path: Path) -> None:
    out = tmp_path / "r"
    out.mkdir()
    for i, (rev, gbps) in enumerate((("a", 12.0), ("b", 12.0), ("c", 10.0), ("d", 10.0))):
        write_rev(out, rev, gbps, seed=i + 1)
    write_rev(out, "e", 10.0, seed=5)  # measured last: first-seen order puts it last
    loaded = historystore.load_series(out) if historystore.refresh(out) else None
    assert loaded is not None
    fwd = next(s for s in loaded.series if s.spec == "sync-gso")
    from tunbench.analysis import history

    assert history.base_revs(fwd, "e", None, True) == ["c", "d"]
    assert history.check(fwd, "e", last_segment=True).verdict == history.NO_REGRESSION
    assert history.check(fwd, "e", against="a").verdict == history.REGRESSION


def test_bisect_run_exit_codes(hist: Path, tmp_path: Path) -> None:
    base = ["history", "bisect-run", "--results-dir", str(hist), "--against", "r1"]
    assert run(*base, "--rev", "r3") == 1
    assert run(*base, "--rev", "r2") == 0
    assert run(*base, "--rev", "r9") == 128  # an error stops git bisect, never "bad"
    # --measure runs first, with the revision in $TUNBENCH_REV; its failure skips
    marker = tmp_path / "measured"
    assert run(*base, "--rev", "r2", "--measure", f'echo "$TUNBENCH_REV" > {marker}') == 0
    assert marker.read_text().strip() == "r2"
    assert run(*base, "--rev", "r2", "--measure", "exit 3") == 125


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout.strip()


def test_revisions_in_git_order_with_repo(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    _git(repo, "config", "user.email", "t@example.invalid")
    _git(repo, "config", "user.name", "t")
    shas = []
    for i in range(3):
        (repo / "f").write_text(str(i))
        _git(repo, "add", "f")
        _git(repo, "commit", "-q", "-m", f"c{i}")
        shas.append(_git(repo, "rev-parse", "--short", "HEAD"))
    seen = [shas[2], shas[0] + "-dirty", "unknown", shas[0], shas[1]]
    order, how = historystore.revision_order(seen, repo)
    assert how == "git"
    assert order == [shas[0], shas[0] + "-dirty", shas[1], shas[2], "unknown"]
    assert historystore.revision_order(seen, None) == (seen, "first seen")


def test_testbeds_are_separate_series(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "r"
    out.mkdir()
    write_rev(out, "r1", 10.0, seed=1, testbed="a")
    write_rev(out, "r1", 5.0, seed=2, testbed="b")
    loaded: Any = historystore.load_series(out) if historystore.refresh(out) else None
    assert sorted((s.testbed, s.spec) for s in loaded.series) == [
        ("a", "kernel-veth"),
        ("a", "sync-gso"),
        ("b", "kernel-veth"),
        ("b", "sync-gso"),
    ]
    assert run("history", "show", "--results-dir", str(out), "--testbed", "b") == 0
    shown = capsys.readouterr().out
    assert "b · sync-gso" in shown and "a · sync-gso" not in shown
