"""Returned strings as C memory that only LocalFree / CoTaskMemFree release.

Each string is a cffi-owned ``WCHAR[]`` kept alive in a table keyed by its address until the
caller frees it, so the pointer stays valid exactly as long as the C contract says and a leak is
visible as a live entry. Freeing twice or freeing a pointer we never handed out is recorded.
"""

from __future__ import annotations

import threading
from typing import Any

from pyhcs.raw.ffi import ffi

# C types looked up once (ffi.new/ffi.cast parse a type given as text on every call).
_WSTRING = ffi.typeof("WCHAR[]")
_PWSTR = ffi.typeof("PWSTR")
_ADDRESS = ffi.typeof("uintptr_t")


class Allocator:
    """Process-wide allocator of returned strings (all returned PWSTRs come from here)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._live: dict[int, Any] = {}
        self.bad_frees: list[int] = []

    def string(self, text: str) -> Any:
        """A new NUL-terminated UTF-16 string the caller owns; returns a ``PWSTR``."""
        buffer = ffi.new(_WSTRING, text)
        address = int(ffi.cast(_ADDRESS, buffer))
        with self._lock:
            self._live[address] = buffer
        return ffi.cast(_PWSTR, buffer)

    def store(self, out: Any, text: str | None) -> None:
        """Write a string (or NULL) into an optional ``PWSTR*`` out-parameter."""
        if out != ffi.NULL:
            out[0] = ffi.NULL if text is None else self.string(text)

    def free(self, pointer: Any) -> bool:
        """Release one string; False (and recorded) for a double or foreign free."""
        address = int(ffi.cast(_ADDRESS, pointer))
        if address == 0:
            return True
        with self._lock:
            if self._live.pop(address, None) is not None:
                return True
            self.bad_frees.append(address)
            return False

    def live(self) -> int:
        with self._lock:
            return len(self._live)
