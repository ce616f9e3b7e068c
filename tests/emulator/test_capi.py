"""The test driver's own guarantees: reads are bounded and fail clearly."""

from __future__ import annotations

import os

import pytest

from pyhcs.raw.ffi import ffi
from tests.emulator.capi import read_all, read_line


def test_reads_fail_clearly_when_the_writer_never_finishes() -> None:
    read_end, write_end = os.pipe()
    try:
        os.write(write_end, b"partial")
        handle = ffi.cast("HANDLE", read_end)
        with pytest.raises(AssertionError, match=r"read_all not at the end after 0.05s.*partial"):
            read_all(handle, timeout=0.05)
        os.write(write_end, b" line")
        with pytest.raises(AssertionError, match=r"no full line after 0.05s.*b' line'"):
            read_line(read_end, timeout=0.05)
        os.write(write_end, b"\nrest")
        os.close(write_end)
        write_end = -1
        assert read_line(read_end) == b"\nrest"  # whole chunks; EOF ends an unfinished line
        assert read_all(handle) == b""
    finally:
        os.close(read_end)
        if write_end >= 0:
            os.close(write_end)
