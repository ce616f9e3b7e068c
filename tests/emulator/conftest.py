"""Fixtures: one emulator service per test in its own state directory, stopped afterwards."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pyhcs.emulator.client import autostart, overlayfs
from pyhcs.emulator.client.backend import open_table
from pyhcs.emulator.client.table import Table
from pyhcs.emulator.privilege import UNPRIVILEGED_ENV
from tests.emulator.capi import CApi

REPO = Path(__file__).resolve().parent.parent.parent
STOP_TIMEOUT = 15.0


@pytest.fixture
def service_dir(tmp_path: Path) -> Iterator[Path]:
    """A running service in a fresh directory; stopped (SIGTERM, bounded wait) after the test."""
    directory = tmp_path / "emu"
    pid = autostart.start(directory)
    yield directory
    stop_service(pid)


def stop_service(pid: int) -> None:
    """SIGTERM the service and wait (bounded, via a pidfd) until it has exited."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        os.kill(pid, signal.SIGTERM)
        ready, _w, _x = select.select([pidfd], [], [], STOP_TIMEOUT)
        if not ready:
            os.kill(pid, signal.SIGUSR1)  # the service dumps its threads to service.log
            select.select([pidfd], [], [], 1.0)
            os.kill(pid, signal.SIGKILL)
            pytest.fail("emulator service did not stop in time")
    finally:
        os.close(pidfd)


@pytest.fixture
def no_mount_leaks(tmp_path: Path) -> Iterator[None]:
    """After the test no overlay mount may remain under its tmp dir: one left is unmounted (so
    a failing test leaks nothing onto the host) and the test fails. Request it before ``table``
    so the service (and every container process in the mount) has stopped by then."""
    yield
    assert unmount_leftovers(tmp_path) == []


@pytest.fixture
def overlay_mode(monkeypatch: pytest.MonkeyPatch, no_mount_leaks: None) -> None:
    """Storage filters are overlay mounts (skipped unless root with overlayfs)."""
    monkeypatch.delenv(UNPRIVILEGED_ENV, raising=False)
    if not overlayfs.available():
        pytest.skip("overlay mounts need root and overlayfs")


@pytest.fixture(params=["overlay", "copy"])
def storage_mode(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, no_mount_leaks: None
) -> str:
    """Run a storage test with each storage filter: the overlay mount (as root, where the kernel
    has overlayfs) and the copying attach (``PYHCS_EMULATOR_UNPRIVILEGED=1``, read by the client
    at each attach and by the service when it starts). Request it before ``table``
    (usefixtures) so the service starts with the mode's environment."""
    if request.param == "overlay":
        request.getfixturevalue("overlay_mode")
    else:
        monkeypatch.setenv(UNPRIVILEGED_ENV, "1")
    return str(request.param)


def unmount_leftovers(root: Path) -> list[Path]:
    """Unmount (never lazily) every overlay mount under ``root``; the ones that were there."""
    left = [m for m in overlayfs.mounts() if root.resolve() in m.target.parents]
    for mount in sorted(left, key=lambda m: len(m.target.parts), reverse=True):
        assert mount.upper is not None
        overlayfs.unmount(mount.target, mount.upper)
    return [m.target for m in left]


@pytest.fixture
def private_table(service_dir: Path) -> Iterator[Table]:
    """A client of this test's own service (for tests that break or stop the service)."""
    t = open_table(service_dir)
    yield t
    assert_clean(t)
    t.close()


@pytest.fixture
def table(private_table: Table) -> Table:
    """Per test by default; a module whose tests may share a service overrides this with
    ``shared``."""
    return private_table


def assert_clean(t: Table) -> None:
    """No test may leak a handle, a string or a pipe, or let an exception reach C."""
    # After a service disconnect nothing can settle with the service; callbacks still ran.
    assert t.client.settle(10) or t.client.connection.disconnected
    counters = t.client.counters()
    assert t.errors == []
    leaks = {k: v for k, v in counters.items() if v and k != "bad_frees"}
    assert leaks == {}, f"leaked: {leaks}"


@pytest.fixture(scope="module")
def module_service_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One running service for a whole module, stopped after its last test."""
    directory = tmp_path_factory.mktemp("emu")
    pid = autostart.start(directory)
    yield directory
    stop_service(pid)


@pytest.fixture(scope="module")
def module_table(module_service_dir: Path) -> Iterator[Table]:
    """One service and client for a whole module of short independent tests (each test still
    checks for leaks, through ``shared``)."""
    t = open_table(module_service_dir)
    yield t
    t.close()


@pytest.fixture
def shared(module_table: Table) -> Iterator[Table]:
    yield module_table
    module_table.client.faults.clear()  # a failed test must not leave its faults behind
    assert_clean(module_table)


@pytest.fixture
def c(table: Table) -> CApi:
    return CApi(table)


def run_child(
    service_dir: Path, *args: str, timeout: float = 30.0
) -> subprocess.CompletedProcess[str]:
    """Run tests/emulator/child.py in a separate interpreter against the same service."""
    env = dict(os.environ, PYHCS_EMULATOR_DIR=str(service_dir), PYHCS_EMULATOR_AUTOSTART="0")
    return subprocess.run(
        [sys.executable, "-m", "tests.emulator.child", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


CONTAINER = {"SchemaVersion": {"Major": 2, "Minor": 1}, "Owner": "tests", "Container": {}}


@pytest.fixture
def running(table: Table, c: CApi) -> Iterator[Any]:
    """A started container, terminated and closed after the test."""
    system, code, _ = c.create("running-sys", CONTAINER)
    assert code == 0
    assert c.system_op("HcsStartComputeSystem", system) == (0, None)
    yield system
    c.system_op("HcsTerminateComputeSystem", system)
    table.HcsCloseComputeSystem(system)
