"""``tunbench verify``: the split path delivers TCP, UDP and ICMP byte for byte, through
each of its drivers and engines, with its super-packets really split and coalesced again
(every variant and peer is verified right after its measured run: ``run --verify`` in
test_forwarding and test_peers)."""

from __future__ import annotations

import json

import pytest

from tunio.engine import ENGINES

from engines import with_engine_marks
from helpers import tunbench

pytestmark = [pytest.mark.root, pytest.mark.timeout(120)]

# the split path (forwarders/gsopath.py) through each of its four drivers (syncbase,
# asyncbase, framed, uringbase), with both offload engines; and one plain variant
SPLIT = ["sync-gso", "async-gso", "async-gso-framed", "uring-gso"]
SPECS = ["sync-normal"] + [f"{v} --gso split --engine {e}" for v in SPLIT for e in ENGINES]


@pytest.mark.parametrize("spec", with_engine_marks(SPECS))
def test_verify(spec: str) -> None:
    proc = tunbench("verify", spec, "-q", "--json")
    rep = json.loads(proc.stdout.splitlines()[-1])
    assert proc.returncode == 0, rep["checks"]
    assert rep["ok"] is True
    assert set(rep["checks"]) == {"ping", "stream", "stream-udp-gso", "stream-udp-large"}
    dirs = rep["forwarder"]["directions"]
    assert dirs["1to2"]["bytes"] > 8 << 20  # the whole TCP stream went through it
    if "--gso split" in spec:
        # super-packets were really split and coalesced again, with checksums verified
        d = dirs["1to2"]
        assert d["segments_in"] > d["frames_out"] > 0
        assert d["gro"]["super_frames"] > 0 and d["coalescing_factor"] > 1
        assert d["gro"]["bad_csum"] == 0 and d["batches"] > 0
