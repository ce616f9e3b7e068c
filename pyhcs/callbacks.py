"""The one place where C calls into Python: operation completions, system and process events,
HCN notifications.

How a callback travels:

1. pyhcs makes one C function pointer per callback type (``HCS_OPERATION_COMPLETION``,
   ``HCS_EVENT_CALLBACK``, ``HCN_NOTIFICATION_CALLBACK``) the first time it needs it and keeps
   it for the life of the process, so HCS can never call a pointer that was freed.
2. What HCS hands back as ``void* context`` is an integer key (`register`) into a locked table
   of Python handlers, never the address of a Python object: a late call for a key that was
   dropped (`unregister`) finds nothing and is ignored.
3. HCS calls on its own worker threads, possibly before the call that started the work has
   returned. The trampoline copies what it needs out of C memory (the event type, its JSON,
   the operation handle), looks the handler up, and calls it. Handlers only record the event
   and hand it on (a ``threading.Event``, a queue, ``loop.call_soon_threadsafe``), then
   return: they never block and never call back into HCS.
4. Nothing raised in Python reaches C: an exception in a handler is logged and swallowed
   (cffi's ``onerror``), because unwinding into HCS's thread would crash the process.
5. Objects unregister their key only after ``HcsClose*`` returned, which itself waits for any
   callback of that handle still running, so a handler never runs for a closed object.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pyhcs.raw import ffi
from pyhcs.raw.strings import read_wide

log = logging.getLogger("pyhcs.callbacks")


@dataclass(frozen=True)
class RawEvent:
    """An ``HCS_EVENT`` copied out of C memory: its type, its JSON and the operation it
    concerns (``HcsEventOperationCallback`` only; the handle is HCS's, not a new reference)."""

    type: int
    data: str | None
    operation: Any = None


@dataclass(frozen=True)
class Notification:
    """An HCN notification: its type, HRESULT status and JSON data."""

    type: int
    status: int
    data: str | None


_lock = threading.Lock()
_keys = itertools.count(1)
_handlers: dict[int, Callable[[Any], None]] = {}
_trampolines: dict[str, Any] = {}


def register(handler: Callable[[Any], None]) -> int:
    """A new context key whose callbacks go to ``handler`` (until `unregister`)."""
    with _lock:
        key = next(_keys)
        _handlers[key] = handler
    return key


def unregister(key: int) -> None:
    """Drop a key; callbacks that still arrive for it are ignored."""
    with _lock:
        _handlers.pop(key, None)


def context(key: int) -> Any:
    """The ``void*`` to hand HCS for ``key``."""
    return ffi.cast("void *", key)


def _handler(context_pointer: Any) -> Callable[[Any], None] | None:
    key = int(ffi.cast("uintptr_t", context_pointer))
    with _lock:
        return _handlers.get(key)


def _swallow(exc_type: type[BaseException], value: BaseException, _tb: Any) -> None:
    log.error("a pyhcs callback failed; HCS was not told: %r", value, exc_info=value)


def _on_operation(operation: Any, context_pointer: Any) -> None:
    handler = _handler(context_pointer)
    if handler is not None:
        handler(operation)


def _on_event(event: Any, context_pointer: Any) -> None:
    handler = _handler(context_pointer)
    if handler is None or event == ffi.NULL:
        return
    handler(
        RawEvent(
            type=int(ffi.cast("uint32_t", event.Type)),
            data=read_wide(event.EventData),
            operation=event.Operation if event.Operation != ffi.NULL else None,
        )
    )


def _on_notification(kind: int, context_pointer: Any, status: int, data: Any) -> None:
    handler = _handler(context_pointer)
    if handler is not None:
        handler(Notification(type=int(kind), status=int(status) & 0xFFFFFFFF, data=read_wide(data)))


_PYTHON_SIDE: dict[str, Callable[..., None]] = {
    "HCS_OPERATION_COMPLETION": _on_operation,
    "HCS_EVENT_CALLBACK": _on_event,
    "HCN_NOTIFICATION_CALLBACK": _on_notification,
}


def trampoline(kind: str) -> Any:
    """The process-lifetime C function pointer of callback type ``kind``."""
    with _lock:
        pointer = _trampolines.get(kind)
        if pointer is None:
            pointer = ffi.callback(kind, _PYTHON_SIDE[kind], onerror=_swallow)
            _trampolines[kind] = pointer
        return pointer


def pending() -> int:
    """How many keys are registered (a test's leak check: none once everything is closed)."""
    with _lock:
        return len(_handlers)
