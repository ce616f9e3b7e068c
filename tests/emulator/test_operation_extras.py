"""The newer operation calls: HcsCreateOperationWithNotifications, HcsAddResourceToOperation,
HcsGetOperationProperties, and the live-migration calls."""

from __future__ import annotations

import json
import os
from datetime import datetime
from typing import Any

import pytest

from pyhcs import hresult as hr
from pyhcs.emulator.client.table import Table
from pyhcs.raw.ffi import ffi
from tests.emulator.capi import WAIT_MS, CApi, Events, u32
from tests.emulator.conftest import CONTAINER

OPERATION_CALLBACK = 0x01000000
OPERATION_INFO = 0xC0000001
VM = {"SchemaVersion": {"Major": 2, "Minor": 1}, "Owner": "tests", "VirtualMachine": {}}


@pytest.fixture
def table(shared: Table) -> Table:
    """The tests of this module share one service: none stops it, sets its environment or
    counts service-wide state, and each uses its own system ids."""
    return shared


def properties_of(table: Table, c: CApi, op: Any, options: str | None = None) -> tuple[int, Any]:
    out = ffi.new("PWSTR *")
    code = u32(table.HcsGetOperationProperties(op, options or ffi.NULL, out))
    text = c.take(out)
    return code, (json.loads(text) if text else None)


