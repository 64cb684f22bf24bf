"""``tunbench history export``: each format checked against what its tool documents.

- Bencher Metric Format: the JSON schema bencher.dev publishes (https://bencher.dev/bmf.json:
  an object of benchmarks, each an object of measures, each an object with a required
  number ``value`` and optional numbers ``lower_value``, ``upper_value``), plus the
  documented limits (benchmark name up to 1024 characters, measure slug up to 64).
- github-action-benchmark's ``customBiggerIsBetter`` / ``customSmallerIsBetter``: a JSON
  array of objects with string ``name``, string ``unit``, number ``value`` and optional
  string ``range`` and ``extra`` (its README's example and its custom-JSON check).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest

from tunbench.cli.main import main
from tunbench.report import historyexport

from resultdocs import write_rev


def check_bmf(doc: Any) -> None:
    assert isinstance(doc, dict) and doc
    for bench, measures in doc.items():
        assert isinstance(bench, str) and 0 < len(bench) <= 1024
        assert isinstance(measures, dict) and measures
        for slug, metric in measures.items():
            assert isinstance(slug, str) and 0 < len(slug) <= 64
            assert isinstance(metric, dict) and "value" in metric
            assert set(metric) <= {"value", "lower_value", "upper_value"}
            for v in metric.values():
                assert isinstance(v, (int, float)) and not isinstance(v, bool)
            assert metric["lower_value"] <= metric["value"] <= metric["upper_value"]


def check_gab(doc: Any) -> None:
    assert isinstance(doc, list) and doc
    for entry in doc:
        assert (
            {"name", "unit", "value"} <= set(entry) <= {"name", "unit", "value", "range", "extra"}
        )
        assert isinstance(entry["name"], str) and isinstance(entry["unit"], str)
        assert isinstance(entry["value"], (int, float)) and not isinstance(entry["value"], bool)
        for key in ("range", "extra"):
            assert isinstance(entry.get(key, ""), str)
    names = [e["name"] for e in doc]
    assert len(names) == len(set(names))  # one line per benchmark on its chart


def test_the_validators_reject_what_the_tools_would() -> None:
    with pytest.raises(AssertionError):
        check_bmf({"b": {"m": {"lower_value": 1.0}}})  # no value
    with pytest.raises(AssertionError):
        check_bmf({"b": {"m": {"value": "1"}}})  # a string
    with pytest.raises(AssertionError):
        check_gab([{"name": "x", "value": 1.0}])  # no unit
    with pytest.raises(AssertionError):
        check_gab([{"name": "x", "unit": "u", "value": 1.0, "range": 3}])  # range not a string


@pytest.fixture
def hist(tmp_path: Path) -> Path:
    out = tmp_path / "results"
    out.mkdir()
    write_rev(out, "r1", 10.0, seed=1)
    write_rev(out, "r2", 9.0, seed=2)
    return out


def export(hist: Path, fmt: str, capsys: pytest.CaptureFixture[str], *extra: str) -> str:
    assert main(["history", "export", "--results-dir", str(hist), "--format", fmt, *extra]) == 0
    return capsys.readouterr().out


def test_bmf(hist: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = json.loads(export(hist, "bmf", capsys))
    check_bmf(doc)
    fwd = doc["lab sync-gso [stream]"]
    assert fwd["gbps"]["value"] == pytest.approx(9.0, rel=0.02)  # the last revision
    assert fwd["pct-of-kernel"]["value"] == pytest.approx(22.5, rel=0.03)
    assert fwd["cpu-per-gbps"]["value"] == pytest.approx(80.0 / 9.0, rel=0.03)
    first = json.loads(export(hist, "bmf", capsys, "--rev", "r1"))
    assert first["lab sync-gso [stream]"]["gbps"]["value"] == pytest.approx(10.0, rel=0.02)
    assert "pct-of-kernel" not in first["lab kernel-veth [stream]"]


def test_github_action_benchmark(hist: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bigger = json.loads(export(hist, "gab-bigger", capsys))
    smaller = json.loads(export(hist, "gab-smaller", capsys))
    check_gab(bigger)
    check_gab(smaller)
    assert {e["name"] for e in bigger} == {
        "lab kernel-veth [stream] gbps",
        "lab sync-gso [stream] gbps",
        "lab sync-gso [stream] pct-of-kernel",
    }
    [cpu] = smaller
    assert cpu["name"] == "lab sync-gso [stream] cpu-per-gbps"
    assert cpu["unit"] == "% of a core per Gbps"
    assert "rev r2" in cpu["extra"]


def test_csv_has_every_run(hist: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = list(csv.DictReader(io.StringIO(export(hist, "csv", capsys))))
    assert len(rows) == 16 and set(rows[0]) == set(historyexport.CSV_COLUMNS)
    fwd = [r for r in rows if r["spec"] == "sync-gso"]
    assert {r["rev"] for r in fwd} == {"r1", "r2"}
    assert all(
        float(r["pct_of_kernel"])
        == pytest.approx(100 * float(r["value"]) / float(r["kernel_value"]))
        for r in fwd
    )
    kernel = [r for r in rows if r["spec"] == "kernel-veth"]
    assert all(r["pct_of_kernel"] == "" for r in kernel) or all(
        float(r["pct_of_kernel"]) == pytest.approx(100.0) for r in kernel
    )


def test_export_to_a_file(hist: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "bmf.json"
    export(hist, "bmf", capsys, "--out", str(out))
    check_bmf(json.loads(out.read_text()))
