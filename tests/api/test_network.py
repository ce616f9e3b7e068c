"""pyhcs.network (HCN) against the emulator service: network, endpoint, namespace and load
balancer lifecycles, an endpoint in a namespace, HNS's error record in typed errors, an object
opened from another process, and leaks reported (the ``hcs`` fixture checks every test)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

import pyhcs
from pyhcs import errors, network
from pyhcs import hresult as hr
from pyhcs.network import Endpoint, GuestNetworkService, LoadBalancer, Namespace, Network
from pyhcs.testing import Emulator, FaultInjector, LeakError

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def nat(name: str, prefix: str = "172.30.0.0/24") -> dict[str, Any]:
    return {
        "SchemaVersion": {"Major": 2, "Minor": 0},
        "Name": name,
        "Type": "NAT",
        "Ipams": [{"Type": "Static", "Subnets": [{"IpAddressPrefix": prefix}]}],
    }


@pytest.fixture
def nat_network(hcs: Emulator, request: pytest.FixtureRequest) -> Iterator[Network]:
    """A NAT network of this test, deleted afterwards (HNS objects outlive handles)."""
    with Network.create(nat(f"api-{request.node.name}"[:60])) as created:
        yield created
        if not created.closed:
            created.delete()


def test_network_lifecycle(hcs: Emulator) -> None:
    created = Network.create(nat("api-lifecycle"))
    assert created.name == "api-lifecycle"
    assert repr(created) == f"<Network 'api-lifecycle' {created.id} open>"
    assert "&#x27;api-lifecycle&#x27;" in created._repr_html_()
    assert created.id in Network.enumerate()
    assert Network.enumerate({"Name": "api-lifecycle"}) == [created.id]
    assert Network.enumerate({"Name": "api-no-such-network"}) == []
    with Network.open(str(created.id).upper()) as opened:
        assert opened.id == created.id
        properties = opened.properties()
        assert (properties["Name"], properties["Type"]) == ("api-lifecycle", "NAT")
        policy = {"Type": "NetAdapterName", "Settings": {"NetworkAdapterName": "eth0"}}
        opened.modify(
            {"ResourceType": "Policy", "RequestType": "Add", "Settings": {"Policies": [policy]}}
        )
        assert created.properties()["Policies"] == [policy]  # the same HNS object
    created.close()
    created.close()  # once is enough; again does nothing
    assert repr(created).endswith("closed>")
    with pytest.raises(errors.InvalidHandleError) as closed:
        created.properties()
    assert closed.value.operation == "HcnQueryNetworkProperties"
    Network.delete_by_id(created.id)
    with pytest.raises(errors.NotFoundError) as gone:
        Network.open(created.id)
    assert gone.value.hresult == hr.HCN_E_NETWORK_NOT_FOUND
    assert gone.value.operation == "HcnOpenNetwork"
    assert str(created.id) in str(gone.value)


def test_endpoint_in_a_namespace(nat_network: Network) -> None:
    with (
        nat_network.create_endpoint({"Name": "api-ep"}) as endpoint,
        Namespace.create({"Type": "HostDefault"}) as namespace,
    ):
        assert endpoint.ip_addresses == ["172.30.0.2"]  # allocated from the subnet
        assert endpoint.addresses()["IpAddresses"] == ["172.30.0.2"]
        assert endpoint.stats()["BytesSent"] == 0
        assert endpoint.namespace_id is None
        namespace.add_endpoint(endpoint)
        assert namespace.endpoints() == [endpoint.id]
        assert endpoint.namespace_id == namespace.id
        with pytest.raises(errors.AlreadyExistsError) as twice:
            namespace.add_endpoint(endpoint.id)
        assert twice.value.operation == "HcnModifyNamespace"
        assert "attached to namespace" in twice.value.message  # HNS's own text
        # A network with endpoints cannot be deleted; the HRESULT and HNS's reason say why.
        with pytest.raises(errors.HcsError) as referenced:
            Network.delete_by_id(nat_network.id)
        assert referenced.value.hresult == hr.HCN_E_ENTITY_HAS_REFERENCES
        assert "still has endpoints" in str(referenced.value)
        assert json.loads(referenced.value.document or "")["Success"] is False
        namespace.remove_endpoint(str(endpoint.id))
        assert namespace.endpoints() == []
        with pytest.raises(errors.HcsError) as not_in:
            namespace.remove_endpoint(endpoint)
        assert not_in.value.hresult == hr.HCN_E_ENDPOINT_NOT_ATTACHED
        namespace.delete()
        assert namespace.closed
        endpoint.delete()
    assert endpoint.id not in Endpoint.enumerate()


def test_load_balancer_over_endpoints(nat_network: Network) -> None:
    with nat_network.create_endpoint({}) as endpoint:
        settings = {
            "HostComputeEndpoints": [str(endpoint.id)],
            "PortMappings": [{"Protocol": 6, "InternalPort": 80, "ExternalPort": 8080}],
        }
        with LoadBalancer.create(settings) as balancer:
            assert LoadBalancer.enumerate() == [balancer.id]
            assert balancer.properties()["PortMappings"][0]["ExternalPort"] == 8080
            with pytest.raises(errors.HcsError) as used:
                endpoint.delete()
            assert used.value.hresult == hr.HCN_E_ENTITY_HAS_REFERENCES
            assert not endpoint.closed  # a failed delete keeps the handle
            balancer.delete()
        endpoint.delete()


def test_guest_network_service(hcs: Emulator) -> None:
    with GuestNetworkService.create({"MirroredInterfaces": []}) as service:
        service.modify({"State": "Enabled"})
        with pytest.raises(errors.NotSupportedError, match="no HcnQueryGuestNetworkService") as no:
            service.properties()
        assert no.value.hint == "a guest network service can only be created, modified and deleted"
        with pytest.raises(errors.NotSupportedError, match="no HcnOpenGuestNetworkService"):
            GuestNetworkService.open(service.id)
        service.delete()
    with pytest.raises(errors.NotFoundError):
        GuestNetworkService.delete_by_id(service.id)


def test_typed_errors_for_bad_documents_and_ids(hcs: Emulator) -> None:
    with pytest.raises(errors.InvalidJsonError) as malformed:
        Network.create("{not json")
    assert malformed.value.operation == "HcnCreateNetwork"
    assert malformed.value.hresult == hr.HCN_E_INVALID_JSON
    assert "malformed JSON" in malformed.value.message
    record = json.loads(malformed.value.document or "")
    assert record["ErrorCode"] == hr.HCN_E_INVALID_JSON
    with pytest.raises(errors.HcsError) as bad_type:
        Network.create({"Name": "api-bad", "Type": "Teleport"})
    assert bad_type.value.hresult == hr.HCN_E_INVALID_NETWORK_TYPE
    assert "Teleport" in str(bad_type.value)
    with pytest.raises(errors.InvalidArgumentError, match="GUID"):
        Network.open("not-a-guid")
    with pytest.raises(errors.InvalidArgumentError, match="dict or JSON"):
        Network.create(["NAT"])  # type: ignore[arg-type]
    with pytest.raises(errors.InvalidArgumentError, match="serialisable"):
        Network.create({"Name": object()})
    with pytest.raises(errors.InvalidArgumentError, match="on a Network"):
        Endpoint.create("network", {})  # type: ignore[arg-type]
    missing = uuid.uuid4()
    for kind in (Network, Endpoint, Namespace, LoadBalancer):
        with pytest.raises(errors.NotFoundError) as not_found:
            kind.open(missing)
        assert str(missing) in str(not_found.value)
        with pytest.raises(errors.NotFoundError):
            kind.delete_by_id(missing)
    assert Network.enumerate({"Name": "api-bad"}) == []  # nothing was created


def test_an_injected_error_record_reaches_the_exception(
    hcs: Emulator, hcs_faults: FaultInjector
) -> None:
    record = json.dumps({"Success": False, "Error": "HNS is restarting", "ErrorCode": 0})
    with (
        hcs_faults.fail("HcnCreateNamespace", hr.HCN_E_MANAGER_STOPPED, document=record),
        pytest.raises(errors.ServiceDisconnectError) as stopped,
    ):
        Namespace.create({})
    assert stopped.value.message == "namespace: HNS is restarting"
    assert stopped.value.document == record
    not_json = "HNS said no"
    with (
        hcs_faults.fail("HcnEnumerateNetworks", hr.E_FAIL, document=not_json),
        pytest.raises(errors.HcsError) as raw,
    ):
        Network.enumerate()
    assert raw.value.document == not_json  # kept as it came


def test_a_network_opened_from_another_process(nat_network: Network) -> None:
    child = (
        "import sys\n"
        "from pyhcs.network import Network\n"
        "with Network.open(sys.argv[1]) as n:\n"
        "    print(n.properties()['Name'])\n"
        "    n.create_endpoint({'Name': 'from-child'}).close()\n"
    )
    env = {**os.environ, "PYHCS_EMULATOR_AUTOSTART": "0"}
    result = subprocess.run(
        [sys.executable, "-c", child, str(nat_network.id)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == nat_network.name
    (endpoint_id,) = Endpoint.enumerate({"Name": "from-child"})
    with Endpoint.open(endpoint_id) as endpoint:
        assert endpoint.properties()["HostComputeNetwork"] == str(nat_network.id)
        endpoint.delete()


def test_a_leaked_handle_is_reported_and_closed(hcs: Emulator) -> None:
    network_id = uuid.uuid4()
    with pytest.warns(ResourceWarning, match=f"HCN network {network_id} was never closed"):
        Network.create(nat("api-leaked"), id=network_id)  # never closed, no reference kept
    with pytest.raises(LeakError, match=f"never closed: HCN network {network_id}"):
        hcs.assert_no_leaks()
    hcs.assert_no_leaks()  # the finalizer closed it
    Network.delete_by_id(network_id)


def test_the_module_is_reachable_from_the_package() -> None:
    assert pyhcs.network is network
    assert pyhcs.network.Network is Network
