"""computenetwork (HCN): records in the service, their errors, notifications across processes,
and guest-network-service port reservations."""

from __future__ import annotations

import ipaddress
import json
import threading
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyhcs import hresult as hr
from pyhcs.emulator.client.table import Table
from pyhcs.raw.ffi import ffi
from tests.emulator.capi import u32
from tests.emulator.conftest import run_child, stop_service

NAT = {
    "Name": "nat-1",
    "Type": "NAT",
    "Ipams": [{"Type": "Static", "Subnets": [{"IpAddressPrefix": "172.20.0.0/24"}]}],
    "SchemaVersion": {"Major": 2, "Minor": 0},
}


def guid(value: uuid.UUID) -> Any:
    g = ffi.new("GUID *")
    g.Data1, g.Data2, g.Data3 = value.fields[0], value.fields[1], value.fields[2]
    for i, byte in enumerate(value.bytes[8:]):
        g.Data4[i] = byte
    return g


class Hcn:
    """C-level HCN calls: every string out is copied and freed with CoTaskMemFree."""

    def __init__(self, table: Table) -> None:
        self.t = table
        t = table
        # Every function by its name, written out so that tests/test_every_function_is_tested.py
        # finds each one in the source (it does not evaluate f-strings).
        self.functions: dict[str, Any] = {
            "HcnCreateNetwork": t.HcnCreateNetwork,
            "HcnCreateEndpoint": t.HcnCreateEndpoint,
            "HcnCreateNamespace": t.HcnCreateNamespace,
            "HcnCreateLoadBalancer": t.HcnCreateLoadBalancer,
            "HcnCreateGuestNetworkService": t.HcnCreateGuestNetworkService,
            "HcnOpenNetwork": t.HcnOpenNetwork,
            "HcnOpenEndpoint": t.HcnOpenEndpoint,
            "HcnOpenNamespace": t.HcnOpenNamespace,
            "HcnOpenLoadBalancer": t.HcnOpenLoadBalancer,
            "HcnQueryNetworkProperties": t.HcnQueryNetworkProperties,
            "HcnQueryEndpointProperties": t.HcnQueryEndpointProperties,
            "HcnQueryNamespaceProperties": t.HcnQueryNamespaceProperties,
            "HcnQueryLoadBalancerProperties": t.HcnQueryLoadBalancerProperties,
            "HcnQueryEndpointStats": t.HcnQueryEndpointStats,
            "HcnQueryEndpointAddresses": t.HcnQueryEndpointAddresses,
            "HcnEnumerateNetworks": t.HcnEnumerateNetworks,
            "HcnEnumerateEndpoints": t.HcnEnumerateEndpoints,
            "HcnEnumerateNamespaces": t.HcnEnumerateNamespaces,
            "HcnEnumerateLoadBalancers": t.HcnEnumerateLoadBalancers,
            "HcnModifyNetwork": t.HcnModifyNetwork,
            "HcnModifyEndpoint": t.HcnModifyEndpoint,
            "HcnModifyNamespace": t.HcnModifyNamespace,
            "HcnModifyLoadBalancer": t.HcnModifyLoadBalancer,
            "HcnModifyGuestNetworkService": t.HcnModifyGuestNetworkService,
            "HcnDeleteNetwork": t.HcnDeleteNetwork,
            "HcnDeleteEndpoint": t.HcnDeleteEndpoint,
            "HcnDeleteNamespace": t.HcnDeleteNamespace,
            "HcnDeleteLoadBalancer": t.HcnDeleteLoadBalancer,
            "HcnDeleteGuestNetworkService": t.HcnDeleteGuestNetworkService,
            "HcnCloseNetwork": t.HcnCloseNetwork,
            "HcnCloseEndpoint": t.HcnCloseEndpoint,
            "HcnCloseNamespace": t.HcnCloseNamespace,
            "HcnCloseLoadBalancer": t.HcnCloseLoadBalancer,
            "HcnCloseGuestNetworkService": t.HcnCloseGuestNetworkService,
        }

    def fn(self, name: str) -> Any:
        """The table's function ``name`` (one of ``functions``)."""
        return self.functions[name]

    def take(self, out: Any) -> Any:
        if out[0] == ffi.NULL:
            return None
        text = str(ffi.string(out[0]))
        self.t.CoTaskMemFree(out[0])
        return json.loads(text)

    def create(
        self, kind: str, settings: Any, *, network: Any = None, record_id: str | None = None
    ) -> tuple[int, Any, Any]:
        """(HRESULT, handle, error record) of HcnCreate<kind> (a fresh GUID by default)."""
        out = ffi.new(f"HCN_{kind.upper()} *")
        error = ffi.new("PWSTR *")
        text = settings if isinstance(settings, str) else json.dumps(settings)
        function = self.fn(f"HcnCreate{kind}")
        args = [guid(uuid.UUID(record_id) if record_id else uuid.uuid4()), text, out, error]
        code = u32(function(network, *args) if kind == "Endpoint" else function(*args))
        return code, out[0], self.take(error)

    def query(self, kind: str, handle: Any, name: str | None = None) -> Any:
        out, error = ffi.new("PWSTR *"), ffi.new("PWSTR *")
        function = self.fn(name or f"HcnQuery{kind}Properties")
        assert function(handle, ffi.NULL, out, error) == 0
        assert error[0] == ffi.NULL
        return self.take(out)

    def enumerate(self, plural: str, query: Any = None) -> list[str]:
        out, error = ffi.new("PWSTR *"), ffi.new("PWSTR *")
        text = json.dumps(query) if query is not None else ffi.NULL
        assert self.fn(f"HcnEnumerate{plural}")(text, out, error) == 0
        return sorted(self.take(out))

    def modify(self, kind: str, handle: Any, request: Any) -> tuple[int, Any]:
        error = ffi.new("PWSTR *")
        text = request if isinstance(request, str) else json.dumps(request)
        code = u32(self.fn(f"HcnModify{kind}")(handle, text, error))
        return code, self.take(error)

    def delete(self, kind: str, record_id: str) -> tuple[int, Any]:
        error = ffi.new("PWSTR *")
        code = u32(self.fn(f"HcnDelete{kind}")(guid(uuid.UUID(record_id)), error))
        return code, self.take(error)

    def close(self, kind: str, handle: Any) -> None:
        assert self.fn(f"HcnClose{kind}")(handle) == 0


