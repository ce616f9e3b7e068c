"""Compute systems inside the service: the state machine, handles, processes and exit events.

All state is guarded by one service lock that is never held across a wait: transitions are
decided under the lock, slow work (killing and reaping processes) happens outside it, and the
result is committed under it again. Events are pushed to every session that holds a handle.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import signal
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from pyhcs import hresult as hr
from pyhcs.emulator import documents, oserrors, statedir
from pyhcs.emulator.service import cgroups, cpus, isolation, mounts, properties
from pyhcs.emulator.service.isolation import Isolation
from pyhcs.emulator.service.keeper import Keeper
from pyhcs.emulator.service.processes import WINDOWS_SIGNALS, HostProcess, ProcessError
from pyhcs.emulator.service.workers import workers
from pyhcs.errors import InvalidJsonError

#: The signal numbers a Linux guest knows (1..SIGRTMAX).
_LINUX_SIGNALS = frozenset(int(s) for s in signal.valid_signals() if int(s) > 0)

#: Bound on how long stopping a system waits for its processes to be reaped.
REAP_TIMEOUT = 10.0

log = logging.getLogger("pyhcs.emulator.service")


class Peer(Protocol):
    """What the registry needs of a client session: a way to push a record."""

    def push(self, message: dict[str, Any], fds: list[int] | None = None) -> None: ...


class RequestFailedError(Exception):
    """A request failed: HRESULT plus an optional ResultError document."""

    def __init__(self, hresult: int, message: str | None = None, detail: str | None = None):
        super().__init__(message or hr.message(hresult))
        self.hresult = hresult
        self.document = documents.result_error(hresult, message, detail)


Result = tuple[int, str | None]


def request_document(
    text: str | None, detail: str, *, kind: str | None = None, allow_empty: bool = True
) -> dict[str, Any]:
    """Parse (and with ``kind``, strictly validate) a request's JSON document; a bad one fails
    the request with HCS_E_INVALID_JSON naming the JSON path, before anything changes."""
    try:
        doc = documents.parse_object(text, allow_empty=allow_empty)
        if kind is not None:
            documents.validate(kind, doc)
    except InvalidJsonError as exc:
        raise RequestFailedError(hr.HCS_E_INVALID_JSON, documents.describe(exc), detail) from exc
    return doc


class System:
    """One compute system and everything the service knows about it."""

    def __init__(self, system_id: str, doc: dict[str, Any], root: Path) -> None:
        self.id = system_id
        self.doc = doc
        self.kind = "VirtualMachine" if "VirtualMachine" in doc else "Container"
        self.owner = str(doc.get("Owner", ""))
        self.terminate_on_close = bool(doc.get("ShouldTerminateOnLastHandleClosed", False))
        self.hosting_id: str | None = doc.get("HostingSystemId")
        self.linux = _boots_linux(doc)
        self.state = "Created"
        self.root = root
        self.processes: dict[int, HostProcess] = {}
        self.handles: dict[Peer, set[int]] = {}
        self.exit_status: str | None = None
        self.exit_type: str | None = None
        self.stopping = False
        self.exited = threading.Event()
        self.start_time = 0.0
        self.runtime_id = str(uuid.uuid4())
        self.namespace = ""
        self.private_root = True
        #: Mapped directories applied in the root: ContainerPath (lower case) -> link.
        self.links: dict[str, Path] = {}
        #: Unprivileged only: process groups whose leader exited while other members lived
        #: on (terminate still kills them).
        self.lingering: set[int] = set()
        #: As root, a Linux container with a root filesystem of its own (see `_rooted`): its
        #: first process, pid 1 of the PID namespace every later process joins, and the host
        #: pid of that program (a child of the reported wrapper), found by the first join.
        self.rooted = False
        self.init: HostProcess | None = None
        self.init_pid: int | None = None

    def basic(self) -> dict[str, Any]:
        props: dict[str, Any] = {
            "Id": self.id,
            "SystemType": self.kind,
            "Name": self.id,
            "Owner": self.owner,
            "RuntimeId": self.runtime_id,
            "RuntimeOsType": "Linux" if self.linux else "Windows",
            "State": self.state,
        }
        if self.hosting_id:
            props["HostingSystemId"] = self.hosting_id
        if self.state == "Stopped":
            props["Stopped"] = True
            props["ExitType"] = self.exit_type
        return props

    def handle_count(self) -> int:
        return sum(len(keys) for keys in self.handles.values())


class Registry:
    """Every compute system of the service, keyed by id."""

    def __init__(self, state_dir: Path) -> None:
        self.lock = threading.RLock()
        self.systems: dict[str, System] = {}
        self.state_dir = state_dir
        self.privileged = isolation.privileged()
        # (peer, process handle key) -> (system id, pid)
        self.process_handles: dict[tuple[Peer, int], tuple[str, int]] = {}
        # (peer, system handle key) -> its system: the index of every System.handles entry
        self._handle_index: dict[tuple[Peer, int], System] = {}
        #: The service's cgroup tree (as root, where the kernel lets us) and its keeper; set
        #: by `contain` once the service owns its state directory.
        self.tree: cgroups.Tree | None = None
        self.keeper: Keeper | None = None

    def contain(self, tree: cgroups.Tree | None, keeper: Keeper | None) -> None:
        """From now on every process runs in its system's group of ``tree`` (None: in its own
        process group only) and ``keeper`` kills them if the service dies."""
        self.tree, self.keeper = tree, keeper

    def containment(self) -> dict[str, Any]:
        """How the service holds its processes, for ``pyhcs emulator status``."""
        kinds = {None: "process groups", 2: "cgroup v2", 1: "cgroup v1 freezer"}
        return {
            "Kind": kinds[self.tree.version if self.tree else None],
            "Tree": str(self.tree.root) if self.tree else None,
            "KeeperPid": self.keeper.pid if self.keeper else None,
        }

    def _group_names(self, system: System) -> tuple[str, ...]:
        """A system's cgroup, inside its hosting VM's so that pausing the VM freezes it."""
        own = system_dir_name(system.id)
        return (system_dir_name(system.hosting_id), own) if system.hosting_id else (own,)

    def clear_folders(self) -> None:
        """Remove the folders under ``systems/`` of systems that are gone: an old service's
        after a restart, every one once the systems are stopped at shutdown. A folder with a
        mount point inside is left and logged: deleting through it would reach host files."""
        systems = self.state_dir / statedir.SYSTEMS_NAME
        with self.lock:
            live = {system_dir_name(s.id) for s in self.systems.values() if s.state != "Stopped"}
        try:
            entries = [e for e in os.scandir(systems) if e.name not in live]
        except FileNotFoundError:
            return
        points = [point for point, _type, _options in cgroups.mounts()]
        for entry in entries:
            if not entry.is_dir(follow_symlinks=False):
                continue
            inside = [p for p in points if p.startswith(entry.path + os.sep)]
            if inside:
                log.warning("left %s: %s is mounted inside it", entry.path, inside[0])
                continue
            shutil.rmtree(entry.path, ignore_errors=True)

    # -- handles ---------------------------------------------------------------------------

    def _system_of(self, peer: Peer, key: int) -> System:
        with self.lock:
            system = self._handle_index.get((peer, key))
        if system is None:
            raise RequestFailedError(hr.E_HANDLE, "the system handle is not valid")
        return system

    def _add_handle(self, system: System, peer: Peer, key: int) -> None:
        system.handles.setdefault(peer, set()).add(key)
        self._handle_index[(peer, key)] = system

    def close_system_handle(self, peer: Peer, key: int) -> None:
        """Drop one handle; the last one terminates (if asked) or forgets a stopped system."""
        with self.lock:
            system = self._handle_index.pop((peer, key), None)
            if system is None:
                return
            system.handles[peer].discard(key)
            if not system.handles[peer]:
                del system.handles[peer]
            last = system.handle_count() == 0
        if last:
            self._on_last_handle(system)

    def _on_last_handle(self, system: System) -> None:
        if system.terminate_on_close and system.state != "Stopped":
            workers.run("pyhcs-emu-tolhc", self._stop_then_forget, system)
        else:
            self._forget_if_done(system)

    def _stop_then_forget(self, system: System) -> None:
        self.stop(system, "ForcedExit", "Terminate", "Internal")
        self._forget_if_done(system)

    def _forget_if_done(self, system: System) -> None:
        with self.lock:
            if system.handle_count() or system.state != "Stopped":
                return
            if self.systems.get(system.id) is system:
                del self.systems[system.id]
            for k, (sid, _pid) in list(self.process_handles.items()):
                if sid == system.id:
                    del self.process_handles[k]
        if system.private_root:  # a root given by Container.Storage belongs to the caller
            _remove_later(system.root.parent)

    def drop_peer(self, peer: Peer) -> None:
        """A client went away: close every handle it held (the last-handle rules apply)."""
        with self.lock:
            keys = [(k, s) for s in self.systems.values() for k in s.handles.get(peer, ())]
            targets = [
                self.process_handles.pop(pk) for pk in list(self.process_handles) if pk[0] is peer
            ]
        for target in targets:
            self._release(*target)
        for key, _system in keys:
            self.close_system_handle(peer, key)

    # -- systems ---------------------------------------------------------------------------

    def create(
        self, peer: Peer, key: int, system_id: str, text: str | None, namespace: str = ""
    ) -> Result:
        """Create a system; the handle exists even if creation fails (the caller closes it)."""
        doc = request_document(text, "Construct", kind="ComputeSystem", allow_empty=False)
        if not system_id:
            raise RequestFailedError(hr.E_INVALIDARG, "the compute system id is empty")
        with self.lock:
            if system_id in self.systems:
                raise RequestFailedError(hr.HCS_E_SYSTEM_ALREADY_EXISTS, None, "Construct")
            hosting = doc.get("HostingSystemId")
            if hosting is not None:
                host = self.systems.get(str(hosting))
                if host is None or host.kind != "VirtualMachine":
                    raise RequestFailedError(
                        hr.HCS_E_SYSTEM_NOT_FOUND,
                        f"hosting system {hosting!r} is not a VirtualMachine of this service",
                        "RegisterHostedSystem",
                    )
            storage_root = _storage_root(documents.container_body(doc))
            root = storage_root or (
                self.state_dir / statedir.SYSTEMS_NAME / system_dir_name(system_id) / "root"
            )
            root.mkdir(parents=True, exist_ok=True)
            system = System(system_id, doc, root)
            system.private_root = storage_root is None
            system.namespace = namespace
            if hosting is not None:
                system.linux = self.systems[str(hosting)].linux  # a guest runs the VM's OS
            self.systems[system_id] = system
            self._add_handle(system, peer, key)
        return hr.S_OK, None

    def open(self, peer: Peer, key: int, system_id: str, namespace: str = "") -> Result:
        """Open by id within a namespace (ids are unique service-wide, visible per
        namespace)."""
        with self.lock:
            system = self.systems.get(system_id)
            if system is None or system.namespace != namespace:
                raise RequestFailedError(hr.HCS_E_SYSTEM_NOT_FOUND)
            self._add_handle(system, peer, key)
        return hr.S_OK, None

    def start(self, peer: Peer, key: int) -> Result:
        with self.lock:
            system = self._system_of(peer, key)
            if system.state == "Stopped":
                raise RequestFailedError(hr.HCS_E_SYSTEM_ALREADY_STOPPED, None, "Start")
            if system.state != "Created":
                raise RequestFailedError(hr.HCS_E_INVALID_STATE, None, "Start")
            host = self.systems.get(system.hosting_id) if system.hosting_id else None
            if system.hosting_id and (host is None or host.state != "Running"):
                raise RequestFailedError(
                    hr.HCS_E_INVALID_STATE, "the hosting VirtualMachine is not running", "Start"
                )
            body = documents.container_body(system.doc) if system.kind == "Container" else None
            entries = list((body or {}).get("MappedDirectories") or [])
            links: dict[str, Path] = {}
            try:
                for entry in entries:
                    links[str(entry.get("ContainerPath", "")).lower()] = mounts.apply(
                        system.root, entry
                    )
            except mounts.MountError as exc:
                for link in links.values():
                    mounts.remove(link)
                raise RequestFailedError(exc.hresult, str(exc), "Start") from exc
            system.links.update(links)
            system.rooted = self.privileged and _rooted(system)  # decided once, for every process
            system.state = "Running"
            system.start_time = time.time()
        return hr.S_OK, None

    def pause(self, peer: Peer, key: int, resume: bool) -> Result:
        detail = "Resume" if resume else "Pause"
        with self.lock:
            system = self._system_of(peer, key)
            if system.state == "Stopped":
                raise RequestFailedError(hr.HCS_E_SYSTEM_ALREADY_STOPPED, None, detail)
            if system.kind == "Container":
                raise RequestFailedError(hr.ERROR_NOT_SUPPORTED, None, detail)
            want = "Paused" if resume else "Running"
            if system.state != want:
                raise RequestFailedError(hr.HCS_E_INVALID_STATE, None, detail)
            system.state = "Running" if resume else "Paused"
            frozen = [system, *self._hosted(system)]
            processes = [p for f in frozen for p in f.processes.values() if p.exit_code is None]
            group = self.tree.group(*self._group_names(system)) if self.tree else None
        # Pausing a VM really freezes everything running in it (and its hosted containers).
        if self.tree is not None and group is not None:
            try:
                self.tree.freeze(group, not resume)
            except cgroups.CgroupError as exc:
                raise RequestFailedError(hr.ERROR_TIMEOUT, str(exc), detail) from exc
            return hr.S_OK, None
        for process in processes:
            process.signal_group(signal.SIGCONT if resume else signal.SIGSTOP)
        for process in processes:
            if not process.wait_frozen(not resume):
                raise RequestFailedError(
                    hr.ERROR_TIMEOUT, f"process {process.pid} did not {detail.lower()}", detail
                )
        return hr.S_OK, None

    def _hosted(self, system: System) -> list[System]:
        return [s for s in self.systems.values() if s.hosting_id == system.id]

    def crash(self, peer: Peer, key: int) -> Result:
        with self.lock:
            system = self._system_of(peer, key)
            if system.state == "Stopped" or system.stopping:
                raise RequestFailedError(hr.HCS_E_SYSTEM_ALREADY_STOPPED, None, "Crash")
            if system.kind != "VirtualMachine":
                raise RequestFailedError(hr.ERROR_NOT_SUPPORTED, None, "Crash")
            if system.state != "Running":
                raise RequestFailedError(hr.HCS_E_INVALID_STATE, None, "Crash")
        self.stop(system, "UnexpectedExit", "UnexpectedExit", "GuestOS")
        return hr.S_OK, None

    def save(self, peer: Peer, key: int, text: str | None) -> Result:
        """Save a paused VM. ToFile with SaveStateFilePath writes the emulator's saved-state
        file (the document and the host's processor requirements, as JSON); AsTemplate turns
        the system into a template (State SavedAsTemplate). The system stays paused."""
        options = request_document(text, "Save", kind="SaveOptions")
        with self.lock:
            system = self._system_of(peer, key)
            if system.state == "Stopped":
                raise RequestFailedError(hr.HCS_E_SYSTEM_ALREADY_STOPPED, None, "Save")
            if system.kind == "Container":
                raise RequestFailedError(hr.ERROR_NOT_SUPPORTED, None, "Save")
            if system.state != "Paused":
                raise RequestFailedError(hr.HCS_E_INVALID_STATE, None, "Save")
            saved = {
                "Format": documents.SAVED_STATE_FORMAT,
                "SystemId": system.id,
                "Document": system.doc,
                "ProcessorRequirements": cpus.requirements(),
            }
            if options.get("SaveType") == "AsTemplate":
                system.state = "SavedAsTemplate"
        path = options.get("SaveStateFilePath")
        if options.get("SaveType", "ToFile") == "ToFile" and path:
            try:
                with open(str(path), "x", encoding="utf-8") as f:
                    json.dump(saved, f)
            except FileExistsError as exc:
                raise RequestFailedError(
                    hr.ERROR_ALREADY_EXISTS, f"{path} exists already", "Save"
                ) from exc
            except OSError as exc:
                raise RequestFailedError(
                    hr.ERROR_PATH_NOT_FOUND, f"{path}: {exc.strerror}", "Save"
                ) from exc
        return hr.S_OK, None

    def live_migration(self, peer: Peer, key: int, text: str | None) -> Result:
        """The four live-migration calls: undocumented in the public reference, so not
        emulated: a typed refusal after the usual checks."""
        request_document(text, "LiveMigration")
        with self.lock:
            system = self._system_of(peer, key)
            if system.state == "Stopped" or system.stopping:
                raise RequestFailedError(hr.HCS_E_SYSTEM_ALREADY_STOPPED, None, "LiveMigration")
        raise RequestFailedError(
            hr.ERROR_NOT_SUPPORTED, "live migration is not emulated", "LiveMigration"
        )

    def shutdown(self, peer: Peer, key: int, forced: bool) -> Result:
        detail = "Terminate" if forced else "Shutdown"
        with self.lock:
            system = self._system_of(peer, key)
            if system.state == "Stopped" or system.stopping:
                raise RequestFailedError(hr.HCS_E_SYSTEM_ALREADY_STOPPED, None, detail)
            if not forced and not _has_guest_connection(system):
                # A graceful shutdown asks the guest to shut down; without a guest connection
                # nobody can be asked (the Tutorial's VM is terminated for that reason).
                raise RequestFailedError(
                    hr.HCS_E_SYSTEM_NOT_CONFIGURED_FOR_OPERATION,
                    "the virtual machine has no guest connection (VirtualMachine."
                    "GuestConnection), so it cannot be shut down gracefully; terminate it",
                    detail,
                )
        exit_type = "ForcedExit" if forced else "GracefulExit"
        if not self.stop(system, exit_type, detail, "Client"):
            raise RequestFailedError(hr.HCS_E_SYSTEM_ALREADY_STOPPED, None, detail)
        return hr.S_OK, None

    def stop(self, system: System, exit_type: str, detail: str, initiator: str) -> bool:
        """Kill every process, report their exits, then SystemExited. False if already stopping."""
        with self.lock:
            if system.stopping or system.state == "Stopped":
                return False
            system.stopping = True
            processes = list(system.processes.values())
            hosted = self._hosted(system)
        # A VM takes its hosted containers down with it, before it reports its own exit.
        for guest in hosted:
            self.stop(guest, "UnexpectedExit", "UnexpectedExit", "Internal")
        for process in processes:
            process.terminate()
        self._kill_rest(system)
        deadline = time.monotonic() + REAP_TIMEOUT
        for process in processes:
            process.exited.wait(max(0.0, deadline - time.monotonic()))
            process.done_reporting.wait(max(0.0, deadline - time.monotonic()))
        if self.tree is not None:
            self.tree.remove(self.tree.root.joinpath(*self._group_names(system)))
        status = documents.system_exit_status(exit_type, detail, initiator)
        with self.lock:
            for link in system.links.values():
                mounts.remove(link)
            system.links.clear()
            system.state = "Stopped"
            system.exit_type = exit_type
            system.exit_status = status
            peers = list(system.handles)
        for peer in peers:
            peer.push({"ev": "system_exited", "sys": system.id, "data": status})
        system.exited.set()
        return True

    def _kill_rest(self, system: System) -> None:
        """Kill what terminating the system's processes did not reach: as root its whole
        cgroup (a process that called setsid included); unprivileged the process groups that
        outlived their leader."""
        if self.tree is not None:
            try:
                self.tree.kill(self.tree.root.joinpath(*self._group_names(system)))
            except (cgroups.CgroupError, OSError) as exc:
                log.warning("system %r: its cgroup was not emptied: %s", system.id, exc)
            return
        with self.lock:
            groups = set(system.lingering) | set(system.processes)
            system.lingering.clear()
        for pgid in groups:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
            if self.keeper is not None:
                self.keeper.untrack(pgid)

    def modify(self, peer: Peer, key: int, text: str | None) -> Result:
        """ModifySettingRequest: the change is applied to the system's document, so later
        properties and processes see it (mapped directories, memory, processor, VM devices)."""
        request = request_document(text, "Modify", kind="ModifySettingRequest", allow_empty=False)
        path = request.get("ResourcePath")
        kind = request.get("RequestType", "Update")
        _check_settings(str(path), kind, request.get("Settings"))
        with self.lock:
            system = self._system_of(peer, key)
            if system.state == "Stopped" or system.stopping:
                raise RequestFailedError(hr.HCS_E_SYSTEM_ALREADY_STOPPED, None, "Modify")
            if not isinstance(path, str) or not path.startswith(system.kind + "/"):
                raise RequestFailedError(
                    hr.ERROR_NOT_SUPPORTED, f"unsupported ResourcePath {path!r}", "Modify"
                )
            parts = [p for p in path.split("/") if p]
            settings = request.get("Settings")
            mapped = parts == ["Container", "MappedDirectories"] and system.state == "Running"
            link = self._map_change(system, kind, settings) if mapped else None
            try:
                # A hosted container's settings live under HostedSystem.
                hosted = system.doc.get("HostedSystem")
                _apply(hosted if isinstance(hosted, dict) else system.doc, parts, kind, settings)
            except (KeyError, TypeError, ValueError) as exc:
                if link is not None:
                    mounts.remove(link)
                raise RequestFailedError(hr.ERROR_NOT_FOUND, str(exc), "Modify") from exc
        return hr.S_OK, None

    def _map_change(self, system: System, kind: str, settings: Any) -> Path | None:
        """Apply an Add/Remove of a mapped directory to a running container's root; returns
        the new link (so a failing document update can undo it)."""
        key = str((settings or {}).get("ContainerPath", "")).lower()
        if kind == "Remove":
            old = system.links.pop(key, None)
            if old is not None:
                mounts.remove(old)
            return None
        if kind != "Add":
            return None
        try:
            link = mounts.apply(system.root, settings)
        except mounts.MountError as exc:
            raise RequestFailedError(exc.hresult, str(exc), "Modify") from exc
        system.links[key] = link
        return link

    def properties(self, peer: Peer, key: int, query: str | None) -> Result:
        try:
            parsed = properties.parse_query(query)
        except InvalidJsonError as exc:
            raise RequestFailedError(
                hr.HCS_E_INVALID_JSON, documents.describe(exc), "GetProperties"
            ) from exc
        with self.lock:
            system = self._system_of(peer, key)
            snapshot = properties.Snapshot(
                kind=system.kind,
                # A copy: the answer is built outside the lock, while a Modify may change it.
                doc=json.loads(json.dumps(system.doc)) if parsed.reads_document else {},
                basic=system.basic(),
                terminate_on_close=system.terminate_on_close,
                start_time=system.start_time,
                processes=_live(system),
                guest_processes=[p for g in self._hosted(system) for p in _live(g)]
                if system.kind == "VirtualMachine"
                else [],
            )
        return hr.S_OK, json.dumps(properties.build(snapshot, parsed))

    def wait_exit(self, peer: Peer, key: int, timeout: float | None) -> Result:
        """Answers once ``stop`` has pushed SystemExited, so the event precedes the reply."""
        system = self._system_of(peer, key)
        if not system.exited.wait(timeout):
            raise RequestFailedError(hr.HCS_E_OPERATION_TIMEOUT)
        return hr.S_OK, system.exit_status

    def enumerate(self, query: str | None, namespace: str = "") -> Result:
        doc = request_document(query, "Invalid")
        filters: dict[str, Callable[[System], str]] = {
            "Ids": lambda s: s.id,
            "Names": lambda s: s.id,
            "Types": lambda s: s.kind,
            "Owners": lambda s: s.owner,
        }
        with self.lock:
            out = []
            for system in self.systems.values():
                if system.namespace == namespace and all(
                    not doc.get(name) or get(system) in doc[name] for name, get in filters.items()
                ):
                    out.append(system.basic())
        return hr.S_OK, json.dumps(out)

    # -- processes -------------------------------------------------------------------------

    def create_process(
        self, peer: Peer, key: int, pkey: int, text: str | None
    ) -> tuple[Result, HostProcess, dict[str, int | None]]:
        params = request_document(
            text, "ExecuteProcess", kind="ProcessParameters", allow_empty=False
        )
        with self.lock:
            system = self._system_of(peer, key)
            if system.state != "Running" or system.stopping:
                raise RequestFailedError(hr.HCS_E_INVALID_STATE, None, "ExecuteProcess")
            body = documents.container_body(system.doc) or {}
            hostname = str((body.get("GuestOs") or {}).get("HostName") or "")
            if hostname:  # what a Windows process reads its computer name from
                environment = dict(params.get("Environment") or {})
                environment.setdefault("COMPUTERNAME", hostname)
                params = dict(params, Environment=environment)
            confinement = None
            if self.privileged:
                read_only = [
                    str(system.links[str(m.get("ContainerPath", "")).lower()].resolve())
                    for m in body.get("MappedDirectories") or []
                    if m.get("ReadOnly") and str(m.get("ContainerPath", "")).lower() in system.links
                ]
                confinement = Isolation(hostname=hostname, read_only=read_only)
                if system.rooted:
                    confinement.root = str(system.root)
                    confinement.init_pid = self._join_init(system)
            procs = None
            if self.tree is not None:  # a process joining a frozen group is frozen at once
                procs = self.tree.open_procs(self.tree.group(*self._group_names(system)))
            try:
                process = HostProcess(
                    params,
                    system.root,
                    system.linux,
                    self._process_exited,
                    isolation=confinement,
                    cgroup_procs=procs,
                )
            except ProcessError as exc:
                raise RequestFailedError(exc.hresult, str(exc), "ExecuteProcess") from exc
            finally:
                if procs is not None:
                    os.close(procs)
            process.system_id = system.id
            system.processes[process.pid] = process
            if confinement is not None and confinement.root and system.init is None:
                system.init = process
            host = self.systems.get(system.hosting_id) if system.hosting_id else None
            if self.tree is None and host is not None and host.state == "Paused":
                process.signal_group(signal.SIGSTOP)
            if self.tree is None and self.keeper is not None:
                self.keeper.track(process.pid)
            self.process_handles[(peer, pkey)] = (system.id, process.pid)
        return (hr.S_OK, None), process, process.take_client_fds()

    def _join_init(self, system: System) -> int | None:
        """The host pid of the container's init for a later process to join (None for the
        first process, which becomes the init). Once the init has exited the PID namespace
        takes no new process (the kernel refuses to fork into it), so neither does the
        container: HCS_E_INVALID_STATE, while the container itself keeps running."""
        init = system.init
        if init is None:
            try:
                (system.root / "proc").mkdir(exist_ok=True)  # where its /proc is mounted
            except OSError as exc:
                raise RequestFailedError(
                    oserrors.hresult_for(exc),
                    f"no /proc mount point in the container's root: {exc.strerror}",
                    "ExecuteProcess",
                ) from exc
            return None
        if system.init_pid is None and init.exit_code is None:
            system.init_pid = isolation.init_of(init.pid, system.root)
        if init.exit_code is not None or system.init_pid is None:
            raise RequestFailedError(
                hr.HCS_E_INVALID_STATE,
                f"the init process of container {system.id!r} (pid 1 of its PID namespace, "
                f"host pid {init.pid}) has exited: the container takes no new process",
                "ExecuteProcess",
            )
        return system.init_pid

    def _process_exited(self, process: HostProcess) -> None:
        """Push ProcessExited to every session with a handle to the process, then set
        ``done_reporting``: exit waits answer only after it, so on each session's socket the
        event precedes the wait's reply."""
        try:
            process.announced.wait(REAP_TIMEOUT)
            status = documents.process_status(process.pid, process.exit_code)
            with self.lock:
                peers = {
                    p
                    for (p, _k), target in self.process_handles.items()
                    if target == (process.system_id, process.pid)
                }
            for peer in peers:
                peer.push(
                    {
                        "ev": "process_exited",
                        "sys": process.system_id,
                        "pid": process.pid,
                        "data": status,
                    }
                )
        finally:
            process.done_reporting.set()
        if self.tree is None:
            self._group_exited(process)
        self._release(process.system_id, process.pid)

    def _group_exited(self, process: HostProcess) -> None:
        """Unprivileged: the keeper forgets a process group once it is empty; one that lives
        on without its leader is remembered so that terminate still kills it."""
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            if self.keeper is not None:
                self.keeper.untrack(process.pid)
            return
        with self.lock:
            system = self.systems.get(process.system_id)
            if system is not None:
                system.lingering.add(process.pid)

    def open_process(self, peer: Peer, key: int, pkey: int, pid: int) -> Result:
        with self.lock:
            system = self._system_of(peer, key)
            process = system.processes.get(pid)
            if process is None or process.exit_code is not None:
                raise RequestFailedError(hr.ERROR_NOT_FOUND)
            self.process_handles[(peer, pkey)] = (system.id, pid)
        return hr.S_OK, None

    def close_process_handle(self, peer: Peer, pkey: int) -> None:
        with self.lock:
            target = self.process_handles.pop((peer, pkey), None)
        if target is not None:
            self._release(*target)

    def _release(self, system_id: str, pid: int) -> None:
        """Forget a process that has exited, been reported and has no handle left: a
        long-running system keeps no record of every process it ever ran."""
        with self.lock:
            system = self.systems.get(system_id)
            process = system.processes.get(pid) if system is not None else None
            if system is None or process is None or not process.done_reporting.is_set():
                return
            if (system_id, pid) not in self.process_handles.values():
                del system.processes[pid]

    def _process_of(self, peer: Peer, pkey: int) -> tuple[System, HostProcess]:
        with self.lock:
            target = self.process_handles.get((peer, pkey))
            system = self.systems.get(target[0]) if target else None
            if target is None or system is None:
                raise RequestFailedError(hr.E_HANDLE, "the process handle is not valid")
            return system, system.processes[target[1]]

    def terminate_process(self, peer: Peer, pkey: int) -> Result:
        _system, process = self._process_of(peer, pkey)
        if process.exit_code is not None or process.terminated:
            raise RequestFailedError(hr.HCS_E_PROCESS_ALREADY_STOPPED, None, "SignalProcess")
        process.terminate()
        return hr.S_OK, None

    def signal_process(self, peer: Peer, pkey: int, text: str | None) -> Result:
        doc = request_document(text, "SignalProcess")
        system, process = self._process_of(peer, pkey)
        if process.exit_code is not None:
            raise RequestFailedError(hr.HCS_E_PROCESS_ALREADY_STOPPED, None, "SignalProcess")
        sig = doc.get("Signal", "CtrlC")
        if isinstance(sig, str) and sig in WINDOWS_SIGNALS:
            signo = int(WINDOWS_SIGNALS[sig])
        elif isinstance(sig, int) and not isinstance(sig, bool) and system.linux:
            if sig not in _LINUX_SIGNALS:
                raise RequestFailedError(
                    hr.HCS_E_INVALID_JSON,
                    f"{sig} is not a signal of the Linux guest (at $.Signal)",
                    "SignalProcess",
                )
            signo = sig
        else:
            raise RequestFailedError(
                hr.HCS_E_INVALID_JSON, f"unsupported signal {sig!r}", "SignalProcess"
            )
        process.signal_group(signo)
        return hr.S_OK, None

    def process_properties(self, peer: Peer, pkey: int) -> Result:
        _system, process = self._process_of(peer, pkey)
        return hr.S_OK, documents.process_status(process.pid, process.exit_code)

    def modify_process(self, peer: Peer, pkey: int, text: str | None) -> Result:
        doc = request_document(
            text, "ModifyProcess", kind="ProcessModifyRequest", allow_empty=False
        )
        _system, process = self._process_of(peer, pkey)
        if process.exit_code is not None:
            raise RequestFailedError(hr.HCS_E_PROCESS_ALREADY_STOPPED, None, "ModifyProcess")
        operation = doc.get("Operation")
        try:
            if operation == "ConsoleSize":
                size = doc.get("ConsoleSize") or {}
                process.resize(int(size.get("Height", 0)), int(size.get("Width", 0)))
            elif operation == "CloseHandle":
                handle = (doc.get("CloseHandle") or {}).get("Handle")
                if handle not in ("StdIn", "StdOut", "StdErr", "All"):
                    raise RequestFailedError(
                        hr.HCS_E_INVALID_JSON, "$.CloseHandle.Handle", "ModifyProcess"
                    )
                names = {"StdIn": ["in"], "StdOut": ["out"], "StdErr": ["err"]}
                for name in names.get(handle, ["in", "out", "err"]):
                    process.close_stream(name)
            else:
                raise RequestFailedError(hr.HCS_E_INVALID_JSON, "$.Operation", "ModifyProcess")
        except ProcessError as exc:
            raise RequestFailedError(exc.hresult, str(exc), "ModifyProcess") from exc
        return hr.S_OK, None

    def process_info(
        self, peer: Peer, pkey: int
    ) -> tuple[Result, HostProcess, dict[str, int | None]]:
        """HcsGetProcessInfo: pid plus fresh descriptors for the streams the service still
        holds (the caller sends, then closes them)."""
        _system, process = self._process_of(peer, pkey)
        if process.exit_code is not None:
            raise RequestFailedError(hr.HCS_E_PROCESS_ALREADY_STOPPED, None, "GetProcessInfo")
        fds = {name: process.duplicate_stream(name) for name in ("in", "out", "err")}
        return (hr.S_OK, None), process, fds

    def wait_process_exit(self, peer: Peer, pkey: int, timeout: float | None) -> Result:
        """Answers once the exit is reported: the ProcessExited event is on the socket first."""
        _system, process = self._process_of(peer, pkey)
        if not process.done_reporting.wait(timeout):
            raise RequestFailedError(hr.HCS_E_OPERATION_TIMEOUT)
        return hr.S_OK, documents.process_status(process.pid, process.exit_code)

    def shutdown_all(self) -> None:
        """Service stop: terminate every system (ServiceStop) so no host process outlives it,
        and delete what is left of forgotten systems' folders."""
        with self.lock:
            systems = list(self.systems.values())
        for system in systems:
            self.stop(system, "ForcedExit", "ServiceStop", "Internal")
        folder = self.state_dir / statedir.SYSTEMS_NAME
        try:
            trash = [p for p in folder.iterdir() if p.name.startswith(TRASH_PREFIX)]
        except OSError:
            return
        for path in trash:
            shutil.rmtree(path, ignore_errors=True)


