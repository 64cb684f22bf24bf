"""``matrix --resolve``'s plan and the paired A/B of one matrix session (``--paired``,
``compare --a/--b``), with run_cell replaced: no root needed."""

from __future__ import annotations

import itertools
import json
import math
import statistics
from pathlib import Path
from typing import Any

import pytest
from scipy import stats as sps
from test_matrix_plan import fake_run

from tunbench.analysis import results
from tunbench.cell.options import CellOptions
from tunbench.cell.variants import CellSpec
from tunbench.cli import main as cli
from tunbench.plan import matrix, paired
from tunbench.plan.matrix import MatrixOptions
from tunbench.plan.resolve import RowPlan, plan

from resultdocs import doc


def _needed(s: float, pct: float, least: int) -> int:
    """The rounds by brute force: the first n whose t-interval is within ±pct."""
    n = least
    while float(sps.t.ppf(0.975, n - 1)) * s / math.sqrt(n) > math.log1p(pct / 100):
        n += 1
    return n


def test_a_row_without_a_pair_plans_on_its_own_spread() -> None:
    values = {0: 10.0, 1: 11.0, 2: 9.0}
    s = statistics.stdev(math.log(v) for v in values.values())  # 0.1003
    (row,) = plan(["x"], [values], pct=5, repeat=3, max_repeat=100)
    assert row.spread == pytest.approx(s)
    assert row.needed == _needed(s, 5, 3) == 19  # t(0.975, 18)·0.1003/√19 = 0.0484 <= ln 1.05
    assert row.planned == 19 and not row.capped
    (capped,) = plan(["x"], [values], pct=5, repeat=3, max_repeat=8)
    assert capped.planned == 8 and capped.capped and capped.needed == 19
    assert "capped at 8 by --max-repeat" in capped.text
    (steady,) = plan(["x"], [{0: 10.0, 1: 10.0, 2: 10.0}], pct=5, repeat=3, max_repeat=8)
    assert steady.planned == 3 and steady.needed == 3 and not steady.capped
    (failed,) = plan(["x"], [{0: 10.0}], pct=5, repeat=3, max_repeat=8)
    assert failed.spread is None and failed.planned == 3 and not failed.capped


def test_a_paired_row_plans_on_its_log_ratios_and_its_reference_keeps_up() -> None:
    a = {0: 10.0, 1: 14.0, 2: 8.0}  # drifts by ±30 % over the session
    b = {r: v * f for (r, v), f in zip(a.items(), (1.049, 1.051, 1.050), strict=True)}
    c = {0: 10.0, 1: 8.0, 2: 12.5}  # unrelated to a's drift: its ratio to a is noisy
    rows = plan(["a", "b", "c"], [a, b, c], pct=3, repeat=3, max_repeat=10, reference=0)
    ra, rb, rc = rows
    d = [math.log(b[r] / a[r]) for r in a]
    assert rb.against == "a" and rb.spread == pytest.approx(statistics.stdev(d))
    assert rb.planned == 3 and not rb.capped  # its own spread (30 %) would need dozens
    assert rc.against == "a" and rc.capped and rc.planned == 10
    assert ra.against is None and ra.planned == 10  # c's pairs need a's runs of its rounds
    unpaired = plan(["a", "b"], [a, b], pct=3, repeat=3, max_repeat=10)
    assert unpaired[1].against is None and unpaired[1].capped


CELLS = [CellSpec(s, "external", s) for s in ("a", "b", "c")]


def _session(monkeypatch: pytest.MonkeyPatch, **kw: Any) -> tuple[list[Any], list[RowPlan]]:
    drift = [10.0, 14.0, 8.0, 12.0, 9.0, 11.0, 13.0, 10.0]
    values = {
        "a": iter(drift),
        "b": iter([v * 1.05 for v in drift]),  # exactly +5 % in every round
        "c": itertools.cycle([10.0, 8.0, 12.5, 9.0]),
    }
    monkeypatch.setattr(matrix, "run_cell", fake_run(values))
    plans: list[RowPlan] = []
    mopts = MatrixOptions(profile=False, seed=3, flamegraph_dir=Path("unused"), **kw)
    recs = matrix.run_matrix(CELLS, CellOptions(), mopts, progress=False, on_plan=plans.extend)
    return recs, plans


