"""HCS_OPERATION semantics."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest

from pyhcs import hresult as hr
from pyhcs.emulator.client.faults import Fault
from pyhcs.emulator.client.table import Table
from pyhcs.raw import cdefs
from pyhcs.raw.ffi import ffi
from tests.emulator.capi import CApi, Events, u32
from tests.emulator.conftest import CONTAINER


@pytest.fixture
def table(shared: Table) -> Table:
    """The tests of this module share one service: none stops it, sets its environment or
    counts service-wide state, and each uses its own system ids."""
    return shared


def test_unused_operation(table: Table) -> None:
    op = table.HcsCreateOperation(ffi.cast("void *", 1234), ffi.NULL)
    assert op != ffi.NULL
    assert table.HcsGetOperationType(op) == -1
    assert u32(table.HcsGetOperationResult(op, ffi.NULL)) == hr.HCS_E_OPERATION_NOT_STARTED
    assert u32(table.HcsWaitForOperationResult(op, 0, ffi.NULL)) == hr.HCS_E_OPERATION_NOT_STARTED
    assert int(ffi.cast("uintptr_t", table.HcsGetOperationContext(op))) == 1234
    assert table.HcsSetOperationContext(op, ffi.cast("void *", 99)) == 0
    assert int(ffi.cast("uintptr_t", table.HcsGetOperationContext(op))) == 99
    assert table.HcsGetComputeSystemFromOperation(op) == ffi.NULL
    other = table.HcsCreateOperation(ffi.NULL, ffi.NULL)
    assert table.HcsGetOperationId(op) != table.HcsGetOperationId(other)
    table.HcsCloseOperation(other)
    table.HcsCloseOperation(op)
    assert table.client.counters()["operations"] == 0


def test_hresults_are_sign_extended(table: Table) -> None:
    op = table.HcsCreateOperation(ffi.NULL, ffi.NULL)
    assert table.HcsGetOperationResult(op, ffi.NULL) == hr.to_signed(hr.HCS_E_OPERATION_NOT_STARTED)
    assert table.HcsGetOperationResult(op, ffi.NULL) < 0
    table.HcsCloseOperation(op)


def test_pending_timeout_then_reuse(table: Table, c: CApi) -> None:
    hold = threading.Event()  # the start request is not sent before hold.set()
    table.client.faults.inject("HcsStartComputeSystem", Fault(hold=hold, count=1))
    system, code, _ = c.create("op-1", CONTAINER)
    assert code == 0
    op = table.HcsCreateOperation(ffi.NULL, ffi.NULL)
    assert table.HcsStartComputeSystem(system, op, ffi.NULL) == 0
    assert table.HcsGetOperationType(op) == 2
    assert table.HcsGetComputeSystemFromOperation(op) == system
    assert u32(table.HcsGetOperationResult(op, ffi.NULL)) == hr.HCS_E_OPERATION_PENDING
    assert u32(table.HcsWaitForOperationResult(op, 1, ffi.NULL)) == hr.HCS_E_OPERATION_TIMEOUT
    # Reusing a pending operation is refused.
    assert u32(table.HcsPauseComputeSystem(system, op, ffi.NULL)) == (
        hr.HCS_E_OPERATION_ALREADY_STARTED
    )
    hold.set()
    assert c.wait(op) == (0, None)
    # Reuse after completion: the same op tracks the next call.
    assert table.HcsGetComputeSystemProperties(system, op, ffi.NULL) == 0
    code, doc = c.wait(op)
    assert code == 0
    assert doc is not None
    assert json.loads(doc)["State"] == "Running"
    assert table.HcsGetOperationType(op) == 9
    table.HcsCloseOperation(op)
    table.HcsCloseComputeSystem(system)


def test_completion_callback_runs_on_a_worker_thread(table: Table, c: CApi) -> None:
    seen: list[tuple[int, int, int]] = []
    done = threading.Event()
    caller = threading.get_ident()

    def completed_py(op: Any, context: Any) -> None:
        code = u32(table.HcsGetOperationResult(op, ffi.NULL))
        seen.append((threading.get_ident(), code, int(ffi.cast("uintptr_t", context))))
        table.HcsCloseOperation(op)  # legal inside the callback
        done.set()

    completed = ffi.callback("HCS_OPERATION_COMPLETION", completed_py)

    op = table.HcsCreateOperation(ffi.cast("void *", 7), completed)
    out = ffi.new("HCS_SYSTEM *")
    assert table.HcsCreateComputeSystem("op-2", json.dumps(CONTAINER), op, ffi.NULL, out) == 0
    assert done.wait(10)
    assert seen == [(seen[0][0], 0, 7)]
    assert seen[0][0] != caller
    assert table.client.counters()["operations"] == 0
    table.HcsCloseComputeSystem(out[0])


def test_close_while_pending_never_calls_back(table: Table, c: CApi) -> None:
    calls: list[int] = []

    def completed_py(op: Any, context: Any) -> None:
        calls.append(1)

    completed = ffi.callback("HCS_OPERATION_COMPLETION", completed_py)

    hold = threading.Event()
    table.client.faults.inject("HcsCreateComputeSystem", Fault(hold=hold, count=1))
    op = table.HcsCreateOperation(ffi.NULL, completed)
    out = ffi.new("HCS_SYSTEM *")
    assert table.HcsCreateComputeSystem("op-3", json.dumps(CONTAINER), op, ffi.NULL, out) == 0
    assert u32(table.HcsGetOperationResult(op, ffi.NULL)) == hr.HCS_E_OPERATION_PENDING
    table.HcsCloseOperation(op)
    hold.set()
    assert table.client.settle(10)
    # The request still ran: the system exists; the callback was never called.
    assert calls == []
    assert c.properties(out[0])["State"] == "Created"
    table.HcsCloseComputeSystem(out[0])


def test_cancel(table: Table, c: CApi) -> None:
    hold = threading.Event()
    table.client.faults.inject("HcsStartComputeSystem", Fault(hold=hold, count=1))
    system, _code, _ = c.create("op-4", CONTAINER)
    op = table.HcsCreateOperation(ffi.NULL, ffi.NULL)
    # Never used: nothing was started, so there is nothing to cancel (and the op stays usable).
    assert u32(table.HcsCancelOperation(op)) == hr.HCS_E_OPERATION_NOT_STARTED
    assert u32(table.HcsGetOperationResult(op, ffi.NULL)) == hr.HCS_E_OPERATION_NOT_STARTED
    assert table.HcsStartComputeSystem(system, op, ffi.NULL) == 0
    assert table.HcsCancelOperation(op) == 0
    assert c.wait(op)[0] == hr.HCS_E_OPERATION_ALREADY_CANCELLED
    # The request itself still reaches the service once released; the cancelled op keeps
    # its result.
    hold.set()
    assert table.client.settle(10)
    assert c.wait(op)[0] == hr.HCS_E_OPERATION_ALREADY_CANCELLED
    assert c.properties(system)["State"] == "Running"
    assert c.system_op("HcsTerminateComputeSystem", system) == (0, None)
    table.HcsCloseOperation(op)
    table.HcsCloseComputeSystem(system)


def test_cancel_from_another_thread_ends_a_waiting_thread(table: Table, c: CApi) -> None:
    # The waiting thread may be the one reading the socket (blocked in poll): a completion
    # that does not come from the socket must still end its wait at once, not at its timeout.
    hold = threading.Event()
    table.client.faults.inject("HcsStartComputeSystem", Fault(hold=hold, count=1))
    system, _code, _ = c.create("op-cancel-wait", CONTAINER)
    op = table.HcsCreateOperation(ffi.NULL, ffi.NULL)
    assert table.HcsStartComputeSystem(system, op, ffi.NULL) == 0
    results: list[tuple[int, str | None]] = []
    waiting = threading.Thread(target=lambda: results.append(c.wait(op, 60_000)))
    waiting.start()
    c.properties(system)  # a round trip of this thread while the other one waits
    assert table.HcsCancelOperation(op) == 0
    waiting.join(20)
    assert not waiting.is_alive()
    assert results[0][0] == hr.HCS_E_OPERATION_ALREADY_CANCELLED
    hold.set()
    assert table.client.settle(10)
    assert c.system_op("HcsTerminateComputeSystem", system) == (0, None)
    table.HcsCloseOperation(op)
    table.HcsCloseComputeSystem(system)


def test_many_threads_wait_at_once(table: Table, c: CApi) -> None:
    # Replies reach the right waiter whichever thread happens to read the socket.
    system, code, _ = c.create("op-many-waiters", CONTAINER)
    assert code == 0
    assert c.system_op("HcsStartComputeSystem", system) == (0, None)
    failures: list[str] = []

    def worker() -> None:
        for _ in range(30):
            state = c.properties(system)["State"]
            if state != "Running":
                failures.append(state)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not any(thread.is_alive() for thread in threads)
    assert failures == []
    assert c.system_op("HcsTerminateComputeSystem", system) == (0, None)
    table.HcsCloseComputeSystem(system)


def test_enable_operation_callbacks(table: Table, c: CApi) -> None:
    system, _code, _ = c.create("op-5", CONTAINER)
    events = Events()
    assert table.HcsSetComputeSystemCallback(system, 1, ffi.NULL, events.pointer) == 0
    assert u32(table.HcsSetComputeSystemCallback(system, 0, ffi.NULL, events.pointer)) == (
        hr.HCS_E_OPERATION_SYSTEM_CALLBACK_ALREADY_SET
    )

    def completed_py(op: Any, context: Any) -> None:
        return None

    completed = ffi.callback("HCS_OPERATION_COMPLETION", completed_py)

    with_cb = table.HcsCreateOperation(ffi.NULL, completed)
    assert u32(table.HcsStartComputeSystem(system, with_cb, ffi.NULL)) == (
        hr.HCS_E_OPERATION_SYSTEM_CALLBACK_ALREADY_SET
    )
    table.HcsCloseOperation(with_cb)
    op = table.HcsCreateOperation(ffi.NULL, ffi.NULL)
    assert table.HcsStartComputeSystem(system, op, ffi.NULL) == 0
    events.wait_for(0x1000000)
    assert events.items[0][2] == op
    table.HcsCloseOperation(op)
    table.HcsCloseComputeSystem(system)


def test_fault_injection_fails_through_the_operation(table: Table, c: CApi) -> None:
    doc = json.dumps({"Error": hr.to_signed(hr.E_OUTOFMEMORY), "ErrorMessage": "injected"})
    table.client.faults.inject(
        "HcsStartComputeSystem", Fault(hresult=hr.E_OUTOFMEMORY, document=doc, count=1)
    )
    system, _code, _ = c.create("op-6", CONTAINER)
    code, result = c.system_op("HcsStartComputeSystem", system)
    assert code == hr.E_OUTOFMEMORY
    assert result == doc
    assert c.system_op("HcsStartComputeSystem", system) == (0, None)
    table.HcsCloseComputeSystem(system)


def test_strings_are_tracked_and_bad_frees_reported(table: Table) -> None:
    bad_frees = table.client.counters()["bad_frees"]  # the client is shared by the module
    out = ffi.new("PWSTR *")
    assert table.HcsGetServiceProperties('{"PropertyTypes":["Basic"]}', out) == 0
    doc = json.loads(ffi.string(out[0]))
    assert doc["Properties"][0]["SupportedSchemaVersions"]
    assert table.client.counters()["strings"] == 1
    table.CoTaskMemFree(out[0])
    assert table.client.counters()["strings"] == 0
    assert table.LocalFree(out[0]) != ffi.NULL  # double free: refused and counted
    assert table.client.counters()["bad_frees"] == bad_frees + 1


def test_every_declared_function_is_implemented(table: Table) -> None:
    declared = set(cdefs.signatures())
    assert len([n for n in declared if n.startswith(("Hcs", "Hcn"))]) == 116
    assert declared - table.implemented == set()
