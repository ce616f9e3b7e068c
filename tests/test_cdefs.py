"""The C declarations on this host: they parse, map to the right DLLs and keep the ABI rules.

Needs nothing but cffi; the comparison with the Windows SDK is in test_cdefs_sdk.py.
"""

from __future__ import annotations

from collections import Counter

import pytest

from pyhcs.raw import cdefs
from pyhcs.raw.ffi import constants, ffi
from tests.sdk_sources import Declarations, pyhcs_declarations, pyhcs_defines

EXPECTED_PER_DLL = {
    "computecore.dll": 59,
    "computestorage.dll": 14,
    "computenetwork.dll": 43,
    "kernel32.dll": 2,
    "ole32.dll": 1,
}


@pytest.fixture(scope="module")
def ours() -> Declarations:
    """Our cdefs read by the same pycparser reader that reads mingw."""
    return pyhcs_declarations()


def test_exactly_the_listed_headers_exist() -> None:
    directory = cdefs.cdefs_dir()
    assert sorted(p.name for p in directory.glob("*.h")) == sorted(cdefs.HEADERS)


def test_headers_name_their_dll_on_the_first_line() -> None:
    dlls = {header.name: header.dll for header in cdefs.headers()}
    assert dlls == {
        "wintypes.h": None,
        "computedefs.h": None,
        "computecore.h": "computecore.dll",
        "computestorage.h": "computestorage.dll",
        "computenetwork.h": "computenetwork.dll",
        "winbase.h": "kernel32.dll",
        "combaseapi.h": "ole32.dll",
    }


def test_type_headers_declare_no_functions() -> None:
    for header in cdefs.headers():
        if header.dll is None:
            assert header.functions == (), header.name


def test_export_count_per_dll() -> None:
    assert Counter(cdefs.exports().values()) == EXPECTED_PER_DLL
    assert sum(EXPECTED_PER_DLL.values()) == 116 + 3


def test_system_functions_come_from_the_system_dlls() -> None:
    exports = cdefs.exports()
    assert exports["LocalFree"] == "kernel32.dll"
    assert exports["CloseHandle"] == "kernel32.dll"
    assert exports["CoTaskMemFree"] == "ole32.dll"


def test_prefixes_match_their_dll() -> None:
    for name, dll in cdefs.exports().items():
        if dll == "computenetwork.dll":
            assert name.startswith("Hcn"), name
        elif dll in {"computecore.dll", "computestorage.dll"}:
            assert name.startswith("Hcs"), name


def test_every_signature_is_a_cffi_function_pointer(ours: Declarations) -> None:
    """The lead's signature table, read by cffi, has the arity pycparser sees."""
    signatures = cdefs.signatures()
    assert set(signatures) == set(cdefs.exports())
    for name, text in signatures.items():
        ctype = ffi.typeof(text)
        assert ctype.kind == "function", name  # cffi's kind for a function pointer
        assert len(ctype.args) == len(ours.functions[name].params), name
        assert not ctype.ellipsis, name


def test_every_export_is_declared_winapi(ours: Declarations) -> None:
    assert set(ours.functions) == set(cdefs.exports())
    assert all(fn.stdcall for fn in ours.functions.values())
    assert all(fn.stdcall for fn in ours.callbacks.values())


def test_wchar_is_utf16_char16_t() -> None:
    assert ffi.typeof("WCHAR") is ffi.typeof("char16_t")
    assert ffi.sizeof("WCHAR") == 2
    assert ffi.typeof("PCWSTR") is ffi.typeof("char16_t *")
    text = ffi.new("WCHAR[]", "h\u00e9\U0001f600")
    assert ffi.sizeof(text) == 2 * 5  # the emoji is a surrogate pair, plus the NUL
    assert ffi.string(text) == "h\u00e9\U0001f600"


def test_hresult_and_dword_keep_the_sdk_spelling() -> None:
    """HRESULT is long and DWORD unsigned long: 8 bytes on LP64 hosts, on both sides of the ABI."""
    assert ffi.typeof("HRESULT") is ffi.typeof("long")
    assert ffi.typeof("DWORD") is ffi.typeof("unsigned long")
    assert ffi.typeof("ULONG") is ffi.typeof("unsigned long")
    assert ffi.cast("HRESULT", 0x80370118) != 0
    assert ffi.sizeof("UINT32") == 4
    assert ffi.sizeof("UINT64") == 8
    assert ffi.sizeof("USHORT") == ffi.sizeof("UINT16") == 2
    assert ffi.typeof("BOOL") is ffi.typeof("int")


def test_hcs_handles_are_distinct_opaque_pointers(ours: Declarations) -> None:
    assert ours.handles == {"HCS_SYSTEM", "HCS_PROCESS", "HCS_OPERATION", "HCS_CALLBACK"}
    targets = set()
    for name in ours.handles:
        ctype = ffi.typeof(name)
        assert ctype.kind == "pointer"
        assert ctype.item.kind == "struct"
        assert ctype.item.fields is None  # opaque: nobody can read or size it
        targets.add(ctype.item.cname)
    assert len(targets) == 4


