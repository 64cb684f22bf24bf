"""The matrix's order (interleaved rounds, shuffled within each) and adaptive rounds,
with run_cell replaced: no root needed."""

from __future__ import annotations

import copy
import itertools
import math
import statistics
from pathlib import Path
from typing import Any

import pytest
from scipy.stats import t

from tunbench.cell.options import CellOptions
from tunbench.cell.variants import CellSpec
from tunbench.cli import common
from tunbench.plan import matrix, untilci
from tunbench.plan.matrix import MatrixOptions, plan, round_order
from tunbench.plan.untilci import convergence

from resultdocs import flat, make_doc, real_docs

CELLS = [
    CellSpec("kernel-veth", "baseline", "kernel-veth"),
    CellSpec("fast", "external", "fast"),
    CellSpec("noisy", "external", "noisy"),
    CellSpec("steady", "external", "steady"),
]


def test_rounds_are_shuffled_permutations_replayable_from_the_seed() -> None:
    order = plan(CELLS, 6, seed=42)
    rounds = [[i for r, _, i in order if r == k] for k in range(6)]
    assert all(sorted(r) == [0, 1, 2, 3] for r in rounds)
    assert len({tuple(r) for r in rounds}) > 1  # not the same order every round
    assert [pos for r, pos, _ in order if r == 2] == [0, 1, 2, 3]
    assert plan(CELLS, 6, seed=42) == order
    assert plan(CELLS, 6, seed=43) != order
    # a later round's order depends only on the seed and the round
    assert round_order([1, 3], 42, 7) == round_order([1, 3], 42, 7)


def test_each_cell_leads_a_round_equally_often_over_many_seeds() -> None:
    firsts = [plan(CELLS, 1, seed)[0][2] for seed in range(400)]
    assert all(60 < firsts.count(i) < 140 for i in range(4))


def fake_run(values: dict[str, Any]) -> Any:
    """A run_cell stand-in: Gbps from ``values[spec]`` (a list consumed in order)."""
    iters = {k: iter(v) for k, v in values.items()}

    def run_cell(cell: CellSpec, opts: CellOptions, extra: dict[str, Any]) -> dict[str, Any]:
        gbps = next(iters[cell.spec])
        doc = make_doc(cell.spec, gbps, "ok" if gbps else "failed")
        doc["cell"]["spec"] = cell.spec
        doc["cell"]["mode"] = "kernel" if cell.kind == "baseline" else "external"
        doc.update(extra)
        return doc

    return run_cell


def run(monkeypatch: pytest.MonkeyPatch, values: dict[str, Any], **kw: Any) -> list[Any]:
    monkeypatch.setattr(matrix, "run_cell", fake_run(values))
    mopts = MatrixOptions(profile=False, seed=1, flamegraph_dir=Path("unused"), **kw)
    return matrix.run_matrix(CELLS, CellOptions(), mopts, progress=False)


def test_until_ci_reruns_only_wide_cells_and_their_kernel_runs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    values = {
        "kernel-veth": itertools.repeat(20.0),
        "fast": itertools.repeat(10.0),
        "noisy": itertools.cycle([5.0, 9.0, 6.0, 8.0, 7.0]),
        "steady": itertools.repeat(0.0),  # every run fails: not retried
    }
    recs = run(monkeypatch, values, repeat=3, until_ci=3.0, max_repeat=8)
    runs = {c.spec: [r for r in recs if r["spec"] == c.spec] for c in CELLS}
    assert len(runs["fast"]) == 3 and len(runs["steady"]) == 3
    assert len(runs["noisy"]) == 8  # never within +-3 %: stops at max_repeat
    assert len(runs["kernel-veth"]) == 8  # paired with every extra round of "noisy"
    assert sorted({r["matrix"]["repeat"] for r in runs["noisy"]}) == list(range(8))
    assert all(r["matrix"]["until_ci"] == 3.0 and r["matrix"]["seed"] == 1 for r in recs)
    met, missed = convergence(recs, 3.0)
    assert sorted(met) == ["fast", "kernel-veth"]
    assert sorted((s, n) for s, _, n, _ in missed) == [("noisy", 8), ("steady", 0)]
    needed = {s: k for s, _, _, k in missed}
    assert needed["steady"] is None  # no successful run: no spread to plan from
    # the runs "noisy"'s spread needs for +-3 %, from scipy's t directly
    logs = [math.log(v) for v in [5.0, 9.0, 6.0, 8.0, 7.0, 5.0, 9.0, 6.0]]
    sd = statistics.stdev(logs)
    want = next(
        n for n in range(2, 10_000) if t.ppf(0.975, n - 1) * sd / math.sqrt(n) <= math.log1p(0.03)
    )
    assert needed["noisy"] == want and want > 8


