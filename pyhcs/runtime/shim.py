"""The shim: the small process that stands for a container's process (or an exec's).

``create`` starts it (``python -m pyhcs.runtime.shim init DIR FD LOG FORMAT DEBUG``) and exits,
leaving it behind, so a subreaper supervisor (containerd's runc shim) becomes its parent and
reaps it. Its pid is the one in ``--pid-file``; it lives exactly as long as the container's
init process and exits with that process's exit code (HCS's: 128+N for a Linux process killed
by signal N). It holds what must outlive each short command: the compute system and process
handles (the systems are created with ``ShouldTerminateOnLastHandleClosed``: if the shim dies,
HCS cleans up), and the stdio relay between the caller's fds 0/1/2 and the HCS process's pipes.

Lifecycle (runhcs's, adapted to HCS having no suspended process): at ``create`` the shim
creates and starts the systems of the `Plan` (the container exists, runs nothing), writes
``status.json`` ``created``, listens on ``shim.sock`` and tells ``create`` it is ready over the
socket pair it inherited. ``start`` asks it to create the init process; then it waits for that
process to exit, drains its output, terminates the systems, records ``stopped`` and exits with
the code. Killed before ``start``, it exits with 128+N. ``exec`` starts an exec shim per
process (``python -m pyhcs.runtime.shim exec ...``): it opens the container by id, runs one
process, relays its stdio and exits with its code.

The caller's fds are moved off 0/1/2 at once (0/1 become /dev/null, 2 the file
``shim.stderr`` in the state directory), so nothing the shim itself prints can end up in the
container's streams. Signals sent to the shim (TERM, INT, QUIT, HUP, USR1, USR2) are passed on
to its process, as they would reach runc's init process.

Uses pyhcs's public API only (ComputeSystem, Process, errors, schema).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import queue
import select
import signal
import socket
import sys
import termios
import threading
import traceback
import tty
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, NoReturn

from pyhcs.runtime import channel, signals
from pyhcs.runtime.logs import Logger
from pyhcs.runtime.state import SHIM, STATE, STATUS, process_start_time, read_json, write_json

if TYPE_CHECKING:
    from pyhcs import ComputeSystem, Process

#: How long the output of an exited process may keep flowing before the shim exits anyway.
DRAIN_TIMEOUT: Final = 10.0
#: Exit code when HCS could not tell one (-1), and of a process that never started.
UNKNOWN_EXIT: Final = 255
#: Signals a shim passes on to its process.
FORWARDED: Final = (
    signal.SIGTERM,
    signal.SIGINT,
    signal.SIGQUIT,
    signal.SIGHUP,
    signal.SIGUSR1,
    signal.SIGUSR2,
)


def exit_status(code: int) -> int:
    """A process exit code as a Unix exit status (-1, HCS's "unknown", becomes 255)."""
    return UNKNOWN_EXIT if code < 0 else code & 0xFF


# -- stdio -------------------------------------------------------------------------------------


def _wait_fd(fd: int, readable: bool) -> None:
    """Block until a non-blocking fd (the caller's pipes may be) is ready."""
    if readable:
        select.select([fd], [], [])
    else:
        select.select([], [fd], [])


def read_some(fd: int) -> bytes:
    """Up to 64 KiB from ``fd``; b"" at EOF (EIO, a pty whose other side is gone, counts)."""
    while True:
        try:
            return os.read(fd, 1 << 16)
        except BlockingIOError:
            _wait_fd(fd, readable=True)
        except OSError as exc:
            if exc.errno == errno.EIO:
                return b""
            raise


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view) :]
        except BlockingIOError:
            _wait_fd(fd, readable=False)


