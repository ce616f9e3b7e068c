"""containerd's stock runc shim driving a runc-compatible binary (issue 9), through ``ctr``:
run with output and exit code, detached runs with ``task ps``, pause/resume, exec with and
without a terminal, kill, delete, and a container started by one command and killed from
another. Every test runs once per `runtime_binary` (runc now; pyrunhcs once it is merged)."""

from __future__ import annotations

import errno
import os
import select
import subprocess
import time
from collections.abc import Sequence

import pytest

from tests.containerd import harness

#: An init process that says it is up, exits 7 on SIGTERM, and names itself (``$0``) so that
#: an exec can tell it is in the same container (``/proc/1/cmdline``).
LONG_RUNNING = ("sh", "-c", "trap 'exit 7' TERM; echo ready; sleep 1000 & wait", "pyhcs-init")
TIMEOUT = 30.0


def _read_until(fd: int, marker: bytes, timeout: float = TIMEOUT) -> bytes:
    """Bytes read from ``fd`` up to and including ``marker`` (AssertionError at EOF or after
    ``timeout``)."""
    data = b""
    deadline = time.monotonic() + timeout
    while marker not in data:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"no {marker!r} within {timeout:.0f} s: {data!r}"
        ready, _, _ = select.select([fd], [], [], remaining)
        if ready:
            chunk = os.read(fd, 4096)
            assert chunk, f"EOF before {marker!r}: {data!r}"
            data += chunk
    return data


def _run_in_pty(argv: Sequence[str], timeout: float = TIMEOUT) -> tuple[int, bytes]:
    """Run ``argv`` with a pseudo-terminal as stdin/stdout/stderr (``ctr --tty`` insists on
    one); its exit code and everything it wrote."""
    master, slave = os.openpty()
    try:
        process = subprocess.Popen(
            argv, stdin=slave, stdout=slave, stderr=slave, close_fds=True, start_new_session=True
        )
    finally:
        os.close(slave)
    output = b""
    deadline = time.monotonic() + timeout
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                process.kill()
                process.wait(timeout=timeout)
                pytest.fail(f"{argv} did not finish within {timeout:.0f} s: {output!r}")
            ready, _, _ = select.select([master], [], [], remaining)
            if not ready:
                continue
            try:
                chunk = os.read(master, 4096)
            except OSError as error:  # EIO: the last holder of the terminal's other end exited
                if error.errno != errno.EIO:
                    raise
                break
            if not chunk:
                break
            output += chunk
    finally:
        os.close(master)
    return process.wait(timeout=timeout), output


def _start_detached(runtime: harness.Runtime, prefix: str) -> str:
    container_id = runtime.new_id(prefix)
    result = runtime.run(*runtime.run_command(container_id, *LONG_RUNNING, detach=True))
    assert result.returncode == 0, result.stderr
    return container_id


def _containers(containerd: harness.Containerd) -> list[str]:
    return containerd.ctr("containers", "ls", "--quiet").stdout.split()


def test_run_prints_the_output_and_returns_the_exit_code(
    runtime: harness.Runtime, containerd: harness.Containerd
) -> None:
    container_id = runtime.new_id("run")
    script = "echo to-stdout; echo to-stderr >&2; exit 3"
    result = runtime.run(*runtime.run_command(container_id, "sh", "-c", script, rm=True))
    assert result.returncode == 3, result.stderr
    assert result.stdout == "to-stdout\n"
    assert "to-stderr" in result.stderr
    assert container_id not in _containers(containerd)  # --rm deleted task and container


def test_run_sees_the_image_as_root_and_exits_zero(runtime: harness.Runtime) -> None:
    container_id = runtime.new_id("run")
    script = 'id -u; pwd; cat /etc/passwd; test "$(readlink /bin/sh)" = /bin/busybox'
    result = runtime.run(*runtime.run_command(container_id, "sh", "-c", script, rm=True))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["0", "/", "root:x:0:0:root:/root:/bin/sh"]


def test_run_detached_then_task_ps_lists_the_init_process(
    runtime: harness.Runtime, containerd: harness.Containerd
) -> None:
    container_id = _start_detached(runtime, "ps")
    task = containerd.task(container_id)
    assert task is not None
    assert task.status == "RUNNING"
    listing = containerd.ctr("task", "ps", container_id).stdout.splitlines()
    assert listing[0].split() == ["PID", "INFO"]
    pids = [int(line.split()[0]) for line in listing[1:]]
    assert task.pid in pids
    assert all(os.path.exists(f"/proc/{pid}") for pid in pids)


