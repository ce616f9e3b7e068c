"""Host failures as the HRESULTs Windows reports for the same failure.

A request that the host refuses (a path component over 255 characters, an argument list over
the kernel's limit, an executable with no valid format, ...) fails that one call with the
Win32 error a Windows host gives for it, wrapped as an HRESULT.
"""

from __future__ import annotations

import errno
from typing import Final

from pyhcs import hresult as hr

_BY_ERRNO: Final[dict[int, int]] = {
    errno.ENOENT: hr.ERROR_FILE_NOT_FOUND,
    errno.ENOTDIR: hr.ERROR_PATH_NOT_FOUND,
    errno.ENAMETOOLONG: hr.ERROR_FILENAME_EXCED_RANGE,
    errno.E2BIG: hr.ERROR_FILENAME_EXCED_RANGE,  # CreateProcess: command line too long
    errno.ENOEXEC: hr.ERROR_BAD_EXE_FORMAT,
    errno.EACCES: hr.E_ACCESSDENIED,
    errno.EPERM: hr.E_ACCESSDENIED,
    errno.EEXIST: hr.ERROR_ALREADY_EXISTS,
    errno.EISDIR: hr.E_ACCESSDENIED,
    errno.ELOOP: hr.ERROR_PATH_NOT_FOUND,
    errno.EINVAL: hr.E_INVALIDARG,
    errno.ENOSPC: hr.ERROR_DISK_FULL,
    errno.ENOMEM: hr.E_OUTOFMEMORY,
    errno.EMFILE: hr.ERROR_TOO_MANY_OPEN_FILES,
    errno.ENFILE: hr.ERROR_TOO_MANY_OPEN_FILES,
}


def hresult_for(exc: OSError, *, missing: int = hr.ERROR_FILE_NOT_FOUND) -> int:
    """The HRESULT for a host error (E_FAIL for one Windows has no counterpart of). ENOENT
    means a missing file or a missing folder on the way: ``missing`` says which the caller
    was looking for."""
    if exc.errno == errno.ENOENT:
        return missing
    return _BY_ERRNO.get(exc.errno or 0, hr.E_FAIL)
