from __future__ import annotations

import pytest

from tunbench.cell.variants import (
    BASELINE_MODES,
    BASELINES,
    VARIANTS,
    default_matrix,
    describe,
    parse_spec,
)
from tunbench.errors import UsageError
from tunbench.plan.matrix import flamegraph_names


def test_spec_with_arguments() -> None:
    cell = parse_spec("sync-gso --thread 2")
    assert cell.kind == "python"
    assert cell.name == "sync-gso"
    assert cell.args == ("--thread", "2")
    assert describe(cell) == {"mode": "sync x2", "offload": "gso-passthrough", "channel": "-"}


def test_description_uses_the_values_the_forwarder_will_parse() -> None:
    # the last of a repeated option wins, "=" forms count, defaults are filled in
    assert describe(parse_spec("sync-gso --thread 2 --thread 1"))["mode"] == "sync"
    cell = parse_spec("sync-gso-channel --gso=split --depth=64 --thread=2 --multiqueue")
    want = {"mode": "sync x2 mq", "offload": "gso-split/python", "channel": "queue(64)"}
    assert describe(cell) == want
    assert describe(parse_spec("async-gso-channel-pool"))["channel"] == "pool(256)"


def test_split_mode_and_channel_are_described() -> None:
    cell = parse_spec("sync-gso-channel --gso split --depth 64")
    want = {"mode": "sync", "offload": "gso-split/python", "channel": "queue(64)"}
    assert describe(cell) == want


def test_split_engine_is_described_and_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    import tunio.engine

    if tunio.engine.native_available():
        cell = parse_spec("async-gso-framed --gso split --engine native")
        assert describe(cell)["offload"] == "gso-split/native"
    with pytest.raises(UsageError, match="unknown offload engine 'rust'"):
        parse_spec("sync-gso --gso split --engine rust")
    # without the native module: refused up front, in one line, and left out of the matrix
    monkeypatch.setattr(tunio.engine, "_native", None)
    monkeypatch.setattr(tunio.engine, "_native_error", "the native offload engine is not built")
    with pytest.raises(UsageError, match="not built") as err:
        parse_spec("sync-gso --gso split --engine native")
    assert "\n" not in str(err.value)
    assert not any("native" in s for s in default_matrix())
    assert "sync-gso --gso split" in default_matrix()


def test_unknown_variant_lists_known_ones() -> None:
    with pytest.raises(UsageError) as err:
        parse_spec("no-such-thing --x")
    msg = str(err.value)
    assert "unknown variant 'no-such-thing'" in msg
    for name in [*VARIANTS, *BASELINES]:
        assert name in msg
    assert "\n" not in msg


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ("sync-gso --thread 0", "--thread"),
        ("sync-gso --gso bogus", "--gso"),
        ("sync-normal --nonsense", "unrecognized"),
        ("sync-normal --iface1 x", "belongs to the harness"),
        ("kernel-veth --thread 2", "takes no arguments"),
        ("kernel-router --thread 2", "takes only --no-offload"),
        ("", "empty spec"),
        ("'unbalanced", "cannot parse"),
        # one thread has one queue: --multiqueue would silently do nothing
        ("sync-gso --multiqueue", "--multiqueue needs --thread 2 or more"),
        ("sync-normal-channel --thread 1 --multiqueue", "--multiqueue needs --thread 2"),
        ("sync-normal --multiqueue --thread 2 --thread 1", "--multiqueue needs --thread 2"),
    ],
)
def test_bad_specs(spec: str, needle: str) -> None:
    with pytest.raises(UsageError, match=needle):
        parse_spec(spec)


def test_external_command_gets_reference_flags() -> None:
    cell = parse_spec("/bin/true --fast")
    assert cell.kind == "external"
    argv = cell.forwarder_argv("tun11", "10.0.1.1", "tun22", "10.0.2.1", 1500, None)
    assert argv == [
        "/bin/true",
        "--fast",
        "--iface1",
        "tun11",
        "--ip1",
        "10.0.1.1",
        "--iface2",
        "tun22",
        "--ip2",
        "10.0.2.1",
    ]


