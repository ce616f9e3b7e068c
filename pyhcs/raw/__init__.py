"""The HCS C API at C level: the cffi ``ffi``, the active backend's ``lib`` and string helpers.

For notebooks and for code that wants the C surface exactly as C has it::

    from pyhcs.raw import ffi, lib
    op = lib.HcsCreateOperation(ffi.NULL, ffi.NULL)

``lib`` chooses its backend on first use (see `pyhcs.raw.backend`); the typed objects of pyhcs
are built on this module and nothing else is.
"""

from __future__ import annotations

from typing import Final

from pyhcs.raw.backend import Library, NativeLibrary, lib, selected
from pyhcs.raw.ffi import constants, ffi
from pyhcs.raw.handles import INVALID_HANDLE_VALUE, open_pipe
from pyhcs.raw.strings import out_wide, read_wide, take_wide, wide

#: The ``timeoutMs`` that waits forever (``INFINITE`` of the SDK's WinBase.h), for
#: ``HcsWaitForOperationResult``, ``HcsWaitForProcessExit`` and the other waits.
INFINITE: Final = 0xFFFFFFFF

__all__ = [
    "INFINITE",
    "INVALID_HANDLE_VALUE",
    "Library",
    "NativeLibrary",
    "constants",
    "ffi",
    "lib",
    "open_pipe",
    "out_wide",
    "read_wide",
    "selected",
    "take_wide",
    "wide",
]
