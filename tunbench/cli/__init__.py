"""Command line: one module per subcommand (its parser and its handler), dispatched by
:mod:`tunbench.cli.main`.

Library code raises typed errors; only this package prints them (one line) and turns them
into exit codes: 2 bad input or missing prerequisite, 1 a failed measurement, 130/143
interrupted by SIGINT/SIGTERM.
"""
