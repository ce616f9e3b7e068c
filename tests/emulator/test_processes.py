"""Real host processes in containers."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from pyhcs import hresult as hr
from pyhcs.emulator.client.faults import Fault
from pyhcs.emulator.client.table import Table
from pyhcs.emulator.service import cmdline
from pyhcs.emulator.service.computecore import system_dir_name
from pyhcs.raw.ffi import ffi
from tests.emulator.capi import CApi, Events, Journal, fd_of, read_all


@pytest.fixture
def table(shared: Table) -> Table:
    """The tests of this module share one service: none stops it, sets its environment or
    counts service-wide state, and each uses its own system ids."""
    return shared


def test_pipes_only_for_requested_streams(table: Table, c: CApi, running: Any) -> None:
    params = {
        "CommandLine": 'sh -c "cat; echo err >&2"',
        "CreateStdInPipe": True,
        "CreateStdErrPipe": True,
    }
    events = Events()
    process, code, info, _ = c.spawn(running, params, events)
    assert code == 0
    assert info.StdOutput == ffi.NULL
    assert info.StdInput != ffi.NULL
    assert info.StdError != ffi.NULL
    os.write(fd_of(info.StdInput), b"ignored\n")
    assert table.CloseHandle(info.StdInput) == 1  # EOF for cat
    assert read_all(info.StdError) == b"err\n"
    assert table.CloseHandle(info.StdError) == 1
    status = json.loads(events.wait_for(0x10000) or "{}")
    assert status["ExitCode"] == 0
    table.HcsCloseProcess(process)
    assert table.client.counters()["pipes"] == 0


def test_working_directory_environment_and_c_drive(table: Table, c: CApi, running: Any) -> None:
    params = {
        "CommandLine": 'sh -c "pwd; echo $GREETING"',
        "WorkingDirectory": "C:\\work",
        "Environment": {"GREETING": "hi there"},
        "CreateStdOutPipe": True,
    }
    root = table.client.directory / "systems" / system_dir_name("running-sys") / "root"
    (root / "work").mkdir(exist_ok=True)
    process, code, info, _ = c.spawn(running, params)
    assert code == 0
    out = read_all(info.StdOutput).decode().splitlines()
    table.CloseHandle(info.StdOutput)
    assert out == [str(root / "work"), "hi there"]
    assert c.wait_process(process)[1]["ExitCode"] == 0
    table.HcsCloseProcess(process)


def test_missing_program_fails_the_operation(table: Table, c: CApi, running: Any) -> None:
    process, code, _info, doc = c.spawn(running, {"CommandLine": "no-such-program-xyz"})
    assert code == hr.ERROR_FILE_NOT_FOUND
    assert doc is not None
    table.HcsCloseProcess(process)


def test_terminate_signal_and_exit_codes(table: Table, c: CApi, running: Any) -> None:
    process, code, info, _ = c.spawn(running, {"CommandLine": "sleep 30"})
    assert code == 0
    status = json.loads(c.process_op("HcsGetProcessProperties", process)[1] or "{}")
    assert status == {"ProcessId": info.ProcessId, "Exited": False}
    assert c.process_op("HcsTerminateProcess", process) == (0, None)
    code, status = c.wait_process(process)
    assert code == 0
    assert status["ExitCode"] == 1
    assert c.process_op("HcsTerminateProcess", process)[0] == hr.HCS_E_PROCESS_ALREADY_STOPPED
    table.HcsCloseProcess(process)

    process, code, _info, _ = c.spawn(running, {"CommandLine": "sleep 30"})
    assert c.process_op("HcsSignalProcess", process, '{"Signal":"CtrlC"}') == (0, None)
    assert c.wait_process(process)[1]["ExitCode"] == 128 + 2  # SIGINT
    assert c.process_op("HcsSignalProcess", process, '{"Signal":"CtrlC"}')[0] == (
        hr.HCS_E_PROCESS_ALREADY_STOPPED
    )
    table.HcsCloseProcess(process)


def test_open_process_by_pid(table: Table, c: CApi, running: Any) -> None:
    process, _code, info, _ = c.spawn(running, {"CommandLine": "sleep 30"})
    other = ffi.new("HCS_PROCESS *")
    assert table.HcsOpenProcess(running, info.ProcessId, 0, other) == 0
    events = Events()
    assert table.HcsSetProcessCallback(other[0], 0, ffi.NULL, events.pointer) == 0
    assert c.process_op("HcsTerminateProcess", process) == (0, None)
    assert json.loads(events.wait_for(0x10000) or "{}")["Exited"] is True
    table.HcsCloseProcess(other[0])
    table.HcsCloseProcess(process)
    assert (table.HcsOpenProcess(running, 999_999, 0, other) & 0xFFFFFFFF) == hr.ERROR_NOT_FOUND


def test_emulate_console_uses_a_pty(table: Table, c: CApi, running: Any) -> None:
    params = {
        "CommandLine": 'sh -c "test -t 1 && stty size"',
        "EmulateConsole": True,
        "CreateStdOutPipe": True,
        "ConsoleSize": [33, 101],
    }
    process, code, info, _ = c.spawn(running, params)
    assert code == 0
    data = read_all(info.StdOutput)  # a pty: EIO once its slave side is gone ends it
    table.CloseHandle(info.StdOutput)
    assert c.wait_process(process)[1]["ExitCode"] == 0
    assert b"33 101" in data
    table.HcsCloseProcess(process)


def test_system_stop_reports_process_exit_before_system_exit(
    table: Table, c: CApi, running: Any
) -> None:
    # One journal across both handles, appended inside the callbacks: the delivery order.
    journal = Journal()
    proc_events, sys_events = Events(journal, "process"), Events(journal, "system")
    watcher, _ = c.open("running-sys")
    assert table.HcsSetComputeSystemCallback(watcher, 0, ffi.NULL, sys_events.pointer) == 0
    process, _code, _info, _ = c.spawn(running, {"CommandLine": "sleep 30"}, proc_events)
    assert c.system_op("HcsTerminateComputeSystem", running) == (0, None)
    # The terminate op completed after SystemExited was queued; let every callback run.
    assert table.client.settle(10)
    assert journal.snapshot() == [("process", 0x10000), ("system", 0x1)]
    assert proc_events.threads == sys_events.threads  # same client worker thread, in order
    table.HcsCloseProcess(process)
    table.HcsCloseComputeSystem(watcher)


def test_events_are_not_replayed_to_a_late_callback(table: Table, c: CApi, running: Any) -> None:
    # Two handles to one process (cat, alive until its stdin closes); the exit reaches the
    # client once, for both handles at the same time: seen on the first, it is past for the
    # second, and a callback set on the second afterwards gets nothing.
    first = Events()
    params = {"CommandLine": "cat", "CreateStdInPipe": True}
    process, code, info, _ = c.spawn(running, params, first)
    assert code == 0
    second = ffi.new("HCS_PROCESS *")
    assert table.HcsOpenProcess(running, info.ProcessId, 0, second) == 0
    assert table.CloseHandle(info.StdInput) == 1  # EOF: cat exits
    assert json.loads(first.wait_for(0x10000) or "{}")["ExitCode"] == 0
    late = Events()
    assert table.HcsSetProcessCallback(second[0], 0, ffi.NULL, late.pointer) == 0
    assert table.client.settle(10)
    assert late.kinds() == []  # as in HCS: the exit happened before the callback existed
    table.HcsCloseProcess(second[0])
    table.HcsCloseProcess(process)


def test_gated_spawn_holds_a_fast_process_until_its_callback_is_set(
    table: Table, c: CApi, running: Any
) -> None:
    # Registering the callback is made slow; the process would be long gone without the gate.
    table.client.faults.inject("HcsSetProcessCallback", Fault(delay=0.3, count=1))
    events = Events()
    params = {"CommandLine": 'sh -c "echo $$; exit 3"', "CreateStdOutPipe": True}
    process, code, info, _ = c.spawn(running, params, events)
    assert code == 0
    assert info.StdInput == ffi.NULL  # the gate's pipe is not handed to the test
    assert read_all(info.StdOutput) == f"{info.ProcessId}\n".encode()  # exec kept the pid
    assert table.CloseHandle(info.StdOutput) == 1
    status = json.loads(events.wait_for(0x10000) or "{}")
    assert status["ExitCode"] == 3
    table.HcsCloseProcess(process)


@pytest.mark.parametrize(
    ("line", "argv"),
    [
        ("prog a b", ["prog", "a", "b"]),
        ('"C:\\Program Files\\x.exe" "a b" c', ["C:\\Program Files\\x.exe", "a b", "c"]),
        ('p a\\\\\\"b', ["p", 'a\\"b']),
        ('p "a\\\\" b', ["p", "a\\", "b"]),
        ("p a\\b", ["p", "a\\b"]),
        ('p "say ""hi"""', ["p", 'say "hi"']),
        ("  p   ", ["p"]),
    ],
)
def test_command_line_splitting(line: str, argv: list[str]) -> None:
    assert cmdline.split(line) == argv
