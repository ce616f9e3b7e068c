"""A compute system (container or virtual machine): create or open it, drive its state machine,
run processes in it, watch its events, close it.

Every method is one HCS call through `pyhcs.operations` (bounded, cancelled on timeout) and
raises the typed error of `pyhcs.errors`, naming the call and the system. Benign outcomes are
decided here, once: shutting down or terminating a system that is already stopped succeeds.
"""

from __future__ import annotations

import contextlib
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import IO, Any, Final

from pyhcs import callbacks, schema
from pyhcs import hresult as hr
from pyhcs.errors import AlreadyStoppedError, check
from pyhcs.events import Event, EventHub, EventType
from pyhcs.handle import OwnedHandle
from pyhcs.operations import Where, run
from pyhcs.process import Process
from pyhcs.raw import ffi, lib
from pyhcs.raw.strings import take_wide, wide
from pyhcs.timeouts import TimeoutClass

#: The API; the other module-level names are shared with `pyhcs.aio` only.
__all__ = ["GENERIC_ALL", "ComputeSystem", "Config"]

#: How long `ComputeSystem.run` waits, after killing a process that ran out of time, for its
#: pipes to end.
DRAIN_AFTER_KILL: Final = 10.0

#: ``requestedAccess`` for HcsOpenComputeSystem (GENERIC_ALL, as hcsshim asks).
GENERIC_ALL: Final = 0x10000000

Config = schema.Document | str


def document_text(document: Any) -> str | None:
    """A model, a dict or JSON text as the JSON HCS takes (None stays NULL)."""
    if document is None:
        return None
    if isinstance(document, str):
        return document
    return schema.to_json(document)


