"""Where the C declarations live and which DLL exports each declared function.

The headers are the single source of truth for the C surface: the FFI is built from them and
the native backend learns from them which DLL to ask for each function, so adding a function to
a header is all it takes to bind it. A header that declares exports names its DLL on its first
line (``/* pyhcs: dll=computecore.dll */``); every export is declared ``RET WINAPI Name(...)``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from pyhcs.errors import CdefsNotFoundError

#: Load order: each header may use the types of the ones before it.
HEADERS: tuple[str, ...] = (
    "wintypes.h",
    "computedefs.h",
    "computecore.h",
    "computestorage.h",
    "computenetwork.h",
    "winbase.h",
    "combaseapi.h",
)

_DLL_MARK = re.compile(r"/\*\s*pyhcs:\s*dll=([\w.]+)\s*\*/")
_COMMENT = re.compile(r"/\*.*?\*/|//[^\n]*", re.DOTALL)
_EXPORT = re.compile(r"\bWINAPI\s+(\w+)\s*\(")
_DECLARATION = re.compile(
    r"(?P<ret>[A-Za-z_][\w\s*]*?)\s*\bWINAPI\s+(?P<name>\w+)\s*\((?P<params>[^;]*)\)\s*;"
)


@dataclass(frozen=True)
class Header:
    """One cdefs file: its name, its text and the DLL its functions come from (None: types only)."""

    name: str
    text: str
    dll: str | None

    @property
    def functions(self) -> tuple[str, ...]:
        """Names of the exported functions this header declares, in declaration order."""
        return tuple(_EXPORT.findall(_COMMENT.sub(" ", self.text)))


def cdefs_dir() -> Path:
    """The directory holding the headers.

    An installed wheel carries them as ``pyhcs/cdefs``; a source checkout keeps them at the top
    of the repository (``cdefs/``), which is what the wheel build copies.
    """
    package = Path(__file__).resolve().parent.parent
    for candidate in (package / "cdefs", package.parent / "cdefs"):
        if all((candidate / name).is_file() for name in HEADERS):
            return candidate
    raise CdefsNotFoundError(
        f"the C declarations ({', '.join(HEADERS)}) are neither in {package / 'cdefs'} "
        f"(installed package) nor in {package.parent / 'cdefs'} (source checkout); "
        "reinstall pyhcs"
    )


@cache
def headers() -> tuple[Header, ...]:
    """All headers in load order."""
    directory = cdefs_dir()
    result = []
    for name in HEADERS:
        text = (directory / name).read_text(encoding="utf-8")
        mark = _DLL_MARK.search(text.split("\n", 1)[0])
        result.append(Header(name=name, text=text, dll=mark.group(1) if mark else None))
    return tuple(result)


@cache
def exports() -> dict[str, str]:
    """Function name -> the DLL that exports it, for every declared function."""
    table: dict[str, str] = {}
    for header in headers():
        for function in header.functions:
            if header.dll is None:
                raise CdefsNotFoundError(
                    f"{header.name} declares {function} but names no DLL on its first line"
                )
            table[function] = header.dll
    return table


@cache
def signatures() -> dict[str, str]:
    """Function name -> its C function-pointer type, e.g. ``HRESULT(WINAPI *)(HCS_OPERATION)``.

    The emulator builds its function table with ``ffi.callback`` from these, so its pointers
    have exactly the declared types instead of types retyped by hand.
    """
    table: dict[str, str] = {}
    for header in headers():
        if header.dll is None:
            continue
        for match in _DECLARATION.finditer(_COMMENT.sub(" ", header.text)):
            ret = " ".join(match["ret"].split())
            params = " ".join(match["params"].split())
            table[match["name"]] = f"{ret}(WINAPI *)({params})"
    return table


def source() -> str:
    """The concatenated declarations, as handed to ``FFI.cdef``."""
    return "\n".join(f"/* ---- {h.name} ---- */\n{h.text}" for h in headers())
