"""Std pipe handles from HcsCreateProcess, turned into Python files.

On Windows they are Win32 pipe HANDLEs; the emulator hands out POSIX pipe file descriptors
carried in the HANDLE value. Either way the file returned here owns the handle: closing the file
is the one CloseHandle, so do not also call ``lib.CloseHandle`` on it.
"""

from __future__ import annotations

import os
import sys
from typing import IO, Any

from pyhcs.errors import InvalidHandleError
from pyhcs.raw.ffi import ffi

INVALID_HANDLE_VALUE = ffi.cast("HANDLE", -1)


def open_pipe(handle: Any, mode: str = "rb") -> IO[bytes]:
    """An unbuffered binary file over a std pipe handle (``"rb"`` or ``"wb"``)."""
    if handle in (ffi.NULL, INVALID_HANDLE_VALUE):
        raise InvalidHandleError("no pipe: the stream was not requested (NULL handle)")
    value = int(ffi.cast("uintptr_t", handle))
    if sys.platform == "win32":
        import msvcrt  # noqa: PLC0415 (Windows only)

        flags = os.O_RDONLY if "r" in mode else os.O_WRONLY
        fd = msvcrt.open_osfhandle(value, flags | os.O_BINARY)
    else:
        fd = value
    return open(fd, mode, buffering=0)