def test_resolve_runs_the_planned_rounds_and_records_the_cap(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    recs, plans = _session(monkeypatch, repeat=3, resolve=3.0, max_repeat=6, paired=True)
    counts = {s: sum(r["spec"] == s for r in recs) for s in "abc"}
    assert counts == {"a": 6, "b": 3, "c": 6}
    assert [p.planned for p in plans] == [6, 3, 6]
    # a's own spread (its drift) and c's ratio to a need more than 6; b's ratio does not
    assert [p.capped for p in plans] == [True, False, True]
    later = [r for r in recs if r["matrix"]["repeat"] >= 3]
    assert {r["spec"] for r in later} == {"a", "c"}
    for r in later:
        m = r["matrix"]
        assert m["resolve"] == 3.0 and m["max_repeat"] == 6
        assert m["plan"]["capped"] is True and m["plan"]["planned"] == 6
    assert all(r["matrix"]["resolve"] == 3.0 for r in recs)
    # the first stage's runs carry their row's plan as well
    first = {r["spec"]: r["matrix"]["plan"] for r in recs if r["matrix"]["repeat"] < 3}
    assert [first[s]["planned"] for s in "abc"] == [6, 3, 6]
    # the rounds of a and c after the first stage are paired rounds too
    assert sorted(r["matrix"]["repeat"] for r in recs if r["spec"] == "c") == list(range(6))


def test_pairing_matches_runs_by_round(monkeypatch: pytest.MonkeyPatch) -> None:
    recs, _ = _session(monkeypatch, repeat=4)
    (row,) = paired.pair(recs, "a", "b")
    v = row.verdict
    # matched by round, B/A is exactly 1.05 every time, whatever order the rounds ran in
    assert v.n == 4 and v.change_pct == pytest.approx(5.0)
    assert v.low_pct == pytest.approx(5.0) and v.high_pct == pytest.approx(5.0)
    assert v.verdict == "faster" and row.metric.key == "gbps" and len(row.sessions) == 1
    assert paired.pair(recs, "b", "a")[0].verdict.verdict == "slower"
    (ac,) = paired.pair(recs, "a", "c")
    assert ac.verdict.verdict == "inconclusive" and ac.verdict.rounds_needed
    # the same runs as separate sets: Welch cannot see the 5 % under a's drift
    from tunbench.analysis.stats import compare_runs

    assert compare_runs(row.a_values, row.b_values).verdict == "no significant change"


def test_rounds_of_another_session_or_run_are_not_paired() -> None:
    recs = [results.flat(doc("a", 10.0, repeat=r, matrix="m1")) for r in range(3)]
    recs += [results.flat(doc("b", 11.0, repeat=r, matrix="m2")) for r in range(3)]
    recs += [results.flat(doc("b", 11.0, matrix=None))]
    for r in recs:
        r["spec"] = r["variant"]
    (row,) = paired.pair(recs, "a", "b")
    assert row.verdict.n == 0 and row.verdict.verdict == "too few rounds"


def test_a_load_bound_capacity_row_is_paired_on_its_cost() -> None:
    recs = []
    for r in range(3):
        for spec, gpc in (("a", 2.0), ("b", 1.8)):
            rec = results.flat(doc(spec, 10.0, repeat=r))
            rec.update(spec=spec, capacity_limited=True, gbps_per_core=gpc * (1 + r / 10))
            recs.append(rec)
    (row,) = paired.pair(recs, "a", "b")
    assert row.metric.key == "gbps_per_core" and row.why.startswith("load-bound")
    assert row.verdict.change_pct == pytest.approx(-10.0) and row.verdict.verdict == "slower"


def test_compare_a_b_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for r, (x, y) in enumerate(((10.0, 10.5), (14.0, 14.6), (8.0, 8.45), (12.0, 12.55))):
        results.write(doc("sync-normal", x, repeat=r), tmp_path, f"a{r}")
        results.write(doc("sync-gso", y, repeat=r), tmp_path, f"b{r}")
    assert cli.main(["compare", "--a", "sync-normal", "--b", "sync-gso", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("| sync-normal"))
    # ratios 1.05, 1.0429, 1.0563, 1.0458: mean log 0.04758, exp - 1 = +4.9 %
    assert "faster" in line and "+4.9%" in line and "| 4 " in line
    assert (
        cli.main(
            ["compare", "--a", "sync-normal", "--b", "sync-gso", "--format", "json", str(tmp_path)]
        )
        == 0
    )
    (row,) = json.loads(capsys.readouterr().out)
    assert row["verdict"] == "faster" and row["rounds"] == 4 and row["sessions"] == ["m1"]
    assert row["ci_pct"][0] > 0 and row["detectable_pct"] > 0
    assert cli.main(["compare", "--a", "sync-normal", "--b", "nope", str(tmp_path)]) == 2
    assert "no runs of 'nope'" in capsys.readouterr().err
    assert cli.main(["compare", "--a", "sync-normal", str(tmp_path)]) == 2


def test_the_plan_is_printed_and_the_cap_warned_about(capsys: pytest.CaptureFixture[str]) -> None:
    from tunbench.cli.common import print_plan

    a = {0: 10.0, 1: 14.0, 2: 8.0}
    b = {r: v * 1.05 for r, v in a.items()}
    print_plan(plan(["a", "b"], [a, b], pct=3, repeat=3, max_repeat=5, reference=0))
    err = capsys.readouterr().err
    assert "--resolve: b: log-ratio sd 0.0% against a needs 3 rounds for ±3%; 3 rounds" in err
    # sd of ln 10, ln 14, ln 8 = 0.2818; (1.96 · 0.2818 / ln 1.03)² = 349, with t: 352
    assert "--resolve: a: sd 28.2% needs 352 rounds" in err and "capped at 5 by --max-repeat" in err
    assert "warning: --max-repeat stops 1 row(s) short of ±3%: a" in err


def test_the_report_page_shows_the_paired_verdicts_first(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from tunbench.report.reportpage import write_html

    recs, _ = _session(monkeypatch, repeat=4)
    rows = paired.pair(recs, "a", "b") + paired.pair(recs, "a", "c")
    page = write_html(
        recs,
        tmp_path / "report.html",
        verdicts=paired.frame(rows),
        verdicts_note=paired.legend(rows),
    ).read_text()
    section = page[page.index("<h2>Paired verdicts</h2>") : page.index("<h2>Table</h2>")]
    assert section.count("<tr>") == 3  # the header and one row per B
    assert "+5.0%" in section and ">faster<" in section and "inconclusive" in section
    assert "per-round log ratios" in section
    assert "Paired verdicts" not in write_html(recs, tmp_path / "plain.html").read_text()


def test_a_plan_is_recorded_when_the_first_stage_is_all_the_rounds(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """--max-repeat == --repeat: no round after the first stage, yet every run, in its
    record and in its file, says what its row's plan was (a and c capped at 3)."""
    written = tmp_path / "r.json"
    written.write_text(json.dumps({"matrix": {"repeat": 0}, "status": "ok"}))
    recs, plans = _session(monkeypatch, repeat=3, resolve=1.0, max_repeat=3, paired=True)
    assert len(recs) == 9 and [p.planned for p in plans] == [3, 3, 3]
    assert all(r["matrix"]["plan"]["planned"] == 3 for r in recs)
    assert {r["spec"] for r in recs if r["matrix"]["plan"]["capped"]} == {"a", "c"}
    recs[0]["result_file"] = str(written)
    matrix._Matrix._record_plans(recs[:1], [recs[0]["matrix"]["cell"]], {0: {"planned": 3}})
    assert json.loads(written.read_text())["matrix"] == {"repeat": 0, "plan": {"planned": 3}}
