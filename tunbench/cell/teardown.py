"""Teardown that finishes whatever signals arrive, and the rule that stops a child there.

:class:`Teardown` is the ExitStack a cell (:mod:`tunbench.cell.session`), the two-host
agent (:mod:`tunbench.cell.agent`) and the two-host controller build their removals on;
:func:`stop_at_teardown` is how each of them has a child it started stopped (its whole
tree) and listed in the run state until then, for ``tunbench clean``.
"""

from __future__ import annotations

import contextlib
import os
from types import TracebackType

from tunbench.system.procs import Child, stop
from tunbench.system.runstate import current as current_state
from tunbench.system.signals import shielded


class Teardown(contextlib.ExitStack):
    """An ExitStack that runs to its end whatever signals arrive meanwhile (they are raised
    once it is done: :func:`tunbench.system.signals.shielded`).

    Only the process that built it tears down: a forked copy (pyroute2 forks helpers)
    that somehow unwinds must not remove the parent's namespaces.
    """

    def __init__(self) -> None:
        super().__init__()
        self.owner = os.getpid()

    def __exit__(
        self,
        et: type[BaseException] | None,
        ev: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        if os.getpid() != self.owner:
            os._exit(70)
        with shielded():
            return bool(super().__exit__(et, ev, tb))


def stop_at_teardown(stack: contextlib.ExitStack, child: Child) -> None:
    """Have ``stack``'s teardown stop ``child`` (its whole tree); until then the run
    state lists it, for ``clean`` (the cell's and the two-host agent's rule)."""
    state = current_state()

    def _stop() -> None:
        stop(child)
        if state:
            for pid in [child.pid, *child.tree]:
                state.drop_process(pid)

    stack.callback(_stop)
    if state:
        state.add_process(child.pid, child.name)
