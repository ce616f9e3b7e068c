"""HCN (computenetwork) inside the service: networks, endpoints, namespaces, load balancers and
guest network services as records every client sees, plus notifications and port reservations.

Records are not owned by handles: like HNS objects they live until deleted (or until the
service stops — the emulator keeps no state across restarts). Addresses are allocated from a
network's subnets, unique and in order; no packet moves and no host interface is configured.
"""

from __future__ import annotations

import ipaddress
import itertools
import json
import threading
from collections.abc import Callable
from typing import Any, Final

from pyhcs import hresult as hr
from pyhcs.emulator.service.computecore import Peer, RequestFailedError

KINDS: Final = ("network", "endpoint", "namespace", "loadbalancer", "guestnetworkservice")
NETWORK_TYPES: Final = frozenset(
    {
        "NAT",
        "ICS",
        "Transparent",
        "L2Bridge",
        "L2Tunnel",
        "Overlay",
        "Private",
        "Internal",
        "Mirrored",
    }
)
NAMESPACE_TYPES: Final = frozenset({"Host", "HostDefault", "Guest", "GuestDefault"})
#: Not-found code per kind (HCN has its own for networks and endpoints only).
NOT_FOUND: Final = {
    "network": hr.HCN_E_NETWORK_NOT_FOUND,
    "endpoint": hr.HCN_E_ENDPOINT_NOT_FOUND,
    "namespace": hr.ERROR_NOT_FOUND,
    "loadbalancer": hr.ERROR_NOT_FOUND,
    "guestnetworkservice": hr.ERROR_NOT_FOUND,
}
ALREADY_EXISTS: Final = {"network": hr.HCN_E_NETWORK_ALREADY_EXISTS}
INVALID: Final = {"network": hr.HCN_E_INVALID_NETWORK, "endpoint": hr.HCN_E_INVALID_ENDPOINT}

# HCN_NOTIFICATIONS.
NETWORK_PRE_CREATE, NETWORK_CREATE, NETWORK_PRE_DELETE, NETWORK_DELETE = 1, 2, 3, 4
NAMESPACE_CREATE, NAMESPACE_DELETE = 5, 6
GNS_CREATE, GNS_DELETE = 7, 8
ENDPOINT_ATTACHED, ENDPOINT_DETACHED = 9, 0x10
GNS_STATE_CHANGED = 0x11
#: Hyper-V's MAC prefix, used when a network has no MacPool.
MAC_PREFIX: Final = "00-15-5D"
#: Dynamic ports (IANA) handed out by range reservations.
DYNAMIC_PORTS: Final = (49152, 65535)
WSAEADDRINUSE: Final = hr.hresult_from_win32(10048)


class HcnRequestError(RequestFailedError):
    """An HCN failure: the HRESULT plus HNS's error record ({Success, Error, ErrorCode}).

    ``ErrorCode`` is the HRESULT as an unsigned 32-bit number, as HNS writes it (hcsshim
    decodes it as ``hcn.ErrorCode``, a uint32), unlike the signed ``Error`` of HCS's
    ResultError."""

    def __init__(self, hresult: int, message: str | None = None) -> None:
        super().__init__(hresult, message)
        self.document = json.dumps(
            {
                "Success": False,
                "Error": message or hr.message(hresult),
                "ErrorCode": hr.to_unsigned(hresult),
            }
        )


def _object(text: str | None, what: str, *, required: bool = True) -> dict[str, Any]:
    if text is None or not text.strip():
        if required:
            raise HcnRequestError(hr.HCN_E_INVALID_JSON, f"{what}: a JSON document is required")
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise HcnRequestError(
            hr.HCN_E_INVALID_JSON, f"{what}: malformed JSON: {exc.msg} at {exc.pos}"
        ) from exc
    if not isinstance(value, dict):
        raise HcnRequestError(hr.HCN_E_INVALID_JSON, f"{what}: must be a JSON object")
    return value


def _expect(doc: dict[str, Any], key: str, kinds: tuple[type, ...], what: str) -> None:
    value = doc.get(key)
    if value is not None and (not isinstance(value, kinds) or isinstance(value, bool)):
        names = "/".join(k.__name__ for k in kinds)
        raise HcnRequestError(hr.HCN_E_INVALID_JSON, f"{what}.{key} must be {names}")


