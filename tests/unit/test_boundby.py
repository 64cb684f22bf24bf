"""The bound-by rule on constructed samples: which limit a run hit, and the numbers why."""

from __future__ import annotations

from typing import Any

import pytest

from tunbench.analysis import boundby, results
from tunbench.analysis.boundby import ProcessCPU, decide

from resultdocs import make_doc


def samples(
    cpu: float, busy: float = 50.0, threads: int = 1, per_thread: Any = None, n: int = 30
) -> list[dict[str, Any]]:
    """``n`` samples of 0.1 s ending at 10.1 .. 13.0 (the window used below is 10..13)."""
    out = []
    for i in range(1, n + 1):
        s: dict[str, Any] = {
            "t": 10.0 + 0.1 * i,
            "dt": 0.1,
            "cpu_pct": cpu,
            "rss_bytes": 1,
            "system_busy_pct": busy,
            "threads": threads,
        }
        if per_thread is not None:
            s["cpu_threads"] = per_thread
        out.append(s)
    return out


def doc_with(fwd: list[dict[str, Any]], load: dict[str, Any], kind: str = "python") -> Any:
    d = make_doc("sync-normal", 2.0)
    d["cell"]["kind"] = kind
    d["metadata"]["cpu_count"] = 2
    d["window"] = {"start": 10.0, "end": 13.0}
    d["samples"] = fwd
    d["load_samples"] = load
    return d


QUIET = {"iperf3-client": samples(30.0), "iperf3-server": samples(20.0)}


def test_a_thread_at_a_full_core_is_named() -> None:
    per = {"fwd-1to2": 97.0, "fwd-2to1": 20.0, "MainThread": 0.1}
    b = boundby.from_doc(doc_with(samples(117.1, busy=80.0, threads=3, per_thread=per), QUIET))
    assert b is not None
    assert b.verdict == "forwarder thread fwd-1to2 saturated"
    assert b.numbers["busiest_thread"] == "fwd-1to2"
    assert b.numbers["busiest_pct"] == pytest.approx(97.0)
    assert "busiest forwarder thread fwd-1to2 97%" in b.explain()


def test_thread_lists_from_the_sampler_count_too() -> None:
    per = [{"name": "rx", "cpu_pct": 40.0}, {"name": "tx", "cpu_pct": 96.0}]
    b = boundby.from_doc(doc_with(samples(136.0, threads=2, per_thread=per), QUIET))
    assert b is not None and b.verdict == "forwarder thread tx saturated"


def test_busy_threads_below_the_line_are_not_saturated_even_if_the_total_is_high() -> None:
    per = {"a": 90.0, "b": 90.0}
    b = boundby.from_doc(doc_with(samples(180.0, busy=60.0, threads=2, per_thread=per), QUIET))
    assert b is not None and b.verdict == "not CPU-bound"


def test_without_per_thread_samples_a_single_thread_at_95_is_saturated() -> None:
    b = boundby.from_doc(doc_with(samples(96.0, threads=1), QUIET))
    assert b is not None and b.verdict == "forwarder thread main saturated"


def test_without_per_thread_samples_the_total_is_held_against_the_thread_count() -> None:
    idle_two = boundby.from_doc(doc_with(samples(60.0, threads=2), QUIET))
    assert idle_two is not None and idle_two.verdict == "not CPU-bound"
    busy_two = boundby.from_doc(doc_with(samples(150.0, threads=2), QUIET))
    assert busy_two is not None and busy_two.verdict == "forwarder busy, threads unknown"
    full_two = boundby.from_doc(doc_with(samples(192.0, busy=90.0, threads=2), QUIET))
    assert full_two is not None and full_two.verdict == "forwarder saturated"


def test_a_load_generator_at_a_full_core() -> None:
    load = {"iperf3-client": samples(98.0), "iperf3-server": samples(40.0)}
    b = boundby.from_doc(doc_with(samples(50.0, threads=3), load))
    assert b is not None
    assert b.verdict == "load generator saturated (iperf3 client)"
    assert b.numbers["load_pct"]["iperf3-client"] == pytest.approx(98.0)


