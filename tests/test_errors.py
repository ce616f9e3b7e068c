"""The one HRESULT -> exception mapping, and ResultError documents of every shape."""

from __future__ import annotations

import json
import pickle
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyhcs import errors
from pyhcs import hresult as hr

failing = st.integers(min_value=0x80000000, max_value=0xFFFFFFFF)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)

DOC = {
    "Error": -2143878899,
    "ErrorMessage": "The virtual machine or container JSON document is invalid.",
    "ErrorEvents": [
        {
            "Message": "unknown field",
            "StackTrace": "at x",
            "Provider": "17103e3f-3c6e-4677-bb17-3b267eb5be57",
            "EventId": 12345,
            "Flags": 0,
            "Source": "vmcompute",
            "Data": [{"Type": "String", "Value": "$.Foo"}],
        }
    ],
    "Attribution": [
        {"OperationFailure": {"Detail": "Start"}},
        {"SystemExit": {"Detail": "Terminate", "Initiator": "Client"}},
    ],
}


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        (hr.HCS_E_SYSTEM_NOT_FOUND, errors.SystemNotFoundError),
        (hr.ERROR_NOT_FOUND, errors.NotFoundError),
        (hr.HCS_E_SYSTEM_ALREADY_EXISTS, errors.AlreadyExistsError),
        (hr.HCS_E_SYSTEM_ALREADY_STOPPED, errors.AlreadyStoppedError),
        (hr.HCS_E_PROCESS_ALREADY_STOPPED, errors.ProcessAlreadyStoppedError),
        (hr.HCS_E_INVALID_STATE, errors.InvalidStateError),
        (hr.HCS_E_INVALID_JSON, errors.InvalidJsonError),
        (hr.HCS_E_OPERATION_TIMEOUT, errors.OperationTimeoutError),
        (hr.HCS_E_ACCESS_DENIED, errors.AccessDeniedError),
        (hr.E_ACCESSDENIED, errors.AccessDeniedError),
        (hr.HCS_E_SERVICE_DISCONNECT, errors.ServiceDisconnectError),
        (hr.ERROR_NOT_SUPPORTED, errors.NotSupportedError),
        (hr.E_NOTIMPL, errors.NotSupportedError),
        (hr.HCS_E_OPERATION_PENDING, errors.OperationPendingError),
        (hr.HCS_E_OPERATION_NOT_STARTED, errors.OperationNotStartedError),
        (hr.HCS_E_OPERATION_ALREADY_CANCELLED, errors.OperationCancelledError),
        (hr.HCS_E_OPERATION_SYSTEM_CALLBACK_ALREADY_SET, errors.CallbackAlreadySetError),
        (hr.HCS_E_HYPERV_NOT_INSTALLED, errors.FeatureMissingError),
        (hr.HCS_E_IMAGE_MISMATCH, errors.ImageMismatchError),
        (hr.E_INVALIDARG, errors.InvalidArgumentError),
        (hr.E_HANDLE, errors.InvalidHandleError),
        (hr.HCN_E_NETWORK_NOT_FOUND, errors.NotFoundError),
        (hr.HCN_E_INVALID_JSON, errors.InvalidJsonError),
        # Means something else when a call returns it (hcsshim): must stay generic.
        (hr.ERROR_PROC_NOT_FOUND, errors.HcsError),
        (hr.E_FAIL, errors.HcsError),
    ],
)
def test_classes_callers_branch_on(code: int, cls: type[errors.HcsError]) -> None:
    error = errors.error_from_hresult(code)
    assert type(error) is cls
    assert error.hresult == code
    assert error.message == hr.message(code)


@given(failing)
def test_every_failure_maps_to_an_hcs_error(code: int) -> None:
    error = errors.error_from_hresult(code, operation="HcsStartComputeSystem", system_id="c1")
    assert isinstance(error, errors.HcsError)
    assert error.hresult == code
    assert error.name == hr.name(code)
    rendered = str(error)
    assert "HcsStartComputeSystem c1" in rendered
    assert f"0x{code:08X}" in rendered


@given(st.integers(min_value=-(2**63), max_value=2**64 - 1))
def test_check_raises_exactly_for_failures(code: int) -> None:
    if hr.failed(code):
        with pytest.raises(errors.HcsError) as caught:
            errors.check(code, operation="op")
        assert caught.value.hresult == hr.to_unsigned(code)
    else:
        assert errors.check(code) == hr.to_unsigned(code)


@pytest.mark.parametrize(
    "value", [v for v in hr.KNOWN if hr.facility(v) == 0x37 and v < 0xC0000000]
)
def test_legacy_codes_map_to_the_same_class(value: int) -> None:
    legacy = errors.error_from_hresult(value | 0x40000000)
    assert type(legacy) is errors.error_class_for(value)
    assert legacy.hresult == value | 0x40000000


def test_result_error_document_is_parsed() -> None:
    error = errors.error_from_hresult(
        hr.HCS_E_INVALID_JSON, operation="HcsCreateComputeSystem", document=json.dumps(DOC)
    )
    assert isinstance(error, errors.InvalidJsonError)
    assert error.message == DOC["ErrorMessage"]
    assert error.result.error == hr.HCS_E_INVALID_JSON
    (event,) = error.error_events
    assert event.message == "unknown field"
    assert event.event_id == 12345
    assert event.provider == "17103e3f-3c6e-4677-bb17-3b267eb5be57"
    assert event.data == ({"Type": "String", "Value": "$.Foo"},)
    assert [record.kind for record in error.attribution] == ["OperationFailure", "SystemExit"]
    assert error.attribution[1].detail == {"Detail": "Terminate", "Initiator": "Client"}
    assert "Event Detail: unknown field" in str(error)
    assert error.document == json.dumps(DOC)


