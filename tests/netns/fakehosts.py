"""Fake hosts for the fleet tests: SSH servers in network namespaces of this machine.

Each fake host is a ``tb-`` network namespace with its ``lo`` up and its own OpenSSH
server (Debian's ``/usr/sbin/sshd``) on 127.0.0.1:22 *inside* it, never on the machine's
interfaces. sshd runs under ``unshare --uts --pid --fork --mount-proc``, so the host has

- its own hostname (UTS namespace): result files name it;
- its own PID namespace, sshd as its init: every process a fleet run starts there is
  found by :meth:`FakeHost.processes`, and killing sshd kills them all (teardown);
- its own mounts (private propagation): a tmpfs on ``/run`` (``/run/netns``, where
  pyroute2 and ``ip netns`` keep the namespaces the remote matrix creates; ``/run/sshd``,
  sshd's privilege-separation directory; tunbench's state dir and run lock) and one on
  ``/tmp`` (the fleet's work directory, Ansible's remote temporary files). One fake
  host's ``tunbench clean`` therefore sees only its own namespaces and its own lock, and
  never those of the machine, of another fake host or of another user's tests.

The test looks inside through ``/proc/<sshd pid>/root`` (the host's mount namespace, as
its processes see it). The controller reaches a host with a key pair made for the test
and an SSH ProxyCommand that enters the namespace (``ip netns exec NS socat -
TCP:127.0.0.1:22``), and checks the host key it made (``HostKeyAlias``, a known_hosts file
of its own).
"""

from __future__ import annotations

import ctypes
import json
import os
import shlex
import signal
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
from pyroute2 import IPRoute, netns

from tunbench.system.procs import wait_until

SSHD = "/usr/sbin/sshd"
PR_SET_PDEATHSIG = 1
STATE_DIR = "/run/tb-state"  # the fake host's tunbench state dir (inventory: tunbench_state_dir)
# Runs inside the host's namespaces: hostname, private /run and /tmp, then sshd as init.
# The files are copied to /run before /tmp, where the test keeps them, is covered.
BOOT = """set -e
hostname "$1"
mount -t tmpfs -o mode=0755 tb-fakehost-run /run
mkdir -p /run/sshd /run/netns /run/tb-fakehost
cp "$2/host_key" "$2/authorized_keys" "$2/sshd_config" /run/tb-fakehost/
mount -t tmpfs -o mode=1777 tb-fakehost-tmp /tmp
exec "$3" -D -e -f /run/tb-fakehost/sshd_config
"""
SSHD_CONFIG = """ListenAddress 127.0.0.1:22
HostKey /run/tb-fakehost/host_key
AuthorizedKeysFile /run/tb-fakehost/authorized_keys
PidFile none
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
UseDNS no
StrictModes no
MaxStartups 50
Subsystem sftp internal-sftp
"""


def _die_with_parent() -> None:
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def keygen(path: Path) -> None:
    """An ed25519 key pair ``path`` and ``path.pub`` without a passphrase."""
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", path.name, "-f", str(path)],
        check=True,
        timeout=30,
    )