class NetworkRegistry:
    """Every HCN record of the service, its callbacks and port reservations."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.records: dict[str, dict[str, dict[str, Any]]] = {k: {} for k in KINDS}
        #: (peer, callback key) -> guest network service id, or None for service callbacks.
        self.callbacks: dict[tuple[Peer, int], str | None] = {}
        #: (peer, reservation key) -> reservation.
        self.reservations: dict[tuple[Peer, int], dict[str, Any]] = {}
        self._mac = itertools.count(1)

    # -- dispatch --------------------------------------------------------------------------

    def handle(self, peer: Peer, message: dict[str, Any]) -> tuple[int, str | None]:
        call = str(message.get("call"))
        handler: Callable[[Peer, dict[str, Any]], tuple[int, str | None]] | None = getattr(
            self, f"_{call}", None
        )
        if handler is None:
            raise HcnRequestError(hr.E_NOTIMPL, f"unknown HCN request {call!r}")
        return handler(peer, message)

    def _get(self, kind: str, record_id: str) -> dict[str, Any]:
        record = self.records[kind].get(record_id.lower())
        if record is None:
            raise HcnRequestError(NOT_FOUND[kind], f"{kind} {record_id} not found")
        return record

    def _notify(self, kind: int, data: dict[str, Any], service_id: str | None = None) -> None:
        with self.lock:
            targets = [k for k, target in self.callbacks.items() if target == service_id]
        text = json.dumps(data)
        for peer, key in targets:
            peer.push({"ev": "hcn", "cb": key, "type": kind, "data": text})

    # -- create / open / modify / query / delete / enumerate -------------------------------

    def _create(self, peer: Peer, message: dict[str, Any]) -> tuple[int, str | None]:
        kind, record_id = str(message["kind"]), str(message["rid"]).lower()
        settings = _object(message.get("doc"), kind)
        with self.lock:
            if record_id in self.records[kind]:
                raise HcnRequestError(
                    ALREADY_EXISTS.get(kind, hr.ERROR_ALREADY_EXISTS),
                    f"{kind} {record_id} exists already",
                )
            record = getattr(self, f"_new_{kind}")(record_id, settings, message)
            if kind == "network":
                self._notify(NETWORK_PRE_CREATE, {"Id": record_id})
            self.records[kind][record_id] = record
        events = {"network": NETWORK_CREATE, "namespace": NAMESPACE_CREATE}
        if kind in events:
            self._notify(events[kind], {"Id": record_id})
        if kind == "guestnetworkservice":
            self._notify(GNS_CREATE, {"Id": record_id})
        return hr.S_OK, json.dumps(record)

    def _new_network(
        self, record_id: str, settings: dict[str, Any], message: dict[str, Any]
    ) -> dict[str, Any]:
        _expect(settings, "Name", (str,), "HostComputeNetwork")
        _expect(settings, "Ipams", (list,), "HostComputeNetwork")
        _expect(settings, "Policies", (list,), "HostComputeNetwork")
        if settings.get("Type") not in NETWORK_TYPES:
            raise HcnRequestError(
                hr.HCN_E_INVALID_NETWORK_TYPE, f"network Type {settings.get('Type')!r}"
            )
        for ipam in settings.get("Ipams") or []:
            for subnet in (ipam or {}).get("Subnets") or []:
                try:
                    ipaddress.ip_network(str((subnet or {}).get("IpAddressPrefix")), strict=False)
                except ValueError as exc:
                    raise HcnRequestError(hr.HCN_E_INVALID_PREFIX, str(exc)) from exc
        record = {"SchemaVersion": {"Major": 2, "Minor": 0}, **settings, "Id": record_id}
        record.setdefault("Policies", [])
        return record

    def _subnets(self, network: dict[str, Any]) -> list[ipaddress.IPv4Network]:
        out = []
        for ipam in network.get("Ipams") or []:
            for subnet in (ipam or {}).get("Subnets") or []:
                prefix = ipaddress.ip_network(str(subnet["IpAddressPrefix"]), strict=False)
                if isinstance(prefix, ipaddress.IPv4Network):
                    out.append(prefix)
        return out

    def _used(self, network_id: str) -> set[str]:
        return {
            str(c.get("IpAddress"))
            for e in self.records["endpoint"].values()
            if e.get("HostComputeNetwork") == network_id
            for c in e.get("IpConfigurations") or []
        }

    def _new_endpoint(
        self, record_id: str, settings: dict[str, Any], message: dict[str, Any]
    ) -> dict[str, Any]:
        network = self._get("network", str(message.get("network", "")))
        _expect(settings, "IpConfigurations", (list,), "HostComputeEndpoint")
        _expect(settings, "Policies", (list,), "HostComputeEndpoint")
        subnets = self._subnets(network)
        used = self._used(network["Id"])
        configs = settings.get("IpConfigurations") or []
        for config in configs:
            address = str((config or {}).get("IpAddress"))
            try:
                ip = ipaddress.ip_address(address)
            except ValueError as exc:
                raise HcnRequestError(hr.HCN_E_INVALID_IP, f"IpAddress {address!r}") from exc
            if (subnets and not any(ip in s for s in subnets)) or address in used:
                raise HcnRequestError(
                    hr.HCN_E_ADDR_INVALID_OR_RESERVED, f"{address} is outside or taken"
                )
        if not configs and subnets:
            configs = [self._allocate(subnets, used)]
        record = {
            "SchemaVersion": {"Major": 2, "Minor": 0},
            **settings,
            "Id": record_id,
            "HostComputeNetwork": network["Id"],
            "IpConfigurations": configs,
        }
        record.setdefault("MacAddress", self._mac_for(network))
        record.setdefault("Policies", [])
        return record

    def _allocate(self, subnets: list[ipaddress.IPv4Network], used: set[str]) -> dict[str, Any]:
        """The lowest free host address of the first subnet with room (.1 is the gateway)."""
        for subnet in subnets:
            hosts = subnet.hosts()
            next(hosts, None)  # the gateway
            for ip in hosts:
                if str(ip) not in used:
                    return {"IpAddress": str(ip), "PrefixLength": subnet.prefixlen}
        raise HcnRequestError(hr.HCN_E_ADDR_INVALID_OR_RESERVED, "the network's subnets are full")

    def _mac_for(self, network: dict[str, Any]) -> str:
        pool = (network.get("MacPool") or {}).get("Ranges") or []
        serial = next(self._mac)
        if pool and isinstance(pool[0], dict) and pool[0].get("StartMacAddress"):
            start = int(str(pool[0]["StartMacAddress"]).replace("-", ""), 16)
            value = f"{start + serial - 1:012X}"
        else:
            value = MAC_PREFIX.replace("-", "") + f"{serial:06X}"
        return "-".join(value[i : i + 2] for i in range(0, 12, 2))

    def _new_namespace(
        self, record_id: str, settings: dict[str, Any], message: dict[str, Any]
    ) -> dict[str, Any]:
        kind = settings.get("Type", "Host")
        if kind not in NAMESPACE_TYPES:
            raise HcnRequestError(hr.HCN_E_INVALID_JSON, f"namespace Type {kind!r}")
        _expect(settings, "Resources", (list,), "HostComputeNamespace")
        record = {"SchemaVersion": {"Major": 2, "Minor": 0}, **settings, "Id": record_id}
        record["Type"] = kind
        record.setdefault("NamespaceId", len(self.records["namespace"]) + 1)
        record.setdefault("Resources", [])
        return record

    def _new_loadbalancer(
        self, record_id: str, settings: dict[str, Any], message: dict[str, Any]
    ) -> dict[str, Any]:
        _expect(settings, "HostComputeEndpoints", (list,), "HostComputeLoadBalancer")
        _expect(settings, "PortMappings", (list,), "HostComputeLoadBalancer")
        for endpoint in settings.get("HostComputeEndpoints") or []:
            self._get("endpoint", str(endpoint))
        record = {"SchemaVersion": {"Major": 2, "Minor": 0}, **settings, "Id": record_id}
        record["HostComputeEndpoints"] = [
            str(e).lower() for e in record.get("HostComputeEndpoints") or []
        ]
        return record

    def _new_guestnetworkservice(
        self, record_id: str, settings: dict[str, Any], message: dict[str, Any]
    ) -> dict[str, Any]:
        return {"SchemaVersion": {"Major": 2, "Minor": 0}, **settings, "Id": record_id}

    def _open(self, peer: Peer, message: dict[str, Any]) -> tuple[int, str | None]:
        with self.lock:
            self._get(str(message["kind"]), str(message["rid"]))
        return hr.S_OK, None

    def _query(self, peer: Peer, message: dict[str, Any]) -> tuple[int, str | None]:
        _object(message.get("doc"), "HostComputeQuery", required=False)
        with self.lock:
            record = self._get(str(message["kind"]), str(message["rid"]))
            return hr.S_OK, json.dumps(record)

    def _stats(self, peer: Peer, message: dict[str, Any]) -> tuple[int, str | None]:
        """Endpoint statistics: no packet moves in the emulator, so every counter is 0."""
        with self.lock:
            record = self._get("endpoint", str(message["rid"]))
        counters = (
            "BytesSent",
            "BytesReceived",
            "PacketsSent",
            "PacketsReceived",
            "DroppedPacketsIncoming",
            "DroppedPacketsOutgoing",
        )
        return hr.S_OK, json.dumps({"EndpointId": record["Id"], **dict.fromkeys(counters, 0)})

    def _addresses(self, peer: Peer, message: dict[str, Any]) -> tuple[int, str | None]:
        with self.lock:
            record = self._get("endpoint", str(message["rid"]))
        return hr.S_OK, json.dumps(
            {
                "IpAddresses": [c.get("IpAddress") for c in record.get("IpConfigurations") or []],
                "MacAddress": record.get("MacAddress"),
            }
        )

    def _modify(self, peer: Peer, message: dict[str, Any]) -> tuple[int, str | None]:
        kind = str(message["kind"])
        request = _object(message.get("doc"), f"{kind} modification")
        with self.lock:
            record = self._get(kind, str(message["rid"]))
            if kind == "namespace":
                return self._modify_namespace(record, request)
            if kind == "guestnetworkservice":
                record.update({k: v for k, v in request.items() if k != "Id"})
                self._notify(GNS_STATE_CHANGED, {"Id": record["Id"]}, record["Id"])
                return hr.S_OK, None
            resource, action = request.get("ResourceType"), request.get("RequestType")
            if resource != "Policy" or action not in ("Add", "Remove", "Update", "Refresh"):
                raise HcnRequestError(
                    hr.HCN_E_INVALID_JSON, "expected ResourceType Policy with Add/Remove/Update"
                )
            policies = (request.get("Settings") or {}).get("Policies")
            if not isinstance(policies, list):
                raise HcnRequestError(hr.HCN_E_INVALID_POLICY, "Settings.Policies must be a list")
            current = list(record.get("Policies") or [])
            if action == "Add":
                current.extend(policies)
            elif action == "Remove":
                current = [p for p in current if p not in policies]
            else:
                current = list(policies)
            record["Policies"] = current
        return hr.S_OK, None

    def _modify_namespace(
        self, record: dict[str, Any], request: dict[str, Any]
    ) -> tuple[int, str | None]:
        """ModificationRequest {ResourceType: Endpoint, RequestType: Add|Remove, Settings:
        {EndpointId}} attaches or detaches an endpoint."""
        settings = request.get("Settings") or {}
        if request.get("ResourceType") != "Endpoint" or request.get("RequestType") not in (
            "Add",
            "Remove",
        ):
            raise HcnRequestError(
                hr.HCN_E_INVALID_JSON, "expected ResourceType Endpoint, Add/Remove"
            )
        endpoint = self._get("endpoint", str(settings.get("EndpointId", "")))
        attached = endpoint.get("HostComputeNamespace")
        resource = {"Type": "Endpoint", "Data": {"Id": endpoint["Id"]}}
        if request["RequestType"] == "Add":
            if attached:
                raise HcnRequestError(
                    hr.HCN_E_ENDPOINT_ALREADY_ATTACHED, f"attached to namespace {attached}"
                )
            endpoint["HostComputeNamespace"] = record["Id"]
            record["Resources"] = [*record.get("Resources", []), resource]
            event = ENDPOINT_ATTACHED
        else:
            if attached != record["Id"]:
                raise HcnRequestError(hr.HCN_E_ENDPOINT_NOT_ATTACHED, "not in this namespace")
            endpoint.pop("HostComputeNamespace", None)
            record["Resources"] = [r for r in record.get("Resources", []) if r != resource]
            event = ENDPOINT_DETACHED
        self._notify(event, {"Id": endpoint["Id"], "Namespace": record["Id"]})
        return hr.S_OK, None

    def _delete(self, peer: Peer, message: dict[str, Any]) -> tuple[int, str | None]:
        kind, record_id = str(message["kind"]), str(message["rid"]).lower()
        with self.lock:
            record = self._get(kind, record_id)
            if kind == "network" and any(
                e.get("HostComputeNetwork") == record_id for e in self.records["endpoint"].values()
            ):
                raise HcnRequestError(
                    hr.HCN_E_ENTITY_HAS_REFERENCES, "the network still has endpoints"
                )
            if kind == "endpoint" and any(
                record_id in lb.get("HostComputeEndpoints", [])
                for lb in self.records["loadbalancer"].values()
            ):
                raise HcnRequestError(
                    hr.HCN_E_ENTITY_HAS_REFERENCES, "a load balancer uses the endpoint"
                )
            if kind == "network":
                self._notify(NETWORK_PRE_DELETE, {"Id": record_id})
            del self.records[kind][record_id]
            if kind == "endpoint" and record.get("HostComputeNamespace"):
                namespace = self.records["namespace"].get(record["HostComputeNamespace"])
                if namespace is not None:
                    namespace["Resources"] = [
                        r
                        for r in namespace["Resources"]
                        if r.get("Data", {}).get("Id") != record_id
                    ]
            if kind == "namespace":
                for endpoint in self.records["endpoint"].values():
                    if endpoint.get("HostComputeNamespace") == record_id:
                        endpoint.pop("HostComputeNamespace")
        events = {
            "network": NETWORK_DELETE,
            "namespace": NAMESPACE_DELETE,
            "guestnetworkservice": GNS_DELETE,
        }
        if kind in events:
            self._notify(events[kind], {"Id": record_id})
        return hr.S_OK, None

    def _enumerate(self, peer: Peer, message: dict[str, Any]) -> tuple[int, str | None]:
        """HostComputeQuery: ``Filter`` is a JSON string of field -> value, all must match."""
        query = _object(message.get("doc"), "HostComputeQuery", required=False)
        text = query.get("Filter") or "{}"
        if not isinstance(text, str):
            raise HcnRequestError(hr.HCN_E_INVALID_JSON, "HostComputeQuery.Filter must be a string")
        wanted = _object(text, "HostComputeQuery.Filter")
        with self.lock:
            ids = [
                record["Id"]
                for record in self.records[str(message["kind"])].values()
                if all(_matches(record.get(k), v) for k, v in wanted.items())
            ]
        return hr.S_OK, json.dumps(ids)

    # -- callbacks and port reservations ---------------------------------------------------

    def _register(self, peer: Peer, message: dict[str, Any]) -> tuple[int, str | None]:
        service = message.get("service")
        with self.lock:
            if service is not None:
                self._get("guestnetworkservice", str(service))
            self.callbacks[(peer, int(message["cb"]))] = (
                None if service is None else str(service).lower()
            )
        return hr.S_OK, None

    def _unregister(self, peer: Peer, message: dict[str, Any]) -> tuple[int, str | None]:
        with self.lock:
            self.callbacks.pop((peer, int(message["cb"])), None)
        return hr.S_OK, None

    def _reserve(self, peer: Peer, message: dict[str, Any]) -> tuple[int, str | None]:
        protocol, access = int(message["protocol"]), int(message.get("access", 1))
        count = int(message.get("count", 1))
        with self.lock:
            service = self._get("guestnetworkservice", str(message["service"]))
            if message.get("port") is not None:
                start = int(message["port"])
                if not self._free(start, start, protocol, access):
                    raise HcnRequestError(WSAEADDRINUSE, f"port {start} is reserved")
            else:
                start = next(
                    (
                        p
                        for p in range(DYNAMIC_PORTS[0], DYNAMIC_PORTS[1] - count + 2)
                        if self._free(p, p + count - 1, 3, 1)
                    ),
                    0,
                )
                if not start:
                    raise HcnRequestError(WSAEADDRINUSE, f"no {count} free ports")
            self.reservations[(peer, int(message["key"]))] = {
                "Service": service["Id"],
                "Protocol": protocol,
                "Access": access,
                "Start": start,
                "End": start + count - 1,
            }
        return hr.S_OK, json.dumps({"Start": start, "End": start + count - 1})

    def _free(self, start: int, end: int, protocol: int, access: int) -> bool:
        for taken in self.reservations.values():
            overlap = taken["Start"] <= end and start <= taken["End"]
            shared = access == 2 and taken["Access"] == 2
            if overlap and protocol & taken["Protocol"] and not shared:
                return False
        return True

    def _release(self, peer: Peer, message: dict[str, Any]) -> tuple[int, str | None]:
        with self.lock:
            if self.reservations.pop((peer, int(message["key"])), None) is None:
                raise HcnRequestError(hr.E_HANDLE, "no such port reservation")
        return hr.S_OK, None

    def _reservations(self, peer: Peer, message: dict[str, Any]) -> tuple[int, str | None]:
        with self.lock:
            return hr.S_OK, json.dumps(list(self.reservations.values()))

    def drop_peer(self, peer: Peer) -> None:
        """A client went away: its callbacks and reservations go; records stay."""
        with self.lock:
            for key in [k for k in self.callbacks if k[0] is peer]:
                del self.callbacks[key]
            for key in [k for k in self.reservations if k[0] is peer]:
                del self.reservations[key]


def _matches(value: Any, wanted: Any) -> bool:
    if isinstance(value, str) and isinstance(wanted, str):
        return value.lower() == wanted.lower()
    return bool(value == wanted)
