"""A compute system for an event loop: the API of `pyhcs.ComputeSystem` with ``async`` methods.

Every HCS call goes through `pyhcs.aio.operations` (its completion callback resolves a future
on the loop: no thread per pending call; bounded; cancelled with the awaiting task or on
timeout). The handle, the event hub and the benign-outcome rules are those of the blocking
`pyhcs.system.ComputeSystem` this object wraps, so both behave the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pyhcs import process as blocking_process
from pyhcs import schema
from pyhcs import system as blocking
from pyhcs.aio import events as aio_events
from pyhcs.aio.events import EventCallback, EventStream
from pyhcs.aio.operations import run
from pyhcs.aio.process import Process
from pyhcs.errors import AlreadyStoppedError, check
from pyhcs.operations import Where
from pyhcs.raw import ffi, lib
from pyhcs.raw.strings import wide
from pyhcs.timeouts import TimeoutClass

__all__ = ["ComputeSystem"]


class ComputeSystem:
    """One open handle to a compute system. Use `create`, `open` or `enumerate`, and
    ``async with``."""

    def __init__(self, system: blocking.ComputeSystem) -> None:
        self.id = system.id
        self._system = system

    # -- getting one -----------------------------------------------------------------------

    @classmethod
    async def create(
        cls, system_id: str, config: blocking.Config, *, timeout: float | None = None
    ) -> ComputeSystem:
        """Create a system from its ``ComputeSystem`` document (a model, a dict or JSON)."""
        name, document = wide(system_id), wide(blocking.document_text(config))
        out = ffi.new("HCS_SYSTEM *")
        try:
            await run(
                lambda op: lib.HcsCreateComputeSystem(name, document, op, ffi.NULL, out),
                Where("HcsCreateComputeSystem", system_id),
                TimeoutClass.SYSTEM_CREATE,
                timeout,
                keep=(name, document, out),
            )
        except BaseException:
            if out[0] != ffi.NULL:  # HCS hands out the handle even when creation fails
                lib.HcsCloseComputeSystem(out[0])
            raise
        return cls(blocking.ComputeSystem(out[0], system_id))

    @classmethod
    async def open(cls, system_id: str) -> ComputeSystem:
        """Open an existing system by id. (HcsOpenComputeSystem takes no operation and does
        not wait for the system: it is called directly.)"""
        return cls(blocking.ComputeSystem.open(system_id))

    @staticmethod
    async def enumerate(
        query: schema.Document | str | None = None, *, timeout: float | None = None
    ) -> list[schema.Properties]:
        """The systems HCS has, filtered by a ``SystemQuery`` (ids, names, types, owners)."""
        text = wide(blocking.document_text(query))
        outcome = await run(
            lambda op: lib.HcsEnumerateComputeSystems(text, op),
            Where("HcsEnumerateComputeSystems"),
            TimeoutClass.QUERY,
            timeout,
            keep=(text,),
        )
        return schema.parse_list(schema.Properties, outcome.document or "[]")

    # -- the state machine -----------------------------------------------------------------

    async def _call(
        self, name: str, kind: TimeoutClass, timeout: float | None, options: Any = None
    ) -> str | None:
        function = getattr(lib, name)
        text = wide(blocking.document_text(options))
        extra = (ffi.NULL,) if name == "HcsModifyComputeSystem" else ()  # identity: none

        def start(op: Any) -> int:
            with self._system._handle.use(name) as handle:
                return int(function(handle, op, text, *extra))

        outcome = await run(start, Where(name, self.id), kind, timeout, keep=(text,))
        return outcome.document

    async def start(self, *, timeout: float | None = None) -> None:
        await self._call("HcsStartComputeSystem", TimeoutClass.SYSTEM_START, timeout)

    async def shutdown(self, options: Any = None, *, timeout: float | None = None) -> None:
        """Ask the guest to shut down (a system that is already stopped is fine)."""
        with contextlib.suppress(AlreadyStoppedError):
            await self._call("HcsShutDownComputeSystem", TimeoutClass.SYSTEM_STOP, timeout, options)

    async def terminate(self, *, timeout: float | None = None) -> None:
        """Stop the system now (a system that is already stopped is fine)."""
        with contextlib.suppress(AlreadyStoppedError):
            await self._call("HcsTerminateComputeSystem", TimeoutClass.SYSTEM_STOP, timeout)

    async def pause(self, options: Any = None, *, timeout: float | None = None) -> None:
        await self._call("HcsPauseComputeSystem", TimeoutClass.SYSTEM_PAUSE, timeout, options)

    async def resume(self, *, timeout: float | None = None) -> None:
        await self._call("HcsResumeComputeSystem", TimeoutClass.SYSTEM_PAUSE, timeout)

    async def save(self, options: Any = None, *, timeout: float | None = None) -> None:
        await self._call("HcsSaveComputeSystem", TimeoutClass.SYSTEM_SAVE, timeout, options)

    async def crash(self, options: Any = None, *, timeout: float | None = None) -> None:
        await self._call("HcsCrashComputeSystem", TimeoutClass.SYSTEM_STOP, timeout, options)

    async def modify(self, request: Any, *, timeout: float | None = None) -> None:
        """Apply a ``ModifySettingRequest`` (a model, a dict or JSON)."""
        await self._call("HcsModifyComputeSystem", TimeoutClass.MODIFY, timeout, request)

    async def properties(
        self, query: schema.Document | str | None = None, *, timeout: float | None = None
    ) -> schema.Properties:
        """``Properties`` for a ``System_PropertyQuery`` (basic properties without one)."""
        document = await self._call(
            "HcsGetComputeSystemProperties", TimeoutClass.QUERY, timeout, query
        )
        return schema.Properties.parse(document or "{}")

    # -- exit and events -------------------------------------------------------------------

    async def wait(self, timeout: float | None = None) -> schema.SystemExitStatus:
        """Wait until the system has stopped; its ``SystemExitStatus``."""
        event = await aio_events.wait_terminal(
            self._system._hub, timeout, "HcsWaitForComputeSystemExit"
        )
        status = event.payload
        assert isinstance(status, schema.SystemExitStatus)
        return status

    @property
    def exit_status(self) -> schema.SystemExitStatus | None:
        return self._system.exit_status

    def events(self, timeout: float | None = None) -> EventStream:
        """``async for event in system.events()``: every event of this handle, in order,
        until the system exits (ServiceDisconnectError if the service goes away)."""
        return EventStream(self._system._hub, timeout)

    def on_event(self, callback: EventCallback) -> Callable[[], None]:
        """Call ``callback(event)`` (a function or a coroutine function) on the running loop
        for each later event; returns an unsubscribe function."""
        return aio_events.subscribe(self._system._hub, callback)

    # -- processes -------------------------------------------------------------------------

    async def create_process(self, params: Any, *, timeout: float | None = None) -> Process:
        """Start a process from ``ProcessParameters`` (a model, a dict or JSON)."""
        text = wide(blocking.document_text(params))
        out = ffi.new("HCS_PROCESS *")

        def start(op: Any) -> int:
            with self._system._handle.use("HcsCreateProcess") as handle:
                return int(lib.HcsCreateProcess(handle, text, op, ffi.NULL, out))

        try:
            outcome = await run(
                start,
                Where("HcsCreateProcess", self.id),
                TimeoutClass.PROCESS_CREATE,
                timeout,
                keep=(text, out),
                process_info=True,
            )
        except BaseException:
            if out[0] != ffi.NULL:
                lib.HcsCloseProcess(out[0])
            raise
        info = outcome.process_info
        process = blocking_process.Process(
            self._system, out[0], int(info.ProcessId), info, catch_up=False
        )
        return await Process.attach(self, process)

    async def open_process(self, pid: int) -> Process:
        """A handle to a running process of the system (no std streams)."""
        out = ffi.new("HCS_PROCESS *")
        with self._system._handle.use("HcsOpenProcess") as handle:
            check(
                lib.HcsOpenProcess(handle, pid, blocking.GENERIC_ALL, out),
                operation="HcsOpenProcess",
                system_id=self.id,
                pid=pid,
            )
        process = blocking_process.Process(self._system, out[0], pid, catch_up=False)
        return await Process.attach(self, process)

    async def run(
        self,
        command: str | Sequence[str],
        *,
        input: bytes | None = None,
        timeout: float | None = None,
        check: bool = False,
        cwd: str | None = None,
        env: Mapping[str, str] | None = None,
        capture_output: bool = True,
    ) -> subprocess.CompletedProcess[bytes]:
        """Run a command to completion, as ``subprocess.run`` does: its output and exit code;
        ``check=True`` raises ``subprocess.CalledProcessError`` on a non-zero exit, a
        ``timeout`` terminates it and raises ``subprocess.TimeoutExpired``."""
        line, params = blocking.run_parameters(command, input, capture_output, cwd, env)
        async with await self.create_process(params) as process:
            try:
                out, err = await asyncio.wait_for(process.communicate(input), timeout)
            except asyncio.TimeoutError as exc:
                await process.terminate()
                raise subprocess.TimeoutExpired(line, timeout or 0.0) from exc
            code = process.exit_code
        assert code is not None  # communicate returned after the exit
        return blocking.completed(line, code, out, err, capture_output=capture_output, check=check)

    # -- lifetime --------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._system.closed

    async def close(self) -> None:
        """Close this handle (the system keeps running unless it was created with
        ``ShouldTerminateOnLastHandleClosed`` and this was its last handle). Operations still
        pending on it end with HCS's error for a closed handle."""
        self._system.close()

    async def __aenter__(self) -> ComputeSystem:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        return repr(self._system).replace("<ComputeSystem", "<aio.ComputeSystem", 1)

    def _repr_html_(self) -> str:
        from html import escape  # noqa: PLC0415 (notebooks only)

        return f"<code>{escape(repr(self))}</code>"