@pytest.fixture
def n(table: Table) -> Hcn:
    return Hcn(table)


def test_network_lifecycle_and_errors(n: Hcn) -> None:
    code, network, error = n.create("Network", NAT)
    assert (code, error) == (0, None)
    record = n.query("Network", network)
    assert record["Name"] == "nat-1"
    assert record["Type"] == "NAT"
    assert n.enumerate("Networks") == [record["Id"]]
    assert n.enumerate("Networks", {"Filter": json.dumps({"Name": "nat-1"})}) == [record["Id"]]
    assert n.enumerate("Networks", {"Filter": json.dumps({"Name": "other"})}) == []

    # Open by id gives a second handle to the same record; closing a handle deletes nothing.
    opened, error = ffi.new("HCN_NETWORK *"), ffi.new("PWSTR *")
    assert n.t.HcnOpenNetwork(guid(uuid.UUID(record["Id"])), opened, error) == 0
    assert n.query("Network", opened[0])["Id"] == record["Id"]
    n.close("Network", opened[0])
    assert u32(n.t.HcnCloseNetwork(opened[0])) == hr.E_HANDLE

    policy = {"Type": "OutBoundNAT", "Settings": {"Exceptions": ["10.0.0.0/8"]}}
    add = {"ResourceType": "Policy", "RequestType": "Add", "Settings": {"Policies": [policy]}}
    assert n.modify("Network", network, add) == (0, None)
    assert n.query("Network", network)["Policies"] == [policy]
    code, error = n.modify("Network", network, {"ResourceType": "Bogus"})
    assert code == hr.HCN_E_INVALID_JSON
    assert error["ErrorCode"] == code

    assert n.delete("Network", record["Id"]) == (0, None)
    code, error = n.delete("Network", record["Id"])
    assert code == hr.HCN_E_NETWORK_NOT_FOUND
    assert error["Success"] is False
    assert u32(n.t.HcnOpenNetwork(guid(uuid.UUID(record["Id"])), opened, ffi.NULL)) == (
        hr.HCN_E_NETWORK_NOT_FOUND
    )
    n.close("Network", network)


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        (dict(NAT, Type="Teleport"), hr.HCN_E_INVALID_NETWORK_TYPE),
        (dict(NAT, Name=7), hr.HCN_E_INVALID_JSON),
        ("{nope", hr.HCN_E_INVALID_JSON),
        ("[]", hr.HCN_E_INVALID_JSON),
        (
            dict(NAT, Ipams=[{"Subnets": [{"IpAddressPrefix": "300.1.1.0/24"}]}]),
            hr.HCN_E_INVALID_PREFIX,
        ),
    ],
)
def test_bad_network_settings(shared: Table, settings: Any, expected: int) -> None:
    # The module's shared service: only tests whose creates all fail use it, so it stays empty.
    n = Hcn(shared)
    code, handle, error = n.create("Network", settings)
    assert code == expected
    assert handle == ffi.NULL
    assert error["ErrorCode"] == expected
    assert n.enumerate("Networks") == []


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.text(max_size=40).filter(lambda s: not s.strip().startswith("{")))
def test_malformed_settings_never_create(n: Hcn, text: str) -> None:
    for kind in ("Network", "Namespace", "LoadBalancer", "GuestNetworkService"):
        code, handle, _error = n.create(kind, text)
        assert code == hr.HCN_E_INVALID_JSON
        assert handle == ffi.NULL
    assert n.enumerate("Networks") == []
    assert n.enumerate("Namespaces") == []


