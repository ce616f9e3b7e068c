"""The state store: one directory per container under ``--root``.

Each file has one writer and is replaced atomically (written beside, then renamed), so a reader
never sees half a document and ``state``/``list`` read without taking any lock:

- ``state.json`` — written by ``create`` before the shim starts: the bundle, the creation time,
  the owner, the annotations and the whole `Plan` (system ids and documents, the init process,
  the resources to release). A directory without it is a create that did not finish: only
  ``delete --force`` touches it ("container does not exist" otherwise, as runc says).
- ``shim.json`` — written by the shim as its first act: its pid and start time, so a later
  command can tell the shim from a process that reused its pid.
- ``status.json`` — written by the shim at each transition: ``created``, ``running``,
  ``paused``, ``stopped`` (with the exit code, and whether the systems were released).
- ``shim.sock`` — the shim's control socket (`pyhcs.runtime.channel`).
- ``lock`` — ``fcntl.flock``-ed by every command that changes the container, so concurrent
  commands on one container run one after the other.

A shim that is gone (or is not ours any more) means the container is stopped, whatever
``status.json`` last said: the shim lives exactly as long as the container's init process.
This module imports nothing heavy: ``state`` and ``list`` must answer in a few milliseconds.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import signal
import sys
from collections.abc import Iterator
from typing import Any, Final

#: runc's default OCI version for ``state`` when the bundle names none.
OCI_VERSION: Final = "1.0.2-dev"
STATE: Final = "state.json"
SHIM: Final = "shim.json"
STATUS: Final = "status.json"
LOCK: Final = "lock"
#: How long a command waits for another command on the same container to finish.
LOCK_TIMEOUT: Final = float(os.environ.get("PYRUNHCS_LOCK_TIMEOUT", "120"))
#: Characters runc allows in an id (``^[\w+-\.]+$``, ASCII ``\w``: the range ``+``..``-``
#: brings ``,`` in), and ``.``/``..`` are refused.
_ID_CHARS: Final = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+,-.")
#: Longest id: a file name (NAME_MAX).
MAX_ID: Final = 255


class StateError(Exception):
    """A command cannot go on; the message is runc's where runc has one."""


class NotExistError(StateError):
    def __init__(self) -> None:
        super().__init__("container does not exist")


def default_root() -> str:
    """Where containers live without ``--root``: ``/run/pyrunhcs`` for root, else under
    ``$XDG_RUNTIME_DIR`` (as runc does rootless), else a per-user directory in /tmp."""
    if os.geteuid() == 0:
        return "/run/pyrunhcs"
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        return os.path.join(runtime, "pyrunhcs")
    return f"/tmp/pyrunhcs-{os.geteuid()}"


def valid_id(container_id: str) -> bool:
    """runc's id rule: so an id can never name anything outside the root."""
    return (
        0 < len(container_id) <= MAX_ID
        and container_id not in (".", "..")
        and all(c in _ID_CHARS for c in container_id)
    )


def check_id(container_id: str) -> None:
    if not valid_id(container_id):
        raise StateError("invalid container ID format")


def write_json(path: str, document: Any) -> None:
    """Replace ``path`` atomically (a reader sees the old or the new document, never half)."""
    temporary = f"{path}.{os.getpid()}.tmp"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, json.dumps(document).encode())
    finally:
        os.close(fd)
    os.replace(temporary, path)


