"""Compute-system state machine and documents."""

from __future__ import annotations

import json
import os
import select
from typing import Any

import pytest

from pyhcs import hresult as hr
from pyhcs.emulator.client.table import Table
from pyhcs.raw.ffi import ffi
from tests.emulator.capi import CApi, Events, read_line
from tests.emulator.conftest import CONTAINER


@pytest.fixture
def table(shared: Table) -> Table:
    """The tests of this module share one service: none stops it, sets its environment or
    counts service-wide state, and each uses its own system ids."""
    return shared


def test_lifecycle_edges(table: Table, c: CApi) -> None:
    system, code, _ = c.create("sm-1", CONTAINER)
    assert code == 0
    props = c.properties(system)
    assert props["State"] == "Created"
    assert props["SystemType"] == "Container"
    assert props["Owner"] == "tests"
    process, code, _info, doc = c.spawn(system, {"CommandLine": "true"})
    assert code == hr.HCS_E_INVALID_STATE
    assert doc is not None
    assert json.loads(doc)["Error"] == hr.to_signed(hr.HCS_E_INVALID_STATE)
    table.HcsCloseProcess(process)
    assert c.system_op("HcsPauseComputeSystem", system)[0] == hr.ERROR_NOT_SUPPORTED
    assert c.system_op("HcsStartComputeSystem", system) == (0, None)
    assert c.system_op("HcsStartComputeSystem", system)[0] == hr.HCS_E_INVALID_STATE
    assert c.system_op("HcsResumeComputeSystem", system)[0] == hr.ERROR_NOT_SUPPORTED
    assert c.system_op("HcsSaveComputeSystem", system)[0] == hr.ERROR_NOT_SUPPORTED
    assert c.system_op("HcsShutDownComputeSystem", system) == (0, None)
    assert c.wait_system(system)[1]["ExitType"] == "GracefulExit"
    assert c.system_op("HcsTerminateComputeSystem", system)[0] == hr.HCS_E_SYSTEM_ALREADY_STOPPED
    assert c.system_op("HcsShutDownComputeSystem", system)[0] == hr.HCS_E_SYSTEM_ALREADY_STOPPED
    assert c.system_op("HcsStartComputeSystem", system)[0] == hr.HCS_E_SYSTEM_ALREADY_STOPPED
    props = c.properties(system)
    assert props["State"] == "Stopped"
    assert props["Stopped"] is True
    assert props["ExitType"] == "GracefulExit"
    table.HcsCloseComputeSystem(system)
    assert c.open("sm-1")[1] == hr.HCS_E_SYSTEM_NOT_FOUND
    again, code, _ = c.create("sm-1", CONTAINER)  # id reusable
    assert code == 0
    table.HcsCloseComputeSystem(again)


def test_duplicate_id_fails_through_the_operation(table: Table, c: CApi) -> None:
    first, code, _ = c.create("sm-2", CONTAINER)
    assert code == 0
    second, code, doc = c.create("sm-2", CONTAINER)
    assert code == hr.HCS_E_SYSTEM_ALREADY_EXISTS
    assert second != ffi.NULL  # handle written; caller must close it
    assert doc is not None
    assert json.loads(doc)["Error"] == hr.to_signed(code)
    table.HcsCloseComputeSystem(second)
    table.HcsCloseComputeSystem(first)


@pytest.mark.parametrize(
    ("document", "path"),
    [
        ("{", "$"),
        ("[]", "$"),
        (json.dumps({**CONTAINER, "Bogus": 1}), "$.Bogus"),
        (json.dumps({"Owner": "x"}), "$"),
        (json.dumps({**CONTAINER, "ShouldTerminateOnLastHandleClosed": "yes"}), "$.Should"),
        (
            json.dumps({**CONTAINER, "Container": {"Storage": {"Layers": 3}}}),
            "$.Container.Storage.Layers",
        ),
    ],
)
def test_invalid_json_is_rejected_without_state_change(
    table: Table, c: CApi, document: str, path: str
) -> None:
    system, code, doc = c.create("sm-3", document)
    assert code == hr.HCS_E_INVALID_JSON
    assert doc is not None
    error = json.loads(doc)
    assert error["Error"] == hr.to_signed(hr.HCS_E_INVALID_JSON)
    assert path in error["ErrorMessage"]
    table.HcsCloseComputeSystem(system)
    assert c.open("sm-3")[1] == hr.HCS_E_SYSTEM_NOT_FOUND


def test_enumerate_with_filters(table: Table, c: CApi) -> None:
    # The service is shared by this module: its other systems are listed too, with other owners.
    a, _, _ = c.create("en-a", {**CONTAINER, "Owner": "enum-a"})
    b, _, _ = c.create("en-b", {**CONTAINER, "Owner": "enum-b"})
    code, doc = c.run(lambda op: table.HcsEnumerateComputeSystems('{"Owners":["enum-b"]}', op))
    assert code == 0
    assert [s["Id"] for s in json.loads(doc or "[]")] == ["en-b"]
    query = '{"Owners":["enum-a","enum-b"]}'
    code, doc = c.run(lambda op: table.HcsEnumerateComputeSystems(query, op))
    assert sorted(s["Id"] for s in json.loads(doc or "[]")) == ["en-a", "en-b"]
    code, doc = c.run(lambda op: table.HcsEnumerateComputeSystems(ffi.NULL, op))
    assert {"en-a", "en-b"} <= {s["Id"] for s in json.loads(doc or "[]")}
    table.HcsCloseComputeSystem(a)
    table.HcsCloseComputeSystem(b)


