"""How a command talks to a shim: one JSON request, one JSON reply, over a Unix socket.

The socket lives in the container's state directory (owner-only), and the shim also checks
that the peer runs as its own user or root. A state directory can be deeper than a socket path
may be long (containerd's root plus a 64-character id): the shim binds the name relative to
its working directory, and a client reaches it through ``/proc/self/fd/N/`` of the directory.

Requests: ``{"op": ...}``; replies: ``{"ok": true, ...}`` or ``{"error": "message"}``.
"""

from __future__ import annotations

import json
import os
import socket
import struct
from typing import Any, Final

#: The init shim's socket; an exec shim's is ``exec-<pid>.sock``.
INIT_SOCKET: Final = "shim.sock"
#: Largest request or reply (a process spec with a big environment fits).
MAX_MESSAGE: Final = 4 << 20
#: Longest ``sun_path`` the kernel takes (108 bytes with the NUL on Linux).
_SUN_PATH: Final = 107


class ShimGoneError(Exception):
    """Nothing answers on the shim's socket (the shim has exited)."""


class ShimError(Exception):
    """The shim answered with an error (its message is the command's)."""


def exec_socket(pid: int) -> str:
    return f"exec-{pid}.sock"


def _connect(directory: str, name: str, timeout: float) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    sock.settimeout(timeout)
    path = os.path.join(directory, name)
    try:
        if len(os.fsencode(path)) <= _SUN_PATH:
            sock.connect(path)
        else:
            fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                sock.connect(f"/proc/self/fd/{fd}/{name}")
            finally:
                os.close(fd)
    except (FileNotFoundError, ConnectionRefusedError) as exc:
        sock.close()
        raise ShimGoneError(str(exc)) from None
    except BaseException:
        sock.close()
        raise
    return sock


def read_message(sock: socket.socket) -> Any:
    """One newline-terminated JSON document (None at EOF before any byte)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        block = sock.recv(65536)
        if not block:
            break
        chunks.append(block)
        size += len(block)
        if block.endswith(b"\n"):
            break
        if size > MAX_MESSAGE:
            raise ValueError("message too large")
    data = b"".join(chunks)
    if not data:
        return None
    return json.loads(data)


def send_message(sock: socket.socket, message: Any) -> None:
    sock.sendall(json.dumps(message).encode() + b"\n")


def request(
    directory: str, message: dict[str, Any], *, name: str = INIT_SOCKET, timeout: float = 120.0
) -> dict[str, Any]:
    """Send one request to the shim listening in ``directory``; its reply. ShimGoneError when no
    shim listens or it hung up without a reply, ShimError for its error reply."""
    sock = _connect(directory, name, timeout)
    try:
        send_message(sock, message)
        try:
            reply = read_message(sock)
        except ConnectionResetError:
            reply = None
    except TimeoutError:
        raise ShimError(f"the shim did not answer {message.get('op')!r} in {timeout:g} s") from None
    finally:
        sock.close()
    if reply is None:
        raise ShimGoneError("the shim hung up")
    if not isinstance(reply, dict):
        raise ShimError(f"the shim sent a malformed reply: {reply!r}")
    if "error" in reply:
        raise ShimError(str(reply["error"]))
    return reply


def peer_uid(sock: socket.socket) -> int:
    """The uid of the process at the other end (SO_PEERCRED)."""
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return int(uid)
