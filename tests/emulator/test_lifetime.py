"""Nothing outlives what owns it: a system's processes end with the system and with the service,
however the service ends, and a new service takes back what a dead one left.

Each test runs its own service, as root with a cgroup per system and unprivileged (process
groups only, ``PYHCS_EMULATOR_UNPRIVILEGED=1``), where the documented limit is that a process
that left its process group is out of reach.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pyhcs.emulator import cli
from pyhcs.emulator.client import autostart
from pyhcs.emulator.client.backend import open_table
from pyhcs.emulator.client.table import Table
from pyhcs.emulator.service import cgroups
from tests.emulator import hostprocs
from tests.emulator.capi import CApi, read_line
from tests.emulator.conftest import CONTAINER, assert_clean, stop_service

VM = {"SchemaVersion": {"Major": 2, "Minor": 1}, "Owner": "tests", "VirtualMachine": {}}

#: A ``sleep`` that left the process group (setsid) prints its pid; the leader sleeps on.
ESCAPER = "/bin/sh -c \"setsid /bin/sh -c 'echo $$; exec sleep 300' </dev/null & exec sleep 300\""

#: Prints the pid of a background ``sleep`` in its process group, then exits at once.
LINGERER = '/bin/sh -c "sleep 300 </dev/null >/dev/null 2>&1 & echo $!"'

MODES = ["root", "unprivileged"]

#: Can this machine's service make a cgroup tree (root, a writable hierarchy)?
CGROUPS = os.geteuid() == 0 and any(
    os.access(top.parent, os.W_OK) for top, _version in cgroups.Tree.hierarchies()
)


class Service:
    """A service of this test's own, with a client; ``kill`` ends it the hard way."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.pid = autostart.start(directory)
        self.table: Table = open_table(directory)
        self.c = CApi(self.table)
        self.strays: list[int] = []

    def status(self) -> dict[str, Any]:
        return cli.query_status(self.dir)

    def container(self, name: str, doc: dict[str, Any] | None = None) -> Any:
        system, code, _ = self.c.create(name, doc or CONTAINER)
        assert code == 0
        assert self.c.system_op("HcsStartComputeSystem", system) == (0, None)
        return system

    def run(self, system: Any, command: str) -> tuple[Any, int, int]:
        """Start ``command`` (which prints a pid first); (process handle, its pid, printed pid)."""
        process, code, info, _ = self.c.spawn(
            system, {"CommandLine": command, "CreateStdOutPipe": True}
        )
        assert code == 0
        other = int(read_line(info.StdOutput))
        self.strays.append(other)
        assert self.table.CloseHandle(info.StdOutput) == 1
        return process, int(info.ProcessId), other


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "root" and not CGROUPS:
        pytest.skip("needs root and a writable cgroup hierarchy")
    if request.param == "unprivileged":
        monkeypatch.setenv("PYHCS_EMULATOR_UNPRIVILEGED", "1")
    else:
        monkeypatch.delenv("PYHCS_EMULATOR_UNPRIVILEGED", raising=False)
    return str(request.param)


@pytest.fixture
def service(mode: str, tmp_path: Path) -> Iterator[Service]:
    s = Service(tmp_path / "emu")
    try:
        yield s
    finally:
        s.table.close()
        stop_service(s.pid)
        for pid in s.strays:  # a documented survivor must not outlive the test
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def test_status_says_how_processes_are_held(service: Service, mode: str) -> None:
    held = service.status()["Containment"]
    assert held["KeeperPid"] > 0
    assert not hostprocs.wait_gone(held["KeeperPid"], 0)
    if mode == "root":
        assert held["Kind"] in ("cgroup v2", "cgroup v1 freezer")
        assert Path(held["Tree"]).is_dir()
    else:
        assert held == {"Kind": "process groups", "Tree": None, "KeeperPid": held["KeeperPid"]}


def test_terminate_reaches_every_process_of_the_system(service: Service, mode: str) -> None:
    system = service.container("escape")
    process, leader, escaped = service.run(system, ESCAPER)
    _lingering_process, _pid, lingering = service.run(system, LINGERER)
    assert os.getsid(escaped) != os.getsid(leader)  # it really left the session
    assert service.c.system_op("HcsTerminateComputeSystem", system) == (0, None)
    assert hostprocs.wait_gone(leader)
    assert hostprocs.wait_gone(lingering)  # outlived its leader, still in the group
    if mode == "root":
        assert hostprocs.wait_gone(escaped)
        assert service.status()["Containment"]["Tree"] is not None
    else:  # the documented limit: a process that left its group is out of reach
        os.kill(escaped, 0)
    service.table.HcsCloseProcess(process)
    service.table.HcsCloseProcess(_lingering_process)
    service.table.HcsCloseComputeSystem(system)
    assert_clean(service.table)


