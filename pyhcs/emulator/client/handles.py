"""Client-side handle objects: operations, system handles, process handles.

A handle given to C is an integer key cast to a pointer; the key indexes the client's tables,
never a live Python object. Keys start high and are never reused, so a stale handle is simply
not found (E_HANDLE) instead of aliasing a newer one.
"""

from __future__ import annotations

import itertools
import os
import threading
from dataclasses import dataclass, field
from typing import Any

from pyhcs import hresult as hr

_keys = itertools.count(0x10000, 0x10)
_operation_ids = itertools.count(1)

# HCS_OPERATION_TYPE values (computedefs.h).
OP_NONE = -1
OP_ENUMERATE, OP_CREATE, OP_START, OP_SHUTDOWN, OP_PAUSE, OP_RESUME, OP_SAVE = 0, 1, 2, 3, 4, 5, 6
OP_TERMINATE, OP_MODIFY, OP_GET_PROPERTIES, OP_CREATE_PROCESS, OP_SIGNAL_PROCESS = 7, 8, 9, 10, 11
OP_GET_PROCESS_INFO, OP_GET_PROCESS_PROPERTIES, OP_MODIFY_PROCESS, OP_CRASH = 12, 13, 14, 15
OP_LIVE_MIGRATION = 19

# HCS_EVENT_TYPE / HCS_EVENT_OPTIONS values.
EVENT_SYSTEM_EXITED = 0x1
EVENT_PROCESS_EXITED = 0x10000
EVENT_OPERATION_CALLBACK = 0x1000000
EVENT_SERVICE_DISCONNECT = 0x2000000
EVENT_GROUP_OPERATION_INFO = -0x3FFFFFFF  # 0xC0000001 as the C enum holds it
OPTION_ENABLE_OPERATION_CALLBACKS = 1
# HCS_OPERATION_OPTIONS.
OPERATION_OPTION_PROGRESS_UPDATE = 1
# HCS_RESOURCE_TYPE names, by value.
RESOURCE_TYPES = ("None", "File", "Job", "ComObject", "Socket")
# HCS_CREATE_OPTIONS.
CREATE_OPTIONS_1 = 0x10000


def new_key() -> int:
    return next(_keys)


@dataclass
class ProcessInfo:
    """What a finished CreateProcess/GetProcessInfo carries; the fds until handed out."""

    pid: int
    fds: dict[str, int | None]
    handed_out: bool = False
    invalid_for_missing: bool = False

    def discard(self) -> None:
        if not self.handed_out:
            for fd in self.fds.values():
                if fd is not None:
                    os.close(fd)
            self.fds = {}


@dataclass
class Operation:
    """An HCS_OPERATION: reusable, completed exactly once per use."""

    key: int
    context: Any
    callback: Any  # HCS_OPERATION_COMPLETION cdata or None
    id: int = field(default_factory=lambda: next(_operation_ids))
    type: int = OP_NONE
    state: str = "unused"  # unused | pending | done
    result: int = hr.S_OK
    document: str | None = None
    info: ProcessInfo | None = None
    system_key: int | None = None
    process_key: int | None = None
    closed: bool = False
    generation: int = 0
    done: threading.Event = field(default_factory=threading.Event)
    #: HcsCreateOperationWithNotifications: an HCS_EVENT_CALLBACK and its options.
    event_callback: Any = None
    event_options: int = 0
    #: HcsAddResourceToOperation records ({"Type", "Uri"}).
    resources: list[dict[str, str]] = field(default_factory=list)
    started: float | None = None
    ended: float | None = None

    def has_callback(self) -> bool:
        return self.callback is not None or self.event_callback is not None


@dataclass
class EventTarget:
    """A system or process handle: its event callback and sticky notifications."""

    key: int
    system_id: str
    pid: int | None = None
    callback: Any = None
    context: Any = None
    options: int = 0
    closed: bool = False
    exited: bool = False
    disconnected: bool = False
    exit_data: str | None = None
    #: Set once the exit callback posted for this handle has run (or was skipped); None when
    #: no exit callback was posted. Exit waits return only after it (dispatch.py).
    exit_delivered: threading.Event | None = None
