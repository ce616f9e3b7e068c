"""Service-wide calls: HcsGetServiceProperties, HcsModifyServiceSettings, and saved states read
by HcsGetProcessorCompatibilityFromSavedState."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

import pytest

from pyhcs import hresult as hr
from pyhcs.emulator.client.table import Table
from pyhcs.raw.ffi import ffi
from tests.emulator.capi import CApi, u32
from tests.emulator.conftest import CONTAINER, run_child

VM = {"SchemaVersion": {"Major": 2, "Minor": 1}, "Owner": "tests", "VirtualMachine": {}}


def service_properties(table: Table, c: CApi, query: Any) -> tuple[int, Any]:
    out = ffi.new("PWSTR *")
    text = query if query is None or isinstance(query, str) else json.dumps(query)
    code = u32(table.HcsGetServiceProperties(text if text is not None else ffi.NULL, out))
    result = c.take(out)
    return code, (json.loads(result) if result else None)


def modify(table: Table, c: CApi, request: Any) -> tuple[int, Any]:
    out = ffi.new("PWSTR *")
    text = request if isinstance(request, str) else json.dumps(request)
    code = u32(table.HcsModifyServiceSettings(text, out))
    result = c.take(out)
    return code, (json.loads(result) if result else None)


def cpu_group(operation: str, **details: Any) -> dict[str, Any]:
    return {
        "PropertyType": "CpuGroup",
        "Settings": {"Operation": operation, "OperationDetails": details},
    }


def test_basic_properties_and_schema_versions(table: Table, c: CApi) -> None:
    for query in (None, {"PropertyTypes": ["Basic"]}):
        code, props = service_properties(table, c, query)
        assert code == 0
        assert props["Properties"] == [{"SupportedSchemaVersions": [{"Major": 2, "Minor": 6}]}]
    # A document declaring a newer schema than the service speaks is refused.
    newer = dict(CONTAINER, SchemaVersion={"Major": 2, "Minor": 7})
    system, code, doc = c.create("too-new", newer)
    assert code == hr.HCS_E_INVALID_JSON
    assert doc is not None
    assert "$.SchemaVersion" in json.loads(doc)["ErrorMessage"]
    table.HcsCloseComputeSystem(system)


def test_processor_topology_is_the_hosts(table: Table, c: CApi) -> None:
    code, props = service_properties(table, c, {"PropertyTypes": ["ProcessorTopology"]})
    assert code == 0
    [topology] = props["Properties"]
    assert topology["LogicalProcessorCount"] == os.cpu_count()
    assert [p["LpIndex"] for p in topology["LogicalProcessors"]] == list(range(os.cpu_count() or 0))
    code, props = service_properties(table, c, {"PropertyQueries": {"ProcessorCapabilities": {}}})
    assert code == 0
    response = props["PropertyResponses"]["ProcessorCapabilities"]["Response"]
    assert response["LogicalProcessorCount"] == os.cpu_count()


@pytest.mark.parametrize(
    "query",
    ['{"PropertyTypes": ["Nope"]}', '{"PropertyTypes": "Basic"}', "{nope", '{"X": 1}', "[]"],
)
def test_bad_service_queries(shared: Table, query: str) -> None:
    table, c = shared, CApi(shared)  # a service shared by the tests that change nothing
    code, error = service_properties(table, c, query)
    assert code == hr.HCS_E_INVALID_JSON
    assert error["Error"] == hr.to_signed(hr.HCS_E_INVALID_JSON)


def test_cpu_groups_are_host_state_seen_by_every_client(table: Table, c: CApi) -> None:
    group = str(uuid.uuid4())
    assert modify(
        table,
        c,
        cpu_group("CreateGroup", GroupId=group, LogicalProcessorCount=1, LogicalProcessors=[0]),
    ) == (0, None)
    code, error = modify(
        table,
        c,
        cpu_group("CreateGroup", GroupId=group, LogicalProcessorCount=1, LogicalProcessors=[0]),
    )
    assert code == hr.ERROR_ALREADY_EXISTS
    assert error["Error"] == hr.to_signed(code)
    other = str(uuid.uuid4())
    code, _ = modify(
        table,
        c,
        cpu_group("CreateGroup", GroupId=other, LogicalProcessorCount=1, LogicalProcessors=[0]),
    )
    assert code == hr.ERROR_ALREADY_EXISTS  # processor 0 belongs to the first group
    code, _ = modify(
        table,
        c,
        cpu_group("CreateGroup", GroupId=other, LogicalProcessorCount=1, LogicalProcessors=[999]),
    )
    assert code == hr.E_INVALIDARG
    set_property = cpu_group("SetProperty", GroupId=group, PropertyCode=1, PropertyValue=50)
    assert modify(table, c, set_property) == (0, None)

    child = run_child(table.client.directory, "service-properties", "CpuGroup")
    assert child.returncode == 0, child.stderr
    [groups] = json.loads(child.stdout)["Properties"]
    [seen] = groups["CpuGroups"]
    assert seen["GroupId"] == group
    assert seen["Affinity"] == {"LogicalProcessorCount": 1, "LogicalProcessors": [0]}
    assert seen["GroupProperties"] == [{"PropertyCode": 1, "PropertyValue": 50}]

    assert modify(table, c, cpu_group("DeleteGroup", GroupId=group)) == (0, None)
    assert modify(table, c, cpu_group("DeleteGroup", GroupId=group))[0] == hr.ERROR_NOT_FOUND
    code, props = service_properties(table, c, {"PropertyTypes": ["CpuGroup"]})
    assert props["Properties"] == [{"CpuGroups": []}]


def test_credential_guard_instances(table: Table, c: CApi) -> None:
    add = {
        "PropertyType": "ContainerCredentialGuard",
        "Settings": {
            "Operation": "AddInstance",
            "OperationDetails": {"Id": "ccg-1", "CredentialSpec": "{}", "Transport": "LRPC"},
        },
    }
    assert modify(table, c, add) == (0, None)
    assert modify(table, c, add)[0] == hr.ERROR_ALREADY_EXISTS
    code, props = service_properties(table, c, {"PropertyTypes": ["ContainerCredentialGuard"]})
    assert code == 0
    [info] = props["Properties"]
    assert [i["Id"] for i in info["Instances"]] == ["ccg-1"]
    assert info["Instances"][0]["CredentialGuard"]["Transport"] == "LRPC"
    remove = {
        "PropertyType": "ContainerCredentialGuard",
        "Settings": {"Operation": "RemoveInstance", "OperationDetails": {"Id": "ccg-1"}},
    }
    assert modify(table, c, remove) == (0, None)
    assert modify(table, c, remove)[0] == hr.ERROR_NOT_FOUND


@pytest.mark.parametrize(
    "request_text",
    [
        "{nope",
        '{"PropertyType": "Bogus", "Settings": {}}',
        '{"PropertyType": "CpuGroup"}',
        '{"PropertyType": "CpuGroup",'
        ' "Settings": {"Operation": "Explode", "OperationDetails": {}}}',
        '{"PropertyType": "CpuGroup", "Settings": {"Operation": "DeleteGroup",'
        ' "OperationDetails": {"GroupId": "not-a-guid"}}}',
    ],
)
def test_bad_settings_change_nothing(shared: Table, request_text: str) -> None:
    # A service shared by the tests that change nothing: no CPU group is ever made in it.
    table, c = shared, CApi(shared)
    code, error = modify(table, c, request_text)
    assert code == hr.HCS_E_INVALID_JSON
    assert error["Error"] == hr.to_signed(hr.HCS_E_INVALID_JSON)
    assert service_properties(table, c, {"PropertyTypes": ["CpuGroup"]})[1]["Properties"] == [
        {"CpuGroups": []}
    ]


def compatibility(table: Table, c: CApi, path: str) -> tuple[int, Any]:
    out = ffi.new("PCWSTR *")
    code = u32(table.HcsGetProcessorCompatibilityFromSavedState(path, out))
    text = None
    if out[0] != ffi.NULL:
        text = str(ffi.string(out[0]))
        assert table.LocalFree(ffi.cast("HLOCAL", out[0])) == ffi.NULL
    return code, (json.loads(text) if text else None)


def test_save_to_file_and_processor_compatibility(table: Table, c: CApi, tmp_path: Path) -> None:
    vm, code, _ = c.create("save-vm", VM)
    assert code == 0
    assert c.system_op("HcsStartComputeSystem", vm) == (0, None)
    assert c.system_op("HcsPauseComputeSystem", vm) == (0, None)
    target = tmp_path / "state.vmrs"
    options = json.dumps({"SaveType": "ToFile", "SaveStateFilePath": str(target)})
    assert c.system_op("HcsSaveComputeSystem", vm, options) == (0, None)
    assert c.properties(vm)["State"] == "Paused"
    assert c.system_op("HcsSaveComputeSystem", vm, options)[0] == hr.ERROR_ALREADY_EXISTS
    code, requirements = compatibility(table, c, str(target))
    assert code == 0
    assert requirements["LogicalProcessorCount"] == os.cpu_count()
    assert isinstance(requirements["ProcessorFeatures"], list)
    assert compatibility(table, c, str(tmp_path / "missing.vmrs"))[0] == hr.ERROR_FILE_NOT_FOUND
    (tmp_path / "junk.vmrs").write_text("not a saved state")
    assert compatibility(table, c, str(tmp_path / "junk.vmrs"))[0] == hr.ERROR_INVALID_DATA
    bad = json.dumps({"SaveType": "Sideways"})
    assert c.system_op("HcsSaveComputeSystem", vm, bad)[0] == hr.HCS_E_INVALID_JSON
    as_template = json.dumps({"SaveType": "AsTemplate"})
    assert c.system_op("HcsSaveComputeSystem", vm, as_template) == (0, None)
    assert c.properties(vm)["State"] == "SavedAsTemplate"
    assert c.system_op("HcsResumeComputeSystem", vm)[0] == hr.HCS_E_INVALID_STATE
    assert c.system_op("HcsTerminateComputeSystem", vm) == (0, None)
    table.HcsCloseComputeSystem(vm)
