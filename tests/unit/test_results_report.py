from __future__ import annotations

import json
from pathlib import Path

import pytest

from tunbench.analysis import results
from tunbench.cli import main as cli
from tunbench.errors import ResultFileError, UsageError
from tunbench.report import tables

from resultdocs import make_doc


def test_round_trip_and_flat_keys(tmp_path: Path) -> None:
    doc = make_doc()
    path = results.write(doc, tmp_path, "one")
    assert path == tmp_path / "one.json"
    assert [p.name for p in tmp_path.iterdir()] == ["one.json"]  # no temp file left
    back = results.load(path)
    assert back["results"] == doc["results"]
    rec = results.flat(back)
    for key in results.FLAT_KEYS:
        assert key in rec
    assert rec["result_file"] == str(path)
    assert rec["gbps"] == pytest.approx(12.345)


def test_load_rejects_other_versions_and_garbage(tmp_path: Path) -> None:
    doc = make_doc()
    doc["version"] = 99
    bad = tmp_path / "v99.json"
    bad.write_text(json.dumps(doc))
    with pytest.raises(ResultFileError, match="version 99"):
        results.load(bad)
    junk = tmp_path / "junk.json"
    junk.write_text("{not json")
    with pytest.raises(ResultFileError, match="cannot read"):
        results.load(junk)


def test_load_dir_skips_temporary_files(tmp_path: Path) -> None:
    results.write(make_doc("a"), tmp_path, "a")
    (tmp_path / ".tb-half.json").write_text("{")
    assert [d["cell"]["variant"] for d in results.load_dir(tmp_path)] == ["a"]


def test_unwritable_results_dir(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(UsageError, match="cannot be created"):
        results.check_writable(blocker / "sub")


def test_markdown_table_formats_and_marks_failures() -> None:
    recs = [results.flat(make_doc("sync-gso")), results.flat(make_doc("sync-normal", status="x"))]
    text = tables.markdown(recs)
    header = text.splitlines()[0]
    for col in tables.COLUMNS:
        assert col in header
    row = text.splitlines()[2]
    assert "12.35" in row and "81%" in row and "100%" in row and "17.4 MB" in row
    assert "FAILED" in text.splitlines()[3]
    assert "failed: sync-normal: forwarder exited with status 3" in text


def test_csv_and_json_keep_raw_numbers() -> None:
    recs = [results.flat(make_doc(gbps=1.23456789))]
    assert "1.23456789" in tables.csv(recs)
    assert json.loads(tables.json_table(recs))[0]["Gbps"] == pytest.approx(1.23456789)


def test_slug_is_file_name_safe() -> None:
    assert results.slug("sync-gso --thread 2") == "sync-gso_--thread_2"
    assert results.slug("/usr/bin/x {iface1}") == "usr_bin_x__iface1"
    assert results.slug("///") == "cell"
    assert len(results.slug("a" * 200)) == 60


def test_schema_doc_names_every_flat_key() -> None:
    """docs/results-schema.md must list every key `run --json` prints."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "results-schema.md").read_text()
    flat_doc = text[text.index("`tunbench run --json` prints a flat record") :]
    missing = [k for k in results.flat(make_doc()) if f"`{k}`" not in flat_doc]
    assert missing == []


def _foreign_files(directory: Path) -> None:
    (directory / "notes.json").write_text(json.dumps({"todo": "rerun sync-gso"}))
    (directory / "exported.json").write_text(json.dumps([{"Variant": "sync-gso"}]))
    (directory / "scratch.json").write_text("{half a thought")


def test_report_and_compare_skip_foreign_json_with_one_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old, new = tmp_path / "old", tmp_path / "new"
    for d, gbps in ((old, 10.0), (new, 11.0)):
        d.mkdir()
        results.write(make_doc("sync-gso", gbps), d, "cell")
        _foreign_files(d)
    assert cli.main(["report", "--results-dir", str(new)]) == 0
    out, err = capsys.readouterr()
    assert "sync-gso" in out
    (warning,) = err.strip().splitlines()
    assert warning.startswith("tunbench: warning: skipped 3 files")
    for name in ("exported.json", "notes.json", "scratch.json"):
        assert name in warning
    assert cli.main(["compare", str(old), str(new)]) == 0
    out, err = capsys.readouterr()
    assert "sync-gso" in out
    assert len(err.strip().splitlines()) == 2  # one line per directory
    assert all("skipped 3 files" in line for line in err.strip().splitlines())


def test_load_dir_reports_what_it_skipped(tmp_path: Path) -> None:
    results.write(make_doc("a"), tmp_path, "a")
    _foreign_files(tmp_path)
    seen: list[list[Path]] = []
    docs = results.load_dir(tmp_path, on_skip=seen.append)
    assert [d["cell"]["variant"] for d in docs] == ["a"]
    assert [[p.name for p in paths] for paths in seen] == [
        ["exported.json", "notes.json", "scratch.json"]
    ]


def test_a_tunbench_result_of_another_version_is_refused_by_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results.write(make_doc("a"), tmp_path, "a")
    future = make_doc("b")
    future["version"] = results.VERSION + 1
    (tmp_path / "future.json").write_text(json.dumps(future))
    assert cli.main(["report", "--results-dir", str(tmp_path)]) != 0
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert str(tmp_path / "future.json") in line and "version" in line
