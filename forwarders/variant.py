"""The Variant base: what a forwarder module declares as ``VARIANT`` for the registry.

:mod:`tunbench.cell.variants` imports every module of this package and keeps those that declare
one; the name, summary, table columns and options it shows all come from here.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from forwarders.options import ArgumentParser, Option


@dataclass(frozen=True)
class Variant(ABC):
    """What a forwarder module declares as ``VARIANT``: the one description of a variant.

    The harness's registry (:mod:`tunbench.cell.variants`) finds every module of this package
    that declares one and reads everything it shows from it: the name, the summary, the
    table's Mode/Offload/Channel columns and the options a spec may give.
    """

    name: str
    description: str  # the module docstring: "`name`: one-line summary"
    gso: bool  # IFF_VNET_HDR + offload, ``--gso passthrough|split``
    mode: ClassVar[str]  # the table's Mode column: "sync" or "async"

    @property
    @abstractmethod
    def channel_kind(self) -> str:
        """What sits between reader and writer (the table's Channel column), "-" if none."""

    @abstractmethod
    def build_parser(self) -> ArgumentParser:
        """The variant's whole command line: harness arguments and its own options."""

    @abstractmethod
    def main(self, argv: Sequence[str] | None = None) -> int:
        """Run the forwarder until SIGINT/SIGTERM; the exit status."""

    def unavailable(self) -> str | None:
        """Why this variant cannot run on this machine (one line), or None when it can.

        The harness leaves such a variant out of the default matrix; its parser refuses it.
        """
        return None

    @property
    def module(self) -> str:
        """The module that declares this variant, run as ``python -m <module>``."""
        return "forwarders." + self.name.replace("-", "_")

    @property
    def summary(self) -> str:
        """The description's first line without its "`name`: " prefix."""
        lines = self.description.strip().splitlines()
        return lines[0].removeprefix(f"`{self.name}`: ").removesuffix(".") if lines else ""

    def options(self) -> list[Option]:
        """The options a spec may give this variant, in the order ``--help`` lists them."""
        return self.build_parser().options
