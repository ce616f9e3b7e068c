"""Chooses the backend behind `lib` and is the only module that loads DLLs.

`lib` looks like a cffi library object (``lib.HcsCreateOperation(ffi.NULL, ffi.NULL)``), but it
picks its backend on first use, not at import, so ``from pyhcs.raw import lib`` works on every
host and a missing feature surfaces as a typed error at the call that needs it:

- native (default on Windows): computecore.dll, computestorage.dll and computenetwork.dll from
  System32, each opened when one of its functions is first used, each export resolved on first
  use, so a host that lacks a newer export still runs everything else;
- emulator (default elsewhere): `pyhcs.emulator.backend.load()` returns a table of cffi function
  pointers of the same declared types.

``PYHCS_BACKEND=native|emulator`` overrides the default.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from pyhcs import hresult as hr
from pyhcs.errors import BackendError, DllNotFoundError, ExportNotFoundError, InvalidArgumentError
from pyhcs.raw import cdefs
from pyhcs.raw.ffi import constants, ffi

BACKEND_ENV: Final = "PYHCS_BACKEND"
BACKENDS: Final = ("native", "emulator")

#: What to enable when a DLL is missing, per DLL.
_DLL_FEATURES: Final[Mapping[str, str]] = {
    "computecore.dll": "the Host Compute Service: enable the Windows optional feature "
    "'Containers' (and 'Microsoft-Hyper-V' for virtual machines and Hyper-V isolation); "
    "Windows 10 1809 / Windows Server 2019 or later",
    "computestorage.dll": "the Host Compute Service storage API: enable the Windows optional "
    "feature 'Containers'; Windows 10 1809 / Windows Server 2019 or later",
    "computenetwork.dll": "the Host Network Service: enable the Windows optional feature "
    "'Containers' (or 'Microsoft-Hyper-V'); Windows 10 1809 / Windows Server 2019 or later",
}

#: The first Windows release that exports a function, where it is later than 1809 (the docs'
#: requirement tables and the SDK metadata).
_MIN_OS: Final[Mapping[str, str]] = {
    "HcsWaitForComputeSystemExit": "Windows 10 21H1 / Windows Server 2022",
    "HcsWaitForProcessExit": "Windows 10 21H1 / Windows Server 2022",
    "HcsGetProcessorCompatibilityFromSavedState": "Windows 10 21H1 / Windows Server 2022",
    "HcsSetupBaseOSVolume": "Windows 10 21H1 / Windows Server 2022 (build 19645)",
    "HcsGrantVmGroupAccess": "Windows 10 2004 / Windows Server 2022",
    "HcsRevokeVmGroupAccess": "Windows 10 2004 / Windows Server 2022",
}
_NEWER_THAN_DOCS: Final = frozenset(
    {
        "HcsCreateOperationWithNotifications",
        "HcsAddResourceToOperation",
        "HcsGetOperationProperties",
        "HcsInitializeLiveMigrationOnSource",
        "HcsStartLiveMigrationOnSource",
        "HcsStartLiveMigrationTransfer",
        "HcsFinalizeLiveMigration",
        "HcsAttachOverlayFilter",
        "HcsDetachOverlayFilter",
        "HcnQueryEndpointStats",
        "HcnQueryEndpointAddresses",
    }
)


def _system_dll_path(dll: str) -> str:
    """Absolute System32 path on Windows (never the DLL search order); the bare name elsewhere."""
    if sys.platform == "win32":
        return str(Path(os.environ.get("SYSTEMROOT", r"C:\Windows")) / "System32" / dll)
    return dll


class NativeLibrary:
    """Function table over the real DLLs, opened and resolved lazily, one export at a time."""

    def __init__(
        self,
        exports: Mapping[str, str] | None = None,
        paths: Mapping[str, str] | None = None,
    ) -> None:
        """``paths`` maps a DLL name to the file to load instead (tests point it elsewhere)."""
        self._exports = dict(cdefs.exports() if exports is None else exports)
        self._paths = dict(paths or {})
        self._dlls: dict[str, Any] = {}
        self._lock = threading.Lock()

    def _open(self, dll: str) -> Any:
        with self._lock:
            handle = self._dlls.get(dll)
            if handle is None:
                path = self._paths.get(dll) or _system_dll_path(dll)
                if dll not in self._paths and sys.platform != "win32":
                    raise DllNotFoundError(
                        f"{dll} is a Windows system DLL and this is {sys.platform}: the native "
                        "backend needs Windows",
                        dll=dll,
                        hint=f"unset {BACKEND_ENV} (or set {BACKEND_ENV}=emulator) to use the "
                        "HCS emulator, the default off Windows",
                    )
                try:
                    handle = ffi.dlopen(path)
                except OSError as exc:
                    feature = _DLL_FEATURES.get(dll, "a Windows component")
                    raise DllNotFoundError(
                        f"{dll} could not be loaded from {path} ({exc}); it is part of {feature}",
                        dll=dll,
                        hint=f"enable {feature}",
                    ) from exc
                self._dlls[dll] = handle
            return handle

    def resolve(self, name: str) -> Any:
        """The function pointer for one export; raises ExportNotFoundError with the OS it needs."""
        dll = self._exports.get(name)
        if dll is None:
            raise AttributeError(f"{name} is not a function declared in pyhcs's cdefs")
        handle = self._open(dll)
        try:
            function = getattr(handle, name)
        except AttributeError as exc:
            if name in _MIN_OS:
                need = f"{_MIN_OS[name]} or later"
            elif name in _NEWER_THAN_DOCS:
                need = "a newer Windows build (this export is newer than the documented API)"
            else:
                need = "Windows 10 1809 / Windows Server 2019 or later"
            raise ExportNotFoundError(
                f"{dll} on this host does not export {name}; it needs {need}",
                function=name,
                dll=dll,
                hint=f"update Windows to {need}, or avoid {name}",
            ) from exc
        return function

    def available(self, name: str) -> bool:
        """Whether this host exports ``name`` (opening its DLL if needed)."""
        try:
            self.resolve(name)
        except (DllNotFoundError, ExportNotFoundError):
            return False
        return True

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        function = self.resolve(name)
        setattr(self, name, function)
        return function


def selected() -> str:
    """The backend name in force: ``PYHCS_BACKEND`` if set, else the platform's default."""
    value = os.environ.get(BACKEND_ENV, "").strip().lower()
    if not value:
        return "native" if sys.platform == "win32" else "emulator"
    if value not in BACKENDS:
        raise InvalidArgumentError(
            f"{BACKEND_ENV}={os.environ[BACKEND_ENV]!r} is not a backend; use one of "
            + ", ".join(BACKENDS),
            hresult=hr.E_INVALIDARG,
        )
    return value


