"""The import layering README's Layout promises: a forwarder is a standalone program.

forwarders/ may import tunio/ but never tunbench/; tunio/ imports neither. Checked in a fresh
interpreter per package, because this test process has the harness loaded already.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

_CHECK = """
import importlib, sys
for name in sys.argv[2:]:
    importlib.import_module(name)
bad = sorted(m for m in sys.modules if m.split(".")[0] in sys.argv[1].split(","))
print("\\n".join(bad))
"""


def _modules(package: str) -> list[str]:
    return sorted(f"{package}.{p.stem}" for p in (ROOT / package).glob("*.py"))


@pytest.mark.parametrize(
    ("package", "forbidden"), [("forwarders", "tunbench"), ("tunio", "tunbench,forwarders")]
)
def test_package_does_not_import(package: str, forbidden: str) -> None:
    out = subprocess.run(
        [sys.executable, "-c", _CHECK, forbidden, *_modules(package)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    assert out.split() == [], f"{package} pulls in {out.split()}"