def _apply(doc: dict[str, Any], parts: list[str], kind: str, settings: Any) -> None:
    """Apply Add/Remove/Update at ``parts`` of the document. Collections named by the path's
    last part are lists (Add appends, Remove drops equal entries or the one whose ContainerPath
    matches); any other path is a keyed slot (Add/Update set it, Remove deletes it)."""
    node: Any = doc
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise TypeError(f"{part} is not an object")
    leaf = parts[-1]
    current = node.get(leaf)
    if isinstance(current, list) or (current is None and leaf in _LIST_LEAVES):
        items = list(current or [])
        if kind == "Add":
            items.append(settings)
        elif kind == "Remove":
            key = settings.get("ContainerPath") if isinstance(settings, dict) else None
            items = [
                i
                for i in items
                if i != settings
                and not (key and isinstance(i, dict) and i.get("ContainerPath") == key)
            ]
        else:
            items = list(settings)
        node[leaf] = items
    elif kind == "Remove":
        node.pop(leaf, None)  # a wrong key silently removes nothing, as observed on Windows
    else:
        node[leaf] = settings


_LIST_LEAVES = frozenset({"MappedDirectories", "MappedPipes", "Shares", "Regions"})


#: Resource paths whose Settings have a schema definition (HcsModifyComputeSystem's table), as
#: (path segments, "*" matching any one) -> definition, or "integer".
_SETTINGS_KINDS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("Container", "MappedDirectories"), "MappedDirectory"),
    (("Container", "MappedPipes"), "MappedPipe"),
    (("Container", "Memory", "SizeInMB"), "integer"),
    (("Container", "Processor"), "Container_Processor"),
    (("VirtualMachine", "ComputeTopology", "Memory", "SizeInMB"), "integer"),
    (("VirtualMachine", "ComputeTopology", "Processor", "CpuGroup"), "CpuGroup"),
    (("VirtualMachine", "Devices", "Scsi", "*", "Attachments", "*"), "Attachment"),
    (("VirtualMachine", "Devices", "NetworkAdapters", "*"), "NetworkAdapter"),
    (("VirtualMachine", "Devices", "Plan9", "Shares"), "Plan9Share"),
    (("VirtualMachine", "Devices", "VirtualSmb", "Shares"), "VirtualSmbShare"),
    (("VirtualMachine", "Devices", "ComPorts", "*"), "ComPort"),
)