@dataclass
class FakeHost:
    name: str  # inventory name and hostname
    ns: str  # the tb- network namespace
    files: Path  # keys, sshd_config, known_hosts, sshd's log (on the controller's side)
    client_key: Path
    proc: subprocess.Popen[bytes] | None = None
    init_pid: int | None = None  # sshd, PID 1 of the host's PID namespace
    log: Any = field(default=None, repr=False)
    underlay: str | None = None  # its address on the veth to another fake host (underlay())

    @property
    def root(self) -> Path:
        """The host's file system as its processes see it (its /run and /tmp)."""
        assert self.init_pid is not None, f"{self.name}: sshd is not running"
        return Path(f"/proc/{self.init_pid}/root")

    def start(self) -> None:
        """Start sshd and wait until it accepts connections inside the namespace."""
        self.log = open(self.files / "sshd.log", "ab")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(
            [
                *("ip", "netns", "exec", self.ns),
                *("unshare", "--uts", "--pid", "--fork", "--mount-proc"),
                *("--propagation", "private", "--kill-child=SIGKILL"),
                *("sh", "-c", BOOT, "boot", self.name, str(self.files), SSHD),
            ],
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            # if the test process dies (kill -9), unshare does, and with it (--kill-child)
            # sshd, the PID namespace's init: nothing of the host outlives the test
            preexec_fn=_die_with_parent,
        )
        ready = wait_until(lambda: self._listening() or self.proc.poll() is not None, 10.0)
        if not ready or self.proc.poll() is not None:
            self.stop()
            raise RuntimeError(f"{self.name}: sshd did not start: {self.sshd_log()}")

    def _listening(self) -> bool:
        try:
            kids = psutil.Process(self.proc.pid).children() if self.proc else []
        except psutil.NoSuchProcess:
            return False
        if not kids or kids[0].name() != "sshd":
            return False
        self.init_pid = kids[0].pid
        # the namespace's own TCP table: 127.0.0.1:22 (0100007F:0016) in LISTEN (0A)
        try:
            table = Path(f"/proc/{self.init_pid}/net/tcp").read_text().splitlines()[1:]
        except OSError:
            return False
        return any(line.split()[1] == "0100007F:0016" and line.split()[3] == "0A" for line in table)

    def stop(self) -> None:
        """Stop sshd, and with it (PID 1 of the namespace) whatever still runs in the host;
        its mounts go with its last process. The network namespace stays."""
        if self.proc is not None:
            if self.init_pid is not None:
                with suppress(ProcessLookupError):
                    os.kill(self.init_pid, signal.SIGKILL)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc, self.init_pid = None, None
        if self.log is not None:
            self.log.close()
            self.log = None

    def sshd_log(self) -> str:
        return (self.files / "sshd.log").read_text(errors="replace")[-2000:]

    def ssh_argv(self) -> list[str]:
        """ssh to the host as the inventory says, up to the remote command."""
        v = self.inventory_vars()
        common = shlex.split(v["ansible_ssh_common_args"])
        return ["ssh", "-T", "-i", str(self.client_key), *common, "root@127.0.0.1"]

    def inventory_vars(self) -> dict[str, Any]:
        proxy = f"ip netns exec {self.ns} socat - TCP:127.0.0.1:22"
        return {
            "ansible_host": "127.0.0.1",
            "ansible_user": "root",
            "ansible_ssh_private_key_file": str(self.client_key),
            "ansible_ssh_common_args": (
                f"-F /dev/null -o ProxyCommand='{proxy}' -o HostKeyAlias={self.name} "
                f"-o UserKnownHostsFile={self.files / 'known_hosts'} "
                "-o StrictHostKeyChecking=yes -o BatchMode=yes"
            ),
            # the machine's Debian Python (PATH may lead to a pyenv shim), and Ansible's
            # remote temporary files in the host's own /tmp
            "ansible_python_interpreter": "/usr/bin/python3",
            "ansible_remote_tmp": "/tmp/.ansible-tmp",
            "tunbench_state_dir": STATE_DIR,
            **({"tunbench_underlay": self.underlay} if self.underlay else {}),
        }

    # what a fleet run may leave on the host, as the host sees it
    def namespaces(self) -> list[str]:
        return sorted(p.name for p in (self.root / "run/netns").iterdir())

    def workdirs(self) -> list[str]:
        return sorted(p.name for p in (self.root / "tmp").glob("tb-*"))

    def processes(self) -> list[str]:
        """The host's live processes other than its sshd listener (and the connections it
        is still closing: sshd children without a command of their own)."""
        mine = os.stat(f"/proc/{self.init_pid}/ns/pid").st_ino
        found = []
        for proc in psutil.process_iter(["pid", "cmdline", "status"]):
            try:
                if os.stat(f"/proc/{proc.pid}/ns/pid").st_ino != mine:
                    continue
            except OSError:
                continue
            cmd = " ".join(proc.info["cmdline"] or [])
            if proc.pid == self.init_pid or proc.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            if cmd.startswith("sshd:"):
                continue
            found.append(f"{proc.pid}: {cmd}")
        return found

    def leftovers(self) -> list[str]:
        return [
            *(f"namespace {n}" for n in self.namespaces()),
            *(f"/tmp/{d}" for d in self.workdirs()),
            *(f"process {p}" for p in self.processes()),
        ]

    @contextmanager
    def lock_held(self) -> Iterator[Path]:
        """Hold the host's tunbench run lock (as a run in progress there would)."""
        import fcntl

        state = self.root / STATE_DIR.lstrip("/")
        state.mkdir(parents=True, exist_ok=True)
        fd = os.open(state / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            yield state / "lock"
        finally:
            os.close(fd)


@contextmanager
def fake_hosts(names: list[str], workdir: Path, run_id: str) -> Iterator[dict[str, FakeHost]]:
    """Fake hosts ``names``, started; removed on the way out (success, failure, Ctrl-C):
    sshd and everything in its PID namespace killed, the namespace deleted."""
    client_key = workdir / "client_key"
    if not client_key.exists():
        keygen(client_key)
    hosts: dict[str, FakeHost] = {}
    with ExitStack() as stack:
        for name in names:
            ns = f"tb-fh{run_id}-{name}"
            files = workdir / name
            files.mkdir()
            keygen(files / "host_key")
            (files / "authorized_keys").write_text((workdir / "client_key.pub").read_text())
            (files / "sshd_config").write_text(SSHD_CONFIG)
            pub = (files / "host_key.pub").read_text().split()
            (files / "known_hosts").write_text(f"{name} {pub[0]} {pub[1]}\n")
            netns.create(ns)
            stack.callback(_remove_ns, ns)
            subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True, timeout=10)
            host = FakeHost(name, ns, files, client_key)
            stack.callback(host.stop)
            host.start()
            hosts[name] = host
        yield hosts