class Relay:
    """Copy between the caller's fds and the HCS process's std pipes, a thread per stream.

    Output is read to its end even when the caller stopped reading (a broken pipe), so the
    process never blocks on a full pipe."""

    def __init__(self, process: Process, fds: dict[str, int | None], log: Logger) -> None:
        self.process = process
        self.log = log
        self.outputs: list[threading.Thread] = []
        pairs = (("stdout", fds.get("stdout")), ("stderr", fds.get("stderr")))
        for name, fd in pairs:
            stream = getattr(process, name)
            if stream is not None and fd is not None:
                thread = threading.Thread(
                    target=self._copy_out, args=(stream, fd), name=f"relay-{name}", daemon=True
                )
                self.outputs.append(thread)
        source = fds.get("stdin")
        self.input = None
        if process.stdin is not None and source is not None:
            self.input = threading.Thread(
                target=self._copy_in, args=(source,), name="relay-stdin", daemon=True
            )
        for thread in [*self.outputs, *([self.input] if self.input else [])]:
            thread.start()

    def _copy_out(self, stream: Any, fd: int) -> None:
        broken = False
        try:
            while True:
                try:
                    block = stream.read(1 << 16)
                except OSError as exc:
                    if exc.errno != errno.EIO:  # a pty master reads EIO once the slave closed
                        raise
                    block = b""
                if not block:
                    return
                if not broken:
                    try:
                        write_all(fd, block)
                    except OSError as exc:  # the reader went away: keep draining
                        self.log.debug(f"output relay: {exc}")
                        broken = True
        except (OSError, ValueError) as exc:  # the pipe was closed under us at exit
            self.log.debug(f"output relay ended: {exc}")

    def _copy_in(self, fd: int) -> None:
        from pyhcs.errors import HcsError  # noqa: PLC0415

        stream = self.process.stdin
        try:
            while stream is not None:
                block = read_some(fd)
                if not block:
                    break
                view = memoryview(block)
                while view:
                    view = view[stream.write(view) or 0 :]
            self.process.close_stdin()
        except (OSError, ValueError, HcsError) as exc:  # the process is gone
            self.log.debug(f"input relay ended: {exc}")

    def drain(self, timeout: float) -> None:
        """Wait (bounded) until the process's output has all been copied."""
        for thread in self.outputs:
            thread.join(timeout)
            if thread.is_alive():
                self.log.warning(f"{thread.name}: output still flowing after {timeout:g} s")


class Console:
    """A pseudo-terminal of the shim's own, whose master goes to ``--console-socket``: the
    shim copies between its slave (raw: HCS's console does the line discipline) and the
    process's console (EmulateConsole). The slave is the shim's controlling terminal, so a
    resize of the master (containerd's ``ctr`` resizes that way) reaches the shim as SIGWINCH
    and becomes a ResizeConsole of the process."""

    def __init__(self, socket_path: str, size: Any) -> None:
        master, self.slave = os.openpty()
        try:
            name = os.ttyname(self.slave)
            tty.setraw(self.slave)
            if isinstance(size, list) and len(size) == 2:
                self.set_size(int(size[1]), int(size[0]))
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.connect(socket_path)
                socket.send_fds(sock, [name.encode()], [master])
        finally:
            os.close(master)
        with contextlib.suppress(OSError):  # already a session with a terminal: no SIGWINCH
            fcntl.ioctl(self.slave, termios.TIOCSCTTY, 0)

    def set_size(self, width: int, height: int) -> None:
        fcntl.ioctl(self.slave, termios.TIOCSWINSZ, _winsize(height, width))

    def size(self) -> tuple[int, int]:
        """(width, height) of the terminal now."""
        import struct  # noqa: PLC0415

        rows, cols, _x, _y = struct.unpack(
            "HHHH", fcntl.ioctl(self.slave, termios.TIOCGWINSZ, b"\0" * 8)
        )
        return cols, rows


def _winsize(height: int, width: int) -> bytes:
    import struct  # noqa: PLC0415

    return struct.pack("HHHH", height, width, 0, 0)


# -- the shims ---------------------------------------------------------------------------------


