"""The client's callback thread: the only place C callbacks are called from.

Flow. A C call (say HcsStartComputeSystem) validates its arguments, records the operation as
pending, sends a request and returns S_OK. The service does the work and replies; the
connection's reader thread receives the reply, stores the result in the operation (so Get/Wait
see it at once) and posts the completion callback here. Events pushed by the service (system or
process exited, service disconnect) take the same route. This worker then calls the C function
pointer with the handle and its context. Callbacks therefore run on our own thread, never inside
the API call that started the work, and possibly before that call has returned.

Closing a handle marks it closed (queued callbacks for it are then skipped) and waits until a
callback already running for it has returned; from inside that same callback it does not wait,
so a callback may close its own handle without deadlocking.

An item may carry a ``finished`` event, set once the item has run or been skipped: an exit
wait uses it so that it returns only after the exit callback it raced with (see
computecore.py ``wait_exit``).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

#: Upper bound on how long a close waits for a running callback of its handle.
DRAIN_TIMEOUT = 60.0

#: (owner, still wanted?, call, finished event or None)
_Item = tuple[int, Callable[[], bool], Callable[[], None], threading.Event | None]


class Dispatcher:
    """One worker thread running callbacks in the order they were posted."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._cond = threading.Condition()
        self._running: int | None = None
        self.posted = 0
        self._thread = threading.Thread(target=self._run, name="pyhcs-emu-callbacks", daemon=True)
        self._thread.start()

    def post(
        self,
        owner: int,
        still_wanted: Callable[[], bool],
        call: Callable[[], None],
        finished: threading.Event | None = None,
    ) -> None:
        """Queue ``call`` for handle ``owner``; skipped if ``still_wanted()`` is then False.
        ``finished`` is set once the call has returned or was skipped."""
        self._queue.put((owner, still_wanted, call, finished))

    def in_callback(self) -> bool:
        return threading.current_thread() is self._thread

    def drain(self, owner: int) -> bool:
        """Wait until no callback of ``owner`` is running (not when called from one)."""
        if self.in_callback():
            return True
        with self._cond:
            return self._cond.wait_for(lambda: self._running != owner, DRAIN_TIMEOUT)

    def flush(self, timeout: float) -> bool:
        """Wait until everything posted so far has run (tests and shutdown)."""
        if self.in_callback():
            return True
        done = threading.Event()
        self._queue.put((0, lambda: True, done.set, None))
        return done.wait(timeout)

    def stop(self) -> None:
        self._queue.put(None)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            owner, still_wanted, call, finished = item
            try:
                with self._cond:
                    if not still_wanted():
                        continue
                    self._running = owner
                try:
                    call()
                finally:
                    with self._cond:
                        self._running = None
                        self._cond.notify_all()
            finally:
                if finished is not None:
                    finished.set()
