"""Operation calls around processes and completion callbacks: HcsSetOperationCallback,
HcsGetProcessFromOperation, HcsGetOperationResultAndProcessInfo, and the
VM access grants. Pending operations are held with ``Fault(hold=...)``, never by timing.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pyhcs import hresult as hr
from pyhcs.emulator.client.faults import Fault
from pyhcs.emulator.client.table import Table
from pyhcs.raw.ffi import ffi
from tests.emulator.capi import WAIT_MS, CApi, fd_of, read_all, u32
from tests.emulator.conftest import CONTAINER

#: A handle value no table ever hands out.
BOGUS = 0x7EADBEEF


@pytest.fixture
def c(shared: Table) -> CApi:
    return CApi(shared)


@pytest.fixture
def started(request: pytest.FixtureRequest, shared: Table, c: CApi) -> Iterator[Any]:
    """A started container of this test (unique id), terminated and closed afterwards."""
    system, code, _ = c.create(f"opq-{request.node.name}", CONTAINER)
    assert code == 0
    assert c.system_op("HcsStartComputeSystem", system) == (0, None)
    yield system
    c.system_op("HcsTerminateComputeSystem", system)
    shared.HcsCloseComputeSystem(system)


@pytest.fixture
def hold(shared: Table) -> Iterator[threading.Event]:
    """Released (and every fault cleared) after the test, even when it fails while holding."""
    event = threading.Event()
    yield event
    event.set()
    shared.client.faults.clear()


class Completions:
    """An HCS_OPERATION_COMPLETION that records (operation, context) and is waitable."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int]] = []
        self.done = threading.Event()
        self.pointer = ffi.callback("HCS_OPERATION_COMPLETION", self._on_complete)

    def _on_complete(self, op: Any, context: Any) -> None:
        key = int(ffi.cast("uintptr_t", op))
        self.calls.append((key, int(ffi.cast("uintptr_t", context))))
        self.done.set()


def key(handle: Any) -> int:
    return int(ffi.cast("uintptr_t", handle))


# -- HcsSetOperationCallback -------------------------------------------------------------------


def test_set_operation_callback_reports_completion_with_its_context(shared: Table, c: CApi) -> None:
    completions = Completions()
    op = shared.HcsCreateOperation(ffi.cast("void *", 1), ffi.NULL)
    assert shared.HcsSetOperationCallback(op, ffi.cast("void *", 42), completions.pointer) == 0
    # The callback's context replaces the one given at creation.
    assert key(shared.HcsGetOperationContext(op)) == 42
    system = ffi.new("HCS_SYSTEM *")
    doc = json.dumps(CONTAINER)
    assert shared.HcsCreateComputeSystem("opq-callback", doc, op, ffi.NULL, system) == 0
    assert completions.done.wait(10)
    assert shared.client.settle(10)
    assert completions.calls == [(key(op), 42)]
    assert u32(shared.HcsGetOperationResult(op, ffi.NULL)) == 0
    shared.HcsCloseOperation(op)
    shared.HcsCloseComputeSystem(system[0])


def test_set_operation_callback_to_null_removes_it(shared: Table, c: CApi) -> None:
    completions = Completions()
    op = shared.HcsCreateOperation(ffi.NULL, completions.pointer)
    assert shared.client.counters()["callbacks"] == 1
    assert shared.HcsSetOperationCallback(op, ffi.NULL, ffi.NULL) == 0
    assert shared.client.counters()["callbacks"] == 0
    assert shared.HcsEnumerateComputeSystems(ffi.NULL, op) == 0
    assert c.wait(op)[0] == 0
    assert shared.client.settle(10)
    assert completions.calls == []
    shared.HcsCloseOperation(op)


def test_set_operation_callback_errors(shared: Table) -> None:
    completions = Completions()
    bogus = ffi.cast("HCS_OPERATION", BOGUS)
    assert u32(shared.HcsSetOperationCallback(bogus, ffi.NULL, completions.pointer)) == (
        hr.E_HANDLE
    )
    assert u32(shared.HcsSetOperationCallback(ffi.NULL, ffi.NULL, completions.pointer)) == (
        hr.E_HANDLE
    )
    # A closed operation is no longer a handle.
    op = shared.HcsCreateOperation(ffi.NULL, ffi.NULL)
    shared.HcsCloseOperation(op)
    assert u32(shared.HcsSetOperationCallback(op, ffi.NULL, completions.pointer)) == hr.E_HANDLE
    assert completions.calls == []


