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
from pyhcs.emulator.server import SOCKET_NAME
from pyhcs.errors import BackendError

DIR_ENV: Final = "PYHCS_EMULATOR_DIR"
AUTOSTART_ENV: Final = "PYHCS_EMULATOR_AUTOSTART"
START_TIMEOUT: Final = 15.0


def default_dir() -> Path:
    explicit = os.environ.get(DIR_ENV)
    if explicit:
        return Path(explicit)
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isdir(runtime):
        return Path(runtime) / "pyhcs-emulator"
    return Path(f"/tmp/pyhcs-emulator-{os.getuid()}")


def autostart_enabled() -> bool:
    return os.environ.get(AUTOSTART_ENV, "1").strip() not in ("0", "false", "no", "off")


def reachable(directory: Path) -> bool:
    """Whether a service accepts connections in ``directory``."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        sock.connect(str(directory / SOCKET_NAME))
    except OSError:
        return False
    finally:
        sock.close()
    return True


def start(directory: Path, timeout: float = START_TIMEOUT) -> int:
    """Start a detached service in ``directory``; returns its pid once it is ready."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    read_end, write_end = os.pipe()
    log = open(directory / "service.log", "ab")  # noqa: SIM115 - handed to the child
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
                raise BackendError(
                    f"the emulator service in {directory} did not become ready in {timeout:g} s "
                    f"(see {directory / 'service.log'})",
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
    raise BackendError(
        f"the emulator service in {directory} failed to start (see {directory / 'service.log'})",
        hresult=hr.HCS_E_SERVICE_NOT_AVAILABLE,
    )


def ensure(directory: Path | None = None) -> Path:
    """The directory of a running service, starting one if allowed."""
    directory = directory or default_dir()
    if reachable(directory):
        return directory
    if not autostart_enabled():
        raise BackendError(
            f"no emulator service in {directory} and {AUTOSTART_ENV}=0; start one with "
            f"'pyhcs emulator serve --dir {directory}'",
            hresult=hr.HCS_E_SERVICE_NOT_AVAILABLE,
        )
    start(directory)
    return directory
