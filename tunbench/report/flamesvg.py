"""Draw folded stacks (``a;b;c count``) as a static flamegraph SVG.

py-spy draws the Python forwarders' flamegraphs itself; this draws the ones ``perf``
records for native forwarders, in the same shape: one box per frame, width proportional to
samples, callers below callees, a tooltip with the sample count and share.
"""

from __future__ import annotations

import html
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

WIDTH, ROW, PAD = 1200, 16, 10


@dataclass
class _Node:
    samples: int = 0
    children: dict[str, _Node] = field(default_factory=dict)


def _tree(stacks: Mapping[str, int]) -> _Node:
    root = _Node()
    for stack, n in stacks.items():
        root.samples += n
        node = root
        for frame in stack.split(";"):
            node = node.children.setdefault(frame, _Node())
            node.samples += n
    return root


def _color(name: str) -> str:
    h = zlib.crc32(name.encode())
    return f"rgb({205 + h % 50},{(h >> 8) % 180},{(h >> 16) % 55})"


def render(stacks: Mapping[str, int], title: str) -> str:
    """The SVG text; frames narrower than a tenth of a pixel are left out."""
    root = _tree(stacks)
    total = max(root.samples, 1)
    scale = (WIDTH - 2 * PAD) / total
    boxes: list[tuple[float, float, int, str, int]] = []  # x, width, depth, name, samples

    def walk(node: _Node, name: str, x: float, depth: int) -> None:
        if node.samples * scale < 0.1:
            return
        boxes.append((x, node.samples * scale, depth, name, node.samples))
        for child_name in sorted(node.children):
            child = node.children[child_name]
            walk(child, child_name, x, depth + 1)
            x += child.samples * scale

    walk(root, "all", 0.0, 0)
    height = (max(b[2] for b in boxes) + 1) * ROW + 3 * PAD + 20
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        'font-family="monospace" font-size="11">',
        f'<text x="{WIDTH / 2}" y="{PAD + 12}" text-anchor="middle" font-size="14">'
        f"{html.escape(title)} ({total} samples)</text>",
    ]
    for x, w, depth, name, n in boxes:
        y = height - PAD - (depth + 1) * ROW
        label = html.escape(name)
        text = html.escape(name[: int(w / 7)]) if w > 21 else ""
        out.append(
            f"<g><title>{label} ({n} samples, {100 * n / total:.2f}%)</title>"
            f'<rect x="{PAD + x:.1f}" y="{y}" width="{w:.1f}" height="{ROW - 1}" '
            f'fill="{_color(name)}" rx="2"/>'
            f'<text x="{PAD + x + 3:.1f}" y="{y + ROW - 4}">{text}</text></g>'
        )
    out.append("</svg>\n")
    return "\n".join(out)


def write(stacks: Mapping[str, int], path: Path, title: str) -> Path:
    """Write the SVG (and the folded stacks beside it, ``.folded``, for other viewers)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(stacks, title))
    folded = "".join(f"{s} {n}\n" for s, n in sorted(stacks.items()))
    path.with_suffix(".folded").write_text(folded)
    return path