UNDERLAY_NET = "192.168.77"  # inside the fake hosts' namespaces only, never the machine's
UNDERLAY_DEV = "tb-ul0"


def underlay(a: FakeHost, b: FakeHost, mtu: int = 1500) -> None:
    """Join two fake hosts with a veth pair, the link between them: ``tb-ul0`` in each,
    192.168.77.1/24 on ``a`` and .2/24 on ``b``. It goes with their namespaces."""
    with IPRoute(netns=a.ns) as ipr:
        ipr.link("add", ifname=UNDERLAY_DEV, kind="veth", peer={"ifname": "tb-ul1"})
        idx = ipr.link_lookup(ifname="tb-ul1")[0]
        ipr.link("set", index=idx, net_ns_fd=b.ns)
    with IPRoute(netns=b.ns) as ipr:
        idx = ipr.link_lookup(ifname="tb-ul1")[0]
        ipr.link("set", index=idx, ifname=UNDERLAY_DEV)
    for i, host in enumerate((a, b), start=1):
        host.underlay = f"{UNDERLAY_NET}.{i}"
        with IPRoute(netns=host.ns) as ipr:
            idx = ipr.link_lookup(ifname=UNDERLAY_DEV)[0]
            ipr.link("set", index=idx, mtu=mtu)
            ipr.addr("add", index=idx, address=host.underlay, prefixlen=24)
            ipr.link("set", index=idx, state="up")


def qdisc_kinds(host: FakeHost) -> list[str]:
    """The root qdiscs on the host's underlay device (shaping must be gone after a run)."""
    with IPRoute(netns=host.ns) as ipr:
        idx = ipr.link_lookup(ifname=UNDERLAY_DEV)[0]
        return sorted(str(q.get_attr("TCA_KIND")) for q in ipr.get_qdiscs(idx))


def _remove_ns(name: str) -> None:
    with suppress(FileNotFoundError):
        netns.remove(name)


def inventory(path: Path, hosts: list[FakeHost], **group_vars: Any) -> Path:
    """An Ansible inventory of ``hosts`` (YAML; JSON is YAML)."""
    doc = {
        "all": {
            "hosts": {h.name: h.inventory_vars() for h in hosts},
            "vars": group_vars,
        }
    }
    path.write_text(json.dumps(doc, indent=1))
    return path
