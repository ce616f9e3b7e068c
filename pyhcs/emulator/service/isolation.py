"""What of a container's isolation the host can make real for its processes.

As root (with util-linux's ``unshare``), each process of a container with a hostname or
read-only mapped directories starts in its own UTS and mount namespace: ``hostname`` reports the
container's name and the read-only mapped directories are read-only bind mounts — both vanish
with the process, so nothing can leak onto the host. Without privileges the process starts
directly; the hostname is then only in ``COMPUTERNAME`` and read-only is not enforced.
``PYHCS_EMULATOR_UNPRIVILEGED=1`` (read when the service starts) forces that path, so both can
be tested on one machine.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from typing import Final

from pyhcs.emulator import privilege
from pyhcs.emulator.privilege import UNPRIVILEGED_ENV

__all__ = ["UNPRIVILEGED_ENV", "Isolation", "privileged"]

#: Runs as ``sh -c SCRIPT sh HOSTNAME COUNT PATH... COMMAND...``: positional parameters, so no
#: name or path is ever parsed by the shell.
_SCRIPT: Final = (
    'h=$1; n=$2; shift 2; while [ "$n" -gt 0 ]; do '
    'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" || exit 126; '
    "shift; n=$((n-1)); done; "
    'if [ -n "$h" ]; then hostname "$h" || exit 126; fi; exec "$@"'
)


def privileged() -> bool:
    """True where namespaces and mounts are available to the service."""
    return privilege.root() and shutil.which("unshare") is not None


@dataclass
class Isolation:
    """The per-process isolation of one container."""

    hostname: str = ""
    read_only: list[str] = field(default_factory=list)

    def wrap(self, argv: list[str]) -> list[str]:
        """``argv`` started inside fresh UTS + mount namespaces (only called when privileged)."""
        if not self.hostname and not self.read_only:
            return argv
        unshare = shutil.which("unshare") or "unshare"
        return [
            unshare,
            "--uts",
            "--mount",
            "--propagation",
            "private",
            "/bin/sh",
            "-c",
            _SCRIPT,
            "sh",
            self.hostname,
            str(len(self.read_only)),
            *self.read_only,
            *argv,
        ]