def test_pause_freezes_every_process_of_a_vm(service: Service, mode: str) -> None:
    vm = service.container("paused-vm", VM)
    process, leader, escaped = service.run(vm, ESCAPER)
    guest = service.container("paused-guest", {**CONTAINER, "HostingSystemId": "paused-vm"})
    guest_process, guest_leader, guest_escaped = service.run(guest, ESCAPER)
    assert service.c.system_op("HcsPauseComputeSystem", vm) == (0, None)
    assert hostprocs.frozen(leader)
    assert hostprocs.frozen(guest_leader)
    if mode == "root":
        assert hostprocs.frozen(escaped)
        assert hostprocs.frozen(guest_escaped)
    else:  # the documented limit again
        assert not hostprocs.frozen(escaped)
    assert service.c.system_op("HcsResumeComputeSystem", vm) == (0, None)
    for pid in (leader, escaped, guest_leader, guest_escaped):
        assert not hostprocs.frozen(pid)
    assert service.c.system_op("HcsTerminateComputeSystem", vm) == (0, None)
    assert hostprocs.wait_gone(leader)
    assert hostprocs.wait_gone(guest_leader)
    for handle in (process, guest_process):
        service.table.HcsCloseProcess(handle)
    service.table.HcsCloseComputeSystem(guest)
    service.table.HcsCloseComputeSystem(vm)
    assert_clean(service.table)


def test_a_killed_service_leaves_no_process_and_a_new_one_reclaims(
    service: Service, mode: str
) -> None:
    system = service.container("orphans")
    _process, leader, escaped = service.run(system, ESCAPER)
    assert list((service.dir / "systems").iterdir())
    keeper = service.status()["Containment"]["KeeperPid"]
    os.kill(service.pid, signal.SIGKILL)
    assert hostprocs.wait_gone(service.pid)
    assert hostprocs.wait_gone(keeper)  # it exits once it has killed what the service left
    assert hostprocs.wait_gone(leader)
    if mode == "root":
        assert hostprocs.wait_gone(escaped)
    else:
        os.kill(escaped, 0)  # the documented limit
    stop_service(service.pid)
    service.pid = autostart.start(service.dir)
    assert list((service.dir / "systems").iterdir()) == []
    assert [pid for pid, _tree in cgroups.trees(service.dir)] == (
        [service.pid] if mode == "root" else []
    )


@pytest.mark.skipif(not CGROUPS, reason="needs root and a writable cgroup hierarchy")
def test_a_new_service_kills_what_a_dead_service_and_keeper_left(tmp_path: Path) -> None:
    s = Service(tmp_path / "emu")
    try:
        system = s.container("left")
        _process, leader, escaped = s.run(system, ESCAPER)
        keeper = s.status()["Containment"]["KeeperPid"]
        os.kill(keeper, signal.SIGKILL)
        assert hostprocs.wait_gone(keeper)
        os.kill(s.pid, signal.SIGKILL)
        assert hostprocs.wait_gone(s.pid)
        os.kill(leader, 0)  # nobody killed them yet
        os.kill(escaped, 0)
        assert [pid for pid, _tree in cgroups.trees(s.dir)] == [s.pid]
        s.pid = autostart.start(s.dir)
        assert hostprocs.wait_gone(leader)
        assert hostprocs.wait_gone(escaped)
        assert [pid for pid, _tree in cgroups.trees(s.dir)] == [s.pid]
        assert list((s.dir / "systems").iterdir()) == []
    finally:
        s.table.close()
        stop_service(s.pid)
        for pid in s.strays:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def test_stop_removes_every_system_folder(service: Service) -> None:
    service.container("kept-root")
    assert list((service.dir / "systems").iterdir())
    assert cli.stop(service.pid)
    assert list((service.dir / "systems").iterdir()) == []
    assert cgroups.trees(service.dir) == []


def test_records_of_exited_closed_processes_are_released(service: Service) -> None:
    system = service.container("many")
    for _ in range(40):
        process, code, _info, _ = service.c.spawn(system, {"CommandLine": "true"})
        assert code == 0
        assert service.c.wait_process(process)[0] == 0
        service.table.HcsCloseProcess(process)
    kept, code, _info, _ = service.c.spawn(system, {"CommandLine": "true"})
    assert service.c.wait_process(kept)[0] == 0
    assert service.table.client.settle(10)
    [row] = service.status()["Systems"]
    assert row["Processes"] == 1  # only the exited process that still has a handle
    service.table.HcsCloseProcess(kept)
    assert service.table.client.settle(10)
    assert service.status()["Systems"][0]["Processes"] == 0
    service.c.system_op("HcsTerminateComputeSystem", system)
    service.table.HcsCloseComputeSystem(system)
    assert_clean(service.table)


def test_a_dead_keeper_does_not_fail_process_starts(service: Service, mode: str) -> None:
    """Unprivileged, the service tells its keeper of every process group; with the keeper gone
    (killed from outside), starting a process still works and the loss is logged."""
    keeper = service.status()["Containment"]["KeeperPid"]
    os.kill(keeper, signal.SIGKILL)
    assert hostprocs.wait_gone(keeper)
    system = service.container("keeperless")
    for _ in range(2):  # the first start meets the closed pipe, the next finds it forgotten
        process, code, _info, _ = service.c.spawn(system, {"CommandLine": "true"})
        assert code == 0
        assert service.c.wait_process(process)[0] == 0
        service.table.HcsCloseProcess(process)
    if mode == "unprivileged":
        log = (service.dir / "service.log").read_text()
        assert f"keeper pid {keeper} is gone" in log
    service.c.system_op("HcsTerminateComputeSystem", system)
    service.table.HcsCloseComputeSystem(system)
    assert_clean(service.table)
