"""Std streams ended by HcsModifyProcess, fresh handles from HcsGetProcessInfo, and the
Linux-flavoured systems (integer signals, 128+signal exit codes)."""

from __future__ import annotations

import json
import os
import signal
from typing import Any

import pytest

from pyhcs import hresult as hr
from pyhcs.emulator.client.table import Table
from pyhcs.raw.ffi import ffi
from tests.emulator.capi import WAIT_MS, CApi, fd_of, read_all, read_line, u32
from tests.emulator.conftest import CONTAINER

INVALID = 0xFFFFFFFFFFFFFFFF
LINUX_VM = {
    "SchemaVersion": {"Major": 2, "Minor": 2},  # LinuxKernelDirect is new in 2.2 (1903)
    "Owner": "tests",
    "VirtualMachine": {
        "Chipset": {"LinuxKernelDirect": {"KernelFilePath": "/boot/vmlinuz"}},
    },
}


@pytest.fixture
def table(shared: Table) -> Table:
    """The tests of this module share one service: none stops it, sets its environment or
    counts service-wide state, and each uses its own system ids."""
    return shared


def close_handle(c: CApi, process: Any, which: str) -> tuple[int, str | None]:
    request = {"Operation": "CloseHandle", "CloseHandle": {"Handle": which}}
    return c.process_op("HcsModifyProcess", process, json.dumps(request))


def test_close_stdin_gives_eof_while_the_client_still_holds_its_handle(
    table: Table, c: CApi, running: Any
) -> None:
    params = {"CommandLine": "cat", "CreateStdInPipe": True, "CreateStdOutPipe": True}
    process, code, info, _ = c.spawn(running, params)
    assert code == 0
    os.write(fd_of(info.StdInput), b"before close\n")
    assert close_handle(c, process, "StdIn") == (0, None)
    # cat drains what was written, then sees EOF although our stdin handle is still open.
    assert read_all(info.StdOutput) == b"before close\n"
    assert c.wait_process(process)[1]["ExitCode"] == 0
    with pytest.raises(BrokenPipeError):
        os.write(fd_of(info.StdInput), b"after exit\n")
    assert table.CloseHandle(info.StdInput) == 1
    assert table.CloseHandle(info.StdOutput) == 1
    table.HcsCloseProcess(process)


def test_close_stdout_ends_the_stream_for_both_sides(table: Table, c: CApi, running: Any) -> None:
    # The child writes until its stdout is closed, then reports the write error on stderr.
    script = (
        "import os, sys\n"
        "sys.stdout.write('first\\n'); sys.stdout.flush()\n"
        "sys.stdin.readline()\n"
        "try:\n"
        "    sys.stdout.write('second\\n'); sys.stdout.flush()\n"
        "except BrokenPipeError:\n"
        "    sys.stderr.write('stdout closed\\n'); sys.stderr.flush(); os._exit(3)\n"
    )
    params = {
        "CommandLine": f'python3 -c "{script}"',
        "CreateStdInPipe": True,
        "CreateStdOutPipe": True,
        "CreateStdErrPipe": True,
    }
    process, code, info, _ = c.spawn(running, params)
    assert code == 0, code
    assert read_line(info.StdOutput) == b"first\n"
    assert close_handle(c, process, "StdOut") == (0, None)
    assert read_all(info.StdOutput) == b""  # EOF for the reader
    os.write(fd_of(info.StdInput), b"go\n")
    assert read_all(info.StdError) == b"stdout closed\n"
    assert c.wait_process(process)[1]["ExitCode"] == 3
    for handle in (info.StdInput, info.StdOutput, info.StdError):
        assert table.CloseHandle(handle) == 1
    table.HcsCloseProcess(process)


def test_close_handle_all_and_bad_names(table: Table, c: CApi, running: Any) -> None:
    params = {"CommandLine": "cat", "CreateStdInPipe": True, "CreateStdOutPipe": True}
    process, code, info, _ = c.spawn(running, params)
    assert code == 0
    bad = {"Operation": "CloseHandle", "CloseHandle": {"Handle": "StdWhat"}}
    code, doc = c.process_op("HcsModifyProcess", process, json.dumps(bad))
    assert code == hr.HCS_E_INVALID_JSON
    assert doc is not None
    assert "CloseHandle" in json.loads(doc)["ErrorMessage"]
    assert close_handle(c, process, "All") == (0, None)
    assert read_all(info.StdOutput) == b""
    assert c.wait_process(process)[1]["ExitCode"] == 0
    # Once the process has exited, ModifyProcess fails (hcsshim skips CloseStdin then).
    assert close_handle(c, process, "StdIn")[0] == hr.HCS_E_PROCESS_ALREADY_STOPPED
    table.CloseHandle(info.StdInput)
    table.CloseHandle(info.StdOutput)
    table.HcsCloseProcess(process)


def get_process_info(table: Table, process: Any) -> tuple[int, Any]:
    op = table.HcsCreateOperation(ffi.NULL, ffi.NULL)
    try:
        assert table.HcsGetProcessInfo(process, op) == 0
        info = ffi.new("HCS_PROCESS_INFORMATION *")
        code = u32(table.HcsWaitForOperationResultAndProcessInfo(op, WAIT_MS, info, ffi.NULL))
        assert table.HcsGetOperationType(op) == 12  # HcsOperationTypeGetProcessInfo
        return code, info
    finally:
        table.HcsCloseOperation(op)


