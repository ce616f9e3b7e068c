"""The state directory and the socket, attacked by another local user.

Each attack is made by a real process running under another uid (the tests run as root and
drop to a throwaway uid no account uses), in a sticky world-writable directory as ``/tmp`` is.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pyhcs import hresult as hr
from pyhcs.emulator import statedir
from pyhcs.emulator.client import autostart
from pyhcs.emulator.client.backend import open_table
from pyhcs.errors import UnsafeStateDirError
from tests.emulator.conftest import REPO, stop_service

ATTACKER = 54321  # a uid with no account: a throwaway "other user"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another uid")


def as_attacker(action: Callable[[], object]) -> None:
    """Run ``action`` in a forked child that has become the attacker (uid and gid ATTACKER, no
    supplementary groups); fails the test if the action raised."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        status = 1
        try:
            os.setgroups([])
            os.setgid(ATTACKER)
            os.setuid(ATTACKER)
            action()
            status = 0
        finally:
            os._exit(status)
    _pid, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "the attacker's action failed"


@pytest.fixture
def tmp() -> Iterator[Path]:
    """A fresh directory like /tmp: root's, mode 1777, reachable by every user."""
    base = Path(tempfile.mkdtemp(prefix="pyhcs-sec-", dir="/tmp"))
    os.chmod(base, 0o1777)
    yield base
    shutil.rmtree(base)


def _serve(directory: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pyhcs.emulator", "serve", "--dir", str(directory)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_a_planted_pid_symlink_never_overwrites_roots_file(tmp: Path) -> None:
    victim = tmp / "precious"
    victim.write_text("root's data\n")
    os.chmod(victim, 0o644)
    emu = tmp / "pyhcs-emulator-0"

    def plant() -> None:
        os.mkdir(emu, 0o777)
        os.chmod(emu, 0o777)
        os.symlink(victim, emu / statedir.PID_NAME)

    as_attacker(plant)
    result = _serve(emu)
    assert result.returncode != 0
    assert str(emu) in result.stderr
    assert f"owned by uid {ATTACKER}" in result.stderr
    with pytest.raises(UnsafeStateDirError) as caught:
        autostart.start(emu)
    assert caught.value.path == str(emu)
    assert caught.value.hresult == hr.E_ACCESSDENIED
    assert victim.read_text() == "root's data\n"
    assert not (emu / statedir.LOG_NAME).exists()


def test_a_symlinked_state_dir_is_refused_and_its_target_untouched(tmp: Path) -> None:
    target = tmp / "roots-dir"
    target.mkdir(mode=0o755)
    os.chmod(target, 0o755)
    emu = tmp / "pyhcs-emulator-0"
    as_attacker(lambda: os.symlink(target, emu))
    result = _serve(emu)
    assert result.returncode != 0
    assert f"{emu} is a symbolic link" in result.stderr
    with pytest.raises(UnsafeStateDirError, match="symbolic link"):
        open_table(emu)
    assert stat.S_IMODE(target.stat().st_mode) == 0o755
    assert list(target.iterdir()) == []


def test_a_directory_writable_by_others_is_refused(tmp: Path) -> None:
    emu = tmp / "mine"
    emu.mkdir()
    os.chmod(emu, 0o777)  # ours, but anyone could swap what is in it
    with pytest.raises(UnsafeStateDirError, match="writable by group or others"):
        autostart.start(emu)
    os.chmod(emu, 0o700)
    lock = emu / statedir.LOCK_NAME
    lock.write_text("")
    os.chmod(lock, 0o666)
    result = _serve(emu)
    assert result.returncode != 0
    assert f"{lock} is a file writable by group or others" in result.stderr


def test_an_ancestor_owned_by_another_user_is_refused(tmp: Path) -> None:
    theirs = tmp / "theirs"
    as_attacker(lambda: os.mkdir(theirs, 0o755))
    with pytest.raises(UnsafeStateDirError, match=f"owned by uid {ATTACKER}"):
        autostart.start(theirs / "emu")
    assert not (theirs / "emu").exists()


def _forge(path: Path, ready: int) -> None:
    """The attacker's service: bound by a root process that then drops to the attacker before
    listen() (which records the credentials a client sees); answers one request with a
    forged reply."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    listener.bind(str(path))
    os.setgroups([])
    os.setgid(ATTACKER)
    os.setuid(ATTACKER)
    listener.listen(8)
    os.write(ready, b"r")
    listener.settimeout(15)
    # Serve every client until the test kills us: if this service went away after the first
    # (refused) client, the next connect would fail and autostart would start a real service
    # in the attacker's directory (seen as a flake that leaked that service).
    while True:
        sock, _addr = listener.accept()
        sock.settimeout(5)
        try:
            message = json.loads(sock.recv(65536) or b"{}")
            sock.send(json.dumps({"re": message.get("id"), "hr": 0, "doc": "[]"}).encode())
        except (OSError, ValueError):
            pass  # the client hung up at once, as it should
        finally:
            sock.close()


def test_the_client_refuses_a_service_run_by_another_user(tmp: Path) -> None:
    """A socket in a directory that passes every check but is served by someone else: the
    client sends nothing and trusts nothing."""
    emu = tmp / "emu"
    emu.mkdir(mode=0o700)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        status = 1
        try:
            _forge(emu / statedir.SOCKET_NAME, write_end)
            status = 0
        finally:
            os._exit(status)
    os.close(write_end)
    try:
        ready, _w, _x = select.select([read_end], [], [], 10)
        assert ready
        assert os.read(read_end, 1) == b"r"
        with pytest.raises(UnsafeStateDirError) as caught:
            open_table(emu)
        assert f"runs as uid {ATTACKER}" in caught.value.message
        assert caught.value.path == str(emu / statedir.SOCKET_NAME)
        with pytest.raises(UnsafeStateDirError):
            autostart.ensure(emu)
        assert sorted(p.name for p in emu.iterdir()) == [statedir.SOCKET_NAME]
    finally:
        os.close(read_end)
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


def test_a_service_of_ours_in_a_checked_directory_works(tmp: Path) -> None:
    emu = tmp / "ok"
    pid = autostart.start(emu)
    try:
        assert stat.S_IMODE(emu.stat().st_mode) == 0o700
        for name in (statedir.PID_NAME, statedir.LOCK_NAME, statedir.LOG_NAME):
            assert stat.S_IMODE((emu / name).stat().st_mode) == 0o600, name
        assert stat.S_IMODE((emu / statedir.SOCKET_NAME).stat().st_mode) == 0o600
        table = open_table(emu)
        table.close()
    finally:
        stop_service(pid)