def test_pause_and_resume(runtime: harness.Runtime, containerd: harness.Containerd) -> None:
    container_id = _start_detached(runtime, "pause")
    containerd.ctr("task", "pause", container_id)
    paused = containerd.task(container_id)
    assert paused is not None
    assert paused.status == "PAUSED"
    containerd.ctr("task", "resume", container_id)
    resumed = containerd.task(container_id)
    assert resumed is not None
    assert resumed.status == "RUNNING"
    result = runtime.run(*runtime.exec_command(container_id, "after-resume", "echo", "alive"))
    assert (result.returncode, result.stdout) == (0, "alive\n"), result.stderr


def test_exec_without_a_terminal_runs_in_the_container(
    runtime: harness.Runtime, containerd: harness.Containerd
) -> None:
    container_id = _start_detached(runtime, "exec")
    script = "tr '\\0' ' ' < /proc/1/cmdline; echo; echo to-stderr >&2; test -t 0 || exit 5"
    result = runtime.run(*runtime.exec_command(container_id, "e1", "sh", "-c", script))
    assert result.returncode == 5, result.stderr
    assert "pyhcs-init" in result.stdout  # pid 1 of the exec's pid namespace is our init
    assert "to-stderr" in result.stderr
    task = containerd.task(container_id)
    assert task is not None
    assert task.status == "RUNNING"


def test_exec_with_a_terminal(runtime: harness.Runtime) -> None:
    container_id = _start_detached(runtime, "exectty")
    script = "tty; test -t 0 && test -t 1 && echo both-terminals; exit 4"
    argv = runtime.exec_command(container_id, "t1", "sh", "-c", script, tty=True)
    code, output = _run_in_pty(argv)
    assert code == 4, output
    assert b"/dev/pts/" in output
    assert b"both-terminals" in output


def test_run_with_a_terminal(runtime: harness.Runtime, containerd: harness.Containerd) -> None:
    container_id = runtime.new_id("runtty")
    script = "tty; test -t 0 && echo stdin-terminal; exit 6"
    code, output = _run_in_pty(
        runtime.run_command(container_id, "sh", "-c", script, rm=True, tty=True)
    )
    assert code == 6, output
    assert b"/dev/pts/" in output
    assert b"stdin-terminal" in output
    assert container_id not in _containers(containerd)


@pytest.mark.parametrize(("signal", "exit_code"), [("SIGTERM", 7), ("SIGKILL", 137)])
def test_kill_then_delete_reports_the_exit_code(
    runtime: harness.Runtime, containerd: harness.Containerd, signal: str, exit_code: int
) -> None:
    container_id = _start_detached(runtime, "kill")
    containerd.ctr("task", "kill", "--signal", signal, container_id)
    containerd.wait_status(container_id, {"STOPPED"})
    deleted = containerd.ctr("task", "delete", container_id)
    assert f"exit code {exit_code}" in deleted.stderr
    assert containerd.task(container_id) is None
    containerd.ctr("containers", "delete", container_id)
    assert container_id not in _containers(containerd)


def test_delete_refuses_a_running_task_and_force_kills_it(
    runtime: harness.Runtime, containerd: harness.Containerd
) -> None:
    container_id = _start_detached(runtime, "delete")
    refused = containerd.ctr("task", "delete", container_id, check=False)
    assert refused.returncode != 0
    assert "running" in refused.stderr
    task = containerd.task(container_id)
    assert task is not None
    assert task.status == "RUNNING"
    forced = containerd.ctr("task", "delete", "--force", container_id)
    assert "exit code 137" in forced.stderr
    assert containerd.task(container_id) is None


@pytest.mark.parametrize(("signal", "exit_code"), [("SIGTERM", 7), ("SIGKILL", 137)])
def test_started_by_one_command_killed_from_another(
    runtime: harness.Runtime, containerd: harness.Containerd, signal: str, exit_code: int
) -> None:
    container_id = runtime.new_id("twoctr")
    foreground = subprocess.Popen(
        runtime.run_command(container_id, *LONG_RUNNING, rm=True),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert foreground.stdout is not None
        _read_until(foreground.stdout.fileno(), b"ready\n")
        containerd.ctr("task", "kill", "--signal", signal, container_id)
        assert foreground.wait(timeout=TIMEOUT) == exit_code
    finally:
        if foreground.poll() is None:
            foreground.kill()
        foreground.communicate(timeout=TIMEOUT)
    assert container_id not in _containers(containerd)