def test_endpoints_get_unique_addresses_and_namespaces_attach_them(n: Hcn) -> None:
    code, network, _ = n.create("Network", NAT)
    assert code == 0
    endpoints, addresses = [], set()
    for _ in range(50):
        code, endpoint, error = n.create("Endpoint", {"Name": "ep"}, network=network)
        assert (code, error) == (0, None)
        record = n.query("Endpoint", endpoint)
        [config] = record["IpConfigurations"]
        assert ipaddress.ip_address(config["IpAddress"]) in ipaddress.ip_network("172.20.0.0/24")
        addresses.add(config["IpAddress"])
        assert record["MacAddress"].startswith("00-15-5D")
        endpoints.append((endpoint, record))
    assert len(addresses) == 50
    assert "172.20.0.1" not in addresses  # the gateway
    taken = endpoints[0][1]["IpConfigurations"][0]["IpAddress"]
    code, _h, error = n.create(
        "Endpoint", {"IpConfigurations": [{"IpAddress": taken}]}, network=network
    )
    assert code == hr.HCN_E_ADDR_INVALID_OR_RESERVED
    code, _h, _e = n.create(
        "Endpoint", {"IpConfigurations": [{"IpAddress": "10.9.9.9"}]}, network=network
    )
    assert code == hr.HCN_E_ADDR_INVALID_OR_RESERVED

    first, first_record = endpoints[0]
    addresses_doc = n.query("Endpoint", first, "HcnQueryEndpointAddresses")
    assert addresses_doc["IpAddresses"] == [first_record["IpConfigurations"][0]["IpAddress"]]
    stats = n.query("Endpoint", first, "HcnQueryEndpointStats")
    assert stats["BytesSent"] == 0

    code, namespace, _ = n.create("Namespace", {"Type": "HostDefault"})
    assert code == 0
    attach = {
        "ResourceType": "Endpoint",
        "RequestType": "Add",
        "Settings": {"EndpointId": first_record["Id"]},
    }
    assert n.modify("Namespace", namespace, attach) == (0, None)
    assert (
        n.query("Endpoint", first)["HostComputeNamespace"] == n.query("Namespace", namespace)["Id"]
    )
    assert n.modify("Namespace", namespace, attach)[0] == hr.HCN_E_ENDPOINT_ALREADY_ATTACHED
    resources = n.query("Namespace", namespace)["Resources"]
    assert resources == [{"Type": "Endpoint", "Data": {"Id": first_record["Id"]}}]
    detach = dict(attach, RequestType="Remove")
    assert n.modify("Namespace", namespace, detach) == (0, None)
    assert n.modify("Namespace", namespace, detach)[0] == hr.HCN_E_ENDPOINT_NOT_ATTACHED

    # A load balancer references endpoints; a referenced endpoint cannot be deleted.
    code, balancer, _ = n.create(
        "LoadBalancer",
        {
            "HostComputeEndpoints": [first_record["Id"]],
            "FrontendVIPs": ["10.0.0.10"],
            "PortMappings": [{"Protocol": 6, "InternalPort": 80, "ExternalPort": 8080}],
        },
    )
    assert code == 0
    assert n.delete("Endpoint", first_record["Id"])[0] == hr.HCN_E_ENTITY_HAS_REFERENCES
    missing = {"HostComputeEndpoints": [str(uuid.uuid4())]}
    assert n.create("LoadBalancer", missing)[0] == hr.HCN_E_ENDPOINT_NOT_FOUND
    network_id = n.query("Network", network)["Id"]
    assert n.delete("Network", network_id)[0] == hr.HCN_E_ENTITY_HAS_REFERENCES

    # Tear down in dependency order.
    assert n.delete("LoadBalancer", n.query("LoadBalancer", balancer)["Id"]) == (0, None)
    n.close("LoadBalancer", balancer)
    for endpoint, record in endpoints:
        assert n.delete("Endpoint", record["Id"]) == (0, None)
        n.close("Endpoint", endpoint)
    assert n.delete("Namespace", n.query("Namespace", namespace)["Id"]) == (0, None)
    n.close("Namespace", namespace)
    assert n.delete("Network", network_id) == (0, None)
    n.close("Network", network)