def test_hcn_handles_and_system_handles_are_void_pointers() -> None:
    for name in ("HCN_NETWORK", "HCN_NAMESPACE", "HCN_ENDPOINT", "HCN_LOADBALANCER"):
        assert ffi.typeof(name) is ffi.typeof("void *"), name
    for name in ("HCN_SERVICE", "HCN_GUESTNETWORKSERVICE", "HCN_CALLBACK"):
        assert ffi.typeof(name) is ffi.typeof("void *"), name
    for name in ("HANDLE", "HLOCAL", "LPVOID"):
        assert ffi.typeof(name) is ffi.typeof("void *"), name
    assert ffi.typeof("PHCN_NETWORK") is ffi.typeof("void **")


def test_guid_is_16_bytes_with_fixed_width_fields() -> None:
    assert ffi.sizeof("GUID") == 16
    assert ffi.alignof("GUID") == 4
    assert [(n, f.offset, ffi.sizeof(f.type)) for n, f in ffi.typeof("GUID").fields] == [
        ("Data1", 0, 4),
        ("Data2", 4, 2),
        ("Data3", 6, 2),
        ("Data4", 8, 8),
    ]
    assert ffi.typeof("REFGUID") is ffi.typeof("GUID *")
    with pytest.raises(ValueError, match="unknown size"):
        ffi.sizeof("SECURITY_DESCRIPTOR")


def test_enums_are_32_bit_and_negative_values_are_signed(ours: Declarations) -> None:
    for name, members in ours.enums.items():
        ctype = ffi.typeof(name)
        assert ctype.kind == "enum", name
        assert ffi.sizeof(ctype) == 4, name
        assert ctype.relements == members, name
        if min(members.values()) < 0:
            assert int(ffi.cast(ctype, 0xFFFFFFFF)) == -1, name


def test_enum_constants_are_served_with_their_c_values() -> None:
    from pyhcs.raw import lib

    table = constants()
    assert table["HcsEventGroupVmLifecycle"] == -2147483646
    assert table["HcsEventGroupVmLifecycle"] & 0xFFFFFFFF == 0x80000002
    assert table["HcsEventGroupOperationInfo"] & 0xFFFFFFFF == 0xC0000001
    assert table["HcsNotificationFlagFailure"] == -(2**31)
    assert table["HcnNotificationFlagsReserved"] & 0xFFFFFFFF == 0xF0000000
    assert table["HcsOperationTypeNone"] == -1
    assert table["HcsCreateOptions_1"] == 0x10000
    assert lib.HcsEventGroupLiveMigration == -2147483645
    event = ffi.new("HCS_EVENT *")
    ffi.cast("int *", event)[0] = -2147483646
    assert event.Type == table["HcsEventGroupVmLifecycle"]


def test_invalid_operation_id_is_all_ones() -> None:
    assert pyhcs_defines() == {"HCS_INVALID_OPERATION_ID": 2**64 - 1}
    assert int(ffi.cast("UINT64", -1)) == pyhcs_defines()["HCS_INVALID_OPERATION_ID"]


def test_callbacks_can_be_made_from_the_declared_types(ours: Declarations) -> None:
    seen: list[int] = []

    def on_event(event: object, context: object) -> None:
        seen.append(int(ffi.cast("HCS_EVENT *", event).Type))

    callback = ffi.callback("HCS_EVENT_CALLBACK", on_event)
    event = ffi.new("HCS_EVENT *", {"Type": constants()["HcsEventProcessExited"]})
    callback(event, ffi.NULL)
    assert seen == [0x10000]
    for name in ours.callbacks:
        ctype = ffi.typeof(name)
        assert ctype.kind == "function", name
        assert len(ctype.args) == len(ours.callbacks[name].params), name


def test_pointer_only_structs_have_the_same_layout_on_every_64_bit_host() -> None:
    """HCS_EVENT has no long in it, so the Windows x64 layout holds here too."""
    assert ffi.sizeof("void *") == 8
    assert ffi.sizeof("HCS_EVENT") == 24
    assert [(n, f.offset) for n, f in ffi.typeof("HCS_EVENT").fields] == [
        ("Type", 0),
        ("EventData", 8),
        ("Operation", 16),
    ]
    assert ffi.sizeof("HCN_PORT_RANGE_RESERVATION") == 4
    assert ffi.sizeof("HCN_PORT_RANGE_ENTRY") == 64


def test_host_layout_follows_the_declared_field_order(ours: Declarations) -> None:
    """Fields are in declaration order, aligned, non-overlapping, and fill the struct."""
    for name, fields in ours.structs.items():
        ctype = ffi.typeof(name)
        assert [n for n, _ in ctype.fields] == [n for n, _ in fields], name
        end = 0
        for member, info in ctype.fields:
            assert info.offset >= end, (name, member)
            assert info.offset % ffi.alignof(info.type) == 0, (name, member)
            end = info.offset + ffi.sizeof(info.type)
        assert end <= ffi.sizeof(ctype) < end + ffi.alignof(ctype), name


def test_process_information_on_this_host() -> None:
    """DWORD follows the host's unsigned long; the handles follow it, pointer-aligned."""
    dword = ffi.sizeof("DWORD")
    fields = dict(ffi.typeof("HCS_PROCESS_INFORMATION").fields)
    assert fields["Reserved"].offset == dword
    assert fields["StdInput"].offset == max(2 * dword, 8)
    assert ffi.sizeof("HCS_PROCESS_INFORMATION") == fields["StdError"].offset + 8
