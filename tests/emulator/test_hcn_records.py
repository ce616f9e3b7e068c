"""HCN endpoints, namespaces and load balancers opened by id, enumerated and modified
(HcnOpen*, HcnEnumerate*, HcnModify*), with their error records."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from pyhcs import hresult as hr
from pyhcs.emulator.client.table import Table
from pyhcs.raw.ffi import ffi
from tests.emulator.capi import u32
from tests.emulator.test_hcn import NAT, Hcn, guid

BOGUS = 0x7EADBEEF
POLICY = {"Type": "PortMapping", "Settings": {"InternalPort": 80, "ExternalPort": 8080}}


@pytest.fixture
def n(shared: Table) -> Hcn:
    return Hcn(shared)


@pytest.fixture
def network(n: Hcn) -> Iterator[Any]:
    """A NAT network with two endpoints, a namespace and a load balancer over both endpoints;
    every record is deleted and every handle closed afterwards."""
    code, handle, _ = n.create("Network", NAT)
    assert code == 0
    made: dict[str, Any] = {"Network": handle, "endpoints": []}
    for name in ("ep-a", "ep-b"):
        code, endpoint, _ = n.create("Endpoint", {"Name": name}, network=handle)
        assert code == 0
        made["endpoints"].append(endpoint)
    ids = [n.query("Endpoint", e)["Id"] for e in made["endpoints"]]
    code, made["Namespace"], _ = n.create("Namespace", {"Type": "Host"})
    assert code == 0
    balancer = {"HostComputeEndpoints": ids, "PortMappings": [], "Policies": []}
    code, made["LoadBalancer"], _ = n.create("LoadBalancer", balancer)
    assert code == 0
    yield made
    for kind in ("LoadBalancer", "Namespace"):
        assert n.delete(kind, n.query(kind, made[kind])["Id"]) == (0, None)
        n.close(kind, made[kind])
    for endpoint, record_id in zip(made["endpoints"], ids, strict=True):
        assert n.delete("Endpoint", record_id) == (0, None)
        n.close("Endpoint", endpoint)
    assert n.delete("Network", n.query("Network", handle)["Id"]) == (0, None)
    n.close("Network", handle)


def open_by_id(n: Hcn, kind: str, record_id: str) -> tuple[int, Any, Any]:
    """(HRESULT, handle, error record) of HcnOpen<kind>."""
    out, error = ffi.new(f"HCN_{kind.upper()} *"), ffi.new("PWSTR *")
    code = u32(n.fn(f"HcnOpen{kind}")(guid(uuid.UUID(record_id)), out, error))
    return code, out[0], n.take(error)


def enumerate_raw(n: Hcn, plural: str, query: str | None) -> tuple[int, Any, Any]:
    out, error = ffi.new("PWSTR *"), ffi.new("PWSTR *")
    function = n.fn(f"HcnEnumerate{plural}")
    code = u32(function(ffi.NULL if query is None else query, out, error))
    return code, n.take(out), n.take(error)


@pytest.mark.parametrize(
    ("kind", "not_found"),
    [
        ("Endpoint", hr.HCN_E_ENDPOINT_NOT_FOUND),
        ("Namespace", hr.ERROR_NOT_FOUND),
        ("LoadBalancer", hr.ERROR_NOT_FOUND),
    ],
)
def test_open_by_id(n: Hcn, network: Any, kind: str, not_found: int) -> None:
    original = network["endpoints"][0] if kind == "Endpoint" else network[kind]
    record = n.query(kind, original)
    code, opened, error = open_by_id(n, kind, record["Id"])
    assert (code, error) == (0, None)
    assert opened != original  # a second handle to the same record
    assert n.query(kind, opened) == record
    n.close(kind, opened)
    assert n.query(kind, original) == record  # closing a handle deletes nothing
    # Upper-case ids name the same record.
    code, opened, _ = open_by_id(n, kind, record["Id"].upper())
    assert code == 0
    n.close(kind, opened)

    missing = str(uuid.uuid4())
    code, opened, error = open_by_id(n, kind, missing)
    assert code == not_found
    assert opened == ffi.NULL
    assert error["Success"] is False
    assert error["ErrorCode"] == not_found
    assert missing in error["Error"]
    out = ffi.new(f"HCN_{kind.upper()} *")
    assert u32(n.fn(f"HcnOpen{kind}")(ffi.NULL, out, ffi.NULL)) == hr.E_POINTER
    value = guid(uuid.UUID(record["Id"]))
    assert u32(n.fn(f"HcnOpen{kind}")(value, ffi.NULL, ffi.NULL)) == hr.E_POINTER
    assert n.t.client.counters()["endpoints"] == 2  # only the fixture's handles are open


def test_enumerate_endpoints_with_filters(n: Hcn, network: Any) -> None:
    records = [n.query("Endpoint", e) for e in network["endpoints"]]
    ids = sorted(r["Id"] for r in records)
    assert n.enumerate("Endpoints") == ids
    assert n.enumerate("Endpoints", {}) == ids
    by_name = {"Filter": json.dumps({"Name": "ep-b"})}
    assert n.enumerate("Endpoints", by_name) == [records[1]["Id"]]
    on_network = {"Filter": json.dumps({"HostComputeNetwork": records[0]["HostComputeNetwork"]})}
    assert n.enumerate("Endpoints", on_network) == ids
    elsewhere = {"Filter": json.dumps({"HostComputeNetwork": str(uuid.uuid4())})}
    assert n.enumerate("Endpoints", elsewhere) == []
    # Enumerating is per kind: the network's id is no endpoint.
    assert records[0]["HostComputeNetwork"] not in n.enumerate("Endpoints")


def test_enumerate_load_balancers_with_filters(n: Hcn, network: Any) -> None:
    record = n.query("LoadBalancer", network["LoadBalancer"])
    assert n.enumerate("LoadBalancers") == [record["Id"]]
    same = {"Filter": json.dumps({"HostComputeEndpoints": record["HostComputeEndpoints"]})}
    assert n.enumerate("LoadBalancers", same) == [record["Id"]]
    other = {"Filter": json.dumps({"HostComputeEndpoints": []})}
    assert n.enumerate("LoadBalancers", other) == []


@pytest.mark.parametrize("plural", ["Endpoints", "LoadBalancers"])
@pytest.mark.parametrize(
    "query", ["{", "[]", '{"Filter": 3}', '{"Filter": "{"}', '{"Filter": "[1]"}']
)
def test_enumerate_rejects_bad_queries(n: Hcn, network: Any, plural: str, query: str) -> None:
    code, listing, error = enumerate_raw(n, plural, query)
    assert code == hr.HCN_E_INVALID_JSON
    assert listing is None
    assert error["ErrorCode"] == hr.HCN_E_INVALID_JSON
    error_out = ffi.new("PWSTR *")
    assert u32(n.fn(f"HcnEnumerate{plural}")(ffi.NULL, ffi.NULL, error_out)) == (hr.E_POINTER)


@pytest.mark.parametrize("kind", ["Endpoint", "LoadBalancer"])
def test_modify_policies(n: Hcn, network: Any, kind: str) -> None:
    handle = network["endpoints"][0] if kind == "Endpoint" else network[kind]
    other = {"Type": "ACL", "Settings": {"Action": "Allow"}}

    def request(action: str, policies: list[Any]) -> dict[str, Any]:
        return {"ResourceType": "Policy", "RequestType": action, "Settings": {"Policies": policies}}

    assert n.modify(kind, handle, request("Add", [POLICY])) == (0, None)
    assert n.modify(kind, handle, request("Add", [other])) == (0, None)
    assert n.query(kind, handle)["Policies"] == [POLICY, other]
    assert n.modify(kind, handle, request("Remove", [POLICY])) == (0, None)
    assert n.query(kind, handle)["Policies"] == [other]
    assert n.modify(kind, handle, request("Update", [POLICY])) == (0, None)
    assert n.query(kind, handle)["Policies"] == [POLICY]
    # The change is on the record: another handle sees it.
    code, opened, _ = open_by_id(n, kind, n.query(kind, handle)["Id"])
    assert code == 0
    assert n.query(kind, opened)["Policies"] == [POLICY]
    n.close(kind, opened)
    if kind == "Endpoint":  # the sibling endpoint is untouched
        assert n.query(kind, network["endpoints"][1])["Policies"] == []


@pytest.mark.parametrize("kind", ["Endpoint", "LoadBalancer"])
@pytest.mark.parametrize(
    ("request_text", "code"),
    [
        ("{", hr.HCN_E_INVALID_JSON),
        ("", hr.HCN_E_INVALID_JSON),
        ('"Policy"', hr.HCN_E_INVALID_JSON),
        ('{"ResourceType": "Endpoint", "RequestType": "Add"}', hr.HCN_E_INVALID_JSON),
        ('{"ResourceType": "Policy", "RequestType": "Replace"}', hr.HCN_E_INVALID_JSON),
        ('{"ResourceType": "Policy", "RequestType": "Add"}', hr.HCN_E_INVALID_POLICY),
        (
            '{"ResourceType": "Policy", "RequestType": "Add", "Settings": {"Policies": {}}}',
            hr.HCN_E_INVALID_POLICY,
        ),
    ],
)
def test_modify_rejects_bad_requests_and_changes_nothing(
    n: Hcn, network: Any, kind: str, request_text: str, code: int
) -> None:
    handle = network["endpoints"][0] if kind == "Endpoint" else network[kind]
    before = n.query(kind, handle)
    result, error = n.modify(kind, handle, request_text)
    assert result == code
    assert error["ErrorCode"] == code
    assert n.query(kind, handle) == before


@pytest.mark.parametrize("kind", ["Endpoint", "LoadBalancer"])
def test_modify_needs_a_live_handle_of_its_kind(n: Hcn, network: Any, kind: str) -> None:
    add = {"ResourceType": "Policy", "RequestType": "Add", "Settings": {"Policies": [POLICY]}}
    text = json.dumps(add)
    modify = n.fn(f"HcnModify{kind}")
    error = ffi.new("PWSTR *")
    assert u32(modify(ffi.cast("void *", BOGUS), text, error)) == hr.E_HANDLE
    assert error[0] == ffi.NULL
    assert u32(modify(network["Network"], text, error)) == hr.E_HANDLE  # a network handle
    # A handle whose record was deleted meanwhile reports not found.
    code, spare, _ = (
        n.create("Endpoint", {"Name": "spare"}, network=network["Network"])
        if kind == "Endpoint"
        else n.create("LoadBalancer", {})
    )
    assert code == 0
    assert n.delete(kind, n.query(kind, spare)["Id"]) == (0, None)
    result, record = n.modify(kind, spare, add)
    not_found = hr.HCN_E_ENDPOINT_NOT_FOUND if kind == "Endpoint" else hr.ERROR_NOT_FOUND
    assert result == not_found
    assert record["ErrorCode"] == not_found
    n.close(kind, spare)


def test_error_code_is_the_unsigned_hresult_as_hns_writes_it(n: Hcn) -> None:
    # HNS writes ErrorCode as a uint32 (hcsshim decodes it as hcn.ErrorCode, a uint32), so a
    # failure HRESULT is a number above 2**31, never the negative form of HCS's ResultError.
    out, error = ffi.new("HCN_NETWORK *"), ffi.new("PWSTR *")
    missing = uuid.uuid4()
    code = u32(n.t.HcnOpenNetwork(guid(missing), out, error))
    assert code == hr.HCN_E_NETWORK_NOT_FOUND
    record = n.take(error)
    assert isinstance(record["ErrorCode"], int)
    assert 2**31 <= record["ErrorCode"] < 2**32
    assert record["ErrorCode"] == hr.to_unsigned(code)
    assert hr.to_signed(record["ErrorCode"]) < 0  # the same HRESULT HCS would write signed
