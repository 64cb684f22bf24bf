"""``python -m tunbench.cli``: the ``tunbench`` program."""

from tunbench.cli.main import run

run()
