"""One HCS call through an operation, awaited on an event loop: no thread waits for it.

The blocking form (`pyhcs.operations.run`) parks a thread in ``HcsWaitForOperationResult``.
Here an operation completes through its completion callback instead:

1. `run` registers a context key (`pyhcs.callbacks`) for an `_Operation` record, creates the
   operation with the ``HCS_OPERATION_COMPLETION`` trampoline and makes the call.
2. HCS completes the operation on one of its threads, possibly before the call has returned.
   The record's handler only does ``loop.call_soon_threadsafe(record.finish)``.
3. On the loop, ``finish`` reads the outcome with ``HcsGetOperationResult[AndProcessInfo]``
   (the operation is done: it does not block), closes the operation, then drops the key (in
   that order: the key stays registered while HCS may still call with it) and resolves the
   awaiting future.
4. Until ``finish`` ran, a module-level set keeps the record alive with the operation, its
   out-parameters and every string the call was given, whatever happened to the awaiting
   task. Cancelling that task cancels the HCS operation (``HcsCancelOperation``) and waits, for
   at most `CANCEL_GRACE`, for the cancellation to land; a result that still arrives later is
   released (std pipes closed) by ``finish``, never handed to nobody and never freed early.
5. A timeout cancels the same way and raises `OperationTimeoutError` once the operation ended
   (a success that raced the cancellation is kept), or after the grace if it does not end.
6. A loop closed with operations pending cannot run ``finish``: the handler then finishes the
   record on HCS's thread (``HcsGetOperationResult`` does not block, and HCS documents that an
   operation may be closed from within its callback). A completion handed to a loop that
   closed before running it is finished by the next `run` on any loop (or `sweep`).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import Any

from pyhcs import callbacks
from pyhcs import hresult as hr
from pyhcs.errors import OperationTimeoutError
from pyhcs.operations import CANCEL_GRACE, Outcome, Where
from pyhcs.raw import INVALID_HANDLE_VALUE, ffi, lib
from pyhcs.raw.strings import take_wide
from pyhcs.timeouts import TimeoutClass, resolve

__all__ = ["CANCEL_GRACE", "drain", "pending", "run", "sweep"]

log = logging.getLogger("pyhcs.aio")

_lock = threading.Lock()
#: The records not finished yet, by the loop they were started on.
_inflight: dict[asyncio.AbstractEventLoop, set[_Operation]] = {}


def pending() -> int:
    """How many operations are started and not yet finished (closed and their key dropped)."""
    with _lock:
        return sum(len(records) for records in _inflight.values())


def sweep() -> int:
    """Finish the operations whose completion reached a loop that closed before running it;
    how many there were. `run` does this on every call (a look per loop, not per record)."""
    with _lock:
        stranded = [
            record
            for loop, records in _inflight.items()
            if loop.is_closed()
            for record in records
            if record.completed
        ]
    for record in stranded:
        record.finish(deliver=False)
    return len(stranded)


async def drain(timeout: float | None = None) -> None:
    """Wait until every operation started on this loop has ended and been closed: after
    cancelling tasks whose cancellation could not land at once, before closing the loop.
    `OperationTimeoutError` after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    with _lock:
        landed = [record.landed for record in _inflight.get(loop, ())]
    if not landed:
        return
    try:
        await asyncio.wait_for(asyncio.gather(*map(asyncio.shield, landed)), timeout)
    except asyncio.TimeoutError:
        raise OperationTimeoutError(
            f"{len(landed)} operations did not end within {timeout} s", operation="drain"
        ) from None


def _retrieve(future: asyncio.Future[Any]) -> None:
    """Mark a future's exception as seen: an abandoned operation's error is not a bug."""
    if not future.cancelled():
        future.exception()


def release_streams(info: Any) -> None:
    """Close the std pipe handles of an ``HCS_PROCESS_INFORMATION`` nobody will take."""
    for name in ("StdInput", "StdOutput", "StdError"):
        handle = getattr(info, name)
        if handle not in (ffi.NULL, INVALID_HANDLE_VALUE):
            lib.CloseHandle(handle)