def write_pid_file(path: str, pid: int) -> None:
    """runc's pid file: the number without a newline, written beside and renamed into place."""
    path = os.path.abspath(path)
    directory, name = os.path.split(path)
    temporary = os.path.join(directory, f".{name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        os.write(fd, str(pid).encode())
    finally:
        os.close(fd)
    os.replace(temporary, path)


def read_json(path: str) -> Any:
    """The document at ``path``, or None if there is none."""
    try:
        with open(path, "rb") as f:
            return json.loads(f.read())
    except FileNotFoundError:
        return None


def process_start_time(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (field 22 of /proc/PID/stat), or None if the process
    is gone or a zombie. Together with the pid it names one process for good."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except FileNotFoundError:
        return None
    except ProcessLookupError:
        return None
    if fields[0] in (b"Z", b"X"):
        return None
    return fields[19].decode()


def alive(record: dict[str, Any] | None) -> bool:
    """Whether the process a ``shim.json``-style record names still runs (and is that one)."""
    if not record or not isinstance(record.get("pid"), int) or record["pid"] <= 0:
        return False
    pid = int(record["pid"])
    if sys.platform.startswith("linux"):
        return process_start_time(pid) == record.get("start")
    try:  # without /proc: the pid alone (a reused pid cannot be told apart here)
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def owner_name(uid: int) -> str:
    """A uid as ``list`` shows owners: the user name, or ``#uid``."""
    import pwd  # noqa: PLC0415 (only list needs it)

    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"#{uid}"


class Container:
    """One container's directory under the root."""

    def __init__(self, root: str, container_id: str) -> None:
        check_id(container_id)
        self.root = root
        self.id = container_id
        self.dir = os.path.join(root, container_id)

    def path(self, name: str) -> str:
        return os.path.join(self.dir, name)

    # -- documents -------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """``state.json``; NotExistError if the container (or its finished create) is not there."""
        try:
            document = read_json(self.path(STATE))
        except NotADirectoryError:
            document = None
        if not isinstance(document, dict):
            raise NotExistError()
        return document

    def exists(self) -> bool:
        return os.path.isdir(self.dir)

    def shim(self) -> dict[str, Any] | None:
        document = read_json(self.path(SHIM))
        return document if isinstance(document, dict) else None

    def status_record(self) -> dict[str, Any]:
        document = read_json(self.path(STATUS))
        return document if isinstance(document, dict) else {}

    def status(self) -> tuple[str, dict[str, Any], dict[str, Any] | None]:
        """The status now (runc's words), the shim's last status record and its shim.json.

        A shim that is gone means stopped; a shim that has not reported yet, creating."""
        record = self.status_record()
        shim = self.shim()
        if shim is None:
            return "creating", record, None
        if record.get("status") == "stopped" or not alive(shim):
            return "stopped", record, shim
        return str(record.get("status", "creating")), record, shim

    def oci_state(self, owner: str = "") -> dict[str, Any]:
        """runc's ``state`` document: the pid is the shim's (the one in the pid file), 0 once
        stopped."""
        document = self.state()
        status, _record, shim = self.status()
        pid = int(shim["pid"]) if shim is not None and status != "stopped" else 0
        result: dict[str, Any] = {
            "ociVersion": document.get("ociVersion") or OCI_VERSION,
            "id": self.id,
            "pid": pid,
            "status": status,
            "bundle": document.get("bundle", ""),
            "rootfs": document.get("rootfs", ""),
            "created": document.get("created", ""),
        }
        if document.get("annotations"):
            result["annotations"] = document["annotations"]
        result["owner"] = owner
        return result

    # -- serialization ---------------------------------------------------------------------

    @contextlib.contextmanager
    def locked(self, timeout: float = LOCK_TIMEOUT) -> Iterator[None]:
        """Hold the container's lock. NotExistError if the directory is gone (or was replaced by a
        new container of the same id while we waited)."""
        while True:
            try:
                fd = os.open(self.path(LOCK), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            except (FileNotFoundError, NotADirectoryError):
                raise NotExistError() from None
            try:
                _flock(fd, timeout, self.id)
                try:
                    same = os.fstat(fd).st_ino == os.stat(self.path(LOCK)).st_ino
                except FileNotFoundError:
                    raise NotExistError() from None
                if same:
                    yield
                    return
            finally:
                os.close(fd)

    def remove(self) -> None:
        """Remove the directory (the caller holds the lock; a waiter then sees NotExistError)."""
        import shutil  # noqa: PLC0415 (state and list never remove)

        shutil.rmtree(self.dir)


def _flock(fd: int, timeout: float, container_id: str) -> None:
    """flock with a deadline (a timer signal interrupts the blocking call)."""
    with contextlib.suppress(BlockingIOError):
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return

    def expired(_signo: int, _frame: object) -> None:
        raise TimeoutError(errno.ETIMEDOUT, "timed out")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
    except TimeoutError:
        raise StateError(
            f"container {container_id} is busy: another command held its lock for {timeout:g} s"
        ) from None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def containers(root: str) -> list[str]:
    """The ids under ``root``, sorted (as runc lists them); none if the root is missing."""
    try:
        names = sorted(os.listdir(root))
    except FileNotFoundError:
        return []
    return [n for n in names if valid_id(n) and os.path.isdir(os.path.join(root, n))]
