"""``tunbench list``: the variants, baselines and peers, and their options."""

from __future__ import annotations

import argparse
import textwrap
from typing import Any


def add_parser(sub: Any) -> None:
    sub.add_parser("list", help="variants, baselines and their arguments")


def handle(a: argparse.Namespace) -> int:
    from tunbench.cell.variants import BASELINE_MODES, BASELINES, DEFAULT_MODES, PEERS, VARIANTS
    from tunbench.peers.registry import CRYPTO_MODES, LAUNCHERS
    from tunio.engine import native_available

    print('variants (options after the name, e.g. "sync-gso --thread 2"):')
    helps: dict[tuple[str, str], None] = {}  # (usage, help) in order of appearance
    for variant in VARIANTS.values():
        options = variant.options()
        print(f"  {variant.name:26} {variant.summary}")
        if options:
            print(f"  {'':26} {' '.join(f'[{o.usage}]' for o in options)}")
        helps.update(((o.usage, o.help), None) for o in options)
    print("options:")
    for usage, text in helps:
        print(textwrap.fill(text, 100, initial_indent=f"  {usage:26} ", subsequent_indent=" " * 29))
    print("baselines:")
    for name, summary in BASELINES.items():
        print(f"  {name:26} {summary}")
    print("peers:")
    for name, peer in PEERS.items():
        print(f"  {name:26} {peer.summary}")
    also = (*BASELINE_MODES, *DEFAULT_MODES)
    print("default matrix also runs: " + ", ".join(repr(m) for m in also))
    print("opt-in (encrypted peers): " + ", ".join(repr(m) for m in CRYPTO_MODES))
    halves = [
        n + ("" if p.half_crypto is None else f" (--crypto {'|'.join(p.half_crypto)})")
        for n, p in LAUNCHERS.items()
        if p.halves
    ]
    print(
        "two hosts (--topology two-host --host-a A --host-b B): link (iperf3 over the "
        "underlay), " + ", ".join(halves)
    )
    if not native_available():
        print("(the native offload engine is not built here: its rows are left out)")
    return 0