def load(name: str) -> Any:
    """Build the function table of one backend."""
    if name == "native":
        return NativeLibrary()
    if name == "emulator":
        if importlib.util.find_spec("pyhcs.emulator.client.backend") is None:
            raise BackendError(
                "the emulator backend is not part of this pyhcs build yet; on Windows use "
                f"{BACKEND_ENV}=native",
                hresult=hr.HCS_E_SERVICE_NOT_AVAILABLE,
                hint="install a pyhcs release that ships pyhcs.emulator",
            )
        module = importlib.import_module("pyhcs.emulator.client.backend")
        return module.load()
    raise InvalidArgumentError(f"unknown backend {name!r}; use one of {', '.join(BACKENDS)}")


class Library:
    """The process-wide `lib`: functions from the active backend, enum constants from the cdefs."""

    def __init__(self) -> None:
        self._table: Any = None
        self._backend: str | None = None
        self._lock = threading.Lock()

    @property
    def backend(self) -> str:
        """Name of the backend serving calls (resolving it if nothing was called yet)."""
        self._active()
        assert self._backend is not None
        return self._backend

    def _active(self) -> Any:
        with self._lock:
            if self._table is None:
                name = selected()
                self._table = load(name)
                self._backend = name
            return self._table

    @property
    def resolved(self) -> bool:
        """Has a backend been chosen (by a first call) yet?"""
        with self._lock:
            return self._table is not None

    def table(self) -> Any:
        """The object serving the calls (resolving the backend if nothing was called yet):
        the emulator's function table, or the native libraries."""
        return self._active()

    def use(self, table: Any, name: str) -> None:
        """Serve every call from ``table`` under the backend name ``name``: a `NativeLibrary`
        over stand-in DLLs lets tests and benchmarks run the typed API over C code off Windows.
        Only before the first call, so no function of another backend is already bound."""
        with self._lock:
            if self._table is not None:
                raise BackendError(
                    f"pyhcs.raw.lib already serves calls from the {self._backend} backend; "
                    "bind a table before the first HCS call of the process",
                    hresult=hr.E_UNEXPECTED,
                )
            self._table = table
            self._backend = name

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        if name in cdefs.exports():
            value = getattr(self._active(), name)
        elif name in constants():
            value = constants()[name]
        else:
            raise AttributeError(f"pyhcs.raw.lib has no function or constant {name!r}")
        setattr(self, name, value)
        return value

    def __dir__(self) -> list[str]:
        return sorted({*cdefs.exports(), *constants(), "backend"})


lib = Library()
