"""``--rev`` and ``--testbed``: every result file says which revision of the forwarder it
measured and on which testbed; files from before version 3 get both derived."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tunbench.analysis import results
from tunbench.cell import metadata, record
from tunbench.cell.options import CellOptions
from tunbench.cell.variants import CellSpec
from tunbench.cli import main as cli_main
from tunbench.cli.cellargs import cell_options
from tunbench.load import iperf3

KERNEL = CellSpec("kernel-veth", "baseline", "kernel-veth")


@pytest.fixture(autouse=True)
def _no_libiperf(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(iperf3, "check_available", lambda: "3.test")
    metadata._static.cache_clear()
    yield
    metadata._static.cache_clear()


def _git(cwd: Path, *args: str) -> str:
    out = subprocess.run(
        ["git", "-C", str(cwd), *args], check=True, capture_output=True, text=True
    ).stdout
    return out.strip()


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A git work tree holding one committed forwarder script."""
    repo = tmp_path / "fwd"
    repo.mkdir()
    _git(repo, "init", "-q")
    _git(repo, "config", "user.email", "t@example.invalid")
    _git(repo, "config", "user.name", "t")
    (repo / "fwd.sh").write_text("#!/bin/sh\n")
    _git(repo, "add", "fwd.sh")
    _git(repo, "commit", "-q", "-m", "one")
    return repo


def test_given_rev_and_testbed_are_recorded_as_given() -> None:
    doc = record.skeleton(KERNEL, CellOptions(rev="r7", testbed="lab-2"), "abc123")
    assert doc["revision"] == {"rev": "r7", "source": "given"}
    assert doc["testbed"] == "lab-2"
    flat = results.flat({**doc, "metadata": doc["metadata"], "results": {}})
    assert (flat["rev"], flat["testbed"]) == ("r7", "lab-2")


def test_builtin_rows_default_to_tunbench_commit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metadata, "git_sha", lambda: "f00dfeed")
    doc = record.skeleton(KERNEL, CellOptions(), "abc123")
    assert doc["revision"] == {"rev": "f00dfeed", "source": "tunbench"}
    assert doc["testbed"] == results.host_name(doc)  # the host's label or name


def test_external_forwarder_in_a_git_tree_gets_its_describe(tree: Path) -> None:
    short = _git(tree, "rev-parse", "--short", "HEAD")
    fwd = str(tree / "fwd.sh")
    assert metadata.revision("external", fwd, None) == {"rev": short, "source": "git-describe"}
    _git(tree, "tag", "-a", "v1.0", "-m", "v1.0")  # describe names annotated tags
    assert metadata.revision("external", fwd, None)["rev"] == "v1.0"
    (tree / "fwd.sh").write_text("#!/bin/sh\n# changed\n")
    assert metadata.revision("external", fwd, None)["rev"] == "v1.0-dirty"
    assert metadata.revision("external", fwd, "mine") == {"rev": "mine", "source": "given"}


def test_external_forwarder_outside_git_has_no_revision(tmp_path: Path) -> None:
    fwd = tmp_path / "fwd.sh"
    fwd.write_text("#!/bin/sh\n")
    assert metadata.revision("external", str(fwd), None) == {"rev": None, "source": None}
    assert metadata.revision("external", "socat", None) == {"rev": None, "source": None}


def test_cli_flags_reach_the_cell_options() -> None:
    a = cli_main.build_parser().parse_args(["run", "kernel-veth", "--rev", "r2", "--testbed", "x"])
    opts = cell_options(a)
    assert (opts.rev, opts.testbed) == ("r2", "x")
    plain = cell_options(cli_main.build_parser().parse_args(["run", "kernel-veth"]))
    assert (plain.rev, plain.testbed) == (None, None)


def test_version_2_file_gets_derived_revision_and_testbed(tmp_path: Path) -> None:
    doc = record.skeleton(KERNEL, CellOptions(), "abc123")
    doc["metadata"]["git_sha"] = "abc1234"
    doc["host"]["label"] = "old-box"
    old = {k: v for k, v in doc.items() if k not in ("revision", "testbed")}
    old["version"] = 2
    (tmp_path / "old.json").write_text(json.dumps(old))
    ext = {**old, "cell": {**old["cell"], "kind": "external"}}
    (tmp_path / "ext.json").write_text(json.dumps(ext))
    got = results.load(tmp_path / "old.json")
    assert got["revision"] == {"rev": "abc1234", "source": "derived"}
    assert got["testbed"] == "old-box"
    assert results.load(tmp_path / "ext.json")["revision"]["rev"] is None
