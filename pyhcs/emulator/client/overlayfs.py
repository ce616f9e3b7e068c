"""Overlay mounts for attached writable layers (as root): mount(2)/umount2(2) through libc.

A writable layer attached as root is an overlayfs mount on its own ``Files/``: the parents'
``Files/`` are the lower directories (top-most first), the layer's private upper and work
directories hold every change. Nothing here falls back to anything: a mount that fails, or an
unmount refused because the mount is in use, is an error with its HRESULT.

Only what the caller names is ever mounted on or unmounted, and only after checks: the target
is a real directory (never a link), not already a mount point, and an unmount happens only for
an overlay mount whose upper directory is the one the layer's attach created.

The kernel parses overlay options from one string: ``,`` separates options, ``:`` lower
directories and ``\\`` escapes. Paths holding any of them (or a control character) are refused
with E_INVALIDARG rather than escaped, so no path can change what the options say.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from pyhcs import hresult as hr
from pyhcs.emulator import oserrors, privilege

#: Characters overlayfs' option parser gives a meaning to (see the module docstring).
UNSAFE_CHARACTERS: Final = frozenset(",:\\")
#: mount(2)'s data is one page; the kernel refuses longer option strings.
MAX_OPTIONS: Final = 4095
#: Extended attributes overlayfs keeps in an upper directory (opaque dirs, origins, ...).
XATTR_PREFIX: Final = "trusted.overlay."
OPAQUE_XATTR: Final = "trusted.overlay.opaque"


class MountError(Exception):
    """A mount or unmount was refused or failed, with the HRESULT for it."""

    def __init__(self, hresult: int, message: str) -> None:
        super().__init__(message)
        self.hresult = hresult


def available() -> bool:
    """Overlay mounts are used: root (not forced unprivileged) and overlayfs in the kernel."""
    if not privilege.root():
        return False
    try:
        with open("/proc/filesystems", encoding="ascii") as f:
            return any(line.split()[-1:] == ["overlay"] for line in f)
    except OSError:
        return False


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def check_path(path: Path, what: str) -> None:
    """Refuse a path the overlay option string could not carry unambiguously."""
    text = str(path)
    bad = sorted({c for c in text if c in UNSAFE_CHARACTERS or not c.isprintable()})
    if bad:
        shown = " ".join(repr(c) for c in bad)
        raise MountError(
            hr.E_INVALIDARG,
            f"{what} {text!r} holds {shown}, which an overlay mount cannot take in a path",
        )


def options(lowers: list[Path], upper: Path, work: Path) -> str:
    """The option string of an overlay mount; every path checked first.

    ``redirect_dir=off`` and ``metacopy=off`` keep the upper directory a complete copy of
    every changed file and directory (renaming a parent's directory then copies it), so the
    upper directory alone is the layer's content.
    """
    for lower in lowers:
        check_path(lower, "the parent layer folder")
    check_path(upper, "the writable layer folder")
    check_path(work, "the writable layer folder")
    text = (
        f"lowerdir={':'.join(str(p) for p in lowers)},upperdir={upper},workdir={work},"
        "redirect_dir=off,metacopy=off,index=off"
    )
    if len(text.encode()) > MAX_OPTIONS:
        raise MountError(
            hr.ERROR_FILENAME_EXCED_RANGE,
            f"the overlay options for {len(lowers)} parent layers are longer than "
            f"{MAX_OPTIONS} bytes (shorter layer paths or fewer layers)",
        )
    return text


def _real_directory(path: Path) -> None:
    try:
        st = path.lstat()
    except OSError as exc:
        raise MountError(
            oserrors.hresult_for(exc, missing=hr.ERROR_PATH_NOT_FOUND), f"{path}: {exc.strerror}"
        ) from exc
    if not stat.S_ISDIR(st.st_mode):
        raise MountError(hr.HCS_E_INVALID_LAYER, f"{path} is not a directory")


def check_target(target: Path) -> None:
    """``target`` can be mounted on: a real directory (not a link), not a mount point yet."""
    _real_directory(target)
    if os.path.ismount(target):
        raise MountError(hr.ERROR_ALREADY_EXISTS, f"{target} is already a mount point")


def mount(lowers: list[Path], upper: Path, work: Path, target: Path) -> None:
    """Mount the union of ``lowers`` (top-most first) with ``upper`` on ``target``."""
    data = options(lowers, upper, work)
    check_target(target)
    libc = _libc()
    result = libc.mount(b"overlay", os.fsencode(target), b"overlay", 0, data.encode())
    if result != 0:
        code = ctypes.get_errno()
        raise MountError(_hresult(code), f"overlay mount on {target} failed: {os.strerror(code)}")


def unmount(target: Path, upper: Path) -> bool:
    """Unmount the overlay on ``target`` whose upper directory is ``upper``; False when no
    such mount exists (nothing is unmounted then). Never lazy: a mount in use stays mounted and
    the call fails with ERROR_BUSY."""
    mine = [m for m in mounts() if m.target == target and m.upper == upper]
    if not mine:
        if os.path.ismount(target):
            raise MountError(
                hr.HCS_E_INVALID_LAYER, f"{target} is a mount point the storage filter did not make"
            )
        return False
    libc = _libc()
    if libc.umount2(os.fsencode(target), 0) != 0:
        code = ctypes.get_errno()
        if code == errno.EBUSY:
            raise MountError(
                hr.ERROR_BUSY,
                f"{target} is in use (a process has a file or its working directory there)",
            )
        raise MountError(_hresult(code), f"unmounting {target} failed: {os.strerror(code)}")
    return True


def _hresult(code: int) -> int:
    if code == errno.EBUSY:
        return hr.ERROR_BUSY
    return oserrors.hresult_for(OSError(code, os.strerror(code)), missing=hr.ERROR_PATH_NOT_FOUND)


@dataclass(frozen=True)
class Mount:
    """One mount of this process's mount namespace."""

    target: Path
    fstype: str
    upper: Path | None


def _unescape(field: str) -> str:
    """mountinfo writes space, tab, newline and backslash as ``\\ooo``."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def all_mounts() -> list[Mount]:
    """Every mount of this process's mount namespace (from /proc/self/mountinfo)."""
    found = []
    with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as f:
        for line in f:
            fields = line.split()
            if "-" not in fields[6:]:
                continue
            dash = fields.index("-", 6)
            fstype = fields[dash + 1] if len(fields) > dash + 1 else ""
            upper = None
            for option in (fields[dash + 3] if len(fields) > dash + 3 else "").split(","):
                if option.startswith("upperdir="):
                    upper = Path(_unescape(option.removeprefix("upperdir=")))
            found.append(Mount(Path(_unescape(fields[4])), fstype, upper))
    return found


def mounts() -> list[Mount]:
    """The overlay mounts of this process's mount namespace."""
    return [m for m in all_mounts() if m.fstype == "overlay"]


def mounts_under(root: Path) -> list[Path]:
    """Mount points at or below ``root`` (a resolved path)."""
    return [m.target for m in all_mounts() if m.target == root or root in m.target.parents]


def is_whiteout(st: os.stat_result) -> bool:
    """overlayfs records a deleted lower entry as a 0:0 character device in the upper dir."""
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def is_opaque(path: Path) -> bool:
    """An opaque directory of an upper directory hides everything the lower ones hold there."""
    try:
        return os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError as exc:
        if exc.errno in (errno.ENODATA, errno.ENOTSUP, errno.EPERM):
            return False
        raise


def set_opaque(directory: Path, opaque: bool) -> None:
    """Make a directory of an upper directory (a real one: never follows a link) opaque, or
    plain again."""
    if opaque:
        os.setxattr(directory, OPAQUE_XATTR, b"y", follow_symlinks=False)
    else:
        os.removexattr(directory, OPAQUE_XATTR, follow_symlinks=False)


def make_whiteout(upper: Path, rel: str) -> list[str]:
    """Hide the lower entry ``rel`` (a relative path) with a whiteout in the upper directory
    (before it is mounted), creating the directories on the way. Nothing is ever followed: the
    walk opens each directory with O_NOFOLLOW; where the layer's own content already covers
    ``rel`` (a file, link or device on the way or at ``rel``) nothing is created. Returns what
    was created, parents first, so a failed attach can remove it."""
    parts = rel.split("/")
    created: list[str] = []
    fd = os.open(upper, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        for depth, name in enumerate(parts[:-1]):
            try:
                os.mkdir(name, 0o755, dir_fd=fd)
                created.append("/".join(parts[: depth + 1]))
            except FileExistsError:
                pass
            try:
                inner = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ENOTDIR, errno.ELOOP):
                    return created  # the layer's own non-directory covers the rest
                raise
            os.close(fd)
            fd = inner
        try:
            os.mknod(parts[-1], stat.S_IFCHR, os.makedev(0, 0), dir_fd=fd)
        except FileExistsError:
            return created  # the layer's own entry is there (and wins)
        created.append(rel)
        return created
    finally:
        os.close(fd)


def strip_xattrs(path: Path) -> None:
    """Remove overlayfs' own extended attributes from one entry (never follows a link)."""
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError as exc:
        if exc.errno in (errno.ENOTSUP, errno.EPERM):
            return
        raise
    for name in names:
        if name.startswith(XATTR_PREFIX):
            os.removexattr(path, name, follow_symlinks=False)