def test_get_process_info_hands_out_fresh_handles(table: Table, c: CApi, running: Any) -> None:
    params = {"CommandLine": "cat", "CreateStdInPipe": True, "CreateStdOutPipe": True}
    process, code, first, _ = c.spawn(running, params)
    assert code == 0
    code, info = get_process_info(table, process)
    assert code == 0
    assert info.ProcessId == first.ProcessId
    assert fd_of(info.StdInput) == INVALID  # stdin stays the creator's alone (EOF on close)
    assert fd_of(info.StdError) == INVALID  # never requested
    fresh = fd_of(info.StdOutput)
    assert fresh not in (0, INVALID, fd_of(first.StdOutput))
    assert table.client.counters()["pipes"] == 3
    os.write(fd_of(first.StdInput), b"via the fresh handle\n")
    assert read_line(fresh) == b"via the fresh handle\n"
    assert table.CloseHandle(first.StdInput) == 1  # EOF: cat exits
    assert c.wait_process(process)[1]["ExitCode"] == 0
    assert read_all(info.StdOutput) == b""
    for handle in (first.StdOutput, info.StdOutput):
        assert table.CloseHandle(handle) == 1
    # After the exit there is nothing to hand out any more.
    assert get_process_info(table, process)[0] == hr.HCS_E_PROCESS_ALREADY_STOPPED
    table.HcsCloseProcess(process)


def test_opened_process_gets_handles_from_get_process_info(
    table: Table, c: CApi, running: Any
) -> None:
    params = {"CommandLine": 'sh -c "read line; echo got $line"', "CreateStdInPipe": True}
    params["CreateStdOutPipe"] = True
    process, code, info, _ = c.spawn(running, params)
    assert code == 0
    opened = ffi.new("HCS_PROCESS *")
    assert table.HcsOpenProcess(running, info.ProcessId, 0x10000000, opened) == 0
    code, reopened = get_process_info(table, opened[0])
    assert code == 0
    os.write(fd_of(info.StdInput), b"it\n")
    assert read_all(reopened.StdOutput) == b"got it\n"
    for handle in (info.StdInput, info.StdOutput, reopened.StdOutput):
        assert table.CloseHandle(handle) == 1
    assert c.wait_process(opened[0])[1]["ExitCode"] == 0
    table.HcsCloseProcess(opened[0])
    table.HcsCloseProcess(process)


def test_windows_flavoured_systems_refuse_integer_signals(
    table: Table, c: CApi, running: Any
) -> None:
    assert c.properties(running)["RuntimeOsType"] == "Windows"
    process, code, _info, _ = c.spawn(running, {"CommandLine": "sleep 30"})
    assert code == 0
    code, doc = c.process_op("HcsSignalProcess", process, json.dumps({"Signal": 15}))
    assert code == hr.HCS_E_INVALID_JSON
    assert doc is not None
    assert c.process_op("HcsTerminateProcess", process)[0] == 0
    assert c.wait_process(process)[1]["ExitCode"] == 1  # TerminateProcess convention
    table.HcsCloseProcess(process)


def test_fields_newer_than_the_declared_schema_version_are_refused(table: Table, c: CApi) -> None:
    older = dict(LINUX_VM, SchemaVersion={"Major": 2, "Minor": 1})
    vm, code, doc = c.create("too-old", older)
    assert code == hr.HCS_E_INVALID_JSON
    assert doc is not None
    message = json.loads(doc)["ErrorMessage"]
    assert "$.VirtualMachine.Chipset.LinuxKernelDirect" in message
    table.HcsCloseComputeSystem(vm)
    assert c.open("too-old")[1] == hr.HCS_E_SYSTEM_NOT_FOUND


def test_linux_flavoured_vm_and_its_hosted_container(table: Table, c: CApi) -> None:
    vm, code, _ = c.create("linux-vm", LINUX_VM)
    assert code == 0
    assert c.properties(vm)["RuntimeOsType"] == "Linux"
    assert c.system_op("HcsStartComputeSystem", vm) == (0, None)
    guest_doc = dict(CONTAINER, HostingSystemId="linux-vm")
    guest, code, _ = c.create("linux-guest", guest_doc)
    assert code == 0
    assert c.system_op("HcsStartComputeSystem", guest) == (0, None)
    assert c.properties(guest)["RuntimeOsType"] == "Linux"

    script = "trap 'exit 42' USR1; echo ready; while :; do sleep 0.05; done"
    params = {"CommandLine": f'sh -c "{script}"', "CreateStdOutPipe": True}
    process, code, info, _ = c.spawn(guest, params)
    assert code == 0
    assert read_line(info.StdOutput) == b"ready\n"
    # Integer signals pass through to a Linux-flavoured system's processes.
    signal_doc = json.dumps({"Signal": int(signal.SIGUSR1)})
    assert c.process_op("HcsSignalProcess", process, signal_doc) == (0, None)
    assert c.wait_process(process)[1]["ExitCode"] == 42
    table.CloseHandle(info.StdOutput)
    table.HcsCloseProcess(process)

    # A terminated process of a Linux-flavoured system exits with 128 + SIGKILL.
    process, code, _info, _ = c.spawn(guest, {"CommandLine": "sleep 30"})
    assert code == 0
    for bad in (0, -1, True, "SIGTERM", 1.5):
        code, _doc = c.process_op("HcsSignalProcess", process, json.dumps({"Signal": bad}))
        assert code == hr.HCS_E_INVALID_JSON, bad
    assert c.process_op("HcsTerminateProcess", process)[0] == 0
    assert c.wait_process(process)[1]["ExitCode"] == 128 + signal.SIGKILL
    table.HcsCloseProcess(process)

    assert c.system_op("HcsTerminateComputeSystem", vm) == (0, None)
    table.HcsCloseComputeSystem(guest)
    table.HcsCloseComputeSystem(vm)
