"""The official samples' JSON documents, verbatim (tests/data/official_samples), accepted by
the emulator through the C function table, each passed to the function MANIFEST.md names,
in the order the samples make their calls. The two documented doc errors are refused with
the error HCS gives for them."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from pyhcs import hresult as hr
from pyhcs.emulator.client.table import Table
from pyhcs.raw.ffi import ffi
from tests.emulator.capi import CApi
from tests.emulator.test_service_settings import modify, service_properties
from tests.test_official_samples import sample


def test_tutorial(table: Table, c: CApi) -> None:
    """Tutorial.md: one operation reused for Create, Start, GetProperties and Terminate; the
    memory resize on a new operation; shutdown impossible without a guest connection."""
    op = table.HcsCreateOperation(ffi.NULL, ffi.NULL)
    out = ffi.new("HCS_SYSTEM *")
    config = sample("tutorial_vm_configuration.json")
    assert table.HcsCreateComputeSystem("Sample", config, op, ffi.NULL, out) == 0
    assert c.wait(op) == (0, None)
    system = out[0]
    assert table.HcsStartComputeSystem(system, op, ffi.NULL) == 0
    assert c.wait(op) == (0, None)
    query = sample("tutorial_vm_query_memory.json")
    assert table.HcsGetComputeSystemProperties(system, op, query) == 0
    code, doc = c.wait(op)
    assert code == 0
    assert doc  # the sample treats an empty result as E_UNEXPECTED
    props = json.loads(doc)
    assert props["Id"] == "Sample"
    assert props["SystemType"] == "VirtualMachine"
    assert props["Memory"]["VirtualMachineMemory"]["AssignedMemory"] == 2048 * 256  # 4 KiB pages

    resize = sample("tutorial_modify_memory_size.json")
    assert c.run(lambda o: table.HcsModifyComputeSystem(system, o, resize, ffi.NULL)) == (0, None)
    configured = c.properties(system, {"PropertyTypes": ["Configuration"]})["Configuration"]
    memory = configured["VirtualMachine"]["ComputeTopology"]["Memory"]
    assert memory == {"Backing": "Virtual", "SizeInMB": 4096}

    code, doc = c.system_op("HcsShutDownComputeSystem", system)
    assert code == hr.HCS_E_SYSTEM_NOT_CONFIGURED_FOR_OPERATION
    assert table.HcsTerminateComputeSystem(system, op, ffi.NULL) == 0
    assert c.wait(op) == (0, None)
    assert c.properties(system)["State"] == "Stopped"
    table.HcsCloseOperation(op)
    table.HcsCloseComputeSystem(system)


def test_compute_system_sample_pause_save_resume(table: Table, c: CApi, service_dir: Path) -> None:
    """ComputeSystemSample.md: pause with its options, save with its options (a path that is
    relative on this host, so it lands in the service's state directory), resume with NULL."""
    system, code, _ = c.create("Sample", sample("empty_vm.json"))
    assert code == 0
    assert c.system_op("HcsStartComputeSystem", system) == (0, None)
    save = sample("compute_system_save_options.json")
    assert c.system_op("HcsSaveComputeSystem", system, save)[0] == hr.HCS_E_INVALID_STATE
    pause = sample("compute_system_pause_options.json")
    assert c.system_op("HcsPauseComputeSystem", system, pause) == (0, None)
    assert c.properties(system)["State"] == "Paused"
    assert c.system_op("HcsSaveComputeSystem", system, save) == (0, None)
    saved = service_dir / json.loads(save)["SaveStateFilePath"]
    assert json.loads(saved.read_text(encoding="utf-8"))["SystemId"] == "Sample"
    assert c.system_op("HcsResumeComputeSystem", system) == (0, None)
    assert c.properties(system)["State"] == "Running"
    assert c.system_op("HcsTerminateComputeSystem", system) == (0, None)
    table.HcsCloseComputeSystem(system)


@pytest.mark.parametrize(
    "name",
    [
        "empty_vm.json",
        "hist_vm_configuration_schema_test_path.json",
        "hist_hcssample_config_template.json",
        "hist_jsonsample_vm_filled.json",
    ],
)
def test_create_documents_are_accepted(shared: Table, name: str) -> None:
    c = CApi(shared)
    system_id = name.removesuffix(".json")
    system, code, doc = c.create(system_id, sample(name))
    assert (code, doc) == (0, None)
    props = c.properties(system, {"PropertyTypes": ["Configuration"]})
    assert props["Configuration"] == json.loads(sample(name))
    assert props["State"] == "Created"
    # Every one sets ShouldTerminateOnLastHandleClosed: closing the handle ends the system.
    shared.HcsCloseComputeSystem(system)
    again, code = c.open(system_id)
    if code == 0:  # the termination the close started is still under way: see it end
        assert c.wait_system(again)[0] == 0
        shared.HcsCloseComputeSystem(again)
    assert c.open(system_id)[1] == hr.HCS_E_SYSTEM_NOT_FOUND


def test_container_document_is_valid_but_its_invented_paths_are_missing(shared: Table) -> None:
    # The container template of HcsCreateComputeSystemJsonSample.md, filled with invented
    # paths: the document passes validation, and the create then fails as HCS's does on a
    # storage folder that does not exist (not as invalid JSON).
    c = CApi(shared)
    system, code, doc = c.create(
        "container-sample", sample("hist_jsonsample_container_filled.json")
    )
    assert code == hr.ERROR_PATH_NOT_FOUND
    assert doc is not None
    assert "Volume{2b4d6f8a" in json.loads(doc)["ErrorMessage"]
    shared.HcsCloseComputeSystem(system)


def test_service_sample(table: Table, c: CApi) -> None:
    """ServiceSample.md: the Memory property query; the CPU group request with a real GUID
    accepted, with the placeholder "GUID" refused as invalid JSON naming the field."""
    code, props = service_properties(table, c, sample("service_property_query_memory.json"))
    assert code == 0
    [memory] = props["Properties"]
    assert memory["TotalPhysicalBytes"] > 0
    assert 0 <= memory["TotalUsage"] <= memory["TotalPhysicalBytes"]

    code, error = modify(table, c, sample("service_modify_cpugroup_create.json"))
    assert code == hr.HCS_E_INVALID_JSON
    assert "GroupId" in error["ErrorMessage"]
    assert "'GUID'" in error["ErrorMessage"]
    request = sample("service_modify_cpugroup_create_substituted.json")
    if (os.cpu_count() or 1) < 2:
        pytest.skip("the sample's CPU group needs logical processors 0 and 1")
    assert modify(table, c, request) == (0, None)
    code, props = service_properties(table, c, {"PropertyTypes": ["CpuGroup"]})
    assert code == 0
    [group] = props["Properties"][0]["CpuGroups"]
    assert group["GroupId"] == json.loads(request)["Settings"]["OperationDetails"]["GroupId"]
    assert group["Affinity"] == {"LogicalProcessorCount": 2, "LogicalProcessors": [0, 1]}


def test_virtual_smb_request_with_a_file_path_is_refused(table: Table, c: CApi) -> None:
    """The 2020 Tutorial's VSMB request names a host directory as ResourcePath (a doc error;
    shares live at VirtualMachine/Devices/VirtualSmb/Shares): not a resource of the VM."""
    system, code, _ = c.create("Sample", sample("tutorial_vm_configuration.json"))
    assert code == 0
    request = sample("hist_modify_virtualsmb_share.json")
    code, doc = c.run(lambda o: table.HcsModifyComputeSystem(system, o, request, ffi.NULL))
    assert code == hr.ERROR_NOT_SUPPORTED
    assert doc is not None
    assert "c:\\\\HCS_Test\\\\VirtualSMB" in json.loads(doc)["ErrorMessage"]
    # The same share at its documented resource path is accepted.
    fixed: dict[str, Any] = dict(
        json.loads(request), ResourcePath="VirtualMachine/Devices/VirtualSmb/Shares"
    )
    assert c.run(
        lambda o: table.HcsModifyComputeSystem(system, o, json.dumps(fixed), ffi.NULL)
    ) == (0, None)
    table.HcsCloseComputeSystem(system)
