"""The emulator service: a Unix socket in the state directory, one session per client.

The socket is created owner-only and every peer's credentials are checked (same uid or root).
Each session has a reader thread; quick requests are answered inline, so their order is the
order the client sent them, and requests that may block (stop a system, wait for an exit) run
on a thread of their own from the service's worker pool (workers.py). When a session ends, the
handles it held are closed as if by the client.
"""

from __future__ import annotations

import contextlib
import errno
import faulthandler
import fcntl
import json
import logging
import os
import select
import signal
import socket
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from pyhcs import hresult as hr
from pyhcs.emulator import documents, oserrors, protocol, statedir
from pyhcs.emulator.service import cgroups
from pyhcs.emulator.service.computecore import Registry, RequestFailedError
from pyhcs.emulator.service.computenetwork import NetworkRegistry
from pyhcs.emulator.service.host import HostSettings
from pyhcs.emulator.service.keeper import Keeper
from pyhcs.emulator.service.workers import workers
from pyhcs.errors import UnsafeStateDirError

PROTOCOL_VERSION: Final = 1

#: The service's log; `serve` sends it to stderr, which auto-start points at service.log.
log = logging.getLogger("pyhcs.emulator.service")

#: Bound on each wait of the accept loop (it re-checks whether to stop after it).
WAKE_INTERVAL: Final = 1.0

#: Requests that may block, served on their own thread.
_BLOCKING: Final = frozenset({"shutdown", "terminate", "crash", "wait_exit", "wait_process_exit"})


def _describe(exc: OSError) -> str:
    where = f": {exc.filename}" if exc.filename is not None else ""
    return f"{exc.strerror or exc}{where}"


class ServiceError(Exception):
    """The service could not start (state dir, lock, socket)."""


class Session:
    """One connected client process."""

    def __init__(self, service: Service, sock: socket.socket, pid: int, uid: int) -> None:
        self.service = service
        self.sock = sock
        self.pid = pid
        self.uid = uid
        self._send_lock = threading.Lock()
        self.alive = True

    def push(self, message: dict[str, Any], fds: list[int] | None = None) -> None:
        """Send a reply or an event. A reply over the message limit becomes an error reply for
        that request alone."""
        try:
            data = protocol.encode(message)
        except protocol.MessageTooLargeError as exc:
            if "re" not in message:
                log.warning("client %d: dropped an event of %d bytes: %s", self.pid, exc.size, exc)
                return
            failure = documents.result_error(hr.E_OUTOFMEMORY, f"the reply: {exc}")
            data, fds = (
                protocol.encode({"re": message["re"], "hr": hr.E_OUTOFMEMORY, "doc": failure}),
                None,
            )
        with self._send_lock:
            if not self.alive:
                return
            try:
                protocol.send_bytes(self.sock, data, fds)
            except protocol.ConnectionClosedError:
                self.alive = False

    def run(self) -> None:
        try:
            while True:
                try:
                    message, fds = protocol.receive(self.sock)
                except protocol.MalformedMessageError as exc:
                    log.warning("client %d: dropped a malformed message: %s", self.pid, exc)
                    continue
                for fd in fds:
                    os.close(fd)
                if message.get("op") in _BLOCKING:
                    workers.run("pyhcs-emu-req", self._serve, message)
                else:
                    self._serve(message)
        except protocol.ConnectionClosedError:
            pass
        finally:
            log.info("client pid %d uid %d disconnected", self.pid, self.uid)
            with self._send_lock:
                self.alive = False
            self.service.registry.drop_peer(self)
            self.service.network.drop_peer(self)
            self.service.forget(self)
            self.sock.close()

    def _serve(self, message: dict[str, Any]) -> None:
        request_id = message.get("id")
        fds: list[int] = []
        reply: dict[str, Any] = {"re": request_id}
        after: Callable[[], None] | None = None
        try:
            result = self.service.handle(self, message)
            reply["hr"], reply["doc"] = result[0], result[1]
            if len(result) > 2:
                extra: dict[str, Any] = result[2]
                names = [n for n in ("in", "out", "err") if extra.get(n) is not None]
                fds = [int(extra[n]) for n in names]
                reply["fds"] = names
                reply["pid"] = extra.get("pid")
                after = extra.get("after")
        except RequestFailedError as failure:
            reply["hr"], reply["doc"] = failure.hresult, failure.document
        except OSError as exc:
            # The host refused what the request asked (a name too long, no such path...):
            # the HRESULT Windows gives for the same failure, for this call alone.
            code = oserrors.hresult_for(exc)
            reply["hr"], reply["doc"] = code, documents.result_error(code, _describe(exc))
        except (KeyError, TypeError, ValueError, OverflowError, RecursionError) as exc:
            log.warning("client pid %d: malformed %r request: %s", self.pid, message.get("op"), exc)
            text = f"malformed request {message.get('op')!r}: {exc!r}"
            reply["hr"], reply["doc"] = (
                hr.E_INVALIDARG,
                documents.result_error(hr.E_INVALIDARG, text),
            )
        except Exception as exc:  # one failed call must never end the session
            log.exception("client %d: request %r failed unexpectedly", self.pid, message.get("op"))
            text = f"the emulator failed on {message.get('op')!r}: {exc!r}"
            reply["hr"], reply["doc"] = (
                hr.E_UNEXPECTED,
                documents.result_error(hr.E_UNEXPECTED, text),
            )
        try:
            if request_id is not None:
                self.push(reply, fds)
        finally:
            for fd in fds:
                os.close(fd)
            if after is not None:
                after()