def test_external_command_placeholders() -> None:
    cell = parse_spec("/bin/true {iface1}:{ip1} {iface2} mtu={mtu}")
    argv = cell.forwarder_argv("tun11", "10.0.1.1", "tun22", "10.0.2.1", 9000, None)
    assert argv == ["/bin/true", "tun11:10.0.1.1", "tun22", "mtu=9000"]


def test_python_variant_command_carries_options_last() -> None:
    cell = parse_spec("sync-normal --thread 3")
    argv = cell.forwarder_argv("tun11", "10.0.1.1", "tun22", "10.0.2.1", 1500, None)
    assert argv[1:3] == ["-m", "forwarders.sync_normal"]
    assert argv[-2:] == ["--thread", "3"]


def test_default_matrix_parses_and_has_every_variant_and_baseline() -> None:
    specs = default_matrix()
    cells = [parse_spec(s) for s in specs]  # a typo in DEFAULT_MODES fails here
    assert len(set(specs)) == len(specs)
    runnable = {name for name, v in VARIANTS.items() if v.unavailable() is None}
    assert {c.spec for c in cells if c.kind == "python"} >= runnable
    assert {"uring-normal", "uring-gso"} <= set(VARIANTS)
    assert [c.spec for c in cells if c.kind == "baseline"] == [*BASELINES, *BASELINE_MODES]
    assert any("--gso split" in s for s in specs)
    import tunio.engine

    if tunio.engine.native_available():  # the split rows run with both engines
        assert "sync-gso --gso split --engine native" in specs
        assert "async-gso-framed --gso split --engine native" in specs


def test_flamegraph_names_never_collide() -> None:
    names = flamegraph_names(["sync-gso --thread 2", "sync-gso --thread=2", "sync-normal"])
    assert names["sync-normal"] == "sync-normal"
    assert len(set(names.values())) == 3
    assert all(n.startswith("sync-gso_--thread_2-") for n in list(names.values())[:2])


def test_multiqueue_with_threads_is_fine_and_the_forwarder_refuses_it_alone_too(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert describe(parse_spec("sync-gso --multiqueue --thread 2"))["mode"] == "sync x2 mq"
    parser = VARIANTS["sync-gso"].build_parser()  # standalone: python -m forwarders.sync_gso
    with pytest.raises(SystemExit) as exited:
        parser.parse_args(["--multiqueue"])
    assert exited.value.code == 2
    assert "--multiqueue needs --thread 2 or more" in capsys.readouterr().err


def test_uring_variants_are_refused_in_one_line_and_left_out_where_they_cannot_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import tunio.uring

    why = "io_uring_setup failed here: EPERM (Operation not permitted, kernel.io_uring_disabled=2)"
    monkeypatch.setattr(tunio.uring, "unavailable", lambda: why)
    import forwarders.uringbase

    monkeypatch.setattr(forwarders.uringbase, "unavailable", lambda: why)
    for name in ("uring-normal", "uring-gso"):
        with pytest.raises(UsageError) as err:
            parse_spec(f"{name} --depth 8")
        assert str(err.value) == f"{name}: {why}"
    specs = default_matrix()
    assert not any(s.startswith("uring-") for s in specs)
    assert "sync-normal" in specs and "sync-gso --gso split" in specs


def test_uring_options() -> None:
    import tunio.uring

    if tunio.uring.unavailable():
        pytest.skip(tunio.uring.unavailable() or "")
    cell = parse_spec("uring-gso --gso split --engine python --depth 16 --batch 8")
    assert describe(cell) == {"mode": "uring", "offload": "gso-split/python", "channel": "-"}
    assert cell.options is not None and cell.options.reads == "multishot"
    with pytest.raises(UsageError, match="--batch 64 exceeds --depth 16"):
        parse_spec("uring-normal --depth 16 --batch 64")
    with pytest.raises(UsageError, match="--thread"):
        parse_spec("uring-normal --thread 2")
