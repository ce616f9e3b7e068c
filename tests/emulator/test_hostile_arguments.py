"""A bad argument fails that one call with the HRESULT HCS would give, never the connection;
messages of any size up to the documented limit travel, larger ones fail that call alone."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pyhcs import hresult as hr
from pyhcs.emulator import protocol
from pyhcs.emulator.client.table import Table
from pyhcs.emulator.service import isolation
from pyhcs.raw.ffi import ffi
from tests.emulator.capi import CApi, u32
from tests.emulator.conftest import CONTAINER

LINUX_VM = {
    "SchemaVersion": {"Major": 2, "Minor": 2},
    "Owner": "tests",
    "VirtualMachine": {"Chipset": {"LinuxKernelDirect": {"KernelFilePath": "/boot/vmlinuz"}}},
}


def alive(table: Table, c: CApi, system: Any) -> None:
    """The connection still serves this client, and nothing reached C as an exception."""
    assert c.properties(system)["State"] == "Running"
    assert table.errors == []
    assert not table.client.connection.disconnected


@pytest.fixture
def system(table: Table, c: CApi) -> Iterator[Any]:
    handle, code, _ = c.create("hostile", {**CONTAINER, "ShouldTerminateOnLastHandleClosed": True})
    assert code == 0
    assert c.system_op("HcsStartComputeSystem", handle) == (0, None)
    yield handle
    table.HcsCloseComputeSystem(handle)


def spawn_code(c: CApi, system: Any, params: dict[str, Any]) -> int:
    out = ffi.new("HCS_PROCESS *")
    code, _doc = c.run(
        lambda op: c.t.HcsCreateProcess(system, json.dumps(params), op, ffi.NULL, out)
    )
    if out[0] != ffi.NULL:
        c.t.HcsCloseProcess(out[0])
    return code


def test_deeply_nested_json_is_invalid_json(table: Table, c: CApi, system: Any) -> None:
    deep = '{"Owner":"x","Container":{},"Zz":' + "[" * 1000 + "]" * 1000 + "}"
    handle, code, doc = c.create("deep", deep)
    assert code == hr.HCS_E_INVALID_JSON
    assert "deeper than" in json.loads(doc or "{}")["ErrorMessage"]
    table.HcsCloseComputeSystem(handle)
    modify = '{"ResourcePath":"Container/MappedDirectories","Settings":' + "[" * 5000 + "]" * 5000
    code, _doc = c.run(lambda op: table.HcsModifyComputeSystem(system, op, modify + "}", ffi.NULL))
    assert code == hr.HCS_E_INVALID_JSON
    # Answered in the client, which must not fail with a RecursionError either.
    op = table.HcsCreateOperation(ffi.NULL, ffi.NULL)
    out = ffi.new("PWSTR *")
    assert u32(table.HcsGetOperationProperties(op, "[" * 5000, out)) == hr.HCS_E_INVALID_JSON
    assert c.take(out) is not None
    table.HcsCloseOperation(op)
    alive(table, c, system)


@pytest.mark.parametrize("size", ["70000", "-1", "1e999", '"80"'])
def test_console_sizes_out_of_range(table: Table, c: CApi, system: Any, size: str) -> None:
    params = {"CommandLine": "sleep 30", "EmulateConsole": True, "CreateStdOutPipe": True}
    process, code, info, _ = c.spawn(system, params)
    assert code == 0
    request = '{"Operation":"ConsoleSize","ConsoleSize":{"Height":' + size + ',"Width":80}}'
    assert c.process_op("HcsModifyProcess", process, request)[0] == hr.HCS_E_INVALID_JSON
    good = json.dumps({"Operation": "ConsoleSize", "ConsoleSize": {"Height": 50, "Width": 80}})
    assert c.process_op("HcsModifyProcess", process, good) == (0, None)
    assert c.process_op("HcsTerminateProcess", process)[0] == 0
    c.wait_process(process)
    table.CloseHandle(info.StdOutput)
    table.HcsCloseProcess(process)
    alive(table, c, system)


def test_unknown_linux_signal_is_invalid(table: Table, c: CApi) -> None:
    vm, code, _ = c.create("linux-vm", LINUX_VM)
    assert code == 0
    assert c.system_op("HcsStartComputeSystem", vm) == (0, None)
    process, code, _info, _ = c.spawn(vm, {"CommandLine": "sleep 30"})
    assert code == 0
    for bad in (1000, 0, -9):
        doc = json.dumps({"Signal": bad})
        assert c.process_op("HcsSignalProcess", process, doc)[0] == hr.HCS_E_INVALID_JSON
    assert c.process_op("HcsSignalProcess", process, json.dumps({"Signal": 9})) == (0, None)
    assert c.wait_process(process)[1]["ExitCode"] == 128 + 9
    table.HcsCloseProcess(process)
    assert c.system_op("HcsTerminateComputeSystem", vm)[0] == 0
    table.HcsCloseComputeSystem(vm)


def test_process_creation_failures(table: Table, c: CApi, system: Any) -> None:
    long_component = "C:\\" + "d" * 300
    cases = [
        ({"CommandLine": "true", "WorkingDirectory": long_component}, "FILENAME_EXCED_RANGE"),
        ({"CommandLine": "echo " + "x" * 140_000}, "FILENAME_EXCED_RANGE"),  # E2BIG
        ({"CommandLine": "C:\\not-a-program.exe"}, "BAD_EXE_FORMAT"),
        ({"CommandLine": "no-such-program-anywhere"}, "FILE_NOT_FOUND"),
        ({"CommandLine": "C:\\missing\\prog.exe"}, "FILE_NOT_FOUND"),
    ]
    # A file with no executable format, executable bits and all, in the container's C:\.
    params = {"CommandLine": 'sh -c "echo hello > not-a-program.exe; chmod +x not-a-program.exe"'}
    process, code, _info, _ = c.spawn(system, params)
    assert code == 0
    assert c.wait_process(process)[1]["ExitCode"] == 0
    table.HcsCloseProcess(process)
    before = c.properties(system, {"PropertyTypes": ["ProcessList"]})
    for params, name in cases:
        assert spawn_code(c, system, params) == getattr(hr, f"ERROR_{name}"), params
    assert c.properties(system, {"PropertyTypes": ["ProcessList"]}) == before
    alive(table, c, system)


@pytest.mark.skipif(not isolation.privileged(), reason="needs root and unshare")
def test_missing_program_fails_alike_in_a_container_with_a_hostname(table: Table, c: CApi) -> None:
    doc = {**CONTAINER, "Container": {"GuestOs": {"HostName": "box"}}}
    system, code, _ = c.create("named", doc)
    assert code == 0
    assert c.system_op("HcsStartComputeSystem", system) == (0, None)
    code = spawn_code(c, system, {"CommandLine": "no-such-program-anywhere"})
    assert code == hr.ERROR_FILE_NOT_FOUND
    assert c.system_op("HcsTerminateComputeSystem", system)[0] == 0
    table.HcsCloseComputeSystem(system)


def test_overlong_paths_in_documents(table: Table, c: CApi, tmp_path: Path) -> None:
    storage = {**CONTAINER, "Container": {"Storage": {"Path": "/" + "p" * 5000}}}
    handle, code, _ = c.create("long-storage", storage)
    assert code == hr.ERROR_FILENAME_EXCED_RANGE
    table.HcsCloseComputeSystem(handle)
    mapped = [{"HostPath": str(tmp_path), "ContainerPath": "C:\\" + "m" * 5000}]
    doc = {**CONTAINER, "Container": {"MappedDirectories": mapped}}
    handle, code, _ = c.create("long-mapping", doc)
    assert code == 0
    assert c.system_op("HcsStartComputeSystem", handle)[0] == hr.ERROR_FILENAME_EXCED_RANGE
    assert c.properties(handle)["State"] == "Created"
    table.HcsCloseComputeSystem(handle)
    assert table.errors == []


# -- messages of any size --------------------------------------------------------------------


def test_large_documents_and_replies(table: Table, c: CApi) -> None:
    """A 300 KB create document and a reply of over 1 MB (5,000 systems): both need more than
    one socket record."""
    big, code, _ = c.create("big", {**CONTAINER, "Owner": "o" * 300_000})
    assert code == 0
    count = 5000
    handles = []
    for number in range(count):
        handle, code, _ = c.create(f"many-{number:05}", CONTAINER)
        assert code == 0
        handles.append(handle)
    code, listing = c.run(lambda op: table.HcsEnumerateComputeSystems(ffi.NULL, op))
    assert code == 0
    systems = json.loads(listing or "[]")
    assert len(systems) == count + 1
    assert len(listing or "") > 1_000_000
    assert next(s for s in systems if s["Id"] == "big")["Owner"] == "o" * 300_000
    for handle in [big, *handles]:
        assert c.system_op("HcsTerminateComputeSystem", handle)[0] == 0
        table.HcsCloseComputeSystem(handle)


def test_a_request_over_the_limit_fails_alone(table: Table, c: CApi, system: Any) -> None:
    owner = "o" * (protocol.MAX_MESSAGE + 1)
    handle, code, doc = c.create("too-big", {**CONTAINER, "Owner": owner})
    assert code == hr.E_INVALIDARG
    assert "limit" in json.loads(doc or "{}")["ErrorMessage"]
    table.HcsCloseComputeSystem(handle)
    assert u32(table.HcsOpenComputeSystem("too-big", 0, ffi.new("HCS_SYSTEM *"))) == (
        hr.HCS_E_SYSTEM_NOT_FOUND
    )
    alive(table, c, system)


def test_fragments_keep_messages_and_descriptors_together() -> None:
    left, right = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    read_end, write_end = os.pipe()
    try:
        big = {"id": 1, "doc": "x" * (3 * protocol.FRAGMENT + 17)}
        protocol.send(left, big, [write_end])
        with pytest.raises(protocol.MessageTooLargeError):
            protocol.send(left, {"doc": "y" * protocol.MAX_MESSAGE})
        protocol.send(left, {"id": 2})
        message, fds = protocol.receive(right)
        assert message == big
        assert len(fds) == 1
        os.write(fds[0], b"!")
        os.close(fds[0])
        assert os.read(read_end, 1) == b"!"
        assert protocol.receive(right) == ({"id": 2}, [])  # nothing of the refused one arrived
        left.sendall(b".not json")
        with pytest.raises(protocol.MalformedMessageError):
            protocol.receive(right)
        protocol.send(left, {"id": 3})
        assert protocol.receive(right) == ({"id": 3}, [])
    finally:
        for fd in (read_end, write_end):
            os.close(fd)
        left.close()
        right.close()
