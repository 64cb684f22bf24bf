"""``tunbench agent --stdio``: the agent a two-host row's controller starts on each host
over SSH (:mod:`tunbench.cell.agent`); JSON lines on stdin and stdout, messages on stderr.
It tears down what it started when stdin closes or ``--deadline`` passes."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from tunbench.errors import UsageError
from tunio.argtypes import positive_int


def add_parser(sub: Any) -> None:
    a = sub.add_parser(
        "agent",
        help="one host's side of a two-host row (started by the controller over SSH)",
        description="Serve a two-host row's controller: JSON lines on stdin/stdout. Stops and "
        "removes everything it started when stdin closes or the deadline passes.",
    )
    a.add_argument("--stdio", action="store_true", help="speak JSON lines on stdin/stdout")
    a.add_argument(
        "--deadline",
        type=positive_int,
        default=600,
        metavar="S",
        help="seconds after which the agent tears down and exits whatever happens (600)",
    )
    a.add_argument(
        "--state-dir", type=Path, default=None, help="the run lock and state (/run/tunbench)"
    )


def handle(a: argparse.Namespace) -> int:
    from tunbench.cell.agent import serve

    if not a.stdio:
        raise UsageError("agent: only --stdio is supported")
    return serve(sys.stdin.buffer, sys.stdout.buffer, float(a.deadline), a.state_dir)
