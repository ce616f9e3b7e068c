"""UTF-16 marshalling: what Python passes is exactly what C reads, and back."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyhcs.errors import InvalidArgumentError
from pyhcs.raw import ffi, out_wide, read_wide, wide

# Any Unicode text C can hold: no NUL (the terminator) and no lone surrogates (not UTF-16).
texts = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\0"))


@given(texts)
def test_round_trip_through_c_memory(text: str) -> None:
    buffer = wide(text)
    assert ffi.typeof(buffer) is ffi.typeof("WCHAR[]")
    assert read_wide(ffi.cast("PCWSTR", buffer)) == text
    # UTF-16 code units, astral characters as surrogate pairs, plus the terminator.
    assert len(buffer) == len(text.encode("utf-16-le")) // 2 + 1
    assert buffer[len(buffer) - 1] == "\0"


def test_astral_characters_become_surrogate_pairs() -> None:
    buffer = wide("a\U0001f600")
    units = [ord(buffer[i]) for i in range(len(buffer))]
    assert units == [0x61, 0xD83D, 0xDE00, 0]


def test_embedded_nul_is_rejected() -> None:
    with pytest.raises(InvalidArgumentError, match="NUL character at index 3"):
        wide('{"A\0":1}')


def test_none_and_null() -> None:
    assert wide(None) == ffi.NULL
    assert read_wide(ffi.NULL) is None
    out = out_wide()
    assert out[0] == ffi.NULL


def test_open_pipe_refuses_streams_that_were_not_requested() -> None:
    from pyhcs.errors import InvalidHandleError
    from pyhcs.raw.handles import INVALID_HANDLE_VALUE, open_pipe

    for handle in (ffi.NULL, INVALID_HANDLE_VALUE):
        with pytest.raises(InvalidHandleError):
            open_pipe(handle)


def test_open_pipe_closes_through_close_handle(hcs: Any) -> None:
    """Closing the file is the handle's one CloseHandle, so a handle the backend never handed
    out is refused there (and stays the caller's) rather than closed behind its back."""
    import os

    from pyhcs.errors import InvalidHandleError
    from pyhcs.raw.handles import open_pipe

    read_fd, write_fd = os.pipe()
    os.write(write_fd, b"data")
    os.close(write_fd)
    pipe = open_pipe(ffi.cast("HANDLE", read_fd))
    assert pipe.read() == b"data"
    with pytest.raises(InvalidHandleError, match="CloseHandle refused"):
        pipe.close()
    os.fstat(read_fd)  # still open: it was never the backend's
    os.close(read_fd)