def _has_guest_connection(system: System) -> bool:
    """Whether HcsShutDownComputeSystem can reach the guest: always for a container (its
    processes are the host's), for a VM only with ``VirtualMachine.GuestConnection``."""
    if system.kind != "VirtualMachine":
        return True
    body = system.doc.get("VirtualMachine")
    return isinstance(body, dict) and body.get("GuestConnection") is not None


def _check_settings(path: str, kind: str, settings: Any) -> None:
    """Strictly validate the Settings of a known resource path (not for Remove, where HCS
    ignores them); a wrong one → HCS_E_INVALID_JSON naming ``$.Settings...``."""
    if kind == "Remove":
        return
    parts = tuple(p for p in path.split("/") if p)
    matches = [
        definition
        for pattern, definition in _SETTINGS_KINDS
        if len(pattern) == len(parts)
        and all(a in ("*", b) for a, b in zip(pattern, parts, strict=True))
    ]
    if not matches:
        return
    definition = matches[0]
    if definition == "integer":
        if not isinstance(settings, int) or isinstance(settings, bool) or settings < 0:
            raise RequestFailedError(
                hr.HCS_E_INVALID_JSON,
                f"Settings of {path} must be a non-negative integer (at $.Settings)",
                "Modify",
            )
        return
    if not isinstance(settings, dict):
        raise RequestFailedError(
            hr.HCS_E_INVALID_JSON,
            f"Settings of {path} must be a {definition} (at $.Settings)",
            "Modify",
        )
    try:
        documents.validate(definition, settings)
    except InvalidJsonError as exc:
        message = documents.describe(exc).replace("(at $", "(at $.Settings")
        raise RequestFailedError(hr.HCS_E_INVALID_JSON, message, "Modify") from exc