class Service:
    """Listening socket + registry + sessions."""

    def __init__(self, state_dir: Path) -> None:
        self.dir = state_dir
        self.registry = Registry(state_dir)
        self.host = HostSettings()
        self.network = NetworkRegistry()
        self.sessions: set[Session] = set()
        self._lock = threading.Lock()
        # Non-blocking: it is also the signal wake-up fd (see ``serve``).
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._stopping = threading.Event()
        self._lock_fd = -1
        self.dir_fd = -1
        self.listener: socket.socket | None = None
        self._handlers: dict[str, Callable[[Session, dict[str, Any]], Any]] = {
            "hello": lambda s, m: (hr.S_OK, None),
            "status": self._status,
            "stop_service": self._stop_request,
            "create": lambda s, m: self.registry.create(
                s, m["h"], m["sid"], m.get("doc"), m.get("ns", "")
            ),
            "open": lambda s, m: self.registry.open(s, m["h"], m["sid"], m.get("ns", "")),
            "close": self._close,
            "start": lambda s, m: self.registry.start(s, m["h"]),
            "shutdown": lambda s, m: self.registry.shutdown(s, m["h"], False),
            "terminate": lambda s, m: self.registry.shutdown(s, m["h"], True),
            "pause": lambda s, m: self.registry.pause(s, m["h"], False),
            "resume": lambda s, m: self.registry.pause(s, m["h"], True),
            "save": lambda s, m: self.registry.save(s, m["h"], m.get("doc")),
            "crash": lambda s, m: self.registry.crash(s, m["h"]),
            "modify": lambda s, m: self.registry.modify(s, m["h"], m.get("doc")),
            "properties": lambda s, m: self.registry.properties(s, m["h"], m.get("doc")),
            "enumerate": lambda s, m: self.registry.enumerate(m.get("doc"), m.get("ns", "")),
            "live_migration": lambda s, m: self.registry.live_migration(s, m["h"], m.get("doc")),
            "wait_exit": lambda s, m: self.registry.wait_exit(s, m["h"], m.get("timeout")),
            "create_process": self._create_process,
            "open_process": lambda s, m: self.registry.open_process(s, m["h"], m["p"], m["pid"]),
            "close_process": self._close_process,
            "terminate_process": lambda s, m: self.registry.terminate_process(s, m["p"]),
            "signal_process": lambda s, m: self.registry.signal_process(s, m["p"], m.get("doc")),
            "process_properties": lambda s, m: self.registry.process_properties(s, m["p"]),
            "modify_process": lambda s, m: self.registry.modify_process(s, m["p"], m.get("doc")),
            "process_info": self._process_info,
            "hcn": self.network.handle,
            "service_properties": lambda s, m: (hr.S_OK, self.host.properties(m.get("doc"))),
            "modify_service": self._modify_service,
            "wait_process_exit": lambda s, m: self.registry.wait_process_exit(
                s, m["p"], m.get("timeout")
            ),
        }

    def handle(self, session: Session, message: dict[str, Any]) -> Any:
        handler = self._handlers.get(str(message.get("op")))
        if handler is None:
            raise RequestFailedError(hr.E_NOTIMPL, f"unknown request {message.get('op')!r}")
        return handler(session, message)

    def _close(self, session: Session, message: dict[str, Any]) -> Any:
        self.registry.close_system_handle(session, message["h"])
        return hr.S_OK, None

    def _close_process(self, session: Session, message: dict[str, Any]) -> Any:
        self.registry.close_process_handle(session, message["p"])
        return hr.S_OK, None

    def _create_process(self, session: Session, message: dict[str, Any]) -> Any:
        (code, doc), process, fds = self.registry.create_process(
            session, message["h"], message["p"], message.get("doc")
        )
        return code, doc, {"pid": process.pid, "after": process.announced.set, **fds}

    def _process_info(self, session: Session, message: dict[str, Any]) -> Any:
        (code, doc), process, fds = self.registry.process_info(session, message["p"])
        return code, doc, {"pid": process.pid, **fds}

    def _modify_service(self, session: Session, message: dict[str, Any]) -> Any:
        self.host.modify(message.get("doc"))
        return hr.S_OK, None

    def _status(self, session: Session, message: dict[str, Any]) -> Any:
        """What the service holds, for ``pyhcs emulator status``: every system and every
        client other than the one asking (a status query holds nothing)."""
        with self._lock:
            sessions = [s for s in self.sessions if s is not session]
        with self.registry.lock:
            systems = [
                {
                    "Id": system.id,
                    "Type": system.kind,
                    "State": system.state,
                    "Owner": system.owner,
                    "Processes": len(system.processes),
                    "Handles": system.handle_count(),
                }
                for system in self.registry.systems.values()
            ]
            clients = [
                {
                    "Pid": peer.pid,
                    "Uid": peer.uid,
                    "SystemHandles": sum(
                        len(system.handles.get(peer, ()))
                        for system in self.registry.systems.values()
                    ),
                    "ProcessHandles": sum(
                        1 for owner, _key in self.registry.process_handles if owner is peer
                    ),
                }
                for peer in sessions
            ]
        return hr.S_OK, json.dumps(
            {
                "Pid": os.getpid(),
                "Directory": str(self.dir),
                "Privileged": self.registry.privileged,
                "Containment": self.registry.containment(),
                "Systems": systems,
                "Clients": clients,
                "ProtocolVersion": PROTOCOL_VERSION,
            }
        )

    def _stop_request(self, session: Session, message: dict[str, Any]) -> Any:
        self.request_stop()
        return hr.S_OK, None

    def request_stop(self) -> None:
        self._stopping.set()
        with contextlib.suppress(BlockingIOError):  # full: a wake-up is pending anyway
            os.write(self._wake_w, b"x")

    @property
    def wake_fd(self) -> int:
        """Writing a byte here wakes the accept loop (signals and stop requests do)."""
        return self._wake_w

    def forget(self, session: Session) -> None:
        with self._lock:
            self.sessions.discard(session)

    # -- lifecycle -------------------------------------------------------------------------

    def bind(self) -> None:
        """Check the state directory, take its lock and listen. Raises ServiceError if another
        service owns it, UnsafeStateDirError if another user could control it."""
        self.dir_fd = statedir.open_dir(self.dir, create=True)
        self._lock_fd = statedir.open_file(
            self.dir_fd, statedir.LOCK_NAME, os.O_RDWR | os.O_CREAT, self.dir
        )
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise ServiceError(f"another emulator service is running in {self.dir}") from exc
            raise
        statedir.check_entry(self.dir_fd, statedir.SOCKET_NAME, self.dir)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(statedir.SOCKET_NAME, dir_fd=self.dir_fd)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        old = os.umask(0o177)  # the socket is created owner-only, nothing to chmod later
        try:
            listener.bind(str(self.dir / statedir.SOCKET_NAME))
        finally:
            os.umask(old)
        listener.listen(128)
        self.listener = listener
        pid_fd = statedir.open_file(
            self.dir_fd, statedir.PID_NAME, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, self.dir
        )
        with os.fdopen(pid_fd, "w") as pid_file:
            pid_file.write(f"{os.getpid()}\n")
        self._reclaim()
        tree = cgroups.Tree.create(self.dir) if self.registry.privileged else None
        try:
            keeper = Keeper(tree)
        except OSError as exc:  # nothing could stop our processes outliving us: do not serve
            if tree is not None:
                tree.remove(tree.root)
            raise ServiceError(f"cannot start the service's keeper process: {exc}") from exc
        self.registry.contain(tree, keeper)

    def _reclaim(self) -> None:
        """Take back what a service that died here left: its processes (should its keeper have
        died too) and the folders of its systems."""
        for tree in cgroups.leftovers(self.dir):
            log.info("killing what an old service left in %s", tree.root)
            try:
                tree.destroy()
            except (cgroups.CgroupError, OSError) as exc:
                log.warning("could not clear %s: %s", tree.root, exc)
        self.registry.clear_folders()

    def serve_forever(self) -> None:
        assert self.listener is not None
        try:
            while not self._stopping.is_set():
                ready, _w, _x = select.select(
                    [self.listener.fileno(), self._wake_r], [], [], WAKE_INTERVAL
                )
                if self._wake_r in ready:
                    with contextlib.suppress(BlockingIOError):
                        os.read(self._wake_r, 512)
                if self.listener.fileno() in ready and not self._stopping.is_set():
                    self._accept()
        finally:
            self.registry.shutdown_all()
            self.registry.clear_folders()
            if self.registry.keeper is not None and self.registry.keeper.close() is None:
                log.warning("the keeper (pid %d) did not finish", self.registry.keeper.pid)
            self.listener.close()
            for name in (statedir.SOCKET_NAME, statedir.PID_NAME):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(name, dir_fd=self.dir_fd)
            with self._lock:
                sessions = list(self.sessions)
            for session in sessions:
                session.sock.shutdown(socket.SHUT_RDWR)
            os.close(self._lock_fd)
            os.close(self.dir_fd)

    def _accept(self) -> None:
        assert self.listener is not None
        sock, _addr = self.listener.accept()
        pid, uid, _gid = protocol.peer_credentials(sock)
        if uid not in (os.getuid(), 0):
            log.warning("refused client pid %d: uid %d is neither ours nor root", pid, uid)
            sock.close()
            return
        log.info("client pid %d uid %d connected", pid, uid)
        session = Session(self, sock, pid, uid)
        with self._lock:
            self.sessions.add(session)
        threading.Thread(target=session.run, name=f"pyhcs-emu-s{pid}", daemon=True).start()


