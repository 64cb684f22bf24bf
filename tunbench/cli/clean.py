"""``tunbench clean``: remove what an interrupted run left (tb- namespaces, recorded PIDs)."""

from __future__ import annotations

import argparse
import os
from typing import Any

from tunbench.errors import PrerequisiteError


def add_parser(sub: Any) -> None:
    sub.add_parser("clean", help="remove leftovers of interrupted runs (tb- namespaces, PIDs)")


def handle(a: argparse.Namespace) -> int:
    from tunbench.cell.cleanup import clean

    check_prerequisites_root_only()
    for line in clean():
        print(line)
    return 0


def check_prerequisites_root_only() -> None:
    if os.geteuid() != 0:
        raise PrerequisiteError("tunbench clean needs root (CAP_NET_ADMIN)")
