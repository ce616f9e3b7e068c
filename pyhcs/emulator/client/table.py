"""The emulator's function table: one cffi function pointer per declared export.

Every pointer is made with ``ffi.callback`` from the declaration text of ``cdefs.signatures()``,
so it has exactly the C type the native DLL export has. A Python exception can never cross into
C: cffi returns the ``error`` value (E_UNEXPECTED, NULL, 0) and the exception is recorded in
``Table.errors``. Every declared function is implemented; a declaration added to cdefs
without an implementation answers E_NOTIMPL (NULL/0) until it gets one, and a test says so.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any

from pyhcs import hresult as hr
from pyhcs.emulator import oserrors
from pyhcs.emulator.client import computenetwork, computestorage, handles, utilities
from pyhcs.emulator.client.computecore import Client
from pyhcs.raw import cdefs
from pyhcs.raw.ffi import ffi


def _implementations(c: Client) -> dict[str, Callable[..., Any]]:
    """Name -> Python implementation taking exactly the C arguments."""
    ops = c

    def sys_op(kind: int, request: str, name: str) -> Callable[..., int]:
        return lambda s, o, opt: c.system_call(s, o, opt, kind=kind, request=request, function=name)

    def proc_op(kind: int, request: str, name: str) -> Callable[..., int]:
        return lambda p, o, opt: c.process_call(
            p, o, opt, kind=kind, request=request, function=name
        )

    return {
        # operations
        "HcsCreateOperation": ops.create_operation,
        "HcsCloseOperation": ops.close_operation,
        "HcsGetOperationContext": ops.get_context,
        "HcsSetOperationContext": ops.set_context,
        "HcsSetOperationCallback": ops.set_callback,
        "HcsGetOperationType": ops.get_type,
        "HcsGetOperationId": ops.get_id,
        "HcsGetComputeSystemFromOperation": ops.system_from_operation,
        "HcsGetProcessFromOperation": ops.process_from_operation,
        "HcsGetOperationResult": lambda o, d: c.get_result(o, ffi.NULL, d, wants_info=False),
        "HcsGetOperationResultAndProcessInfo": lambda o, i, d: c.get_result(
            o, i, d, wants_info=True
        ),
        "HcsWaitForOperationResult": lambda o, t, d: c.wait_result(
            o, t, ffi.NULL, d, wants_info=False
        ),
        "HcsWaitForOperationResultAndProcessInfo": lambda o, t, i, d: c.wait_result(
            o, t, i, d, wants_info=True
        ),
        "HcsCancelOperation": ops.cancel,
        "HcsCreateOperationWithNotifications": ops.create_operation_with_notifications,
        "HcsAddResourceToOperation": ops.add_resource,
        "HcsGetOperationProperties": ops.operation_properties,
        # compute systems
        "HcsEnumerateComputeSystems": c.enumerate,
        "HcsCreateComputeSystem": c.create_system,
        "HcsOpenComputeSystem": c.open_system,
        "HcsEnumerateComputeSystemsInNamespace": lambda ns, q, o: c.enumerate(q, o, ns),
        "HcsCreateComputeSystemInNamespace": c.create_system_in_namespace,
        "HcsOpenComputeSystemInNamespace": lambda ns, i, a, out: c.open_system(i, a, out, ns),
        "HcsCloseComputeSystem": c.close_system,
        "HcsStartComputeSystem": sys_op(handles.OP_START, "start", "HcsStartComputeSystem"),
        "HcsShutDownComputeSystem": sys_op(
            handles.OP_SHUTDOWN, "shutdown", "HcsShutDownComputeSystem"
        ),
        "HcsTerminateComputeSystem": sys_op(
            handles.OP_TERMINATE, "terminate", "HcsTerminateComputeSystem"
        ),
        "HcsPauseComputeSystem": sys_op(handles.OP_PAUSE, "pause", "HcsPauseComputeSystem"),
        "HcsResumeComputeSystem": sys_op(handles.OP_RESUME, "resume", "HcsResumeComputeSystem"),
        "HcsSaveComputeSystem": sys_op(handles.OP_SAVE, "save", "HcsSaveComputeSystem"),
        "HcsCrashComputeSystem": sys_op(handles.OP_CRASH, "crash", "HcsCrashComputeSystem"),
        "HcsGetComputeSystemProperties": sys_op(
            handles.OP_GET_PROPERTIES, "properties", "HcsGetComputeSystemProperties"
        ),
        "HcsModifyComputeSystem": lambda s, o, cfg, _identity: c.system_call(
            s, o, cfg, kind=handles.OP_MODIFY, request="modify", function="HcsModifyComputeSystem"
        ),
        "HcsSetComputeSystemCallback": lambda s, o, x, cb: c.set_event_callback(
            c.systems, s, o, x, cb
        ),
        "HcsWaitForComputeSystemExit": lambda s, t, r: c.wait_exit(c.systems, s, t, r),
        "HcsGetServiceProperties": c.service_properties,
        "HcsModifyServiceSettings": c.modify_service_settings,
        "HcsGetProcessorCompatibilityFromSavedState": c.processor_compatibility,
        **{
            name: sys_op(handles.OP_LIVE_MIGRATION, "live_migration", name)
            for name in (
                "HcsInitializeLiveMigrationOnSource",
                "HcsStartLiveMigrationOnSource",
                "HcsStartLiveMigrationTransfer",
                "HcsFinalizeLiveMigration",
            )
        },
        # processes
        "HcsCreateProcess": c.create_process,
        "HcsOpenProcess": c.open_process,
        "HcsCloseProcess": c.close_process,
        "HcsTerminateProcess": proc_op(
            handles.OP_SIGNAL_PROCESS, "terminate_process", "HcsTerminateProcess"
        ),
        "HcsSignalProcess": proc_op(
            handles.OP_SIGNAL_PROCESS, "signal_process", "HcsSignalProcess"
        ),
        "HcsGetProcessProperties": proc_op(
            handles.OP_GET_PROCESS_PROPERTIES, "process_properties", "HcsGetProcessProperties"
        ),
        "HcsModifyProcess": proc_op(
            handles.OP_MODIFY_PROCESS, "modify_process", "HcsModifyProcess"
        ),
        "HcsGetProcessInfo": c.process_info,
        "HcsSetProcessCallback": lambda p, o, x, cb: c.set_event_callback(c.processes, p, o, x, cb),
        "HcsWaitForProcessExit": lambda p, t, r: c.wait_exit(c.processes, p, t, r),
        # storage (computestorage.dll), on real directories
        "HcsImportLayer": _storage(computestorage.import_layer, 0, 1),
        "HcsExportLayer": _storage(computestorage.export_layer, 0, 1),
        "HcsDestroyLayer": _storage(computestorage.destroy_layer, 0),
        "HcsSetupBaseOSLayer": _storage(
            lambda layer, vhd, options: computestorage.setup_base_os_layer(
                layer, vhd is not None, options
            ),
            0,
        ),
        "HcsInitializeWritableLayer": _storage(computestorage.initialize_writable_layer, 0),
        "HcsAttachLayerStorageFilter": _storage(computestorage.attach_filter, 0),
        "HcsDetachLayerStorageFilter": _storage(computestorage.detach_filter, 0),
        "HcsAttachOverlayFilter": _storage(computestorage.attach_overlay, 0),
        "HcsDetachOverlayFilter": _storage(computestorage.detach_overlay, 0),
        "HcsInitializeLegacyWritableLayer": _storage(
            computestorage.initialize_legacy_writable_layer, 0, 1
        ),
        "HcsExportLegacyWritableLayer": _storage(
            computestorage.export_legacy_writable_layer, 0, 1, 2
        ),
        "HcsSetupBaseOSVolume": _storage(computestorage.setup_base_os_volume, 0, 1),
        "HcsFormatWritableLayerVhd": _storage(
            lambda vhd: computestorage.format_writable_layer_vhd(_fd(vhd))
        ),
        "HcsGetLayerVhdMountPath": lambda vhd, out: _vhd_mount_path(c, vhd, out),
        # utilities on the host filesystem
        "HcsCreateEmptyGuestStateFile": _storage(utilities.create_empty_file, 0),
        "HcsCreateEmptyRuntimeStateFile": _storage(utilities.create_empty_file, 0),
        "HcsGrantVmAccess": _storage(utilities.grant_access, 0, 1),
        "HcsRevokeVmAccess": _storage(utilities.grant_access, 0, 1),
        "HcsGrantVmGroupAccess": _storage(utilities.grant_access, 0),
        "HcsRevokeVmGroupAccess": _storage(utilities.grant_access, 0),
        "HcsSubmitWerReport": _storage(utilities.submit_wer_report, 0),
        # computenetwork (HCN), records in the service
        **computenetwork.Hcn(c).implementations(),
        # memory and handles
        "LocalFree": c.local_free,
        "CoTaskMemFree": lambda p: (c.allocator.free(p), None)[1],
        "CloseHandle": c.close_handle,
    }


def _storage(function: Callable[..., None], *required: int) -> Callable[..., int]:
    """Wrap a storage or utility function: PCWSTR arguments in, HRESULT out. The arguments
    at the ``required`` positions (paths, ids) may not be NULL: E_INVALIDARG, nothing done."""

    def call(*args: Any) -> int:
        if any(args[i] == ffi.NULL for i in required):
            return hr.to_signed(hr.E_INVALIDARG)
        texts = [
            None if a == ffi.NULL else (str(ffi.string(a)) if _is_wstr(a) else a) for a in args
        ]
        try:
            function(*texts)
        except computestorage.StorageError as exc:
            return hr.to_signed(exc.hresult)
        except OSError as exc:
            return hr.to_signed(oserrors.hresult_for(exc, missing=hr.ERROR_PATH_NOT_FOUND))
        except RecursionError:  # a document nested too deeply for any JSON parser
            return hr.to_signed(hr.HCS_E_INVALID_JSON)
        except UnicodeEncodeError:  # an unpaired surrogate: no host path can hold it
            return hr.to_signed(hr.E_INVALIDARG)
        return hr.S_OK

    return call


def _fd(handle: Any) -> int:
    """The descriptor a HANDLE carries; NULL (None once unwrapped) is no handle at all."""
    if handle is None or handle == ffi.NULL:
        raise computestorage.StorageError(hr.E_HANDLE, "the handle is NULL")
    return int(ffi.cast("uintptr_t", handle))


def _vhd_mount_path(c: Client, vhd: Any, out: Any) -> int:
    """HcsGetLayerVhdMountPath: the one storage call with a string out (caller frees it)."""
    if out == ffi.NULL:
        return hr.to_signed(hr.E_POINTER)
    out[0] = ffi.NULL
    try:
        path = computestorage.layer_vhd_mount_path(_fd(vhd))
    except computestorage.StorageError as exc:
        return hr.to_signed(exc.hresult)
    c.allocator.store(out, path)
    return hr.S_OK


def _is_wstr(value: Any) -> bool:
    ctype = ffi.typeof(value)
    return bool(ctype.kind == "pointer" and ctype.item.cname == "char16_t")


#: Functions that manage an operation rather than start work through one.
_OPERATION_MANAGEMENT = frozenset(
    {
        "HcsCloseOperation",
        "HcsGetOperationContext",
        "HcsSetOperationContext",
        "HcsSetOperationCallback",
        "HcsGetOperationType",
        "HcsGetOperationId",
        "HcsGetComputeSystemFromOperation",
        "HcsGetProcessFromOperation",
        "HcsGetOperationResult",
        "HcsGetOperationResultAndProcessInfo",
        "HcsWaitForOperationResult",
        "HcsWaitForOperationResultAndProcessInfo",
        "HcsCancelOperation",
        "HcsAddResourceToOperation",
        "HcsGetOperationProperties",
    }
)


def _faulted_by_operation(name: str, signature: str) -> bool:
    """Op-taking calls (and HcsOpenComputeSystem) consult their faults themselves, so that an
    injected failure is reported through the operation, as HCS reports runtime failures."""
    if name == "HcsOpenComputeSystem":
        return True
    return "HCS_OPERATION" in signature and name not in _OPERATION_MANAGEMENT


def _guard(client: Client, name: str, ctype: Any, python: Callable[..., Any]) -> Callable[..., Any]:
    """Every other function: an injected fault drops the connection, delays the call (a
    bounded wait) and/or makes it return the HRESULT, with the document in its last
    ``PWSTR*`` out-parameter (ErrorRecord / result) when it has one."""
    returns_hresult = ctype.result.cname == "long"
    last = ctype.args[-1] if ctype.args else None
    document_out = last is not None and last.cname == "char16_t * *"

    def guarded(*args: Any) -> Any:
        fault = client.faults.take(name)
        if fault is None:
            return python(*args)
        if fault.drop_connection:
            client.connection.drop()
        fault.stall()
        if fault.hresult is None or not returns_hresult:
            return python(*args)
        if document_out and args[-1] != ffi.NULL:
            client.allocator.store(args[-1], fault.document)
        return hr.to_signed(fault.hresult)

    return guarded


def _error_value(ctype: Any) -> Any:
    """What a failing pointer returns: E_UNEXPECTED for HRESULT, NULL/0 otherwise."""
    result = ctype.result
    if result.kind == "void":
        return None
    if result.kind == "pointer":
        return None  # cffi: NULL
    if result.cname in ("long", "HRESULT"):
        return hr.to_signed(hr.E_UNEXPECTED)
    return 0


def _not_implemented(ctype: Any) -> Callable[..., Any]:
    result = ctype.result
    if result.kind == "void":
        return lambda *args: None
    if result.kind == "pointer":
        return lambda *args: ffi.NULL
    if result.cname == "long":
        return lambda *args: hr.to_signed(hr.E_NOTIMPL)
    return lambda *args: 0


class Table:
    """Attributes = cffi function pointers of every export; ``client`` for diagnostics."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.errors: list[BaseException] = []
        self.implemented: frozenset[str] = frozenset()
        self._errors_lock = threading.Lock()
        self._keep: list[Any] = []
        implementations = _implementations(client)
        done = set()
        for name, signature in cdefs.signatures().items():
            ctype = ffi.typeof(signature)
            python = implementations.get(name)
            if python is None:
                python = _not_implemented(ctype)
            else:
                done.add(name)
                if not _faulted_by_operation(name, signature):
                    python = _guard(client, name, ctype, python)
            pointer = ffi.callback(ctype, python, error=_error_value(ctype), onerror=self._onerror)
            self._keep.append(pointer)
            setattr(self, name, pointer)
        self.implemented = frozenset(done)

    def __getattr__(self, name: str) -> Any:
        """Only reached for names that are not functions of the cdefs."""
        raise AttributeError(f"the emulator table has no function {name!r}")

    def _onerror(
        self, kind: type[BaseException], value: BaseException, tb: TracebackType | None
    ) -> None:
        with self._errors_lock:
            self.errors.append(value)

    def close(self) -> None:
        """Disconnect this table's client (tests; the process-wide table lives forever)."""
        self.client.close()