def test_terminate_on_last_handle_close(table: Table, c: CApi) -> None:
    system, _, _ = c.create("sm-4", {**CONTAINER, "ShouldTerminateOnLastHandleClosed": True})
    c.system_op("HcsStartComputeSystem", system)
    process, code, info, _ = c.spawn(system, {"CommandLine": "sleep 30"})
    assert code == 0
    table.HcsCloseProcess(process)  # closing a process handle does not kill it
    pidfd = os.pidfd_open(info.ProcessId)
    watcher, code = c.open("sm-4")
    assert code == 0
    events = Events()
    assert table.HcsSetComputeSystemCallback(watcher, 0, ffi.NULL, events.pointer) == 0
    table.HcsCloseComputeSystem(system)
    assert c.properties(watcher)["State"] == "Running"  # not the last handle yet
    assert not select.select([pidfd], [], [], 0)[0]
    table.HcsCloseComputeSystem(watcher)
    # Last handle closed: the service terminates the system, which ends its processes.
    try:
        assert select.select([pidfd], [], [], 10)[0], "process survived its system"
    finally:
        os.close(pidfd)
    assert table.client.settle(10)  # the system's exit has reached this client, if at all
    assert events.kinds() == []  # closed handles get nothing


def test_statistics_and_process_list(table: Table, c: CApi) -> None:
    system, _, _ = c.create("sm-5", CONTAINER)
    c.system_op("HcsStartComputeSystem", system)
    # The process says it runs before it is measured: right at exec its memory is not mapped
    # yet, and a resident size of 0 would be the truth then.
    command = {"CommandLine": 'sh -c "echo ready; sleep 30"', "CreateStdOutPipe": True}
    process, code, info, _ = c.spawn(system, command)
    assert code == 0
    assert read_line(info.StdOutput) == b"ready\n"
    table.CloseHandle(info.StdOutput)
    props = c.properties(system, {"PropertyTypes": ["Statistics", "ProcessList"]})
    assert [p["ProcessId"] for p in props["ProcessList"]] == [info.ProcessId]
    assert props["ProcessList"][0]["ImageName"] == "sh"
    assert props["Statistics"]["Memory"]["MemoryUsagePrivateWorkingSetBytes"] > 0
    c.system_op("HcsTerminateComputeSystem", system)
    code, status = c.wait_process(process)
    assert code == 0
    assert status["Exited"] is True
    table.HcsCloseProcess(process)
    table.HcsCloseComputeSystem(system)


def test_wait_for_exit_timeout(table: Table, c: CApi) -> None:
    system, _, _ = c.create("sm-6", CONTAINER)
    assert c.wait_system(system, 10)[0] == hr.HCS_E_OPERATION_TIMEOUT
    table.HcsCloseComputeSystem(system)


def test_modify_is_reflected_and_validated(table: Table, c: CApi) -> None:
    system, _, _ = c.create("mod-1", CONTAINER)
    mapped = {"HostPath": "/srv/data", "ContainerPath": "C:\\data", "ReadOnly": True}

    def modify(request: dict[str, Any]) -> int:
        text = json.dumps(request)
        return c.run(lambda op: table.HcsModifyComputeSystem(system, op, text, ffi.NULL))[0]

    add = {"ResourcePath": "Container/MappedDirectories", "RequestType": "Add", "Settings": mapped}
    assert modify(add) == 0
    memory = {"ResourcePath": "Container/Memory/SizeInMB", "RequestType": "Update", "Settings": 512}
    assert modify(memory) == 0
    config = c.properties(system, {"PropertyTypes": ["Configuration"]})["Configuration"]
    assert config["Container"]["MappedDirectories"] == [mapped]
    assert config["Container"]["Memory"] == {"SizeInMB": 512}
    assert modify({**add, "RequestType": "Remove"}) == 0
    config = c.properties(system, {"PropertyTypes": ["Configuration"]})["Configuration"]
    assert config["Container"]["MappedDirectories"] == []
    assert modify({**add, "Bogus": 1}) == hr.HCS_E_INVALID_JSON
    assert modify({**add, "ResourcePath": "VirtualMachine/Devices"}) == hr.ERROR_NOT_SUPPORTED
    processor = {"ResourcePath": "Container/Processor", "RequestType": "Update"}
    assert modify({**processor, "Settings": {"Count": 2, "Maximum": 5000}}) == 0
    assert modify({**processor, "Settings": {"Count": "two"}}) == hr.HCS_E_INVALID_JSON
    config = c.properties(system, {"PropertyTypes": ["Configuration"]})["Configuration"]
    assert config["Container"]["Processor"] == {"Count": 2, "Maximum": 5000}
    c.system_op("HcsTerminateComputeSystem", system)
    assert modify(memory) == hr.HCS_E_SYSTEM_ALREADY_STOPPED
    table.HcsCloseComputeSystem(system)