class _Operation:
    """One started operation and everything HCS may use until it completes."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, where: Where, keep: tuple[Any, ...], info: bool
    ) -> None:
        self.loop = loop
        self.where = where
        self.keep = keep  # the call's strings and out-parameters: alive until finish
        self.info = ffi.new("HCS_PROCESS_INFORMATION *") if info else None
        self.future: asyncio.Future[Outcome] = loop.create_future()
        self.future.add_done_callback(_retrieve)
        self.landed: asyncio.Future[None] = loop.create_future()
        self.op: Any = ffi.NULL
        self.key = 0
        self.completed = False  # set on HCS's thread
        self.timeout: float | None = None
        self.timed_out = False
        self.abandoned = False
        self._finished = False
        self._finish_lock = threading.Lock()
        self._grace: asyncio.TimerHandle | None = None

    # -- starting --------------------------------------------------------------------------

    def begin(self, start: Callable[[Any], int]) -> None:
        """Create the operation and make the call; the typed error if HCS refused it (then
        nothing is pending)."""
        self.key = callbacks.register(self._on_complete)
        self.op = lib.HcsCreateOperation(
            callbacks.context(self.key), callbacks.trampoline("HCS_OPERATION_COMPLETION")
        )
        if self.op == ffi.NULL:
            callbacks.unregister(self.key)
            raise self.where.error(hr.E_OUTOFMEMORY, message="HcsCreateOperation returned NULL")
        with _lock:
            _inflight.setdefault(self.loop, set()).add(self)
        try:
            accepted = hr.to_unsigned(start(self.op))
        except BaseException:
            if self._claim():
                self._close(deliver=False)  # nothing was started (the call was never made)
            raise
        if hr.failed(accepted):
            if self._claim():
                self._close(deliver=False)  # refused: HCS will not complete it
            raise self.where.error(accepted)

    # -- HCS's thread ----------------------------------------------------------------------

    def _on_complete(self, _operation: Any) -> None:
        self.completed = True
        try:
            self.loop.call_soon_threadsafe(self.finish)
        except RuntimeError:  # the loop is closed: nobody will run it there
            self.finish(deliver=False)

    # -- finishing (the loop, or HCS's thread once the loop is gone) -----------------------

    def _claim(self) -> bool:
        """True for the one caller that gets to finish the record."""
        with self._finish_lock:
            if self._finished:
                return False
            self._finished = True
            return True

    def _close(self, *, deliver: bool) -> None:
        """Close the operation, then drop its key (HCS may call with it until the close)."""
        lib.HcsCloseOperation(self.op)
        callbacks.unregister(self.key)
        with _lock:
            records = _inflight.get(self.loop, set())
            records.discard(self)
            if not records:
                _inflight.pop(self.loop, None)
        if self._grace is not None:
            self._grace.cancel()
        if deliver and not self.landed.done():
            self.landed.set_result(None)

    def finish(self, *, deliver: bool = True) -> None:
        """Take the outcome of the completed operation, close it, hand the outcome on (or
        release it when nobody waits any more)."""
        if not self._claim():
            return
        out = ffi.new("PWSTR *")
        try:
            if self.info is None:
                code = lib.HcsGetOperationResult(self.op, out)
            else:
                code = lib.HcsGetOperationResultAndProcessInfo(self.op, self.info, out)
            code = hr.to_unsigned(code)
            document = take_wide(out[0])
        finally:
            self._close(deliver=deliver)
        error: Exception | None = None
        if self.timed_out and code != hr.S_OK:
            error = self.where.timeout_error(self.timeout)
        elif hr.failed(code):
            error = self.where.error(code, document)
        if deliver and not self.abandoned and not self.future.done():
            if error is None:
                self.future.set_result(Outcome(document, self.info))
            else:
                self.future.set_exception(error)
            return
        log.debug("%s ended after its caller left: %s", self.where.operation, hr.describe(code))
        if error is None and self.info is not None:
            release_streams(self.info)

    # -- the loop's side -------------------------------------------------------------------

    def cancel(self) -> int:
        """HcsCancelOperation (E_NOTIMPL on hosts without it); its HRESULT."""
        with self._finish_lock:
            if self._finished:
                return hr.S_OK
            return hr.to_unsigned(lib.HcsCancelOperation(self.op))

    def time_out(self) -> None:
        """The timeout of the call passed: cancel, and give the cancellation a grace."""
        if self.future.done():
            return
        self.timed_out = True
        code = self.cancel()
        grace = 0.0 if code == hr.E_NOTIMPL else CANCEL_GRACE
        self._grace = self.loop.call_later(grace, self._give_up)

    def _give_up(self) -> None:
        if self.future.done():
            return
        self.abandoned = True
        detail = "; the cancellation has not landed yet (pyhcs closes it when it does)"
        self.future.set_exception(self.where.timeout_error(self.timeout, detail))

    async def abandon(self) -> None:
        """The awaiting task was cancelled: cancel the HCS operation and wait (at most
        CANCEL_GRACE) for it to end; what it still produces is released by `finish`."""
        self.abandoned = True
        if self.future.done():
            if not self.future.cancelled() and self.future.exception() is None:
                info = self.future.result().process_info
                if info is not None:
                    release_streams(info)
            return
        if self.cancel() == hr.E_NOTIMPL:
            return  # this host cannot cancel: finish closes it whenever it completes
        try:
            await asyncio.wait_for(asyncio.shield(self.landed), CANCEL_GRACE)
        except asyncio.TimeoutError:  # (not yet the builtin TimeoutError on Python 3.10)
            log.warning("%s: cancelled but not ended after %s s", self.where, CANCEL_GRACE)


async def run(
    start: Callable[[Any], int],
    where: Where,
    kind: TimeoutClass,
    timeout: float | None = None,
    *,
    keep: tuple[Any, ...] = (),
    process_info: bool = False,
) -> Outcome:
    """Make one call that takes an operation and await its outcome; raises the typed error
    of its failure, `OperationTimeoutError` after the timeout of ``kind`` (or ``timeout``).
    ``keep`` holds what ``start`` hands HCS (strings, out-parameters) until the operation
    ended."""
    seconds = resolve(kind, timeout)
    loop = asyncio.get_running_loop()
    sweep()
    record = _Operation(loop, where, keep, process_info)
    record.timeout = seconds
    record.begin(start)
    timer = None if seconds is None else loop.call_later(seconds, record.time_out)
    try:
        return await asyncio.shield(record.future)
    except asyncio.CancelledError:
        await record.abandon()
        raise
    finally:
        if timer is not None:
            timer.cancel()
