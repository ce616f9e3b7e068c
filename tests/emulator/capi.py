"""A thin C-level driver over an emulator table, used by the tests and their child processes.

It calls the function pointers exactly as a C program would (cffi out-parameters, UTF-16
strings, LocalFree of every returned string) and bounds every wait.
"""

from __future__ import annotations

import errno
import json
import os
import select
import threading
import time
from collections.abc import Callable
from typing import Any

from pyhcs.raw.ffi import ffi

WAIT_MS = 10_000
#: Upper bound for reading a pipe to its end (``read_all``).
READ_TIMEOUT = 20.0
#: Prefix that holds a spawned process until the test writes one line to its stdin, then
#: ``exec``s the original command line (split the same way, so the argv is unchanged).
GATE = 'sh -c "read _ && exec \\"$0\\" \\"$@\\"" '


def u32(value: int) -> int:
    return value & 0xFFFFFFFF


class Journal:
    """One sequence of (label, event type) shared by several ``Events``, appended inside the
    callbacks, so a test sees the order in which events of different handles were delivered."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.items: list[tuple[str, int]] = []

    def record(self, label: str, kind: int) -> None:
        with self.lock:
            self.items.append((label, kind))

    def snapshot(self) -> list[tuple[str, int]]:
        with self.lock:
            return list(self.items)


class Events:
    """Records the events of one handle; thread-safe, waitable. With a ``journal`` each event is
    also recorded there under ``label``, in delivery order across handles."""

    def __init__(self, journal: Journal | None = None, label: str = "") -> None:
        self.items: list[tuple[int, str | None, Any]] = []
        self.cond = threading.Condition()
        self.threads: set[int] = set()
        self.journal = journal
        self.label = label
        self.pointer = ffi.callback("HCS_EVENT_CALLBACK", self._on_event)

    def _on_event(self, event: Any, context: Any) -> None:
        data = ffi.string(event.EventData) if event.EventData != ffi.NULL else None
        if self.journal is not None:
            self.journal.record(self.label, int(event.Type) & 0xFFFFFFFF)
        with self.cond:
            self.items.append((int(event.Type) & 0xFFFFFFFF, data, event.Operation))
            self.threads.add(threading.get_ident())
            self.cond.notify_all()

    def wait_for(self, kind: int, timeout: float = 10.0) -> str | None:
        with self.cond:
            ok = self.cond.wait_for(lambda: any(k == kind for k, _d, _o in self.items), timeout)
            assert ok, f"no event {kind:#x} within {timeout}s; got {self.items}"
            return next(d for k, d, _o in self.items if k == kind)

    def kinds(self) -> list[int]:
        with self.cond:
            return [k for k, _d, _o in self.items]


class CApi:
    """Convenience over the raw table; every method is a handful of C calls."""

    def __init__(self, table: Any) -> None:
        self.t = table

    def take(self, out: Any) -> str | None:
        """Copy and LocalFree a returned string."""
        if out[0] == ffi.NULL:
            return None
        text = str(ffi.string(out[0]))
        assert self.t.LocalFree(out[0]) == ffi.NULL
        return text

    def wait(self, op: Any, timeout_ms: int = WAIT_MS) -> tuple[int, str | None]:
        doc = ffi.new("PWSTR *")
        code = u32(self.t.HcsWaitForOperationResult(op, timeout_ms, doc))
        return code, self.take(doc)

    def run(self, start: Callable[[Any], int]) -> tuple[int, str | None]:
        """Create an op, start the call with it, wait, close the op."""
        op = self.t.HcsCreateOperation(ffi.NULL, ffi.NULL)
        try:
            accepted = u32(start(op))
            if accepted != 0:
                return accepted, None
            return self.wait(op)
        finally:
            self.t.HcsCloseOperation(op)

    def create(self, system_id: str, doc: dict[str, Any] | str) -> tuple[Any, int, str | None]:
        out = ffi.new("HCS_SYSTEM *")
        text = doc if isinstance(doc, str) else json.dumps(doc)
        code, result = self.run(
            lambda op: self.t.HcsCreateComputeSystem(system_id, text, op, ffi.NULL, out)
        )
        return out[0], code, result

    def open(self, system_id: str) -> tuple[Any, int]:
        out = ffi.new("HCS_SYSTEM *")
        code = u32(self.t.HcsOpenComputeSystem(system_id, 0x10000000, out))
        return (out[0] if code == 0 else ffi.NULL), code

    def system_op(
        self, name: str, system: Any, options: str | None = None
    ) -> tuple[int, str | None]:
        function = getattr(self.t, name)
        return self.run(lambda op: function(system, op, options or ffi.NULL))

    def properties(self, system: Any, query: dict[str, Any] | None = None) -> dict[str, Any]:
        code, doc = self.system_op(
            "HcsGetComputeSystemProperties", system, json.dumps(query) if query else None
        )
        assert code == 0, hex(code)
        assert doc is not None
        result: dict[str, Any] = json.loads(doc)
        return result

    def spawn(
        self, system: Any, params: dict[str, Any], events: Events | None = None
    ) -> tuple[Any, int, Any, str | None]:
        """CreateProcess; returns (process handle, HRESULT, HCS_PROCESS_INFORMATION, doc).

        HCS does not replay events to a callback registered late, and a callback can only be
        registered once HcsCreateProcess has returned the handle, so a fast process could exit
        first. With ``events`` the process is therefore held: its command line runs behind
        ``GATE`` (a shell that waits for one line on stdin, then ``exec``s the original argv, same
        pid), ``events`` is registered, and only then is the line written. If the test did not
        ask for a stdin pipe, the one made for the gate is closed again (StdInput is NULL).
        """
        wants_stdin = bool(params.get("CreateStdInPipe"))
        if events is not None:
            command = str(params["CommandLine"])
            assert not params.get("EmulateConsole"), "a gated process cannot use a pty"
            assert "\\" not in command.split(" ", 1)[0], "gated argv[0] must be a host program"
            params = {**params, "CommandLine": GATE + command, "CreateStdInPipe": True}
        out = ffi.new("HCS_PROCESS *")
        info = ffi.new("HCS_PROCESS_INFORMATION *")
        op = self.t.HcsCreateOperation(ffi.NULL, ffi.NULL)
        try:
            accepted = u32(self.t.HcsCreateProcess(system, json.dumps(params), op, ffi.NULL, out))
            assert accepted == 0, hex(accepted)
            if events is not None:
                assert self.t.HcsSetProcessCallback(out[0], 0, ffi.NULL, events.pointer) == 0
            doc = ffi.new("PWSTR *")
            code = u32(self.t.HcsWaitForOperationResultAndProcessInfo(op, WAIT_MS, info, doc))
            if events is not None and code == 0:
                os.write(fd_of(info.StdInput), b"go\n")  # release the gate
                if not wants_stdin:
                    assert self.t.CloseHandle(info.StdInput) == 1
                    info.StdInput = ffi.NULL
            return out[0], code, info, self.take(doc)
        finally:
            self.t.HcsCloseOperation(op)

    def process_op(
        self, name: str, process: Any, options: str | None = None
    ) -> tuple[int, str | None]:
        function = getattr(self.t, name)
        return self.run(lambda op: function(process, op, options or ffi.NULL))

    def wait_process(self, process: Any, timeout_ms: int = WAIT_MS) -> tuple[int, dict[str, Any]]:
        out = ffi.new("PWSTR *")
        code = u32(self.t.HcsWaitForProcessExit(process, timeout_ms, out))
        text = self.take(out)
        return code, (json.loads(text) if text else {})

    def wait_system(self, system: Any, timeout_ms: int = WAIT_MS) -> tuple[int, dict[str, Any]]:
        out = ffi.new("PWSTR *")
        code = u32(self.t.HcsWaitForComputeSystemExit(system, timeout_ms, out))
        text = self.take(out)
        return code, (json.loads(text) if text else {})


def fd_of(handle: Any) -> int:
    return int(ffi.cast("uintptr_t", handle))


def _wait_readable(fd: int, deadline: float, what: str, sofar: bytes) -> None:
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLHUP | select.POLLERR)
    remaining = deadline - time.monotonic()
    if remaining <= 0 or not poller.poll(remaining * 1000):
        raise AssertionError(f"{what}: nothing more on fd {fd} in time; read so far: {sofar!r}")


def _read(fd: int) -> bytes:
    try:
        return os.read(fd, 65536)
    except OSError as exc:
        if exc.errno == errno.EIO:  # a pty's master once the slave side is gone: the end
            return b""
        raise


def read_all(handle: Any, limit: int = 1 << 20, timeout: float = READ_TIMEOUT) -> bytes:
    """Read a pipe (or pty) to its end (or ``limit`` bytes); fails if that takes over
    ``timeout`` s."""
    fd = fd_of(handle)
    data = b""
    deadline = time.monotonic() + timeout
    while True:
        _wait_readable(fd, deadline, f"read_all not at the end after {timeout}s", data[-200:])
        chunk = _read(fd)
        if not chunk:
            return data
        data += chunk
        if len(data) > limit:
            return data


def read_line(handle: Any, timeout: float = READ_TIMEOUT) -> bytes:
    """Read until the data read ends with a newline (or EOF), within ``timeout`` s. Reads whole
    chunks: meant for a writer that writes one line at a time (atomic on a pipe)."""
    fd = handle if isinstance(handle, int) else fd_of(handle)
    data = b""
    deadline = time.monotonic() + timeout
    while not data.endswith(b"\n"):
        _wait_readable(fd, deadline, f"read_line: no full line after {timeout}s", data)
        chunk = _read(fd)
        if not chunk:
            break
        data += chunk
    return data
