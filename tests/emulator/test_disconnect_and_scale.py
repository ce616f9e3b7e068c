"""Service disconnect and many containers at once."""

from __future__ import annotations

import json
import threading
from pathlib import Path

from pyhcs import hresult as hr
from pyhcs.emulator.client.faults import Fault
from pyhcs.emulator.client.table import Table
from pyhcs.raw.ffi import ffi
from tests.emulator.capi import CApi, Events, read_all, u32
from tests.emulator.conftest import CONTAINER


def test_service_disconnect_unblocks_everything(table: Table, c: CApi) -> None:
    system, _, _ = c.create("dc-1", CONTAINER)
    c.system_op("HcsStartComputeSystem", system)
    sys_events, proc_events = Events(), Events()
    assert table.HcsSetComputeSystemCallback(system, 0, ffi.NULL, sys_events.pointer) == 0
    process, code, _info, _ = c.spawn(system, {"CommandLine": "sleep 30"}, proc_events)
    assert code == 0
    waited: list[int] = []
    waiter = threading.Thread(target=lambda: waited.append(c.wait_system(system, 0xFFFFFFFF)[0]))
    waiter.start()
    # Drop the connection the way a dying service would.
    table.client.faults.inject("HcsGetComputeSystemProperties", Fault(drop_connection=True))
    op = table.HcsCreateOperation(ffi.NULL, ffi.NULL)
    table.HcsGetComputeSystemProperties(system, op, ffi.NULL)
    assert c.wait(op)[0] == hr.HCS_E_SERVICE_DISCONNECT
    waiter.join(10)
    assert waited == [hr.HCS_E_SERVICE_DISCONNECT]
    sys_events.wait_for(0x2000000)
    proc_events.wait_for(0x2000000)
    assert sys_events.kinds() == [0x2000000]
    assert proc_events.kinds() == [0x2000000]
    assert u32(table.HcsStartComputeSystem(system, op, ffi.NULL)) == hr.HCS_E_SERVICE_DISCONNECT
    table.HcsCloseOperation(op)
    table.HcsCloseProcess(process)
    table.HcsCloseComputeSystem(system)


def test_fifty_containers_at_once(service_dir: Path, table: Table, c: CApi) -> None:
    count = 50
    results: dict[int, tuple[str, int]] = {}
    errors: list[BaseException] = []

    def lifecycle(i: int) -> None:
        try:
            system, code, _ = c.create(
                f"many-{i}", {**CONTAINER, "ShouldTerminateOnLastHandleClosed": True}
            )
            assert code == 0
            assert c.system_op("HcsStartComputeSystem", system) == (0, None)
            events = Events()
            params = {"CommandLine": f'sh -c "echo {i}; exit {i % 7}"', "CreateStdOutPipe": True}
            process, code, info, _ = c.spawn(system, params, events)
            assert code == 0
            out = read_all(info.StdOutput).decode().strip()
            assert table.CloseHandle(info.StdOutput) == 1
            status = json.loads(events.wait_for(0x10000, 20) or "{}")
            table.HcsCloseProcess(process)
            assert c.system_op("HcsTerminateComputeSystem", system) == (0, None)
            table.HcsCloseComputeSystem(system)
            results[i] = (out, status["ExitCode"])
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread below
            errors.append(exc)

    threads = [threading.Thread(target=lifecycle, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert results == {i: (str(i), i % 7) for i in range(count)}
    counters = table.client.counters()
    assert counters["systems"] == counters["processes"] == counters["operations"] == 0
    assert counters["strings"] == counters["pipes"] == 0