def serve(state_dir: Path, ready_fd: int | None = None) -> int:
    """Run the service until asked to stop (request, SIGTERM, SIGINT). Returns an exit status."""
    _configure_logging()
    service = Service(state_dir)
    try:
        service.bind()
    except (ServiceError, UnsafeStateDirError) as exc:
        print(f"pyhcs emulator: {exc}", file=sys.stderr)
        if ready_fd is not None:
            os.write(ready_fd, b"busy\n")
            os.close(ready_fd)
        return 3
    # Relative paths in documents (a SaveStateFilePath, ...) resolve in the state directory,
    # never in whatever directory the first client happened to start the service from.
    os.fchdir(service.dir_fd)
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # stack dump for hang reports
    for signo in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signo, lambda _n, _f: service.request_stop())
    # A signal the kernel hands to another thread (a worker, a session) only flags it for the
    # main thread; the wake-up fd makes that flag end the main thread's select at once.
    signal.set_wakeup_fd(service.wake_fd)
    # Logged before the ready signal, so whoever started the service finds it in the log.
    log.info(
        "service pid %d started in %s (%s)",
        os.getpid(),
        state_dir,
        "privileged" if service.registry.privileged else "unprivileged",
    )
    if ready_fd is not None:
        os.write(ready_fd, b"ready\n")
        os.close(ready_fd)
    service.serve_forever()
    log.info("service pid %d stopped", os.getpid())
    return 0


def _configure_logging() -> None:
    """Timestamped records on stderr: auto-start points the service's stderr at service.log,
    which is where a user looks when something went wrong."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
