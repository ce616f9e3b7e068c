"""Fault injection for tests: make a chosen function fail, stall, or drop the connection.

Faults live in the client half of the process that sets them, keyed by the C function name, and
are consulted at the top of that function. For a function that takes an operation the failure is
reported through the operation (the call itself is accepted), as HCS reports runtime failures.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

#: Upper bound on how long a held call waits for its test to release it.
HOLD_TIMEOUT = 30.0


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

    @property
    def stalls(self) -> bool:
        return bool(self.delay) or self.hold is not None

    def stall(self) -> None:
        """Wait until released (bounded by HOLD_TIMEOUT), then for ``delay`` seconds."""
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
