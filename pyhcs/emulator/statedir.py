"""The emulator's state directory, used by both halves: where it is, and proof that no other
user controls it.

The default, ``/tmp/pyhcs-emulator-<uid>`` when ``XDG_RUNTIME_DIR`` is unset, is a predictable
name in a world-writable directory: another local user can create it first and plant links or
a socket of their own there. So pyhcs never repairs or follows: the directory and every file in
it must be a real directory or file (not a symlink) owned by the effective user and not writable
by group or others, and every ancestor must be owned by root or that user and be writable by
others only with the sticky bit (as ``/tmp`` is). Files are opened relative to a descriptor of
the checked directory with ``O_NOFOLLOW``. Anything else raises `UnsafeStateDirError` naming
the path.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path
from typing import Final

from pyhcs import hresult as hr
from pyhcs.errors import UnsafeStateDirError

DIR_ENV: Final = "PYHCS_EMULATOR_DIR"
SOCKET_NAME: Final = "service.sock"
LOCK_NAME: Final = "service.lock"
PID_NAME: Final = "service.pid"
LOG_NAME: Final = "service.log"
SYSTEMS_NAME: Final = "systems"

_UNSAFE_WRITE: Final = stat.S_IWGRP | stat.S_IWOTH


def default_dir() -> Path:
    """``$PYHCS_EMULATOR_DIR``, else ``$XDG_RUNTIME_DIR/pyhcs-emulator``, else
    ``/tmp/pyhcs-emulator-<uid>``."""
    explicit = os.environ.get(DIR_ENV)
    if explicit:
        return Path(explicit)
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isdir(runtime):
        return Path(runtime) / "pyhcs-emulator"
    return Path(f"/tmp/pyhcs-emulator-{os.geteuid()}")


def _refuse(path: Path | str, why: str) -> UnsafeStateDirError:
    return UnsafeStateDirError(
        f"refusing the emulator state directory: {path} {why}",
        hresult=hr.E_ACCESSDENIED,
        path=str(path),
    )


def _check_owner_and_mode(path: Path | str, st: os.stat_result, what: str) -> None:
    if st.st_uid != os.geteuid():
        raise _refuse(path, f"is a {what} owned by uid {st.st_uid}, not by uid {os.geteuid()}")
    if st.st_mode & _UNSAFE_WRITE:
        raise _refuse(path, f"is a {what} writable by group or others (mode {st.st_mode:#o})")


def _check_ancestors(directory: Path) -> None:
    """Every existing ancestor: owned by root or us, others may write only with the sticky
    bit. A symlinked ancestor is judged by what it resolves to."""
    parent = Path(os.path.realpath(directory.parent))
    for ancestor in (parent, *parent.parents):
        st = os.stat(ancestor)
        if st.st_uid not in (0, os.geteuid()):
            raise _refuse(directory, f"lies in {ancestor}, owned by uid {st.st_uid}")
        if st.st_mode & _UNSAFE_WRITE and not st.st_mode & stat.S_ISVTX:
            raise _refuse(
                directory, f"lies in {ancestor}, writable by others without the sticky bit"
            )


def open_dir(directory: Path, *, create: bool) -> int:
    """Check ``directory`` (making it, mode 0700, when ``create`` and missing) and return a
    descriptor of it (close-on-exec) for `open_file`. Raises UnsafeStateDirError or OSError."""
    directory = Path(os.path.abspath(directory))
    _check_ancestors(directory)
    if create:
        with contextlib.suppress(FileExistsError):
            os.mkdir(directory, 0o700)
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        if os.path.islink(directory):
            raise _refuse(directory, "is a symbolic link") from exc
        raise
    try:
        _check_owner_and_mode(directory, os.fstat(fd), "directory")
    except UnsafeStateDirError:
        os.close(fd)
        raise
    return fd


def open_file(dir_fd: int, name: str, flags: int, directory: Path) -> int:
    """Open (or create, mode 0600) ``name`` in the checked directory without following a link;
    the file must be a regular file of ours that only we can write."""
    try:
        fd = os.open(name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dir_fd)
    except OSError as exc:
        if os.path.islink(os.path.join(directory, name)):
            raise _refuse(directory / name, "is a symbolic link") from exc
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise _refuse(directory / name, "is not a regular file")
        _check_owner_and_mode(directory / name, st, "file")
    except UnsafeStateDirError:
        os.close(fd)
        raise
    return fd


def check_entry(dir_fd: int, name: str, directory: Path) -> None:
    """An existing entry of the directory (the socket) must be ours and not a link."""
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(st.st_mode):
        raise _refuse(directory / name, "is a symbolic link")
    _check_owner_and_mode(directory / name, st, "file")
