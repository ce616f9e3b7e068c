"""The exceptions pyhcs raises, and the one place that maps an HRESULT to one of them.

Every failure carries what a user needs to act on it: the HRESULT and its name, the operation
and the system id / pid it concerned, HCS's own error text and the parsed ``ErrorEvents`` and
``Attribution`` of the ResultError document, plus a remediation hint where one is known. Callers
branch on classes (or the ``is_*`` predicates), never on message text. Legacy 0xC037xxxx codes
map to the same classes as their 0x8037xxxx twins.

A result document is evidence, not authority: when it is missing, not JSON, or names another
HRESULT, the error still has the class of the HRESULT the call returned.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pyhcs import hresult as hr

__all__ = [
    "AccessDeniedError",
    "AlreadyExistsError",
    "AlreadyStoppedError",
    "AttributionRecord",
    "BackendError",
    "CallbackAlreadySetError",
    "CdefsNotFoundError",
    "DllNotFoundError",
    "ErrorEvent",
    "ExportNotFoundError",
    "FeatureMissingError",
    "GuestConnectionError",
    "HcsError",
    "ImageMismatchError",
    "InvalidArgumentError",
    "InvalidHandleError",
    "InvalidJsonError",
    "InvalidLayerError",
    "InvalidStateError",
    "NotFoundError",
    "NotSupportedError",
    "OperationCancelledError",
    "OperationError",
    "OperationNotStartedError",
    "OperationPendingError",
    "OperationTimeoutError",
    "ProcessAlreadyStoppedError",
    "ResultError",
    "ServiceDisconnectError",
    "SystemNotFoundError",
    "SystemTerminatedError",
    "check",
    "error_class_for",
    "error_from_hresult",
    "is_access_denied",
    "is_already_exists",
    "is_already_stopped",
    "is_not_exist",
    "is_not_supported",
    "is_operation_pending",
    "is_service_disconnect",
    "is_timeout",
    "parse_result_error",
]


@dataclass(frozen=True)
class ErrorEvent:
    """One entry of a ResultError's ``ErrorEvents``: where inside HCS the failure was logged."""

    message: str | None = None
    stack_trace: str | None = None
    provider: str | None = None
    event_id: int | None = None
    flags: int | None = None
    source: str | None = None
    data: tuple[Mapping[str, Any], ...] = ()


@dataclass(frozen=True)
class AttributionRecord:
    """One ``Attribution`` entry: a one-of whose single key (``kind``) says who caused what."""

    kind: str
    detail: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ResultError:
    """The parts of a ResultError document pyhcs understands, plus the raw text it came from."""

    error: int | None = None
    message: str | None = None
    events: tuple[ErrorEvent, ...] = ()
    attribution: tuple[AttributionRecord, ...] = ()
    document: str | None = None


def _opt_str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _opt_int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def parse_result_error(document: str | bytes | None) -> ResultError:
    """Parse a ResultError document as far as it is one; never raises.

    HCS may return no document, a non-JSON string, or JSON of another shape; whatever is
    recognisable is kept and the rest is left to the raw ``document``.
    """
    if document is None:
        return ResultError()
    text = document.decode("utf-8", "replace") if isinstance(document, bytes) else document
    try:
        parsed = json.loads(text)
    except ValueError:
        return ResultError(document=text)
    if not isinstance(parsed, dict):
        return ResultError(document=text)
    events = []
    raw_events = parsed.get("ErrorEvents")
    if isinstance(raw_events, list):
        for item in raw_events:
            if not isinstance(item, dict):
                continue
            raw_data = item.get("Data")
            data = (
                tuple(d for d in raw_data if isinstance(d, dict))
                if isinstance(raw_data, list)
                else ()
            )
            events.append(
                ErrorEvent(
                    message=_opt_str(item.get("Message")),
                    stack_trace=_opt_str(item.get("StackTrace")),
                    provider=_opt_str(item.get("Provider")),
                    event_id=_opt_int(item.get("EventId")),
                    flags=_opt_int(item.get("Flags")),
                    source=_opt_str(item.get("Source")),
                    data=data,
                )
            )
    attribution = []
    raw_attribution = parsed.get("Attribution")
    if isinstance(raw_attribution, list):
        for record in raw_attribution:
            if isinstance(record, dict) and len(record) == 1:
                ((kind, detail),) = record.items()
                attribution.append(
                    AttributionRecord(kind=kind, detail=detail if isinstance(detail, dict) else {})
                )
    error = _opt_int(parsed.get("Error"))
    return ResultError(
        error=hr.to_unsigned(error) if error is not None else None,
        message=_opt_str(parsed.get("ErrorMessage")),
        events=tuple(events),
        attribution=tuple(attribution),
        document=text,
    )


