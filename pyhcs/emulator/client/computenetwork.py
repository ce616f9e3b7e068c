"""The client half of computenetwork (HCN): the 43 Hcn* functions over the service's records.

Every HCN call is synchronous and returns its HRESULT directly; failures also fill the optional
``ErrorRecord`` with HNS's error record, successes set it to NULL. Returned strings are C memory
(CoTaskMemFree/LocalFree). HCN handles are integer keys naming a (kind, id) record; closing one
never deletes the record. Notification callbacks run on the client's callback thread, never
inside the API call; unregistering waits for a running one (as HcsClose* do).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pyhcs import hresult as hr
from pyhcs.emulator.client import handles
from pyhcs.emulator.client.computecore import Client
from pyhcs.raw.ffi import ffi

#: HCN_NOTIFICATIONS ServiceDisconnect.
SERVICE_DISCONNECT = 0x01000000

#: Public kind name (as in the function names) -> the service's record kind.
KINDS = {
    "Network": "network",
    "Endpoint": "endpoint",
    "Namespace": "namespace",
    "LoadBalancer": "loadbalancer",
    "GuestNetworkService": "guestnetworkservice",
}
_COUNTER_NAMES = {
    "network": "networks",
    "endpoint": "endpoints",
    "namespace": "namespaces",
    "loadbalancer": "load_balancers",
    "guestnetworkservice": "guest_network_services",
}


def guid_text(guid: Any) -> str:
    """A REFGUID as its canonical lower-case string."""
    tail = bytes(guid.Data4[i] for i in range(8)).hex()
    return f"{guid.Data1:08x}-{guid.Data2:04x}-{guid.Data3:04x}-{tail[:4]}-{tail[4:]}"


def _key(pointer: Any) -> int:
    return int(ffi.cast("uintptr_t", pointer))


def _text(pointer: Any) -> str | None:
    return None if pointer == ffi.NULL else str(ffi.string(pointer))


@dataclass
class _Callback:
    callback: Any
    context: Any
    closed: bool = False


class Hcn:
    """HCN handles, callbacks and reservations of one client."""

    def __init__(self, client: Client) -> None:
        self.c = client
        self._lock = threading.Lock()
        self.objects: dict[int, tuple[str, str]] = {}
        self.callbacks: dict[int, _Callback] = {}
        self.reservations: set[int] = set()
        self.entry_arrays: dict[int, Any] = {}
        client.event_hooks["hcn"] = self._on_event
        client.disconnect_hooks.append(self._on_disconnect)
        client.counter_hooks.append(self.counters)

    def counters(self) -> dict[str, int]:
        with self._lock:
            out = dict.fromkeys(_COUNTER_NAMES.values(), 0)
            for kind, _id in self.objects.values():
                out[_COUNTER_NAMES[kind]] += 1
            out["hcn_callbacks"] = len(self.callbacks)
            out["port_reservations"] = len(self.reservations)
            out["port_entry_arrays"] = len(self.entry_arrays)
            return out

    # -- plumbing --------------------------------------------------------------------------

    def _call(self, message: dict[str, Any], error_out: Any) -> tuple[int, str | None]:
        """One HCN request; on failure the error record goes to ``error_out``."""
        self.c.allocator.store(error_out, None)
        if self.c.connection.disconnected:
            return hr.HCN_E_MANAGER_STOPPED, None
        reply, _fds = self.c.connection.call({"op": "hcn", **message})
        code = int(reply["hr"]) & 0xFFFFFFFF
        if code == hr.HCS_E_SERVICE_DISCONNECT:  # the connection broke under this call
            return hr.HCN_E_MANAGER_STOPPED, None
        if code != hr.S_OK:
            self.c.allocator.store(error_out, reply.get("doc"))
            return code, None
        doc = reply.get("doc")
        return code, None if doc is None else str(doc)

    def _object(self, handle: Any, kind: str) -> str | None:
        with self._lock:
            found = self.objects.get(_key(handle)) if handle != ffi.NULL else None
        return found[1] if found is not None and found[0] == kind else None

    def _new_handle(self, kind: str, record_id: str, out: Any) -> None:
        key = handles.new_key()
        with self._lock:
            self.objects[key] = (kind, record_id)
        out[0] = ffi.cast("void *", key)

    def _post(self, key: int, entry: _Callback, kind: int, data: str | None) -> None:
        def deliver() -> None:
            keep = ffi.new("WCHAR[]", data) if data is not None else ffi.NULL
            entry.callback(kind, entry.context, hr.S_OK, keep)

        self.c.dispatcher.post(key, lambda: not entry.closed, deliver)

    def _on_event(self, message: dict[str, Any]) -> None:
        key = int(message.get("cb", 0))
        with self._lock:
            entry = self.callbacks.get(key)
        if entry is not None:
            self._post(key, entry, int(message["type"]), message.get("data"))

    def _on_disconnect(self) -> None:
        with self._lock:
            entries = list(self.callbacks.items())
        for key, entry in entries:
            self._post(key, entry, SERVICE_DISCONNECT, None)

    # -- object functions ------------------------------------------------------------------

    def enumerate(self, kind: str) -> Callable[..., int]:
        def call(query: Any, out: Any, error: Any) -> int:
            if out == ffi.NULL:
                return hr.to_signed(hr.E_POINTER)
            code, doc = self._call({"call": "enumerate", "kind": kind, "doc": _text(query)}, error)
            self.c.allocator.store(out, doc)
            return hr.to_signed(code)

        return call

    def create(self, kind: str) -> Callable[..., int]:
        def call(guid: Any, settings: Any, out: Any, error: Any, network: Any = None) -> int:
            if ffi.NULL in (guid, out):
                self.c.allocator.store(error, None)
                return hr.to_signed(hr.E_POINTER)
            message: dict[str, Any] = {
                "call": "create",
                "kind": kind,
                "rid": guid_text(guid),
                "doc": _text(settings),
            }
            if kind == "endpoint":
                network_id = self._object(network, "network")
                if network_id is None:
                    self.c.allocator.store(error, None)
                    return hr.to_signed(hr.E_HANDLE)
                message["network"] = network_id
            out[0] = ffi.NULL
            code, _doc = self._call(message, error)
            if code == hr.S_OK:
                self._new_handle(kind, message["rid"], out)
            return hr.to_signed(code)

        if kind == "endpoint":
            return lambda network, guid, settings, out, error: call(
                guid, settings, out, error, network
            )
        return call

    def open(self, kind: str) -> Callable[..., int]:
        def call(guid: Any, out: Any, error: Any) -> int:
            if ffi.NULL in (guid, out):
                self.c.allocator.store(error, None)
                return hr.to_signed(hr.E_POINTER)
            record_id = guid_text(guid)
            out[0] = ffi.NULL
            code, _doc = self._call({"call": "open", "kind": kind, "rid": record_id}, error)
            if code == hr.S_OK:
                self._new_handle(kind, record_id, out)
            return hr.to_signed(code)

        return call

    def modify(self, kind: str) -> Callable[..., int]:
        def call(handle: Any, settings: Any, error: Any) -> int:
            record_id = self._object(handle, kind)
            if record_id is None:
                self.c.allocator.store(error, None)
                return hr.to_signed(hr.E_HANDLE)
            message = {"call": "modify", "kind": kind, "rid": record_id, "doc": _text(settings)}
            return hr.to_signed(self._call(message, error)[0])

        return call

    def query(self, kind: str, request: str = "query") -> Callable[..., int]:
        def call(handle: Any, query: Any, out: Any, error: Any) -> int:
            record_id = self._object(handle, kind)
            if record_id is None:
                self.c.allocator.store(error, None)
                return hr.to_signed(hr.E_HANDLE)
            if out == ffi.NULL:
                self.c.allocator.store(error, None)
                return hr.to_signed(hr.E_POINTER)
            message = {"call": request, "kind": kind, "rid": record_id, "doc": _text(query)}
            code, doc = self._call(message, error)
            self.c.allocator.store(out, doc)
            return hr.to_signed(code)

        return call

    def delete(self, kind: str) -> Callable[..., int]:
        def call(guid: Any, error: Any) -> int:
            if guid == ffi.NULL:
                self.c.allocator.store(error, None)
                return hr.to_signed(hr.E_POINTER)
            message = {"call": "delete", "kind": kind, "rid": guid_text(guid)}
            return hr.to_signed(self._call(message, error)[0])

        return call

    def close(self, kind: str) -> Callable[..., int]:
        def call(handle: Any) -> int:
            with self._lock:
                found = self.objects.get(_key(handle)) if handle != ffi.NULL else None
                if found is None or found[0] != kind:
                    return hr.to_signed(hr.E_HANDLE)
                del self.objects[_key(handle)]
            return hr.S_OK

        return call

    # -- callbacks -------------------------------------------------------------------------

    def register(self, service: Any, callback: Any, context: Any, out: Any) -> int:
        if ffi.NULL in (callback, out):
            return hr.to_signed(hr.E_POINTER)
        service_id = None
        if service is not None:
            service_id = self._object(service, "guestnetworkservice")
            if service_id is None:
                return hr.to_signed(hr.E_HANDLE)
        key = handles.new_key()
        entry = _Callback(callback=callback, context=ffi.cast("void *", context))
        with self._lock:
            self.callbacks[key] = entry
        code, _doc = self._call({"call": "register", "cb": key, "service": service_id}, ffi.NULL)
        if code != hr.S_OK:
            with self._lock:
                del self.callbacks[key]
            return hr.to_signed(code)
        out[0] = ffi.cast("HCN_CALLBACK", key)
        return hr.S_OK

    def unregister(self, handle: Any) -> int:
        key = _key(handle)
        with self._lock:
            entry = self.callbacks.pop(key, None) if handle != ffi.NULL else None
        if entry is None:
            return hr.to_signed(hr.E_HANDLE)
        entry.closed = True
        if not self.c.connection.disconnected:
            self.c.connection.call({"op": "hcn", "call": "unregister", "cb": key})
        self.c.dispatcher.drain(key)
        return hr.S_OK

    # -- port reservations -----------------------------------------------------------------

    def reserve(self, service: Any, protocol: int, access: int, port: int, out: Any) -> int:
        return self._reserve(service, int(protocol), int(access), int(port), 1, ffi.NULL, out)

    def reserve_range(self, service: Any, count: int, reservation: Any, out: Any) -> int:
        return self._reserve(service, 3, 1, None, int(count), reservation, out)

    def _reserve(  # noqa: PLR0917 - both C signatures funnel here
        self,
        service: Any,
        protocol: int,
        access: int,
        port: int | None,
        count: int,
        reservation: Any,
        out: Any,
    ) -> int:
        service_id = self._object(service, "guestnetworkservice")
        if service_id is None:
            return hr.to_signed(hr.E_HANDLE)
        if out == ffi.NULL or (port is None and reservation == ffi.NULL):
            return hr.to_signed(hr.E_POINTER)
        if protocol not in (1, 2, 3) or access not in (1, 2) or port == 0 or count < 1:
            return hr.to_signed(hr.E_INVALIDARG)
        key = handles.new_key()
        message = {
            "call": "reserve",
            "service": service_id,
            "protocol": protocol,
            "access": access,
            "port": port,
            "count": count,
            "key": key,
        }
        code, doc = self._call(message, ffi.NULL)
        if code != hr.S_OK:
            return hr.to_signed(code)
        if reservation != ffi.NULL and doc is not None:
            span = json.loads(doc)
            reservation.startingPort = int(span["Start"])
            reservation.endingPort = int(span["End"])
        with self._lock:
            self.reservations.add(key)
        out[0] = ffi.cast("HANDLE", key)
        return hr.S_OK

    def release(self, handle: Any) -> int:
        key = _key(handle)
        with self._lock:
            if key not in self.reservations:
                return hr.to_signed(hr.E_HANDLE)
            self.reservations.discard(key)
        return hr.to_signed(self._call({"call": "release", "key": key}, ffi.NULL)[0])

    def enumerate_reservations(self, count_out: Any, entries_out: Any) -> int:
        if ffi.NULL in (count_out, entries_out):
            return hr.to_signed(hr.E_POINTER)
        code, doc = self._call({"call": "reservations"}, ffi.NULL)
        if code != hr.S_OK:
            return hr.to_signed(code)
        taken = json.loads(doc or "[]")
        array = ffi.new("HCN_PORT_RANGE_ENTRY[]", max(1, len(taken)))
        for entry, reserved in zip(array, taken, strict=False):
            entry.Protocol = int(reserved["Protocol"])
            entry.SharingFlags = 1 if int(reserved["Access"]) == 2 else 0
            entry.StartingPort = int(reserved["Start"])
            entry.EndingPort = int(reserved["End"])
        with self._lock:
            self.entry_arrays[_key(array)] = array
        count_out[0] = len(taken)
        entries_out[0] = array
        return hr.S_OK

    def free_reservations(self, entries: Any) -> None:
        with self._lock:
            self.entry_arrays.pop(_key(entries), None)

    # -- the table -------------------------------------------------------------------------

    def implementations(self) -> dict[str, Callable[..., Any]]:
        out: dict[str, Callable[..., Any]] = {}
        for public, kind in KINDS.items():
            plural = "LoadBalancers" if public == "LoadBalancer" else f"{public}s"
            if public != "GuestNetworkService":
                out[f"HcnEnumerate{plural}"] = self.enumerate(kind)
                out[f"HcnOpen{public}"] = self.open(kind)
                out[f"HcnQuery{public}Properties"] = self.query(kind)
            out[f"HcnCreate{public}"] = self.create(kind)
            out[f"HcnModify{public}"] = self.modify(kind)
            out[f"HcnDelete{public}"] = self.delete(kind)
            out[f"HcnClose{public}"] = self.close(kind)
        out["HcnQueryEndpointStats"] = self.query("endpoint", "stats")
        out["HcnQueryEndpointAddresses"] = self.query("endpoint", "addresses")
        out["HcnRegisterServiceCallback"] = lambda cb, ctx, out: self.register(None, cb, ctx, out)
        out["HcnUnregisterServiceCallback"] = self.unregister
        out["HcnRegisterGuestNetworkServiceCallback"] = self.register
        out["HcnUnregisterGuestNetworkServiceCallback"] = self.unregister
        out["HcnReserveGuestNetworkServicePort"] = self.reserve
        out["HcnReserveGuestNetworkServicePortRange"] = self.reserve_range
        out["HcnReleaseGuestNetworkServicePortReservationHandle"] = self.release
        out["HcnEnumerateGuestNetworkPortReservations"] = self.enumerate_reservations
        out["HcnFreeGuestNetworkPortReservations"] = self.free_reservations
        return out
