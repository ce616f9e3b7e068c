"""A Linux container on a root filesystem of its own, as in a Linux utility VM: as root its
processes run chroot'ed into the rootfs (nothing copied) in one PID namespace whose pid 1 is the
container's first process; unprivileged they stay host programs on host paths (documented)."""

from __future__ import annotations

import json
import os
import shutil
import signal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyhcs import hresult as hr
from pyhcs.emulator.client import autostart
from pyhcs.emulator.client.backend import open_table
from pyhcs.emulator.privilege import UNPRIVILEGED_ENV
from pyhcs.emulator.service import cmdline, isolation
from tests.emulator.capi import CApi, read_all, read_line
from tests.emulator.conftest import assert_clean, stop_service

BUSYBOX = shutil.which("busybox")
APPLETS = ("sh", "cat", "readlink", "pwd", "ps", "sleep", "hostname", "ls", "echo")
PASSWD = "container-root:x:0:0:root of the rootfs:/root:/bin/sh\n"
LINUX_VM = {
    "SchemaVersion": {"Major": 2, "Minor": 2},
    "Owner": "tests",
    "VirtualMachine": {"Chipset": {"LinuxKernelDirect": {"KernelFilePath": "/boot/vmlinuz"}}},
}

needs_root = pytest.mark.skipif(
    not isolation.privileged() or BUSYBOX is None, reason="needs root, util-linux and busybox"
)


@pytest.fixture
def rootfs(tmp_path: Path) -> Path:
    """A minimal Linux root: a static busybox with its applets as relative links, an
    /etc/passwd of its own, /tmp (no /proc: the emulator makes the mount point)."""
    if BUSYBOX is None:
        pytest.skip("needs busybox")
    root = tmp_path / "rootfs"
    for folder in ("bin", "etc", "tmp"):
        (root / folder).mkdir(parents=True)
    shutil.copy2(BUSYBOX, root / "bin" / "busybox")
    for applet in APPLETS:
        (root / "bin" / applet).symlink_to("busybox")
    (root / "etc" / "passwd").write_text(PASSWD)
    return root


def start_container(c: CApi, rootfs: Path, name: str) -> tuple[Any, Any]:
    """A started Linux VM and the container it hosts on ``rootfs`` (handles: vm, container)."""
    vm, code, _ = c.create(f"{name}-vm", LINUX_VM)
    assert code == 0
    assert c.system_op("HcsStartComputeSystem", vm) == (0, None)
    doc = {
        "SchemaVersion": {"Major": 2, "Minor": 1},
        "Owner": "tests",
        "HostingSystemId": f"{name}-vm",
        "Container": {"Storage": {"Path": str(rootfs)}, "GuestOs": {"HostName": "inside"}},
    }
    container, code, _ = c.create(name, doc)
    assert code == 0
    assert c.system_op("HcsStartComputeSystem", container) == (0, None)
    return vm, container


def run(c: CApi, system: Any, command: str, **params: Any) -> tuple[int, str]:
    """Run a command in the container to its end: (exit code, stdout)."""
    process, code, info, _ = c.spawn(
        system, {"CommandLine": command, "CreateStdOutPipe": True, **params}
    )
    assert code == 0, hex(code)
    out = read_all(info.StdOutput).decode()
    c.t.CloseHandle(info.StdOutput)
    status = c.wait_process(process)[1]
    c.t.HcsCloseProcess(process)
    return int(status["ExitCode"]), out


def spawn_code(c: CApi, system: Any, command: str) -> int:
    """The HRESULT of starting ``command`` (the process, if any, is closed)."""
    process, code, _info, _ = c.spawn(system, {"CommandLine": command})
    if process:
        c.t.HcsCloseProcess(process)
    return int(code)


def stop(c: CApi, *systems: Any) -> None:
    for system in systems:
        assert c.system_op("HcsTerminateComputeSystem", system) == (0, None)
        c.t.HcsCloseComputeSystem(system)


def in_root(root: Path) -> list[int]:
    """Host pids of the processes whose root directory is ``root``."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.readlink(entry / "root") == str(root.resolve()):
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def proc_mounted(root: Path) -> bool:
    """Whether a mount under ``root`` is visible in the host's mount namespace."""
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        return any(str(root.resolve()) in line.split()[4] for line in f)