def _storage_root(body: dict[str, Any] | None) -> Path | None:
    """A container's C:\\ from ``Storage.Path``: the volume or writable layer it names (a
    layer's Files/). None without Storage. Raises RequestFailedError for a path that is not
    there, or for a writable layer whose storage filter is not attached (hcsshim attaches
    before it creates the container)."""
    storage = (body or {}).get("Storage") or {}
    path = storage.get("Path")
    if not path:
        return None
    base = Path(str(path))
    try:
        if not base.is_dir():
            raise RequestFailedError(
                hr.ERROR_PATH_NOT_FOUND, f"Storage.Path {path} is not a directory", "Construct"
            )
        layer = (base / "Files").is_dir()
        attached = (base / documents.ATTACH_RECORD).exists()
    except OSError as exc:  # a path the host cannot even look up (too long, ...)
        code = oserrors.hresult_for(exc, missing=hr.ERROR_PATH_NOT_FOUND)
        raise RequestFailedError(code, f"Storage.Path: {exc.strerror}", "Construct") from exc
    if not layer:
        return base
    if storage.get("Layers") and not attached:
        raise RequestFailedError(
            hr.HCS_E_INVALID_LAYER,
            f"the storage filter is not attached to {path} (HcsAttachLayerStorageFilter)",
            "Construct",
        )
    return base / "Files"


