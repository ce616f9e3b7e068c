"""The cdefs against the Windows SDK: mingw-w64 headers, SDK metadata and the x64 compiler.

Nothing here is a hand-copied table: both sources are read and reduced to the same canonical
form (see tests/sdk_sources.py). mingw is older than the SDK, so it may lack newer functions,
enum members and structs, but whatever it declares must match; the metadata must match exactly.
Missing tools or packages fail the tests with the install command, they are never skipped.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from cffi import FFI

from pyhcs.raw import cdefs
from tests.sdk_sources import (
    SYSTEM_FUNCTIONS,
    Declarations,
    Function,
    int32,
    metadata_declarations,
    mingw_declarations,
    mingw_layout,
    pyhcs_declarations,
    without_const,
)


@pytest.fixture(scope="module")
def ours() -> Declarations:
    """Our cdefs, through the same C reader as mingw."""
    return pyhcs_declarations()


@pytest.fixture(scope="module")
def mingw() -> Declarations:
    """mingw-w64's headers as the x64 cross compiler preprocesses them."""
    return mingw_declarations()


@pytest.fixture(scope="module")
def sdk() -> Declarations:
    """The Windows SDK metadata (win32more rendering)."""
    return metadata_declarations()


def _unconst(fn: Function) -> Function:
    return Function(
        without_const(fn.ret),
        tuple((name, without_const(kind)) for name, kind in fn.params),
        fn.stdcall,
    )


def _mismatches(mine: dict[str, Any], theirs: dict[str, Any]) -> list[str]:
    return [
        f"{name}:\n  ours:   {mine.get(name)}\n  theirs: {value}"
        for name, value in theirs.items()
        if mine.get(name) != value
    ]


# ---- function set and DLLs ----------------------------------------------------------------


def test_function_set_is_exactly_the_sdk_metadata(ours: Declarations, sdk: Declarations) -> None:
    hcs_hcn = set(ours.functions) - set(SYSTEM_FUNCTIONS)
    assert hcs_hcn == set(sdk.functions)
    assert sum(1 for n in sdk.functions if n.startswith("Hcs")) == 73
    assert sum(1 for n in sdk.functions if n.startswith("Hcn")) == 43


def test_dll_of_every_function_is_the_metadata_dll(ours: Declarations, sdk: Declarations) -> None:
    assert {name: ours.dlls[name] for name in sdk.dlls} == sdk.dlls
    assert {name: cdefs.exports()[name] for name in sdk.dlls} == sdk.dlls


def test_mingw_functions_are_a_subset(ours: Declarations, mingw: Declarations) -> None:
    """Everything mingw declares is ours; what it lacks is newer SDK surface."""
    assert set(mingw.functions) <= set(ours.functions)
    assert set(SYSTEM_FUNCTIONS) <= set(mingw.functions)
    missing = set(ours.functions) - set(mingw.functions)
    assert missing <= set(metadata_declarations().functions)
    assert len(mingw.functions) >= 100  # the parse really found the headers' functions


# ---- signatures -------------------------------------------------------------------------


def test_signatures_match_the_metadata(ours: Declarations, sdk: Declarations) -> None:
    """Return and parameter types and parameter names; the metadata carries no const."""
    mine = {name: _unconst(fn) for name, fn in ours.functions.items()}
    assert _mismatches(mine, sdk.functions) == []


def test_signatures_match_mingw_including_const(ours: Declarations, mingw: Declarations) -> None:
    assert _mismatches(ours.functions, mingw.functions) == []


def test_every_function_is_stdcall_in_every_source(
    ours: Declarations, mingw: Declarations, sdk: Declarations
) -> None:
    for source in (ours, mingw, sdk):
        assert [n for n, fn in source.functions.items() if not fn.stdcall] == []
        assert [n for n, fn in source.callbacks.items() if not fn.stdcall] == []


def test_callbacks_match_both_sources(
    ours: Declarations, mingw: Declarations, sdk: Declarations
) -> None:
    assert set(ours.callbacks) == set(sdk.callbacks)
    mine = {name: _unconst(fn) for name, fn in ours.callbacks.items()}
    assert _mismatches(mine, sdk.callbacks) == []
    assert _mismatches(ours.callbacks, mingw.callbacks) == []


def test_handles_match_both_sources(
    ours: Declarations, mingw: Declarations, sdk: Declarations
) -> None:
    assert ours.handles == sdk.handles == mingw.handles


# ---- enums and structs -------------------------------------------------------------------


def test_enums_match_the_metadata_exactly(ours: Declarations, sdk: Declarations) -> None:
    assert set(ours.enums) == set(sdk.enums)
    assert _mismatches(ours.enums, sdk.enums) == []


def test_enums_agree_with_mingw(ours: Declarations, mingw: Declarations) -> None:
    """Every mingw member exists with the value C gives it on Windows (an int)."""
    assert set(mingw.enums) <= set(ours.enums)
    for name, members in mingw.enums.items():
        wrapped = {member: int32(value) for member, value in members.items()}
        assert {m: ours.enums[name].get(m) for m in wrapped} == wrapped, name


