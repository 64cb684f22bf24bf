"""The document results.py assembles: its keys are the ones docs/results-schema.md lists."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tunbench.analysis import results
from tunbench.cell import metadata, record
from tunbench.cell.options import CellOptions
from tunbench.cell.variants import CellSpec
from tunbench.errors import ForwarderError, MeasurementError
from tunbench.load import iperf3
from tunbench.load.iperf3 import Iperf3Result
from tunbench.load.measurement import Measurement
from tunbench.load.ping import PingResult
from tunbench.system.sampler import Background, Sample, summarize

SCHEMA_DOC = Path(__file__).resolve().parents[2] / "docs" / "results-schema.md"
KERNEL = CellSpec("kernel-veth", "baseline", "kernel-veth")


@pytest.fixture(autouse=True)
def _no_libiperf(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """metadata.collect asks libiperf for its version; these tests need no iperf3."""
    monkeypatch.setattr(iperf3, "check_available", lambda: "3.test")
    metadata._static.cache_clear()
    yield
    metadata._static.cache_clear()


def sample(t: float) -> Sample:
    return Sample(t, 0.1, 50.0, 10_000_000, 25.0, 3, 30.0, 20.0, {"fwd-0": 30.0, "77": 20.0})


def measurement(with_ping: bool, samples: list[Sample] | None = None) -> Measurement:
    if samples is None:
        samples = [sample(10.0 + 0.1 * i) for i in range(1, 31)]
    res = Iperf3Result(2e9, 2.1e9, 4, 10.0, 13.0, {"end": {}})
    m: Measurement = {
        "iperf": res,
        "samples": samples,
        "window": {"start": 10.0, "end": 13.0, "anchor": "streams"},
        "summary": summarize(samples, 10.0, 13.0),
        "sampler_error": None,
        "load_samples": {"iperf3-client": samples, "iperf3-server": samples},
        "sampler_cpu_pct": 0.8,
        "background": Background(3.0, [40.0, 3.0], False),
        "interval_bps": [2.0e9, 2.1e9, 1.9e9],
    }
    if with_ping:
        m["ping"] = PingResult(30, 29, [0.1] * 29)
    return m


def keys_with_parents(doc: dict[str, Any]) -> list[tuple[str, str]]:
    """(parent, key) for every top-level key and every key one level inside the objects
    the harness assembles; the forwarder's own counters and raw iperf3 JSON are not."""
    out = [("", k) for k in doc if not k.startswith("_")]
    for parent in ("cell", "host", "metadata", "results", "window", "forwarder_exit"):
        out += [(parent, k) for k in doc.get(parent) or {}]
    out += [("samples", k) for sample in doc["samples"][:1] for k in sample]
    return out


def documented(text: str, parent: str, key: str) -> bool:
    """A row is about ``parent.key`` (or a top-level ``key``), or a row about ``parent``
    names ``key`` (``| `metadata.kernel`, `cpu_model` |``, ``forwarder_exit``'s fields)."""
    rows = [line.split("|") for line in text.splitlines() if line.startswith("| `")]
    name = f"{parent}.{key}" if parent else key
    if any(f"`{name}`" in row[1] or f"`{name}." in row[1] for row in rows):
        return True
    about = [row for row in rows if parent and f"`{parent}" in row[1]]
    return any(f"`{key}`" in cell for row in about for cell in row)


def test_every_assembled_key_is_in_the_schema_doc() -> None:
    ok = record.skeleton(KERNEL, CellOptions(latency=True), "abc123")
    record.fill(ok, [], None, measurement(with_ping=True), has_forwarder=False)
    failed = record.skeleton(KERNEL, CellOptions(), "abc123")
    record.record_failure(failed, ForwarderError("forwarder exited", 3, "boom\nlast line"))
    record.fill(failed, ["fwd", "--x"], None, None, has_forwarder=True)
    text = SCHEMA_DOC.read_text()
    missing = {
        f"{p}.{k}" if p else k
        for doc in (ok, failed)
        for p, k in keys_with_parents(doc)
        if not documented(text, p, k)
    }
    assert missing == set()


