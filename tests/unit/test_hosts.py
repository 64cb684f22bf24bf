"""Hosts as a dimension, without root: the host block (derived for version-1 files,
``--redact``), fleet.json's outcomes from recorded ansible-runner events, ``report --by
host`` and ``compare`` across hosts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tunbench.analysis import results
from tunbench.cell import hostinfo
from tunbench.plan import compare, fleet
from tunbench.report import tables

from resultdocs import doc

# Events of a real fleet run (ansible-runner 2.4, ansible-core 2.19) over four fake hosts:
# fh-ok measured; fh-failed's tunbench wrote two lines to stderr and exited 2; fh-down's
# sshd was stopped; fh-busy's run lock was held. Trimmed to what Events reads.
EVENTS = Path(__file__).parents[1] / "data" / "fleet" / "events.json"


def host_doc(
    host: str, variant: str, gbps: float, matrix: str, kernel: str = "6.18", **block: Any
) -> dict[str, Any]:
    d = doc(variant, gbps, matrix=matrix)
    d["metadata"]["kernel"] = kernel
    d["host"] = {
        "inventory_name": host,
        "label": None,
        "hostname": f"{host}.example",
        "kernel": kernel,
        "redacted": False,
        "derived": False,
        **block,
    }
    return d


def two_hosts() -> list[dict[str, Any]]:
    """fh-a forwards at half its kernel's speed, fh-b (a kernel twice as fast) at a quarter;
    each host ran its own matrix (its own id), as a fleet run does."""
    return [
        host_doc("fh-a", "kernel-router", 20.0, "ma"),
        host_doc("fh-a", "sync-gso", 10.0, "ma"),
        host_doc("fh-b", "kernel-router", 40.0, "mb", kernel="6.19"),
        host_doc("fh-b", "sync-gso", 10.0, "mb", kernel="6.19"),
    ]


def test_version_1_file_gets_a_host_block_from_its_metadata(tmp_path: Path) -> None:
    old = doc("sync-gso", 5.0)
    old["version"] = 1
    old["metadata"].update(
        {"hostname": "bench1", "kernel": "6.1.0", "cpu_model": "Xeon", "cpu_count": 8}
    )
    old["metadata"]["git_sha"] = "abc"
    old.pop("host", None)
    (tmp_path / "old.json").write_text(json.dumps(old))
    (loaded,) = results.load_dir(tmp_path)
    host = loaded["host"]
    assert host["derived"] is True
    assert (host["hostname"], host["kernel"], host["cpu_model"], host["cpu_count"]) == (
        "bench1",
        "6.1.0",
        "Xeon",
        8,
    )
    assert host["tools"]["git_sha"] == "abc"
    assert host["nics"] is None and host["inventory_name"] is None
    assert results.flat(loaded)["host"] == "bench1"
    # a version-2 file keeps the block it has
    new = host_doc("fh-a", "sync-gso", 5.0, "m")
    (tmp_path / "new.json").write_text(json.dumps(new))
    names = {results.host_name(d) for d in results.load_dir(tmp_path)}
    assert names == {"bench1", "fh-a"}


def test_redact_leaves_hostnames_out_and_keeps_the_label(monkeypatch: pytest.MonkeyPatch) -> None:
    meta = {"kernel": "6.18", "cpu_model": "cpu", "cpu_count": 2, "python": "3.11"}
    machine = {"hostname": "secret-box.internal", "memory_bytes": 1 << 30, "nics": []}
    monkeypatch.setattr(hostinfo, "_machine", lambda: dict(machine))
    monkeypatch.setenv(hostinfo.ENV_INVENTORY, "fh-a")
    monkeypatch.setenv(hostinfo.ENV_LABEL, "small-vm")
    monkeypatch.delenv(hostinfo.ENV_REDACT, raising=False)
    plain = hostinfo.collect(meta)
    assert (plain["hostname"], plain["inventory_name"]) == ("secret-box.internal", "fh-a")
    assert plain["redacted"] is False
    monkeypatch.setenv(hostinfo.ENV_REDACT, "1")
    red = hostinfo.collect(meta)
    assert red["hostname"] is None and red["inventory_name"] is None
    assert red["label"] == "small-vm" and red["redacted"] is True
    assert "secret-box" not in json.dumps(red) and "fh-a" not in json.dumps(red)
    assert red["memory_bytes"] == 1 << 30  # the machine's facts stay
    assert results.host_name({"host": red}) == "small-vm"
    monkeypatch.delenv(hostinfo.ENV_LABEL)
    assert results.host_name({"host": hostinfo.collect(meta)}) == results.UNKNOWN_HOST


def test_report_by_host_keeps_hosts_apart_with_their_own_kernel() -> None:
    recs = [results.flat(d) for d in two_hosts()]
    df = tables.grouped(recs, by_host=True)
    rows = {(r["Host"], r["Variant"]): r for _, r in df.iterrows()}
    assert sorted(rows) == [
        ("fh-a", "kernel-router"),
        ("fh-a", "sync-gso"),
        ("fh-b", "kernel-router"),
        ("fh-b", "sync-gso"),
    ]
    assert rows[("fh-a", "sync-gso")]["% of kernel"] == pytest.approx(50.0)
    assert rows[("fh-b", "sync-gso")]["% of kernel"] == pytest.approx(25.0)
    text = tables.markdown(recs, by_host=True)
    head = [c.strip() for c in text.splitlines()[0].split("|")]
    assert head[1:4] == ["#", "Host", "Variant"]
    body = [line for line in text.splitlines()[2:] if line.startswith("|")]
    assert [line.split("|")[2].strip() for line in body] == ["fh-a", "fh-a", "fh-b", "fh-b"]
    assert "rows merge results of different hosts" not in text
    # not by host, the rows merge the hosts, and the report says so
    merged = tables.grouped(recs)
    assert len(merged) == 2 and int(merged.set_index("Variant").loc["sync-gso", "n"]) == 2
    assert "rows merge results of different hosts: fh-a, fh-b" in tables.markdown(recs)


def test_report_by_host_warns_of_combined_matrices_within_a_host_only() -> None:
    # each host ran one matrix: rows of different hosts are never merged, no warning
    recs = [results.flat(d) for d in two_hosts()]
    assert "rows combine" not in tables.markdown(recs, by_host=True)
    # a second matrix run of fh-b's joins its rows: that is combining runs
    again = host_doc("fh-b", "sync-gso", 11.0, "mb2", kernel="6.19")
    text = tables.markdown([*recs, results.flat(again)], by_host=True)
    assert "fh-b's rows combine 2 matrix runs (mb, mb2)" in text
    assert "fh-a's rows combine" not in text


def test_compare_hosts_shows_the_kernel_ceilings_ratio(tmp_path: Path) -> None:
    docs = two_hosts()
    fleet_dir = tmp_path / "fleet-1"
    for i, d in enumerate(docs):
        (fleet_dir / d["host"]["inventory_name"]).mkdir(parents=True, exist_ok=True)
        d["run_id"] = f"r{i}"
        results.save(d, fleet_dir / d["host"]["inventory_name"])
    (fleet_dir / results.FLEET_FILE).write_text("{}")
    df, notes = compare.compare(fleet_dir, None, hosts=("fh-a", "fh-b"))
    row = df.set_index("variant").loc["sync-gso"]
    assert row["kernel_ratio"] == pytest.approx(2.0)  # fh-b's kernel row over fh-a's
    assert (row["old_kernel_pct"], row["new_kernel_pct"]) == (pytest.approx(50.0), 25.0)
    assert df.attrs["across_hosts"] is True
    table = compare.markdown(df, notes)
    assert "2.00x" in table
    assert any("differ in kernel: 6.18 -> 6.19" in n for n in notes)
    # one host against itself: no ceiling column
    same, _ = compare.compare(fleet_dir, None, hosts=("fh-a", "fh-a"))
    assert same.attrs["across_hosts"] is False
    assert "2.00x" not in compare.markdown(same)


def test_fleet_outcomes_from_recorded_runner_events() -> None:
    said: list[str] = []
    events = fleet.Events(said.append)
    recorded = json.loads(EVENTS.read_text())
    assert all(events(e) is True for e in recorded)  # the runner keeps every event
    events.finish()
    got = {h: (o.outcome, o.error, o.task) for h, o in events.hosts.items()}
    assert got == {
        "fh-ok": ("ok", None, None),
        # stderr's last line, not the module's "non-zero return code"
        "fh-failed": (
            "failed",
            "tunbench: error: forwarder sync-normal exited with status 3",
            "tunbench matrix (async, SIGINT at the deadline)",
        ),
        "fh-down": (
            "unreachable",
            "Connection closed by UNKNOWN port 65535",
            "look for tunbench's venv",
        ),
        # the "busy:" mark is the outcome, the rest of the message its error
        "fh-busy": ("busy", "another tunbench run holds /run/tb-state/lock", "report a busy host"),
    }
    assert (
        "fh-ok: matrix done" in said
        and "fh-busy: busy: another tunbench run holds /run/tb-state/lock" in said
    )
    # the cleanup tasks that ran after a failure (and fail on the unreachable host) do not
    # replace the first failure; every host answered for a while
    assert all(o.wall_s is not None and o.wall_s >= 0 for o in events.hosts.values())
    assert events.hosts["fh-ok"].wall_s > events.hosts["fh-down"].wall_s


def test_fleet_deadline_is_named_in_the_error() -> None:
    events = fleet.Events(lambda _line: None)
    res = {"rc": 124, "stderr": "tunbench: interrupted", "msg": "non-zero return code"}
    events({"event": "runner_on_failed", "event_data": {"host": "h", "task": "t", "res": res}})
    (out,) = events.hosts.values()
    assert out.outcome == "failed" and out.error is not None
    assert out.error.startswith("deadline reached") and "tunbench: interrupted" in out.error
