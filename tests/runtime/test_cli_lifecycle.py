"""The container lifecycle through the CLI, as containerd's runc shim drives it: create with a
pid file under a subreaper, start, state, ps, list, kill, delete; run and exec in the
foreground with their stdio and exit codes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

from tests.runtime.support import BOUND, Runtime, Supervised, bundle


def test_run_relays_stdio_and_exits_with_the_code(runtime: Runtime, tmp_path: Path) -> None:
    b = bundle(tmp_path / "b", ["sh", "-c", "read x; echo out:$x; echo err >&2; exit 7"])
    result = runtime("run", "-b", str(b), "c1", input=b"hello\n")
    assert (result.returncode, result.stdout, result.stderr) == (7, "out:hello\n", "err\n")
    assert runtime("list", "-q").stdout == ""  # run without --keep deletes the container


def test_run_keep_and_detach(runtime: Runtime, tmp_path: Path) -> None:
    b = bundle(tmp_path / "b", ["sh", "-c", "exit 3"])
    assert runtime("run", "--keep", "--bundle", str(b), "kept").returncode == 3
    assert runtime.state("kept")["status"] == "stopped"
    assert runtime("delete", "kept").returncode == 0
    b2 = bundle(tmp_path / "b2", ["sleep", "30"])
    assert runtime("run", "-d", f"--bundle={b2}", "detached").returncode == 0
    assert runtime.state("detached")["status"] == "running"


def test_lifecycle_under_a_subreaper(runtime: Runtime, tmp_path: Path) -> None:
    b = bundle(tmp_path / "b", ["sh", "-c", "echo started; exec sleep 30"])
    out = tmp_path / "stdout"
    c = Supervised(runtime, "--bundle", str(b), "life", stdout=out)
    # runc's pid file: the number alone; the pid is the shim, left to the subreaper by create.
    assert c.pid_file_text == str(c.pid)
    assert c.child
    state = runtime.state("life")
    assert state["status"] == "created"
    assert state["pid"] == c.pid
    assert state["bundle"] == str(b)
    assert state["rootfs"] == str(b / "rootfs")
    assert set(state) == {
        "ociVersion",
        "id",
        "pid",
        "status",
        "bundle",
        "rootfs",
        "created",
        "owner",
    }
    raw = runtime("state", "life").stdout
    assert not raw.endswith("\n")
    assert raw.startswith('{\n  "ociVersion"')

    assert runtime("start", "life").returncode == 0
    assert runtime.state("life")["status"] == "running"
    pids = json.loads(runtime("ps", "--format", "json", "life").stdout)
    assert len(pids) == 1
    table = runtime("ps", "life").stdout.splitlines()
    assert "PID" in table[0]
    assert any("sleep 30" in line for line in table[1:])

    listed = json.loads(runtime("list", "--format=json").stdout)
    assert [(e["id"], e["status"], e["pid"]) for e in listed] == [("life", "running", c.pid)]
    table = runtime("list").stdout.splitlines()
    assert table[0].split() == ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
    assert table[1].split()[:3] == ["life", str(c.pid), "running"]
    assert runtime("list", "-q").stdout == "life\n"

    # SIGTERM: a Windows container's CtrlShutdown; the shim exits with the process's status.
    assert runtime("kill", "life", "15").returncode == 0
    assert c.exit_status() == 128 + signal.SIGTERM
    assert out.read_text() == "started\n"  # the caller's fd 1 became the container's stdout
    state = runtime.state("life")
    assert (state["status"], state["pid"]) == ("stopped", 0)
    assert runtime("delete", "life").returncode == 0
    assert runtime("state", "life").returncode == 1
    assert runtime("list", "--format", "json").stdout == "null\n"


def test_the_shim_exits_with_the_container_code(runtime: Runtime, tmp_path: Path) -> None:
    b = bundle(tmp_path / "b", ["sh", "-c", "exit 42"])
    c = Supervised(runtime, "-b", str(b), "code")
    assert runtime("start", "code").returncode == 0
    assert c.exit_status() == 42
    # A process killed by signal N: 128+N, as the shim's status.
    b2 = bundle(tmp_path / "b2", ["sh", "-c", "kill -USR1 $$"])
    c2 = Supervised(runtime, "-b", str(b2), "signalled")
    assert runtime("start", "signalled").returncode == 0
    assert c2.exit_status() == 128 + signal.SIGUSR1


def test_kill_before_start_ends_the_shim_as_a_signal_would(
    runtime: Runtime, tmp_path: Path
) -> None:
    c = Supervised(runtime, "-b", str(bundle(tmp_path / "b", ["true"])), "early")
    assert runtime("kill", "early", "KILL").returncode == 0
    assert c.exit_status() == 128 + signal.SIGKILL
    assert runtime.state("early")["status"] == "stopped"


def test_delete_of_a_created_container(runtime: Runtime, tmp_path: Path) -> None:
    c = Supervised(runtime, "-b", str(bundle(tmp_path / "b", ["true"])), "fresh")
    assert runtime("delete", "fresh").returncode == 0  # runc deletes created without --force
    assert c.exit_status() == 128 + signal.SIGKILL
    assert runtime("list", "-q").stdout == ""


def test_delete_force_of_a_running_container(runtime: Runtime, tmp_path: Path) -> None:
    c = Supervised(runtime, "-b", str(bundle(tmp_path / "b", ["sleep", "30"])), "busy")
    assert runtime("start", "busy").returncode == 0
    assert runtime("delete", "--force", "busy").returncode == 0
    c.exit_status()  # the shim ended with its container
    assert runtime("state", "busy").returncode == 1
    assert runtime("delete", "--force", "busy").returncode == 0  # gone already: fine


def test_exec_foreground_detached_and_from_a_process_file(runtime: Runtime, tmp_path: Path) -> None:
    b = bundle(tmp_path / "b", ["sleep", "30"], env=["PATH=/usr/bin:/bin", "FROM=spec"])
    assert runtime("run", "-d", "-b", str(b), "host").returncode == 0

    result = runtime("exec", "-e", "EXTRA=1", "host", "sh", "-c", "echo $FROM$EXTRA; exit 5")
    assert (result.returncode, result.stdout) == (5, "spec1\n")
    result = runtime("exec", "host", "sh", "-c", "cat; echo done >&2", input=b"piped")
    assert (result.returncode, result.stdout, result.stderr) == (0, "piped", "done\n")

    process = tmp_path / "process.json"
    process.write_text(
        json.dumps(
            {"args": ["sh", "-c", "pwd; exit 9"], "cwd": "/tmp", "env": ["PATH=/usr/bin:/bin"]}
        )
    )
    (b / "rootfs" / "tmp").mkdir()
    result = runtime("exec", "--process", str(process), "host")
    # The emulator runs the process in the rootfs's tmp/ (its host path: no chroot).
    assert (result.returncode, result.stdout) == (9, f"{b / 'rootfs' / 'tmp'}\n")

    pid_file = tmp_path / "exec.pid"
    marker = b / "rootfs" / "marker"
    result = runtime(
        "exec",
        "-d",
        "--pid-file",
        str(pid_file),
        "--cwd",
        "/",
        "host",
        "sh",
        "-c",
        "sleep 0.2; echo ran > marker",
    )
    assert result.returncode == 0, result.stderr
    pid = int(pid_file.read_text())
    deadline = time.monotonic() + BOUND
    while os.path.exists(f"/proc/{pid}") and _state(pid) != "Z" and time.monotonic() < deadline:
        time.sleep(0.02)
    assert marker.read_text() == "ran\n"


def _state(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return "X"


def test_exec_failures_exit_255(runtime: Runtime, tmp_path: Path) -> None:
    assert (
        runtime("run", "-d", "-b", str(bundle(tmp_path / "b", ["sleep", "30"])), "x").returncode
        == 0
    )
    missing = runtime("exec", "x", "no-such-program")
    assert missing.returncode == 255
    assert runtime.error(missing).startswith("exec failed: ")
    relative = runtime("exec", "--cwd", "relative", "x", "true")
    assert (relative.returncode, runtime.error(relative)) == (
        255,
        "exec failed: cwd must be an absolute path",
    )
    nothing = runtime("exec", "nope", "true")
    assert (nothing.returncode, runtime.error(nothing)) == (
        255,
        "exec failed: container does not exist",
    )
    tty = runtime("exec", "-d", "-t", "x", "true")
    assert runtime.error(tty) == (
        "exec failed: cannot allocate tty if runc will detach without setting console socket"
    )


def test_foreground_run_passes_signals_on(runtime: Runtime, tmp_path: Path) -> None:
    b = bundle(tmp_path / "b", ["sh", "-c", "echo up; exec sleep 30"])
    process = subprocess.Popen(
        runtime.argv("run", "-b", str(b), "fg"),
        env=runtime.env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
    )
    assert process.stdout is not None
    assert process.stdout.readline() == b"up\n"
    process.send_signal(signal.SIGTERM)
    assert process.wait(BOUND) == 128 + signal.SIGTERM
    process.stdout.close()
