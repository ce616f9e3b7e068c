"""One cgroup per compute system, so that terminate and pause reach every process of it.

A process group is not enough: anything that calls ``setsid`` leaves it, and would outlive its
container. As root the service makes a cgroup tree of its own and puts each system's processes
in a group of the system (a hosted container's group lies inside its virtual machine's, so
pausing the VM freezes its guests too). Terminate is then ``cgroup.kill`` and pause
``cgroup.freeze`` (cgroup v2); where only the v1 freezer is writable, the group is frozen, every
member killed and the group thawed. A process joins its group before its program runs (see
`open_procs`), so none can fork away first.

The tree is named after the state directory and the service's pid, under the hierarchy's root
(or, where that is not writable, under the service's own cgroup). The service's keeper destroys
it when the service dies, and a new service in the same state directory destroys any tree an
old one left.

This module uses the standard library only: the keeper process imports it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import select
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

#: The folder under a hierarchy that holds the services' trees.
TOP: Final = "pyhcs-emulator"

#: Bound on each wait for the kernel to freeze, thaw or empty a group.
GROUP_TIMEOUT: Final = 10.0


class CgroupError(Exception):
    """The kernel did not freeze, thaw or empty a group in time."""


def mounts() -> list[tuple[str, str, str]]:
    """(mount point, file system type, super options) of every mount."""
    out = []
    with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as f:
        for line in f:
            left, _sep, right = line.partition(" - ")
            fields, tail = left.split(), right.split()
            if len(fields) >= 5 and len(tail) >= 3:
                point = fields[4].replace("\\040", " ").replace("\\011", "\t")
                out.append((point.replace("\\012", "\n").replace("\\134", "\\"), tail[0], tail[2]))
    return out


def _own_path(controller: str) -> str:
    """The service's own cgroup in a hierarchy ("" is v2's unified one)."""
    with open("/proc/self/cgroup", encoding="utf-8", errors="surrogateescape") as f:
        for line in f:
            _id, controllers, path = line.rstrip("\n").split(":", 2)
            if controllers == controller or controller in controllers.split(","):
                return path
    return "/"


@dataclass(frozen=True)
class Tree:
    """The service's own cgroup tree: ``root`` in a v2 hierarchy or a v1 freezer hierarchy."""

    root: Path
    version: int

    # -- finding and making ----------------------------------------------------------------

    @staticmethod
    def hierarchies() -> list[tuple[Path, int]]:
        """Where a tree may go, best first: (folder that holds trees, version)."""
        found: list[tuple[Path, int]] = []
        for point, fstype, options in mounts():
            if fstype == "cgroup2":
                own = _own_path("")
            elif fstype == "cgroup" and "freezer" in options.split(","):
                own = _own_path("freezer")
            else:
                continue
            version = 2 if fstype == "cgroup2" else 1
            for base in (Path(point), Path(point) / own.lstrip("/")):
                if (base / TOP, version) not in found:
                    found.append((base / TOP, version))
        found.sort(key=lambda item: -item[1])  # v2 first: cgroup.kill is atomic
        return found

    @classmethod
    def create(cls, state_dir: Path) -> Tree | None:
        """Make this service's tree where the kernel lets us; None where no hierarchy is
        writable (not root, or a read-only /sys/fs/cgroup in a container)."""
        name = f"{tree_prefix(state_dir)}{os.getpid()}"
        for top, version in cls.hierarchies():
            if version == 2 and not (top.parent / "cgroup.procs").exists():
                continue
            try:
                top.mkdir(exist_ok=True)
                (top / name).mkdir(exist_ok=True)
            except OSError:
                continue
            tree = cls(top / name, version)
            if version == 2 and not (tree.root / "cgroup.freeze").exists():
                with contextlib.suppress(OSError):
                    tree.root.rmdir()
                continue  # a kernel older than 5.2 cannot freeze a v2 group
            return tree
        return None

    # -- groups ----------------------------------------------------------------------------

    def group(self, *names: str) -> Path:
        """The group at ``names`` under the tree, made if missing."""
        path = self.root.joinpath(*names)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def open_procs(self, group: Path) -> int:
        """A descriptor of the group's ``cgroup.procs`` (close-on-exec): a child that writes
        ``0`` to it between fork and exec (`HostProcess`) runs its program in the group, so
        nothing it forks can be elsewhere."""
        return os.open(group / "cgroup.procs", os.O_WRONLY | os.O_CLOEXEC)

    def freeze(self, group: Path, frozen: bool, timeout: float = GROUP_TIMEOUT) -> None:
        """Freeze (or thaw) every process of ``group`` and its subgroups; returns once the
        kernel reports it done. Raises CgroupError after ``timeout``."""
        if self.version == 2:
            (group / "cgroup.freeze").write_text("1" if frozen else "0")
            # A group reports only its own tasks frozen (newer kernels): ask each subgroup.
            deadline = time.monotonic() + timeout
            for directory, _dirs, _files in os.walk(group):
                left = max(0.0, deadline - time.monotonic())
                _wait_event(Path(directory), "frozen", "1" if frozen else "0", left)
            return
        (group / "freezer.state").write_text("FROZEN" if frozen else "THAWED")
        want = "FROZEN" if frozen else "THAWED"
        deadline = time.monotonic() + timeout
        while (group / "freezer.state").read_text().strip() != want:
            if time.monotonic() >= deadline:
                raise CgroupError(f"{group} did not become {want.lower()}")
            time.sleep(0.001)  # v1 has no notification for freezer.state

    def kill(self, group: Path, timeout: float = GROUP_TIMEOUT) -> None:
        """SIGKILL every process of ``group`` and its subgroups, forks in flight included, and
        return once none is left. Raises CgroupError after ``timeout``."""
        if not group.is_dir():
            return
        if (group / "cgroup.kill").exists():
            (group / "cgroup.kill").write_text("1")
        else:  # freeze so nothing forks while we read the members, kill them, thaw
            self.freeze(group, True, timeout)
            for pid in members(group):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            self.freeze(group, False, timeout)
        if self.version == 2:
            _wait_event(group, "populated", "0", timeout)
            return
        deadline = time.monotonic() + timeout
        while members(group):
            if time.monotonic() >= deadline:
                raise CgroupError(f"{group} still has processes")
            time.sleep(0.001)

    def remove(self, group: Path) -> None:
        """Remove an emptied group and its subgroups (deepest first)."""
        if not group.is_dir():
            return
        for directory, _dirs, _files in sorted(os.walk(group), key=lambda w: -len(w[0])):
            with contextlib.suppress(FileNotFoundError):
                os.rmdir(directory)

    def destroy(self, timeout: float = GROUP_TIMEOUT) -> None:
        """Kill everything in the tree and remove it."""
        self.kill(self.root, timeout)
        self.remove(self.root)


