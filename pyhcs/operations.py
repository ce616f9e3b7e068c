"""One HCS call through an operation, synchronously: start it, wait bounded, cancel on timeout.

Every asynchronous HCS function takes an ``HCS_OPERATION``; its own HRESULT only says whether
the request was accepted, and the outcome (HRESULT plus result document) comes from the
operation. `run` creates the operation, starts the call, waits with
``HcsWaitForOperationResult(timeout)``, and on a timeout cancels (``HcsCancelOperation``) and
waits a bounded grace for the cancellation to land before it raises: the caller's thread never
walks away from a request that is still running on its behalf. The operation is closed once, in
every case (closing a still-pending one is allowed: HCS finishes it and drops the result).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext as _none
from dataclasses import dataclass
from typing import Any, Final, NamedTuple

from pyhcs import hresult as hr
from pyhcs.errors import OperationTimeoutError, error_from_hresult
from pyhcs.handle import OwnedHandle
from pyhcs.raw import ffi, lib
from pyhcs.raw.strings import take_wide
from pyhcs.timeouts import TimeoutClass, resolve, to_ms

#: How long a cancelled operation may take to finish before pyhcs stops waiting for it.
CANCEL_GRACE: Final = 10.0


@dataclass(slots=True)
class Outcome:
    """What a finished operation returned."""

    document: str | None
    process_info: Any = None  # HCS_PROCESS_INFORMATION * (only when asked for)


class Where(NamedTuple):
    """What an error names: the operation and the object it concerned. (A named tuple: one is
    made for every call, and a frozen dataclass costs twice as much to build.)"""

    operation: str
    system_id: str | None = None
    pid: int | None = None

    def error(
        self, code: int, document: str | None = None, message: str | None = None
    ) -> Exception:
        return error_from_hresult(
            code,
            operation=self.operation,
            system_id=self.system_id,
            pid=self.pid,
            document=document,
            message=message,
        )

    def timeout_error(self, seconds: float | None, detail: str = "") -> OperationTimeoutError:
        """The error of an operation that ran out of time and was cancelled."""
        return OperationTimeoutError(
            f"{self.operation} did not finish within {seconds} s and was cancelled{detail}",
            operation=self.operation,
            system_id=self.system_id,
            pid=self.pid,
        )


def _wait(op: Any, seconds: float | None, info: Any) -> tuple[int, str | None]:
    out = ffi.new("PWSTR *")
    if info is None:
        code = lib.HcsWaitForOperationResult(op, to_ms(seconds), out)
    else:
        code = lib.HcsWaitForOperationResultAndProcessInfo(op, to_ms(seconds), info, out)
    return hr.to_unsigned(code), take_wide(out[0])


def run(
    start: Callable[[Any], int],
    where: Where,
    kind: TimeoutClass,
    timeout: float | None = None,
    *,
    process_info: bool = False,
    owner: OwnedHandle | None = None,
) -> Outcome:
    """Run one call that takes an operation; raises the typed error of its failure. With
    ``owner`` (the handle the call is made on), closing that handle cancels the operation."""
    seconds = resolve(kind, timeout)
    op = lib.HcsCreateOperation(ffi.NULL, ffi.NULL)
    if op == ffi.NULL:
        raise where.error(hr.E_OUTOFMEMORY, message="HcsCreateOperation returned NULL")
    info = ffi.new("HCS_PROCESS_INFORMATION *") if process_info else None
    try:
        accepted = hr.to_unsigned(start(op))
        if hr.failed(accepted):
            raise where.error(accepted)
        with owner.cancelled_on_close(lambda: lib.HcsCancelOperation(op)) if owner else _none():
            code, document = _wait(op, seconds, info)
        if code == hr.HCS_E_OPERATION_ALREADY_CANCELLED and owner is not None and owner.closed:
            raise where.error(
                code, document, message=f"cancelled: {owner.what} was closed while it was pending"
            )
        if code == hr.HCS_E_OPERATION_TIMEOUT:
            lib.HcsCancelOperation(op)  # E_NOTIMPL on older hosts: then the grace below runs out
            code, document = _wait(op, CANCEL_GRACE, info)
            if code != hr.S_OK:  # it did not finish after all (a success that raced is kept)
                raise where.timeout_error(seconds)
        if hr.failed(code):
            raise where.error(code, document)
        return Outcome(document, info)
    finally:
        lib.HcsCloseOperation(op)
