"""--placement: which CPUs each row gets by default, what multi-thread rows get, how
--cpus and the row key fit with it."""

from __future__ import annotations

import pytest

from tunbench.analysis import results
from tunbench.cell.options import CellOptions, placed
from tunbench.cell.placement import Placement, resolve
from tunbench.cell.variants import parse_spec
from tunbench.errors import UsageError

from resultdocs import make_doc

TWO = [0, 1]


def test_default_on_two_cpus_splits_single_thread_and_kernel_rows() -> None:
    for spec in ("sync-normal", "async-gso", "kernel-router", "kernel-router --no-offload"):
        p = resolve(parse_spec(spec), None, None, TWO)
        assert (p.mode, p.fwd_cpus, p.load_cpus) == ("split", (0,), (1,)), spec
        assert p.why == "default on 2 CPUs" and p.label == "split 0|1"


def test_multi_thread_rows_stay_unpinned_and_say_so() -> None:
    p = resolve(parse_spec("sync-gso --thread 2 --multiqueue"), None, None, TWO)
    assert (p.mode, p.fwd_cpus, p.load_cpus) == ("none", (), ())
    assert p.label == "none (multi-thread)" and "2 per direction" in p.why
    assert resolve(parse_spec("sync-gso --thread 2"), "split", None, TWO).mode == "none"


def test_explicit_modes_and_cpus() -> None:
    cell = parse_spec("sync-normal")
    shared = resolve(cell, "shared", None, [2, 3])
    assert (shared.fwd_cpus, shared.load_cpus, shared.label) == ((3,), (3,), "shared 3")
    assert resolve(cell, "split", None, [4, 1, 2]).load_cpus == (
        2,
        4,
    )  # the first is the forwarder's
    assert resolve(cell, "none", None, TWO).label == "none"
    assert resolve(cell, None, None, [0]).mode == "none"  # one CPU: nothing to split
    with pytest.raises(UsageError, match="needs 2 CPUs"):
        resolve(cell, "split", None, [0])
    given = resolve(cell, None, ((1,), (0,)), TWO)
    assert (given.mode, given.label, given.fwd_cpus) == ("cpus", "cpus 1:0", (1,))
    with pytest.raises(UsageError, match="give one"):
        resolve(cell, "split", ((1,), (0,)), TWO)


def test_placement_keys_rows_only_by_its_cpus() -> None:
    """split on 2 CPUs is the row --cpus 0:1 always was; why and label are not keys."""

    def keyed(p: Placement) -> str:
        d = make_doc()
        opts = placed(CellOptions(), p)
        d["metadata"]["cpus"] = {"forwarder": list(opts.fwd_cpus), "load": list(opts.load_cpus)}
        d["metadata"]["placement"] = p.to_json()
        return results.workload_key(d)

    split = resolve(parse_spec("sync-normal"), None, None, TWO)
    cpus = resolve(parse_spec("sync-normal"), None, ((0,), (1,)), TWO)
    assert keyed(split) == keyed(cpus)
    assert keyed(split) != keyed(resolve(parse_spec("sync-normal"), "none", None, TWO))


def test_steer_receive_targets_the_load_cpus_of_a_pinned_forwarder_only() -> None:
    from tunbench.cell.placement import receive_cpus
    from tunbench.cell.topology import cpu_mask

    where = resolve(parse_spec("sync-normal"), None, None, TWO)
    split = placed(CellOptions(steer_receive=True), where)
    assert receive_cpus(parse_spec("sync-normal"), split) == [1]
    assert receive_cpus(parse_spec("kernel-router"), split) == []  # its forwarding is that work
    assert receive_cpus(parse_spec("sync-normal"), CellOptions(steer_receive=True)) == []
    off = placed(CellOptions(), resolve(parse_spec("sync-normal"), None, None, TWO))
    assert receive_cpus(parse_spec("sync-normal"), off) == []
    assert cpu_mask([1]) == "2" and cpu_mask([1, 2, 3]) == "e"
    assert cpu_mask([0, 33]) == "2,00000001" and cpu_mask([32]) == "1,00000000"


def test_steered_runs_are_rows_of_their_own() -> None:
    plain, steered = make_doc("sync-normal", 1.5), make_doc("sync-normal", 2.5)
    steered["metadata"]["steer_receive"] = True
    plain["metadata"]["steer_receive"] = False
    assert results.workload_key(plain) != results.workload_key(steered)
    older = make_doc("sync-normal", 1.5)  # a file from before the option: the plain row
    assert results.workload_key(older) == results.workload_key(plain)
