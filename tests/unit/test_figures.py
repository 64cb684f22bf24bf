"""The page's charts from constructed documents: what each draws when the samples carry
more (per-thread CPU, user/system) or less (a kernel baseline, a failed run)."""

from __future__ import annotations

from typing import Any

from tunbench.report import figures

from resultdocs import make_doc


def doc(per_thread: bool = False, split: bool = False) -> dict[str, Any]:
    d = make_doc("sync-gso", 10.0)
    d["metadata"].update({"cpu_count": 2, "workload": {"omit": 1}})
    d["window"] = {"start": 11.0, "end": 14.0}
    d["samples"] = []
    for i in range(1, 41):
        s: dict[str, Any] = {
            "t": 10.0 + 0.1 * i,
            "dt": 0.1,
            "cpu_pct": 90.0,
            "rss_bytes": 1_000_000,
            "system_busy_pct": 70.0,
            "threads": 3,
        }
        if per_thread:
            s["cpu_threads"] = {"fwd-0": 60.0, "fwd-1": 30.0}
        if split:
            s["cpu_user_pct"], s["cpu_sys_pct"] = 20.0, 70.0
        d["samples"].append(s)
    d["load_samples"] = {"iperf3-client": d["samples"][::2]}
    d["iperf3"] = {
        "intervals": [
            {"sum": {"start": 0, "end": 1, "bits_per_second": 9e9, "omitted": True}},
            {"sum": {"start": 0, "end": 1, "bits_per_second": 1e10}},
        ]
    }
    return d


def names(fig: Any) -> list[str]:
    return [t.name for t in fig.data]


def test_forwarder_cpu_draws_threads_and_user_system_when_sampled() -> None:
    plain = figures.Run.from_doc(doc(), "run 1")
    rich = figures.Run.from_doc(doc(per_thread=True, split=True), "run 2")
    assert plain is not None and rich is not None
    assert names(figures.forwarder_cpu([plain])) == ["run 1 total"]
    assert names(figures.forwarder_cpu([rich])) == [
        "run 2 total",
        "run 2 user",
        "run 2 system",
        "run 2 thread fwd-0",
        "run 2 thread fwd-1",
    ]


def test_time_runs_from_the_window_start_and_warm_up_is_negative() -> None:
    run = figures.Run.from_doc(doc(), "run 1")
    assert run is not None
    iv = figures.intervals([run]).data[0]
    assert list(iv.x) == [-0.5, 0.5] and list(iv.y) == [9.0, 10.0]
    cpu = figures.forwarder_cpu([run]).data[0]
    assert cpu.x[0] == -0.95 and cpu.x[-1] == 2.95


def test_cpu_everywhere_leaves_out_the_forwarder_of_a_baseline() -> None:
    d = doc()
    d["cell"]["kind"] = "baseline"
    run = figures.Run.from_doc(d, "run 1")
    assert run is not None
    got = names(figures.cpu_everywhere([run]))
    assert got == ["iperf3-client (run 1)", "machine (run 1)"]
    machine = figures.cpu_everywhere([run]).data[-1]
    assert max(machine.y) == 140.0  # 70 % of 2 cores, in % of one core


def test_a_run_without_a_window_is_not_drawn() -> None:
    d = make_doc("x", 1.0, status="failed")
    d["window"] = None
    assert figures.Run.from_doc(d, "run 1") is None


def test_icicle_keeps_callers_of_kept_frames_and_sums_to_the_root() -> None:
    fig = figures.icicle({"a;b": 70, "a;c": 29, "a;d": 1}, "t", min_share=0.02)
    ice = fig.data[0]
    assert list(ice.ids) == ["all", "a", "a;b", "a;c"]  # a;d (1 %) is left out
    assert list(ice.parents) == ["", "all", "a", "a"]
    assert list(ice.values) == [100, 100, 70, 29]
