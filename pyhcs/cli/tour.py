"""``pyhcs tour``: the HCS C surface as pyhcs binds it, printed from the live declarations.

Everything shown is read from the same cdefs, FFI and error table the binding uses, so the tour
cannot drift from what ``pyhcs.raw.lib`` actually offers.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator
from typing import Any, Final

from pyhcs import errors, hresult
from pyhcs.raw import backend, cdefs
from pyhcs.raw.ffi import constants, ffi

SECTIONS = ("backend", "functions", "types", "errors")

_DECLARATION = re.compile(r"^(?P<ret>.*)\(WINAPI \*\)\((?P<params>.*)\)$")


def _backend() -> Iterator[str]:
    yield "== Backend"
    name = backend.selected()  # a bad PYHCS_BACKEND is an error of the command, not a line
    yield f"  selected: {name} (set {backend.BACKEND_ENV}=native|emulator to choose)"
    yield "  `from pyhcs.raw import ffi, lib` gives the C functions below, e.g."
    yield "  op = lib.HcsCreateOperation(ffi.NULL, ffi.NULL)"


#: DLLs whose functions the FFI declares only to free what HCS returns or to close the pipe
#: handles it hands out; they are Windows system functions, not part of the HCS API.
HELPER_DLLS: Final = ("kernel32.dll", "ole32.dll")


def _functions() -> Iterator[str]:
    by_dll: dict[str, list[str]] = defaultdict(list)
    for name, dll in cdefs.exports().items():
        by_dll[dll].append(name)
    signatures = cdefs.signatures()
    helpers = [name for dll in HELPER_DLLS for name in by_dll.get(dll, ())]
    hcs = sum(len(names) for dll, names in by_dll.items() if dll not in HELPER_DLLS)
    yield (
        f"== Functions ({hcs} HCS functions + {len(helpers)} Windows helpers: "
        f"{', '.join(helpers)}; by DLL)"
    )
    for dll, names in by_dll.items():
        yield f"  {dll} ({len(names)})"
        for name in names:
            match = _DECLARATION.match(signatures[name])
            if match:
                yield f"    {match['ret'].strip()} {name}({match['params']})"
            else:
                yield f"    {name}: {signatures[name]}"


def _types() -> Iterator[str]:
    typedefs, tags, _unions = ffi.list_types()
    enums = [name for name in typedefs if ffi.typeof(name).kind == "enum"]
    yield f"== Enums ({len(enums)})"
    for name in enums:
        yield f"  {name} ({ffi.sizeof(name)} bytes)"
        for member, value in sorted(
            ffi.typeof(name).relements.items(), key=lambda kv: (kv[1], kv[0])
        ):
            yield f"    {member} = {value} (0x{value & 0xFFFFFFFF:08X})"
    members = {m for name in enums for m in ffi.typeof(name).relements}
    defines = {name: value for name, value in constants().items() if name not in members}
    yield f"== Constants ({len(defines)})"
    for name, value in defines.items():
        yield f"  {name} = {value} (0x{value:X})"
    structs = _structs(typedefs, tags)
    yield f"== Structs ({len(structs)})"
    for label, ctype in structs:
        if ctype.fields is None:
            yield f"  {label}: opaque"
            continue
        yield f"  {label}: {ffi.sizeof(ctype)} bytes"
        for field_name, field in ctype.fields:
            yield f"    +{field.offset:<3} {field.type.cname} {field_name}"
    # cffi gives a function-pointer typedef the kind "function" (older releases said
    # "pointer" to a "function"); both are callback types.
    callbacks = [name for name in typedefs if _is_function_pointer(ffi.typeof(name))]
    yield f"== Callback types ({len(callbacks)})"
    for name in callbacks:
        yield f"  {name}: {ffi.typeof(name).cname}"


def _is_function_pointer(ctype: Any) -> bool:
    if ctype.kind == "function":
        return True
    return bool(ctype.kind == "pointer" and ctype.item.kind == "function")


def _structs(typedefs: list[str], tags: list[str]) -> list[tuple[str, Any]]:
    """Every struct type, once: tagged structs by tag, and the anonymous ones that only a
    typedef names (``typedef struct {...} HCS_PROCESS_INFORMATION``) by that typedef."""
    found: list[tuple[str, Any]] = [(f"struct {tag}", ffi.typeof(f"struct {tag}")) for tag in tags]
    seen = {ctype for _label, ctype in found}
    for name in typedefs:
        ctype = ffi.typeof(name)
        if ctype.kind == "struct" and ctype not in seen:
            seen.add(ctype)
            found.append((f"{name} (typedef struct {{...}})", ctype))
    return sorted(found, key=lambda item: item[0].removeprefix("struct ").lower())


def _errors() -> Iterator[str]:
    yield f"== HRESULTs ({len(hresult.KNOWN)}) -> exception class"
    for code, info in sorted(hresult.KNOWN.items()):
        cls = errors.error_class_for(code).__name__
        yield f"  0x{code:08X} {info.name:<44} {cls:<28} {info.message}"


def render(sections: tuple[str, ...] = SECTIONS) -> Iterator[str]:
    """Lines of the tour, section by section."""
    producers = {"backend": _backend, "functions": _functions, "types": _types, "errors": _errors}
    for section in sections:
        yield from producers[section]()
        yield ""
