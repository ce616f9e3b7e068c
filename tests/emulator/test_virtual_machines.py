"""VirtualMachine systems and the containers they host."""

from __future__ import annotations

import json

import pytest

from pyhcs import hresult as hr
from pyhcs.emulator.client.table import Table
from pyhcs.raw.ffi import ffi
from tests.emulator import hostprocs
from tests.emulator.capi import CApi, Events
from tests.emulator.conftest import CONTAINER

VM = {"SchemaVersion": {"Major": 2, "Minor": 1}, "Owner": "tests", "VirtualMachine": {}}


@pytest.fixture
def table(shared: Table) -> Table:
    """The tests of this module share one service: none stops it, sets its environment or
    counts service-wide state, and each uses its own system ids."""
    return shared


def test_vm_pause_freezes_hosted_processes_and_stop_ends_them(table: Table, c: CApi) -> None:
    vm, code, _ = c.create("vm-1", VM)
    assert code == 0
    hosted_doc = {**CONTAINER, "HostingSystemId": "vm-1"}
    guest, code, _ = c.create("vm-1-c", hosted_doc)
    assert code == 0
    assert c.system_op("HcsStartComputeSystem", guest)[0] == hr.HCS_E_INVALID_STATE
    assert c.system_op("HcsSaveComputeSystem", vm)[0] == hr.HCS_E_INVALID_STATE
    assert c.system_op("HcsStartComputeSystem", vm) == (0, None)
    # The failed start left the guest in Created; start it now that its VM runs.
    assert c.system_op("HcsStartComputeSystem", guest) == (0, None)
    events = Events()
    process, code, info, _ = c.spawn(guest, {"CommandLine": "sleep 30"}, events)
    assert code == 0
    assert c.properties(guest)["HostingSystemId"] == "vm-1"
    assert c.system_op("HcsSaveComputeSystem", vm)[0] == hr.HCS_E_INVALID_STATE
    assert c.system_op("HcsPauseComputeSystem", vm) == (0, None)
    assert hostprocs.frozen(info.ProcessId)
    assert c.properties(vm)["State"] == "Paused"
    assert c.system_op("HcsPauseComputeSystem", vm)[0] == hr.HCS_E_INVALID_STATE
    assert c.system_op("HcsSaveComputeSystem", vm) == (0, None)
    assert c.system_op("HcsResumeComputeSystem", vm) == (0, None)
    assert not hostprocs.frozen(info.ProcessId)
    assert c.system_op("HcsResumeComputeSystem", vm)[0] == hr.HCS_E_INVALID_STATE
    guest_events = Events()
    assert table.HcsSetComputeSystemCallback(guest, 0, ffi.NULL, guest_events.pointer) == 0
    assert c.system_op("HcsTerminateComputeSystem", vm) == (0, None)
    assert json.loads(events.wait_for(0x10000) or "{}")["Exited"] is True
    assert json.loads(guest_events.wait_for(0x1) or "{}")["ExitType"] == "UnexpectedExit"
    assert c.properties(guest)["State"] == "Stopped"
    table.HcsCloseProcess(process)
    table.HcsCloseComputeSystem(guest)
    table.HcsCloseComputeSystem(vm)


def test_hosting_system_must_exist(table: Table, c: CApi) -> None:
    guest, code, _ = c.create("orphan", {**CONTAINER, "HostingSystemId": "nope"})
    assert code == hr.HCS_E_SYSTEM_NOT_FOUND
    table.HcsCloseComputeSystem(guest)


def test_crash_is_for_virtual_machines(table: Table, c: CApi) -> None:
    container, _, _ = c.create("crash-c", CONTAINER)
    c.system_op("HcsStartComputeSystem", container)
    assert c.system_op("HcsCrashComputeSystem", container)[0] == hr.ERROR_NOT_SUPPORTED
    vm, _, _ = c.create("crash-vm", VM)
    c.system_op("HcsStartComputeSystem", vm)
    assert c.system_op("HcsCrashComputeSystem", vm) == (0, None)
    assert c.wait_system(vm)[1]["ExitType"] == "UnexpectedExit"
    table.HcsCloseComputeSystem(vm)
    c.system_op("HcsTerminateComputeSystem", container)
    table.HcsCloseComputeSystem(container)