def tree_prefix(state_dir: Path) -> str:
    """The name of every tree of services in ``state_dir``, before the service's pid."""
    digest = hashlib.sha256(os.fsencode(os.path.abspath(state_dir))).hexdigest()
    return f"{digest[:24]}-"


def members(group: Path) -> list[int]:
    """Every process in ``group`` and its subgroups."""
    pids: list[int] = []
    for directory, _dirs, _files in os.walk(group):
        with contextlib.suppress(FileNotFoundError):
            text = (Path(directory) / "cgroup.procs").read_text()
            pids.extend(int(p) for p in text.split())
    return pids


def trees(state_dir: Path) -> list[tuple[int, Tree]]:
    """Every tree of a service in ``state_dir``, with that service's pid."""
    prefix, found = tree_prefix(state_dir), []
    for top, version in Tree.hierarchies():
        with contextlib.suppress(FileNotFoundError, NotADirectoryError, PermissionError):
            for entry in top.iterdir():
                pid = entry.name[len(prefix) :]
                if entry.name.startswith(prefix) and pid.isdigit():
                    found.append((int(pid), Tree(entry, version)))
    return found


def leftovers(state_dir: Path) -> list[Tree]:
    """Trees of services in ``state_dir`` other than this process (a dead service's)."""
    return [tree for pid, tree in trees(state_dir) if pid != os.getpid()]


def _wait_event(group: Path, key: str, value: str, timeout: float) -> None:
    """Wait until ``cgroup.events`` says ``key value``: the kernel signals every change of
    that file as POLLPRI."""
    deadline = time.monotonic() + timeout
    try:
        fd = os.open(group / "cgroup.events", os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:  # the group is gone, so it is empty and not frozen
        return
    try:
        poller = select.poll()
        poller.register(fd, select.POLLPRI | select.POLLERR)
        while True:
            os.lseek(fd, 0, os.SEEK_SET)
            fields = dict(
                line.split(" ", 1) for line in os.read(fd, 4096).decode().splitlines() if line
            )
            if fields.get(key) == value:
                return
            left = deadline - time.monotonic()
            if left <= 0:
                raise CgroupError(f"{group}: {key} did not become {value}")
            poller.poll(left * 1000)
    finally:
        os.close(fd)
