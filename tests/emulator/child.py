"""A separate client process for the cross-process tests: ``python -m tests.emulator.child CMD``.

Talks to the service named by PYHCS_EMULATOR_DIR through the process-wide emulator backend, at
the C level, and prints one JSON line with what it saw.
"""

from __future__ import annotations

import json
import sys
import uuid
from typing import Any

from pyhcs.emulator.client import backend
from pyhcs.raw.ffi import ffi
from tests.emulator.capi import CApi, Events, read_all, u32

CONTAINER = {"SchemaVersion": {"Major": 2, "Minor": 1}, "Owner": "child", "Container": {}}


def scenario(c: CApi, system_id: str) -> dict[str, Any]:
    """create → start → process with stdout → ProcessExited → terminate → SystemExited → close."""
    t = c.t
    system, code, _doc = c.create(system_id, CONTAINER)
    assert code == 0, hex(code)
    sys_events = Events()
    assert t.HcsSetComputeSystemCallback(system, 0, ffi.NULL, sys_events.pointer) == 0
    assert c.system_op("HcsStartComputeSystem", system) == (0, None)
    params = {"CommandLine": 'sh -c "echo hello from $0; exit 42"', "CreateStdOutPipe": True}
    proc_events = Events()
    process, code, info, _doc = c.spawn(system, params, proc_events)
    assert code == 0, hex(code)
    output = read_all(info.StdOutput)
    assert t.CloseHandle(info.StdOutput) == 1
    status = json.loads(proc_events.wait_for(0x10000) or "{}")
    code, _doc = c.system_op("HcsTerminateComputeSystem", system)
    exit_status = json.loads(sys_events.wait_for(0x1) or "{}")
    t.HcsCloseProcess(process)
    t.HcsCloseComputeSystem(system)
    return {
        "terminate": code,
        "output": output.decode(),
        "pid": info.ProcessId,
        "stdin_null": info.StdInput == ffi.NULL,
        "process_status": status,
        "exit_status": exit_status,
        "system_events": sys_events.kinds(),
        "counters": t.client.counters(),
    }


def hcn_churn(table: Any) -> dict[str, Any]:
    ids = {"network": str(uuid.uuid4()), "namespace": str(uuid.uuid4())}
    settings = {"network": '{"Type": "NAT"}', "namespace": '{"Type": "Host"}'}
    for kind, name in (("network", "Network"), ("namespace", "Namespace")):
        out = ffi.new(f"HCN_{name.upper()} *")
        value = uuid.UUID(ids[kind])
        g = ffi.new("GUID *")
        g.Data1, g.Data2, g.Data3 = value.fields[0], value.fields[1], value.fields[2]
        for i, byte in enumerate(value.bytes[8:]):
            g.Data4[i] = byte
        assert getattr(table, f"HcnCreate{name}")(g, settings[kind], out, ffi.NULL) == 0
        assert getattr(table, f"HcnClose{name}")(out[0]) == 0
        ids[f"{kind}_guid"] = g
    for kind, name in (("network", "Network"), ("namespace", "Namespace")):
        assert getattr(table, f"HcnDelete{name}")(ids.pop(f"{kind}_guid"), ffi.NULL) == 0
    return ids


def main(argv: list[str]) -> int:
    table = backend.load()
    c = CApi(table)
    command, system_id = argv[0], argv[1]
    result: dict[str, Any]
    if command == "scenario":
        result = scenario(c, system_id)
    elif command == "create":
        system, code, _ = c.create(system_id, CONTAINER)
        start, _ = c.system_op("HcsStartComputeSystem", system)
        table.HcsCloseComputeSystem(system)
        result = {"create": code, "start": start}
    elif command == "terminate":
        system, code = c.open(system_id)
        events = Events()
        assert table.HcsSetComputeSystemCallback(system, 0, ffi.NULL, events.pointer) == 0
        term, _ = c.system_op("HcsTerminateComputeSystem", system)
        data = events.wait_for(0x1)
        table.HcsCloseComputeSystem(system)
        result = {"open": code, "terminate": term, "exit": json.loads(data or "{}")}
    elif command == "open-in-namespace":  # argv: namespace, system id
        out = ffi.new("HCS_SYSTEM *")
        code = u32(table.HcsOpenComputeSystemInNamespace(system_id, argv[2], 0x10000000, out))
        props = c.properties(out[0]) if code == 0 else {}
        if code == 0:
            table.HcsCloseComputeSystem(out[0])
        result = {"open": code, "id": props.get("Id")}
    elif command == "service-properties":  # argv: property type
        out = ffi.new("PWSTR *")
        code = u32(table.HcsGetServiceProperties(json.dumps({"PropertyTypes": [system_id]}), out))
        result = json.loads(c.take(out) or "{}")
    elif command == "hcn-churn":  # create and delete a network and a namespace
        result = hcn_churn(table)
    elif command == "hold":
        doc = dict(CONTAINER, ShouldTerminateOnLastHandleClosed=True)
        system, code, _ = c.create(system_id, doc)
        c.system_op("HcsStartComputeSystem", system)
        _process, code, info, _ = c.spawn(system, {"CommandLine": "sleep 1000"})
        print(json.dumps({"pid": info.ProcessId}), flush=True)
        sys.stdin.read()  # the test SIGKILLs us while we hold the handles
        result = {}
    else:
        print(f"unknown command {command}", file=sys.stderr)
        return 2
    print(json.dumps(result), flush=True)
    return (
        0
        if all(
            u32(v) == 0
            for k, v in result.items()
            if isinstance(v, int) and k in ("create", "start", "open", "terminate")
        )
        else 1
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
