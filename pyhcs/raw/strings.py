"""UTF-16 strings across the C boundary, and freeing the strings HCS hands back.

HCS takes ``PCWSTR`` (NUL-terminated UTF-16) and returns ``PWSTR`` documents the caller must free
exactly once with ``LocalFree``. These helpers are the only place pyhcs does either, so the
discipline is the same on both backends: copy the text out, then free through the active
backend's ``LocalFree``.
"""

from __future__ import annotations

from typing import Any

from pyhcs.errors import InvalidArgumentError
from pyhcs.raw.backend import lib
from pyhcs.raw.ffi import ffi


def wide(text: str | None) -> Any:
    """A NUL-terminated ``WCHAR[]`` holding ``text`` (``ffi.NULL`` for None).

    Keep the returned object alive for as long as C may read it. An embedded NUL would make C
    see a shorter string than the caller passed, so it is rejected.
    """
    if text is None:
        return ffi.NULL
    if "\0" in text:
        raise InvalidArgumentError(
            f"string contains a NUL character at index {text.index(chr(0))}; C would truncate it"
        )
    return ffi.new("WCHAR[]", text)


def read_wide(pointer: Any) -> str | None:
    """Copy a ``PCWSTR`` into a str without taking ownership (None for NULL)."""
    if pointer == ffi.NULL:
        return None
    text: str = ffi.string(ffi.cast("WCHAR *", pointer))
    return text


def take_wide(pointer: Any, free: Any = None) -> str | None:
    """Copy a returned ``PWSTR`` into a str and free it once (``LocalFree`` unless told otherwise).

    ``free`` is for the HCN functions, whose strings are documented as ``CoTaskMemFree``'d.
    """
    if pointer == ffi.NULL:
        return None
    try:
        return read_wide(pointer)
    finally:
        (free or lib.LocalFree)(pointer)


def out_wide() -> Any:
    """A fresh ``PWSTR *`` out-parameter, initialised to NULL."""
    return ffi.new("PWSTR *")