def test_converging_cells_stop_early(monkeypatch: pytest.MonkeyPatch) -> None:
    # +-12 % after 3 runs, +-3.9 % after 4, +-2.6 % after 5
    values = {
        "kernel-veth": itertools.repeat(20.0),
        "fast": itertools.repeat(10.0),
        "noisy": itertools.chain([9.7, 10.3, 10.0], itertools.repeat(10.0)),
        "steady": itertools.repeat(3.0),
    }
    recs = run(monkeypatch, values, repeat=3, until_ci=3.0, max_repeat=8)
    counts = {c.spec: sum(1 for r in recs if r["spec"] == c.spec) for c in CELLS}
    assert counts["steady"] == 3
    assert counts["noisy"] == 5 and counts["kernel-veth"] == 5


def test_without_until_ci_exactly_repeat_rounds(monkeypatch: pytest.MonkeyPatch) -> None:
    values = {c.spec: itertools.cycle([1.0, 5.0]) for c in CELLS}
    recs = run(monkeypatch, values, repeat=2)
    assert len(recs) == 8
    assert all(r["matrix"]["until_ci"] is None for r in recs)


def _fake_workload_run(values: dict[str, Any]) -> Any:
    """A run_cell stand-in: the real rr document of the spec, its TPS from ``values``."""
    docs = {d["cell"]["spec"]: d for d in real_docs("rr")}
    iters = {k: iter(v) for k, v in values.items()}

    def run_cell(cell: CellSpec, opts: CellOptions, extra: dict[str, Any]) -> dict[str, Any]:
        d = copy.deepcopy(docs[cell.spec])
        d["results"]["transactions_per_s"] = next(iters[cell.spec])
        d.update(extra)
        return d

    return run_cell


