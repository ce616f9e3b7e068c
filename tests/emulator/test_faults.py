"""Fault injection reaches every function: op-taking calls fail through their operation, all
others return the injected HRESULT (with the document in their error/result out-parameter),
stall for the injected delay, or lose the service connection."""

from __future__ import annotations

import json
import threading
import time
import uuid

import pytest

from pyhcs import hresult as hr
from pyhcs.emulator.client.faults import Fault
from pyhcs.emulator.client.table import Table
from pyhcs.raw.ffi import ffi
from tests.emulator.capi import CApi, u32
from tests.emulator.conftest import CONTAINER
from tests.emulator.test_hcn import NAT, Hcn


@pytest.fixture
def table(shared: Table) -> Table:
    """The tests of this module share one service: none stops it, sets its environment or
    counts service-wide state, and each uses its own system ids."""
    return shared


def test_synchronous_functions_return_the_injected_failure(table: Table, c: CApi) -> None:
    record = json.dumps(
        {"Success": False, "Error": "injected", "ErrorCode": hr.HCN_E_INVALID_NETWORK}
    )
    table.client.faults.inject(
        "HcnCreateNetwork", Fault(hresult=hr.HCN_E_INVALID_NETWORK, document=record, count=1)
    )
    n = Hcn(table)
    code, handle, error = n.create("Network", NAT)
    assert code == hr.HCN_E_INVALID_NETWORK
    assert handle == ffi.NULL
    assert error == json.loads(record)
    assert n.enumerate("Networks") == []  # the service never saw the call
    code, created, _ = n.create("Network", NAT)
    assert code == 0  # count=1: the next call is normal again
    table.client.faults.inject("HcsGetServiceProperties", Fault(hresult=hr.E_ACCESSDENIED))
    out = ffi.new("PWSTR *")
    assert u32(table.HcsGetServiceProperties(ffi.NULL, out)) == hr.E_ACCESSDENIED
    assert out[0] == ffi.NULL
    table.client.faults.clear()
    assert table.HcsGetServiceProperties(ffi.NULL, out) == 0
    assert c.take(out) is not None
    for network_id in n.enumerate("Networks"):
        assert n.delete("Network", network_id)[0] == 0
    n.close("Network", created)


def test_injected_hold_stalls_only_that_function(table: Table, c: CApi) -> None:
    hold = threading.Event()
    table.client.faults.inject("HcsGetServiceProperties", Fault(hold=hold, count=1))
    out = ffi.new("PWSTR *")
    finished = threading.Event()
    results: list[int] = []

    def slow() -> None:
        results.append(table.HcsGetServiceProperties(ffi.NULL, out))
        finished.set()

    worker = threading.Thread(target=slow)
    worker.start()
    # Other calls are not held up while the held one waits (it cannot finish before hold.set()).
    system, code, _ = c.create("during-hold", CONTAINER)
    assert code == 0
    assert not finished.is_set()
    hold.set()
    worker.join(10)
    assert finished.is_set()
    assert results == [0]
    assert c.take(out) is not None
    table.HcsCloseComputeSystem(system)


def test_injected_delay_lasts_at_least_the_delay(table: Table, c: CApi) -> None:
    table.client.faults.inject("HcsGetServiceProperties", Fault(delay=0.2, count=1))
    out = ffi.new("PWSTR *")
    started = time.monotonic()
    assert table.HcsGetServiceProperties(ffi.NULL, out) == 0
    assert time.monotonic() - started >= 0.2
    assert c.take(out) is not None


def test_dropped_connection_from_a_synchronous_function(private_table: Table) -> None:
    table = private_table  # the connection is dropped: not the module's shared client
    events: list[int] = []
    seen = threading.Event()

    def on_notification(kind: int, context: object, status: int, data: object) -> None:
        events.append(int(kind))
        seen.set()

    pointer = ffi.callback("HCN_NOTIFICATION_CALLBACK", on_notification)
    handle = ffi.new("HCN_CALLBACK *")
    assert table.HcnRegisterServiceCallback(pointer, ffi.NULL, handle) == 0
    table.client.faults.inject("HcnEnumerateNetworks", Fault(drop_connection=True, count=1))
    out, error = ffi.new("PWSTR *"), ffi.new("PWSTR *")
    code = u32(table.HcnEnumerateNetworks(ffi.NULL, out, error))
    assert code == hr.HCN_E_MANAGER_STOPPED
    assert seen.wait(10)
    assert events == [0x01000000]  # ServiceDisconnect
    guid = ffi.new("GUID *", {"Data1": uuid.uuid4().fields[0]})
    created = ffi.new("HCN_NETWORK *")
    assert u32(table.HcnCreateNetwork(guid, json.dumps(NAT), created, ffi.NULL)) == (
        hr.HCN_E_MANAGER_STOPPED
    )
    assert table.HcnUnregisterServiceCallback(handle[0]) == 0
