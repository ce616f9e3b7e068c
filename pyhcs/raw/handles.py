"""Std pipe handles from HcsCreateProcess, turned into Python files.

On Windows they are Win32 pipe HANDLEs; the emulator hands out POSIX pipe file descriptors
carried in the HANDLE value. Either way the file returned here owns the handle: closing the file
is the one CloseHandle, so do not also call ``lib.CloseHandle`` on it.
"""

from __future__ import annotations

import errno
import io
import os
import sys
from typing import IO, Any

from pyhcs.errors import InvalidHandleError
from pyhcs.raw.ffi import ffi

INVALID_HANDLE_VALUE = ffi.cast("HANDLE", -1)


class _PipeFile(io.FileIO):
    """A file over a std pipe handle whose close is the handle's one ``CloseHandle``, so the
    backend (the emulator counts the pipes it handed out) sees it closed."""

    def __init__(self, fd: int, mode: str, handle: Any) -> None:
        super().__init__(fd, mode.replace("b", ""), closefd=False)
        self._handle = handle

    # An emulated console is a pty: its master reads EIO once the process side is gone, where
    # a Windows console pipe reads its end. Both are EOF to the caller.

    def read(self, size: int | None = -1) -> bytes:
        try:
            return super().read(size)
        except OSError as exc:
            if exc.errno == errno.EIO:
                return b""
            raise

    def readall(self) -> bytes:
        chunks = []
        while block := self.read(1 << 16):
            chunks.append(block)
        return b"".join(chunks)

    def readinto(self, buffer: Any) -> int | None:
        try:
            return super().readinto(buffer)
        except OSError as exc:
            if exc.errno == errno.EIO:
                return 0
            raise

    def close(self) -> None:
        if self.closed:
            return
        super().close()
        from pyhcs.raw.backend import lib  # noqa: PLC0415 (the backend loads lazily)

        if not lib.CloseHandle(self._handle):
            raise InvalidHandleError(
                f"CloseHandle refused pipe handle {int(ffi.cast('uintptr_t', self._handle))}: "
                "not a std handle the backend handed out"
            )


def open_pipe(handle: Any, mode: str = "rb") -> IO[bytes]:
    """An unbuffered binary file over a std pipe handle (``"rb"`` or ``"wb"``)."""
    if handle in (ffi.NULL, INVALID_HANDLE_VALUE):
        raise InvalidHandleError("no pipe: the stream was not requested (NULL handle)")
    value = int(ffi.cast("uintptr_t", handle))
    if sys.platform == "win32":
        import msvcrt  # noqa: PLC0415 (Windows only)

        flags = os.O_RDONLY if "r" in mode else os.O_WRONLY
        return open(msvcrt.open_osfhandle(value, flags | os.O_BINARY), mode, buffering=0)
    return _PipeFile(value, mode, handle)