def test_hosted_system_document_runs_in_its_vm(table: Table, c: CApi) -> None:
    hosted = {
        "SchemaVersion": {"Major": 2, "Minor": 1},
        "Owner": "tests",
        "HostedSystem": {"SchemaVersion": {"Major": 2, "Minor": 1}, "Container": {}},
    }
    orphan, code, doc = c.create("hosted-orphan", hosted)
    assert code == hr.HCS_E_INVALID_JSON  # a HostedSystem needs its hosting VM
    assert doc is not None
    assert "$.HostingSystemId" in json.loads(doc)["ErrorMessage"]
    table.HcsCloseComputeSystem(orphan)
    assert c.open("hosted-orphan")[1] == hr.HCS_E_SYSTEM_NOT_FOUND

    vm, code, _ = c.create("host-vm", VM)
    assert code == 0
    assert c.system_op("HcsStartComputeSystem", vm) == (0, None)
    guest, code, _ = c.create("hosted-guest", {**hosted, "HostingSystemId": "host-vm"})
    assert code == 0
    assert c.system_op("HcsStartComputeSystem", guest) == (0, None)
    props = c.properties(guest)
    assert props["SystemType"] == "Container"
    assert props["HostingSystemId"] == "host-vm"
    memory = {"ResourcePath": "Container/Memory/SizeInMB", "RequestType": "Update", "Settings": 64}
    text = json.dumps(memory)
    assert c.run(lambda op: table.HcsModifyComputeSystem(guest, op, text, ffi.NULL)) == (0, None)
    config = c.properties(guest, {"PropertyTypes": ["Configuration"]})["Configuration"]
    assert config["HostedSystem"]["Container"]["Memory"] == {"SizeInMB": 64}
    assert "Container" not in config
    process, code, _info, _ = c.spawn(guest, {"CommandLine": "sleep 30"})
    assert code == 0
    assert c.system_op("HcsTerminateComputeSystem", vm) == (0, None)
    assert c.wait_process(process)[1]["Exited"] is True
    assert c.properties(guest)["State"] == "Stopped"
    table.HcsCloseProcess(process)
    table.HcsCloseComputeSystem(guest)
    table.HcsCloseComputeSystem(vm)


