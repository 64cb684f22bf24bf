"""The variant registry is what the forwarder modules declare, and everything shows it."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from forwarders.variant import Variant
from tunbench.cell.variants import BASELINES, PEERS, VARIANTS, RegistryError, discover, parse_spec
from tunbench.cli import main as cli

from engines import in_ci

README = Path(__file__).resolve().parents[2] / "README.md"
FORWARDERS = Path(__file__).resolve().parents[2] / "forwarders"


def readme_rows() -> list[str]:
    """The README's variant table as it must read, from the registry."""
    return [
        f"| `{v.name}` | {v.mode} | {'yes' if v.gso else '-'} | {v.channel_kind} | {v.summary} |"
        for v in VARIANTS.values()
    ]


def test_readme_lists_exactly_the_registered_variants() -> None:
    section = README.read_text().split("\n## Variants\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    expected = readme_rows()
    assert rows == expected, "README's variant table should read:\n" + "\n".join(expected)


def test_every_forwarder_module_with_a_variant_is_registered() -> None:
    declaring = {
        p.stem for p in FORWARDERS.glob("*.py") if re.search(r"^VARIANT = ", p.read_text(), re.M)
    }
    assert {v.module.removeprefix("forwarders.") for v in VARIANTS.values()} == declaring
    assert len(VARIANTS) >= 11


def test_registry_order_is_simplest_first() -> None:
    # the order of tunbench list and the default matrix, as before the registry was found
    assert list(VARIANTS) == [
        "sync-normal",
        "sync-gso",
        "sync-normal-channel",
        "sync-gso-channel",
        "async-normal",
        "async-gso",
        "async-normal-channel",
        "async-gso-channel",
        "async-gso-channel-pool",
        "async-framed",
        "async-gso-framed",
        "uring-normal",
        "uring-gso",
    ]
    assert discover() == dict(VARIANTS)


@pytest.mark.parametrize("name", list(VARIANTS))
def test_variant_describes_itself(name: str) -> None:
    v = VARIANTS[name]
    assert isinstance(v, Variant)
    assert v.description.startswith(f"`{name}`: ")  # the module docstring
    assert v.summary and "`" not in v.summary and not v.summary.endswith(".")
    assert v.mode in ("sync", "async", "uring")
    flags = [o.flag for o in v.options()]
    assert ("--gso" in flags) == v.gso
    assert ("--thread" in flags) == (v.mode == "sync")
    assert ("--spin-ns" in flags) == (v.mode != "uring")  # uring writes in C
    assert not set(flags) & set(v.build_parser().harness_flags)
    # describe() fills the table's columns from the same object
    if v.unavailable() and not in_ci():
        pytest.skip(v.unavailable() or "")
    cell = parse_spec(name)
    assert cell.info is v
    assert cell.forwarder_argv("a", "1", "b", "2", 1500, None)[2] == v.module


def test_options_carry_help_and_default() -> None:
    opts = {o.flag: o for o in VARIANTS["sync-gso-channel"].options()}
    assert list(opts) == [
        "--thread",
        "--multiqueue",
        "--gso",
        "--engine",
        "--batch",
        "--no-verify",
        "--depth",
        "--spin-ns",
        "--cpu-quota",
    ]
    assert opts["--spin-ns"].usage == "--spin-ns NS" and opts["--spin-ns"].default is None
    assert opts["--cpu-quota"].usage == "--cpu-quota PCT" and opts["--cpu-quota"].default is None
    assert opts["--depth"].default == 1024
    assert opts["--depth"].usage == "--depth N"
    assert opts["--depth"].help.endswith("(default 1024)")
    assert opts["--gso"].usage == "--gso passthrough|split"
    assert opts["--multiqueue"].usage == "--multiqueue"
    assert "(default" not in opts["--multiqueue"].help
    assert opts["--engine"].usage == "--engine python|native"
    assert opts["--engine"].help.endswith("(default python)")
    assert opts["--batch"].default == 128 and opts["--no-verify"].usage == "--no-verify"


def test_list_shows_variants_options_baselines_and_peers(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    for v in VARIANTS.values():
        assert re.search(rf"^  {re.escape(v.name)} +{re.escape(v.summary)}$", out, re.M)
    for name in [*BASELINES, *PEERS]:
        assert re.search(rf"^  {name} ", out, re.M)
    for flag in ("--thread N", "--multiqueue", "--gso passthrough|split", "--depth N", "--pool N"):
        assert f"[{flag}]" in out
        assert re.search(rf"^  {re.escape(flag)} +\S", out, re.M)  # with its help
    assert "--iface1" not in out and "--stats" not in out


@pytest.fixture
def drop_in(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[Callable[[str, str], None]]:
    """Add a forwarder module for one test only, as if its file were put in forwarders/."""
    import forwarders

    monkeypatch.setattr(forwarders, "__path__", [*forwarders.__path__, str(tmp_path)])
    added: list[str] = []

    def add(module: str, text: str) -> None:
        (tmp_path / f"{module}.py").write_text(text)
        added.append(f"forwarders.{module}")

    yield add
    for name in added:
        sys.modules.pop(name, None)
        if hasattr(forwarders, name.split(".")[1]):
            delattr(forwarders, name.split(".")[1])


def test_a_new_variant_is_one_file(drop_in: Callable[[str, str], None]) -> None:
    drop_in(
        "sync_gso_extra",
        '"""`sync-gso-extra`: one more."""\n'
        "from forwarders.syncbase import SyncVariant\n"
        'VARIANT = SyncVariant("sync-gso-extra", __doc__ or "", gso=True, channel=True)\n',
    )
    found = discover()
    names = list(found)
    assert names.index("sync-gso-channel") < names.index("sync-gso-extra")
    assert names.index("sync-gso-extra") < names.index("async-normal")
    assert found["sync-gso-extra"].summary == "one more"


def test_a_misnamed_variant_is_refused(drop_in: Callable[[str, str], None]) -> None:
    drop_in(
        "sync_copied",
        '"""`sync-normal`: copied and not renamed."""\n'
        "from forwarders.syncbase import SyncVariant\n"
        'VARIANT = SyncVariant("sync-normal", __doc__ or "", gso=False)\n',
    )
    with pytest.raises(RegistryError, match=r"forwarders\.sync_copied"):
        discover()
