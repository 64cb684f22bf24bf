"""The positive control reaches the forwarder: ``TUNBENCH_SPIN_NS`` in the environment of
``tunbench matrix`` and ``--spin-ns`` in a spec both spin in the forwarder in its
namespace, and the result files record it."""

from __future__ import annotations

from pathlib import Path

import pytest

from forwarders.counters import SPIN_NS_ENV
from tunbench.analysis import results

from helpers import tunbench

pytestmark = [pytest.mark.root, pytest.mark.timeout(180)]


def test_spin_from_the_environment_and_from_the_spec(tmp_path: Path) -> None:
    proc = tunbench(
        "matrix",
        "sync-normal",
        "sync-normal --spin-ns 2000",
        "--repeat",
        "1",
        "--no-profile",
        "--no-diagnose",
        "--duration",
        "2",
        "--omit",
        "0",
        "-q",
        "--results-dir",
        str(tmp_path),
        env={SPIN_NS_ENV: "700"},
    )
    assert proc.returncode == 0, proc.stderr
    docs = {d["cell"]["spec"]: d for d in results.load_dir(tmp_path)}
    for spec, ns in (("sync-normal", 700), ("sync-normal --spin-ns 2000", 2000)):
        d = docs[spec]
        assert d["metadata"]["spin_ns"] == ns
        extra = d["forwarder"]["extra"]
        assert extra["spin_ns"] == ns  # what the forwarder itself read
        # it really spun: at least the asked time per frame, and not wildly more
        assert ns <= extra["spun_ns_per_frame"] < ns + 5000
    # a matrix of two specs prints B's paired verdict against A
    assert "| sync-normal | sync-normal --spin-ns 2000 |" in proc.stdout
