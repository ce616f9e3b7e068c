"""A process in a compute system, for an event loop: asyncio streams, awaited exit and calls.

The std streams are asyncio's own ``StreamWriter`` (stdin) and ``StreamReader`` (stdout,
stderr), connected to the pipe handles with ``loop.connect_write_pipe`` /
``loop.connect_read_pipe``, as `asyncio.subprocess` does: ``read``, ``readline``,
``readexactly``, ``async for line in process.stdout``, ``write`` + ``drain`` with flow control
and back-pressure, and no thread per stream. On Windows this needs the proactor event loop
(asyncio's default there). The transport owns the pipe file: closing it is the pipe's one
``CloseHandle``.

Everything else is shared with the blocking `pyhcs.process.Process` this object wraps: the
handle (closed once), the event hub fed by HCS's callback, the exit-code rules.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Any, Final

from pyhcs import process as blocking
from pyhcs import schema
from pyhcs.aio import events as aio_events
from pyhcs.aio.events import EventCallback, EventStream
from pyhcs.aio.operations import run
from pyhcs.errors import AlreadyStoppedError, OperationTimeoutError
from pyhcs.operations import Where
from pyhcs.raw import lib
from pyhcs.raw.strings import wide
from pyhcs.timeouts import TimeoutClass, resolve

if TYPE_CHECKING:
    from pyhcs.aio.system import ComputeSystem

__all__ = ["Process"]

#: How long closing waits for a pipe transport to close its pipe (it is scheduled at once).
PIPE_CLOSE_TIMEOUT: Final = 10.0


class _Pipe(asyncio.StreamReaderProtocol):
    """A stream protocol that also says when its transport has closed the pipe (the transport
    closes the pipe file right after ``connection_lost``, in the same loop callback)."""

    def __init__(self, reader: asyncio.StreamReader, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(reader, loop=loop)
        self.gone: asyncio.Future[None] = loop.create_future()
        self.pipe: asyncio.BaseTransport | None = None

    def itself(self) -> _Pipe:
        """The protocol factory that connect_*_pipe asks for."""
        return self

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.pipe = transport

    def close(self) -> None:
        """Close the pipe now; a stdin pipe drops what the process has not read yet."""
        if self.pipe is None or self.pipe.is_closing():
            return
        if isinstance(self.pipe, asyncio.WriteTransport):
            self.pipe.abort()
        else:
            self.pipe.close()

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if not self.gone.done():
            self.gone.set_result(None)


class Process:
    """A process started with `ComputeSystem.create_process` or opened by pid. Use it as
    ``async with``; `close` is awaited."""

    def __init__(self, system: ComputeSystem, process: blocking.Process) -> None:
        self.system = system
        self.pid = process.pid
        self.stdin: asyncio.StreamWriter | None = None
        self.stdout: asyncio.StreamReader | None = None
        self.stderr: asyncio.StreamReader | None = None
        self._process = process
        self._pipes: list[_Pipe] = []

    @classmethod
    async def attach(cls, system: ComputeSystem, process: blocking.Process) -> Process:
        """Wrap a blocking Process made without its catch-up query: do that query awaited,
        connect the streams (internal: use `ComputeSystem.create_process`/`open_process`)."""
        self = cls(system, process)
        try:
            process.caught_up(await self.properties())
            await self._connect()
        except BaseException:
            await self.close()
            raise
        return self

    async def _connect(self) -> None:
        """Hand each pipe file to a transport, which owns it from then on (a file not handed
        over yet stays with the blocking Process, whose close closes it)."""
        loop = asyncio.get_running_loop()
        for name in ("stdout", "stderr", "stdin"):
            file: IO[bytes] | None = getattr(self._process, name)
            if file is None:
                continue
            reader = asyncio.StreamReader()
            pipe = _Pipe(reader, loop)
            if name == "stdin":
                transport, _ = await loop.connect_write_pipe(pipe.itself, file)
                self.stdin = asyncio.StreamWriter(transport, pipe, None, loop)
            else:
                await loop.connect_read_pipe(pipe.itself, file)
                setattr(self, name, reader)
            setattr(self._process, name, None)
            self._pipes.append(pipe)

    def _where(self, operation: str) -> Where:
        return Where(operation, self.system.id, self.pid)

    async def _call(
        self, name: str, kind: TimeoutClass, timeout: float | None, options: str | None
    ) -> str | None:
        function = getattr(lib, name)
        text = wide(options)  # NULL for None

        def start(op: Any) -> int:
            with self._process._handle.use(name) as handle:
                return int(function(handle, op, text))

        outcome = await run(start, self._where(name), kind, timeout, keep=(text,))
        return outcome.document

    # -- exit ------------------------------------------------------------------------------

    async def wait(self, timeout: float | None = None) -> int:
        """Wait for the exit; its exit code (-1 if HCS could not tell one)."""
        event = await aio_events.wait_terminal(self._process._hub, timeout, "HcsWaitForProcessExit")
        return blocking.exit_code_of(event)

    @property
    def exit_code(self) -> int | None:
        """The exit code once the process has exited, else None."""
        return self._process.exit_code

    @property
    def returncode(self) -> int | None:
        """`exit_code` under asyncio.subprocess's name."""
        return self._process.exit_code

    # -- control ---------------------------------------------------------------------------

    async def signal(self, signal: str | int, *, timeout: float | None = None) -> None:
        """Send a console signal (``"CtrlC"``, ...) or, on a Linux guest, a signal number."""
        await self._call(
            "HcsSignalProcess",
            TimeoutClass.PROCESS_SIGNAL,
            timeout,
            json.dumps({"Signal": signal}),
        )

    async def terminate(self, *, timeout: float | None = None) -> None:
        """Kill the process; one that already exited is not an error."""
        with contextlib.suppress(AlreadyStoppedError):
            await self._call("HcsTerminateProcess", TimeoutClass.PROCESS_SIGNAL, timeout, None)

    kill = terminate

    async def _modify(self, request: dict[str, Any], timeout: float | None) -> None:
        await self._call("HcsModifyProcess", TimeoutClass.MODIFY, timeout, json.dumps(request))

    async def resize_console(
        self, width: int, height: int, *, timeout: float | None = None
    ) -> None:
        """Set the size of the process's console (EmulateConsole)."""
        await self._modify(blocking.console_size_request(width, height), timeout)

    async def close_stdin(self, *, timeout: float | None = None) -> None:
        """Flush and close our end of stdin, then tell HCS to close the process's (it reads
        EOF); a process that already exited is not an error."""
        writer, self.stdin = self.stdin, None
        if writer is not None:
            writer.close()
            try:
                await asyncio.wait_for(writer.wait_closed(), resolve(TimeoutClass.MODIFY, timeout))
            except (BrokenPipeError, ConnectionResetError):
                pass  # the process stopped reading: as subprocess, not an error
            except asyncio.TimeoutError:
                writer.transport.abort()  # it does not read what is left: drop it
        with contextlib.suppress(AlreadyStoppedError):  # it exited: no stdin left to close
            await self._modify(blocking.CLOSE_STDIN_REQUEST, timeout)

    async def properties(self, *, timeout: float | None = None) -> schema.ProcessStatus:
        """``ProcessStatus``: pid, whether it exited, its exit code."""
        document = await self._call("HcsGetProcessProperties", TimeoutClass.QUERY, timeout, None)
        return schema.ProcessStatus.parse(document or "{}")

    async def communicate(self, input: bytes | None = None) -> tuple[bytes, bytes]:
        """Feed ``input`` to stdin (then close it), read stdout and stderr to their ends,
        concurrently, as ``asyncio.subprocess.Process.communicate``; then wait for the exit.
        Bound it with ``asyncio.wait_for``."""

        async def feed() -> None:
            if self.stdin is None:
                return
            if input:
                self.stdin.write(input)
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    await self.stdin.drain()
            await self.close_stdin()

        async def drain(stream: asyncio.StreamReader | None) -> bytes:
            return b"" if stream is None else await stream.read()

        _, out, err = await asyncio.gather(feed(), drain(self.stdout), drain(self.stderr))
        await self.wait()
        return out, err

    # -- events ----------------------------------------------------------------------------

    def events(self, timeout: float | None = None) -> EventStream:
        """``async for event in process.events()``: every event, in order, until the exit."""
        return EventStream(self._process._hub, timeout)

    def on_event(self, callback: EventCallback) -> Callable[[], None]:
        """Call ``callback(event)`` on this loop for each later event; returns an
        unsubscribe function."""
        return aio_events.subscribe(self._process._hub, callback)

    # -- lifetime --------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._process.closed

    async def close(self) -> None:
        """Close our std streams and the handle (the process keeps running)."""
        self.stdin = self.stdout = self.stderr = None
        pipes, self._pipes = self._pipes, []
        for pipe in pipes:
            pipe.close()
        try:
            gone = asyncio.gather(*(asyncio.shield(pipe.gone) for pipe in pipes))
            await asyncio.wait_for(gone, PIPE_CLOSE_TIMEOUT)
        except asyncio.TimeoutError:
            raise OperationTimeoutError(
                f"the std pipes of process {self.pid} did not close within "
                f"{PIPE_CLOSE_TIMEOUT} s (is the event loop blocked?)",
                operation="CloseHandle",
                system_id=self.system.id,
                pid=self.pid,
            ) from None
        finally:
            self._process.close()

    async def __aenter__(self) -> Process:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        return repr(self._process).replace("<Process", "<aio.Process", 1)

    def _repr_html_(self) -> str:
        from html import escape  # noqa: PLC0415 (notebooks only)

        return f"<code>{escape(repr(self))}</code>"
