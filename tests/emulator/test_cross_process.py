"""The issue's C-level scenario, driven from separate client processes."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.emulator.capi import CApi
from tests.emulator.conftest import REPO, run_child


def test_scenario_in_a_separate_process(service_dir: Path) -> None:
    proc = run_child(service_dir, "scenario", "xp-1")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.splitlines()[-1])
    assert result["output"].startswith("hello from")
    assert result["stdin_null"] is True
    assert result["process_status"] == {
        "ProcessId": result["pid"],
        "Exited": True,
        "ExitCode": 42,
        "LastWaitResult": 0,
    }
    assert result["terminate"] == 0
    assert result["exit_status"]["ExitType"] == "ForcedExit"
    assert result["system_events"] == [0x1]
    counters = result["counters"]
    assert counters["systems"] == counters["processes"] == counters["operations"] == 0
    assert counters["strings"] == counters["pipes"] == counters["bad_frees"] == 0


def test_create_in_one_process_terminate_from_another(service_dir: Path, c: CApi) -> None:
    created = run_child(service_dir, "create", "xp-2")
    assert created.returncode == 0, created.stderr
    # The creator has exited; the system lives on in the service.
    system, code = c.open("xp-2")
    assert code == 0
    assert c.properties(system)["State"] == "Running"
    killed = run_child(service_dir, "terminate", "xp-2")
    assert killed.returncode == 0, killed.stderr
    result = json.loads(killed.stdout.splitlines()[-1])
    assert result["exit"]["ExitType"] == "ForcedExit"
    props = c.properties(system)
    assert props["State"] == "Stopped"
    assert props["Stopped"] is True
    c.t.HcsCloseComputeSystem(system)
    assert c.open("xp-2")[1] == 0x8037010E  # vanished with its last handle


def test_sigkilled_client_terminates_its_ephemeral_system(service_dir: Path, c: CApi) -> None:
    env = dict(os.environ, PYHCS_EMULATOR_DIR=str(service_dir), PYHCS_EMULATOR_AUTOSTART="0")
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.emulator.child", "hold", "xp-3"],
        cwd=REPO,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        host_pid = json.loads(line)["pid"]
        system, code = c.open("xp-3")
        assert code == 0
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(10)
    # Our handle keeps the system known, but the creator's death closed the last of *its*
    # handles; with ShouldTerminateOnLastHandleClosed only the last handle overall counts.
    props = c.properties(system)
    assert props["State"] == "Running"
    c.t.HcsCloseComputeSystem(system)
    # Now the last handle is gone: the service terminates the system and its process.
    pidfd = None
    with contextlib.suppress(ProcessLookupError):
        pidfd = os.pidfd_open(host_pid)
    if pidfd is not None:
        import select

        ready, _w, _x = select.select([pidfd], [], [], 10)
        os.close(pidfd)
        assert ready, "the container's process survived its system"
