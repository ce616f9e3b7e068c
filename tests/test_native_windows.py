"""The same C-level calls against the real computecore.dll, on a Windows host that has HCS."""

from __future__ import annotations

import sys

import pytest

from pyhcs import hresult as hr
from pyhcs.raw import NativeLibrary, ffi, out_wide, take_wide

pytestmark = [
    pytest.mark.windows,
    pytest.mark.skipif(sys.platform != "win32", reason="needs Windows with the HCS feature"),
]


def test_unused_operation_reports_not_started() -> None:
    native = NativeLibrary()
    op = native.HcsCreateOperation(ffi.NULL, ffi.NULL)
    assert op != ffi.NULL
    try:
        assert native.HcsGetOperationType(op) == -1
        document = out_wide()
        result = native.HcsGetOperationResult(op, document)
        assert hr.to_unsigned(result) == hr.HCS_E_OPERATION_NOT_STARTED
        take_wide(document[0], free=native.LocalFree)
    finally:
        native.HcsCloseOperation(op)


def test_service_properties_list_schema_versions() -> None:
    native = NativeLibrary()
    query = ffi.new("WCHAR[]", '{"PropertyTypes":["Basic"]}')
    document = out_wide()
    result = native.HcsGetServiceProperties(query, document)
    assert hr.succeeded(result), hr.describe(result)
    text = take_wide(document[0], free=native.LocalFree)
    assert text is not None
    assert "SupportedSchemaVersions" in text