class Shim:
    """What the init and exec shims share: the log, the caller's fds, the control socket,
    signal forwarding, and the process and its relay."""

    def __init__(self, directory: str, log: Logger) -> None:
        self.dir = directory
        self.log = log
        self.lock = threading.Lock()
        #: Lifecycle events for the main thread: ("started", None) or ("ended", status).
        self.events: queue.SimpleQueue[tuple[str, int | None]] = queue.SimpleQueue()
        self.signals: queue.SimpleQueue[int] = queue.SimpleQueue()
        self.process: Process | None = None
        self.relay: Relay | None = None
        self.console: Console | None = None
        self.linux = False
        self.stdio: dict[str, int | None] = {}
        self.socket_name = ""
        self.listener: socket.socket | None = None

    # -- set-up ----------------------------------------------------------------------------

    def take_stdio(self) -> None:
        """Keep the caller's fds 0/1/2 for the process, off the shim's own 0/1/2."""
        for fd, name in ((0, "stdin"), (1, "stdout"), (2, "stderr")):
            try:
                self.stdio[name] = os.dup(fd)  # non-inheritable
            except OSError:  # the caller gave no such fd
                self.stdio[name] = None
        null = os.open(os.devnull, os.O_RDWR)
        errors = os.open(
            os.path.join(self.dir, "shim.stderr"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600
        )
        for fd, target in ((0, null), (1, null), (2, errors)):
            os.dup2(target, fd)
        os.close(null)
        os.close(errors)

    def release_stdio(self) -> None:
        """Drop the caller's fds (the process uses a console instead)."""
        for name, fd in self.stdio.items():
            if fd is not None:
                os.close(fd)
            self.stdio[name] = None

    def forward_signals(self) -> None:
        for signo in FORWARDED:
            signal.signal(signo, lambda n, _f: self.signals.put(n))
        signal.signal(signal.SIGWINCH, lambda n, _f: self.signals.put(n))
        threading.Thread(target=self._signal_loop, name="signals", daemon=True).start()

    def _signal_loop(self) -> None:
        from pyhcs.errors import HcsError  # noqa: PLC0415

        while True:
            signo = self.signals.get()
            try:
                if signo == signal.SIGWINCH:
                    self._resize_from_console()
                    continue
                name = signal.Signals(signo).name
                try:
                    delivery = signals.parse(name, linux=self.linux)
                except signals.SignalError:
                    self.log.warning(f"{name} has no equivalent in a Windows container")
                    continue
                self.deliver(delivery, everyone=False)
            except (HcsError, channel.ShimError, OSError) as exc:
                self.log.warning(f"forwarding signal {signo}: {exc}")

    def _resize_from_console(self) -> None:
        with self.lock:
            if self.console is not None and self.process is not None:
                self.process.resize_console(*self.console.size())

    def listen(self, name: str) -> None:
        """Serve the control socket (bound relative to the state directory: see `channel`)."""
        self.socket_name = name
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        listener.bind(name)
        listener.listen(16)
        self.listener = listener
        threading.Thread(target=self._accept, name="control", daemon=True).start()

    def _accept(self) -> None:
        assert self.listener is not None
        while True:
            try:
                conn, _addr = self.listener.accept()
            except OSError:  # closed at exit
                return
            threading.Thread(target=self._serve, args=(conn,), name="request", daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        from pyhcs.errors import HcsError  # noqa: PLC0415

        with conn:
            conn.settimeout(30.0)
            try:
                if channel.peer_uid(conn) not in (os.geteuid(), 0):
                    channel.send_message(conn, {"error": "permission denied"})
                    return
                request = channel.read_message(conn)
                if not isinstance(request, dict):
                    return
                op = str(request.get("op", ""))
                handler: Callable[[dict[str, Any]], dict[str, Any]] | None = getattr(
                    self, f"op_{op.replace('-', '_')}", None
                )
                if handler is None:
                    reply: dict[str, Any] = {"error": f"unknown request {op!r}"}
                else:
                    try:
                        reply = {"ok": True, **handler(request)}
                    except (HcsError, RequestError) as exc:
                        reply = {"error": str(exc)}
                channel.send_message(conn, reply)
            except (OSError, ValueError) as exc:
                self.log.warning(f"control request: {exc}")

    # -- the process -----------------------------------------------------------------------

    def start_process(self, system: ComputeSystem, params: dict[str, Any]) -> Process:
        """Create the process with the pipes its stdio needs and start relaying."""
        params = dict(params)
        if self.console is not None:
            fds: dict[str, int | None] = {"stdin": self.console.slave, "stdout": self.console.slave}
        else:
            fds = dict(self.stdio)
        if params.get("EmulateConsole"):
            fds["stderr"] = None  # a console has one output: stdout and stderr merged
        params["CreateStdInPipe"] = fds.get("stdin") is not None
        params["CreateStdOutPipe"] = fds.get("stdout") is not None
        params["CreateStdErrPipe"] = fds.get("stderr") is not None
        process = system.create_process(params)
        self.process = process
        self.relay = Relay(process, fds, self.log)
        return process

    def deliver(self, delivery: signals.Delivery, *, everyone: bool) -> None:
        """Signal (or terminate) the process; with ``everyone``, every process of the
        container. Overridden by the init shim, which may have no process yet."""
        from pyhcs.errors import AlreadyStoppedError  # noqa: PLC0415

        with self.lock:
            process = self.process
            if process is None or process.exit_code is not None:
                raise RequestError("container not running")
            try:
                _deliver(process, delivery)
            except AlreadyStoppedError:
                raise RequestError("no such process") from None

    def op_kill(self, request: dict[str, Any]) -> dict[str, Any]:
        delivery = signals.Delivery(
            terminate=bool(request.get("terminate")),
            signal=request.get("signal"),
            number=int(request.get("number", 15)),
        )
        self.deliver(delivery, everyone=bool(request.get("all")))
        return {}

    def op_resize(self, request: dict[str, Any]) -> dict[str, Any]:
        width, height = int(request["width"]), int(request["height"])
        with self.lock:
            if self.process is None:
                raise RequestError("container not running")
            if self.console is not None:
                self.console.set_size(width, height)
            self.process.resize_console(width, height)
        return {}

    def exit(self, status: int) -> NoReturn:
        """Leave now, with ``status`` (after the caller released everything)."""
        if self.listener is not None:
            self.listener.close()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.socket_name)
        self.log.debug(f"shim {os.getpid()} exits with {status}")
        os._exit(status)


class RequestError(Exception):
    """A request the shim refuses; the message is what the command reports (runc's words)."""


def _deliver(process: Process, delivery: signals.Delivery) -> None:
    if delivery.terminate:
        process.terminate()
    else:
        assert delivery.signal is not None
        process.signal(delivery.signal)


class InitShim(Shim):
    """The shim of a container's init process."""

    def __init__(self, directory: str, log: Logger) -> None:
        super().__init__(directory, log)
        self.state: dict[str, Any] = read_json(os.path.join(directory, STATE))
        self.systems: list[ComputeSystem] = []
        self.container: ComputeSystem | None = None
        #: What pause/resume act on: the container, or the utility VM of its own plan that
        #: hosts it (HCS pauses virtual machines; the VM freezes what it hosts).
        self.pausable: ComputeSystem | None = None
        self.status = "creating"
        self.started = False
        self.finishing = False

    def record(self, status: str, **extra: Any) -> None:
        self.status = status
        pid = self.process.pid if self.process is not None else 0
        write_json(
            os.path.join(self.dir, STATUS),
            {"status": status, "os": "linux" if self.linux else "windows", "pid": pid, **extra},
        )

    def setup(self, request: dict[str, Any]) -> None:
        """Create and start the systems, set up the console, listen: the container is
        ``created``. Whatever was created is terminated again if a step fails."""
        from pyhcs import ComputeSystem  # noqa: PLC0415

        plan = self.state["plan"]
        try:
            for entry in plan["systems"]:
                system = ComputeSystem.create(entry["system_id"], entry["document"])
                self.systems.append(system)
                system.start()
                if entry["system_id"] == plan["container"]:
                    self.container = system
            if self.container is None:
                raise RequestError(f"the plan has no system {plan['container']!r}")  # noqa: TRY301
            self.pausable = self._pause_target(plan)
            self.container.on_event(self._system_event)
            self.linux = str(self.container.properties().runtime_os_type or "").lower() == "linux"
            if request.get("console_socket"):
                self.console = Console(
                    str(request["console_socket"]), plan["init"].get("ConsoleSize")
                )
                self.release_stdio()
            self.listen(channel.INIT_SOCKET)
        except BaseException:
            self.release_systems()
            raise
        self.record("created")

    def _pause_target(self, plan: dict[str, Any]) -> ComputeSystem:
        documents = {e["system_id"]: e["document"] for e in plan["systems"]}
        hosting = documents.get(plan["container"], {}).get("HostingSystemId")
        owned = [s for s in self.systems if s.id == hosting]
        assert self.container is not None
        return owned[0] if owned else self.container

    def _system_event(self, event: Any) -> None:
        from pyhcs import EventType  # noqa: PLC0415

        if event.type == EventType.SYSTEM_EXITED and not self.started and not self.finishing:
            self.events.put(("ended", 1))  # runhcs: the container ended before start

    def release_systems(self) -> bool:
        """Terminate and close every system, container first; whether all went."""
        from pyhcs.errors import HcsError  # noqa: PLC0415

        released = True
        for system in reversed(self.systems):
            try:
                system.terminate()
            except HcsError as exc:
                self.log.warning(f"terminating {system.id}: {exc}")
                released = False
            system.close()
        self.systems.clear()
        return released

    def op_start(self, _request: dict[str, Any]) -> dict[str, Any]:
        from pyhcs.errors import HcsError  # noqa: PLC0415

        with self.lock:
            if self.finishing or self.status == "stopped":
                raise RequestError("cannot start a container that has stopped")
            if self.status == "running":
                raise RequestError("cannot start an already running container")
            if self.status != "created":
                raise RequestError(f"cannot start a container in the {self.status} state")
            init = self.state["plan"].get("init")
            if not init:
                raise RequestError("process not set: the spec has no process to start")
            assert self.container is not None
            try:
                self.start_process(self.container, init)
            except HcsError as exc:
                self.events.put(("ended", UNKNOWN_EXIT))
                raise RequestError(f"unable to start container process: {exc}") from None
            self.started = True
            self.record("running")
            self.events.put(("started", None))
        return {"pid": self.process.pid if self.process else 0}

    def deliver(self, delivery: signals.Delivery, *, everyone: bool) -> None:
        from pyhcs.errors import AlreadyStoppedError, HcsError  # noqa: PLC0415

        with self.lock:
            if self.finishing or self.status == "stopped":
                raise RequestError("container not running")
            if not self.started:
                # No process yet: the container dies as an init killed before its exec would.
                self.finishing = True
                self.events.put(("ended", 128 + delivery.number))
                self.release_systems_keep_going()
                return
            assert self.container is not None
            assert self.process is not None
            if not everyone:
                try:
                    _deliver(self.process, delivery)
                except AlreadyStoppedError:
                    raise RequestError("no such process") from None
                return
            listed = self.container.properties({"PropertyTypes": ["ProcessList"]}).process_list
            for entry in listed or []:
                pid = int(entry.process_id or 0)
                try:
                    if pid == self.process.pid:
                        _deliver(self.process, delivery)
                        continue
                    with self.container.open_process(pid) as other:
                        _deliver(other, delivery)
                except HcsError as exc:  # it exited meanwhile
                    self.log.debug(f"kill --all: process {pid}: {exc}")

    def release_systems_keep_going(self) -> None:
        """Terminate the systems now (the handles stay open until the shim finishes)."""
        from pyhcs.errors import HcsError  # noqa: PLC0415

        for system in reversed(self.systems):
            try:
                system.terminate()
            except HcsError as exc:
                self.log.warning(f"terminating {system.id}: {exc}")

    def op_pause(self, _request: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            if self.finishing or self.status not in ("running", "created"):
                raise RequestError("container not running")
            assert self.pausable is not None
            self.pausable.pause()
            self.record("paused")
        return {}

    def op_resume(self, _request: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            if self.finishing or self.status != "paused":
                raise RequestError("container not paused")
            assert self.pausable is not None
            self.pausable.resume()
            self.record("running" if self.started else "created")
        return {}

    def op_pids(self, _request: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            if self.finishing or self.container is None:
                return {"pids": []}
            listed = self.container.properties({"PropertyTypes": ["ProcessList"]}).process_list
            init = self.process.pid if self.process is not None else None
        # The init process is known to the caller (containerd) by the pid in the pid file, which
        # is this shim's: report it as that, as runc reports the pid it wrote.
        # ``processes`` are the HCS processes themselves (what ``ps`` in table form shows).
        pids = [int(p.process_id or 0) for p in listed or []]
        return {"pids": [os.getpid() if pid == init else pid for pid in pids], "processes": pids}

    def op_stats(self, _request: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            if self.finishing or self.container is None:
                raise RequestError("container not running")
            props = self.container.properties({"PropertyTypes": ["Statistics", "ProcessList"]})
        stats = props.statistics
        processor = stats.processor if stats is not None else None
        memory = stats.memory if stats is not None else None
        hundred_ns = 100

        def ns(value: int | None) -> int:
            return int(value or 0) * hundred_ns

        return {
            "stats": {
                "cpu": {
                    "usage": {
                        "total": ns(processor.total_runtime100ns if processor else 0),
                        "user": ns(processor.runtime_user100ns if processor else 0),
                        "kernel": ns(processor.runtime_kernel100ns if processor else 0),
                    }
                },
                "memory": {
                    "usage": {
                        "usage": int(memory.memory_usage_commit_bytes or 0) if memory else 0,
                        "max": int(memory.memory_usage_commit_peak_bytes or 0) if memory else 0,
                    }
                },
                "pids": {"current": len(props.process_list or [])},
            }
        }

    def op_destroy(self, _request: dict[str, Any]) -> dict[str, Any]:
        """``delete`` of a created container, ``delete --force`` of any: terminate now."""
        with self.lock:
            if self.finishing:
                return {}
            self.finishing = True
            if not self.started:
                self.events.put(("ended", 128 + signal.SIGKILL))
            self.release_systems_keep_going()
        return {}

    def run(self) -> NoReturn:
        """Wait for the container's end, then finish with its exit status."""
        kind, status = self.events.get()  # the shim lives as long as the container
        if kind == "started":
            assert self.process is not None
            assert self.relay is not None
            code = self.process.wait()  # the init process's whole life
            self.relay.drain(DRAIN_TIMEOUT)
            status = exit_status(code)
        self.finish(UNKNOWN_EXIT if status is None else status)

    def finish(self, status: int) -> NoReturn:
        with self.lock:
            self.finishing = True
            if self.process is not None:
                self.process.close()
            released = self.release_systems()
            self.record("stopped", exit_code=status, released=released)
        self.exit(status)


class ExecShim(Shim):
    """The shim of one ``exec`` process."""

    def run_exec(self, request: dict[str, Any]) -> tuple[ComputeSystem, Process]:
        from pyhcs import ComputeSystem  # noqa: PLC0415

        state = read_json(os.path.join(self.dir, STATE))
        system = ComputeSystem.open(state["plan"]["container"])
        try:
            self.linux = str(system.properties().runtime_os_type or "").lower() == "linux"
            params = request["process"]
            if request.get("console_socket"):
                self.console = Console(str(request["console_socket"]), params.get("ConsoleSize"))
                self.release_stdio()
            process = self.start_process(system, params)
            self.listen(channel.exec_socket(os.getpid()))
        except BaseException:
            system.close()
            raise
        return system, process


# -- entry point -------------------------------------------------------------------------------


def _record_self(directory: str) -> None:
    """shim.json: who the shim is (pid + start time), before anything else."""
    write_json(
        os.path.join(directory, SHIM),
        {"pid": os.getpid(), "start": process_start_time(os.getpid())},
    )


def _report(sock: socket.socket, reply: dict[str, Any]) -> None:
    with contextlib.suppress(OSError):  # the command gave up on us: it reports that itself
        channel.send_message(sock, reply)
    sock.close()


def main(argv: list[str] | None = None) -> NoReturn:
    args = sys.argv[1:] if argv is None else argv
    mode, directory, fd_text, log_path, log_format, debug = args[:6]
    log = Logger(log_path, log_format, debug=debug == "1")
    control = socket.socket(fileno=int(fd_text))
    os.chdir(directory)
    warnings.showwarning = lambda message, category, *_a, **_k: log.warning(
        f"{category.__name__}: {message}"
    )
    threading.excepthook = lambda hook: log.warning(
        "".join(traceback.format_exception(hook.exc_type, hook.exc_value, hook.exc_traceback))
    )
    try:
        request = channel.read_message(control) or {}
    except (OSError, ValueError) as exc:
        log.warning(f"shim: no request from the command: {exc}")
        os._exit(UNKNOWN_EXIT)
    shim: Shim
    if mode == "init":
        _record_self(directory)
        shim = InitShim(directory, log)
    else:
        shim = ExecShim(directory, log)
    shim.take_stdio()
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    try:
        shim.forward_signals()
        if isinstance(shim, InitShim):
            shim.setup(request)
            _report(control, {"ok": True, "pid": os.getpid()})
            shim.run()
        assert isinstance(shim, ExecShim)
        _system, process = shim.run_exec(request)
        _report(control, {"ok": True, "pid": os.getpid(), "hcs_pid": process.pid})
        code = process.wait()  # the exec process's whole life
        assert shim.relay is not None
        shim.relay.drain(DRAIN_TIMEOUT)
        process.close()
        _system.close()
        shim.exit(exit_status(code))
    except BaseException as exc:  # noqa: BLE001 - reported to the command, then the shim ends
        message = str(exc) if str(exc) else type(exc).__name__
        log.debug("".join(traceback.format_exception(exc)))
        _report(control, {"error": message})
        if isinstance(shim, InitShim):
            shim.record("stopped", exit_code=UNKNOWN_EXIT, released=False)
        os._exit(UNKNOWN_EXIT)


if __name__ == "__main__":
    main()
