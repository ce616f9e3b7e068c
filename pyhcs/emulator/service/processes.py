"""Real host processes standing in for container processes.

Each process runs in its own session (process group) so that signals reach its children too;
as root it also runs in its system's cgroup (see `cgroups`), which reaches a child that left
the group. A watcher per process (a worker thread, see workers.py) waits for the exit and
reports it once through ``on_exit``; nothing else ever reaps the child.
"""

from __future__ import annotations

import errno
import fcntl
import functools
import os
import pty
import signal
import socket
import struct
import subprocess
import termios
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pyhcs import hresult as hr
from pyhcs.emulator import oserrors
from pyhcs.emulator.service import cmdline
from pyhcs.emulator.service.isolation import Isolation
from pyhcs.emulator.service.workers import workers

#: Windows console signals as host signals (docs/emulator.md, "Signals").
WINDOWS_SIGNALS = {
    "CtrlC": signal.SIGINT,
    "CtrlBreak": signal.SIGQUIT,
    "CtrlClose": signal.SIGHUP,
    "CtrlLogOff": signal.SIGHUP,
    "CtrlShutdown": signal.SIGTERM,
}


#: Bound on how long Pause/Resume wait for the kernel to stop/continue a process.
FREEZE_TIMEOUT = 5.0


def _proc_state(pid: int) -> str | None:
    """The one-letter state of a process from /proc (None if it is gone)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


class ProcessError(Exception):
    """A process request failed with an HRESULT."""

    def __init__(self, hresult: int, message: str) -> None:
        super().__init__(message)
        self.hresult = hresult


#: How an executable starts: ELF binaries and ``#!`` scripts are all the host can run.
_EXECUTABLE_MAGIC = (b"\x7fELF", b"#!")


def _check_program(program: str, cwd: Path, path: Path | None = None) -> None:
    """Fail the way CreateProcess fails, before anything starts: a missing program, one that
    cannot be run, one with no valid executable format. Checked here rather than left to the
    exec so that every path (including a namespace wrapper that execs later) fails alike.
    ``path`` is the host file when ``program`` is a path inside a container's own root."""
    if path is None:
        path = Path(program) if os.path.isabs(program) else cwd / program
    try:
        if not path.is_file():
            if path.exists():
                raise ProcessError(hr.E_ACCESSDENIED, f"{program} is not a file")
            raise ProcessError(hr.ERROR_FILE_NOT_FOUND, f"{program}: no such program")
        if not os.access(path, os.X_OK):
            raise ProcessError(hr.E_ACCESSDENIED, f"{program} is not executable")
        with open(path, "rb") as f:
            magic = f.read(4)
    except OSError as exc:
        raise ProcessError(oserrors.hresult_for(exc), f"{program}: {exc.strerror}") from exc
    if not magic.startswith(_EXECUTABLE_MAGIC):
        raise ProcessError(hr.ERROR_BAD_EXE_FORMAT, f"{program} is not a valid executable")


