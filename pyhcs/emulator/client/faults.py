"""Fault injection for tests: make a chosen function fail, stall, or drop the connection.

Faults live in the client half of the process that sets them, keyed by the C function name, and
are consulted at the top of that function. For a function that takes an operation the failure is
reported through the operation (the call itself is accepted), as HCS reports runtime failures.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

#: Upper bound on how long a held call waits for its test to release it.
HOLD_TIMEOUT = 30.0


class Hold(threading.Event):
    """The release switch of held calls: ``set()`` releases them all. Held op-taking calls wait
    here as queued actions, not as a thread each, so a test can keep a thousand operations
    pending without a thousand threads; one timer thread per hold bounds them by HOLD_TIMEOUT."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._actions: list[Callable[[], None]] = []
        self._timer: threading.Timer | None = None

    def later(self, action: Callable[[], None]) -> None:
        """Run ``action`` once released (at once if already released)."""
        with self._lock:
            if not self.is_set():
                self._actions.append(action)
                if self._timer is None:
                    self._timer = threading.Timer(HOLD_TIMEOUT, self.set)
                    self._timer.daemon = True
                    self._timer.start()
                return
        action()

    def set(self) -> None:
        """Release: the queued actions run in order on one thread of their own (never on the
        caller's, which may be an event loop or a callback)."""
        super().set()
        with self._lock:
            actions, self._actions = self._actions, []
            timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()
        if actions:

            def run() -> None:
                for action in actions:
                    action()

            threading.Thread(target=run, name="pyhcs-emu-release", daemon=True).start()


@dataclass
class Fault:
    """What to do to one function: fail with ``hresult`` (+ ``document``), delay, hold, or
    drop. ``hold`` stalls the call (its request, for an op-taking call) until the test sets the
    event, so a test can keep an operation pending without depending on timing."""

    hresult: int | None = None
    document: str | None = None
    delay: float = 0.0
    drop_connection: bool = False
    count: int | None = None  # None: every call; n: the next n calls
    hold: threading.Event | None = None
    #: Set once a call is stalled by this fault (so a test knows the call is pending).
    entered: threading.Event = field(default_factory=threading.Event)

    @property
    def stalls(self) -> bool:
        return bool(self.delay) or self.hold is not None

    def stall(self) -> None:
        """Wait until released (bounded by HOLD_TIMEOUT), then for ``delay`` seconds."""
        self.entered.set()
        if self.hold is not None:
            self.hold.wait(HOLD_TIMEOUT)
        if self.delay:
            threading.Event().wait(self.delay)


class Faults:
    """The active faults of this client, thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: dict[str, Fault] = {}

    def inject(self, function: str, fault: Fault) -> None:
        with self._lock:
            self._faults[function] = fault

    def clear(self, function: str | None = None) -> None:
        with self._lock:
            if function is None:
                self._faults.clear()
            else:
                self._faults.pop(function, None)

    def take(self, function: str) -> Fault | None:
        """The fault for this call, if any (consuming one of a counted fault)."""
        if not self._faults:
            return None
        with self._lock:
            fault = self._faults.get(function)
            if fault is None:
                return None
            if fault.count is not None:
                fault.count -= 1
                if fault.count <= 0:
                    del self._faults[function]
            return fault
