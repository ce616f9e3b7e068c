"""The *InNamespace calls and HCS_CREATE_OPTIONS_1."""

from __future__ import annotations

import json
from typing import Any

from pyhcs import hresult as hr
from pyhcs.emulator.client.table import Table
from pyhcs.raw.ffi import ffi
from tests.emulator.capi import CApi, Events, u32
from tests.emulator.conftest import CONTAINER, run_child

GENERIC_ALL = 0x10000000


def create_in(
    table: Table, c: CApi, namespace: str, system_id: str, options: Any = ffi.NULL
) -> tuple[Any, int]:
    out = ffi.new("HCS_SYSTEM *")
    doc = json.dumps(CONTAINER)
    # The SDK declares the parameter as a pointer to the version tag that starts the struct.
    options = ffi.cast("HCS_CREATE_OPTIONS *", options)
    code, _doc = c.run(
        lambda op: table.HcsCreateComputeSystemInNamespace(
            namespace, system_id, doc, op, options, out
        )
    )
    return out[0], code


def enumerate_in(table: Table, c: CApi, namespace: str | None) -> list[str]:
    if namespace is None:
        code, doc = c.run(lambda op: table.HcsEnumerateComputeSystems(ffi.NULL, op))
    else:
        code, doc = c.run(
            lambda op: table.HcsEnumerateComputeSystemsInNamespace(namespace, ffi.NULL, op)
        )
    assert code == 0
    return sorted(s["Id"] for s in json.loads(doc or "[]"))


def test_namespaces_scope_open_and_enumerate(table: Table, c: CApi) -> None:
    tenant, code = create_in(table, c, "tenant-a", "ns-sys-a")
    assert code == 0
    plain, code, _ = c.create("ns-sys-default", CONTAINER)
    assert code == 0
    assert enumerate_in(table, c, "tenant-a") == ["ns-sys-a"]
    assert enumerate_in(table, c, None) == ["ns-sys-default"]
    assert enumerate_in(table, c, "tenant-b") == []
    assert enumerate_in(table, c, "") == ["ns-sys-default"]  # "" is the default namespace

    out = ffi.new("HCS_SYSTEM *")
    assert table.HcsOpenComputeSystemInNamespace("tenant-a", "ns-sys-a", GENERIC_ALL, out) == 0
    table.HcsCloseComputeSystem(out[0])
    code = u32(table.HcsOpenComputeSystemInNamespace("tenant-b", "ns-sys-a", GENERIC_ALL, out))
    assert code == hr.HCS_E_SYSTEM_NOT_FOUND
    assert c.open("ns-sys-a")[1] == hr.HCS_E_SYSTEM_NOT_FOUND
    # Ids are unique across namespaces.
    again, code = create_in(table, c, "tenant-b", "ns-sys-a")
    assert code == hr.HCS_E_SYSTEM_ALREADY_EXISTS
    table.HcsCloseComputeSystem(again)

    # Another client process sees the namespace too.
    child = run_child(table.client.directory, "open-in-namespace", "tenant-a", "ns-sys-a")
    assert child.returncode == 0, child.stderr
    assert json.loads(child.stdout)["open"] == 0

    assert u32(table.HcsOpenComputeSystemInNamespace(ffi.NULL, "x", GENERIC_ALL, out)) == (
        hr.E_INVALIDARG
    )
    table.HcsCloseComputeSystem(tenant)
    table.HcsCloseComputeSystem(plain)


def test_create_options_register_the_callback_with_the_creation(table: Table, c: CApi) -> None:
    events = Events()
    options = ffi.new("HCS_CREATE_OPTIONS_1 *")
    options.Version = 0x10000
    options.CallbackOptions = 0
    options.CallbackContext = ffi.NULL
    options.Callback = events.pointer
    system, code = create_in(table, c, "tenant-c", "ns-cb", options)
    assert code == 0
    assert table.client.counters()["callbacks"] == 1
    # The handle already has its callback: a second registration is refused...
    code = u32(table.HcsSetComputeSystemCallback(system, 0, ffi.NULL, events.pointer))
    assert code == hr.HCS_E_OPERATION_SYSTEM_CALLBACK_ALREADY_SET
    # ...and the exit arrives without any registration after the create.
    assert c.system_op("HcsTerminateComputeSystem", system) == (0, None)
    assert json.loads(events.wait_for(0x1) or "{}")["ExitType"] == "ForcedExit"
    table.HcsCloseComputeSystem(system)


def test_create_options_version_is_checked(table: Table, c: CApi) -> None:
    options = ffi.new("HCS_CREATE_OPTIONS_1 *")
    options.Version = 0x20000
    out = ffi.new("HCS_SYSTEM *")
    op = table.HcsCreateOperation(ffi.NULL, ffi.NULL)
    doc = json.dumps(CONTAINER)
    tagged = ffi.cast("HCS_CREATE_OPTIONS *", options)
    code = table.HcsCreateComputeSystemInNamespace("t", "bad-options", doc, op, tagged, out)
    assert u32(code) == hr.E_INVALIDARG
    assert out[0] == ffi.NULL  # nothing was created
    assert table.HcsGetOperationType(op) == -1  # the operation was not used
    table.HcsCloseOperation(op)
    assert enumerate_in(table, c, "t") == []
