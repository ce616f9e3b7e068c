"""Ownership of one HCS handle by one Python object: used only while open, closed exactly once.

Close order (as hcsshim learned it): stop accepting calls, cancel the operations of calls still
in flight and wait for those calls to return, close the HCS handle (which unregisters its
callback and waits for callbacks still running on it) without holding any lock, then let the
owner drop its callback key and wake its waiters.

So ``close`` during a pending call is prompt where HCS cancels (the call raises
OperationCancelledError, naming the close), and bounded by that call's own timeout where it
does not (``HcsCancelOperation`` is ``E_NOTIMPL`` on some hosts). It never closes the handle
under a call that may still use it: closing a handle under a running call crashed
computecore.dll for hcsshim.

A handle nobody closed is closed by a ``weakref.finalize`` safety net that warns
(``ResourceWarning``): kubelet once leaked gigabytes by forgetting to close.
"""

from __future__ import annotations

import itertools
import threading
import warnings
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from pyhcs.errors import InvalidHandleError

_leaks_lock = threading.Lock()
_leaks: list[str] = []


def _leaked(what: str, value: Any, close: Callable[[Any], Any], after: Callable[[], None]) -> None:
    with _leaks_lock:
        _leaks.append(what)
    warnings.warn(f"{what} was never closed; closing it now", ResourceWarning, stacklevel=2)
    close(value)
    after()


def take_leaks() -> list[str]:
    """What the safety net had to close since the last call (for `pyhcs.testing`)."""
    with _leaks_lock:
        leaks = list(_leaks)
        _leaks.clear()
    return leaks


class OwnedHandle:
    """An HCS handle owned by ``owner``; ``close`` is called once, then ``after``."""

    def __init__(
        self,
        owner: object,
        value: Any,
        close: Callable[[Any], Any],
        what: str,
        after: Callable[[], None],
        *,
        system_id: str | None = None,
        pid: int | None = None,
    ) -> None:
        self.what = what
        self._context: dict[str, Any] = {"system_id": system_id, "pid": pid}
        self._value = value
        self._close = close
        self._after = after
        # A plain Lock, taken directly around each call (`_Use`): nothing re-enters it, and
        # an RLock or the Condition's own ``with`` costs more on every call.
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._active = 0
        self._closed = False
        #: Cancel functions of the operations that calls in flight are waiting for.
        self._pending: dict[int, Callable[[], object]] = {}
        self._tokens = itertools.count()
        self._finalizer = weakref.finalize(owner, _leaked, what, value, close, after)

    @property
    def closed(self) -> bool:
        with self._cond:
            return self._closed

    def use(self, operation: str) -> _Use:
        """A context manager giving the raw handle for one call; InvalidHandleError once
        closed. (A small class rather than a generator: it runs around every HCS call.)"""
        return _Use(self, operation)

    @contextmanager
    def cancelled_on_close(self, cancel: Callable[[], object]) -> Iterator[None]:
        """While the block runs, `close` calls ``cancel`` (at once if closing has begun).
        ``cancel`` runs under this handle's lock, so it never races the block's end: it must
        be quick and must not wait for callbacks (``HcsCancelOperation`` of an operation that
        has no completion callback)."""
        with self._cond:
            if self._closed:
                cancel()
            token = next(self._tokens)
            self._pending[token] = cancel
        try:
            yield
        finally:
            with self._cond:
                del self._pending[token]

    def close(self) -> bool:
        """Close once (later calls do nothing and return False). Cancels the operations calls
        in flight wait for, then waits for those calls; each is bounded by its own timeout."""
        with self._cond:
            if self._closed:
                return False
            self._closed = True  # from here on a call ending in _Use.__exit__ wakes us
            for cancel in self._pending.values():
                cancel()
            while self._active:
                self._cond.wait()
        self._finalizer.detach()
        try:
            self._close(self._value)
        finally:
            self._after()
        return True


class _Use:
    """One call's use of an `OwnedHandle`: counted in on entry, out on exit (waking a `close`
    that waits for the calls in flight)."""

    __slots__ = ("_handle", "_operation")

    def __init__(self, handle: OwnedHandle, operation: str) -> None:
        self._handle = handle
        self._operation = operation

    def __enter__(self) -> Any:
        handle = self._handle
        with handle._lock:
            if handle._closed:
                raise InvalidHandleError(
                    f"{handle.what} is closed", operation=self._operation, **handle._context
                )
            handle._active += 1
        return handle._value

    def __exit__(self, *_exc: object) -> None:
        handle = self._handle
        with handle._lock:
            handle._active -= 1
            if handle._closed:  # only a closing handle has someone waiting for this
                handle._cond.notify_all()