@needs_root
def test_processes_see_the_rootfs_as_their_root(c: CApi, rootfs: Path) -> None:
    vm, container = start_container(c, rootfs, "rooted")
    init, code, init_info, _ = c.spawn(container, {"CommandLine": "sleep 600"})
    assert code == 0
    assert os.path.isdir(f"/proc/{init_info.ProcessId}")  # the pid HCS reports is the host's
    assert run(c, container, "cat /etc/passwd") == (0, PASSWD)
    assert run(c, container, "readlink /bin/sh") == (0, "busybox\n")
    assert run(c, container, "pwd") == (0, "/\n")
    assert run(c, container, "pwd", WorkingDirectory="/tmp") == (0, "/tmp\n")
    assert run(c, container, "/bin/hostname") == (0, "inside\n")
    # A /dev of its own, as runc gives a container: a background job's stdin is /dev/null.
    assert run(c, container, 'sh -c "test -c /dev/null && echo x > /dev/null && ls /dev"') == (
        0,
        "fd\nfull\nnull\nptmx\npts\nrandom\nshm\nstderr\nstdin\nstdout\ntty\nurandom\nzero\n",
    )
    # One PID namespace: the first process is pid 1, /proc is that namespace's.
    code, cmdline = run(c, container, "cat /proc/1/cmdline")
    assert (code, cmdline.split("\0")) == (0, ["/bin/sleep", "600", ""])
    code, listing = run(c, container, "ps")
    assert code == 0
    assert "/bin/sleep 600" in listing
    # Programs are looked up in the rootfs only, never on the host.
    assert shutil.which("python3") is not None
    assert spawn_code(c, container, "python3 -c pass") == hr.ERROR_FILE_NOT_FOUND
    assert spawn_code(c, container, "/usr/bin/env true") == hr.ERROR_FILE_NOT_FOUND
    assert spawn_code(c, container, "/etc/passwd") == hr.E_ACCESSDENIED
    # Nothing of the container's mounts is visible on the host.
    assert not proc_mounted(rootfs)
    assert not (rootfs / "dev").is_mount()  # the container's /dev lives in its namespace only
    assert in_root(rootfs)  # the init (and only what runs in the container)

    assert c.system_op("HcsTerminateComputeSystem", container) == (0, None)
    status = c.wait_process(init)[1]
    assert (status["Exited"], status["ExitCode"]) == (True, 128 + signal.SIGKILL)
    c.t.HcsCloseProcess(init)
    c.t.HcsCloseComputeSystem(container)
    stop(c, vm)
    assert in_root(rootfs) == []
    assert not (rootfs / "proc").is_mount()


@needs_root
def test_signals_exit_codes_and_the_end_of_the_init(c: CApi, rootfs: Path) -> None:
    vm, container = start_container(c, rootfs, "signals")
    init, code, _info, _ = c.spawn(container, {"CommandLine": "sleep 600"})
    assert code == 0
    # An exec'd process (not pid 1) dies of SIGTERM: 128 + 15, as on a Linux guest.
    process, code, info, _ = c.spawn(
        container, {"CommandLine": 'sh -c "echo ready; sleep 600"', "CreateStdOutPipe": True}
    )
    assert code == 0
    assert read_line(info.StdOutput) == b"ready\n"
    signal_doc = json.dumps({"Signal": int(signal.SIGTERM)})
    assert c.process_op("HcsSignalProcess", process, signal_doc) == (0, None)
    assert c.wait_process(process)[1]["ExitCode"] == 128 + signal.SIGTERM
    c.t.CloseHandle(info.StdOutput)
    c.t.HcsCloseProcess(process)
    assert run(c, container, 'sh -c "exit 7"') == (7, "")

    # Terminating the init ends its PID namespace: the container takes no new process.
    assert c.process_op("HcsTerminateProcess", init) == (0, None)
    assert c.wait_process(init)[1]["ExitCode"] == 128 + signal.SIGKILL
    c.t.HcsCloseProcess(init)
    assert spawn_code(c, container, "sh -c exit") == hr.HCS_E_INVALID_STATE
    assert c.properties(container)["State"] == "Running"
    assert in_root(rootfs) == []
    stop(c, container, vm)


def test_unprivileged_processes_stay_on_host_paths(
    rootfs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(UNPRIVILEGED_ENV, "1")
    pid = autostart.start(tmp_path / "emu")
    table = open_table(tmp_path / "emu")
    try:
        c = CApi(table)
        vm, container = start_container(c, rootfs, "plain")
        with open("/etc/passwd", encoding="utf-8") as f:
            host_passwd = f.read()
        assert run(c, container, "cat /etc/passwd") == (0, host_passwd)
        assert run(c, container, "pwd") == (0, f"{rootfs}\n")
        stop(c, container, vm)
        assert not (rootfs / "proc").exists()
        assert_clean(table)
    finally:
        table.close()
        stop_service(pid)


@given(
    st.lists(st.sampled_from(["..", ".", "up", "abs", "etc", "bin", "x"]), max_size=8),
)
@settings(deadline=None, max_examples=60)
def test_paths_inside_the_root_never_leave_it(tmp_path_factory: Any, parts: list[str]) -> None:
    """Whatever the path and the links on the way (``..`` chains, absolute and relative targets
    pointing out), its host path stays under the root, as for a chroot'ed process."""
    root = tmp_path_factory.mktemp("root").resolve()
    (root / "etc").mkdir()
    (root / "bin").mkdir()
    (root / "up").symlink_to("../../..")
    (root / "abs").symlink_to("/etc")
    host = cmdline.in_root(cmdline.linux_path("/" + "/".join(parts)), root)
    assert host == root or root in host.parents
    if parts[:1] == ["abs"] and not {"..", "up"} & set(parts[1:]):
        # An absolute link target is the root's, not the host's (nothing climbs out again).
        assert host.parts[len(root.parts)] == "etc"
