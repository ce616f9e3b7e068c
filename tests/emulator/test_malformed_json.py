"""Malformed create documents of every kind: HCS_E_INVALID_JSON and no state change."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyhcs import hresult as hr
from pyhcs.emulator.client.table import Table
from pyhcs.raw.ffi import ffi
from tests.emulator.capi import CApi
from tests.emulator.conftest import CONTAINER

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)


@pytest.fixture
def table(shared: Table) -> Table:
    """The tests of this module share one service: none stops it, sets its environment or
    counts service-wide state, and each uses its own system ids."""
    return shared


def _not_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return True
    return False


_documents = st.one_of(
    # not JSON at all
    st.text(max_size=40).filter(_not_json),
    # JSON, but not an object
    _json.filter(lambda v: not isinstance(v, dict)).map(json.dumps),
    # a valid document plus an unknown top-level field
    st.tuples(st.text(min_size=1, max_size=10), _json)
    .filter(
        lambda kv: (
            kv[0]
            not in {
                *CONTAINER,
                "HostingSystemId",
                "HostedSystem",
                "VirtualMachine",
                "ShouldTerminateOnLastHandleClosed",
            }
        )
    )
    .map(lambda kv: json.dumps({**CONTAINER, kv[0]: kv[1]})),
    # a known field with a value of the wrong type
    _json.filter(lambda v: not isinstance(v, bool) and v is not None).map(
        lambda v: json.dumps({**CONTAINER, "ShouldTerminateOnLastHandleClosed": v})
    ),
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(document=_documents)
def test_malformed_documents_are_rejected(table: Table, c: CApi, document: str) -> None:
    system, code, doc = c.create("fuzz", document)
    try:
        assert code == hr.HCS_E_INVALID_JSON, (document, hex(code))
        assert doc is not None
        error: dict[str, Any] = json.loads(doc)
        assert error["Error"] == hr.to_signed(hr.HCS_E_INVALID_JSON)
        assert "$" in error["ErrorMessage"]
    finally:
        table.HcsCloseComputeSystem(system)
    code, listing = c.run(lambda op: table.HcsEnumerateComputeSystems(ffi.NULL, op))
    assert code == 0
    assert json.loads(listing or "[]") == []
