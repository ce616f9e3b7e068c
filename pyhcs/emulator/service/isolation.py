"""What of a container's isolation the host can make real for its processes.

As root (with util-linux's ``unshare``), each process of a container with a hostname or
read-only mapped directories starts in its own UTS and mount namespace: ``hostname`` reports the
container's name and the read-only mapped directories are read-only bind mounts — both vanish
with the process, so nothing can leak onto the host. Without privileges the process starts
directly; the hostname is then only in ``COMPUTERNAME`` and read-only is not enforced.
``PYHCS_EMULATOR_UNPRIVILEGED=1`` (read when the service starts) forces that path, so both can
be tested on one machine.

A Linux container with a root filesystem of its own (see ``Isolation.root``) goes further, as
in a real Linux utility VM: its first process (the init) starts in fresh PID, mount and UTS
namespaces, with ``/proc`` of that PID namespace mounted in the root and the root as its
``/`` (chroot, nothing copied); it is pid 1 there. Every later process joins those namespaces
and the root through ``nsenter``. The process the service reports (and signals, terminates,
puts in the cgroup) is the wrapper (``unshare``/``nsenter``) whose child is the program: both
share one process group, the wrapper exits with the program's status (re-raising its signal)
and ``--kill-child`` takes the init down with its wrapper.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from pyhcs.emulator import privilege
from pyhcs.emulator.privilege import UNPRIVILEGED_ENV

__all__ = ["UNPRIVILEGED_ENV", "Isolation", "init_of", "privileged"]

#: Bound on how long a later process waits for the container's init to be in its root.
INIT_TIMEOUT: Final = 5.0

#: Runs as ``sh -c SCRIPT sh HOSTNAME ROOT COUNT PATH... COMMAND...``: positional parameters,
#: so no name or path is ever parsed by the shell. With a ROOT, the container gets a ``/dev`` of
#: its own in its mount namespace, as runc gives one: a tmpfs with the host's null, zero, full,
#: random, urandom and tty bound in, the host's ``/dev/pts`` (so a console's pty resolves), a
#: ``/dev/shm`` and the usual links.
_SCRIPT: Final = (
    'h=$1; d=$2; n=$3; shift 3; while [ "$n" -gt 0 ]; do '
    'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" || exit 126; '
    "shift; n=$((n-1)); done; "
    'if [ -n "$d" ]; then '
    'mkdir -p "$d/dev" && mount -t tmpfs -o nosuid,mode=755 pyhcs-dev "$d/dev" || exit 126; '
    "for x in null zero full random urandom tty; do "
    ': > "$d/dev/$x" && mount --bind "/dev/$x" "$d/dev/$x" || exit 126; done; '
    'mkdir "$d/dev/pts" "$d/dev/shm" && mount --bind /dev/pts "$d/dev/pts" '
    '&& mount -t tmpfs -o nosuid,nodev pyhcs-shm "$d/dev/shm" '
    '&& ln -s pts/ptmx "$d/dev/ptmx" && ln -s /proc/self/fd "$d/dev/fd" '
    '&& ln -s /proc/self/fd/0 "$d/dev/stdin" && ln -s /proc/self/fd/1 "$d/dev/stdout" '
    '&& ln -s /proc/self/fd/2 "$d/dev/stderr" || exit 126; fi; '
    'if [ -n "$h" ]; then hostname "$h" || exit 126; fi; exec "$@"'
)


def privileged() -> bool:
    """True where namespaces and mounts are available to the service."""
    return (
        privilege.root()
        and shutil.which("unshare") is not None
        and shutil.which("nsenter") is not None
    )


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as f:
            return [int(child) for child in f.read().split()]
    except OSError:
        return []


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in "ZX"
    except (OSError, IndexError):
        return False


def init_of(wrapper: int, root: Path, timeout: float = INIT_TIMEOUT) -> int | None:
    """The host pid of the init started by ``wrapper`` (the container's first process) once
    it runs in ``root`` (so its /proc is mounted and ``nsenter --root`` finds the root), or
    None if it is gone. The kernel gives no notification of a chroot, so this polls /proc
    with a bound (the init is normally there within a millisecond of its start)."""
    want = str(root.resolve())
    deadline = time.monotonic() + timeout
    while _alive(wrapper):
        for child in _children(wrapper):
            try:
                if os.readlink(f"/proc/{child}/root") == want and _alive(child):
                    return child
            except OSError:
                continue
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.001)
    return None


@dataclass
class Isolation:
    """The per-process isolation of one container."""

    hostname: str = ""
    read_only: list[str] = field(default_factory=list)
    #: A Linux container's root filesystem (host path) its processes see as ``/``; "" for none.
    root: str = ""
    #: With ``root``: the host pid of the running init a later process joins; None for the init.
    init_pid: int | None = None

    def wrap(self, argv: list[str], wd: str = "/") -> list[str]:
        """``argv`` started inside fresh UTS + mount namespaces (only called when privileged);
        with ``root``, chroot'ed there in ``wd`` (a container path) and in the container's
        PID namespace."""
        if self.root and self.init_pid is not None:
            nsenter = shutil.which("nsenter") or "nsenter"
            target = f"--target={self.init_pid}"
            return [
                nsenter,
                target,
                "--pid",
                "--mount",
                "--uts",
                "--root",
                f"--wdns={wd}",
                "--",
                *argv,
            ]
        if not self.hostname and not self.read_only and not self.root:
            return argv
        unshare = shutil.which("unshare") or "unshare"
        rooted: list[str] = []
        if self.root:
            rooted = ["--pid", "--kill-child", f"--mount-proc={self.root}/proc"]
            argv = [unshare, f"--root={self.root}", f"--wd={wd}", "--", *argv]
        return [
            unshare,
            "--uts",
            "--mount",
            "--propagation",
            "private",
            *rooted,
            "/bin/sh",
            "-c",
            _SCRIPT,
            "sh",
            self.hostname,
            self.root,
            str(len(self.read_only)),
            *self.read_only,
            *argv,
        ]
