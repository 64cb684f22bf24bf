"""Peer rows without privilege: spec parsing, the launcher's command, a missing daemon."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from unittest import mock

import psutil
import pytest

from tunbench.cell import perf
from tunbench.cell.variants import PEERS, default_matrix, describe, parse_spec
from tunbench.errors import UsageError
from tunbench.peers import base
from tunbench.peers.openvpn import _fingerprint
from tunbench.peers.registry import CANNOT_FORWARD, CRYPTO_MODES, LAUNCHERS
from tunbench.system.sampler import Sampler


def test_every_launcher_is_a_row_and_in_the_default_matrix_without_crypto() -> None:
    specs = default_matrix()
    for name in set(LAUNCHERS) - set(CANNOT_FORWARD):
        assert name in PEERS and name in specs
    assert not any("--crypto" in s for s in specs)  # the encrypted modes are opt-in
    assert all(vars(parse_spec(m).options)["crypto"] != "none" for m in CRYPTO_MODES)


def test_peer_spec_options_and_columns() -> None:
    cell = parse_spec("peer-openvpn --crypto aead")
    assert cell.kind == "external" and cell.label == "peer-openvpn"
    assert describe(cell) == {
        "mode": "peer (openvpn)",
        "offload": "none",
        "channel": "udp lo, aead",
    }
    assert describe(parse_spec("peer-tinc"))["channel"] == "udp lo, none"
    assert describe(parse_spec("peer-wireguard-go"))["channel"] == "udp lo, aead"


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ("peer-wireguard-go --crypto none", "invalid choice: 'none'"),
        ("peer-openvpn --crypto rot13", "invalid choice"),
        ("peer-openvpn --iface1 x", "unrecognized arguments"),
        ("peer-openvpn --crypt aead", "unrecognized arguments"),  # no abbreviations
        ("peer-openvpn --help", "--help shows the options"),
        ("peer-socat --crypto none", "takes no arguments"),
    ],
)
def test_bad_peer_specs(spec: str, needle: str) -> None:
    with pytest.raises(UsageError, match=needle):
        parse_spec(spec)


def test_launcher_command_gets_the_cells_files_and_the_spec_options_last() -> None:
    cell = parse_spec("peer-fastd --crypto aead")
    stats = Path("/tmp/tb-x/forwarder-stats.json")
    argv = cell.forwarder_argv("tun11", "10.0.1.1", "tun22", "10.0.2.1", 1500, stats)
    assert argv[:3] == [sys.executable, "-m", "tunbench.peers.fastd"]
    assert argv[argv.index("--stats") + 1] == str(stats)
    assert argv[argv.index("--workdir") + 1] == "/tmp/tb-x"
    assert argv[argv.index("--iface2") + 1] == "tun22"
    assert argv[-2:] == ["--crypto", "aead"]
    ns = base.build_parser(LAUNCHERS["peer-fastd"]).parse_args(argv[3:])
    assert ns.mtu == 1500 and ns.crypto == "aead"


@pytest.mark.parametrize("name", sorted(LAUNCHERS))
def test_missing_daemon_fails_the_row_with_the_package_to_install(
    name: str, tmp_path: Path
) -> None:
    launcher = LAUNCHERS[name]
    # PATH without the daemon: the launcher refuses before it creates anything
    out = subprocess.run(
        [sys.executable, "-m", launcher.module, "--workdir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=30,
        env={"PATH": str(tmp_path)},
        check=False,
    )
    assert out.returncode == base.EXIT_MISSING
    want = f"{launcher.program} is not installed: install the Debian package {launcher.package}"
    assert out.stderr.strip().splitlines()[-1] == f"{name}: {want}"
    assert list(tmp_path.iterdir()) == []


def test_empty_placeholders_mean_not_given() -> None:
    argv = parse_spec("peer-tinc").forwarder_argv("a", "10.0.1.1", "b", "10.0.2.1", 1500, None)
    ns = base.build_parser(LAUNCHERS["peer-tinc"]).parse_args(argv[3:])
    assert ns.stats is None and ns.workdir is not None and ns.workdir.is_dir()


def test_free_ports_are_two_different_ports() -> None:
    a, b = base.free_ports()
    assert a != b and 0 < a < 65536 and 0 < b < 65536


def test_subnet_of_a_device_address() -> None:
    assert base.subnet24("10.0.2.1") == "10.0.2.0/24"


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_openvpn_peer_fingerprint_matches_openssl(tmp_path: Path) -> None:
    from tunbench.peers.openvpn import _certificate

    cert, _key = _certificate(tmp_path, 1)
    shown = subprocess.run(
        ["openssl", "x509", "-in", str(cert), "-noout", "-fingerprint", "-sha256"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert _fingerprint(cert) == shown.strip().split("=", 1)[1]


def test_perf_records_every_process_of_a_peer() -> None:
    argv = perf.argv([10, 11, 12], Path("/tmp/p.data"))
    assert argv[argv.index("-p") + 1] == "10,11,12"


def test_sampler_can_leave_the_launcher_out_of_its_tree() -> None:
    # a "launcher" holding 200 MB with a small child: peer rows report the child only
    code = (
        "import subprocess, sys, time\n"
        "ballast = bytearray(200_000_000)\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)'])\n"
        "print('ready', flush=True)\n"
        "time.sleep(30)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
        rss = {}
        for include_root in (True, False):
            sampler = Sampler(proc.pid, interval=0.1, include_root=include_root).start()
            time.sleep(0.5)
            rss[include_root] = max(x.rss_bytes for x in sampler.stop())
        assert rss[True] > 200e6
        assert 0 < rss[False] < 50e6
    finally:
        for p in [*psutil.Process(proc.pid).children(), psutil.Process(proc.pid)]:
            p.kill()
        proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()


def test_rows_that_cannot_forward_are_listed_but_not_in_the_default_matrix() -> None:
    assert set(CANNOT_FORWARD) == {"peer-yggdrasil"}
    specs = default_matrix()
    for name, why in CANNOT_FORWARD.items():
        assert name in PEERS and name not in specs
        assert "IPv6" in why and "\n" not in why


def test_yggdrasil_refuses_with_its_reason_and_leaves_nothing(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "yggdrasil"  # "installed": the launcher must not start it
    fake.write_text("#!/bin/sh\nexit 99\n")
    fake.chmod(0o755)
    work = tmp_path / "work"
    work.mkdir()
    out = subprocess.run(
        [sys.executable, "-m", "tunbench.peers.yggdrasil", "--workdir", str(work)],
        capture_output=True,
        text=True,
        timeout=30,
        env={"PATH": str(bin_dir)},
        check=False,
    )
    assert out.returncode == 1
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("peer-yggdrasil: error: yggdrasil cannot run here: ")
    assert last.endswith(CANNOT_FORWARD["peer-yggdrasil"])
    assert list(work.iterdir()) == []  # its private directory is gone again


def _setup(tmp_path: Path, name: str, crypto: str | None = None) -> base.Setup:
    args = base.build_parser(LAUNCHERS[name]).parse_args(
        ["--workdir", str(tmp_path), *(["--crypto", crypto] if crypto else [])]
    )
    return base.Setup(
        args=args,
        dir=tmp_path,
        temp=("tb-abc-1", "tb-abc-2"),
        ports=(40001, 40002),
        subnets=("10.0.1.0/24", "10.0.2.0/24"),
    )


def test_nebula_nodes_route_the_other_subnet_via_the_other_node(tmp_path: Path) -> None:
    from tunbench.peers.nebula import Nebula

    s = _setup(tmp_path, "peer-nebula", "chachapoly")
    conf = Nebula()._config(s, 0)
    assert conf["cipher"] == "chachapoly"
    assert conf["listen"] == {"host": "127.0.0.1", "port": 40001}
    assert conf["static_host_map"] == {"192.0.2.2": ["127.0.0.1:40002"]}
    tun = conf["tun"]
    assert isinstance(tun, dict)
    assert tun["dev"] == "tb-abc-1" and tun["mtu"] == 1500
    assert tun["unsafe_routes"] == [{"route": "10.0.2.0/24", "via": "192.0.2.2", "install": False}]


@pytest.mark.skipif(shutil.which("nebula-cert") is None, reason="needs nebula-cert (nebula)")
def test_nebula_certificates_carry_each_nodes_subnet(tmp_path: Path) -> None:
    from tunbench.peers.nebula import Nebula

    s = _setup(tmp_path, "peer-nebula")
    daemons = Nebula().daemons(s)
    assert [d.iface for d in daemons] == ["tb-abc-1", "tb-abc-2"]
    for n, subnet in ((1, "10.0.1.0/24"), (2, "10.0.2.0/24")):
        shown = subprocess.run(
            ["nebula-cert", "print", "-json", "-path", str(tmp_path / f"node{n}.crt")],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        details = json.loads(shown)["details"]
        assert details["ips"] == [f"192.0.2.{n}/24"] and details["subnets"] == [subnet]
        assert json.loads((tmp_path / f"node{n}.yml").read_text())["cipher"] == "aes"


def test_vtun_sees_a_listening_port_in_proc_net_tcp() -> None:
    from tunbench.peers.vtun import _listening

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    assert not _listening(port)  # bound, not yet listening
    sock.listen()
    assert _listening(port)
    sock.close()
    assert not _listening(port)


def test_vtun_configuration_hides_the_password(tmp_path: Path) -> None:
    from tunbench.peers.vtun import Vtun

    s = _setup(tmp_path, "peer-vtun")
    with mock.patch("tunbench.peers.vtun._ipv4_configured", return_value=True):
        server, client = Vtun().daemons(s)
    conf = (tmp_path / "server.conf").read_text()
    assert "encrypt no;" in conf and "proto udp;" in conf and "compress no;" in conf
    assert "bindaddr { addr 127.0.0.1; }" in conf and "port 40001;" in conf
    assert (tmp_path / "server.conf").stat().st_mode & 0o077 == 0
    assert server.argv[:3] == ["vtund", "-n", "-s"]
    session = client.argv[-2]
    assert session.startswith("tb-") and f"\n{session} {{\n" in conf
    assert client.argv[-1] == "127.0.0.1"


def test_gvpe_device_mtu_is_the_cells(tmp_path: Path) -> None:
    from tunbench.peers import gvpe

    s = _setup(tmp_path, "peer-gvpe")
    with mock.patch.object(gvpe, "_generate_key") as keygen:
        daemons = gvpe.Gvpe().daemons(s)
    keygen.assert_called_once()
    conf = (tmp_path / "conf" / "gvpe.conf").read_text().splitlines()
    assert f"mtu = {1500 + gvpe.OVERHEAD}" in conf
    assert "on node1 ifname = tb-abc-1" in conf and "compress = no" in conf
    assert conf[-3:] == ["node = node2", "hostname = 127.0.0.1", "udp-port = 40002"]
    assert daemons[0].argv[-1] == "node1" and "40002" in daemons[0].ready
