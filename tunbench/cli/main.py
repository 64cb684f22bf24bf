"""The ``tunbench`` program: the parser of every subcommand, dispatch, exit codes."""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Callable
from typing import NoReturn

from tunbench.cli import (
    agent,
    clean,
    compare,
    fleet,
    history,
    listing,
    matrix,
    report,
    sweep,
    verify,
)
from tunbench.cli import run as run_command  # `run` is the program's entry point below
from tunbench.cli.common import Parser
from tunbench.errors import Interrupted, TunbenchError
from tunbench.system import signals

SUBCOMMANDS = (
    run_command,
    matrix,
    sweep,
    verify,
    listing,
    report,
    compare,
    history,
    fleet,
    agent,
    clean,
)  # --help's order
COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "run": run_command.handle,
    "matrix": matrix.handle,
    "verify": verify.handle,
    "list": listing.handle,
    "report": report.handle,
    "clean": clean.handle,
    "compare": compare.handle,
    "sweep": sweep.handle,
    "fleet": fleet.handle,
    "history": history.handle,
    "agent": agent.handle,
}


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="tunbench", description="Benchmark TUN forwarders in network namespaces.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)
    for command in SUBCOMMANDS:
        command.add_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    """Run a command; its exit status (128+N after signal N, whenever it landed)."""
    signals.install()
    code = 1
    try:
        code = _command(argv)
    except Interrupted as exc:  # landed while an error was being reported
        code = exc.exit_code
    finally:
        late = signals.settle()
    if late is not None and code == 0:
        code = 128 + late  # the work was done, and the caller asked to stop: say so
    return code


def _command(argv: list[str] | None) -> int:
    try:
        head, passed = fleet.split_argv(list(sys.argv[1:] if argv is None else argv))
        a = build_parser().parse_args(head)
        if passed:
            a.matrix_args = passed
        code = COMMANDS[a.command](a)
        signals.checkpoint()  # a signal whose first raise was swallowed still counts
        return code
    except TunbenchError as exc:
        print(f"tunbench: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("tunbench: interrupted", file=sys.stderr)
        return 130
    except Interrupted as exc:
        name = "interrupted" if exc.signum == signal.SIGINT else "terminated"
        print(f"tunbench: {name}", file=sys.stderr)
        return exc.exit_code


def run() -> NoReturn:
    """The ``tunbench`` program: :func:`main`, then exit with its status."""
    code = main()
    signals.block_until_exit()
    sys.exit(code)


if __name__ == "__main__":
    run()
