"""A terminal container: the pty master arrives over ``--console-socket`` (SCM_RIGHTS) as
containerd's shim receives it; keys typed into it reach the process, its output comes back,
and a resize of the master (or ``resize-tty``) reaches the process's console."""

from __future__ import annotations

import fcntl
import json
import os
import select
import socket
import struct
import termios
import time
from pathlib import Path

from tests.runtime.support import BOUND, Runtime, Supervised, bundle


def _read_until(fd: int, needle: bytes) -> bytes:
    seen = b""
    deadline = time.monotonic() + BOUND
    while needle not in seen:
        left = deadline - time.monotonic()
        assert left > 0, seen
        ready, _w, _x = select.select([fd], [], [], left)
        if ready:
            try:
                block = os.read(fd, 4096)
            except OSError:  # EIO: the other side closed
                break
            if not block:
                break
            seen += block
    return seen


def _eventually(master: int, size: bytes) -> None:
    """Ask ``stty size`` until the console shows ``size`` (bounded)."""
    deadline = time.monotonic() + BOUND
    while time.monotonic() < deadline:
        os.write(master, b"stty size; echo end\n")
        if size in _read_until(master, b"\r\nend\r\n"):
            return
    raise AssertionError(f"the console never became {size!r}")


def test_console_socket(runtime: Runtime, tmp_path: Path) -> None:
    b = bundle(tmp_path / "b", ["sh"], terminal=True, env=["PATH=/usr/bin:/bin", "PS1=$ "])
    path = str(tmp_path / "console.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(path)
        server.listen(1)
        server.settimeout(BOUND)
        c = Supervised(runtime, "-b", str(b), "--console-socket", path, "tty")
        conn, _addr = server.accept()
        with conn:
            name, fds, _flags, _addr = socket.recv_fds(conn, 1024, 1)
    (master,) = fds
    assert name.startswith(b"/dev/pts/")
    try:
        assert runtime("start", "tty").returncode == 0
        os.write(master, b"echo hi $((6 * 7))\n")
        assert b"hi 42" in _read_until(master, b"hi 42")
        # containerd resizes the master; the process's console follows.
        fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 101, 0, 0))
        _eventually(master, b"33 101")  # the SIGWINCH reaches the shim asynchronously
        assert runtime("resize-tty", "tty", "120", "40").returncode == 0
        os.write(master, b"stty size\n")
        assert b"40 120" in _read_until(master, b"40 120")
        stats = runtime("events", "--stats", "tty")
        event = json.loads(stats.stdout)
        assert (event["type"], event["id"]) == ("stats", "tty")
        assert event["data"]["pids"]["current"] >= 1
        os.write(master, b"exit 6\n")
        assert c.exit_status() == 6
    finally:
        os.close(master)


def test_exec_with_a_console_socket(runtime: Runtime, tmp_path: Path) -> None:
    assert (
        runtime("run", "-d", "-b", str(bundle(tmp_path / "b", ["sleep", "30"])), "h").returncode
        == 0
    )
    path = str(tmp_path / "exec.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(path)
        server.listen(1)
        server.settimeout(BOUND)
        pid_file = tmp_path / "exec.pid"
        result = runtime(
            "exec",
            "-t",
            "-d",
            "--console-socket",
            path,
            "--pid-file",
            str(pid_file),
            "h",
            "sh",
            "-c",
            "tty; read x; echo got:$x",
        )
        assert result.returncode == 0, result.stderr
        conn, _addr = server.accept()
        with conn:
            _name, fds, _flags, _addr = socket.recv_fds(conn, 1024, 1)
    (master,) = fds
    try:
        assert b"/dev/pts/" in _read_until(master, b"/dev/pts/")
        os.write(master, b"typed\n")
        assert b"got:typed" in _read_until(master, b"got:typed")
        assert pid_file.read_text().isdigit()
    finally:
        os.close(master)
