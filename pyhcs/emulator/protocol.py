"""Wire protocol between the client half and the service.

A message is a UTF-8 JSON object sent as one or more SOCK_SEQPACKET records (fragments) of at
most `FRAGMENT` bytes, each led by one byte: ``+`` more follow, ``.`` last. Records keep their
boundaries and file descriptors (SCM_RIGHTS) travel with the first fragment, so they arrive with
exactly the message they belong to; every sender holds its own send lock across all fragments
of one message, so fragments of two messages never interleave. A message may be up to
`MAX_MESSAGE` bytes: a larger one is refused before anything is sent (`MessageTooLargeError`),
and the connection carries on. A request carries ``"id"``; its reply carries ``"re"`` with the
same value. Messages without ``"re"`` are pushed by the service (operation completions, events).
"""

from __future__ import annotations

import json
import os
import socket
import struct
from typing import Any, Final

#: Largest record sent: well inside the default socket buffer (~208 KiB), which bounds a record.
FRAGMENT: Final = 64 * 1024
#: Largest message, documented (docs/emulator.md): requests and replies up to 64 MiB.
MAX_MESSAGE: Final = 64 * 1024 * 1024
MAX_FDS: Final = 8
_MORE: Final = b"+"
_LAST: Final = b"."

Message = dict[str, Any]


class ConnectionClosedError(Exception):
    """The peer closed the socket (or it broke): the session is over."""


class MessageTooLargeError(ValueError):
    """A message over MAX_MESSAGE: refused before sending, the connection is unaffected."""

    def __init__(self, size: int) -> None:
        super().__init__(
            f"the message is {size} bytes, over the emulator's limit of {MAX_MESSAGE} bytes "
            f"({MAX_MESSAGE // (1024 * 1024)} MiB)"
        )
        self.size = size


class MalformedMessageError(ValueError):
    """A complete message that is not a JSON object: that message is dropped, not the peer."""


#: One encoder for every message (json.dumps with options builds a new one per call).
_ENCODER: Final = json.JSONEncoder(separators=(",", ":"))
#: Room for MAX_FDS descriptors in one record's control data.
_ANCILLARY: Final = socket.CMSG_SPACE(MAX_FDS * struct.calcsize("i"))
_FD_SIZE: Final = struct.calcsize("i")
#: A record or its control data did not fit (plain int: flag enums are slow to combine).
_TRUNCATED: Final = int(socket.MSG_TRUNC | socket.MSG_CTRUNC)


def encode(message: Message) -> bytes:
    """The message as bytes; MessageTooLargeError over the limit."""
    data = _ENCODER.encode(message).encode()
    if len(data) > MAX_MESSAGE:
        raise MessageTooLargeError(len(data))
    return data


def send(sock: socket.socket, message: Message, fds: list[int] | None = None) -> None:
    """Send one message; ``fds`` are duplicated into the peer (the caller still closes its own).
    The caller holds its send lock. MessageTooLargeError leaves the connection as it was."""
    send_bytes(sock, encode(message), fds)


def send_bytes(sock: socket.socket, data: bytes, fds: list[int] | None = None) -> None:
    try:
        if len(data) < FRAGMENT and not fds:  # the common case: one record, no descriptors
            sock.sendall(_LAST + data)
            return
        view = memoryview(data)
        first = True
        while first or view:
            chunk, view = view[: FRAGMENT - 1], view[FRAGMENT - 1 :]
            record = (_MORE if view else _LAST) + chunk
            if first and fds:
                socket.send_fds(sock, [record], fds)
            else:
                sock.sendall(record)
            first = False
    except OSError as exc:
        raise ConnectionClosedError(str(exc)) from exc


def receive(sock: socket.socket) -> tuple[Message, list[int]]:
    """Receive one message and the descriptors that came with it (now owned by the caller).
    MalformedMessageError (with the descriptors closed) for a message that is not a JSON
    object; the connection stays usable."""
    parts: list[bytes] = []
    received: list[int] = []
    size = 0
    while True:
        try:
            record, ancillary, flags, _addr = sock.recvmsg(FRAGMENT, _ANCILLARY)
        except OSError as exc:
            _close_all(received)
            raise ConnectionClosedError(str(exc)) from exc
        if ancillary:
            received.extend(_descriptors(ancillary))
        if flags & _TRUNCATED:
            _close_all(received)
            raise ConnectionClosedError("the peer sent a record over the fragment size")
        if not record:
            _close_all(received)
            raise ConnectionClosedError("peer closed the connection")
        size += len(record) - 1
        if size > MAX_MESSAGE:
            _close_all(received)
            raise ConnectionClosedError("the peer sent a message over the limit")
        parts.append(record[1:])
        if record[:1] != _MORE:
            break
    try:
        message = json.loads(b"".join(parts))
    except (ValueError, RecursionError) as exc:
        _close_all(received)
        raise MalformedMessageError(f"not JSON: {exc}") from exc
    if not isinstance(message, dict):
        _close_all(received)
        raise MalformedMessageError("not a JSON object")
    return message, received


def _descriptors(ancillary: list[tuple[int, int, bytes]]) -> list[int]:
    """The descriptors an SCM_RIGHTS control message carried (as socket.recv_fds reads
    them)."""
    fds: list[int] = []
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            usable = len(data) - len(data) % _FD_SIZE
            fds.extend(struct.unpack(f"{usable // _FD_SIZE}i", data[:usable]))
    return fds


def peer_credentials(sock: socket.socket) -> tuple[int, int, int]:
    """(pid, uid, gid) of the process at the other end, as the kernel recorded them."""
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, uid, gid = struct.unpack("3i", creds)
    return pid, uid, gid


def _close_all(fds: list[int]) -> None:
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            continue
