"""Every registered variant (and the peers) delivers TCP, UDP and ICMP byte for byte."""

from __future__ import annotations

import json

import pytest

from tunbench.variants import PEERS, VARIANTS

from helpers import tunbench

pytestmark = [pytest.mark.root, pytest.mark.timeout(120)]

SPECS = sorted(VARIANTS) + [f"{v} --gso split" for v in sorted(VARIANTS) if VARIANTS[v].gso]


@pytest.mark.parametrize("spec", SPECS + sorted(PEERS))
def test_verify(spec: str) -> None:
    proc = tunbench("verify", spec, "-q", "--json")
    rep = json.loads(proc.stdout.splitlines()[-1])
    assert proc.returncode == 0, rep["checks"]
    assert rep["ok"] is True
    assert set(rep["checks"]) == {"ping", "stream", "stream-udp-gso", "stream-udp-large"}
    if spec in PEERS:
        return
    dirs = rep["forwarder"]["directions"]
    assert dirs["1to2"]["bytes"] > 8 << 20  # the whole TCP stream went through it
    if "--gso split" in spec:
        # super-packets were really split and coalesced again
        assert dirs["1to2"]["segments_in"] > dirs["1to2"]["frames_out"] > 0
