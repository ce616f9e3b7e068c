"""``python -m pyhcs.emulator serve|status|stop`` and auto-start."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

from tests.emulator.conftest import REPO


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pyhcs.emulator", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_autostart_status_stop(tmp_path: Path) -> None:
    directory = tmp_path / "auto"
    env = dict(os.environ, PYHCS_EMULATOR_DIR=str(directory))
    # First use of the backend starts the service.
    child = subprocess.run(
        [sys.executable, "-m", "tests.emulator.child", "scenario", "auto-1"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert child.returncode == 0, child.stderr
    try:
        status = _cli("status", "--dir", str(directory))
        assert status.returncode == 0
        assert json.loads(status.stdout)["Running"] is True
        sock = directory / "service.sock"
        assert stat.S_IMODE(sock.stat().st_mode) == 0o600
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    finally:
        assert _cli("stop", "--dir", str(directory)).returncode == 0
    assert _cli("status", "--dir", str(directory)).returncode == 1


def test_autostart_can_be_disabled(tmp_path: Path) -> None:
    env = dict(os.environ, PYHCS_EMULATOR_DIR=str(tmp_path / "off"), PYHCS_EMULATOR_AUTOSTART="0")
    child = subprocess.run(
        [sys.executable, "-m", "tests.emulator.child", "scenario", "x"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert child.returncode != 0
    assert "PYHCS_EMULATOR_AUTOSTART=0" in child.stderr


def test_second_service_in_same_dir_refuses(service_dir: Path) -> None:
    second = _cli("serve", "--dir", str(service_dir))
    assert second.returncode == 3
    assert "another emulator service" in second.stderr
