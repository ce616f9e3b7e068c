"""Where the service lives and starting it on first use.

Default state directory: ``$XDG_RUNTIME_DIR/pyhcs-emulator`` or ``/tmp/pyhcs-emulator-<uid>``;
``PYHCS_EMULATOR_DIR`` overrides it. With no service answering there, the client starts one as a
detached child (``python -m pyhcs.emulator serve --dir D``) unless ``PYHCS_EMULATOR_AUTOSTART=0``,
and waits, bounded, for the service to say it is ready on a pipe.
"""

from __future__ import annotations

import os
import select
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Final

from pyhcs import hresult as hr
from pyhcs.emulator import protocol, statedir
from pyhcs.emulator.statedir import default_dir
from pyhcs.errors import EmulatorError, UnsafeStateDirError

__all__ = ["check_dir", "default_dir", "ensure", "reachable", "start"]

AUTOSTART_ENV: Final = "PYHCS_EMULATOR_AUTOSTART"
START_TIMEOUT: Final = 15.0


def autostart_enabled() -> bool:
    return os.environ.get(AUTOSTART_ENV, "1").strip() not in ("0", "false", "no", "off")


def connect(directory: Path) -> socket.socket:
    """A connected socket to the service in ``directory``, whose peer is proven to run as this
    user or root before anything it says is trusted. Raises OSError when nothing listens,
    UnsafeStateDirError when someone else does."""
    path = directory / statedir.SOCKET_NAME
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
    try:
        sock.connect(str(path))
        _pid, uid, _gid = protocol.peer_credentials(sock)
    except OSError:
        sock.close()
        raise
    if uid not in (os.geteuid(), 0):
        sock.close()
        raise UnsafeStateDirError(
            f"refusing the emulator service at {path}: it runs as uid {uid}, not as uid "
            f"{os.geteuid()} or root",
            hresult=hr.E_ACCESSDENIED,
            path=str(path),
        )
    return sock


def reachable(directory: Path) -> bool:
    """Whether a service of this user (or root) accepts connections in ``directory``."""
    try:
        connect(directory).close()
    except UnsafeStateDirError:
        raise  # someone else's service: never a reason to start one of ours beside it
    except OSError:
        return False
    return True


def start(directory: Path, timeout: float = START_TIMEOUT) -> int:
    """Start a detached service in ``directory``; returns its pid once it is ready."""
    try:
        directory.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        dir_fd = statedir.open_dir(directory, create=True)
        try:
            log_fd = statedir.open_file(
                dir_fd, statedir.LOG_NAME, os.O_WRONLY | os.O_CREAT | os.O_APPEND, directory
            )
        finally:
            os.close(dir_fd)
    except UnsafeStateDirError:
        raise
    except OSError as exc:
        raise _unusable(directory, exc) from exc
    log = os.fdopen(log_fd, "ab")
    read_end, write_end = os.pipe()
    try:
        child = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pyhcs.emulator",
                "serve",
                "--dir",
                str(directory),
                "--ready-fd",
                str(write_end),
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            pass_fds=(write_end,),
            start_new_session=True,
        )
    finally:
        os.close(write_end)
        log.close()
    try:
        deadline = time.monotonic() + timeout
        data = b""
        while b"\n" not in data:
            remaining = deadline - time.monotonic()
            ready, _w, _x = select.select([read_end], [], [], max(0.0, remaining))
            if not ready:
                raise EmulatorError(
                    f"the emulator service in {directory} did not become ready in {timeout:g} s "
                    f"(see {directory / statedir.LOG_NAME})",
                    hresult=hr.HCS_E_SERVICE_NOT_AVAILABLE,
                )
            chunk = os.read(read_end, 64)
            if not chunk:
                break
            data += chunk
    finally:
        os.close(read_end)
    if data.startswith(b"ready"):
        return child.pid
    if data.startswith(b"busy") and reachable(directory):
        return child.pid  # another client started it first
    log_path = directory / statedir.LOG_NAME
    raise EmulatorError(
        f"the emulator service in {directory} failed to start (see {log_path})",
        hresult=hr.HCS_E_SERVICE_NOT_AVAILABLE,
    )


def _unusable(directory: Path, exc: OSError) -> EmulatorError:
    """The typed error for a state directory the OS will not let us make or open."""
    return EmulatorError(
        f"cannot use {directory} as the emulator state directory: "
        f"{exc.strerror or exc} ({exc.filename or directory})",
        hresult=hr.HCS_E_SERVICE_NOT_AVAILABLE,
        hint=f"set {statedir.DIR_ENV} to a directory you may create (its parent must exist "
        "and be writable by you), or unset it to use the default",
    )


def check_dir(directory: Path) -> None:
    """Make (if missing) and check the state directory, as typed errors: UnsafeStateDirError
    when another user could control it, EmulatorError when the OS refuses it."""
    try:
        directory.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.close(statedir.open_dir(directory, create=True))
    except UnsafeStateDirError:
        raise
    except OSError as exc:
        raise _unusable(directory, exc) from exc


def ensure(directory: Path | None = None) -> Path:
    """The directory of a running service, starting one if allowed."""
    directory = directory or default_dir()
    if directory.exists() or directory.is_symlink():
        try:
            os.close(statedir.open_dir(directory, create=False))
        except UnsafeStateDirError:
            raise
        except OSError as exc:
            raise _unusable(directory, exc) from exc
    if reachable(directory):
        return directory
    if not autostart_enabled():
        raise EmulatorError(
            f"no emulator service in {directory} and {AUTOSTART_ENV}=0",
            hresult=hr.HCS_E_SERVICE_NOT_AVAILABLE,
            hint=f"start one with 'pyhcs emulator serve --dir {directory}', or unset "
            f"{AUTOSTART_ENV} to let pyhcs start it on first use",
        )
    start(directory)
    return directory
