"""Events of systems and processes, typed, and the one place they are collected per handle.

HCS delivers an event to the handle's callback on one of its own threads (`pyhcs.callbacks`).
An `EventHub` per object records it and hands it on without blocking that thread: waiters
wake, iterators get it in order, and user callbacks run on the one ``pyhcs-events`` thread (a
slow or failing user callback never holds HCS up); none runs once its object is closed or it
was unsubscribed, even if its event was already queued behind a slow one.
``SystemExited``/``ProcessExited`` and ``ServiceDisconnect`` are terminal: the first one wins
and is kept. Closing the object is not an event: waiters are woken with "closed", never with a
made-up exit.
"""

from __future__ import annotations

import collections
import enum
import functools
import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final

from pyhcs import schema
from pyhcs.callbacks import RawEvent
from pyhcs.errors import InvalidHandleError, OperationTimeoutError, ServiceDisconnectError

log = logging.getLogger("pyhcs.events")

#: How many events a hub keeps for iterators that start late (terminal ones are always kept).
HISTORY: Final = 1024


class EventType(enum.IntEnum):
    """``HCS_EVENT_TYPE``."""

    INVALID = 0x0
    SYSTEM_EXITED = 0x1
    SYSTEM_CRASH_INITIATED = 0x2
    SYSTEM_CRASH_REPORT = 0x3
    SYSTEM_RDP_ENHANCED_MODE_STATE_CHANGED = 0x4
    SYSTEM_SILO_JOB_CREATED = 0x5
    SYSTEM_GUEST_CONNECTION_CLOSED = 0x6
    PROCESS_EXITED = 0x10000
    OPERATION_CALLBACK = 0x1000000
    SERVICE_DISCONNECT = 0x2000000
    GROUP_VM_LIFECYCLE = 0x80000002
    GROUP_LIVE_MIGRATION = 0x80000003
    GROUP_OPERATION_INFO = 0xC0000001


TERMINAL: Final = frozenset(
    {EventType.SYSTEM_EXITED, EventType.PROCESS_EXITED, EventType.SERVICE_DISCONNECT}
)


@dataclass(frozen=True)
class Event:
    """One event: its type, HCS's JSON and (parsed on demand) its typed payload."""

    type: EventType | int
    data: str | None = None
    received: float = field(default_factory=time.monotonic, compare=False)

    @property
    def name(self) -> str:
        return self.type.name if isinstance(self.type, EventType) else f"{int(self.type):#x}"

    @property
    def payload(self) -> schema.SystemExitStatus | schema.ProcessStatus | Any:
        """``SystemExitStatus`` for SystemExited, ``ProcessStatus`` for ProcessExited, the
        decoded JSON of any other event with data, else None."""
        if not self.data:
            return None
        if self.type == EventType.SYSTEM_EXITED:
            return schema.SystemExitStatus.parse(self.data)
        if self.type == EventType.PROCESS_EXITED:
            return schema.ProcessStatus.parse(self.data)
        return json.loads(self.data)

    @property
    def terminal(self) -> bool:
        return self.type in TERMINAL

    def __repr__(self) -> str:
        return f"Event({self.name}{', ' + self.data if self.data else ''})"


def _typed(kind: int) -> EventType | int:
    try:
        return EventType(kind)
    except ValueError:
        return kind


class _Dispatcher:
    """The ``pyhcs-events`` thread: runs user callbacks in arrival order, off HCS's threads."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[
            tuple[Callable[[Event], None], Event, Callable[[], bool]]
        ] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def post(
        self,
        callback: Callable[[Event], None],
        event: Event,
        wanted: Callable[[], bool] = lambda: True,
    ) -> None:
        """Run ``callback(event)`` in turn, if ``wanted()`` still says so by then."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="pyhcs-events", daemon=True)
                self._thread.start()
        self._queue.put((callback, event, wanted))

    def _run(self) -> None:
        while True:
            callback, event, wanted = self._queue.get()
            try:
                if wanted():
                    callback(event)
            except Exception:  # a user's callback must not stop the others
                log.exception("event callback %r failed on %r", callback, event)


_dispatcher = _Dispatcher()


