"""The ``pyhcs`` command, run as a user runs it: a subprocess, ``python -m pyhcs`` from this tree.

Not the ``pyhcs`` console script on PATH: it may belong to another checkout, and these tests
must exercise the code beside them.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pyhcs import hresult
from pyhcs.raw import cdefs, constants

REPO = Path(__file__).resolve().parent.parent


def _pyhcs(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pyhcs", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_tour_shows_the_whole_surface() -> None:
    result = _pyhcs("tour")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for name in cdefs.exports():
        assert re.search(rf"\b{name}\(", out), name
    for name, value in constants().items():
        assert f"{name} = {value}" in out, name
    for info in hresult.KNOWN.values():
        assert info.name in out
    assert (
        "Functions (116 HCS functions + 3 Windows helpers: LocalFree, CloseHandle, "
        "CoTaskMemFree; by DLL)" in out
    )
    assert "computecore.dll (59)" in out
    assert "computestorage.dll (14)" in out
    assert "computenetwork.dll (43)" in out
    assert "struct HCS_EVENT:" in out


def test_tour_lists_callback_types_and_typedef_structs() -> None:
    out = _pyhcs("tour", "types").stdout
    callbacks = out.split("== Callback types (")[1].split("\n\n")[0]
    assert callbacks.startswith("4)")
    for name in (
        "HCS_OPERATION_COMPLETION",
        "HCS_EVENT_CALLBACK",
        "HCS_NOTIFICATION_CALLBACK",
        "HCN_NOTIFICATION_CALLBACK",
    ):
        assert f"  {name}: void(*)(" in callbacks, name
    structs = out.split("== Structs (")[1].split("== Callback types")[0]
    assert "HCS_PROCESS_INFORMATION (typedef struct {...}): " in structs
    assert "HCS_CREATE_OPTIONS_1 (typedef struct {...}): " in structs
    assert "DWORD ProcessId" in structs or "unsigned long ProcessId" in structs


def test_tour_sections() -> None:
    result = _pyhcs("tour", "errors")
    assert result.returncode == 0, result.stderr
    assert "HCS_E_INVALID_JSON" in result.stdout
    assert "Functions" not in result.stdout


@pytest.mark.parametrize("args", [("tour", "nonsense"), ("frobnicate",), ()])
def test_bad_usage_exits_2_with_a_message(args: tuple[str, ...]) -> None:
    result = _pyhcs(*args)
    assert result.returncode == 2
    assert "usage: pyhcs" in result.stderr


def test_version() -> None:
    result = _pyhcs("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("pyhcs ")


def test_demo_runs_a_real_container_on_the_emulator(tmp_path: Path) -> None:
    env = {**os.environ, "PYHCS_BACKEND": "emulator", "PYHCS_EMULATOR_DIR": str(tmp_path / "svc")}
    command = 'sh -c "echo pid $$ says hi; exit 5"'
    try:
        result = subprocess.run(
            [sys.executable, "-m", "pyhcs", "demo", "--command-line", command],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        subprocess.run(
            [sys.executable, "-m", "pyhcs", "emulator", "stop", "--dir", str(tmp_path / "svc")],
            env=env,
            capture_output=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "backend: emulator"
    pid = int(next(line for line in lines if "-> pid" in line).split("-> pid ")[1].split(",")[0])
    assert f"  stdout| pid {pid} says hi" in lines
    status = json.loads(
        next(line for line in lines if "ProcessStatus" in line).split("ProcessStatus ")[1]
    )
    assert status == {"ProcessId": pid, "Exited": True, "ExitCode": 5, "LastWaitResult": 0}
    exit_status = json.loads(
        next(line for line in lines if "SystemExitStatus" in line).split("SystemExitStatus ")[1]
    )
    assert exit_status["ExitType"] == "ForcedExit"
    assert lines[-1] == "HcsCloseComputeSystem: handle closed"


def _one_line_error(result: subprocess.CompletedProcess[str], cls: str) -> str:
    """The run failed with exactly one line on stderr naming the typed error: no traceback."""
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"pyhcs: {cls}: "), lines[0]
    return lines[0]


def test_unusable_state_dir_is_a_typed_one_line_error() -> None:
    env = {**os.environ, "PYHCS_BACKEND": "emulator", "PYHCS_EMULATOR_DIR": "/proc/nope"}
    line = _one_line_error(_pyhcs("demo", env=env), "EmulatorError")
    assert "/proc/nope" in line
    assert "hint: set PYHCS_EMULATOR_DIR" in line


def test_autostart_off_hints_at_serve_not_windows(tmp_path: Path) -> None:
    directory = tmp_path / "none"
    env = {
        **os.environ,
        "PYHCS_BACKEND": "emulator",
        "PYHCS_EMULATOR_DIR": str(directory),
        "PYHCS_EMULATOR_AUTOSTART": "0",
    }
    line = _one_line_error(_pyhcs("demo", env=env), "EmulatorError")
    assert f"hint: start one with 'pyhcs emulator serve --dir {directory}'" in line
    assert "reboot" not in line
    assert "Windows" not in line


@pytest.mark.skipif(sys.platform == "win32", reason="the native backend works on Windows")
def test_native_backend_off_windows_says_to_use_the_emulator() -> None:
    env = {**os.environ, "PYHCS_BACKEND": "native"}
    line = _one_line_error(_pyhcs("demo", env=env), "DllNotFoundError")
    assert "the native backend needs Windows" in line
    assert "unset PYHCS_BACKEND" in line
    assert "reboot" not in line
    assert "optional feature" not in line


@pytest.mark.parametrize("args", [("tour", "backend"), ("tour",), ("demo",)])
def test_bogus_backend_fails_the_command(args: tuple[str, ...]) -> None:
    env = {**os.environ, "PYHCS_BACKEND": "bogus"}
    line = _one_line_error(_pyhcs(*args, env=env), "InvalidArgumentError")
    assert "PYHCS_BACKEND='bogus' is not a backend" in line
