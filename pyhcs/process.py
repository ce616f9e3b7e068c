"""A process in a compute system: its std streams as files, its exit, signals and console.

Exit is learned from the ``ProcessExited`` event, not by holding the handle in a blocking wait,
so `close` never waits behind `wait`. A process that exited before its callback was registered
(HCS does not replay events) is caught by one ``HcsGetProcessProperties`` right after the
registration: that status is HCS's own, never a made-up one.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from typing import IO, TYPE_CHECKING, Any, Final

from pyhcs import callbacks, schema
from pyhcs.errors import AlreadyStoppedError, check
from pyhcs.events import Event, EventHub, EventType
from pyhcs.handle import OwnedHandle
from pyhcs.operations import Where, run
from pyhcs.raw import INVALID_HANDLE_VALUE, ffi, lib, open_pipe
from pyhcs.raw.strings import wide
from pyhcs.timeouts import TimeoutClass

#: The API; the other module-level names are shared with `pyhcs.aio` only.
__all__ = ["CONSOLE_SIGNALS", "UNKNOWN_EXIT", "Process"]

if TYPE_CHECKING:
    from pyhcs.system import ComputeSystem

#: Exit code when HCS could not tell one (the wait itself failed), as hcsshim reports it.
UNKNOWN_EXIT = -1

#: Windows console signals ``signal()`` accepts by name.
CONSOLE_SIGNALS = ("CtrlC", "CtrlBreak", "CtrlClose", "CtrlLogOff", "CtrlShutdown")


#: The ``ProcessModifyRequest`` that closes the process's stdin.
CLOSE_STDIN_REQUEST: Final[dict[str, Any]] = {
    "Operation": "CloseHandle",
    "CloseHandle": {"Handle": "StdIn"},
}


def console_size_request(width: int, height: int) -> dict[str, Any]:
    """The ``ProcessModifyRequest`` that resizes the console."""
    return {"Operation": "ConsoleSize", "ConsoleSize": {"Height": height, "Width": width}}


def _stream(handle: Any, mode: str) -> IO[bytes] | None:
    if handle in (ffi.NULL, INVALID_HANDLE_VALUE):
        return None
    return open_pipe(handle, mode)


class Process:
    """A process started with `ComputeSystem.create_process` or opened by pid."""

    def __init__(
        self,
        system: ComputeSystem,
        handle: Any,
        pid: int,
        info: Any = None,
        *,
        catch_up: bool = True,
    ) -> None:
        self.system = system
        self.pid = pid
        self.stdin: IO[bytes] | None = None
        self.stdout: IO[bytes] | None = None
        self.stderr: IO[bytes] | None = None
        if info is not None:
            self.stdin = _stream(info.StdInput, "wb")
            self.stdout = _stream(info.StdOutput, "rb")
            self.stderr = _stream(info.StdError, "rb")
        self._hub = EventHub(f"process {pid} of {system.id!r}", system_id=system.id, pid=pid)
        key = callbacks.register(self._hub.deliver)
        self._key = key
        self._handle = OwnedHandle(
            self,
            handle,
            lib.HcsCloseProcess,
            f"process {pid} of compute system {system.id!r}",
            lambda: callbacks.unregister(key),
            system_id=system.id,
            pid=pid,
        )
        try:
            check(
                lib.HcsSetProcessCallback(
                    handle, 0, callbacks.context(key), callbacks.trampoline("HCS_EVENT_CALLBACK")
                ),
                operation="HcsSetProcessCallback",
                system_id=system.id,
                pid=pid,
            )
            if catch_up:  # (pyhcs.aio does it with an awaited query instead)
                self.caught_up(self.properties())
        except BaseException:
            self.close()
            raise

    def caught_up(self, status: schema.ProcessStatus) -> None:
        """Record the exit that ``status`` (queried after the callback was registered) shows,
        if the process exited before the callback was there to hear it."""
        if status.exited:
            self._hub.record(Event(EventType.PROCESS_EXITED, status.to_json()))

    def _where(self, operation: str) -> Where:
        return Where(operation, self.system.id, self.pid)

    # -- exit ------------------------------------------------------------------------------

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the exit; its exit code (-1 if HCS could not tell one)."""
        event = self._hub.wait_terminal(timeout, "HcsWaitForProcessExit")
        return exit_code_of(event)

    @property
    def exit_code(self) -> int | None:
        """The exit code once the process has exited, else None."""
        event = self._hub.terminal
        if event is None or event.type != EventType.PROCESS_EXITED:
            return None
        return exit_code_of(event)

    def poll(self) -> int | None:
        """subprocess-style: the exit code if it exited, else None."""
        return self.exit_code

    # -- control ---------------------------------------------------------------------------

    def signal(self, signal: str | int, *, timeout: float | None = None) -> None:
        """Send a console signal (``"CtrlC"``, ``"CtrlBreak"``, ...) or, on a Linux guest, a
        signal number."""
        options = json.dumps({"Signal": signal})
        self._call(
            "HcsSignalProcess",
            lambda handle, op: lib.HcsSignalProcess(handle, op, wide(options)),
            TimeoutClass.PROCESS_SIGNAL,
            timeout,
        )

    def terminate(self, *, timeout: float | None = None) -> None:
        """Kill the process; one that already exited is not an error."""
        with contextlib.suppress(AlreadyStoppedError):
            self._call(
                "HcsTerminateProcess",
                lambda handle, op: lib.HcsTerminateProcess(handle, op, ffi.NULL),
                TimeoutClass.PROCESS_SIGNAL,
                timeout,
            )

    kill = terminate

    def _modify(self, request: dict[str, Any], timeout: float | None) -> None:
        text = json.dumps(request)
        self._call(
            "HcsModifyProcess",
            lambda handle, op: lib.HcsModifyProcess(handle, op, wide(text)),
            TimeoutClass.MODIFY,
            timeout,
        )

    def _call(
        self,
        name: str,
        start: Callable[[Any, Any], int],
        kind: TimeoutClass,
        timeout: float | None,
    ) -> str | None:
        """One operation-taking call on this process's handle: ``start(handle, op)``, bounded
        and cancelled on timeout (or on close); its result document."""
        with self._handle.use(name) as handle:
            outcome = run(
                lambda op: start(handle, op),
                self._where(name),
                kind,
                timeout,
                owner=self._handle,
            )
        return outcome.document

    def resize_console(self, width: int, height: int, *, timeout: float | None = None) -> None:
        """Set the size of the process's console (EmulateConsole)."""
        self._modify(console_size_request(width, height), timeout)

    def close_stdin(self, *, timeout: float | None = None) -> None:
        """End the process's stdin (it reads EOF) and close our end of it.

        HCS is told first and our end closed after, as hcsshim does: closing our end first
        lets the process see EOF, exit, and make the request fail. A process that exited
        already has no stdin left to end: that is not an error."""
        with contextlib.suppress(AlreadyStoppedError):
            self._modify(CLOSE_STDIN_REQUEST, timeout)
        if self.stdin is not None:
            self.stdin.close()
            self.stdin = None

    def properties(self, *, timeout: float | None = None) -> schema.ProcessStatus:
        """``ProcessStatus``: pid, whether it exited, its exit code."""
        document = self._call(
            "HcsGetProcessProperties",
            lambda handle, op: lib.HcsGetProcessProperties(handle, op, ffi.NULL),
            TimeoutClass.QUERY,
            timeout,
        )
        return schema.ProcessStatus.parse(document or "{}")

    # -- events ----------------------------------------------------------------------------

    def events(self, timeout: float | None = None) -> Iterator[Event]:
        """Every event of the process, in order, until it exits or is closed."""
        return self._hub.iterate(timeout)

    def on_event(self, callback: Callable[[Event], None]) -> Callable[[], None]:
        """Call ``callback(event)`` for each later event; returns an unsubscribe function."""
        return self._hub.subscribe(callback)

    # -- lifetime --------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._handle.closed

    def close(self) -> None:
        """Close the handle and our std streams (the process keeps running)."""
        for name in ("stdin", "stdout", "stderr"):
            stream = getattr(self, name)
            if stream is not None:
                stream.close()
                setattr(self, name, None)
        if self._handle.close():
            self._hub.close()

    def __enter__(self) -> Process:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        code = self.exit_code
        state = "closed" if self.closed else ("running" if code is None else f"exited {code}")
        return f"<Process pid={self.pid} system={self.system.id!r} {state}>"

    def _repr_html_(self) -> str:
        from html import escape  # noqa: PLC0415 (notebooks only)

        return f"<code>{escape(repr(self))}</code>"


def exit_code_of(event: Event) -> int:
    """The exit code a ProcessExited event carries (-1 when HCS could not tell one)."""
    status = event.payload
    if not isinstance(status, schema.ProcessStatus):
        return UNKNOWN_EXIT
    if status.last_wait_result not in (None, 0) or status.exit_code is None:
        return UNKNOWN_EXIT
    return int(status.exit_code)
