"""perf script folding and the flamegraph SVG of native forwarders (no root, no perf)."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from tunbench.cell.perf import fold
from tunbench.report import flamesvg

SCRIPT = """\
socat  1234 [001] 100.000001:     2000 cycles:P:
\tffffffff81a00001 tun_get_user+0x12 ([kernel.kallsyms])
\tffffffff81a00002 tun_chr_write_iter+0x40 ([kernel.kallsyms])
\t    7f0000000001 __GI___libc_write+0x10 (/usr/lib/x86_64-linux-gnu/libc.so.6)
\t    55550000001 [unknown] (/usr/bin/socat)

socat  1234 [000] 100.000002:     2000 cycles:P:
\tffffffff81a00001 tun_get_user+0x99 ([kernel.kallsyms])
\tffffffff81a00002 tun_chr_write_iter+0x40 ([kernel.kallsyms])
\t    7f0000000001 __GI___libc_write+0x10 (/usr/lib/x86_64-linux-gnu/libc.so.6)
\t    55550000001 [unknown] (/usr/bin/socat)

socat  1234 [000] 100.000003:     2000 cycles:P:
\t    7f0000000002 [unknown] ([unknown])
"""


def test_fold_merges_identical_stacks_root_first() -> None:
    stacks = fold(SCRIPT)
    assert stacks == Counter(
        {
            "socat;[socat];__GI___libc_write;tun_chr_write_iter;tun_get_user": 2,
            "socat;[unknown]": 1,
        }
    )


def test_fold_ignores_text_before_the_first_sample() -> None:
    assert fold("\tffff dangling+0x1 ([kernel.kallsyms])\n") == Counter()


def widths(svg: str) -> dict[str, float]:
    found = re.findall(
        r"<title>([^<]*) \((\d+) samples[^<]*</title><rect [^>]*width=\"([\d.]+)\"", svg
    )
    return {name: float(w) for name, _, w in found}


def test_svg_widths_are_proportional_to_samples() -> None:
    svg = flamesvg.render(Counter({"p;a;b": 3, "p;a": 1, "p;c": 4}), "test")
    w = widths(svg)
    assert set(w) == {"all", "p", "a", "b", "c"}
    assert abs(w["all"] - w["p"]) < 0.01
    assert abs(w["a"] - w["c"]) < 0.01  # 4 samples each
    assert abs(w["b"] * 4 / 3 - w["a"]) < 0.01
    assert "test (8 samples)" in svg


def test_svg_escapes_symbol_names(tmp_path: Path) -> None:
    stacks = Counter({"fwd;<lambda>;{closure}&co": 5})
    path = flamesvg.write(stacks, tmp_path / "x.svg", "t<1>")
    svg = path.read_text()
    assert "&lt;lambda&gt;" in svg and "{closure}&amp;co" in svg and "t&lt;1&gt;" in svg
    assert "<lambda>" not in svg
    assert (tmp_path / "x.folded").read_text() == "fwd;<lambda>;{closure}&co 5\n"