class ComputeSystem:
    """One open handle to a compute system. Use `create`, `open` or `enumerate`."""

    def __init__(self, handle: Any, system_id: str) -> None:
        self.id = system_id
        self._hub = EventHub(f"compute system {system_id!r}", system_id=system_id)
        key = callbacks.register(self._hub.deliver)
        self._handle = OwnedHandle(
            self,
            handle,
            lib.HcsCloseComputeSystem,
            f"compute system {system_id!r}",
            lambda: callbacks.unregister(key),
            system_id=system_id,
        )
        try:
            check(
                lib.HcsSetComputeSystemCallback(
                    handle, 0, callbacks.context(key), callbacks.trampoline("HCS_EVENT_CALLBACK")
                ),
                operation="HcsSetComputeSystemCallback",
                system_id=system_id,
            )
        except BaseException:
            self.close()
            raise

    # -- getting one -----------------------------------------------------------------------

    @classmethod
    def create(
        cls, system_id: str, config: Config, *, timeout: float | None = None
    ) -> ComputeSystem:
        """Create a system from its ``ComputeSystem`` document (a model, a dict or JSON)."""
        text = document_text(config)
        out = ffi.new("HCS_SYSTEM *")
        where = Where("HcsCreateComputeSystem", system_id)
        try:
            run(
                lambda op: lib.HcsCreateComputeSystem(
                    wide(system_id), wide(text), op, ffi.NULL, out
                ),
                where,
                TimeoutClass.SYSTEM_CREATE,
                timeout,
            )
        except BaseException:
            if out[0] != ffi.NULL:  # HCS hands out the handle even when creation fails
                lib.HcsCloseComputeSystem(out[0])
            raise
        return cls(out[0], system_id)

    @classmethod
    def open(cls, system_id: str) -> ComputeSystem:
        """Open an existing system by id (another process may have created it)."""
        out = ffi.new("HCS_SYSTEM *")
        check(
            lib.HcsOpenComputeSystem(wide(system_id), GENERIC_ALL, out),
            operation="HcsOpenComputeSystem",
            system_id=system_id,
        )
        system = cls(out[0], system_id)
        system._catch_up()
        return system

    def _catch_up(self) -> None:
        """An opened system may have stopped before our callback existed: ask HCS for its exit
        status without waiting (HcsWaitForComputeSystemExit with a zero timeout)."""
        out = ffi.new("PWSTR *")
        with self._handle.use("HcsWaitForComputeSystemExit") as handle:
            code = hr.to_unsigned(lib.HcsWaitForComputeSystemExit(handle, 0, out))
        document = take_wide(out[0])
        if code == hr.S_OK and document:
            self._hub.record(Event(EventType.SYSTEM_EXITED, document))

    @staticmethod
    def enumerate(
        query: schema.Document | str | None = None, *, timeout: float | None = None
    ) -> list[schema.Properties]:
        """The systems HCS has, filtered by a ``SystemQuery`` (ids, names, types, owners)."""
        text = document_text(query)
        outcome = run(
            lambda op: lib.HcsEnumerateComputeSystems(wide(text), op),
            Where("HcsEnumerateComputeSystems"),
            TimeoutClass.QUERY,
            timeout,
        )
        return schema.parse_list(schema.Properties, outcome.document or "[]")

    # -- the state machine -----------------------------------------------------------------

    def _call(
        self,
        name: str,
        kind: TimeoutClass,
        timeout: float | None,
        options: Any = None,
    ) -> str | None:
        function = getattr(lib, name)
        text = document_text(options)
        extra = (ffi.NULL,) if name == "HcsModifyComputeSystem" else ()  # identity: none
        with self._handle.use(name) as handle:
            outcome = run(
                lambda op: function(handle, op, wide(text), *extra),
                Where(name, self.id),
                kind,
                timeout,
                owner=self._handle,
            )
        return outcome.document

    def start(self, *, timeout: float | None = None) -> None:
        self._call("HcsStartComputeSystem", TimeoutClass.SYSTEM_START, timeout)

    def shutdown(self, options: Any = None, *, timeout: float | None = None) -> None:
        """Ask the guest to shut down (a system that is already stopped is fine)."""
        try:
            self._call("HcsShutDownComputeSystem", TimeoutClass.SYSTEM_STOP, timeout, options)
        except AlreadyStoppedError:
            return

    def terminate(self, *, timeout: float | None = None) -> None:
        """Stop the system now (a system that is already stopped is fine)."""
        try:
            self._call("HcsTerminateComputeSystem", TimeoutClass.SYSTEM_STOP, timeout)
        except AlreadyStoppedError:
            return

    def pause(self, options: Any = None, *, timeout: float | None = None) -> None:
        self._call("HcsPauseComputeSystem", TimeoutClass.SYSTEM_PAUSE, timeout, options)

    def resume(self, *, timeout: float | None = None) -> None:
        self._call("HcsResumeComputeSystem", TimeoutClass.SYSTEM_PAUSE, timeout)

    def save(self, options: Any = None, *, timeout: float | None = None) -> None:
        self._call("HcsSaveComputeSystem", TimeoutClass.SYSTEM_SAVE, timeout, options)

    def crash(self, options: Any = None, *, timeout: float | None = None) -> None:
        self._call("HcsCrashComputeSystem", TimeoutClass.SYSTEM_STOP, timeout, options)

    def modify(self, request: Any, *, timeout: float | None = None) -> None:
        """Apply a ``ModifySettingRequest`` (a model, a dict or JSON)."""
        self._call("HcsModifyComputeSystem", TimeoutClass.MODIFY, timeout, request)

    def properties(
        self, query: schema.Document | str | None = None, *, timeout: float | None = None
    ) -> schema.Properties:
        """``Properties`` for a ``System_PropertyQuery`` (basic properties without one)."""
        document = self._call("HcsGetComputeSystemProperties", TimeoutClass.QUERY, timeout, query)
        return schema.Properties.parse(document or "{}")

    @property
    def state(self) -> str:
        """The system's state now (``Created``, ``Running``, ``Paused``, ``Stopped``, ...)."""
        state = self.properties().state
        return "" if state is None else str(getattr(state, "value", state))

    # -- exit and events -------------------------------------------------------------------

    def wait(self, timeout: float | None = None) -> schema.SystemExitStatus:
        """Wait until the system has stopped; its ``SystemExitStatus`` (ExitType, Attribution)."""
        event = self._hub.wait_terminal(timeout, "HcsWaitForComputeSystemExit")
        status = event.payload
        assert isinstance(status, schema.SystemExitStatus)
        return status

    @property
    def exit_status(self) -> schema.SystemExitStatus | None:
        event = self._hub.terminal
        if event is None or event.type != EventType.SYSTEM_EXITED:
            return None
        status = event.payload
        return status if isinstance(status, schema.SystemExitStatus) else None

    def events(self, timeout: float | None = None) -> Iterator[Event]:
        """Every event of this handle, in order, until the system exits or is closed."""
        return self._hub.iterate(timeout)

    def on_event(self, callback: Callable[[Event], None]) -> Callable[[], None]:
        """Call ``callback(event)`` for each later event; returns an unsubscribe function."""
        return self._hub.subscribe(callback)

    # -- processes -------------------------------------------------------------------------

    def create_process(self, params: Any, *, timeout: float | None = None) -> Process:
        """Start a process from ``ProcessParameters`` (a model, a dict or JSON)."""
        text = document_text(params)
        out = ffi.new("HCS_PROCESS *")
        with self._handle.use("HcsCreateProcess") as handle:
            try:
                outcome = run(
                    lambda op: lib.HcsCreateProcess(handle, wide(text), op, ffi.NULL, out),
                    Where("HcsCreateProcess", self.id),
                    TimeoutClass.PROCESS_CREATE,
                    timeout,
                    process_info=True,
                    owner=self._handle,
                )
            except BaseException:
                if out[0] != ffi.NULL:
                    lib.HcsCloseProcess(out[0])
                raise
        info = outcome.process_info
        return Process(self, out[0], int(info.ProcessId), info)

    def open_process(self, pid: int) -> Process:
        """A handle to a running process of the system (no std streams)."""
        out = ffi.new("HCS_PROCESS *")
        with self._handle.use("HcsOpenProcess") as handle:
            check(
                lib.HcsOpenProcess(handle, pid, GENERIC_ALL, out),
                operation="HcsOpenProcess",
                system_id=self.id,
                pid=pid,
            )
        return Process(self, out[0], pid)

    def run(
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
        line, params = run_parameters(command, input, capture_output, cwd, env)
        deadline = None if timeout is None else time.monotonic() + timeout
        with self.create_process(params) as process:
            streams = _Communication(process, input)
            try:
                out, err = streams.finish(deadline)
                left = None if deadline is None else max(0.0, deadline - time.monotonic())
                code = process.wait(left)
            except TimeoutError as exc:
                process.terminate()
                # Killed, the process's ends of the pipes close: the stream threads end, and
                # only then are the pipes closed under them (never a read of a reused fd).
                streams.join(time.monotonic() + DRAIN_AFTER_KILL)
                raise subprocess.TimeoutExpired(line, timeout or 0.0) from exc
        return completed(line, code, out, err, capture_output=capture_output, check=check)

    # -- lifetime --------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._handle.closed

    def close(self) -> None:
        """Close this handle (the system keeps running unless it was created with
        ``ShouldTerminateOnLastHandleClosed`` and this was its last handle)."""
        if self._handle.close():
            self._hub.close()

    def __enter__(self) -> ComputeSystem:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        status = self.exit_status
        state = "closed" if self.closed else ("exited" if status is not None else "open")
        return f"<ComputeSystem {self.id!r} {state}>"

    def _repr_html_(self) -> str:
        from html import escape  # noqa: PLC0415 (notebooks only)

        return f"<code>{escape(repr(self))}</code>"


def run_parameters(
    command: str | Sequence[str],
    data: bytes | None,
    capture_output: bool,
    cwd: str | None,
    env: Mapping[str, str] | None,
) -> tuple[str, dict[str, Any]]:
    """The command line and ``ProcessParameters`` of a subprocess-style ``run``."""
    line = command if isinstance(command, str) else subprocess.list2cmdline(list(command))
    params: dict[str, Any] = {
        "CommandLine": line,
        "CreateStdInPipe": data is not None,
        "CreateStdOutPipe": capture_output,
        "CreateStdErrPipe": capture_output,
    }
    if cwd is not None:
        params["WorkingDirectory"] = cwd
    if env is not None:
        params["Environment"] = dict(env)
    return line, params


def completed(
    line: str, code: int, out: bytes, err: bytes, *, capture_output: bool, check: bool
) -> subprocess.CompletedProcess[bytes]:
    """What a subprocess-style ``run`` returns (CalledProcessError for ``check``)."""
    result = subprocess.CompletedProcess(
        line, code, out if capture_output else None, err if capture_output else None
    )
    if check:
        result.check_returncode()
    return result


class _Communication:
    """Feed stdin and read stdout and stderr to their ends, each on a thread of its own, like
    ``Popen.communicate``: a process that reads no input or fills a pipe can never block the
    caller past its deadline."""

    def __init__(self, process: Process, data: bytes | None) -> None:
        self._chunks: dict[str, list[bytes]] = {"out": [], "err": []}
        self._failures: list[BaseException] = []
        self._threads = [
            threading.Thread(target=self._drain, args=(name, stream), name=f"pyhcs-run-{name}")
            for name, stream in (("out", process.stdout), ("err", process.stderr))
            if stream is not None
        ]
        if data is not None and process.stdin is not None:
            self._threads.append(
                threading.Thread(target=self._feed, args=(process, data), name="pyhcs-run-in")
            )
        for thread in self._threads:
            thread.daemon = True
            thread.start()

    def _drain(self, name: str, stream: IO[bytes]) -> None:
        try:
            while block := stream.read(1 << 16):
                self._chunks[name].append(block)
        except BaseException as exc:  # noqa: BLE001 - re-raised by finish() in the caller
            self._failures.append(exc)

    def _feed(self, process: Process, data: bytes) -> None:
        try:
            stream = process.stdin
            assert stream is not None
            view = memoryview(data)
            # A process that did not read it all is not an error, as in subprocess.
            with contextlib.suppress(BrokenPipeError):
                while view:
                    written = stream.write(view)
                    view = view[written or 0 :]
            process.close_stdin()
        except BaseException as exc:  # noqa: BLE001 - re-raised by finish() in the caller
            self._failures.append(exc)

    def join(self, deadline: float | None) -> bool:
        """Wait until every stream ended, or ``deadline`` (monotonic); whether they all did."""
        for thread in self._threads:
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        return not any(thread.is_alive() for thread in self._threads)

    def finish(self, deadline: float | None) -> tuple[bytes, bytes]:
        """Stdout and stderr once every stream ended; TimeoutError at ``deadline``
        (monotonic), the first failure of a stream thread if one failed."""
        if not self.join(deadline):
            raise TimeoutError("the process did not finish in time")
        if self._failures:
            raise self._failures[0]
        return b"".join(self._chunks["out"]), b"".join(self._chunks["err"])