def test_metadata_enums_are_int32(ours: Declarations, sdk: Declarations) -> None:
    """The metadata types every enum as Int32; ours are the same size (checked by cffi too)."""
    for name in ours.enums:
        assert sdk.typedefs[name] == "i32", name


def test_structs_match_both_sources(
    ours: Declarations, mingw: Declarations, sdk: Declarations
) -> None:
    assert set(ours.structs) == set(sdk.structs)
    mine = {
        name: tuple((f, without_const(t)) for f, t in fields)
        for name, fields in ours.structs.items()
    }
    assert _mismatches(mine, sdk.structs) == []
    shared = {name: fields for name, fields in mingw.structs.items() if name in ours.structs}
    assert set(shared) == set(ours.structs)
    assert _mismatches(ours.structs, shared) == []


def test_base_types_match_mingw(ours: Declarations, mingw: Declarations) -> None:
    """Each wintypes.h typedef means what mingw's windows.h means (LLP64 widths)."""
    text = next(h.text for h in cdefs.headers() if h.name == "wintypes.h")
    names = set(re.findall(r"\b(\w+);", text)) & set(ours.typedefs)
    compared = {name: ours.typedefs[name] for name in names if name in mingw.typedefs}
    assert {n: mingw.typedefs[n] for n in compared} == compared
    assert {"DWORD", "HRESULT", "PCWSTR", "PWSTR", "HANDLE", "UINT64", "ULONG"} <= set(compared)


# ---- layout: Windows x64 ----------------------------------------------------------------

_LLP64_INTEGERS = (
    "WCHAR",
    "HRESULT",
    "BOOL",
    "DWORD",
    "ULONG",
    "USHORT",
    "UINT16",
    "UINT32",
    "UINT64",
)


def _llp64_ffi() -> FFI:
    """The same cdefs with long 32-bit, as Windows has it; everything else is the x86-64 host's."""
    if FFI().sizeof("void *") != 8:
        pytest.fail("the Windows x64 layout check needs a 64-bit host")
    parts = []
    for header in cdefs.headers():
        text = header.text
        if header.name == "wintypes.h":
            text = re.sub(r"\bunsigned long\b(?! long)", "uint32_t", text)
            text = re.sub(r"(?<!long )\blong\b(?! long)", "int32_t", text)
        parts.append(text)
    llp64 = FFI()
    llp64.cdef("\n".join(parts))
    return llp64


@pytest.fixture(scope="module")
def x64() -> dict[str, int]:
    """The layout of our structs and base types as the Windows x64 compiler computes it."""
    structs = {
        name: tuple(f for f, _ in fields) for name, fields in pyhcs_declarations().structs.items()
    }
    types = (
        *_LLP64_INTEGERS,
        "HANDLE",
        "PCWSTR",
        "HCS_SYSTEM",
        "HCS_EVENT_TYPE",
        "HCS_EVENT_OPTIONS",
    )
    return mingw_layout(structs, types, _LLP64_INTEGERS)


def test_llp64_layout_matches_the_windows_x64_compiler(
    ours: Declarations, x64: dict[str, int]
) -> None:
    llp64 = _llp64_ffi()
    mine: dict[str, int] = {}
    for name, fields in ours.structs.items():
        ctype = llp64.typeof(name)
        mine[f"size:{name}"] = llp64.sizeof(ctype)
        mine[f"align:{name}"] = llp64.alignof(ctype)
        for member, info in ctype.fields:
            mine[f"offset:{name}.{member}"] = info.offset
            mine[f"fsize:{name}.{member}"] = llp64.sizeof(info.type)
        assert [m for m, _ in ctype.fields] == [m for m, _ in fields]
    for name in (
        "HANDLE",
        "PCWSTR",
        "HCS_SYSTEM",
        "HCS_EVENT_TYPE",
        "HCS_EVENT_OPTIONS",
        *_LLP64_INTEGERS,
    ):
        mine[f"size:{name}"] = llp64.sizeof(name)
        mine[f"align:{name}"] = llp64.alignof(name)
    for name in _LLP64_INTEGERS:
        mine[f"unsigned:{name}"] = int(int(llp64.cast(name, -1)) > 0)
    assert {key: mine.get(key) for key in x64} == x64


def test_windows_x64_reference_layout(x64: dict[str, int]) -> None:
    """The struct sizes our notes state, as the x64 compiler computes them."""
    assert x64["size:HCS_EVENT"] == 24
    assert (x64["offset:HCS_EVENT.Type"], x64["offset:HCS_EVENT.EventData"]) == (0, 8)
    assert x64["offset:HCS_EVENT.Operation"] == 16
    assert x64["size:HCS_PROCESS_INFORMATION"] == 32
    assert x64["offset:HCS_PROCESS_INFORMATION.StdInput"] == 8
    assert x64["size:HCS_CREATE_OPTIONS_1"] == 48
    assert x64["offset:HCS_CREATE_OPTIONS_1.Callback"] == 40
    assert x64["size:HCN_PORT_RANGE_ENTRY"] == 64
    assert x64["size:DWORD"] == x64["size:HRESULT"] == 4
    assert x64["size:WCHAR"] == 2
    assert x64["unsigned:WCHAR"] == 1
    assert x64["size:HCS_EVENT_TYPE"] == 4
