"""``tunbench clean`` holds the run lock, so every state file it finds is a leftover."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tunbench.cell import cleanup


def test_every_state_file_is_cleaned_even_if_its_owner_pid_lives_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cleanup.netns, "listnetns", lambda: [])  # never this machine's
    workdir = tmp_path / "tb-left-behind"
    workdir.mkdir()
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        # The run that wrote this died; its PID now belongs to a live process (here: 1),
        # and the PID of its forwarder to a process that is not the forwarder.
        state = tmp_path / "state-1.json"
        state.write_text(
            json.dumps(
                {
                    "owner": 1,
                    "namespaces": [],
                    "processes": {str(stranger.pid): {"name": "forwarder", "create_time": 1.0}},
                    "files": [str(workdir)],
                }
            )
        )
        done = cleanup.clean(tmp_path)
        assert f"removed {workdir}" in done
        assert not workdir.exists()
        assert not state.exists()
        assert stranger.poll() is None  # recorded PID, other start time: not ours
        assert cleanup.clean(tmp_path) == []  # idempotent
    finally:
        stranger.kill()
        stranger.wait()
