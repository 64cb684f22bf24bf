"""Run the tunbench CLI with a signal delivered to it right after one of its children exists,
before the ``subprocess.Popen()`` that started it has returned:

    python interrupt_at_spawn.py SIGNAME WORDS -- TUNBENCH ARGS...

The first child whose command line contains WORDS is the one. The signal is raised from
inside ``Popen.__init__``, just after the fork and exec succeeded, so the harness's handler
runs at the worst moment: the child exists and nothing has recorded it yet.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from typing import Any


def main() -> int:
    sig = signal.Signals[sys.argv[1]]
    words = sys.argv[2]
    args = sys.argv[sys.argv.index("--") + 1 :]
    real_init = subprocess.Popen.__init__
    fired: list[bool] = []

    def init(self: subprocess.Popen[Any], argv: Any, *a: Any, **kw: Any) -> None:
        real_init(self, argv, *a, **kw)
        if not fired and words in " ".join(map(str, argv)):
            fired.append(True)
            print(f"interrupt_at_spawn: {sig.name} after starting {self.pid}", file=sys.stderr)
            signal.raise_signal(sig)  # the handler runs before this returns

    subprocess.Popen.__init__ = init  # type: ignore[method-assign]
    from tunbench.cli.main import main as cli_main

    code = cli_main(args)
    if not fired:
        print(f"interrupt_at_spawn: no child matched {words!r}", file=sys.stderr)
        return 99
    return code


if __name__ == "__main__":
    sys.exit(main())