def _rooted(system: System) -> bool:
    """Whether (as root) the container's processes run chroot'ed into its root, in a PID
    namespace of their own: a Linux-flavoured container (hosted by a LinuxKernelDirect VM)
    whose root holds a Linux root filesystem (a ``bin`` in it, directory or link). A root
    without one (an empty private root, a bundle's bare rootfs) has nothing to run, so its
    processes stay host programs on host paths as before."""
    if system.kind != "Container" or not system.linux or not system.hosting_id:
        return False
    bin_dir = system.root / "bin"
    return bin_dir.is_dir() or bin_dir.is_symlink()


def _boots_linux(doc: dict[str, Any]) -> bool:
    """A VirtualMachine that boots a kernel directly (as WSL and LCOW utility VMs do) is
    Linux-flavoured: RuntimeOsType Linux, integer signals, 128+signal exit codes."""
    chipset = (doc.get("VirtualMachine") or {}).get("Chipset") or {}
    return isinstance(chipset, dict) and chipset.get("LinuxKernelDirect") is not None


def system_dir_name(system_id: str) -> str:
    """The folder of a system under ``systems/``: a readable prefix (letters, digits, ``-``
    and ``_`` only, so never ``.`` or ``..``) and the SHA-256 of the id, so two ids never share
    a folder however they are spelled or however long they are."""
    prefix = "".join(c if c.isascii() and (c.isalnum() or c in "-_") else "_" for c in system_id)
    digest = hashlib.sha256(system_id.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{prefix[:40]}-{digest}"


#: Prefix of a forgotten system's folder on its way out; never a system folder's name (those
#: start with a letter, digit, ``-`` or ``_``, see ``system_dir_name``).
TRASH_PREFIX = ".trash-"


def _remove_later(folder: Path) -> None:
    """Remove a forgotten system's folder without making the request that forgot it wait:
    renamed at once out of the way (the id may be created again right away), deleted by a
    worker (deleting is slow on some file systems: ~6 ms here for an empty root)."""
    trash = folder.with_name(f"{TRASH_PREFIX}{uuid.uuid4().hex}")
    try:
        folder.rename(trash)
    except OSError:
        shutil.rmtree(folder, ignore_errors=True)
        return
    workers.run("pyhcs-emu-rmtree", shutil.rmtree, trash, True)


def _live(system: System) -> list[HostProcess]:
    return [p for p in system.processes.values() if p.exit_code is None]