# -- HcsGetProcessFromOperation ------------------------------------------------------------------


def test_process_from_operation_while_create_process_is_pending(
    shared: Table, c: CApi, started: Any, hold: threading.Event
) -> None:
    shared.client.faults.inject("HcsCreateProcess", Fault(hold=hold, count=1))
    op = shared.HcsCreateOperation(ffi.NULL, ffi.NULL)
    assert shared.HcsGetProcessFromOperation(op) == ffi.NULL  # not started yet
    process = ffi.new("HCS_PROCESS *")
    params = json.dumps({"CommandLine": "true"})
    assert shared.HcsCreateProcess(started, params, op, ffi.NULL, process) == 0
    assert u32(shared.HcsGetOperationResult(op, ffi.NULL)) == hr.HCS_E_OPERATION_PENDING
    # Held, it stays pending however long one waits (the hold used to be ignored for
    # HcsCreateProcess, which then completed within milliseconds).
    assert u32(shared.HcsWaitForOperationResult(op, 200, ffi.NULL)) == hr.HCS_E_OPERATION_TIMEOUT
    assert shared.HcsGetProcessFromOperation(op) == process[0]
    assert shared.HcsGetComputeSystemFromOperation(op) == started  # started on the system
    hold.set()
    assert c.wait(op) == (0, None)
    assert shared.HcsGetProcessFromOperation(op) == ffi.NULL  # only while pending
    assert c.wait_process(process[0])[1]["ExitCode"] == 0
    shared.HcsCloseOperation(op)
    shared.HcsCloseProcess(process[0])


def test_process_from_operation_of_a_pending_process_call(
    shared: Table, c: CApi, started: Any, hold: threading.Event
) -> None:
    process, code, _info, _ = c.spawn(started, {"CommandLine": "sleep 30"})
    assert code == 0
    shared.client.faults.inject("HcsTerminateProcess", Fault(hold=hold, count=1))
    op = shared.HcsCreateOperation(ffi.NULL, ffi.NULL)
    assert shared.HcsTerminateProcess(process, op, ffi.NULL) == 0
    assert shared.HcsGetProcessFromOperation(op) == process
    hold.set()
    assert c.wait(op) == (0, None)
    assert shared.HcsGetProcessFromOperation(op) == ffi.NULL
    # A system operation never names a process.
    assert shared.HcsGetComputeSystemProperties(started, op, ffi.NULL) == 0
    assert shared.HcsGetProcessFromOperation(op) == ffi.NULL
    assert c.wait(op)[0] == 0
    shared.HcsCloseOperation(op)
    assert c.wait_process(process)[0] == 0
    shared.HcsCloseProcess(process)


def test_process_from_operation_errors(shared: Table) -> None:
    assert shared.HcsGetProcessFromOperation(ffi.cast("HCS_OPERATION", BOGUS)) == ffi.NULL
    assert shared.HcsGetProcessFromOperation(ffi.NULL) == ffi.NULL
    op = shared.HcsCreateOperation(ffi.NULL, ffi.NULL)
    shared.HcsCloseOperation(op)
    assert shared.HcsGetProcessFromOperation(op) == ffi.NULL


# -- HcsGetOperationResultAndProcessInfo --------------------------------------------------------


def test_result_and_process_info_after_completion(shared: Table, c: CApi, started: Any) -> None:
    op = shared.HcsCreateOperation(ffi.NULL, ffi.NULL)
    process = ffi.new("HCS_PROCESS *")
    params = {"CommandLine": 'sh -c "echo out-$$"', "CreateStdOutPipe": True}
    assert shared.HcsCreateProcess(started, json.dumps(params), op, ffi.NULL, process) == 0
    # Wait without taking the information, then take it with the Get call.
    assert u32(shared.HcsWaitForOperationResult(op, WAIT_MS, ffi.NULL)) == 0
    info = ffi.new("HCS_PROCESS_INFORMATION *")
    doc = ffi.new("PWSTR *")
    assert shared.HcsGetOperationResultAndProcessInfo(op, info, doc) == 0
    assert c.take(doc) is None
    assert info.ProcessId > 0
    assert info.StdInput == ffi.NULL
    assert info.StdError == ffi.NULL
    os.fstat(fd_of(info.StdOutput))  # a real descriptor, owned by the caller
    assert read_all(info.StdOutput) == f"out-{info.ProcessId}\n".encode()
    assert shared.CloseHandle(info.StdOutput) == 1
    assert c.wait_process(process[0])[1]["ExitCode"] == 0
    shared.HcsCloseOperation(op)
    shared.HcsCloseProcess(process[0])


