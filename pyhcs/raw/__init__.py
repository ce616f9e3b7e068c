"""The HCS C API at C level: the cffi ``ffi``, the active backend's ``lib`` and string helpers.

For notebooks and for code that wants the C surface exactly as C has it::

    from pyhcs.raw import ffi, lib
    op = lib.HcsCreateOperation(ffi.NULL, ffi.NULL)

``lib`` chooses its backend on first use (see `pyhcs.raw.backend`); the typed objects of pyhcs
are built on this module and nothing else is.
"""

from __future__ import annotations

from pyhcs.raw.backend import Library, NativeLibrary, lib, selected
from pyhcs.raw.ffi import constants, ffi
from pyhcs.raw.strings import out_wide, read_wide, take_wide, wide

__all__ = [
    "Library",
    "NativeLibrary",
    "constants",
    "ffi",
    "lib",
    "out_wide",
    "read_wide",
    "selected",
    "take_wide",
    "wide",
]
