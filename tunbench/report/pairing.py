"""``% of kernel``'s pairing: which kernel row a row is held against, and which kernel run
each of its runs is divided by.

A run is only ever divided by the kernel run of the same round of the same matrix, for
the same workload, on the same host: drift between rounds cancels, and no run is held
against a kernel run of another matrix, day or machine. :mod:`tunbench.report.tables`
re-exports these names; :func:`kernel_reference` is the one hook that says which kernel
row a kind of forwarder is measured against.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tunbench.analysis import primary

KERNEL_REF = "kernel-veth"
ROUTER_REF = "kernel-router"
ROUTER_NO_OFFLOAD_REF = "kernel-router --no-offload"
KERNEL_ROWS = (KERNEL_REF, ROUTER_REF, ROUTER_NO_OFFLOAD_REF)
LINK_REF = "link"  # a two-host matrix's ceiling: iperf3 over the underlay, no VPN


def kernel_reference(mode: str, offload: str) -> tuple[str, ...]:
    """The kernel rows a row's ``% of kernel`` may divide by, the first one measured wins.

    A forwarder without offload moves one MTU-sized packet per syscall: it is held against
    the router whose veths have TSO/GSO/GRO off. Offload forwarders, unknown external
    ones and the kernel rows themselves are held against the router with offloads on.
    ``kernel-veth`` stands in where no router row was measured (older result sets), and
    ``link`` in a two-host matrix, which has no kernel row but the underlay's own.
    """
    if offload == "none" and mode != "kernel":
        return (ROUTER_NO_OFFLOAD_REF, ROUTER_REF, KERNEL_REF, LINK_REF)
    return (ROUTER_REF, KERNEL_REF, LINK_REF)


def row_key(rec: Mapping[str, Any]) -> tuple[str, str]:
    """What puts a record in a row: its spec (or variant) and its workload key (and, in a
    table by host, its host: :func:`host_of`)."""
    return str(rec.get("spec") or rec["variant"]), str(rec.get("workload_key") or "")


def host_of(rec: Mapping[str, Any]) -> str:
    """The record's host name (:func:`tunbench.analysis.results.host_name`), "" if none."""
    return str(rec.get("host") or "")


def _round_of(rec: Mapping[str, Any]) -> tuple[str, int] | None:
    m = rec.get("matrix") or {}
    if not isinstance(m, dict) or m.get("id") is None or m.get("repeat") is None:
        return None
    return str(m["id"]), int(m["repeat"])


def paired_ratios(
    recs: Sequence[dict[str, Any]], reference: Any = None
) -> tuple[list[float | None], list[str | None]]:
    """Per record: its primary figure (:func:`tunbench.analysis.primary.value`: Gbps, TPS, ...)
    over that of its kernel reference's run in the same round of the same matrix (same
    workload, same host), and which reference that was.

    A row (host, spec and workload) uses the first of ``reference``'s candidates
    (:func:`kernel_reference` unless given) that shares a round with it; a run without
    such a partner, or outside any matrix, gets None.
    """
    pick = reference or kernel_reference
    kernel: dict[tuple[str, str, str, str, int], float] = {}
    for r in recs:
        where = _round_of(r)
        figure = primary.value(r)
        if where and figure:
            kernel[(host_of(r), *row_key(r), *where)] = figure
    rows: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for r in recs:
        rows.setdefault((host_of(r), *row_key(r)), []).append(r)
    chosen: dict[tuple[str, str, str], str | None] = {}
    for (host, spec, wk), members in rows.items():
        cands = pick(str(members[0].get("mode") or ""), str(members[0].get("offload") or ""))
        rounds = [w for w in map(_round_of, members) if w]
        chosen[(host, spec, wk)] = next(
            (c for c in cands if any((host, c, wk, *w) in kernel for w in rounds)), None
        )
    ratios: list[float | None] = []
    refs: list[str | None] = []
    for r in recs:
        host, (spec, wk) = host_of(r), row_key(r)
        ref = chosen[(host, spec, wk)]
        where = _round_of(r)
        base = kernel.get((host, ref, wk, *where)) if ref and where else None
        figure = primary.value(r)
        ratios.append(figure / base if base and figure is not None else None)
        refs.append(ref if base else None)
    return ratios, refs