def test_result_and_process_info_of_a_failed_create(shared: Table, c: CApi, started: Any) -> None:
    op = shared.HcsCreateOperation(ffi.NULL, ffi.NULL)
    process = ffi.new("HCS_PROCESS *")
    params = json.dumps({"CommandLine": "no-such-program-xyz", "CreateStdOutPipe": True})
    assert shared.HcsCreateProcess(started, params, op, ffi.NULL, process) == 0
    assert u32(shared.HcsWaitForOperationResult(op, WAIT_MS, ffi.NULL)) == (hr.ERROR_FILE_NOT_FOUND)
    info = ffi.new("HCS_PROCESS_INFORMATION *")
    doc = ffi.new("PWSTR *")
    code = u32(shared.HcsGetOperationResultAndProcessInfo(op, info, doc))
    assert code == hr.ERROR_FILE_NOT_FOUND
    error = json.loads(c.take(doc) or "{}")
    assert u32(error["Error"]) == hr.ERROR_FILE_NOT_FOUND
    assert (info.ProcessId, info.StdOutput) == (0, ffi.NULL)  # untouched on failure
    assert shared.client.counters()["pipes"] == 0
    shared.HcsCloseOperation(op)
    shared.HcsCloseProcess(process[0])


def test_result_and_process_info_errors(
    shared: Table, c: CApi, started: Any, hold: threading.Event
) -> None:
    info = ffi.new("HCS_PROCESS_INFORMATION *")
    doc = ffi.new("PWSTR *")
    bogus = ffi.cast("HCS_OPERATION", BOGUS)
    assert u32(shared.HcsGetOperationResultAndProcessInfo(bogus, info, doc)) == hr.E_HANDLE
    op = shared.HcsCreateOperation(ffi.NULL, ffi.NULL)
    # An operation that never ran has no type yet, so it is not a process operation.
    assert u32(shared.HcsGetOperationResultAndProcessInfo(op, info, doc)) == hr.E_INVALIDARG
    # A pending create-process operation.
    shared.client.faults.inject("HcsCreateProcess", Fault(hold=hold, count=1))
    process = ffi.new("HCS_PROCESS *")
    params = json.dumps({"CommandLine": "true"})
    assert shared.HcsCreateProcess(started, params, op, ffi.NULL, process) == 0
    assert u32(shared.HcsGetOperationResultAndProcessInfo(op, info, doc)) == (
        hr.HCS_E_OPERATION_PENDING
    )
    hold.set()
    assert c.wait(op) == (0, None)
    assert c.wait_process(process[0])[0] == 0
    shared.HcsCloseProcess(process[0])
    # Reused for a system call, the same operation refuses to give process information.
    assert shared.HcsGetComputeSystemProperties(started, op, ffi.NULL) == 0
    assert c.wait(op)[0] == 0
    assert u32(shared.HcsGetOperationResultAndProcessInfo(op, info, doc)) == hr.E_INVALIDARG
    assert doc[0] == ffi.NULL
    assert info.ProcessId == 0
    shared.HcsCloseOperation(op)


# -- VM access grants ---------------------------------------------------------------------------


def test_vm_access_grants_and_revocations(shared: Table, tmp_path: Path) -> None:
    vmgs = tmp_path / "guest.vmgs"
    assert shared.HcsCreateEmptyGuestStateFile(str(vmgs)) == 0
    missing = str(tmp_path / "missing.vmgs")
    assert shared.HcsRevokeVmAccess("vm-1", str(vmgs)) == 0
    assert u32(shared.HcsRevokeVmAccess("vm-1", missing)) == hr.ERROR_FILE_NOT_FOUND
    assert shared.HcsGrantVmGroupAccess(str(vmgs)) == 0
    assert u32(shared.HcsGrantVmGroupAccess(missing)) == hr.ERROR_FILE_NOT_FOUND
    assert shared.HcsRevokeVmGroupAccess(str(vmgs)) == 0
    assert u32(shared.HcsRevokeVmGroupAccess(missing)) == hr.ERROR_FILE_NOT_FOUND
    # Directories are files to grant access to as well; the file itself is never changed.
    assert shared.HcsGrantVmGroupAccess(str(tmp_path)) == 0
    assert vmgs.read_bytes() == b""
