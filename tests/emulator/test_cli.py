"""``python -m pyhcs.emulator serve|status|stop`` and auto-start."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from pyhcs.emulator.client import autostart
from pyhcs.emulator.client.backend import open_table
from pyhcs.emulator.client.table import Table
from tests.emulator.capi import CApi
from tests.emulator.conftest import CONTAINER, REPO


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
        status = _cli("status", "--dir", str(directory), "--json")
        assert status.returncode == 0
        assert json.loads(status.stdout)["Running"] is True
        sock = directory / "service.sock"
        assert stat.S_IMODE(sock.stat().st_mode) == 0o600
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    finally:
        assert _cli("stop", "--dir", str(directory)).returncode == 0
    gone = _cli("status", "--dir", str(directory), "--json")
    assert gone.returncode == 1
    assert json.loads(gone.stdout) == {"Running": False, "Directory": str(directory)}
    assert _cli("status", "--dir", str(directory)).stdout.startswith("Running: no")


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


def test_status_shows_systems_and_clients(
    service_dir: Path, table: Table, c: CApi, running: Any
) -> None:
    process, code, _info, _doc = c.spawn(running, {"CommandLine": "sleep 30"})
    assert code == 0
    try:
        result = _cli("status", "--dir", str(service_dir), "--json")
        assert result.returncode == 0, result.stderr
        status = json.loads(result.stdout)
        assert status["Running"] is True
        assert status["Directory"] == str(service_dir)
        assert status["Pid"] == int((service_dir / "service.pid").read_text())
        assert status["Systems"] == [
            {
                "Id": "running-sys",
                "Type": "Container",
                "State": "Running",
                "Owner": "tests",
                "Processes": 1,
                "Handles": 1,
            }
        ]
        assert status["Clients"] == [
            {"Pid": os.getpid(), "Uid": os.getuid(), "SystemHandles": 1, "ProcessHandles": 1}
        ]
        text = _cli("status", "--dir", str(service_dir))
        assert text.returncode == 0, text.stderr
        lines = text.stdout.splitlines()
        assert lines[:2] == ["Running: yes", f"Directory: {service_dir}"]
        assert "Systems (1):" in lines
        row = next(line for line in lines if "running-sys" in line).split()
        assert row == ["running-sys", "Container", "Running", "tests", "1", "1"]
        # The first status query's client may not be gone yet when the second one asks.
        assert any(
            re.fullmatch(r"Clients \([12], not counting this status query\):", line)
            for line in lines
        )
        assert [str(os.getpid()), str(os.getuid()), "1", "1"] in [line.split() for line in lines]
    finally:
        c.process_op("HcsTerminateProcess", process)
        table.HcsCloseProcess(process)


def test_service_log_records_start_and_clients(service_dir: Path, table: Table) -> None:
    pid = int((service_dir / "service.pid").read_text())
    log = (service_dir / "service.log").read_text()
    assert f"service pid {pid} started in {service_dir} (" in log
    assert f"client pid {os.getpid()} uid {os.getuid()} connected" in log
    # Each line is timestamped (asctime: "YYYY-MM-DD HH:MM:SS,mmm").
    assert all(line[:4].isdigit() and line[4] == "-" for line in log.splitlines() if line)
    _cli("status", "--dir", str(service_dir))
    # The service notices the status query's client leave on its own thread, a moment later.
    deadline = time.monotonic() + 10
    while "disconnected" not in (service_dir / "service.log").read_text():
        assert time.monotonic() < deadline, "the service never logged the client leaving"
        time.sleep(0.01)


def test_stop_says_what_it_stopped(tmp_path: Path) -> None:
    directory = tmp_path / "stop"
    pid = autostart.start(directory)
    t = open_table(directory)
    try:
        c = CApi(t)
        system, code, _doc = c.create("stop-me", CONTAINER)
        assert code == 0
        assert c.system_op("HcsStartComputeSystem", system) == (0, None)
        _created, code, _doc = c.create("created", CONTAINER)
        assert code == 0
        result = _cli("stop", "--dir", str(directory))
        assert result.returncode == 0, result.stderr
        assert result.stdout == (
            f"stopped emulator service pid {pid} in {directory} "
            "(terminated 2 systems: stop-me, created)\n"
        )
    finally:
        t.close()
    again = _cli("stop", "--dir", str(directory))
    assert again.returncode == 0
    assert again.stdout == f"no emulator service runs in {directory}; nothing to stop\n"


def test_serve_in_an_unusable_directory_is_a_typed_error() -> None:
    result = _cli("serve", "--dir", "/proc/nope")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith("pyhcs: EmulatorError: cannot use /proc/nope as the emulator state")
