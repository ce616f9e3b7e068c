"""pyhcs.aio against the real emulator service (the ``hcs`` fixture also proves each test leaked
no handle, string, pipe or callback key). Coroutines run under ``asyncio.run`` in plain tests:
no pytest plugin for asyncio is needed."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest

from pyhcs import EventType, aio, errors, schema
from pyhcs import hresult as hr
from pyhcs.events import Event
from pyhcs.testing import Emulator, FaultInjector
from tests.api.test_system import CONTAINER, VM

T = TypeVar("T")

REPO = Path(__file__).resolve().parent.parent.parent


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


async def until_pending(count: int) -> None:
    """Let started tasks reach their HCS call (each starts it at its first step)."""
    for _ in range(count + 10):
        if aio.pending() >= count:
            return
        await asyncio.sleep(0)
    assert aio.pending() >= count


def test_lifecycle(hcs: Emulator) -> None:
    async def main() -> None:
        async with await aio.ComputeSystem.create("aio-life", CONTAINER) as system:
            assert (await system.properties()).state == schema.State.CREATED
            await system.start()
            listed = await aio.ComputeSystem.enumerate({"Ids": ["aio-life"]})
            assert [(p.id, p.state) for p in listed] == [("aio-life", schema.State.RUNNING)]

            result = await system.run(["cat"], input=b"through stdin")
            assert (result.returncode, result.stdout, result.stderr) == (0, b"through stdin", b"")
            failing = [sys.executable, "-c", "import sys; print('e', file=sys.stderr); exit(3)"]
            result = await system.run(failing)
            assert (result.returncode, result.stderr) == (3, b"e\n")
            with pytest.raises(subprocess.CalledProcessError):
                await system.run(failing, check=True)
            result = await system.run(["sh", "-c", "echo $X"], env={"X": "1"}, cwd="/")
            assert result.stdout == b"1\n"

            async with await system.create_process(
                {"CommandLine": 'sh -c "read l; echo got $l; echo err >&2; exit 5"',
                 "CreateStdInPipe": True, "CreateStdOutPipe": True, "CreateStdErrPipe": True}
            ) as process:  # fmt: skip
                assert process.exit_code is None
                assert process.stdin is not None
                assert process.stdout is not None
                process.stdin.write(b"a line\n")
                await process.stdin.drain()
                assert await process.stdout.readline() == b"got a line\n"
                assert process.stderr is not None
                assert await process.stderr.read() == b"err\n"
                assert await process.wait(10) == 5
                assert process.exit_code == 5
                assert process.returncode == 5
                assert (await process.properties()).exited
                await process.terminate()  # already exited: fine

            big = await system.run(["head", "-c", "3000000", "/dev/zero"])  # > pipe buffers
            assert big.stdout == bytes(3_000_000)

            console = {"CommandLine": "sleep 30", "EmulateConsole": True, "CreateStdOutPipe": True}
            async with await system.create_process(console) as process:
                await process.resize_console(120, 40)
                await process.signal("CtrlC")
                assert await process.wait(10) != 0
            async with await system.create_process({"CommandLine": "sleep 30"}) as process:
                with pytest.raises(errors.NotSupportedError, match="EmulateConsole"):
                    await process.resize_console(120, 40)
                await process.kill()
                await process.wait(10)

            async with await system.create_process({"CommandLine": "sleep 30"}) as sleeper:
                async with await system.open_process(sleeper.pid) as opened:
                    assert opened.stdout is None
                    await opened.terminate()
                assert await sleeper.wait(10) != 0

            async with await aio.ComputeSystem.open("aio-life") as again:
                await again.shutdown()
                await again.wait(10)
            status = await system.wait(10)
            assert status.exit_type == schema.NotificationType.GRACEFUL_EXIT
            assert system.exit_status == status
            await system.terminate()  # already stopped: fine
        assert system.closed
        with pytest.raises(errors.InvalidHandleError):
            await system.start()

    run(main())


def test_state_machine_of_a_virtual_machine(hcs: Emulator) -> None:
    async def main() -> None:
        async with await aio.ComputeSystem.create("aio-vm", VM) as vm:
            await vm.start()
            await vm.pause()
            assert (await vm.properties()).state == schema.State.PAUSED
            await vm.resume()
            assert (await vm.properties()).state == schema.State.RUNNING
            await vm.pause()
            await vm.save({"SaveType": "AsTemplate"})
            assert (await vm.properties()).state == schema.State.SAVED_AS_TEMPLATE
        async with await aio.ComputeSystem.create("aio-vm-2", VM) as vm:
            await vm.start()
            await vm.crash()
            status = await vm.wait(10)
            assert status.exit_type is not None
            with pytest.raises(errors.AlreadyStoppedError):
                await vm.start()

    run(main())


def test_errors_are_typed(hcs: Emulator, hcs_faults: FaultInjector) -> None:
    async def main() -> None:
        async with await aio.ComputeSystem.create("aio-errors", CONTAINER) as system:
            with pytest.raises(errors.AlreadyExistsError) as exists:
                await aio.ComputeSystem.create("aio-errors", CONTAINER)
            assert (exists.value.operation, exists.value.system_id) == (
                "HcsCreateComputeSystem",
                "aio-errors",
            )
            with pytest.raises(errors.NotSupportedError, match="virtual machine"):
                await system.pause()  # a process-isolated container cannot pause
            with pytest.raises(errors.InvalidJsonError):
                await system.modify(
                    {"ResourcePath": "Container/Memory/SizeInMB", "Settings": "lots"}
                )
            with (
                hcs_faults.fail("HcsStartComputeSystem", hr.HCS_E_SYSTEM_NOT_FOUND, count=1),
                pytest.raises(errors.SystemNotFoundError),
            ):
                await system.start()
            await system.start()
            with pytest.raises(errors.InvalidStateError) as state:
                await system.start()
            assert state.value.hresult == hr.HCS_E_INVALID_STATE
            with pytest.raises(errors.HcsError) as bad:
                await system.create_process({"CommandLine": "/no/such/program"})
            assert bad.value.operation == "HcsCreateProcess"
            assert bad.value.system_id == "aio-errors"
            await system.terminate()
        with pytest.raises(errors.SystemNotFoundError):
            await aio.ComputeSystem.open("aio-no-such-system")
        with pytest.raises(errors.InvalidArgumentError):
            await aio.ComputeSystem.create("aio-nul\0", CONTAINER)
        assert aio.pending() == 0

    run(main())


def test_a_hundred_containers_at_once(hcs: Emulator) -> None:
    async def lifecycle(i: int) -> tuple[int, bytes]:
        async with await aio.ComputeSystem.create(f"aio-many-{i}", CONTAINER) as system:
            await system.start()
            result = await system.run(["sh", "-c", f"echo {i}; exit {i % 7}"], timeout=60)
            await system.terminate()
            await system.wait(30)
            return result.returncode, result.stdout

    async def main() -> list[tuple[int, bytes]]:
        return await asyncio.gather(*(lifecycle(i) for i in range(100)))

    results = run(main())
    assert results == [(i % 7, f"{i}\n".encode()) for i in range(100)]


def test_a_thousand_pending_operations_hold_no_thread(
    hcs: Emulator, hcs_faults: FaultInjector
) -> None:
    async def main() -> None:
        async with await aio.ComputeSystem.create("aio-thousand", CONTAINER) as system:
            await system.start()
            with hcs_faults.hold("HcsGetComputeSystemProperties") as fault:
                assert fault.hold is not None
                first = asyncio.ensure_future(system.properties())
                await until_pending(1)
                threads = threading.active_count()
                rest = [asyncio.ensure_future(system.properties()) for _ in range(999)]
                await until_pending(1000)
                assert not any(task.done() for task in [first, *rest])
                assert threading.active_count() <= threads  # none per pending operation
                fault.hold.set()
                states = await asyncio.wait_for(asyncio.gather(first, *rest), 120)
            assert {s.state for s in states} == {schema.State.RUNNING}
            assert aio.pending() == 0
            await system.terminate()

    run(main())


def test_cancelling_the_task_cancels_the_operation(
    hcs: Emulator, hcs_faults: FaultInjector, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="pyhcs.aio")

    async def main() -> None:
        async with await aio.ComputeSystem.create("aio-cancel", CONTAINER) as system:
            await system.start()
            with hcs_faults.hold("HcsGetComputeSystemProperties") as fault:
                task = asyncio.ensure_future(system.properties())
                await until_pending(1)
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
                # The cancellation landed before the task ended: nothing is left pending.
                assert aio.pending() == 0
                assert fault.hold is not None
                fault.hold.set()
            left = "HcsGetComputeSystemProperties ended after its caller left: "
            assert left + "HCS_E_OPERATION_ALREADY_CANCELLED" in caplog.text
            caplog.clear()

            # A process whose creation is cancelled: its handle is closed at once, and the
            # late reply (pipes included) is dropped; the leak check after the test proves it.
            with hcs_faults.hold("HcsCreateProcess") as fault:
                creating = asyncio.ensure_future(
                    system.create_process({"CommandLine": "echo late", "CreateStdOutPipe": True})
                )
                await until_pending(1)
                creating.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await creating
                assert fault.hold is not None
                fault.hold.set()
            assert "HcsCreateProcess ended after its caller left" in caplog.text
            assert (await system.properties()).state == schema.State.RUNNING
            await system.terminate()

    run(main())


def test_a_host_that_cannot_cancel_gets_its_operations_closed_when_they_end(
    hcs: Emulator, hcs_faults: FaultInjector, caplog: pytest.LogCaptureFixture
) -> None:
    """HcsCancelOperation is documented as E_NOTIMPL: the caller is told at once, and pyhcs
    keeps the operation and its buffers until HCS completes it, then closes it and releases
    what it produced (here a process's stdout pipe)."""
    caplog.set_level(logging.DEBUG, logger="pyhcs.aio")

    async def main() -> None:
        async with await aio.ComputeSystem.create("aio-notimpl", CONTAINER) as system:
            await system.start()
            with (
                hcs_faults.fail("HcsCancelOperation", hr.E_NOTIMPL),
                hcs_faults.hold("HcsGetComputeSystemProperties") as held,
                hcs_faults.hold("HcsCreateProcess") as held_create,
            ):
                with pytest.raises(errors.OperationTimeoutError, match="has not landed"):
                    await system.properties(timeout=0.01)
                task = asyncio.ensure_future(
                    system.create_process({"CommandLine": "echo x", "CreateStdOutPipe": True})
                )
                await until_pending(2)
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
                assert aio.pending() == 2  # both still running in HCS: kept, not freed
                assert held.hold is not None
                assert held_create.hold is not None
                held.hold.set()
                held_create.hold.set()
                await aio.drain(30)
            assert aio.pending() == 0
            assert "HcsGetComputeSystemProperties ended after its caller left: S_OK" in (
                caplog.text
            )
            assert "HcsCreateProcess ended after its caller left: S_OK" in caplog.text
            await system.terminate()

    run(main())


def test_operations_outliving_their_loop_are_closed(
    hcs: Emulator, hcs_faults: FaultInjector
) -> None:
    """A loop that closes while HCS still runs its operations (a host without cancel): a
    completion that finds the loop closed is finished on HCS's thread; one that reached the
    loop but was never run there is finished by `sweep` (which every call does)."""

    async def start_and_leave(system: aio.ComputeSystem) -> None:
        task = asyncio.ensure_future(system.properties())
        await until_pending(1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    async def create() -> aio.ComputeSystem:
        system = await aio.ComputeSystem.create("aio-loops", CONTAINER)
        await system.start()
        return system

    system = run(create())
    with (
        hcs_faults.fail("HcsCancelOperation", hr.E_NOTIMPL),
        hcs_faults.hold("HcsGetComputeSystemProperties") as fault,
    ):
        assert fault.hold is not None
        for stranded in (False, True):
            loop = asyncio.new_event_loop()
            loop.run_until_complete(start_and_leave(system))
            assert aio.pending() == 1
            if not stranded:
                loop.close()
            fault.hold.set()  # HCS completes it now
            assert hcs.table.client.settle(10)  # ... and its completion callback has run
            if stranded:
                assert aio.pending() == 1  # handed to the loop, which will never run it
                loop.close()
                assert aio.operations.sweep() == 1
            assert aio.pending() == 0
            fault.hold = type(fault.hold)()
    run(system.close())


def test_timeouts(hcs: Emulator, hcs_faults: FaultInjector) -> None:
    async def main() -> None:
        async with await aio.ComputeSystem.create("aio-timeouts", CONTAINER) as system:
            await system.start()
            with hcs_faults.hold("HcsGetComputeSystemProperties") as fault:
                with pytest.raises(errors.OperationTimeoutError) as late:
                    await system.properties(timeout=0.01)
                assert "did not finish within 0.01 s and was cancelled" in str(late.value)
                assert late.value.system_id == "aio-timeouts"
                assert isinstance(late.value, TimeoutError)
                assert aio.pending() == 0
                assert fault.hold is not None
                fault.hold.set()
            with pytest.raises(subprocess.TimeoutExpired):
                await system.run(["sleep", "30"], timeout=0.2)
            with pytest.raises(errors.OperationTimeoutError, match="did not exit within"):
                await system.wait(0.01)
            with pytest.raises(errors.OperationTimeoutError, match="no event"):
                async for _ in system.events(timeout=0.01):
                    pass
            os.environ["PYHCS_TIMEOUT_QUERY"] = "0.01"
            try:
                with (
                    hcs_faults.hold("HcsGetComputeSystemProperties") as fault,
                    pytest.raises(errors.OperationTimeoutError),
                ):
                    await system.properties()
            finally:
                del os.environ["PYHCS_TIMEOUT_QUERY"]
                assert fault.hold is not None
                fault.hold.set()
            await system.terminate()

    run(main())


def test_events_async_iteration_and_callbacks(hcs: Emulator) -> None:
    async def main() -> None:
        async with await aio.ComputeSystem.create("aio-events", CONTAINER) as system:
            await system.start()
            seen: list[Event] = []
            awaited: asyncio.Queue[Event] = asyncio.Queue()

            async def later(event: Event) -> None:
                await awaited.put(event)

            system.on_event(seen.append)
            stop = system.on_event(later)

            async with await system.create_process({"CommandLine": 'sh -c "exit 4"'}) as process:
                events = [event async for event in process.events(timeout=30)]
                assert [e.type for e in events] == [EventType.PROCESS_EXITED]
                assert await process.wait(1) == 4

            # An iteration left early stops listening when closed (async with, aclose).
            hub = system._system._hub
            listeners = len(hub._listeners)  # the two on_event callbacks
            async with system.events(timeout=30) as early:
                waiting = asyncio.ensure_future(early.__anext__())
                await asyncio.sleep(0)
                assert len(hub._listeners) == listeners + 1
                waiting.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await waiting
            assert len(hub._listeners) == listeners

            iterator = system.events(timeout=30)
            await system.terminate()
            events = [event async for event in iterator]
            assert [e.type for e in events] == [EventType.SYSTEM_EXITED]
            assert (await asyncio.wait_for(awaited.get(), 30)).type == EventType.SYSTEM_EXITED
            assert [e.type for e in seen] == [EventType.SYSTEM_EXITED]
            stop()
            # An iteration that starts after the exit still sees it (the hub keeps it).
            assert [e.type async for e in system.events()] == [EventType.SYSTEM_EXITED]

    run(main())


def test_closing_is_not_an_exit(hcs: Emulator) -> None:
    async def main() -> None:
        system = await aio.ComputeSystem.create("aio-close", CONTAINER)
        await system.start()
        process = await system.create_process({"CommandLine": "sleep 30"})
        waiter = asyncio.ensure_future(process.wait(30))
        iteration = asyncio.ensure_future(_collect(process.events(timeout=30)))
        await asyncio.sleep(0)  # let both start waiting
        await process.close()
        with pytest.raises(errors.InvalidHandleError, match="was closed"):
            await waiter
        assert await iteration == []  # ended without any exit event
        assert process.exit_code is None
        with pytest.raises(errors.InvalidHandleError):
            await process.wait(1)
        await system.close()  # its last handle: the system is terminated, but not reported
        assert [e async for e in system.events()] == []
        assert system.exit_status is None

    run(main())


async def _collect(stream: aio.EventStream) -> list[Event]:
    return [event async for event in stream]


DISCONNECT_CHILD = """
import asyncio, sys
from pathlib import Path
from pyhcs import aio, errors
from pyhcs.testing import Emulator

emulator = Emulator(Path(sys.argv[1]))
CONTAINER = {"SchemaVersion": {"Major": 2, "Minor": 1}, "Container": {},
             "ShouldTerminateOnLastHandleClosed": True}

async def main():
    system = await aio.ComputeSystem.create("aio-dc", CONTAINER)
    await system.start()
    process = await system.create_process({"CommandLine": "sleep 30"})
    waiters = [system.wait(30), process.wait(30), _drain(system.events(30)),
               _drain(process.events(30))]
    tasks = [asyncio.ensure_future(w) for w in waiters]
    await asyncio.sleep(0)
    with emulator.faults.drop_connection("HcsGetComputeSystemProperties"):
        tasks.append(asyncio.ensure_future(system.properties()))
        results = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 30)
    print([type(r).__name__ for r in results])
    await process.close()
    await system.close()
    emulator.assert_no_leaks()

async def _drain(stream):
    async for _ in stream:
        pass

try:
    asyncio.run(main())
finally:
    emulator.stop()
"""


def test_a_service_disconnect_fails_every_waiter(hcs: Emulator, tmp_path: Path) -> None:
    """In a process of its own, with an emulator of its own (the connection is cut)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYHCS_")}
    result = subprocess.run(
        [sys.executable, "-c", DISCONNECT_CHILD, str(tmp_path / "emu")],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(["ServiceDisconnectError"] * 5)


def test_the_docs_example_runs(hcs: Emulator, capsys: pytest.CaptureFixture[str]) -> None:
    page = (REPO / "docs" / "api-async.md").read_text()
    code = page.split("```python\n", 1)[1].split("```", 1)[0]
    exec(compile(code, "docs/api-async.md", "exec"), {"__name__": "docs_example"})
    assert capsys.readouterr().out.splitlines() == ["b'hello\\n'", "SYSTEM_EXITED"]
