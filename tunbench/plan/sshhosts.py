"""Where a two-host row's hosts are and how to reach them: ``--host-a``/``--host-b`` are
names in an Ansible inventory (``--inventory``, YAML or JSON, the fleet's) or plain SSH
targets (``[user@]host[:port]``).

An inventory host's variables say how SSH reaches it (``ansible_host``, ``ansible_user``,
``ansible_port``, ``ansible_ssh_private_key_file``, ``ansible_ssh_common_args``), which
Python runs tunbench there (``tunbench_python``, else ``tunbench_dir``'s venv, else the
controller's own interpreter: the same checkout on every host), its state directory
(``tunbench_state_dir``) and its address on the underlay between the hosts
(``tunbench_underlay``, else the address SSH uses).
"""

from __future__ import annotations

import ipaddress
import json
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tunbench.errors import UsageError

# Never wait on a prompt; notice a dead link within ~6 s even when no EOF comes.
SSH_OPTIONS = (
    "-T",
    "-o",
    "BatchMode=yes",
    "-o",
    "ServerAliveInterval=2",
    "-o",
    "ServerAliveCountMax=3",
    "-o",
    "ConnectTimeout=10",
)


@dataclass(frozen=True)
class Host:
    """One host of a two-host row."""

    name: str  # as given: inventory name or SSH target
    ssh: tuple[str, ...]  # ssh and its options, up to (and including) the destination
    underlay: str  # its address on the link between the two hosts
    python: str  # the interpreter that has tunbench there
    state_dir: str | None = None

    def agent_argv(self, deadline_s: int) -> list[str]:
        """The whole command: ssh to the host, the agent there."""
        remote = [self.python, "-m", "tunbench.cli", "agent", "--stdio"]
        remote += ["--deadline", str(deadline_s)]
        if self.state_dir:
            remote += ["--state-dir", self.state_dir]
        return [*self.ssh, shlex.join(remote)]


def load_inventory(path: Path) -> dict[str, dict[str, Any]]:
    """Host name -> its variables (group ``vars`` under them) from a YAML/JSON inventory."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise UsageError(f"cannot read inventory {path}: {exc}") from exc
    try:
        import yaml  # type: ignore[import-untyped]

        doc = yaml.safe_load(text)
    except ImportError:  # pragma: no cover - ansible-core brings PyYAML
        doc = json.loads(text)
    except Exception as exc:
        raise UsageError(f"{path}: not a YAML inventory (INI is not read here): {exc}") from exc
    hosts: dict[str, dict[str, Any]] = {}

    def walk(group: dict[str, Any], inherited: dict[str, Any]) -> None:
        scope = {**inherited, **(group.get("vars") or {})}
        for name, own in (group.get("hosts") or {}).items():
            hosts[name] = {**scope, **(own or {})}
        for child in (group.get("children") or {}).values():
            walk(child or {}, scope)

    if not isinstance(doc, dict):
        raise UsageError(f"{path}: not an inventory")
    for group in doc.values():
        walk(group or {}, {})
    return hosts


def _target(text: str) -> tuple[str | None, str, str | None]:
    """``[user@]host[:port]`` -> (user, host, port)."""
    user, _, rest = text.rpartition("@")
    host, port = rest, None
    if rest.count(":") == 1:
        host, port = rest.split(":")
    return user or None, host, port


def resolve(name: str, inventory: dict[str, dict[str, Any]] | None) -> Host:
    """The host ``name`` (an inventory name, else an SSH target)."""
    if inventory is not None and name in inventory:
        v = inventory[name]
        addr = str(v.get("ansible_host", name))
        ssh = ["ssh", *SSH_OPTIONS]
        if v.get("ansible_port"):
            ssh += ["-p", str(v["ansible_port"])]
        if v.get("ansible_ssh_private_key_file"):
            ssh += ["-i", str(v["ansible_ssh_private_key_file"])]
        ssh += shlex.split(str(v.get("ansible_ssh_common_args", "")))
        user = v.get("ansible_user")
        ssh.append(f"{user}@{addr}" if user else addr)
        python = v.get("tunbench_python") or (
            f"{v['tunbench_dir']}/.venv/bin/python" if v.get("tunbench_dir") else sys.executable
        )
        return Host(
            name,
            tuple(ssh),
            str(v.get("tunbench_underlay") or addr),
            str(python),
            v.get("tunbench_state_dir"),
        )
    if inventory is not None and "@" not in name and "." not in name and ":" not in name:
        raise UsageError(f"host {name!r} is not in the inventory")
    user, addr, port = _target(name)
    ssh = ["ssh", *SSH_OPTIONS, *(["-p", port] if port else [])]
    ssh.append(f"{user}@{addr}" if user else addr)
    return Host(name, tuple(ssh), addr, sys.executable)


def check_pair(a: Host, b: Host) -> None:
    """Two different hosts, each with an IP address on the underlay."""
    if a.underlay == b.underlay:
        raise UsageError(f"--host-a and --host-b have the same underlay address {a.underlay}")
    for h in (a, b):
        try:
            ipaddress.ip_address(h.underlay)
        except ValueError:
            raise UsageError(
                f"{h.name}: underlay address {h.underlay!r} is not an IP address "
                "(set tunbench_underlay in the inventory)"
            ) from None