def test_until_ci_repeats_a_workload_cell_until_its_figure_converges(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cells = [CellSpec(s, "external", s) for s in ("sync-normal", "sync-gso", "peer-socat")]
    values = {
        "sync-normal": itertools.cycle([12_000.0, 15_000.0, 13_000.0, 16_000.0]),
        "sync-gso": itertools.repeat(14_000.0),
        "peer-socat": itertools.chain([9_700.0, 10_300.0, 10_000.0], itertools.repeat(10_000.0)),
    }
    monkeypatch.setattr(matrix, "run_cell", _fake_workload_run(values))
    mopts = MatrixOptions(
        repeat=3, until_ci=3.0, max_repeat=8, profile=False, seed=1, flamegraph_dir=Path("x")
    )
    recs = matrix.run_matrix(cells, CellOptions(), mopts, progress=False)
    counts = {c.spec: sum(1 for r in recs if r["spec"] == c.spec) for c in cells}
    assert counts == {"sync-normal": 8, "sync-gso": 3, "peer-socat": 5}
    met, missed = convergence(recs, 3.0)
    assert sorted(met) == ["peer-socat", "sync-gso"]
    assert [(s, n) for s, _, n, _ in missed] == [("sync-normal", 8)]
    # a paced matrix's capacity rounds (a fixed --capacity-repeat) are not counted
    capacity = [{**r, "matrix": {**r["matrix"], "phase": "capacity"}} for r in recs]
    assert convergence(capacity, 3.0) == ([], [])
    assert convergence(recs + capacity, 3.0) == (met, missed)


def test_next_round_plans_on_the_figures_it_is_given() -> None:
    cells = [CellSpec("a", "external", "a"), CellSpec("b", "external", "b")]
    runs = {0: [12_000.0, 15_000.0, 13_000.0], 1: [14_000.0] * 3}
    mopts = MatrixOptions(until_ci=3.0, max_repeat=8)
    assert matrix.next_round(cells, runs, {0: 3, 1: 3}, mopts) == [0]
    recs = flat(real_docs("rr"))
    assert untilci.row_values(recs) == [
        r["transactions_per_s"] for r in recs
    ]  # what the runs are collected from


def test_a_load_bound_capacity_row_converges_on_its_cost() -> None:
    """A row whose Gbit/s is the load generator's (capacity_limited) adds its Gbit/s per
    core, the figure compare judges it on; a kernel row without a cost keeps its Gbit/s."""
    gbps = [19.8, 24.6, 20.0]
    cost = [22.6, 22.9, 22.7]
    fwd = [
        {"status": "ok", "gbps": g, "gbps_per_core": c, "capacity_limited": True}
        for g, c in zip(gbps, cost, strict=True)
    ]
    assert untilci.row_values(fwd) == cost
    assert untilci.by_round(list(enumerate(fwd))) == dict(enumerate(cost))
    assert untilci.converged(untilci.row_values(fwd), 3.0)
    assert not untilci.converged(gbps, 3.0)
    kernel = [{**r, "gbps_per_core": None} for r in fwd]
    assert untilci.row_values(kernel) == gbps
    # bound by the forwarder in most runs: its Gbit/s is the figure
    mostly = [fwd[0], {**fwd[1], "capacity_limited": False}, {**fwd[2], "capacity_limited": False}]
    assert untilci.row_values(mostly) == gbps


def test_offered_auto_measures_capacity_then_paces_the_forwarder_rows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[tuple[str, Any, Any, int]] = []
    capacity = {"kernel-veth": 20.0, "fast": 10.0, "noisy": 4.0, "steady": 5.0}

    def run_cell(cell: CellSpec, opts: CellOptions, extra: dict[str, Any]) -> dict[str, Any]:
        phase = extra["matrix"]["phase"]
        seen.append((cell.spec, phase, opts.workload.offered_bps, opts.iperf.bandwidth))
        gbps = opts.offered.bps / 1e9 if opts.offered else capacity[cell.spec]
        d = make_doc(cell.spec, gbps)
        d["cell"].update(spec=cell.spec, kind=cell.kind)
        d.update(extra)
        return d

    monkeypatch.setattr(matrix, "run_cell", run_cell)
    mopts = MatrixOptions(
        repeat=2,
        capacity_repeat=2,
        offered_auto=True,
        profile=False,
        seed=1,
        flamegraph_dir=Path("x"),
    )
    matrix.run_matrix(CELLS, CellOptions(), mopts, progress=False)
    first = [s for s in seen if s[1] == "capacity"]
    paced = [s for s in seen if s[1] == "cost"]
    assert len(first) == 8 and all(s[2] is None and s[3] == 0 for s in first)
    assert seen[: len(first)] == first  # every capacity round comes first
    # half the slowest forwarder row's capacity (noisy, 4 Gbit/s): the kernel row is no
    # forwarder and is measured for its capacity only
    assert sorted(s[0] for s in paced) == ["fast", "fast", "noisy", "noisy", "steady", "steady"]
    assert {(s[2], s[3]) for s in paced} == {(2e9, 2_000_000_000)}


def test_offered_auto_gives_each_group_of_similar_capacity_its_own_rate(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Rows more than GROUP_SPAN apart in capacity are paced at rates of their own; a
    paired matrix, whose rows are held against each other round by round, at one."""
    capacity = {"kernel-veth": 40.0, "fast": 20.0, "noisy": 1.0, "steady": 5.0}

    def run_cell(cell: CellSpec, opts: CellOptions, extra: dict[str, Any]) -> dict[str, Any]:
        gbps = opts.offered.bps / 1e9 if opts.offered else capacity[cell.spec]
        d = make_doc(cell.spec, gbps)
        d["cell"].update(spec=cell.spec, kind=cell.kind)
        d["metadata"]["offered"] = opts.offered.to_json() if opts.offered else None
        d.update(extra)
        return d

    monkeypatch.setattr(matrix, "run_cell", run_cell)

    def rates(**kw: Any) -> dict[str, set[float]]:
        mopts = MatrixOptions(
            repeat=1, capacity_repeat=1, offered_auto=True, profile=False, seed=1,
            flamegraph_dir=Path("x"), **kw,
        )  # fmt: skip
        recs = matrix.run_matrix(CELLS, CellOptions(), mopts, progress=False)
        out: dict[str, set[float]] = {}
        for r in recs:
            if r["matrix"]["phase"] == "cost":
                out.setdefault(r["spec"], set()).add(r["offered"]["bps"])
        common.print_offered(recs, True)
        return out

    # noisy (1) alone: steady is 5x as fast; steady (5) with nothing up to 15; fast (20)
    assert rates() == {"noisy": {5e8}, "steady": {2e9}, "fast": {1e10}}
    lines = capsys.readouterr().err.splitlines()
    assert "tunbench: offered load 0.5 Gbit/s for noisy (auto: 50% of its group's" in lines[0]
    assert len(lines) == 3
    assert rates(paired=True) == {"noisy": {5e8}, "steady": {5e8}, "fast": {5e8}}
    assert rates(offered_span=None) == {"noisy": {5e8}, "steady": {5e8}, "fast": {5e8}}


def test_a_run_whose_forwarder_lacked_cpu_is_left_out_of_a_forwarder_bound_row() -> None:
    """A forwarder-bound row's run where the forwarder had under 90 % of the row's median
    CPU was limited by something else: not counted for --until-ci, the table or pairing."""
    from tunbench.analysis import primary

    cpu = [98.0, 97.5, 73.0, 98.2, 56.0]
    gbps = [2.30, 2.36, 1.81, 2.33, 1.39]
    recs = [
        {"status": "ok", "gbps": g, "cost_cpu_pct": c, "capacity_limited": False}
        for g, c in zip(gbps, cpu, strict=True)
    ]
    assert primary.short_of_cpu(recs) == [False, False, True, False, True]
    assert untilci.row_values(recs) == [2.30, 2.36, 2.33]
    assert untilci.by_round(list(enumerate(recs))) == {0: 2.30, 1: 2.36, 3: 2.33}
    # a quota row steady at 95 % is not short of its own median
    quota = [{**r, "cost_cpu_pct": 95.0} for r in recs]
    assert not any(primary.short_of_cpu(quota))
    # kernel rows (no forwarder CPU) and fewer than 3 runs keep every run
    assert not any(primary.short_of_cpu([{**r, "cost_cpu_pct": None} for r in recs]))
    assert not any(primary.short_of_cpu(recs[1:3]))
    # a forwarder that paces itself (a few % of a core, one run at half the others) or a
    # --cpu-quota 50 row is not bound by its CPU: every run counts
    paced = [{**r, "cost_cpu_pct": c} for r, c in zip(recs, [4.1, 4.0, 2.0, 4.2, 3.9], strict=True)]
    assert not any(primary.short_of_cpu(paced))
    quota = [50.0, 49.9, 40.0, 50.1, 50.0]
    capped = [{**r, "cost_cpu_pct": c} for r, c in zip(recs, quota, strict=True)]
    assert not any(primary.short_of_cpu(capped))
