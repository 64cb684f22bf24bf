"""``tunbench sweep``: one parameter over several values, a cell per spec and value.

``--over NAME=V1,V2,...`` names either a forwarder option (``thread=1,2,4``: each cell is
the spec with ``--thread V`` appended; every spec must be a variant that has the option,
as the registry lists it) or an option of ``tunbench run`` (``parallel=1,2,4,8``,
``mtu=1500,9000``: each cell runs the spec with ``--NAME V``; any option that takes a
value works, so workload options added later are swept the same way). The cells are run
by :func:`tunbench.plan.matrix.run_matrix` (rounds, shuffles, ``--repeat``, ``--until-ci``,
result files), each result file carrying ``sweep`` {``param``, ``value``, ``spec``}.
:mod:`tunbench.report.sweeptable` makes the rows, table and CSV from those records.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from tunbench.cell.variants import VARIANTS, CellSpec, parse_spec
from tunbench.errors import UsageError
from tunbench.report.sweeptable import Over

NAME = re.compile(r"^[a-z][a-z0-9-]*$")


def parse_over(text: str) -> Over:
    """``"thread=1,2,4"`` -> ``Over("thread", ("1", "2", "4"))``; UsageError if malformed."""
    name, sep, rest = text.partition("=")
    name = name.strip().removeprefix("--")
    if not sep or not NAME.match(name):
        raise UsageError(f"--over wants NAME=V1,V2,... (e.g. thread=1,2,4), got {text!r}")
    values = tuple(v.strip() for v in rest.split(","))
    if not rest.strip() or any(not v for v in values):
        raise UsageError(f"--over {name}: empty value in {rest!r}")
    if len(set(values)) != len(values):
        raise UsageError(f"--over {name}: a value is given twice in {rest!r}")
    return Over(name, values)


@dataclass(frozen=True)
class Point:
    """One cell of a sweep: a spec as given, the value, the cell it runs."""

    spec: str
    value: str
    cell: CellSpec


def _variant_flags(spec: str) -> dict[str, bool]:
    """A Python variant's public options (flag -> whether it takes a value), from the
    registry by the spec's first word; {} for anything else."""
    words = spec.split()
    info = VARIANTS.get(words[0]) if words else None
    return {o.flag: bool(o.metavar) for o in info.options()} if info else {}


def kind_of(specs: Sequence[str], over: Over, workload: Collection[str]) -> str:
    """``"forwarder"`` when every spec's variant has the option, ``"workload"`` when
    ``tunbench run`` has it (``workload``: its flags that take a value); else UsageError."""
    flag = over.flag
    has = [flag in _variant_flags(s) for s in specs]
    if all(has):
        if not all(_variant_flags(s)[flag] for s in specs):
            raise UsageError(f"--over {over.name}: {flag} is a switch, it has no values")
        return "forwarder"
    if any(has):
        spec = specs[has.index(False)]
        known = ", ".join(_variant_flags(spec)) or "none"
        raise UsageError(
            f"--over {over.name}: {spec!r} has no option {flag} (its options: {known})"
        )
    if flag in workload:
        return "workload"
    spec = specs[0]
    known = ", ".join(_variant_flags(spec))
    name = spec.split()[0] if spec.split() else spec
    where = f"{name} (its options: {known})" if known else name
    raise UsageError(f"--over {over.name}: {flag} is an option of neither tunbench run nor {where}")


def plan_cells(
    specs: Sequence[str], over: Over, workload: Collection[str]
) -> tuple[str, list[Point]]:
    """The sweep's kind and its cells, spec by spec, each spec's values in the order given.

    For a forwarder option only the spec with the value appended must be valid
    (``"sync-gso --multiqueue" --over thread=2,4``)."""
    if not specs:
        raise UsageError("sweep needs at least one spec")
    if len(set(specs)) != len(specs):
        raise UsageError("sweep: a spec is given twice")
    if over.name == "workload":
        raise UsageError(
            "--over workload: a sweep charts one figure, so it runs one workload; "
            "sweep each workload on its own (--workload KIND)"
        )
    kind = kind_of(specs, over, workload)
    points = []
    for spec in specs:
        if kind == "workload":
            cell = parse_spec(spec)
            points += [Point(spec, v, cell) for v in over.values]
            continue
        if any(a == over.flag or a.startswith(over.flag + "=") for a in spec.split()[1:]):
            raise UsageError(f"--over {over.name}: {spec!r} already sets {over.flag}")
        for v in over.values:
            try:
                points.append(Point(spec, v, parse_spec(f"{spec} {over.flag} {shlex.quote(v)}")))
            except UsageError as exc:
                raise UsageError(f"--over {over.name}={v}: {exc}") from None
    return kind, points


def axis_label(over: Over, help_text: str | None) -> str:
    """The x axis title: the flag and what its help says, without a trailing "(default
    ...)" or "(10)": ``--thread: threads per direction``."""
    text = re.sub(r"\s*\((default )?[^()]*\)$", "", help_text or "").strip()
    return f"{over.flag}: {text}" if text else over.flag