def stamp(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def test_notifications_operation_reports_completion_as_an_event(table: Table, c: CApi) -> None:
    events = Events()
    op = table.HcsCreateOperationWithNotifications(0, ffi.cast("void *", 7), events.pointer)
    assert op != ffi.NULL
    assert table.client.counters()["callbacks"] == 1
    system = ffi.new("HCS_SYSTEM *")
    doc = json.dumps(CONTAINER)
    assert table.HcsCreateComputeSystem("notify-1", doc, op, ffi.NULL, system) == 0
    assert events.wait_for(OPERATION_CALLBACK) is None  # no EventData
    assert events.kinds() == [OPERATION_CALLBACK]  # no progress without the option
    assert events.items[0][2] == op  # HCS_EVENT.Operation is the operation
    assert u32(table.HcsWaitForOperationResult(op, WAIT_MS, ffi.NULL)) == 0
    table.HcsCloseOperation(op)
    table.HcsCloseComputeSystem(system[0])


def test_progress_updates_carry_operation_info(table: Table, c: CApi) -> None:
    system, code, _ = c.create("progress-1", CONTAINER)
    assert code == 0
    events = Events()
    op = table.HcsCreateOperationWithNotifications(1, ffi.NULL, events.pointer)
    assert table.HcsStartComputeSystem(system, op, ffi.NULL) == 0
    events.wait_for(OPERATION_CALLBACK)
    kinds = events.kinds()
    assert kinds == [OPERATION_INFO, OPERATION_INFO, OPERATION_CALLBACK]
    started = json.loads(events.items[0][1] or "{}")
    finished = json.loads(events.items[1][1] or "{}")
    assert started["Operation"] == "Start"
    assert "EndTimestamp" not in started
    assert stamp(finished["EndTimestamp"]) >= stamp(finished["StartTimestamp"])
    # A failing use reports its result in FailureInfo, through the same events.
    assert table.HcsStartComputeSystem(system, op, ffi.NULL) == 0
    with events.cond:
        assert events.cond.wait_for(lambda: len(events.items) == 6, 10)
    failed = json.loads(events.items[4][1] or "{}")
    assert failed["FailureInfo"]["Result"] == hr.to_signed(hr.HCS_E_INVALID_STATE)
    table.HcsCloseOperation(op)
    c.system_op("HcsTerminateComputeSystem", system)
    table.HcsCloseComputeSystem(system)


def test_notification_ops_are_refused_by_enable_operation_callbacks(table: Table, c: CApi) -> None:
    system, code, _ = c.create("notify-2", CONTAINER)
    assert code == 0
    handle_events = Events()
    assert table.HcsSetComputeSystemCallback(system, 1, ffi.NULL, handle_events.pointer) == 0
    events = Events()
    op = table.HcsCreateOperationWithNotifications(0, ffi.NULL, events.pointer)
    code = u32(table.HcsStartComputeSystem(system, op, ffi.NULL))
    assert code == hr.HCS_E_OPERATION_SYSTEM_CALLBACK_ALREADY_SET
    table.HcsCloseOperation(op)
    table.HcsCloseComputeSystem(system)


def test_operation_properties_follow_each_use(table: Table, c: CApi) -> None:
    op = table.HcsCreateOperation(ffi.NULL, ffi.NULL)
    assert properties_of(table, c, op) == (0, {"Operation": "None"})
    system = ffi.new("HCS_SYSTEM *")
    doc = json.dumps(CONTAINER)
    assert table.HcsCreateComputeSystem("opprops-1", doc, op, ffi.NULL, system) == 0
    assert c.wait(op)[0] == 0
    code, info = properties_of(table, c, op)
    assert code == 0
    assert info["Operation"] == "Construct"
    assert stamp(info["EndTimestamp"]) >= stamp(info["StartTimestamp"])
    assert "FailureInfo" not in info
    assert table.HcsPauseComputeSystem(system[0], op, ffi.NULL) == 0
    assert c.wait(op)[0] == hr.ERROR_NOT_SUPPORTED
    code, info = properties_of(table, c, op, "{}")
    assert info["Operation"] == "Pause"
    assert info["FailureInfo"] == {"Result": hr.to_signed(hr.ERROR_NOT_SUPPORTED)}
    for bad in ('{"Unknown": 1}', "[]", "{nope"):
        code, error = properties_of(table, c, op, bad)
        assert code == hr.HCS_E_INVALID_JSON
        assert error["Error"] == hr.to_signed(hr.HCS_E_INVALID_JSON)
    out = ffi.new("PWSTR *")
    assert u32(table.HcsGetOperationProperties(op, ffi.NULL, ffi.NULL)) == hr.E_POINTER
    stale = ffi.cast("HCS_OPERATION", 0x7FFF0)
    assert u32(table.HcsGetOperationProperties(stale, ffi.NULL, out)) == hr.E_HANDLE
    table.HcsCloseOperation(op)
    table.HcsCloseComputeSystem(system[0])


def test_resources_are_validated_and_recorded(table: Table, c: CApi, tmp_path: Any) -> None:
    op = table.HcsCreateOperation(ffi.NULL, ffi.NULL)
    fd = os.open(tmp_path / "job", os.O_RDWR | os.O_CREAT)
    handle = ffi.cast("HANDLE", fd)
    add = table.HcsAddResourceToOperation
    assert u32(add(op, 5, "hcs:/VirtualMachine/VmmemJob", handle)) == hr.E_INVALIDARG
    assert u32(add(op, 1, "VirtualMachine/VmmemJob", handle)) == hr.E_INVALIDARG
    assert u32(add(op, 1, ffi.NULL, handle)) == hr.E_INVALIDARG
    assert u32(add(op, 1, "hcs:/x", ffi.cast("HANDLE", 0x7FFFFF))) == hr.E_HANDLE
    assert properties_of(table, c, op)[1] == {"Operation": "None"}  # nothing recorded
    assert add(op, 1, "hcs:/VirtualMachine/VmmemJob", handle) == 0
    assert add(op, 2, "hcs:/VirtualMachine/WorkerJob", ffi.NULL) == 0
    info = properties_of(table, c, op)[1]
    assert info["Resources"] == [
        {"Type": "File", "Uri": "hcs:/VirtualMachine/VmmemJob"},
        {"Type": "Job", "Uri": "hcs:/VirtualMachine/WorkerJob"},
    ]
    os.close(fd)
    table.HcsCloseOperation(op)


def test_live_migration_is_refused_with_a_typed_error(table: Table, c: CApi) -> None:
    vm, code, _ = c.create("lm-vm", VM)
    assert code == 0
    assert c.system_op("HcsStartComputeSystem", vm) == (0, None)
    for function in (
        table.HcsInitializeLiveMigrationOnSource,
        table.HcsStartLiveMigrationOnSource,
        table.HcsStartLiveMigrationTransfer,
        table.HcsFinalizeLiveMigration,
    ):
        op = table.HcsCreateOperation(ffi.NULL, ffi.NULL)
        assert function(vm, op, ffi.NULL) == 0
        code, doc = c.wait(op)
        assert code == hr.ERROR_NOT_SUPPORTED, function
        assert doc is not None
        assert "not emulated" in json.loads(doc)["ErrorMessage"]
        assert table.HcsGetOperationType(op) == 19  # HcsOperationTypeLiveMigration
        table.HcsCloseOperation(op)
    assert c.system_op("HcsInitializeLiveMigrationOnSource", vm, "{nope")[0] == (
        hr.HCS_E_INVALID_JSON
    )
    assert c.system_op("HcsTerminateComputeSystem", vm) == (0, None)
    stopped = c.system_op("HcsInitializeLiveMigrationOnSource", vm)[0]
    assert stopped == hr.HCS_E_SYSTEM_ALREADY_STOPPED
    table.HcsCloseComputeSystem(vm)
