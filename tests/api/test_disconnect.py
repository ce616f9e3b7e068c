"""Losing the HCS service: every waiter gets ServiceDisconnectError, later calls fail typed,
nothing hangs and nothing leaks. Each case runs in a process of its own with a private
emulator service (`tests.api.private_service`), since a dropped connection cannot be undone in
the test session's process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent.parent


@pytest.mark.parametrize("mode", ["drop", "kill"])
def test_every_waiter_sees_the_service_go(tmp_path: Path, mode: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tests.api.private_service", str(tmp_path / "emulator"), mode],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=120,  # the child bounds each of its waits at 30 s
        check=False,
    )
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    pid = seen["pid"]

    def disconnect(operation: str, pid: int | None = None) -> list[object]:
        return ["ServiceDisconnectError", operation, "disconnect", pid]

    assert seen["hung"] == []
    assert seen["system.wait"] == disconnect("HcsWaitForComputeSystemExit")
    assert seen["process.wait"] == disconnect("HcsWaitForProcessExit", pid)
    assert seen["pending call"] == disconnect("HcsGetComputeSystemProperties")
    if mode == "drop":
        assert seen["cutting call"] == disconnect("HcsGetProcessProperties", pid)
    assert seen["events"] == ["SERVICE_DISCONNECT"]  # the iterator ends with it
    assert seen["exit_status"] == "None"  # a lost service is not an exit
    assert seen["later: start"] == disconnect("HcsStartComputeSystem")
    assert seen["later: process.terminate"] == disconnect("HcsTerminateProcess", pid)
    assert seen["later: create"][:3] == [
        "ServiceDisconnectError",
        "HcsCreateComputeSystem",
        "after",
    ]
    assert seen["later: open"][:3] == [
        "ServiceDisconnectError",
        "HcsOpenComputeSystem",
        "disconnect",
    ]
    assert seen["leaks"] is None
