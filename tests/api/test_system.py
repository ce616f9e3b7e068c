"""The typed ComputeSystem against the real emulator service (through the pyhcs pytest plugin's
``hcs`` fixture, which also proves each test leaked nothing)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from typing import Any

import pytest

from pyhcs import ComputeSystem, EventType, errors, schema
from pyhcs import hresult as hr
from pyhcs.testing import Emulator, FaultInjector, LeakError

from .support import together

CONTAINER: dict[str, Any] = {
    "SchemaVersion": {"Major": 2, "Minor": 1},
    "Owner": "api-tests",
    "ShouldTerminateOnLastHandleClosed": True,
    "Container": {},
}
VM: dict[str, Any] = {
    "SchemaVersion": {"Major": 2, "Minor": 1},
    "Owner": "api-tests",
    "ShouldTerminateOnLastHandleClosed": True,
    "VirtualMachine": {"GuestConnection": {}},
}
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_a_first_container_in_a_few_lines(hcs: Emulator) -> None:
    with ComputeSystem.create("api-first", CONTAINER) as system:
        system.start()
        result = system.run([sys.executable, "-c", "print(1)"])
        assert (result.returncode, result.stdout, result.stderr) == (0, b"1\n", b"")
        system.terminate()
        status = system.wait(10)
        assert status.exit_type == schema.NotificationType.FORCED_EXIT
        assert status.attribution is not None
        exit_record = status.attribution[0].system_exit
        assert exit_record is not None
        assert exit_record.detail == schema.SystemExitDetail.TERMINATE


@pytest.mark.parametrize("form", ["dict", "json", "model"])
def test_documents_as_model_dict_or_json(hcs: Emulator, form: str) -> None:
    config: Any = {
        "dict": CONTAINER,
        "json": json.dumps(CONTAINER),
        "model": schema.ComputeSystem.parse(CONTAINER),
    }[form]
    with ComputeSystem.create(f"api-form-{form}", config) as system:
        assert system.properties().owner == "api-tests"
        assert system.state == "Created"
        query = {"PropertyTypes": ["Configuration"]} if form == "dict" else None
        if query:
            assert system.properties(query).model_extra is not None


def test_errors_are_typed_and_name_the_call_and_system(hcs: Emulator) -> None:
    with ComputeSystem.create("api-errors", CONTAINER) as system:
        with pytest.raises(errors.AlreadyExistsError) as exists:
            ComputeSystem.create("api-errors", CONTAINER)
        assert exists.value.operation == "HcsCreateComputeSystem"
        assert exists.value.system_id == "api-errors"
        assert exists.value.hresult == hr.HCS_E_SYSTEM_ALREADY_EXISTS
        system.start()
        with pytest.raises(errors.InvalidStateError) as state:
            system.start()
        assert "HcsStartComputeSystem api-errors" in str(state.value)
        with pytest.raises(errors.InvalidJsonError):
            system.modify({"ResourcePath": "Container/Memory/SizeInMB", "Settings": "lots"})
    with pytest.raises(errors.SystemNotFoundError) as missing:
        ComputeSystem.open("api-no-such-system")
    assert missing.value.system_id == "api-no-such-system"
    with pytest.raises(errors.InvalidJsonError) as bad:
        ComputeSystem.create("api-bad", {"Container": {}, "Bogus": 1})
    assert "Bogus" in str(bad.value)


def test_state_machine_of_a_virtual_machine(hcs: Emulator) -> None:
    with ComputeSystem.create("api-vm", VM) as vm:
        vm.start()
        vm.pause()
        assert vm.state == "Paused"
        vm.save({"SaveType": "AsTemplate"})
        assert vm.state == "SavedAsTemplate"
    with ComputeSystem.create("api-vm-2", VM) as vm:
        vm.start()
        vm.shutdown()
        assert vm.wait(10).exit_type == schema.NotificationType.GRACEFUL_EXIT
        vm.shutdown()  # already stopped: benign, decided once
        vm.terminate()
        with pytest.raises(errors.AlreadyStoppedError):
            vm.start()


def test_closed_objects_refuse_calls_and_wake_waiters(hcs: Emulator) -> None:
    system = ComputeSystem.create("api-closed", CONTAINER)
    outcome: list[BaseException] = []
    started = threading.Event()

    def waiter() -> None:
        started.set()
        try:
            system.wait(30)
        except errors.HcsError as exc:
            outcome.append(exc)

    thread = threading.Thread(target=waiter)
    thread.start()
    assert started.wait(10)
    system.close()
    thread.join(10)
    assert not thread.is_alive()
    assert isinstance(outcome[0], errors.InvalidHandleError)  # closed, not a made-up exit
    assert system.exit_status is None
    with pytest.raises(errors.InvalidHandleError):
        system.start()
    system.close()  # twice is a no-op
    assert repr(system) == "<ComputeSystem 'api-closed' closed>"


def test_events_as_iterator_and_callbacks(hcs: Emulator) -> None:
    seen: list[Any] = []
    done = threading.Event()
    with ComputeSystem.create("api-events", CONTAINER) as system:

        def record(event: Any) -> None:
            seen.append(event)
            done.set()

        system.on_event(record)
        system.start()
        system.terminate()
        events = list(system.events(timeout=10))
        assert [e.type for e in events] == [EventType.SYSTEM_EXITED]
        payload = events[0].payload
        assert isinstance(payload, schema.SystemExitStatus)
        assert payload.exit_type == schema.NotificationType.FORCED_EXIT
        assert done.wait(10)
        assert seen == events


def test_enumerate_and_a_system_driven_from_another_process(hcs: Emulator) -> None:
    with ComputeSystem.create("api-shared", CONTAINER) as system:
        system.start()
        listed = ComputeSystem.enumerate({"Owners": ["api-tests"], "Ids": ["api-shared"]})
        assert [(p.id, p.state) for p in listed] == [("api-shared", schema.State.RUNNING)]
        child = (
            "from pyhcs import ComputeSystem\n"
            "with ComputeSystem.open('api-shared') as s:\n"
            "    r = s.run(['sh', '-c', 'echo from-child'])\n"
            "    print(r.stdout.decode().strip())\n"
            "    s.terminate()\n"
        )
        env = {**os.environ, "PYHCS_EMULATOR_AUTOSTART": "0"}
        result = subprocess.run(
            [sys.executable, "-c", child],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "from-child"
        assert system.wait(10).exit_type == schema.NotificationType.FORCED_EXIT


def test_opening_a_stopped_system_knows_its_exit(hcs: Emulator) -> None:
    doc = {**CONTAINER, "ShouldTerminateOnLastHandleClosed": False}
    with ComputeSystem.create("api-stopped", doc) as system:
        system.start()
        system.terminate()
        with ComputeSystem.open("api-stopped") as again:
            assert again.wait(10).exit_type == schema.NotificationType.FORCED_EXIT


def test_injected_failures_and_timeouts(hcs: Emulator, hcs_faults: FaultInjector) -> None:
    with ComputeSystem.create("api-faults", CONTAINER) as system:
        with (
            hcs_faults.fail("HcsStartComputeSystem", hr.HCS_E_INVALID_STATE, count=1),
            pytest.raises(errors.InvalidStateError),
        ):
            system.start()
        with hcs_faults.hold("HcsGetComputeSystemProperties") as fault:
            with pytest.raises(errors.OperationTimeoutError) as late:
                system.properties(timeout=0.05)
            assert "cancelled" in str(late.value)
            assert fault.hold is not None
            fault.hold.set()
        system.start()
        assert system.state == "Running"


def test_a_leaked_system_is_reported_and_closed(hcs: Emulator) -> None:
    with pytest.warns(ResourceWarning, match="compute system 'api-leaked' was never closed"):
        ComputeSystem.create("api-leaked", CONTAINER)  # never closed, no reference kept
    with pytest.raises(LeakError, match="never closed: compute system 'api-leaked'"):
        hcs.assert_no_leaks()
    hcs.assert_no_leaks()  # the finalizer closed it: nothing is left now


def test_threads_hammering_one_system(hcs: Emulator) -> None:
    with ComputeSystem.create("api-hammer", CONTAINER) as system:
        system.start()

        def hammer(n: int) -> None:
            for i in range(15):
                if i % 3 == 0:
                    assert system.run(["echo", str(n)]).stdout == f"{n}\n".encode()
                else:
                    assert system.properties().state == schema.State.RUNNING

        together(6, hammer)
