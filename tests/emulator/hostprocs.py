"""What the host says about a process: frozen or not, alive or not (read from /proc and the
cgroup file systems, never from the emulator)."""

from __future__ import annotations

import os
import select
from pathlib import Path

from pyhcs.emulator.service import cgroups

#: Bound on how long a test waits for a process to be gone.
GONE_TIMEOUT = 15.0


def state(pid: int) -> str:
    """The one-letter state in /proc/PID/stat."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def cgroup_of(pid: int) -> tuple[Path, int] | None:
    """The emulator cgroup a process is in, as (folder, version); None outside one."""
    places: dict[str, tuple[Path, int]] = {}
    for point, fstype, options in cgroups.mounts():
        if fstype == "cgroup2":
            places[""] = (Path(point), 2)
        elif fstype == "cgroup" and "freezer" in options.split(","):
            places["freezer"] = (Path(point), 1)
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _id, controllers, path = line.split(":", 2)
        for key in {controllers, *controllers.split(",")} & places.keys():
            mount, version = places[key]
            if cgroups.TOP in path.split("/"):
                return mount / path.lstrip("/"), version
    return None


def frozen(pid: int) -> bool:
    """Is the process stopped: frozen in its cgroup (as root) or stopped by SIGSTOP?"""
    group = cgroup_of(pid)
    if group is None:
        return state(pid) in "Tt"
    folder, version = group
    if version == 2:
        events = dict(line.split() for line in (folder / "cgroup.events").read_text().splitlines())
        return events["frozen"] == "1"
    return (folder / "freezer.state").read_text().strip() == "FROZEN"


def wait_gone(pid: int, timeout: float = GONE_TIMEOUT) -> bool:
    """Wait (bounded, through a pidfd) until the process no longer runs; True if it is gone."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        ready, _w, _x = select.select([pidfd], [], [], timeout)
        return bool(ready)
    finally:
        os.close(pidfd)
