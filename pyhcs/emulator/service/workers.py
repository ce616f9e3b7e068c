"""Reusable service threads for work that may block: requests that wait (stop a system, wait
for an exit), the watcher of each host process, terminate-on-last-close, directory removal.

Starting a ``threading.Thread`` waits until the new thread has run, which under load costs the
starting thread a scheduling round trip (a lifecycle started three: ~1.3 ms each on a busy
2-CPU machine, measured with cProfile in the session thread). Here a task goes to an idle worker
when there is one; a new thread is started only when every worker is busy, so a blocking task
never waits behind another one. Workers idle for ``IDLE_TIMEOUT`` seconds exit.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Any, Final

log = logging.getLogger("pyhcs.emulator.service")

#: How long an idle worker waits for a task before it exits.
IDLE_TIMEOUT: Final = 30.0

_Task = tuple[str, Callable[..., None], tuple[Any, ...]]


class Workers:
    """A pool that grows to as many threads as tasks run at once and never queues a task
    behind a running one."""

    def __init__(self, idle_timeout: float = IDLE_TIMEOUT) -> None:
        self._lock = threading.Lock()
        #: Workers waiting for a task that no submitted task has claimed yet.
        self._idle = 0
        self._tasks: queue.SimpleQueue[_Task] = queue.SimpleQueue()
        self._idle_timeout = idle_timeout

    def run(self, name: str, function: Callable[..., None], *args: Any) -> None:
        """Run ``function(*args)`` on a worker (named ``name`` while it runs)."""
        with self._lock:
            reuse = self._idle > 0
            if reuse:
                self._idle -= 1
        self._tasks.put((name, function, args))
        if not reuse:
            threading.Thread(target=self._work, name=name, daemon=True).start()

    def _work(self) -> None:
        thread = threading.current_thread()
        while True:
            try:
                name, function, args = self._tasks.get(timeout=self._idle_timeout)
            except queue.Empty:
                with self._lock:
                    if self._idle > 0:  # nobody counts on this worker: leave
                        self._idle -= 1
                        return
                continue  # a task was submitted for this worker: it is on its way
            thread.name = name
            try:
                function(*args)
            except Exception:  # a failed task must not take the worker (or the service) down
                log.exception("service task %s failed", name)
            thread.name = "pyhcs-emu-idle"
            with self._lock:
                self._idle += 1


#: The service's pool (one per process: the service is the only user).
workers = Workers()
