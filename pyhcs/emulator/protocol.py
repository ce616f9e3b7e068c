"""Wire protocol between the client half and the service.

One message is one SOCK_SEQPACKET record holding a UTF-8 JSON object, so there is no framing to
get wrong and file descriptors (SCM_RIGHTS) travel with exactly the record they belong to. A
request carries ``"id"``; its reply carries ``"re"`` with the same value. Records without ``"re"``
are pushed by the service (operation completions, events).
"""

from __future__ import annotations

import json
import os
import socket
import struct
from typing import Any, Final

MAX_RECORD: Final = 4 * 1024 * 1024
MAX_FDS: Final = 8

Message = dict[str, Any]


class ConnectionClosedError(Exception):
    """The peer closed the socket (or it broke): the session is over."""


def send(sock: socket.socket, message: Message, fds: list[int] | None = None) -> None:
    """Send one record; ``fds`` are duplicated into the peer (the caller still closes its own)."""
    data = json.dumps(message, separators=(",", ":")).encode()
    try:
        if fds:
            socket.send_fds(sock, [data], fds)
        else:
            sock.sendall(data)
    except OSError as exc:
        raise ConnectionClosedError(str(exc)) from exc


def receive(sock: socket.socket) -> tuple[Message, list[int]]:
    """Receive one record and the descriptors that came with it (now owned by the caller)."""
    try:
        data, fds, _flags, _addr = socket.recv_fds(sock, MAX_RECORD, MAX_FDS)
    except OSError as exc:
        raise ConnectionClosedError(str(exc)) from exc
    if not data:
        for fd in fds:
            _close_quietly(fd)
        raise ConnectionClosedError("peer closed the connection")
    message = json.loads(data)
    if not isinstance(message, dict):
        raise ConnectionClosedError("malformed record")
    return message, list(fds)


def peer_credentials(sock: socket.socket) -> tuple[int, int, int]:
    """(pid, uid, gid) of the process at the other end, as the kernel recorded them."""
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, uid, gid = struct.unpack("3i", creds)
    return pid, uid, gid


def _close_quietly(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        return
