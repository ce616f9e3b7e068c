"""The client's connection to the service: request multiplexing and who reads the socket.

Every request gets an id; a reply is matched to its waiter (synchronous calls) or its completion
function (operations). Records without a reply id are events, handed to ``on_event``. When the
socket breaks, every outstanding request completes with HCS_E_SERVICE_DISCONNECT and
``on_disconnect`` runs once, so no caller is left waiting.

Who reads. Exactly one thread at a time reads the socket and dispatches what arrives, in order.
A thread waiting for a reply (``wait_until``: HcsWaitForOperationResult, synchronous calls)
reads the socket itself when no other thread does, so its reply needs no hand-off from another
thread (a cross-thread wake-up is the largest cost of a round trip on a small VM). When no
caller is reading, the background reader thread does, so events and completions still arrive
while the program does something else. It steps aside for ``READER_GRACE`` seconds after a
caller last read, so a caller that calls again soon reads directly instead of waiting for the
background thread to hand its reply over; a caller that read for longer than that wakes it when
it stops. A caller reading waits in poll() on the socket and on a wake pipe, so a completion
from elsewhere (cancel, an injected fault, a disconnect) or a timeout ends its wait as well.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import os
import select
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pyhcs import hresult as hr
from pyhcs.emulator import documents, protocol
from pyhcs.emulator.client import autostart

Reply = dict[str, Any]
#: Called on the reader thread with the reply and the fds that came with it (now owned).
Completion = Callable[[Reply, list[int]], None]

#: Default bound for a synchronous round trip that has no timeout of its own.
REQUEST_TIMEOUT = 120.0
#: How long the background reader leaves the socket to callers after one last read it.
READER_GRACE = 0.005
#: While a caller reads for longer than READER_GRACE, the background reader only checks this
#: often (the caller wakes it when it stops reading).
LONG_READ_CHECK = 1.0
#: The background reader's mark in ``Connection._reader``.
_BACKGROUND = -1
_READABLE = select.POLLIN | select.POLLHUP | select.POLLERR


def disconnected_reply() -> Reply:
    return {"hr": hr.HCS_E_SERVICE_DISCONNECT, "doc": None}


def own_fd(fd: int) -> int:
    """Make a received fd a HANDLE-able value: >= 3 (never NULL-ish) and close-on-exec."""
    if fd >= 3:
        fcntl.fcntl(fd, fcntl.F_SETFD, fcntl.FD_CLOEXEC)
        return fd
    new = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 3)
    os.close(fd)
    return new


class Connection:
    """One socket to the service, shared by every thread of the client process."""

    def __init__(
        self,
        directory: Path,
        on_event: Callable[[dict[str, Any]], None],
        on_disconnect: Callable[[], None],
    ) -> None:
        self.directory = directory
        self._sock = autostart.connect(directory)
        self._on_event = on_event
        self._on_disconnect = on_disconnect
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._ids = itertools.count(1)
        self._pending: dict[int, Completion] = {}
        self.disconnected = False
        # Who reads the socket (see the module docstring), guarded by _turn's lock.
        self._turn = threading.Lock()
        self._callers = threading.Condition(self._turn)  # waiters for a reply or the turn
        self._background = threading.Condition(self._turn)  # the background reader
        self._reader: int | None = None  # thread ident, _BACKGROUND, or None: nobody
        self._waiting = 0  # callers in wait_until that do not read
        self._last_read = 0.0  # when a caller last stopped reading (monotonic)
        self._read_since = 0.0  # when the reading caller started reading (monotonic)
        self._closing = False
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._poll = select.poll()
        self._poll.register(self._sock.fileno(), _READABLE)
        self._poll.register(self._wake_r, select.POLLIN)
        self._reader_thread = threading.Thread(
            target=self._read, name="pyhcs-emu-reader", daemon=True
        )
        self._reader_thread.start()

    def submit(self, message: dict[str, Any], completion: Completion | None) -> None:
        """Send a request; ``completion`` receives the reply (or a disconnect reply)."""
        if completion is not None:
            request_id = next(self._ids)
            message["id"] = request_id
            with self._lock:
                if self.disconnected:
                    gone = True
                else:
                    gone = False
                    self._pending[request_id] = completion
            if gone:
                completion(disconnected_reply(), [])
                return
        try:
            data = protocol.encode(message)
        except protocol.MessageTooLargeError as exc:
            # Refused before anything is sent: that call fails, the connection carries on.
            if completion is not None:
                with self._lock:
                    self._pending.pop(message["id"], None)
                failure = documents.result_error(hr.E_INVALIDARG, f"the request: {exc}")
                completion({"hr": hr.E_INVALIDARG, "doc": failure}, [])
            return
        try:
            with self._send_lock:
                protocol.send_bytes(self._sock, data)
        except protocol.ConnectionClosedError:
            self._shut()

    def call(
        self, message: dict[str, Any], timeout: float | None = None
    ) -> tuple[Reply, list[int]]:
        """Synchronous request; a reply that does not come in time counts as RPC_S_CALL_FAILED."""
        done = threading.Event()
        box: list[tuple[Reply, list[int]]] = []

        def complete(reply: Reply, fds: list[int]) -> None:
            box.append((reply, fds))
            done.set()

        self.submit(message, complete)
        if timeout is None:
            bound: float | None = REQUEST_TIMEOUT
        elif timeout == float("inf"):
            bound = None  # INFINITE asked by the caller; a disconnect still ends it
        else:
            bound = timeout + REQUEST_TIMEOUT
        if not self.wait_until(done, bound):
            return {"hr": hr.RPC_S_CALL_FAILED, "doc": None}, []
        return box[0]

    # -- reading ---------------------------------------------------------------------------

    def wait_until(self, done: threading.Event, timeout: float | None) -> bool:
        """Wait until ``done`` is set (False after ``timeout`` seconds; None: no bound but a
        disconnect). Whatever sets ``done`` outside the socket's dispatch calls ``wake``."""
        deadline = None if timeout is None else time.monotonic() + timeout
        me = threading.get_ident()
        with self._turn:
            self._waiting += 1
            try:
                while not done.is_set():
                    if self._reader is None and not self.disconnected:
                        self._reader = me
                        self._read_since = time.monotonic()
                        break
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        return False
                    self._callers.wait(remaining)
                else:
                    return True
            finally:
                self._waiting -= 1
        try:
            return self._read_until(done, deadline)
        finally:
            with self._turn:
                self._reader = None
                self._last_read = time.monotonic()
                if self._waiting:
                    self._callers.notify_all()
                if self._last_read - self._read_since >= READER_GRACE:
                    self._background.notify_all()  # it sleeps long during a long read
                if self._closing:
                    self._close_wake_pipe()

    def _read_until(self, done: threading.Event, deadline: float | None) -> bool:
        """Read and dispatch as the reading caller until ``done`` or the deadline."""
        while not done.is_set():
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return False
            ready = self._poll.poll(None if remaining is None else max(1, int(remaining * 1000)))
            for fd, _events in ready:
                if fd == self._wake_r:
                    self._drain_wake()
                elif not self._read_one():
                    return done.is_set()
        return True

    def wake(self) -> None:
        """Something outside the socket's dispatch set an event a caller may wait for."""
        me = threading.get_ident()
        with self._turn:
            if self._waiting:
                self._callers.notify_all()
            if self._reader not in (None, _BACKGROUND, me) and self._wake_w >= 0:
                with contextlib.suppress(BlockingIOError):  # full: a wake-up is pending
                    os.write(self._wake_w, b"\0")

    def _close_wake_pipe(self) -> None:
        """Once closing and nobody reads (called with _turn held)."""
        for fd in (self._wake_r, self._wake_w):
            if fd >= 0:
                os.close(fd)
        self._wake_r = self._wake_w = -1

    def _drain_wake(self) -> None:
        try:
            while os.read(self._wake_r, 256):
                pass
        except BlockingIOError:
            return

    def _read_one(self) -> bool:
        """Receive and dispatch one message; False once the connection is over."""
        try:
            message, fds = protocol.receive(self._sock)
        except protocol.MalformedMessageError:
            return True  # the service never sends one; nothing to match it to
        except protocol.ConnectionClosedError:
            self._shut()
            return False
        fds = [own_fd(fd) for fd in fds]
        request_id = message.get("re")
        if request_id is None:
            for fd in fds:
                os.close(fd)
            self._on_event(message)
        else:
            with self._lock:
                completion = self._pending.pop(int(request_id), None)
            if completion is None:
                for fd in fds:
                    os.close(fd)
            else:
                completion(message, fds)
        with self._turn:
            if self._waiting:
                self._callers.notify_all()
        return True

    def _read(self) -> None:
        """The background reader: reads whenever no caller has for READER_GRACE seconds."""
        try:
            watch = select.poll()  # our own: a poll object must not be polled by two threads
            watch.register(self._sock.fileno(), _READABLE)
            while True:
                with self._turn:
                    while True:
                        if self._closing or self.disconnected:
                            return
                        now = time.monotonic()
                        quiet = now - self._last_read
                        idle = self._reader is None and not self._waiting
                        if idle and quiet >= READER_GRACE:
                            self._reader = _BACKGROUND
                            break
                        if idle:
                            # In the grace after a caller's read, an event that arrives is read
                            # at once rather than when the grace ends: watch the socket.
                            self._turn.release()
                            try:
                                ready = watch.poll(max(1, int((READER_GRACE - quiet) * 1000)))
                            finally:
                                self._turn.acquire()
                            if ready and self._reader is None and not self._waiting:
                                self._reader = _BACKGROUND
                                break
                        elif self._reader is not None and now - self._read_since >= READER_GRACE:
                            # A caller reads for long (a long wait): it wakes us when it stops.
                            self._background.wait(LONG_READ_CHECK)
                        else:
                            self._background.wait(max(READER_GRACE - quiet, READER_GRACE / 2))
                try:
                    alive = self._read_one()
                finally:
                    with self._turn:
                        self._reader = None
                        if self._waiting:  # a caller may take the turn now
                            self._callers.notify_all()
                if not alive:
                    return
        finally:
            self._shut()

    def _shut(self) -> None:
        with self._lock:
            if self.disconnected:
                return
            self.disconnected = True
            pending, self._pending = self._pending, {}
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        for completion in pending.values():
            completion(disconnected_reply(), [])
        self.wake()
        with self._turn:
            self._background.notify_all()
        self._on_disconnect()

    def drop(self) -> None:
        """Break the connection now (fault injection, client shutdown)."""
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)

    def close(self, timeout: float = 10.0) -> None:
        self.drop()
        with self._turn:
            self._closing = True
            self._background.notify_all()
        if threading.current_thread() is not self._reader_thread:
            self._reader_thread.join(timeout)
        self._shut()
        self._sock.close()
        with self._turn:
            if self._reader is None:  # else the reading caller closes it when it stops
                self._close_wake_pipe()
