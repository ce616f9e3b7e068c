"""The one cffi FFI of pyhcs, built in ABI mode from the packaged C declarations.

ABI mode needs no compiler at install time, and both backends share this object: the native
backend dlopens the HCS DLLs through it, the emulator makes its function pointers with it, so the
same types and the same string marshalling run on Windows and everywhere else.
"""

from __future__ import annotations

import re
from functools import cache

from cffi import FFI

from pyhcs.raw import cdefs

_DEFINE = re.compile(r"^#define\s+(\w+)\s+(0[xX][0-9A-Fa-f]+|\d+)\s*$", re.MULTILINE)

ffi = FFI()
ffi.cdef(cdefs.source())


@cache
def constants() -> dict[str, int]:
    """Every enum constant and integer ``#define`` of the cdefs by name.

    cffi's ABI mode serves constants only through a loaded library; `lib` must answer them
    before (and without) loading any backend.
    """
    table: dict[str, int] = {name: int(value, 0) for name, value in _DEFINE.findall(cdefs.source())}
    for typedef in ffi.list_types()[0]:
        ctype = ffi.typeof(typedef)
        if ctype.kind == "enum":
            table.update(ctype.relements)
    return table


__all__ = ["constants", "ffi"]