class EventHub:
    """The events of one handle (a system or a process)."""

    def __init__(self, what: str, *, system_id: str | None = None, pid: int | None = None) -> None:
        self.what = what
        #: What the errors of this hub name (the system, and the process if it is one's).
        self.context: dict[str, Any] = {"system_id": system_id, "pid": pid}
        self._cond = threading.Condition()
        self._history: collections.deque[Event] = collections.deque(maxlen=HISTORY)
        self._count = 0
        self._terminal: Event | None = None
        self._closed = False
        self._callbacks: list[Callable[[Event], None]] = []
        self._listeners: list[Callable[[Event | None], None]] = []

    # -- HCS's side (any thread) -----------------------------------------------------------

    def deliver(self, raw: RawEvent) -> None:
        """The trampoline's handler: record, wake, hand on. Never blocks."""
        self.record(Event(_typed(raw.type), raw.data))

    def record(self, event: Event) -> None:
        with self._cond:
            if self._closed or (event.terminal and self._terminal is not None):
                return  # after close nothing is reported; the first terminal event wins
            if event.terminal:
                self._terminal = event
            self._history.append(event)
            self._count += 1
            callbacks = list(self._callbacks)
            self._cond.notify_all()
            for listener in self._listeners:  # under the lock: each sees the recorded order
                listener(event)
        for callback in callbacks:
            # Not once the object is closed or the callback unsubscribed, even if queued.
            _dispatcher.post(callback, event, functools.partial(self._subscribed, callback))

    def _subscribed(self, callback: Callable[[Event], None]) -> bool:
        with self._cond:
            return callback in self._callbacks

    def close(self) -> None:
        """The object was closed: wake every waiter and iterator with "closed"."""
        with self._cond:
            self._closed = True
            self._callbacks.clear()
            self._cond.notify_all()
            listeners, self._listeners = self._listeners, []
            for listener in listeners:
                listener(None)

    # -- the user's side -------------------------------------------------------------------

    @property
    def terminal(self) -> Event | None:
        with self._cond:
            return self._terminal

    def subscribe(self, callback: Callable[[Event], None]) -> Callable[[], None]:
        """Call ``callback(event)`` (on the pyhcs-events thread) for every later event;
        returns a function that stops it."""
        with self._cond:
            self._callbacks.append(callback)

        def unsubscribe() -> None:
            with self._cond:
                if callback in self._callbacks:
                    self._callbacks.remove(callback)

        return unsubscribe

    def listen(
        self, notify: Callable[[Event | None], None]
    ) -> tuple[list[Event], bool, Callable[[], None]]:
        """For an event loop (`pyhcs.aio`): ``notify(event)`` for every later event and
        ``notify(None)`` at close, called on the recording thread under the hub's lock, so it
        must only hand on (``loop.call_soon_threadsafe``). Returns, atomically with the
        registration, the events recorded so far (what `iterate` starts with), whether the hub
        is closed already, and a function that stops the notifications."""
        with self._cond:
            history = list(self._history)
            closed = self._closed
            if not closed:
                self._listeners.append(notify)

        def stop() -> None:
            with self._cond:
                if notify in self._listeners:
                    self._listeners.remove(notify)

        return history, closed, stop

    def wait_terminal(self, timeout: float | None, operation: str) -> Event:
        """Wait for the exit (or service disconnect) event; OperationTimeoutError after
        ``timeout`` seconds, InvalidHandleError if the object is closed first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._terminal is None:
                if self._closed:
                    raise InvalidHandleError(
                        f"{self.what} was closed", operation=operation, **self.context
                    )
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise OperationTimeoutError(
                        f"{self.what} did not exit within {timeout} s",
                        operation=operation,
                        **self.context,
                    )
                self._cond.wait(left)
            event = self._terminal
        if event.type == EventType.SERVICE_DISCONNECT:
            raise ServiceDisconnectError(
                f"{self.what}: the HCS service went away", operation=operation, **self.context
            )
        return event

    def iterate(self, timeout: float | None) -> Iterator[Event]:
        """Every event from the first one recorded, in order, until the terminal one or
        close; each wait for the next is bounded by ``timeout`` (OperationTimeoutError)."""
        with self._cond:
            seen = self._count - len(self._history)  # events older than the history are gone
        while True:
            with self._cond:
                deadline = None if timeout is None else time.monotonic() + timeout
                while self._count == seen and self._terminal is None and not self._closed:
                    left = None if deadline is None else deadline - time.monotonic()
                    if left is not None and left <= 0:
                        raise OperationTimeoutError(
                            f"no event from {self.what} within {timeout} s",
                            operation="events",
                            **self.context,
                        )
                    self._cond.wait(left)
                first = self._count - len(self._history)
                pending = list(self._history)[max(0, seen - first) :]
                seen = self._count
                done = self._closed or (self._terminal is not None and not pending)
            yield from pending
            if done or any(event.terminal for event in pending):
                return
