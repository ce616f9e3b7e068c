"""The events of a system or process, for an event loop.

The same `pyhcs.events.EventHub` that the blocking objects use records each event on HCS's
thread; `EventHub.listen` hands it to the loop with ``loop.call_soon_threadsafe`` and nothing
else, so no thread waits for events. On the loop:

- `EventStream` is ``async for event in system.events()``: every event from the first one
  recorded, in order, until the exit event (yielded, then the iteration ends) or close (the
  iteration ends: closing is not an exit). A ``ServiceDisconnect`` raises
  `ServiceDisconnectError`, as it does for every other waiter.
- `wait_terminal` is ``await system.wait()``: the exit event; `InvalidHandleError` if the object
  is closed first, `ServiceDisconnectError` if the service goes away.
- `subscribe` runs a callback (a function or a coroutine function) on the loop per event.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

from pyhcs.errors import InvalidHandleError, OperationTimeoutError, ServiceDisconnectError
from pyhcs.events import Event, EventHub, EventType

__all__ = ["EventStream", "subscribe", "wait_terminal"]

log = logging.getLogger("pyhcs.aio")

EventCallback = Callable[[Event], "Awaitable[Any] | None"]


def _notifier(
    loop: asyncio.AbstractEventLoop, deliver: Callable[[Event | None], None]
) -> Callable[[Event | None], None]:
    """What the hub calls on HCS's thread: hand the event to the loop, nothing more."""

    def notify(item: Event | None) -> None:
        # A closed loop has nobody left to tell: its waiters and iterators are gone with it.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(deliver, item)

    return notify


def _disconnected(hub: EventHub, operation: str) -> ServiceDisconnectError:
    return ServiceDisconnectError(f"{hub.what}: the HCS service went away", operation=operation)


class EventStream:
    """``async for event in stream``: the events of one object (see the module docstring);
    each wait for the next one is bounded by ``timeout`` (`OperationTimeoutError`)."""

    def __init__(self, hub: EventHub, timeout: float | None = None) -> None:
        self._hub = hub
        self._timeout = timeout
        self._queue: asyncio.Queue[Event | None] | None = None
        self._stop: Callable[[], None] | None = None
        self._ended = False

    def __aiter__(self) -> EventStream:
        return self

    def _start(self) -> asyncio.Queue[Event | None]:
        queue: asyncio.Queue[Event | None] = asyncio.Queue()
        history, closed, self._stop = self._hub.listen(
            _notifier(asyncio.get_running_loop(), queue.put_nowait)
        )
        # An iteration left early without aclose() stops listening once it is collected.
        weakref.finalize(self, self._stop)
        for event in history:
            queue.put_nowait(event)
        if closed:
            queue.put_nowait(None)
        return queue

    async def __anext__(self) -> Event:
        if self._ended:
            raise StopAsyncIteration
        if self._queue is None:
            self._queue = self._start()
        try:
            item = await asyncio.wait_for(self._queue.get(), self._timeout)
        except asyncio.TimeoutError:
            raise OperationTimeoutError(
                f"no event from {self._hub.what} within {self._timeout} s", operation="events"
            ) from None
        if item is None:  # closed: not an exit, and nothing more will come
            await self.aclose()
            raise StopAsyncIteration
        if item.type == EventType.SERVICE_DISCONNECT:
            await self.aclose()
            raise _disconnected(self._hub, "events")
        if item.terminal:
            await self.aclose()
        return item

    async def aclose(self) -> None:
        """Stop listening (an iteration that reached its end has already)."""
        self._ended = True
        if self._stop is not None:
            self._stop()
            self._stop = None

    async def __aenter__(self) -> EventStream:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()


async def wait_terminal(hub: EventHub, timeout: float | None, operation: str) -> Event:
    """The exit event, awaited (see the module docstring)."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Event | None] = loop.create_future()

    def deliver(item: Event | None) -> None:
        if (item is None or item.terminal) and not future.done():
            future.set_result(item)

    _history, closed, stop = hub.listen(_notifier(loop, deliver))
    try:
        event = hub.terminal  # read after listening: no terminal event can fall in between
        if event is None and not closed:
            try:
                event = await asyncio.wait_for(future, timeout)
            except asyncio.TimeoutError:
                raise OperationTimeoutError(
                    f"{hub.what} did not exit within {timeout} s", operation=operation
                ) from None
    finally:
        stop()
    if event is None:
        raise InvalidHandleError(f"{hub.what} was closed", operation=operation)
    if event.type == EventType.SERVICE_DISCONNECT:
        raise _disconnected(hub, operation)
    return event


_tasks: set[asyncio.Task[Any]] = set()


def _done(task: asyncio.Task[Any]) -> None:
    _tasks.discard(task)
    if not task.cancelled() and task.exception() is not None:
        log.error("event callback task %r failed", task, exc_info=task.exception())


def subscribe(hub: EventHub, callback: EventCallback) -> Callable[[], None]:
    """Call ``callback(event)`` on the running loop for every later event (a coroutine it
    returns runs as a task; a failure is logged and the next event still comes); returns a
    function that stops it."""
    loop = asyncio.get_running_loop()

    def deliver(item: Event | None) -> None:
        if item is None:
            return
        try:
            result = callback(item)
        except Exception:  # one failing callback must not stop the next events
            log.exception("event callback %r failed on %r", callback, item)
            return
        if inspect.isawaitable(result):
            task = asyncio.ensure_future(result)
            _tasks.add(task)
            task.add_done_callback(_done)

    _history, _closed, stop = hub.listen(_notifier(loop, deliver))
    return stop
