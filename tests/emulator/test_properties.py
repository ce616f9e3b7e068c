"""HcsGetComputeSystemProperties: the query is validated strictly, every property type of the
schema is answered from the live system."""

from __future__ import annotations

import json
import re
import time
from datetime import datetime
from typing import Any

import pytest

from pyhcs import hresult as hr
from pyhcs.emulator.client.table import Table
from pyhcs.raw.ffi import ffi
from tests.emulator.capi import CApi, read_line
from tests.emulator.conftest import CONTAINER

GUID = re.compile(r"^[0-9a-f]{8}-([0-9a-f]{4}-){3}[0-9a-f]{12}$")
VM = {
    "SchemaVersion": {"Major": 2, "Minor": 1},
    "Owner": "tests",
    "VirtualMachine": {
        "ComputeTopology": {"Memory": {"SizeInMB": 512}, "Processor": {"Count": 2}},
        "Devices": {
            "SharedMemory": {
                "Regions": [
                    {"SectionName": "first", "StartOffset": 0, "Length": 4096},
                    {"SectionName": "second", "StartOffset": 0, "Length": 8192},
                ]
            }
        },
        "GuestConnection": {"UseVsock": True},
    },
}


@pytest.fixture
def table(shared: Table) -> Table:
    """The tests of this module share one service: none stops it, sets its environment or
    counts service-wide state, and each uses its own system ids."""
    return shared


def query_code(c: CApi, system: Any, query: str) -> tuple[int, str | None]:
    return c.system_op("HcsGetComputeSystemProperties", system, query)


def parse_time(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def test_basic_properties_carry_a_stable_runtime_id(table: Table, c: CApi, running: Any) -> None:
    other, code, _ = c.create("other-sys", CONTAINER)
    assert code == 0
    first = c.properties(running)
    assert GUID.match(first["RuntimeId"])
    assert c.properties(running)["RuntimeId"] == first["RuntimeId"]
    assert c.properties(other)["RuntimeId"] != first["RuntimeId"]
    assert {"Id", "SystemType", "Owner", "State", "RuntimeOsType"} <= set(first)
    # SystemGUID (hcsshim's Properties.SystemGUID, in no public Swagger) is that same id.
    assert (
        c.properties(running, {"PropertyTypes": ["SystemGUID"]})["SystemGUID"]
        == (first["RuntimeId"])
    )
    table.HcsCloseComputeSystem(other)


@pytest.mark.parametrize(
    ("query", "path"),
    [
        ({"PropertyTypes": ["Statistics", "Bogus"]}, "$.PropertyTypes[1]"),
        ({"PropertyTypes": [7]}, "$.PropertyTypes[0]"),
        ({"PropertyTypes": "Statistics"}, "$.PropertyTypes"),
        ({"PropertyTypes": [], "Extra": 1}, "Extra"),
        ({"Queries": []}, "Queries"),
    ],
)
def test_bad_queries_are_invalid_json_naming_the_path(
    c: CApi, running: Any, query: dict[str, Any], path: str
) -> None:
    code, doc = query_code(c, running, json.dumps(query))
    assert code == hr.HCS_E_INVALID_JSON
    assert doc is not None
    assert path in json.loads(doc)["ErrorMessage"]
    assert c.properties(running)["State"] == "Running"  # nothing changed


def test_process_list_and_statistics_are_measured(table: Table, c: CApi, running: Any) -> None:
    script = (
        "import sys\n"
        "with open('written.bin', 'wb') as f: f.write(bytes(1 << 20))\n"
        "print('ready', flush=True)\n"
        "sys.stdin.read()\n"
    )
    params = {
        "CommandLine": f'python3 -c "{script}"',
        "CreateStdInPipe": True,
        "CreateStdOutPipe": True,
    }
    before = time.time()
    process, code, info, _ = c.spawn(running, params)
    assert code == 0
    assert read_line(info.StdOutput) == b"ready\n"
    props = c.properties(running, {"PropertyTypes": ["ProcessList", "Statistics"]})
    [entry] = props["ProcessList"]
    assert entry["ProcessId"] == info.ProcessId
    assert entry["ImageName"] == "python3"
    assert before - 1 <= parse_time(entry["CreateTimestamp"]) <= time.time() + 1
    assert entry["MemoryWorkingSetPrivateBytes"] > 0
    stats = props["Statistics"]
    assert stats["Storage"]["WriteSizeBytes"] >= 1 << 20
    assert stats["Memory"]["MemoryUsagePrivateWorkingSetBytes"] > 0
    assert stats["Processor"]["TotalRuntime100ns"] >= stats["Processor"]["RuntimeUser100ns"]
    assert parse_time(stats["ContainerStartTime"]) <= parse_time(stats["Timestamp"])
    assert stats["Uptime100ns"] > 0
    table.CloseHandle(info.StdInput)  # EOF: the process exits
    assert c.wait_process(process)[1]["ExitCode"] == 0
    table.CloseHandle(info.StdOutput)
    table.HcsCloseProcess(process)
    props = c.properties(running, {"PropertyTypes": ["ProcessList", "Statistics"]})
    assert props["ProcessList"] == []
    assert props["Statistics"]["Storage"]["WriteSizeBytes"] == 0


def test_virtual_machine_property_types(table: Table, c: CApi) -> None:
    vm, code, _ = c.create("props-vm", VM)
    assert code == 0
    assert c.system_op("HcsStartComputeSystem", vm) == (0, None)
    everything = ["Memory", "SharedMemoryRegion", "GuestConnection", "TerminateOnLastHandleClosed"]
    props = c.properties(vm, {"PropertyTypes": everything})
    memory = props["Memory"]
    assert memory["VirtualMachineMemory"]["AssignedMemory"] == 512 * 256  # 4 KiB pages
    assert memory["VirtualNodes"][0]["VirtualProcessorCount"] == 2
    regions = props["SharedMemoryRegionInfo"]
    assert [r["SectionName"] for r in regions] == ["first", "second"]
    assert regions[1]["GuestPhysicalAddress"] - regions[0]["GuestPhysicalAddress"] == 4096
    assert props["GuestConnectionInfo"]["SupportedSchemaVersions"]
    assert props["TerminateOnLastHandleClosed"] is False

    # A memory resize is reflected in later queries.
    resize = {
        "ResourcePath": "VirtualMachine/ComputeTopology/Memory/SizeInMB",
        "RequestType": "Update",
        "Settings": 1024,
    }
    text = json.dumps(resize)
    assert c.run(lambda op: table.HcsModifyComputeSystem(vm, op, text, ffi.NULL)) == (0, None)
    props = c.properties(vm, {"PropertyTypes": ["Memory"]})
    assert props["Memory"]["VirtualMachineMemory"]["AssignedMemory"] == 1024 * 256
    assert c.system_op("HcsTerminateComputeSystem", vm) == (0, None)
    table.HcsCloseComputeSystem(vm)


def test_container_has_no_vm_properties_and_queries_answer_per_name(c: CApi, running: Any) -> None:
    props = c.properties(running, {"PropertyTypes": ["Memory", "GuestConnection"]})
    assert "Memory" not in props
    assert "GuestConnectionInfo" not in props
    props = c.properties(running, {"Queries": {"Memory": {}, "ProcessList": {}, "Nope": {}}})
    responses = props["PropertyResponses"]
    assert responses["ProcessList"] == {"Response": []}
    for name in ("Memory", "Nope"):
        error = responses[name]["Error"]
        assert error["Error"] == hr.to_signed(hr.ERROR_NOT_SUPPORTED)
        assert name in error["ErrorMessage"]
