"""``pyhcs demo``: one real container lifecycle, driven through the C API as a C program would.

Create a container, start it, run a process with a stdout pipe and read its output, wait for
its exit code, terminate the container, read its exit status, close every handle. Each step is
printed with the C call it made, so the demo doubles as a guided example of the raw API. On the
emulator (the default off Windows) the process is a real host process.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from pyhcs import errors, hresult
from pyhcs.raw import ffi, lib, out_wide, take_wide
from pyhcs.raw.handles import open_pipe

#: Every wait of the demo is bounded by this (milliseconds).
TIMEOUT_MS = 30_000
GENERIC_ALL = 0x10000000


def _wait(op: Any, call: str, system_id: str) -> str | None:
    document = out_wide()
    code = lib.HcsWaitForOperationResult(op, TIMEOUT_MS, document)
    text = take_wide(document[0])
    errors.check(code, operation=call, system_id=system_id, document=text)
    return text


def _run(call: str, system_id: str, start: Callable[[Any], int]) -> str | None:
    """Create an operation, start ``call`` with it, wait for the result, close the operation."""
    op = lib.HcsCreateOperation(ffi.NULL, ffi.NULL)
    if op == ffi.NULL:
        raise errors.HcsError("HcsCreateOperation returned NULL", hresult=hresult.E_OUTOFMEMORY)
    try:
        errors.check(start(op), operation=call, system_id=system_id)
        return _wait(op, call, system_id)
    finally:
        lib.HcsCloseOperation(op)


def run(command_line: str, system_id: str | None = None) -> Iterator[str]:
    """The lifecycle, step by step; yields the transcript lines."""
    system_id = system_id or f"pyhcs-demo-{uuid.uuid4()}"
    document = {
        "Owner": "pyhcs-demo",
        "SchemaVersion": {"Major": 2, "Minor": 1},
        "ShouldTerminateOnLastHandleClosed": True,
        "Container": {"GuestOs": {"HostName": "demo"}},
    }
    yield f"backend: {lib.backend}"
    system_out = ffi.new("HCS_SYSTEM *")
    try:
        _run(
            "HcsCreateComputeSystem",
            system_id,
            lambda op: lib.HcsCreateComputeSystem(
                system_id, json.dumps(document), op, ffi.NULL, system_out
            ),
        )
        system = system_out[0]
        yield f"HcsCreateComputeSystem({system_id!r}) -> S_OK"
        _run(
            "HcsStartComputeSystem",
            system_id,
            lambda op: lib.HcsStartComputeSystem(system, op, ffi.NULL),
        )
        yield "HcsStartComputeSystem -> S_OK"
        yield from _process(system, system_id, command_line)
        _run(
            "HcsTerminateComputeSystem",
            system_id,
            lambda op: lib.HcsTerminateComputeSystem(system, op, ffi.NULL),
        )
        yield "HcsTerminateComputeSystem -> S_OK"
        status = out_wide()
        code = lib.HcsWaitForComputeSystemExit(system, TIMEOUT_MS, status)
        text = take_wide(status[0])
        errors.check(code, operation="HcsWaitForComputeSystemExit", system_id=system_id)
        yield f"HcsWaitForComputeSystemExit -> SystemExitStatus {text}"
    finally:
        if system_out[0] != ffi.NULL:
            lib.HcsCloseComputeSystem(system_out[0])
            yield "HcsCloseComputeSystem: handle closed"


def _process(system: Any, system_id: str, command_line: str) -> Iterator[str]:
    parameters = {"CommandLine": command_line, "CreateStdOutPipe": True}
    process_out = ffi.new("HCS_PROCESS *")
    info = ffi.new("HCS_PROCESS_INFORMATION *")
    op = lib.HcsCreateOperation(ffi.NULL, ffi.NULL)
    try:
        errors.check(
            lib.HcsCreateProcess(system, json.dumps(parameters), op, ffi.NULL, process_out),
            operation="HcsCreateProcess",
            system_id=system_id,
        )
        document = out_wide()
        code = lib.HcsWaitForOperationResultAndProcessInfo(op, TIMEOUT_MS, info, document)
        text = take_wide(document[0])
    finally:
        lib.HcsCloseOperation(op)
    process = process_out[0]
    try:
        errors.check(code, operation="HcsCreateProcess", system_id=system_id, document=text)
        pid = int(info.ProcessId)
        yield f"HcsCreateProcess({command_line!r}) -> pid {pid}, stdout pipe"
        with open_pipe(info.StdOutput) as stdout:
            output = stdout.read()
        for line in output.decode("utf-8", "replace").splitlines():
            yield f"  stdout| {line}"
        exit_document = out_wide()
        code = lib.HcsWaitForProcessExit(process, TIMEOUT_MS, exit_document)
        text = take_wide(exit_document[0])
        errors.check(code, operation="HcsWaitForProcessExit", system_id=system_id, pid=pid)
        yield f"HcsWaitForProcessExit -> ProcessStatus {text}"
    finally:
        if process != ffi.NULL:
            lib.HcsCloseProcess(process)
            yield "HcsCloseProcess: handle closed"