class Notifications:
    def __init__(self) -> None:
        self.items: list[tuple[int, Any]] = []
        self.cond = threading.Condition()
        self.pointer = ffi.callback("HCN_NOTIFICATION_CALLBACK", self._on)

    def _on(self, kind: int, context: Any, status: int, data: Any) -> None:
        text = ffi.string(data) if data != ffi.NULL else None
        with self.cond:
            self.items.append((int(kind), json.loads(text) if text else None))
            self.cond.notify_all()

    def wait(self, count: int) -> list[tuple[int, Any]]:
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.items) >= count, 10), self.items
            return list(self.items)


def test_service_notifications_reach_every_client(table: Table, n: Hcn) -> None:
    seen = Notifications()
    handle = ffi.new("HCN_CALLBACK *")
    assert table.HcnRegisterServiceCallback(seen.pointer, ffi.NULL, handle) == 0
    # Another client process creates and deletes a network and a namespace.
    child = run_child(table.client.directory, "hcn-churn", "x")
    assert child.returncode == 0, child.stderr
    ids = json.loads(child.stdout)
    items = seen.wait(6)
    assert [k for k, _d in items] == [1, 2, 5, 3, 4, 6]
    assert items[1][1] == {"Id": ids["network"]}
    assert items[2][1] == {"Id": ids["namespace"]}
    assert table.HcnUnregisterServiceCallback(handle[0]) == 0
    assert u32(table.HcnUnregisterServiceCallback(handle[0])) == hr.E_HANDLE


def test_guest_network_service_ports(table: Table, n: Hcn) -> None:
    service_id = str(uuid.uuid4())
    code, service, _ = n.create("GuestNetworkService", {"Name": "gns"}, record_id=service_id)
    assert code == 0
    code, _h, _e = n.create("GuestNetworkService", {}, record_id=service_id)
    assert code == hr.ERROR_ALREADY_EXISTS
    changes = Notifications()
    callback = ffi.new("HCN_CALLBACK *")
    register = table.HcnRegisterGuestNetworkServiceCallback
    assert register(service, changes.pointer, ffi.NULL, callback) == 0
    assert n.modify("GuestNetworkService", service, {"State": "Up"}) == (0, None)
    assert changes.wait(1)[0][0] == 0x11  # GuestNetworkServiceStateChanged

    first = ffi.new("HANDLE *")
    assert table.HcnReserveGuestNetworkServicePort(service, 1, 1, 8080, first) == 0
    again = ffi.new("HANDLE *")
    code = u32(table.HcnReserveGuestNetworkServicePort(service, 3, 1, 8080, again))
    assert code == hr.hresult_from_win32(10048)  # WSAEADDRINUSE
    assert table.HcnReserveGuestNetworkServicePort(service, 2, 1, 8080, again) == 0  # UDP is free
    assert u32(table.HcnReserveGuestNetworkServicePort(service, 4, 1, 80, again)) == (
        hr.E_INVALIDARG
    )
    span = ffi.new("HCN_PORT_RANGE_RESERVATION *")
    ranged = ffi.new("HANDLE *")
    assert table.HcnReserveGuestNetworkServicePortRange(service, 10, span, ranged) == 0
    assert span.endingPort - span.startingPort == 9
    assert span.startingPort >= 49152

    count, entries = ffi.new("ULONG *"), ffi.new("HCN_PORT_RANGE_ENTRY **")
    assert table.HcnEnumerateGuestNetworkPortReservations(count, entries) == 0
    assert count[0] == 3
    ports = sorted((entries[0][i].StartingPort, entries[0][i].EndingPort) for i in range(3))
    assert ports[0] == (8080, 8080)
    assert table.client.counters()["port_entry_arrays"] == 1
    table.HcnFreeGuestNetworkPortReservations(entries[0])

    for handle in (first, again, ranged):
        assert table.HcnReleaseGuestNetworkServicePortReservationHandle(handle[0]) == 0
    assert u32(table.HcnReleaseGuestNetworkServicePortReservationHandle(first[0])) == hr.E_HANDLE
    assert table.HcnUnregisterGuestNetworkServiceCallback(callback[0]) == 0
    assert n.delete("GuestNetworkService", service_id) == (0, None)
    assert n.delete("GuestNetworkService", service_id)[0] == hr.ERROR_NOT_FOUND
    # The handle outlives the record: calls through it now find nothing.
    assert n.modify("GuestNetworkService", service, {})[0] == hr.ERROR_NOT_FOUND
    n.close("GuestNetworkService", service)


def test_service_disconnect_is_notified(table: Table, service_dir: Any) -> None:
    seen = Notifications()
    handle = ffi.new("HCN_CALLBACK *")
    assert table.HcnRegisterServiceCallback(seen.pointer, ffi.NULL, handle) == 0
    pid = int((service_dir / "service.pid").read_text())
    stop_service(pid)
    assert seen.wait(1) == [(0x01000000, None)]
    assert table.HcnUnregisterServiceCallback(handle[0]) == 0