def test_a_full_machine_when_nothing_owns_a_core() -> None:
    b = boundby.from_doc(doc_with(samples(120.0, busy=99.0, threads=3), QUIET))
    assert b is not None and b.verdict == "machine saturated"
    assert "machine 99% busy of 2 cores" in b.explain()


def test_the_first_limit_wins_and_the_others_are_kept() -> None:
    load = {"iperf3-client": samples(99.0)}
    b = decide(ProcessCPU(99.0, 1), {"iperf3-client": ProcessCPU(99.0)}, 99.0, 2)
    assert b.verdict == "forwarder thread main saturated"
    assert b.also == ("load generator saturated (iperf3 client)", "machine saturated")
    kernel = boundby.from_doc(doc_with(samples(0.0, busy=99.0), load, kind="baseline"))
    assert kernel is not None and kernel.verdict == "load generator saturated (iperf3 client)"
    assert kernel.numbers["forwarder_pct"] is None


def test_not_cpu_bound_says_what_else_was_seen() -> None:
    d = doc_with(samples(40.0, threads=3), QUIET)
    d["forwarder"] = {"directions": {"1to2": {"drops": 5}, "2to1": {"drops": 2}}}
    b = boundby.from_doc(d)
    assert b is not None and b.verdict == "not CPU-bound"
    assert b.numbers["drops"] == 7 and b.numbers["retransmits"] == 7
    assert "7 retransmits" in b.explain() and "7 forwarder drops" in b.explain()
    assert b.numbers["closest"] == "machine 50% busy"  # nothing else came nearer to its limit


def test_not_cpu_bound_names_what_came_closest() -> None:
    load = {"iperf3-client": samples(93.0), "iperf3-server": samples(44.0)}
    b = boundby.from_doc(doc_with(samples(0.0, busy=73.0), load, kind="baseline"))
    assert b is not None and b.verdict == "not CPU-bound"
    assert "closest to a limit: iperf3 client 93% of a core" in b.explain()


def test_samples_outside_the_window_do_not_count() -> None:
    warmup = [{**s, "t": s["t"] - 5.0, "cpu_pct": 100.0} for s in samples(100.0)]
    b = boundby.from_doc(doc_with(warmup + samples(10.0), QUIET))
    assert b is not None and b.numbers["forwarder_pct"] == pytest.approx(10.0)


def test_failed_runs_and_runs_without_a_window_have_no_verdict() -> None:
    assert boundby.from_doc(make_doc("x", 1.0, status="failed")) is None
    d = doc_with(samples(10.0), QUIET)
    d["window"] = None
    assert boundby.from_doc(d) is None


def test_flat_decides_from_the_samples_for_old_and_new_files() -> None:
    old = doc_with(samples(99.0), QUIET)
    assert results.flat(old)["bound_by"] == "forwarder thread main saturated"
    old["results"]["bound_by"] = "machine saturated"  # stored by an older rule
    assert results.flat(old)["bound_by"] == "forwarder thread main saturated"


def test_a_row_summary_names_disagreement() -> None:
    assert boundby.summarize_row(["machine saturated"] * 3) == "machine saturated"
    row = boundby.summarize_row(["not CPU-bound", "machine saturated", "machine saturated"])
    assert row == "machine saturated (2/3)"
    assert boundby.summarize_row([None, None]) is None


def test_window_averages_per_thread_in_the_results_come_first() -> None:
    d = doc_with(samples(150.0, threads=3, per_thread={"x": 50.0}), QUIET)
    d["results"]["cpu_threads"] = {"fwd-1to2": 96.5, "12345": 50.0}
    b = boundby.from_doc(d)
    assert b is not None and b.verdict == "forwarder thread fwd-1to2 saturated"