def test_returned_hresult_wins_over_the_document() -> None:
    document = json.dumps({"Error": hr.to_signed(hr.HCS_E_INVALID_STATE), "ErrorMessage": "x"})
    error = errors.error_from_hresult(hr.HCS_E_SYSTEM_NOT_FOUND, document=document)
    assert type(error) is errors.SystemNotFoundError
    assert error.hresult == hr.HCS_E_SYSTEM_NOT_FOUND
    assert error.result.error == hr.HCS_E_INVALID_STATE


@given(failing, st.text() | json_values.map(json.dumps))
def test_any_document_keeps_the_class_of_the_hresult(code: int, document: str) -> None:
    error = errors.error_from_hresult(code, document=document)
    assert type(error) is errors.error_class_for(code)
    assert error.document == document
    assert error.message


@given(st.binary())
def test_non_utf8_documents_are_tolerated(document: bytes) -> None:
    parsed = errors.parse_result_error(document)
    assert parsed.document is not None


def test_hints() -> None:
    assert "Hyper-V Administrators" in (
        errors.error_from_hresult(hr.HCS_E_ACCESS_DENIED).hint or ""
    )
    assert "Containers" in (errors.error_from_hresult(hr.HCS_E_HYPERV_NOT_INSTALLED).hint or "")
    assert errors.error_from_hresult(hr.E_FAIL).hint is None


def test_builtin_families() -> None:
    assert isinstance(errors.error_from_hresult(hr.HCS_E_OPERATION_TIMEOUT), TimeoutError)
    assert isinstance(errors.error_from_hresult(hr.HCS_E_ACCESS_DENIED), PermissionError)
    assert isinstance(errors.error_from_hresult(hr.HCS_E_SERVICE_DISCONNECT), ConnectionError)
    assert isinstance(errors.error_from_hresult(hr.HCS_E_INVALID_JSON), ValueError)


@pytest.mark.parametrize(
    ("predicate", "yes", "no"),
    [
        (
            errors.is_not_exist,
            [hr.HCS_E_SYSTEM_NOT_FOUND, 0xC037010E, hr.ERROR_NOT_FOUND],
            [hr.E_FAIL],
        ),
        (
            errors.is_already_stopped,
            [hr.HCS_E_SYSTEM_ALREADY_STOPPED, hr.HCS_E_PROCESS_ALREADY_STOPPED, 0xC0370110],
            [hr.HCS_E_INVALID_STATE],
        ),
        (errors.is_already_exists, [hr.HCS_E_SYSTEM_ALREADY_EXISTS], [hr.HCS_E_SYSTEM_NOT_FOUND]),
        (errors.is_operation_pending, [hr.HCS_E_OPERATION_PENDING, 0xC0370103], [hr.S_OK]),
        (errors.is_timeout, [hr.HCS_E_OPERATION_TIMEOUT], [hr.HCS_E_OPERATION_PENDING]),
        (errors.is_access_denied, [hr.E_ACCESSDENIED, hr.HCS_E_ACCESS_DENIED], [hr.E_HANDLE]),
        (errors.is_not_supported, [hr.ERROR_NOT_SUPPORTED, hr.E_NOTIMPL], [hr.E_INVALIDARG]),
        (
            errors.is_service_disconnect,
            [hr.HCS_E_SERVICE_DISCONNECT, hr.RPC_S_CALL_FAILED],
            [hr.E_FAIL],
        ),
    ],
)
def test_predicates(predicate: Any, yes: list[int], no: list[int]) -> None:
    for code in yes:
        assert predicate(code)
        assert predicate(errors.error_from_hresult(code))
    for code in no:
        assert not predicate(code)
        assert not predicate(errors.error_from_hresult(code))
    assert not predicate(ValueError("not an HCS error"))


@pytest.mark.parametrize(
    "error",
    [
        errors.error_from_hresult(
            hr.HCS_E_INVALID_STATE, operation="op", system_id="s", pid=7, document=json.dumps(DOC)
        ),
        errors.InvalidJsonError("bad", json_path="$.Container.Foo", operation="create"),
        errors.ExportNotFoundError("gone", function="HcsWaitForProcessExit", dll="computecore.dll"),
        errors.DllNotFoundError("no dll", dll="computecore.dll"),
    ],
)
def test_errors_survive_pickling(error: errors.HcsError) -> None:
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert copy.__dict__.keys() == error.__dict__.keys()
    for key, value in error.__dict__.items():
        assert getattr(copy, key) == value, key
    assert str(copy) == str(error)


def test_class_codes_are_disjoint() -> None:
    seen: dict[int, type[errors.HcsError]] = {}
    pending: list[type[errors.HcsError]] = [errors.HcsError]
    while pending:
        cls = pending.pop()
        for code in cls.__dict__.get("codes", ()):
            assert code not in seen, (hex(code), cls, seen.get(code))
            seen[code] = cls
            assert errors.error_class_for(code) is cls
        pending.extend(cls.__subclasses__())
