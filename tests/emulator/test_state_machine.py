"""Every edge of the state machine, for both
kinds of system: each operation tried from each reachable state, with the HRESULT it must give
and the state the system must be in afterwards."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pyhcs import hresult as hr
from pyhcs.emulator.client.table import Table
from pyhcs.raw.ffi import ffi
from tests.emulator.capi import CApi
from tests.emulator.conftest import CONTAINER

#: With a guest connection: a graceful shutdown needs one (see test_virtual_machines).
VM = {
    "SchemaVersion": {"Major": 2, "Minor": 1},
    "Owner": "tests",
    "VirtualMachine": {"GuestConnection": {}},
}
OK = hr.S_OK
BAD = hr.HCS_E_INVALID_STATE
GONE = hr.HCS_E_SYSTEM_ALREADY_STOPPED
NO = hr.ERROR_NOT_SUPPORTED

MODIFY = json.dumps(
    {"ResourcePath": "Container/Memory/SizeInMB", "RequestType": "Update", "Settings": 64}
)
MODIFY_VM = json.dumps(
    {
        "ResourcePath": "VirtualMachine/ComputeTopology/Memory/SizeInMB",
        "RequestType": "Update",
        "Settings": 64,
    }
)

# operation -> {state -> (HRESULT, state afterwards)}, per kind. "Stopped" covers a system
# that ran and was terminated.
VM_EDGES: dict[str, dict[str, tuple[int, str]]] = {
    "Start": {
        "Created": (OK, "Running"),
        "Running": (BAD, "Running"),
        "Paused": (BAD, "Paused"),
        "Stopped": (GONE, "Stopped"),
    },
    "Pause": {
        "Created": (BAD, "Created"),
        "Running": (OK, "Paused"),
        "Paused": (BAD, "Paused"),
        "Stopped": (GONE, "Stopped"),
    },
    "Resume": {
        "Created": (BAD, "Created"),
        "Running": (BAD, "Running"),
        "Paused": (OK, "Running"),
        "Stopped": (GONE, "Stopped"),
    },
    "Save": {
        "Created": (BAD, "Created"),
        "Running": (BAD, "Running"),
        "Paused": (OK, "Paused"),
        "Stopped": (GONE, "Stopped"),
    },
    "Shutdown": {
        "Created": (OK, "Stopped"),
        "Running": (OK, "Stopped"),
        "Paused": (OK, "Stopped"),
        "Stopped": (GONE, "Stopped"),
    },
    "Terminate": {
        "Created": (OK, "Stopped"),
        "Running": (OK, "Stopped"),
        "Paused": (OK, "Stopped"),
        "Stopped": (GONE, "Stopped"),
    },
    "Crash": {
        "Created": (BAD, "Created"),
        "Running": (OK, "Stopped"),
        "Paused": (BAD, "Paused"),
        "Stopped": (GONE, "Stopped"),
    },
    "Modify": {
        "Created": (OK, "Created"),
        "Running": (OK, "Running"),
        "Paused": (OK, "Paused"),
        "Stopped": (GONE, "Stopped"),
    },
    "CreateProcess": {
        "Created": (BAD, "Created"),
        "Running": (OK, "Running"),
        "Paused": (BAD, "Paused"),
        "Stopped": (BAD, "Stopped"),
    },
    "GetProperties": {s: (OK, s) for s in ("Created", "Running", "Paused", "Stopped")},
}

CONTAINER_EDGES: dict[str, dict[str, tuple[int, str]]] = {
    "Start": {k: VM_EDGES["Start"][k] for k in ("Created", "Running", "Stopped")},
    # Pause, Resume, Save and Crash are VM features: process isolation says so first.
    "Pause": {"Created": (NO, "Created"), "Running": (NO, "Running"), "Stopped": (GONE, "Stopped")},
    "Resume": {
        "Created": (NO, "Created"),
        "Running": (NO, "Running"),
        "Stopped": (GONE, "Stopped"),
    },
    "Save": {"Created": (NO, "Created"), "Running": (NO, "Running"), "Stopped": (GONE, "Stopped")},
    "Crash": {"Created": (NO, "Created"), "Running": (NO, "Running"), "Stopped": (GONE, "Stopped")},
    **{
        op: {k: VM_EDGES[op][k] for k in ("Created", "Running", "Stopped")}
        for op in ("Shutdown", "Terminate", "Modify", "CreateProcess", "GetProperties")
    },
}


def _cases() -> list[tuple[str, str, str]]:
    cases: list[tuple[str, str, str]] = []
    for kind, edges in (("VirtualMachine", VM_EDGES), ("Container", CONTAINER_EDGES)):
        for op, by_state in edges.items():
            cases.extend((kind, state, op) for state in by_state)
    return cases


def bring_to(c: CApi, system: Any, state: str) -> None:
    steps = {
        "Created": [],
        "Running": ["HcsStartComputeSystem"],
        "Paused": ["HcsStartComputeSystem", "HcsPauseComputeSystem"],
        "Stopped": ["HcsStartComputeSystem", "HcsTerminateComputeSystem"],
    }[state]
    for step in steps:
        assert c.system_op(step, system) == (0, None), step
    assert c.properties(system)["State"] == state


def attempt(table: Table, c: CApi, system: Any, op: str, vm: bool) -> tuple[int, str | None]:
    simple: dict[str, str] = {
        "Start": "HcsStartComputeSystem",
        "Pause": "HcsPauseComputeSystem",
        "Resume": "HcsResumeComputeSystem",
        "Save": "HcsSaveComputeSystem",
        "Shutdown": "HcsShutDownComputeSystem",
        "Terminate": "HcsTerminateComputeSystem",
        "Crash": "HcsCrashComputeSystem",
        "GetProperties": "HcsGetComputeSystemProperties",
    }
    if op in simple:
        return c.system_op(simple[op], system)
    if op == "Modify":
        text = MODIFY_VM if vm else MODIFY
        return c.run(lambda o: table.HcsModifyComputeSystem(system, o, text, ffi.NULL))
    process, code, _info, doc = c.spawn(system, {"CommandLine": "sleep 30"})
    table.HcsCloseProcess(process)  # the process (if any) ends with its system
    return code, doc


@pytest.mark.parametrize(("kind", "state", "op"), _cases())
def test_edge(shared: Table, kind: str, state: str, op: str) -> None:
    table, c = shared, CApi(shared)
    edges = VM_EDGES if kind == "VirtualMachine" else CONTAINER_EDGES
    expected, after = edges[op][state]
    system, code, _ = c.create(
        f"edge-{kind}-{state}-{op}", VM if kind == "VirtualMachine" else CONTAINER
    )
    assert code == 0
    bring_to(c, system, state)
    code, doc = attempt(table, c, system, op, kind == "VirtualMachine")
    assert code == expected, f"{op} on {state} {kind}: {code:#x}"
    if code != OK:
        assert doc is not None  # every failure carries a ResultError naming the HRESULT
        assert json.loads(doc)["Error"] == hr.to_signed(code)
    assert c.properties(system)["State"] == after
    if after != "Stopped":
        assert c.system_op("HcsTerminateComputeSystem", system) == (0, None)
    table.HcsCloseComputeSystem(system)


def test_every_operation_is_covered_for_every_reachable_state() -> None:
    assert set(VM_EDGES) == set(CONTAINER_EDGES)
    assert all(len(s) == 4 for s in VM_EDGES.values())
    assert all(len(s) == 3 for s in CONTAINER_EDGES.values())  # a container cannot pause
