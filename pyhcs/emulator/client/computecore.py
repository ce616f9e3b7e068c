"""The client half: the C-level behaviour of computecore on top of the service connection.

Every method here is called by a C function pointer of the table (see table.py) with cffi
arguments and returns what the C function returns. Argument and handle checks happen here,
synchronously; everything that HCS reports through an operation is sent to the service and
completes the operation from the connection's reader thread (see dispatch.py for the flow).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pyhcs import hresult as hr
from pyhcs.emulator import documents
from pyhcs.emulator.client import handles
from pyhcs.emulator.client.connection import Connection, Reply, disconnected_reply
from pyhcs.emulator.client.dispatch import DRAIN_TIMEOUT, Dispatcher
from pyhcs.emulator.client.faults import Fault, Faults, Hold
from pyhcs.emulator.client.memory import Allocator
from pyhcs.errors import InvalidJsonError
from pyhcs.raw.ffi import ffi

INFINITE = 0xFFFFFFFF
INVALID_HANDLE_VALUE = 0xFFFFFFFFFFFFFFFF


def _signed(value: int) -> int:
    """HRESULT as returned through a C ``long``: sign-extended from 32 bits."""
    return hr.to_signed(value)


def _text(pointer: Any) -> str | None:
    return None if pointer == ffi.NULL else str(ffi.string(pointer))


_ADDRESS = ffi.typeof("uintptr_t")


def _key(pointer: Any) -> int:
    return int(ffi.cast(_ADDRESS, pointer))


def _timeout(ms: int) -> float:
    return float("inf") if ms == INFINITE else ms / 1000.0


def _namespace(pointer: Any) -> str:
    """The namespace of a *InNamespace call; the plain calls use the default one ("")."""
    return "" if pointer is None else str(ffi.string(pointer))


#: HCS_OPERATION_TYPE -> the schema's OperationType name (OperationInfo.Operation).
_OPERATION_NAMES = {
    handles.OP_CREATE: "Construct",
    handles.OP_START: "Start",
    handles.OP_SHUTDOWN: "Shutdown",
    handles.OP_PAUSE: "Pause",
    handles.OP_RESUME: "Resume",
    handles.OP_SAVE: "Save",
    handles.OP_TERMINATE: "Terminate",
    handles.OP_MODIFY: "Modify",
    handles.OP_GET_PROPERTIES: "GetProperties",
    handles.OP_CREATE_PROCESS: "ExecuteProcess",
    handles.OP_SIGNAL_PROCESS: "SignalProcess",
    handles.OP_GET_PROCESS_INFO: "GetProcessInfo",
    handles.OP_GET_PROCESS_PROPERTIES: "GetProperties",
    handles.OP_MODIFY_PROCESS: "ModifyProcess",
    handles.OP_CRASH: "Crash",
}


def _rfc3339(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + (
        f".{int((seconds % 1) * 1_000_000):06d}Z"
    )


def _operation_info(op: handles.Operation) -> dict[str, Any]:
    """OperationInfo of an operation's current (or last) use; "Resources" is the emulator's
    own addition listing HcsAddResourceToOperation records."""
    info: dict[str, Any] = {"Operation": _OPERATION_NAMES.get(op.type, "None")}
    if op.started is not None:
        info["StartTimestamp"] = _rfc3339(op.started)
    if op.state == "done" and op.ended is not None:
        info["EndTimestamp"] = _rfc3339(op.ended)
        if op.result != hr.S_OK:
            info["FailureInfo"] = {"Result": hr.to_signed(op.result)}
    if op.resources:
        info["Resources"] = [dict(r) for r in op.resources]
    return info


class Client:
    """Connection + handle tables + callback thread of one client process."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.allocator = Allocator()
        self.faults = Faults()
        self.dispatcher = Dispatcher()
        self._lock = threading.RLock()
        self.operations: dict[int, handles.Operation] = {}
        self.systems: dict[int, handles.EventTarget] = {}
        self.processes: dict[int, handles.EventTarget] = {}
        self.pipes: set[int] = set()
        self._delayed = 0
        self._delayed_cond = threading.Condition()
        #: Other halves of the client (HCN) hook into events, disconnects and counters.
        self.event_hooks: dict[str, Callable[[dict[str, Any]], None]] = {}
        self.disconnect_hooks: list[Callable[[], None]] = []
        self.counter_hooks: list[Callable[[], dict[str, int]]] = []
        self.connection = Connection(directory, self._on_event, self._on_disconnect)

    # -- diagnostics -----------------------------------------------------------------------

    def counters(self) -> dict[str, int]:
        """Open handles by kind, live strings and registered callbacks of this client."""
        with self._lock:
            callbacks = sum(
                1 for t in [*self.systems.values(), *self.processes.values()] if t.callback
            ) + sum(1 for o in self.operations.values() if o.has_callback())
            return {
                "operations": len(self.operations),
                "systems": len(self.systems),
                "processes": len(self.processes),
                "pipes": len(self.pipes),
                "strings": self.allocator.live(),
                "callbacks": callbacks,
                "bad_frees": len(self.allocator.bad_frees),
            } | {k: v for hook in self.counter_hooks for k, v in hook().items()}

    def close(self) -> None:
        self.connection.close()
        self.dispatcher.flush(10.0)
        self.dispatcher.stop()

    # -- events ----------------------------------------------------------------------------

    def _post_event(
        self,
        target: handles.EventTarget,
        kind: int,
        data: str | None,
        op: Any,
        finished: threading.Event | None = None,
    ) -> None:
        def deliver() -> None:
            event = ffi.new("HCS_EVENT *")
            keep = ffi.new("WCHAR[]", data) if data is not None else ffi.NULL
            event.Type = kind
            event.EventData = keep
            event.Operation = op
            target.callback(event, target.context)

        self.dispatcher.post(target.key, lambda: not target.closed, deliver, finished)

    def _on_event(self, message: dict[str, Any]) -> None:
        kind = message.get("ev")
        hook = self.event_hooks.get(str(kind))
        if hook is not None:
            hook(message)
            return
        with self._lock:
            if kind == "system_exited":
                targets = [t for t in self.systems.values() if t.system_id == message["sys"]]
                code = handles.EVENT_SYSTEM_EXITED
            elif kind == "process_exited":
                targets = [
                    t
                    for t in self.processes.values()
                    if t.system_id == message["sys"] and t.pid == message["pid"]
                ]
                code = handles.EVENT_PROCESS_EXITED
            else:
                return
            for target in targets:
                if target.exited or target.closed:
                    continue
                target.exited = True
                target.exit_data = message.get("data")
                if target.callback is not None and not target.disconnected:
                    target.exit_delivered = threading.Event()
                    self._post_event(
                        target, code, target.exit_data, ffi.NULL, target.exit_delivered
                    )

    def _on_disconnect(self) -> None:
        for hook in self.disconnect_hooks:
            hook()
        # Every pending operation ends with the disconnect, also one whose request a fault
        # still holds back (nothing is outstanding on the connection for it).
        with self._lock:
            pending = [op for op in self.operations.values() if op.state == "pending"]
        for op in pending:
            self._complete(op, op.generation, disconnected_reply(), [])
        with self._lock:
            for target in [*self.systems.values(), *self.processes.values()]:
                if target.disconnected or target.closed:
                    continue
                target.disconnected = True
                if target.callback is not None:
                    self._post_event(target, handles.EVENT_SERVICE_DISCONNECT, None, ffi.NULL)

    # -- operations ------------------------------------------------------------------------

    def _op(self, handle: Any) -> handles.Operation | None:
        with self._lock:
            return self.operations.get(_key(handle)) if handle != ffi.NULL else None

    def create_operation(self, context: Any, callback: Any) -> Any:
        op = handles.Operation(
            key=handles.new_key(),
            context=ffi.cast("void *", context),
            callback=None if callback == ffi.NULL else callback,
        )
        with self._lock:
            self.operations[op.key] = op
        return ffi.cast("HCS_OPERATION", op.key)

    def create_operation_with_notifications(self, options: int, context: Any, callback: Any) -> Any:
        """An operation whose completion is reported to an HCS_EVENT_CALLBACK as
        HcsEventOperationCallback; with HcsOperationOptionProgressUpdate it also gets
        HcsEventGroupOperationInfo events (an OperationInfo document) when the request is
        accepted and when it finishes."""
        op = handles.Operation(
            key=handles.new_key(),
            context=ffi.cast("void *", context),
            callback=None,
            event_callback=None if callback == ffi.NULL else callback,
            event_options=int(options),
        )
        with self._lock:
            self.operations[op.key] = op
        return ffi.cast("HCS_OPERATION", op.key)

    def add_resource(self, handle: Any, kind: int, uri: Any, resource: Any) -> int:
        """HcsAddResourceToOperation: recorded on the operation (listed by
        HcsGetOperationProperties); File and Socket handles must be open descriptors."""
        op = self._op(handle)
        if op is None:
            return _signed(hr.E_HANDLE)
        if not 0 <= int(kind) < len(handles.RESOURCE_TYPES) or uri == ffi.NULL:
            return _signed(hr.E_INVALIDARG)
        text = str(ffi.string(uri))
        if not text.startswith("hcs:/") or len(text) <= len("hcs:/"):
            return _signed(hr.E_INVALIDARG)
        name = handles.RESOURCE_TYPES[int(kind)]
        if name in ("File", "Socket"):
            try:
                os.fstat(_key(resource))
            except (OSError, OverflowError):
                return _signed(hr.E_HANDLE)
        with self._lock:
            if op.state == "pending":
                return _signed(hr.HCS_E_OPERATION_ALREADY_STARTED)
            op.resources.append({"Type": name, "Uri": text})
        return hr.S_OK

    def operation_properties(self, handle: Any, options: Any, out: Any) -> int:
        """HcsGetOperationProperties: an OperationInfo document (schema 2.6) with real
        timestamps; ``options`` must be NULL or an empty object."""
        op = self._op(handle)
        if op is None:
            return _signed(hr.E_HANDLE)
        if out == ffi.NULL:
            return _signed(hr.E_POINTER)
        try:
            parsed: dict[str, Any] | None = documents.parse_object(_text(options))
        except InvalidJsonError:  # malformed, or nested past the documented depth
            parsed = None
        if parsed != {}:
            message = "operation property options must be empty (at $)"
            self.allocator.store(out, documents.result_error(hr.HCS_E_INVALID_JSON, message))
            return _signed(hr.HCS_E_INVALID_JSON)
        with self._lock:
            info = _operation_info(op)
        self.allocator.store(out, json.dumps(info))
        return hr.S_OK

    def close_operation(self, handle: Any) -> None:
        with self._lock:
            op = self.operations.pop(_key(handle), None) if handle != ffi.NULL else None
            if op is None:
                return
            op.closed = True
            if op.state == "done" and op.info is not None:
                op.info.discard()

    def get_context(self, handle: Any) -> Any:
        op = self._op(handle)
        return ffi.NULL if op is None else op.context

    def set_context(self, handle: Any, context: Any) -> int:
        op = self._op(handle)
        if op is None:
            return _signed(hr.E_HANDLE)
        op.context = ffi.cast("void *", context)
        return hr.S_OK

    def set_callback(self, handle: Any, context: Any, callback: Any) -> int:
        op = self._op(handle)
        if op is None:
            return _signed(hr.E_HANDLE)
        op.context = ffi.cast("void *", context)
        op.callback = None if callback == ffi.NULL else callback
        return hr.S_OK

    def get_type(self, handle: Any) -> int:
        op = self._op(handle)
        return handles.OP_NONE if op is None else op.type

    def get_id(self, handle: Any) -> int:
        op = self._op(handle)
        return 0xFFFFFFFFFFFFFFFF if op is None else op.id

    def system_from_operation(self, handle: Any) -> Any:
        op = self._op(handle)
        if op is None or op.system_key is None or op.state != "pending":
            return ffi.NULL
        return ffi.cast("HCS_SYSTEM", op.system_key)

    def process_from_operation(self, handle: Any) -> Any:
        op = self._op(handle)
        if op is None or op.process_key is None or op.state != "pending":
            return ffi.NULL
        return ffi.cast("HCS_PROCESS", op.process_key)

    def _result(
        self, op: handles.Operation, info_out: Any, doc_out: Any, *, wants_info: bool
    ) -> int:
        if wants_info and op.type not in (handles.OP_CREATE_PROCESS, handles.OP_GET_PROCESS_INFO):
            return _signed(hr.E_INVALIDARG)
        if op.state == "unused":
            return _signed(hr.HCS_E_OPERATION_NOT_STARTED)
        if op.state == "pending":
            return _signed(hr.HCS_E_OPERATION_PENDING)
        self.allocator.store(doc_out, op.document)
        if wants_info and info_out != ffi.NULL and op.result == hr.S_OK and op.info is not None:
            info_out.ProcessId = op.info.pid
            missing = INVALID_HANDLE_VALUE if op.info.invalid_for_missing else 0
            for name, field in (("in", "StdInput"), ("out", "StdOutput"), ("err", "StdError")):
                fd = op.info.fds.get(name)
                setattr(info_out, field, ffi.cast("HANDLE", missing if fd is None else fd))
                if fd is not None:
                    with self._lock:
                        self.pipes.add(fd)
            op.info.handed_out = True
        return _signed(op.result)

    def get_result(self, handle: Any, info_out: Any, doc_out: Any, *, wants_info: bool) -> int:
        op = self._op(handle)
        if op is None:
            return _signed(hr.E_HANDLE)
        with self._lock:
            return self._result(op, info_out, doc_out, wants_info=wants_info)

    def wait_result(
        self, handle: Any, timeout_ms: int, info_out: Any, doc_out: Any, *, wants_info: bool
    ) -> int:
        op = self._op(handle)
        if op is None:
            return _signed(hr.E_HANDLE)
        with self._lock:
            if wants_info and op.type not in (
                handles.OP_CREATE_PROCESS,
                handles.OP_GET_PROCESS_INFO,
            ):
                return _signed(hr.E_INVALIDARG)
            if op.state == "unused":
                return _signed(hr.HCS_E_OPERATION_NOT_STARTED)
            done = op.done
        timeout = _timeout(timeout_ms)
        bound = None if timeout == float("inf") else timeout
        deadline = None if bound is None else time.monotonic() + bound
        if not self.connection.wait_until(done, bound):
            # A disconnect another thread saw ends this wait before that thread has ended
            # every pending operation (_on_disconnect): the rest of the time is for that.
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not (self.connection.disconnected and done.wait(left)):
                return _signed(hr.HCS_E_OPERATION_TIMEOUT)
        with self._lock:
            return self._result(op, info_out, doc_out, wants_info=wants_info)

    def cancel(self, handle: Any) -> int:
        op = self._op(handle)
        if op is None:
            return _signed(hr.E_HANDLE)
        with self._lock:
            if op.state == "unused":
                # Never passed to a call: nothing was started, so nothing can be cancelled.
                return _signed(hr.HCS_E_OPERATION_NOT_STARTED)
            if op.state != "pending":
                return _signed(hr.HCS_E_OPERATION_ALREADY_CANCELLED)
        self._complete(op, op.generation, {"hr": hr.HCS_E_OPERATION_ALREADY_CANCELLED}, [])
        return hr.S_OK

    def _begin(
        self, handle: Any, kind: int, target: handles.EventTarget | None, function: str
    ) -> tuple[handles.Operation | None, int, Fault | None]:
        """Accept phase shared by every op-taking call: (op, HRESULT to return, fault)."""
        op = self._op(handle)
        if op is None:
            return None, _signed(hr.E_INVALIDARG if handle == ffi.NULL else hr.E_HANDLE), None
        if self.connection.disconnected:
            return None, _signed(hr.HCS_E_SERVICE_DISCONNECT), None
        fault = self.faults.take(function)
        if fault is not None and fault.drop_connection:
            self.connection.drop()
        with self._lock:
            if op.state == "pending":
                return None, _signed(hr.HCS_E_OPERATION_ALREADY_STARTED), None
            if (
                target is not None
                and op.has_callback()
                and target.options & handles.OPTION_ENABLE_OPERATION_CALLBACKS
            ):
                return None, _signed(hr.HCS_E_OPERATION_SYSTEM_CALLBACK_ALREADY_SET), None
            if op.info is not None:
                op.info.discard()
            op.generation += 1
            op.type, op.state, op.result, op.document, op.info = kind, "pending", 0, None, None
            op.done = threading.Event()
            op.started, op.ended = time.time(), None
            op.system_key = op.process_key = None
            if target is not None and target.pid is None:
                op.system_key = target.key
            elif target is not None:
                op.process_key = target.key
            self._post_progress(op)
        return op, hr.S_OK, fault

    def _post_progress(self, op: handles.Operation) -> None:
        """HcsEventGroupOperationInfo to an operation created with ProgressUpdate."""
        if op.event_callback is None or not (
            op.event_options & handles.OPERATION_OPTION_PROGRESS_UPDATE
        ):
            return
        self._post_operation_event(op, handles.EVENT_GROUP_OPERATION_INFO, _operation_info(op))

    def _post_operation_event(self, op: handles.Operation, kind: int, data: Any) -> None:
        callback, generation = op.event_callback, op.generation
        text = None if data is None else json.dumps(data)

        def deliver() -> None:
            event = ffi.new("HCS_EVENT *")
            keep = ffi.new("WCHAR[]", text) if text is not None else ffi.NULL
            event.Type = kind
            event.EventData = keep
            event.Operation = ffi.cast("HCS_OPERATION", op.key)
            callback(event, op.context)

        self.dispatcher.post(op.key, lambda: not op.closed and op.generation == generation, deliver)

    def _send(
        self,
        op: handles.Operation,
        message: dict[str, Any],
        fault: Fault | None,
        target: handles.EventTarget | None,
    ) -> None:
        generation = op.generation

        def complete(reply: Reply, fds: list[int]) -> None:
            self._complete(op, generation, reply, fds, target)

        if fault is not None and fault.hresult is not None:
            doc = fault.document
            reply = {"hr": fault.hresult, "doc": doc}
            self._later(fault, lambda: complete(reply, []))
        elif fault is not None and fault.stalls:
            self._later(fault, lambda: self.connection.submit(message, complete))
        else:
            self.connection.submit(message, complete)

    def _later(self, fault: Fault, action: Any) -> None:
        """Run a fault-stalled (delayed or held) action on its own thread, counted so
        ``settle`` can wait."""
        with self._delayed_cond:
            self._delayed += 1

        def done() -> None:
            with self._delayed_cond:
                self._delayed -= 1
                self._delayed_cond.notify_all()

        def released() -> None:
            try:
                action()
            finally:
                done()

        def run() -> None:
            try:
                fault.stall()
                action()
            finally:
                done()

        if isinstance(fault.hold, Hold) and not fault.delay:
            fault.entered.set()
            fault.hold.later(released)  # queued, not a thread per held call
            return
        threading.Thread(target=run, name="pyhcs-emu-fault", daemon=True).start()

    def settle(self, timeout: float = 10.0) -> bool:
        """Wait until delayed requests were sent, every earlier reply arrived and every
        callback posted so far ran (tests use this instead of sleeping)."""
        with self._delayed_cond:
            if not self._delayed_cond.wait_for(lambda: self._delayed == 0, timeout):
                return False
        reply, _fds = self.connection.call({"op": "hello"}, timeout)
        return reply.get("hr") == hr.S_OK and self.dispatcher.flush(timeout)

    def _complete(
        self,
        op: handles.Operation,
        generation: int,
        reply: Reply,
        fds: list[int],
        target: handles.EventTarget | None = None,
    ) -> None:
        with self._lock:
            if op.generation != generation or op.state != "pending":
                for fd in fds:
                    os.close(fd)
                return
            op.result = int(reply.get("hr", hr.E_FAIL)) & 0xFFFFFFFF
            op.document = reply.get("doc")
            if "pid" in reply and reply.get("pid") is not None:
                names = list(reply.get("fds", []))
                op.info = handles.ProcessInfo(
                    pid=int(reply["pid"]),
                    fds={
                        n: (fds[names.index(n)] if n in names else None)
                        for n in ("in", "out", "err")
                    },
                    invalid_for_missing=op.type == handles.OP_GET_PROCESS_INFO,
                )
            else:
                for fd in fds:
                    os.close(fd)
            op.state = "done"
            op.ended = time.time()
            op.done.set()
            self.connection.wake()
            if op.closed:
                if op.info is not None:
                    op.info.discard()
                return
            callback = op.callback
            via_event = (
                not op.has_callback()
                and target is not None
                and target.callback is not None
                and target.options & handles.OPTION_ENABLE_OPERATION_CALLBACKS
            )
        if op.event_callback is not None:
            with self._lock:
                self._post_progress(op)
                self._post_operation_event(op, handles.EVENT_OPERATION_CALLBACK, None)
        elif callback is not None:
            handle = ffi.cast("HCS_OPERATION", op.key)
            self.dispatcher.post(
                op.key,
                lambda: not op.closed and op.generation == generation,
                lambda: callback(handle, op.context),
            )
        elif via_event and target is not None:
            self._post_event(
                target, handles.EVENT_OPERATION_CALLBACK, None, ffi.cast("HCS_OPERATION", op.key)
            )

    # -- systems ---------------------------------------------------------------------------

    def _system(self, handle: Any) -> handles.EventTarget | None:
        with self._lock:
            return self.systems.get(_key(handle)) if handle != ffi.NULL else None

    def enumerate(self, query: Any, operation: Any, namespace: Any = None) -> int:
        """HcsEnumerateComputeSystems[InNamespace]: the plain call sees the default namespace."""
        if namespace == ffi.NULL:
            return _signed(hr.E_INVALIDARG)
        name = "HcsEnumerateComputeSystems" + ("" if namespace is None else "InNamespace")
        op, code, fault = self._begin(operation, handles.OP_ENUMERATE, None, name)
        if op is None:
            return code
        message = {"op": "enumerate", "doc": _text(query), "ns": _namespace(namespace)}
        self._send(op, message, fault, None)
        return hr.S_OK

    def create_system(self, sid: Any, config: Any, operation: Any, sd: Any, out: Any) -> int:
        if sd != ffi.NULL:
            return _signed(hr.E_INVALIDARG)
        return self.create_system_in_namespace(
            None, sid, config, operation, ffi.NULL, out, function="HcsCreateComputeSystem"
        )

    def create_system_in_namespace(  # noqa: PLR0917 - the C signature's six arguments
        self,
        namespace: Any,
        sid: Any,
        config: Any,
        operation: Any,
        options: Any,
        out: Any,
        function: str = "HcsCreateComputeSystemInNamespace",
    ) -> int:
        """Create in a namespace; HCS_CREATE_OPTIONS_1 registers the event callback together
        with the creation, so not even an early exit can be missed."""
        if ffi.NULL in (sid, config, out) or namespace == ffi.NULL:
            return _signed(hr.E_INVALIDARG)
        create_options = None
        if options != ffi.NULL:
            create_options = ffi.cast("HCS_CREATE_OPTIONS_1 *", options)
            if int(create_options.Version) != handles.CREATE_OPTIONS_1:
                return _signed(hr.E_INVALIDARG)
        system_id = str(ffi.string(sid))
        op, code, fault = self._begin(operation, handles.OP_CREATE, None, function)
        if op is None:
            return code
        target = handles.EventTarget(key=handles.new_key(), system_id=system_id)
        if create_options is not None and create_options.Callback != ffi.NULL:
            target.callback = create_options.Callback
            target.options = int(create_options.CallbackOptions)
            target.context = ffi.cast("void *", create_options.CallbackContext)
        with self._lock:
            self.systems[target.key] = target
            op.system_key = target.key
        out[0] = ffi.cast("HCS_SYSTEM", target.key)
        message = {
            "op": "create",
            "h": target.key,
            "sid": system_id,
            "doc": _text(config),
            "ns": _namespace(namespace),
        }
        self._send(op, message, fault, target)
        return hr.S_OK

    def open_system(self, sid: Any, access: int, out: Any, namespace: Any = None) -> int:
        if ffi.NULL in (sid, out) or namespace == ffi.NULL:
            return _signed(hr.E_INVALIDARG)
        if self.connection.disconnected:
            return _signed(hr.HCS_E_SERVICE_DISCONNECT)
        fault = self.faults.take("HcsOpenComputeSystem")
        if fault is not None and fault.hresult is not None:
            return _signed(fault.hresult)
        system_id = str(ffi.string(sid))
        target = handles.EventTarget(key=handles.new_key(), system_id=system_id)
        message = {"op": "open", "h": target.key, "sid": system_id, "ns": _namespace(namespace)}
        reply, _fds = self.connection.call(message)
        if reply["hr"] != hr.S_OK:
            return _signed(int(reply["hr"]))
        with self._lock:
            self.systems[target.key] = target
        out[0] = ffi.cast("HCS_SYSTEM", target.key)
        return hr.S_OK

    def close_system(self, handle: Any) -> None:
        with self._lock:
            target = self.systems.pop(_key(handle), None) if handle != ffi.NULL else None
            if target is None:
                return
            target.closed = True
        self.connection.submit({"op": "close", "h": target.key}, None)
        self.dispatcher.drain(target.key)

    def system_call(
        self, handle: Any, operation: Any, options: Any, *, kind: int, request: str, function: str
    ) -> int:
        target = self._system(handle)
        if target is None:
            return _signed(hr.E_HANDLE)
        op, code, fault = self._begin(operation, kind, target, function)
        if op is None:
            return code
        message = {"op": request, "h": target.key, "doc": _text(options)}
        self._send(op, message, fault, target)
        return hr.S_OK

    def set_event_callback(
        self, table: dict[int, handles.EventTarget], handle: Any, options: int, ctx: Any, cb: Any
    ) -> int:
        with self._lock:
            target = table.get(_key(handle)) if handle != ffi.NULL else None
            if target is None:
                return _signed(hr.E_HANDLE)
            if target.callback is not None:
                return _signed(hr.HCS_E_OPERATION_SYSTEM_CALLBACK_ALREADY_SET)
            target.options = int(options)
            target.context = ffi.cast("void *", ctx)
            target.callback = None if cb == ffi.NULL else cb
            if target.callback is not None and target.disconnected:
                self._post_event(target, handles.EVENT_SERVICE_DISCONNECT, None, ffi.NULL)
        return hr.S_OK

    def wait_exit(
        self, table: dict[int, handles.EventTarget], handle: Any, timeout_ms: int, out: Any
    ) -> int:
        with self._lock:
            target = table.get(_key(handle)) if handle != ffi.NULL else None
        if target is None:
            return _signed(hr.E_HANDLE)
        if self.connection.disconnected:
            return _signed(hr.HCS_E_SERVICE_DISCONNECT)
        timeout = _timeout(timeout_ms)
        if target.pid is None:
            message: dict[str, Any] = {"op": "wait_exit", "h": target.key}
        else:
            message = {"op": "wait_process_exit", "p": target.key}
        message["timeout"] = None if timeout == float("inf") else timeout
        deadline = time.monotonic() + min(timeout, DRAIN_TIMEOUT)
        reply, _fds = self.connection.call(message, timeout)
        code = int(reply["hr"])
        if code == hr.S_OK:
            self._await_exit_callback(target, deadline)
        self.allocator.store(out, reply.get("doc"))
        return _signed(code)

    def _await_exit_callback(self, target: handles.EventTarget, deadline: float) -> None:
        """An exit wait returns only after the exit callback of the handle has run, as a
        caller of HCS may rely on (HCS-REFERENCE §3.3). The service sends the exit event
        before the wait's reply on the same socket, so by now the event has been read and its
        callback posted. Not from inside a callback (it would wait for itself: the exit
        callback then runs once the current one returns); bounded by the wait's timeout (at
        most DRAIN_TIMEOUT) if a callback never returns."""
        delivered = target.exit_delivered
        if delivered is None or self.dispatcher.in_callback():
            return
        delivered.wait(max(0.0, deadline - time.monotonic()))

    def _service_call(self, message: dict[str, Any], out: Any) -> int:
        """A synchronous service-wide request whose document (result or ResultError) goes to
        ``out``."""
        if self.connection.disconnected:
            self.allocator.store(out, None)
            return _signed(hr.HCS_E_SERVICE_DISCONNECT)
        reply, _fds = self.connection.call(message)
        self.allocator.store(out, reply.get("doc"))
        return _signed(int(reply["hr"]))

    def service_properties(self, query: Any, out: Any) -> int:
        if out == ffi.NULL:
            return _signed(hr.E_POINTER)
        return self._service_call({"op": "service_properties", "doc": _text(query)}, out)

    def modify_service_settings(self, settings: Any, out: Any) -> int:
        if settings == ffi.NULL:
            self.allocator.store(out, None)
            return _signed(hr.E_INVALIDARG)
        return self._service_call({"op": "modify_service", "doc": _text(settings)}, out)

    def processor_compatibility(self, path: Any, out: Any) -> int:
        """HcsGetProcessorCompatibilityFromSavedState: read the processor requirements a Save
        ToFile recorded (see systems.py ``save``)."""
        if out == ffi.NULL:
            return _signed(hr.E_POINTER)
        out[0] = ffi.NULL
        if path == ffi.NULL or not str(ffi.string(path)):
            return _signed(hr.E_INVALIDARG)
        try:
            with open(str(ffi.string(path)), encoding="utf-8") as f:
                saved = json.load(f)
        except FileNotFoundError:
            return _signed(hr.ERROR_FILE_NOT_FOUND)
        except UnicodeEncodeError:  # an unpaired surrogate: no host path can hold it
            return _signed(hr.E_INVALIDARG)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError):
            return _signed(hr.ERROR_INVALID_DATA)
        if not isinstance(saved, dict) or saved.get("Format") != documents.SAVED_STATE_FORMAT:
            return _signed(hr.ERROR_INVALID_DATA)
        out[0] = self.allocator.string(json.dumps(saved.get("ProcessorRequirements", {})))
        return hr.S_OK

    # -- processes -------------------------------------------------------------------------

    def _process(self, handle: Any) -> handles.EventTarget | None:
        with self._lock:
            return self.processes.get(_key(handle)) if handle != ffi.NULL else None

    def create_process(self, handle: Any, params: Any, operation: Any, sd: Any, out: Any) -> int:
        system = self._system(handle)
        if system is None:
            return _signed(hr.E_HANDLE)
        if ffi.NULL in (params, out) or sd != ffi.NULL:
            return _signed(hr.E_INVALIDARG)
        op, code, fault = self._begin(
            operation, handles.OP_CREATE_PROCESS, system, "HcsCreateProcess"
        )
        if op is None:
            return code
        target = handles.EventTarget(key=handles.new_key(), system_id=system.system_id, pid=0)
        generation = op.generation

        def complete(reply: Reply, fds: list[int]) -> None:
            with self._lock:
                if reply.get("pid") is not None:
                    target.pid = int(reply["pid"])
            self._complete(op, generation, reply, fds, system)

        with self._lock:
            self.processes[target.key] = target
            op.process_key = target.key
        out[0] = ffi.cast("HCS_PROCESS", target.key)
        message = {"op": "create_process", "h": system.key, "p": target.key, "doc": _text(params)}
        if fault is not None and fault.hresult is not None:
            self._send(op, message, fault, system)
        elif fault is not None and fault.stalls:
            self._later(fault, lambda: self.connection.submit(message, complete))
        else:
            self.connection.submit(message, complete)
        return hr.S_OK

    def open_process(self, handle: Any, pid: int, access: int, out: Any) -> int:
        system = self._system(handle)
        if system is None:
            return _signed(hr.E_HANDLE)
        if out == ffi.NULL:
            return _signed(hr.E_INVALIDARG)
        target = handles.EventTarget(
            key=handles.new_key(), system_id=system.system_id, pid=int(pid)
        )
        message = {"op": "open_process", "h": system.key, "p": target.key, "pid": int(pid)}
        reply, _fds = self.connection.call(message)
        if reply["hr"] != hr.S_OK:
            return _signed(int(reply["hr"]))
        with self._lock:
            self.processes[target.key] = target
        out[0] = ffi.cast("HCS_PROCESS", target.key)
        return hr.S_OK

    def close_process(self, handle: Any) -> None:
        with self._lock:
            target = self.processes.pop(_key(handle), None) if handle != ffi.NULL else None
            if target is None:
                return
            target.closed = True
        self.connection.submit({"op": "close_process", "p": target.key}, None)
        self.dispatcher.drain(target.key)

    def process_call(
        self, handle: Any, operation: Any, options: Any, *, kind: int, request: str, function: str
    ) -> int:
        target = self._process(handle)
        if target is None:
            return _signed(hr.E_HANDLE)
        op, code, fault = self._begin(operation, kind, target, function)
        if op is None:
            return code
        self._send(op, {"op": request, "p": target.key, "doc": _text(options)}, fault, target)
        return hr.S_OK

    def process_info(self, handle: Any, operation: Any) -> int:
        """HcsGetProcessInfo: pid and fresh handles to the streams the service still holds
        (INVALID_HANDLE_VALUE for the others); the caller owns and closes them."""
        target = self._process(handle)
        if target is None:
            return _signed(hr.E_HANDLE)
        op, code, fault = self._begin(
            operation, handles.OP_GET_PROCESS_INFO, target, "HcsGetProcessInfo"
        )
        if op is None:
            return code
        self._send(op, {"op": "process_info", "p": target.key}, fault, target)
        return hr.S_OK

    # -- plain functions -------------------------------------------------------------------

    def local_free(self, pointer: Any) -> Any:
        return ffi.NULL if self.allocator.free(pointer) else pointer

    def close_handle(self, handle: Any) -> int:
        """CloseHandle of a std pipe handle this client handed out; any other value (the
        client's own socket, a descriptor the program opened itself) is not a handle of the
        emulator: FALSE (ERROR_INVALID_HANDLE) and nothing is closed."""
        fd = _key(handle)
        with self._lock:
            if fd not in self.pipes:
                return 0
            self.pipes.discard(fd)
        os.close(fd)
        return 1


def counts_by_kind(client: Client) -> Counter[str]:
    """Counters as a Counter, convenient for equality checks in tests."""
    return Counter(client.counters())
