"""Backend choice and the native backend's lazy loading, against a real C stand-in library.

Real DLLs exist only on Windows; here a small C library (tests/native/fakecore.c) plays an old
computecore.dll that exports a handful of functions, so the loader's behaviour — resolve what is
there, report exactly what is missing, open nothing before it is needed — runs for real.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pyhcs import errors
from pyhcs import hresult as hr
from pyhcs.raw import NativeLibrary, cdefs, constants, ffi, take_wide


def _native(fake_dll: Path, **extra: str) -> NativeLibrary:
    return NativeLibrary(
        paths={"computecore.dll": str(fake_dll), "kernel32.dll": str(fake_dll), **extra}
    )


def test_present_exports_are_called_through_the_declared_types(fake_dll: Path) -> None:
    native = _native(fake_dll)
    context = ffi.cast("void *", 0x1234)
    op = native.HcsCreateOperation(context, ffi.NULL)
    try:
        assert op != ffi.NULL
        assert ffi.typeof(op) is ffi.typeof("HCS_OPERATION")
        assert native.HcsGetOperationType(op) == constants()["HcsOperationTypeNone"]
        assert native.HcsGetOperationContext(op) == context
    finally:
        native.HcsCloseOperation(op)


def test_returned_strings_are_copied_and_freed_once(fake_dll: Path) -> None:
    native = _native(fake_dll)
    before = _free_count(fake_dll)
    op = native.HcsCreateOperation(ffi.NULL, ffi.NULL)
    out = ffi.new("PWSTR *")
    result = native.HcsGetOperationResult(op, out)
    native.HcsCloseOperation(op)
    assert hr.to_unsigned(result) == hr.HCS_E_OPERATION_NOT_STARTED
    assert take_wide(out[0], free=native.LocalFree) == '{"Error":-2143878891}'
    assert _free_count(fake_dll) == before + 1
    assert take_wide(ffi.NULL, free=native.LocalFree) is None
    assert _free_count(fake_dll) == before + 1


def _free_count(fake_dll: Path) -> int:
    """How often the stand-in's LocalFree ran (a test-only export, declared on its own FFI)."""
    from cffi import FFI

    probe = FFI()
    probe.cdef("int FakeFreeCount(void);")
    count: int = probe.dlopen(str(fake_dll)).FakeFreeCount()
    return count


def test_missing_export_is_a_typed_error_naming_the_windows_build(fake_dll: Path) -> None:
    native = _native(fake_dll)
    with pytest.raises(errors.ExportNotFoundError) as caught:
        _ = native.HcsWaitForProcessExit
    error = caught.value
    assert error.function == "HcsWaitForProcessExit"
    assert error.dll == "computecore.dll"
    assert error.hresult == hr.ERROR_PROC_NOT_FOUND
    assert "Windows Server 2022" in str(error)
    assert isinstance(error, errors.FeatureMissingError)
    # The rest of the DLL still works after a miss.
    op = native.HcsCreateOperation(ffi.NULL, ffi.NULL)
    native.HcsCloseOperation(op)
    assert native.available("HcsCreateOperation")
    assert not native.available("HcsCreateOperationWithNotifications")
    assert not native.available("HcsCreateComputeSystem")


def test_missing_dll_is_a_typed_error_naming_the_feature(tmp_path: Path, fake_dll: Path) -> None:
    native = _native(fake_dll, **{"computestorage.dll": str(tmp_path / "absent.so")})
    with pytest.raises(errors.DllNotFoundError) as caught:
        _ = native.HcsImportLayer
    assert caught.value.dll == "computestorage.dll"
    assert caught.value.hresult == hr.ERROR_MOD_NOT_FOUND
    assert "Containers" in str(caught.value)
    # computecore is unaffected by computestorage being absent.
    assert native.available("HcsCreateOperation")


def test_nothing_is_loaded_before_first_use(tmp_path: Path) -> None:
    native = NativeLibrary(
        paths={dll: str(tmp_path / "absent") for dll in set(cdefs.exports().values())}
    )
    with pytest.raises(AttributeError):
        _ = native.NotAFunction
    with pytest.raises(errors.DllNotFoundError):
        _ = native.HcsCreateOperation


def _python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_import_never_loads_a_backend_and_constants_need_none() -> None:
    code = (
        "from pyhcs.raw import ffi, lib\n"
        "assert lib.HcsEventGroupVmLifecycle == -2147483646\n"
        "assert lib.HcsOperationTypeNone == -1\n"
        "assert lib.HCS_INVALID_OPERATION_ID == 2**64 - 1\n"
        "assert lib._table is None\n"
        "print('ok')\n"
    )
    result = _python(code, PYHCS_BACKEND="native")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


@pytest.mark.skipif(sys.platform == "win32", reason="the DLLs exist on Windows")
def test_native_backend_off_windows_fails_at_first_call_with_a_typed_error() -> None:
    code = (
        "from pyhcs.raw import ffi, lib\n"
        "from pyhcs.errors import DllNotFoundError\n"
        "try:\n"
        "    lib.HcsCreateOperation(ffi.NULL, ffi.NULL)\n"
        "except DllNotFoundError as exc:\n"
        "    print(exc.dll, hex(exc.hresult))\n"
    )
    result = _python(code, PYHCS_BACKEND="native")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["computecore.dll", "0x8007007e"]


def test_unknown_backend_name_is_rejected_at_first_use() -> None:
    code = (
        "from pyhcs.raw import ffi, lib\n"
        "from pyhcs.errors import InvalidArgumentError\n"
        "try:\n"
        "    lib.HcsCreateOperation\n"
        "except InvalidArgumentError as exc:\n"
        "    print(type(exc).__name__, str(exc).splitlines()[0])\n"
    )
    result = _python(code, PYHCS_BACKEND="quantum")
    assert result.returncode == 0, result.stderr
    assert "PYHCS_BACKEND='quantum' is not a backend" in result.stdout


def test_lib_lists_every_function_and_constant() -> None:
    from pyhcs.raw import lib

    listing = dir(lib)
    assert set(cdefs.exports()) <= set(listing)
    assert "HcsEventProcessExited" in listing
    with pytest.raises(AttributeError):
        _ = lib.HcsNoSuchFunction


def test_lib_can_serve_the_typed_api_from_a_native_library_bound_before_first_use(
    fake_dll: Path,
) -> None:
    """`Library.use` puts the typed objects on C code off Windows (the stand-in answers open,
    start and properties); once calls were served, rebinding is refused."""
    code = (
        "from pyhcs.raw import NativeLibrary, lib\n"
        "from pyhcs.errors import BackendError\n"
        f"path = {str(fake_dll)!r}\n"
        "lib.use(NativeLibrary(paths={'computecore.dll': path, 'kernel32.dll': path}), 'native')\n"
        "from pyhcs import ComputeSystem\n"
        "with ComputeSystem.open('stand-in') as system:\n"
        "    system.start()\n"
        "    print(lib.backend, system.properties().state.value)\n"
        "try:\n"
        "    lib.use(NativeLibrary(), 'native')\n"
        "except BackendError as exc:\n"
        "    print(type(exc).__name__)\n"
    )
    result = _python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["native", "Running", "BackendError"]