def test_vm_device_modifications_are_validated_and_reflected(table: Table, c: CApi) -> None:
    vm, code, _ = c.create("dev-vm", VM)
    assert code == 0
    assert c.system_op("HcsStartComputeSystem", vm) == (0, None)

    def modify(path: str, kind: str, settings: object) -> int:
        text = json.dumps({"ResourcePath": path, "RequestType": kind, "Settings": settings})
        return c.run(lambda op: table.HcsModifyComputeSystem(vm, op, text, ffi.NULL))[0]

    disk = {"Type": "VirtualDisk", "Path": "/var/lib/disk.vhdx", "ReadOnly": True}
    scsi = "VirtualMachine/Devices/Scsi/0/Attachments/1"
    adapter = {
        "EndpointId": "d6f5fd84-5d9c-4d2d-9f4b-2e3c8c8f0b11",
        "MacAddress": "00-15-5D-01-02-03",
    }
    nic = "VirtualMachine/Devices/NetworkAdapters/eth0"
    share = {"Name": "src", "Path": "/srv/src", "Port": 564, "AccessName": "src"}
    plan9 = "VirtualMachine/Devices/Plan9/Shares"
    smb = {"Name": "vsmb1", "Path": "/srv/vsmb"}
    vsmb = "VirtualMachine/Devices/VirtualSmb/Shares"
    assert modify(scsi, "Add", disk) == 0
    assert modify(nic, "Add", adapter) == 0
    assert modify(plan9, "Add", share) == 0
    assert modify(vsmb, "Add", smb) == 0
    assert modify("VirtualMachine/ComputeTopology/Memory/SizeInMB", "Update", 2048) == 0
    config = c.properties(vm, {"PropertyTypes": ["Configuration"]})["Configuration"]
    devices = config["VirtualMachine"]["Devices"]
    assert devices["Scsi"]["0"]["Attachments"]["1"] == disk
    assert devices["NetworkAdapters"]["eth0"] == adapter
    assert devices["Plan9"]["Shares"] == [share]
    assert devices["VirtualSmb"]["Shares"] == [smb]
    memory = c.properties(vm, {"PropertyTypes": ["Memory"]})["Memory"]
    assert memory["VirtualMachineMemory"]["AssignedMemory"] == 2048 * 256

    # Settings are checked against their schema definition; a bad one changes nothing.
    assert modify(scsi, "Add", {"Type": "Floppy"}) == hr.HCS_E_INVALID_JSON
    assert modify(nic, "Add", {"Bogus": 1}) == hr.HCS_E_INVALID_JSON
    assert modify("VirtualMachine/ComputeTopology/Memory/SizeInMB", "Update", "lots") == (
        hr.HCS_E_INVALID_JSON
    )
    assert modify(scsi, "Remove", None) == 0  # Settings are ignored on Remove
    assert modify(plan9, "Remove", share) == 0
    config = c.properties(vm, {"PropertyTypes": ["Configuration"]})["Configuration"]
    devices = config["VirtualMachine"]["Devices"]
    assert "1" not in devices["Scsi"]["0"]["Attachments"]
    assert devices["Plan9"]["Shares"] == []
    assert devices["NetworkAdapters"]["eth0"] == adapter
    assert c.system_op("HcsTerminateComputeSystem", vm) == (0, None)
    table.HcsCloseComputeSystem(vm)


def test_graceful_shutdown_needs_a_guest_connection(table: Table, c: CApi) -> None:
    # The Tutorial's VM has no guest connection, and its text says HcsShutDownComputeSystem
    # cannot be used on it: nothing in the guest can be asked to shut down.
    vm, code, _ = c.create("vm-noguest", VM)
    assert code == 0
    for state in ("Created", "Running", "Paused"):
        if state == "Running":
            assert c.system_op("HcsStartComputeSystem", vm) == (0, None)
        if state == "Paused":
            assert c.system_op("HcsPauseComputeSystem", vm) == (0, None)
        code, doc = c.system_op("HcsShutDownComputeSystem", vm)
        assert code == hr.HCS_E_SYSTEM_NOT_CONFIGURED_FOR_OPERATION, state
        assert doc is not None
        assert json.loads(doc)["Error"] == hr.to_signed(code)
        assert "GuestConnection" in json.loads(doc)["ErrorMessage"]
        assert c.properties(vm)["State"] == state  # refused: nothing changed
    # Terminating works without a guest.
    events = Events()
    assert table.HcsSetComputeSystemCallback(vm, 0, ffi.NULL, events.pointer) == 0
    assert c.system_op("HcsTerminateComputeSystem", vm) == (0, None)
    assert json.loads(events.wait_for(0x1) or "{}")["ExitType"] == "ForcedExit"
    assert c.system_op("HcsShutDownComputeSystem", vm)[0] == hr.HCS_E_SYSTEM_ALREADY_STOPPED
    table.HcsCloseComputeSystem(vm)

    # With a guest connection the same VM shuts down gracefully.
    guest_vm = {**VM, "VirtualMachine": {"GuestConnection": {"UseVsock": True}}}
    vm, code, _ = c.create("vm-guest", guest_vm)
    assert code == 0
    assert c.system_op("HcsStartComputeSystem", vm) == (0, None)
    assert c.system_op("HcsShutDownComputeSystem", vm) == (0, None)
    assert c.wait_system(vm)[1]["ExitType"] == "GracefulExit"
    table.HcsCloseComputeSystem(vm)