def test_assembly_as_run_cell_does_it(tmp_path: Path) -> None:
    doc = record.skeleton(KERNEL, CellOptions(), "abc123", {"matrix": {"id": "m"}})
    assert list(doc)[-1] == "matrix"  # extra keys come after the schema's own
    record.record_failure(doc, ForwarderError("forwarder exited with status 3", 3, "a\nb"))
    counters = {"offload": {"tun11": ["TUN_F_CSUM"]}}
    record.fill(doc, ["fwd", "--mtu", "1500"], counters, measurement(False), has_forwarder=True)
    assert doc["status"] == "failed" and doc["error"] == "forwarder exited with status 3 — b"
    assert doc["forwarder_exit"]["status"] == 3
    assert doc["forwarder"] is counters
    assert doc["metadata"]["forwarder_command"] == "fwd --mtu 1500"
    assert doc["metadata"]["offload_flags"] == counters["offload"]
    r = doc["results"]
    assert r["gbps"] == pytest.approx(2.0)
    assert r["cpu_avg"] == pytest.approx(50.0)
    assert (r["cpu_user_avg"], r["cpu_sys_avg"]) == pytest.approx((30.0, 20.0))
    assert r["cpu_threads"] == pytest.approx({"fwd-0": 30.0, "77": 20.0})
    assert r["duration_s"] == pytest.approx(3.0) and r["samples"] == 30
    assert r["background_cpu_pct"] == 3.0 and r["noisy"] is False
    assert r["interval_cv"] == pytest.approx(0.05) and r["steady"] is True
    assert r["rtt_p50_ms"] is None and r["rtt_count"] is None
    assert doc["window"] == {"start": 10.0, "end": 13.0, "anchor": "streams", "clock": "monotonic"}
    path = results.save(doc, tmp_path)
    assert path.name.endswith("-kernel-veth-abc123.json") and doc["_path"] == str(path)
    assert "_path" not in json.loads(path.read_text())
    assert results.load(path)["results"] == doc["results"]


def test_no_measurement_leaves_the_numbers_out() -> None:
    doc = record.skeleton(KERNEL, CellOptions(), "abc123")
    record.fill(doc, [], None, None, has_forwarder=False)
    assert doc["results"] == {} and doc["window"] is None and doc["iperf3"] is None
    assert doc["metadata"]["forwarder_command"] is None
    assert "offload_flags" not in doc["metadata"]


def test_no_sample_in_the_window_is_null_not_zero() -> None:
    """A run whose samples all lie outside its window measured nothing: no 0 % CPU."""
    outside = [sample(20.0 + 0.1 * i) for i in range(1, 11)]
    fwd = CellSpec("socat", "external", "socat")
    doc = record.skeleton(fwd, CellOptions(), "abc123")
    record.fill(doc, ["fwd"], None, measurement(False, outside), has_forwarder=True)
    r = doc["results"]
    for key in ("cpu_avg", "cpu_user_avg", "cpu_sys_avg", "cpu_max", "mem_avg_mb", "cpu_threads"):
        assert r[key] is None, key
    assert r["system_busy_avg"] is None and r["samples"] == 0 and r["duration_s"] == 0.0
    assert r["sampler_error"] == "no samples inside the measured window"
    rec = results.flat(doc)
    assert rec["sampler_error"] == "no samples inside the measured window"
    assert rec["cpu_avg"] is None


def test_baseline_has_no_process_figures_but_system_busy() -> None:
    doc = record.skeleton(KERNEL, CellOptions(), "abc123")
    record.fill(doc, [], None, measurement(False), has_forwarder=False)
    r = doc["results"]
    assert r["cpu_avg"] is None and r["cpu_threads"] is None
    assert r["system_busy_avg"] == pytest.approx(25.0)


def test_machine_facts_for_noise() -> None:
    meta = record.skeleton(KERNEL, CellOptions(load_cpus=(1,)), "abc123")["metadata"]
    assert meta["online_cpus"] >= 1 and len(meta["loadavg"]) == 3
    assert "cpu_governor" in meta
    assert meta["cpus"]["harness"] == [1]
    assert meta["background_limit"] == 15.0


def test_a_failed_search_keeps_its_trials() -> None:
    """A zero-loss search that found no rate says why in one line and keeps every trial."""
    doc = record.skeleton(KERNEL, CellOptions(), "abc123")
    steps = [{"phase": "probe", "rate_pps": None, "loss_percent": 4.0, "passed": False}]
    record.record_failure(doc, MeasurementError("zero-loss: no rate", {"steps": steps}))
    assert doc["status"] == "failed" and doc["error"] == "zero-loss: no rate"
    assert doc["workload_detail"]["steps"] == steps
    plain = record.skeleton(KERNEL, CellOptions(), "abc123")
    record.record_failure(plain, MeasurementError("iperf3 client failed"))
    assert "workload_detail" not in plain