class HcsError(Exception):
    """Root of every pyhcs error: an HRESULT with the context it happened in.

    ``message`` is HCS's own text (the ResultError ``ErrorMessage`` when there is one, else the
    system message of the HRESULT); ``str(error)`` renders operation, id, message, code, the
    error events and the hint.
    """

    #: The HRESULT an instance gets when none is given.
    default_hresult: ClassVar[int] = hr.E_FAIL
    #: The (canonical, unsigned) HRESULTs that map to this class in `error_from_hresult`.
    codes: ClassVar[frozenset[int]] = frozenset()
    #: A remediation hint shared by the whole class.
    default_hint: ClassVar[str | None] = None

    def __init__(
        self,
        message: str | None = None,
        *,
        hresult: int | None = None,
        operation: str | None = None,
        system_id: str | None = None,
        pid: int | None = None,
        document: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.hresult: int = hr.to_unsigned(self.default_hresult if hresult is None else hresult)
        self.operation = operation
        self.system_id = system_id
        self.pid = pid
        self.result = parse_result_error(document)
        self.message: str = message or self.result.message or hr.message(self.hresult)
        self.hint: str | None = hint or _HINTS.get(hr.canonical(self.hresult)) or self.default_hint
        super().__init__(self.message)

    @property
    def name(self) -> str:
        """Symbolic name of the HRESULT (``HCS_E_INVALID_STATE``), or its hex value."""
        return hr.name(self.hresult)

    @property
    def document(self) -> str | None:
        """The raw result document HCS returned with the failure, if any."""
        return self.result.document

    @property
    def error_events(self) -> tuple[ErrorEvent, ...]:
        return self.result.events

    @property
    def attribution(self) -> tuple[AttributionRecord, ...]:
        return self.result.attribution

    def _context(self) -> dict[str, Any]:
        return {
            "hresult": self.hresult,
            "operation": self.operation,
            "system_id": self.system_id,
            "pid": self.pid,
            "document": self.document,
            "hint": self.hint,
        }

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only context would be lost by the default pickling of exceptions.
        return (_rebuild, (type(self), self.message, self._context()))

    def __str__(self) -> str:
        where = " ".join(
            part
            for part in (
                self.operation,
                self.system_id,
                f"pid {self.pid}" if self.pid is not None else None,
            )
            if part
        )
        text = f"{where}: {self.message}" if where else self.message
        text = f"{text} ({hr.describe(self.hresult)})"
        for event in self.result.events:
            details = [f"Event Detail: {event.message or ''}"]
            if event.stack_trace:
                details.append(f"Stack Trace: {event.stack_trace}")
            if event.provider:
                details.append(f"Provider: {event.provider}")
            if event.event_id is not None:
                details.append(f"EventID: {event.event_id}")
            if event.source:
                details.append(f"Source: {event.source}")
            text += "\n[" + " ".join(details) + "]"
        if self.hint:
            text += f"\nhint: {self.hint}"
        return text

    def _fields(self) -> list[tuple[str, str]]:
        """What an error names, as (label, text) pairs, in reading order, set ones only."""
        fields = [("HRESULT", hr.describe(self.hresult))]
        if self.operation:
            fields.append(("operation", self.operation))
        if self.system_id is not None:
            fields.append(("system", self.system_id))
        if self.pid is not None:
            fields.append(("pid", str(self.pid)))
        fields.append(("message", self.message))
        fields.extend(("event", event.message) for event in self.result.events if event.message)
        if self.hint:
            fields.append(("hint", self.hint))
        return fields

    def __repr__(self) -> str:
        parts = [f"{self.name}"] + [
            f"{key}={value!r}"
            for key, value in (
                ("operation", self.operation),
                ("system_id", self.system_id),
                ("pid", self.pid),
                ("message", self.message),
            )
            if value is not None
        ]
        return f"{type(self).__name__}({', '.join(parts)})"

    def _repr_html_(self) -> str:
        """For notebooks: one row per thing the error names."""
        from html import escape  # noqa: PLC0415 (notebooks only)

        rows = "".join(
            f"<tr><th>{escape(label)}</th><td>{escape(text)}</td></tr>"
            for label, text in self._fields()
        )
        return f"<table><caption>{escape(type(self).__name__)}</caption>{rows}</table>"


def _rebuild(cls: type[HcsError], message: str, context: dict[str, Any]) -> HcsError:
    extra = context.pop("extra", {})
    error = cls.__new__(cls)
    HcsError.__init__(error, message, **context)
    for key, value in extra.items():
        setattr(error, key, value)
    return error


# --- the classes callers branch on ---------------------------------------------------------


class NotFoundError(HcsError):
    """The object does not exist (or no longer does)."""

    default_hresult = hr.ERROR_NOT_FOUND
    codes = frozenset(
        {
            hr.ERROR_NOT_FOUND,
            hr.ERROR_FILE_NOT_FOUND,
            hr.ERROR_PATH_NOT_FOUND,
            hr.HCN_E_NETWORK_NOT_FOUND,
            hr.HCN_E_ENDPOINT_NOT_FOUND,
            hr.HCN_E_LAYER_NOT_FOUND,
            hr.HCN_E_SWITCH_NOT_FOUND,
            hr.HCN_E_SUBNET_NOT_FOUND,
            hr.HCN_E_ADAPTER_NOT_FOUND,
            hr.HCN_E_PORT_NOT_FOUND,
            hr.HCN_E_POLICY_NOT_FOUND,
            hr.HCN_E_VFP_PORTSETTING_NOT_FOUND,
            hr.HCN_E_SWITCH_EXTENSION_NOT_FOUND,
            hr.GCN_E_NETADAPTER_NOT_FOUND,
            hr.GCN_E_NETCOMPARTMENT_NOT_FOUND,
            hr.GCN_E_NETINTERFACE_NOT_FOUND,
        }
    )


class SystemNotFoundError(NotFoundError):
    """No compute system with that id (never created, or cleaned up after it stopped)."""

    default_hresult = hr.HCS_E_SYSTEM_NOT_FOUND
    codes = frozenset({hr.HCS_E_SYSTEM_NOT_FOUND})


class AlreadyExistsError(HcsError):
    """An object with that id or name exists already."""

    default_hresult = hr.HCS_E_SYSTEM_ALREADY_EXISTS
    codes = frozenset(
        {
            hr.HCS_E_SYSTEM_ALREADY_EXISTS,
            hr.ERROR_ALREADY_EXISTS,
            hr.HCN_E_NETWORK_ALREADY_EXISTS,
            hr.HCN_E_LAYER_ALREADY_EXISTS,
            hr.HCN_E_POLICY_ALREADY_EXISTS,
            hr.HCN_E_PORT_ALREADY_EXISTS,
            hr.HCN_E_ENDPOINT_ALREADY_ATTACHED,
            hr.HCN_E_ENDPOINT_NAMESPACE_ALREADY_EXISTS,
            hr.GCN_E_DEFAULTNAMESPACE_EXISTS,
        }
    )


class AlreadyStoppedError(HcsError):
    """The compute system is not running any more."""

    default_hresult = hr.HCS_E_SYSTEM_ALREADY_STOPPED
    codes = frozenset({hr.HCS_E_SYSTEM_ALREADY_STOPPED})


class ProcessAlreadyStoppedError(AlreadyStoppedError):
    """The process has exited already."""

    default_hresult = hr.HCS_E_PROCESS_ALREADY_STOPPED
    codes = frozenset({hr.HCS_E_PROCESS_ALREADY_STOPPED})


class InvalidStateError(HcsError):
    """The request is not valid in the system's current state (e.g. Start when Running)."""

    default_hresult = hr.HCS_E_INVALID_STATE
    codes = frozenset({hr.HCS_E_INVALID_STATE, hr.ERROR_INVALID_STATE, hr.ERROR_BUSY})


class InvalidJsonError(HcsError, ValueError):
    """A JSON document was rejected; ``json_path`` names the offending value when known."""

    default_hresult = hr.HCS_E_INVALID_JSON
    codes = frozenset(
        {hr.HCS_E_INVALID_JSON, hr.HCN_E_INVALID_JSON, hr.HCN_E_INVALID_JSON_REFERENCE}
    )

    def __init__(
        self, message: str | None = None, *, json_path: str | None = None, **context: Any
    ) -> None:
        super().__init__(message, **context)
        self.json_path = json_path

    def _context(self) -> dict[str, Any]:
        return {**super()._context(), "extra": {"json_path": self.json_path}}


class OperationTimeoutError(HcsError, TimeoutError):
    """A wait ran out of time; the operation itself may still be running."""

    default_hresult = hr.HCS_E_OPERATION_TIMEOUT
    codes = frozenset(
        {
            hr.HCS_E_OPERATION_TIMEOUT,
            hr.HCS_E_CONNECTION_TIMEOUT,
            hr.ERROR_TIMEOUT,
            hr.GCN_E_NETADAPTER_TIMEOUT,
        }
    )


class AccessDeniedError(HcsError, PermissionError):
    """The caller may not do this."""

    default_hresult = hr.HCS_E_ACCESS_DENIED
    codes = frozenset({hr.HCS_E_ACCESS_DENIED, hr.E_ACCESSDENIED})


class ServiceDisconnectError(HcsError, ConnectionError):
    """The compute service went away (crashed, stopped, or the emulator service died)."""

    default_hresult = hr.HCS_E_SERVICE_DISCONNECT
    codes = frozenset(
        {
            hr.HCS_E_SERVICE_DISCONNECT,
            hr.RPC_S_SERVER_UNAVAILABLE,
            hr.RPC_S_CALL_FAILED,
            hr.HCN_E_MANAGER_STOPPED,
        }
    )


class NotSupportedError(HcsError):
    """The request is not supported for this system or on this host."""

    default_hresult = hr.ERROR_NOT_SUPPORTED
    codes = frozenset(
        {
            hr.ERROR_NOT_SUPPORTED,
            hr.E_NOTIMPL,
            hr.HCS_E_SYSTEM_NOT_CONFIGURED_FOR_OPERATION,
            hr.HCN_E_REQUEST_UNSUPPORTED,
            hr.HCN_E_MAPPING_NOT_SUPPORTED,
            hr.GCN_E_REQUEST_UNSUPPORTED,
        }
    )


class InvalidArgumentError(HcsError, ValueError):
    """An argument was rejected before anything was done."""

    default_hresult = hr.E_INVALIDARG
    codes = frozenset({hr.E_INVALIDARG, hr.E_POINTER, hr.ERROR_INVALID_DATA})


class InvalidHandleError(HcsError):
    """The handle is closed, stale or of the wrong kind."""

    default_hresult = hr.E_HANDLE
    codes = frozenset({hr.E_HANDLE})


class OperationError(HcsError):
    """Misuse of an HCS_OPERATION (its own state, not the system's)."""

    default_hresult = hr.HCS_E_OPERATION_ALREADY_STARTED
    codes = frozenset(
        {hr.HCS_E_OPERATION_ALREADY_STARTED, hr.HCS_E_OPERATION_RESULT_ALLOCATION_FAILED}
    )


class OperationPendingError(OperationError):
    """The operation has not finished yet."""

    default_hresult = hr.HCS_E_OPERATION_PENDING
    codes = frozenset({hr.HCS_E_OPERATION_PENDING, hr.ERROR_VMCOMPUTE_OPERATION_PENDING})


class OperationNotStartedError(OperationError):
    """The operation was never handed to an HCS call."""

    default_hresult = hr.HCS_E_OPERATION_NOT_STARTED
    codes = frozenset({hr.HCS_E_OPERATION_NOT_STARTED})


class OperationCancelledError(OperationError):
    """The operation was cancelled."""

    default_hresult = hr.HCS_E_OPERATION_ALREADY_CANCELLED
    codes = frozenset(
        {hr.HCS_E_OPERATION_ALREADY_CANCELLED, hr.ERROR_OPERATION_ABORTED, hr.E_ABORT}
    )


class CallbackAlreadySetError(OperationError):
    """An event callback is registered already, or operation callbacks are routed to it."""

    default_hresult = hr.HCS_E_OPERATION_SYSTEM_CALLBACK_ALREADY_SET
    codes = frozenset({hr.HCS_E_OPERATION_SYSTEM_CALLBACK_ALREADY_SET})


class SystemTerminatedError(HcsError):
    """The compute system died under the request (exited, crashed, forcefully stopped)."""

    default_hresult = hr.HCS_E_UNEXPECTED_EXIT
    codes = frozenset(
        {
            hr.HCS_E_TERMINATED_DURING_START,
            hr.HCS_E_UNEXPECTED_EXIT,
            hr.HCS_E_TERMINATED,
            hr.HCS_E_GUEST_CRITICAL_ERROR,
        }
    )


class GuestConnectionError(HcsError):
    """Host and guest could not talk (connect, protocol, unknown message)."""

    default_hresult = hr.HCS_E_CONNECT_FAILED
    codes = frozenset(
        {
            hr.HCS_E_CONNECT_FAILED,
            hr.HCS_E_CONNECTION_CLOSED,
            hr.HCS_E_UNKNOWN_MESSAGE,
            hr.HCS_E_UNSUPPORTED_PROTOCOL_VERSION,
            hr.HCS_E_PROTOCOL_ERROR,
        }
    )


class ImageMismatchError(HcsError):
    """The container image was built for another Windows version than the host's."""

    default_hresult = hr.HCS_E_IMAGE_MISMATCH
    codes = frozenset({hr.HCS_E_IMAGE_MISMATCH, hr.HCS_E_WINDOWS_INSIDER_REQUIRED})


class InvalidLayerError(HcsError):
    """A layer folder is not in a format HCS understands."""

    default_hresult = hr.HCS_E_INVALID_LAYER
    codes = frozenset({hr.HCS_E_INVALID_LAYER})


class FeatureMissingError(HcsError):
    """A Windows feature HCS needs is not installed or enabled on this host."""

    default_hresult = hr.HCS_E_SERVICE_NOT_AVAILABLE
    codes = frozenset({hr.HCS_E_HYPERV_NOT_INSTALLED, hr.HCS_E_SERVICE_NOT_AVAILABLE})
    default_hint = (
        "enable the Windows optional features 'Containers' and, for virtual machines and "
        "Hyper-V isolation, 'Microsoft-Hyper-V' (Enable-WindowsOptionalFeature -Online "
        "-FeatureName Containers,Microsoft-Hyper-V), then reboot"
    )


class BackendError(FeatureMissingError):
    """The selected backend cannot be used on this machine (raised on first use, not import)."""

    # The Windows-features hint of the parent class misleads off Windows, where the fix is the
    # emulator backend, not a feature to enable.
    default_hint = (
        FeatureMissingError.default_hint
        if sys.platform == "win32"
        else "off Windows pyhcs runs on the HCS emulator: unset PYHCS_BACKEND (or set "
        "PYHCS_BACKEND=emulator)"
    )


class EmulatorError(BackendError):
    """The HCS emulator service cannot be started or reached here (off Windows)."""

    default_hint = (
        "check the emulator's state directory and its service.log; 'pyhcs emulator status' "
        "shows what runs there, PYHCS_EMULATOR_DIR picks another directory"
    )


class UnsafeStateDirError(EmulatorError, PermissionError):
    """The emulator's state directory (or a file in it) could be controlled by another user:
    a symlink, owned by someone else, or writable by group or others."""

    default_hresult = hr.E_ACCESSDENIED
    default_hint = (
        "remove the path or set PYHCS_EMULATOR_DIR to a directory only you own (mode 0700); "
        "pyhcs never follows or repairs a state directory it did not make"
    )

    def __init__(self, message: str | None = None, *, path: str | None = None, **context: Any):
        super().__init__(message, **context)
        self.path = path

    def _context(self) -> dict[str, Any]:
        return {**super()._context(), "extra": {"path": self.path}}


class DllNotFoundError(BackendError):
    """An HCS DLL could not be loaded (raised by the native backend, with the DLL's name)."""

    default_hresult = hr.ERROR_MOD_NOT_FOUND
    # Mapped only where the loader raises it: ERROR_MOD_NOT_FOUND from an HCS call means
    # something else.

    def __init__(
        self, message: str | None = None, *, dll: str | None = None, **context: Any
    ) -> None:
        super().__init__(message, **context)
        self.dll = dll

    def _context(self) -> dict[str, Any]:
        return {**super()._context(), "extra": {"dll": self.dll}}


class ExportNotFoundError(BackendError):
    """The DLL is there but lacks this function (an older Windows build)."""

    default_hresult = hr.ERROR_PROC_NOT_FOUND
    # Never mapped from a returned code: hcsshim saw HcsShutdown return ERROR_PROC_NOT_FOUND
    # internally, which does not mean a missing export.

    def __init__(
        self,
        message: str | None = None,
        *,
        function: str | None = None,
        dll: str | None = None,
        **context: Any,
    ) -> None:
        super().__init__(message, **context)
        self.function = function
        self.dll = dll

    def _context(self) -> dict[str, Any]:
        return {**super()._context(), "extra": {"function": self.function, "dll": self.dll}}


class CdefsNotFoundError(HcsError):
    """The packaged C declarations are missing or damaged: the installation is broken."""

    default_hresult = hr.ERROR_FILE_NOT_FOUND
    default_hint = "reinstall pyhcs from its source tree (pip install --force-reinstall -e .)"


_HINTS: dict[int, str] = {
    hr.HCS_E_ACCESS_DENIED: "run elevated, or add the user to the 'Hyper-V Administrators' group",
    hr.E_ACCESSDENIED: "run elevated, or add the user to the 'Hyper-V Administrators' group",
    hr.HCS_E_IMAGE_MISMATCH: "use an image built for this host's Windows build, or run it with "
    "Hyper-V isolation",
    hr.HCS_E_WINDOWS_INSIDER_REQUIRED: "this image needs a Windows Insider build of the host",
    hr.HCS_E_SERVICE_DISCONNECT: "the compute service stopped; check that the vmcompute service "
    "(or the pyhcs emulator service) is running",
    hr.ERROR_NOT_SUPPORTED: "pause and save need a virtual machine or Hyper-V isolation; "
    "process-isolated containers do not support them",
}


def _build_class_map() -> dict[int, type[HcsError]]:
    table: dict[int, type[HcsError]] = {}
    pending: list[type[HcsError]] = [HcsError]
    while pending:
        cls = pending.pop()
        for code in cls.__dict__.get("codes", ()):
            if code in table:
                raise RuntimeError(f"{code:#x} is claimed by {table[code]} and {cls}")
            table[code] = cls
        pending.extend(cls.__subclasses__())
    return table


_CLASS_BY_CODE: dict[int, type[HcsError]] = _build_class_map()


def error_class_for(code: int) -> type[HcsError]:
    """The exception class an HRESULT maps to (HcsError for codes without a closer one)."""
    return _CLASS_BY_CODE.get(hr.canonical(code), HcsError)


def error_from_hresult(
    code: int,
    *,
    operation: str | None = None,
    system_id: str | None = None,
    pid: int | None = None,
    document: str | None = None,
    message: str | None = None,
) -> HcsError:
    """Build (not raise) the exception for a failed HRESULT and its optional result document.

    The HRESULT decides the class even when the document names another ``Error`` (HCS has been
    seen to disagree with itself; the returned code is what the call did).
    """
    cls = error_class_for(code)
    return cls(
        message, hresult=code, operation=operation, system_id=system_id, pid=pid, document=document
    )


def check(
    code: int,
    *,
    operation: str | None = None,
    system_id: str | None = None,
    pid: int | None = None,
    document: str | None = None,
) -> int:
    """Raise the mapped exception if ``code`` is a failure; return it (unsigned) otherwise."""
    if hr.failed(code):
        raise error_from_hresult(
            code, operation=operation, system_id=system_id, pid=pid, document=document
        )
    return hr.to_unsigned(code)


# --- predicates, for code that holds an exception or a bare HRESULT -------------------------


def _codes_of(error: BaseException | int) -> int | None:
    if isinstance(error, HcsError):
        return hr.canonical(error.hresult)
    if isinstance(error, int):
        return hr.canonical(error)
    return None


def _matches(error: BaseException | int, codes: Iterable[int]) -> bool:
    value = _codes_of(error)
    return value is not None and value in frozenset(codes)


def is_not_exist(error: BaseException | int) -> bool:
    """The system or process does not exist (any more)."""
    return _matches(error, {hr.HCS_E_SYSTEM_NOT_FOUND, hr.ERROR_NOT_FOUND})


def is_already_exists(error: BaseException | int) -> bool:
    """Something with that id exists already."""
    return _matches(error, AlreadyExistsError.codes)


def is_already_stopped(error: BaseException | int) -> bool:
    """The system or process is already gone; a stop request has nothing left to do."""
    return _matches(
        error,
        {hr.HCS_E_SYSTEM_ALREADY_STOPPED, hr.HCS_E_PROCESS_ALREADY_STOPPED, hr.ERROR_NOT_FOUND},
    )


def is_operation_pending(error: BaseException | int) -> bool:
    return _matches(error, OperationPendingError.codes)


def is_timeout(error: BaseException | int) -> bool:
    return _matches(error, OperationTimeoutError.codes)


def is_access_denied(error: BaseException | int) -> bool:
    return _matches(error, AccessDeniedError.codes)


def is_not_supported(error: BaseException | int) -> bool:
    return _matches(error, NotSupportedError.codes)


def is_service_disconnect(error: BaseException | int) -> bool:
    return _matches(error, ServiceDisconnectError.codes)
