"""The client's connection to the service: request multiplexing and the reader thread.

Every request gets an id; a reply is matched to its waiter (synchronous calls) or its completion
function (operations). Records without a reply id are events, handed to ``on_event``. When the
socket breaks, every outstanding request completes with HCS_E_SERVICE_DISCONNECT and
``on_disconnect`` runs once, so no caller is left waiting.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import os
import socket
import threading
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
        self._reader = threading.Thread(target=self._read, name="pyhcs-emu-reader", daemon=True)
        self._reader.start()

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
        if not done.wait(bound):
            return {"hr": hr.RPC_S_CALL_FAILED, "doc": None}, []
        return box[0]

    def _read(self) -> None:
        try:
            while True:
                try:
                    message, fds = protocol.receive(self._sock)
                except protocol.MalformedMessageError:
                    continue  # the service never sends one; nothing to match it to
                fds = [own_fd(fd) for fd in fds]
                request_id = message.get("re")
                if request_id is None:
                    for fd in fds:
                        os.close(fd)
                    self._on_event(message)
                    continue
                with self._lock:
                    completion = self._pending.pop(int(request_id), None)
                if completion is None:
                    for fd in fds:
                        os.close(fd)
                    continue
                completion(message, fds)
        except protocol.ConnectionClosedError:
            pass
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
        self._on_disconnect()

    def drop(self) -> None:
        """Break the connection now (fault injection, client shutdown)."""
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)

    def close(self, timeout: float = 10.0) -> None:
        self.drop()
        if threading.current_thread() is not self._reader:
            self._reader.join(timeout)
        self._sock.close()
