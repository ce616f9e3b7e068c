"""An exit wait that returns implies the exit callback has run (HCS-REFERENCE §3.3).

HcsWaitForProcessExit / HcsWaitForComputeSystemExit report the exit through their reply while
HcsEventProcessExited / HcsEventSystemExited reach a registered callback through the event
path. A caller that returns from the wait must be able to rely on its callback having been
invoked already; each test repeats the race many times and checks, without waiting, right
after the wait returns.
"""

from __future__ import annotations

import threading
from typing import Any

from pyhcs.emulator.client.table import Table
from pyhcs.raw.ffi import ffi
from tests.emulator.capi import CApi, Events
from tests.emulator.conftest import CONTAINER

ROUNDS = 40
PROCESS_EXITED = 0x10000
SYSTEM_EXITED = 0x1


def test_process_exit_wait_returns_after_the_exit_callback(
    table: Table, c: CApi, running: Any
) -> None:
    for round_ in range(ROUNDS):
        events = Events()
        process, code, _info, _ = c.spawn(running, {"CommandLine": "true"}, events)
        assert code == 0
        code, status = c.wait_process(process)
        assert code == 0
        assert status["Exited"] is True
        # No waiting here: the callback must have run before the wait returned.
        assert events.kinds() == [PROCESS_EXITED], f"round {round_}: {events.kinds()}"
        table.HcsCloseProcess(process)


def test_system_exit_wait_returns_after_the_exit_callback(table: Table, c: CApi) -> None:
    for round_ in range(ROUNDS):
        system, code, _ = c.create(f"exit-order-{round_}", CONTAINER)
        assert code == 0
        events = Events()
        assert table.HcsSetComputeSystemCallback(system, 0, ffi.NULL, events.pointer) == 0
        assert c.system_op("HcsStartComputeSystem", system) == (0, None)
        op = table.HcsCreateOperation(ffi.NULL, ffi.NULL)
        # Not waited on: the exit wait alone must order itself after the callback.
        assert table.HcsTerminateComputeSystem(system, op, ffi.NULL) == 0
        code, status = c.wait_system(system)
        assert code == 0
        assert status["ExitType"] == "ForcedExit"
        assert events.kinds() == [SYSTEM_EXITED], f"round {round_}: {events.kinds()}"
        assert c.wait(op) == (0, None)
        table.HcsCloseOperation(op)
        table.HcsCloseComputeSystem(system)


def test_process_exit_wait_from_inside_a_callback_does_not_deadlock(
    table: Table, c: CApi, running: Any
) -> None:
    # A callback waiting for an exit cannot wait for a callback queued behind itself: the wait
    # still returns the exit (the exit event is delivered once this callback returns).
    events = Events()
    process, code, _info, _ = c.spawn(running, {"CommandLine": "true"}, events)
    assert code == 0
    results: list[tuple[int, dict[str, Any]]] = []
    returned = threading.Event()

    def wait_inside(_op: Any, _context: Any) -> None:
        results.append(c.wait_process(process))
        returned.set()

    inside = ffi.callback("HCS_OPERATION_COMPLETION", wait_inside)
    op = table.HcsCreateOperation(ffi.NULL, inside)
    assert table.HcsGetProcessProperties(process, op, ffi.NULL) == 0
    assert returned.wait(10)
    assert len(results) == 1
    assert results[0][0] == 0
    assert results[0][1]["Exited"] is True
    # The exit event was queued behind the callback that waited; it runs once that returns.
    assert table.client.settle(10)
    assert events.kinds() == [PROCESS_EXITED]
    table.HcsCloseOperation(op)
    table.HcsCloseProcess(process)