class HostProcess:
    """One running (or exited) host process of a compute system."""

    def __init__(
        self,
        params: dict[str, Any],
        root: Path,
        linux: bool,
        on_exit: Callable[[HostProcess], None],
        *,
        isolation: Isolation | None = None,
        cgroup_procs: int | None = None,
    ) -> None:
        argv = cmdline.split(str(params.get("CommandLine", "")))
        if not argv:
            raise ProcessError(hr.E_INVALIDARG, "CommandLine is empty")
        env = {str(k): str(v) for k, v in dict(params.get("Environment", {})).items()}
        rooted = isolation is not None and bool(isolation.root)
        wd = "/"
        if rooted:  # a path inside the root (symbolic links resolved there), not the host's
            env.setdefault("PATH", cmdline.LINUX_PATH)
            wd = cmdline.linux_path(str(params.get("WorkingDirectory") or "/"))
            try:
                cwd = cmdline.in_root(wd, root)
            except OSError as exc:
                raise ProcessError(
                    oserrors.hresult_for(exc, missing=hr.ERROR_PATH_NOT_FOUND),
                    f"working directory {wd}: {exc.strerror}",
                ) from exc
        else:
            env.setdefault("PATH", os.environ.get("PATH", os.defpath))
            cwd = cmdline.to_host(str(params.get("WorkingDirectory", "C:\\")), root)
        try:
            if not cwd.is_dir():
                raise ProcessError(hr.ERROR_PATH_NOT_FOUND, f"working directory {cwd} not found")
        except OSError as exc:
            raise ProcessError(
                oserrors.hresult_for(exc, missing=hr.ERROR_PATH_NOT_FOUND),
                f"working directory {cwd}: {exc.strerror}",
            ) from exc
        if rooted:
            inside = cmdline.resolve_in_root(argv[0], root, env, wd)
            if inside is None:
                raise ProcessError(hr.ERROR_FILE_NOT_FOUND, f"{argv[0]}: no such program")
            try:
                host_program = cmdline.in_root(inside, root)
            except OSError as exc:
                raise ProcessError(oserrors.hresult_for(exc), f"{inside}: {exc.strerror}") from exc
            argv[0] = inside
            _check_program(inside, cwd, host_program)
        else:
            argv[0] = cmdline.resolve_program(argv[0], root, env)
            _check_program(argv[0], cwd)
        self.image = os.path.basename(argv[0])
        if isolation is not None:
            argv = isolation.wrap(argv, wd)
        self.linux = linux
        self.terminated = False
        self.exit_code: int | None = None
        self.exited = threading.Event()
        self.done_reporting = threading.Event()
        #: Set once the CreateProcess reply is out, so the exit event never overtakes it.
        self.announced = threading.Event()
        self.system_id = ""
        self.client_fds: dict[str, int | None] = {"in": None, "out": None, "err": None}
        self._pty_master: int | None = None
        self._streams: dict[str, socket.socket] = {}
        self._streams_lock = threading.Lock()
        child_fds: list[int] = []
        stdio: dict[str, Any] = {}
        try:
            if params.get("EmulateConsole"):
                master, slave = pty.openpty()
                child_fds.append(slave)
                self._pty_master = master
                size = params.get("ConsoleSize")
                if isinstance(size, list) and len(size) == 2:
                    self.resize(int(size[0]), int(size[1]))
                stdio = {"stdin": slave, "stdout": slave, "stderr": slave}
                # One pty: output merged; client gets duplicates of the master per stream.
                if params.get("CreateStdInPipe"):
                    self.client_fds["in"] = os.dup(master)
                if params.get("CreateStdOutPipe"):
                    self.client_fds["out"] = os.dup(master)
            else:
                for key, field, name in (
                    ("in", "CreateStdInPipe", "stdin"),
                    ("out", "CreateStdOutPipe", "stdout"),
                    ("err", "CreateStdErrPipe", "stderr"),
                ):
                    if params.get(field):
                        child, mine = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
                        child_fds.append(child.detach())
                        self.client_fds[key] = mine.fileno()
                        # Kept so HcsModifyProcess CloseHandle can end the stream while the
                        # client still holds its handle: our copy of the child's stdin end,
                        # of the client's stdout/stderr end (see close_stream).
                        keep = child_fds[-1] if key == "in" else mine.fileno()
                        self._streams[key] = socket.socket(fileno=os.dup(keep))
                        mine.detach()
                        stdio[name] = child_fds[-1]
                    else:
                        stdio[name] = subprocess.DEVNULL
            try:
                self.popen = subprocess.Popen(
                    argv,
                    cwd=cwd,
                    env=env,
                    start_new_session=True,
                    close_fds=True,
                    # Into the system's cgroup between fork and exec: only a write, which is
                    # safe in the child of a threaded parent.
                    preexec_fn=None  # noqa: PLW1509
                    if cgroup_procs is None
                    else functools.partial(os.write, cgroup_procs, b"0"),
                    **stdio,
                )
            except OSError as exc:  # E2BIG, ENOEXEC, ...: what CreateProcess would say
                raise ProcessError(
                    oserrors.hresult_for(exc), f"{self.image}: {exc.strerror}"
                ) from exc
            except subprocess.SubprocessError as exc:  # the cgroup refused the process
                raise ProcessError(
                    hr.E_UNEXPECTED, f"{self.image}: could not join the system's cgroup"
                ) from exc
        except BaseException:
            self.close_client_fds()
            self._release_streams()
            if self._pty_master is not None:
                os.close(self._pty_master)
            raise
        finally:
            for fd in child_fds:
                os.close(fd)
        self.pid = self.popen.pid
        self._on_exit = on_exit
        workers.run(f"pyhcs-emu-proc-{self.pid}", self._watch)

    def _watch(self) -> None:
        code = self.popen.wait()
        if code < 0:
            signo = -code
            code = 1 if (self.terminated and not self.linux) else 128 + signo
        self.exit_code = code
        if self._pty_master is not None:
            os.close(self._pty_master)
            self._pty_master = None
        self._release_streams()
        self.exited.set()
        self._on_exit(self)

    def take_client_fds(self) -> dict[str, int | None]:
        """Hand the client ends over (the caller sends then closes them)."""
        fds, self.client_fds = self.client_fds, {"in": None, "out": None, "err": None}
        return fds

    def close_client_fds(self) -> None:
        for key, fd in self.client_fds.items():
            if fd is not None:
                os.close(fd)
                self.client_fds[key] = None

    def signal_group(self, signo: int) -> None:
        """Deliver ``signo`` to the process group; an already-gone group is not an error."""
        try:
            os.killpg(self.pid, signo)
        except ProcessLookupError:
            return

    def wait_frozen(self, frozen: bool, timeout: float = FREEZE_TIMEOUT) -> bool:
        """Wait until the kernel reports the process stopped (or running again).

        A signal is delivered asynchronously, so Pause/Resume complete only once the state in
        /proc shows it took effect. The kernel offers no notification for a non-reaping waiter
        here, so this polls /proc with a bound; an exited process counts as done.
        """
        deadline = time.monotonic() + timeout
        while True:
            state = _proc_state(self.pid)
            if state is None or state in "ZX" or (state in "Tt") == frozen:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.001)

    def terminate(self) -> None:
        self.terminated = True
        self.signal_group(signal.SIGKILL)

    def resize(self, height: int, width: int) -> None:
        if self._pty_master is None:
            raise ProcessError(hr.ERROR_NOT_SUPPORTED, "ConsoleSize needs EmulateConsole")
        fcntl.ioctl(self._pty_master, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))

    def close_stream(self, name: str) -> None:
        """HcsModifyProcess CloseHandle: end one std stream while the client may still hold
        its handle. stdin: the child reads EOF once it has drained what was written; stdout/
        stderr: the client reads EOF and the child's further writes fail (EPIPE). With
        EmulateConsole, closing stdin sends the terminal's EOF character."""
        if self._pty_master is not None:
            if name == "in":
                os.write(self._pty_master, b"\x04")
            return
        with self._streams_lock:
            stream = self._streams.get(name)
            if stream is None:
                return
            try:
                stream.shutdown(socket.SHUT_RD)
            except OSError as exc:
                if exc.errno != errno.ENOTCONN:  # the peer is gone already: nothing to end
                    raise

    def duplicate_stream(self, name: str) -> int | None:
        """A fresh descriptor for the client end of stdout/stderr (HcsGetProcessInfo); None
        for a stream that was not requested, is stdin (the service keeps no copy of the
        client's end, so closing it still means EOF), or has ended."""
        if name == "in":
            return None
        with self._streams_lock:
            stream = self._streams.get(name)
            return None if stream is None else os.dup(stream.fileno())

    def _release_streams(self) -> None:
        with self._streams_lock:
            streams, self._streams = self._streams, {}
        for stream in streams.values():
            stream.close()
