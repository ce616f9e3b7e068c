"""Host Compute Network (computenetwork.dll, HCN): networks, endpoints, namespaces, load
balancers and guest network services as objects that own one HCN handle each.

The objects follow the lifetime rules of `ComputeSystem`: one open handle per object, closed
exactly once (`close`, or the ``with`` block; a forgotten one is closed by a finalizer that
warns), methods after close raise InvalidHandleError. An HNS object outlives the handles to it,
as a compute system does: closing never deletes; `delete` does (and closes this handle).

Every HCN function is synchronous (no operation, nothing to cancel or time out) and returns,
on failure, an ``ErrorRecord`` document from HNS. pyhcs frees that string (CoTaskMemFree, as
every HCN string out), puts HNS's ``Error`` text in the exception's message and keeps the whole
record as its ``document``; the HRESULT picks the class as everywhere in pyhcs.

Documents (settings, modifications, queries) are dicts or JSON text, passed to HNS unchanged:
pyhcs has no models of the HCN schema and does not guess one. Results are parsed JSON.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from html import escape
from typing import Any, ClassVar, Final, TypeVar

from typing_extensions import Self

from pyhcs import hresult as hr
from pyhcs.errors import (
    HcsError,
    InvalidArgumentError,
    NotSupportedError,
    check,
    error_from_hresult,
)
from pyhcs.handle import OwnedHandle
from pyhcs.raw import ffi, lib
from pyhcs.raw.strings import take_wide, wide

__all__ = [
    "Endpoint",
    "GuestNetworkService",
    "HcnObject",
    "LoadBalancer",
    "Namespace",
    "Network",
]

#: The ``SchemaVersion`` of the HCN documents pyhcs writes itself (queries, modifications).
SCHEMA_VERSION: Final = {"Major": 2, "Minor": 0}

Settings = Mapping[str, Any] | str
_T = TypeVar("_T")
Id = uuid.UUID | str


def _uuid(value: Id, what: str) -> uuid.UUID:
    """An id as a UUID; InvalidArgumentError (nothing sent to HNS) when it is not a GUID."""
    if isinstance(value, uuid.UUID):
        return value
    if isinstance(value, str):
        try:
            return uuid.UUID(value)
        except ValueError:
            pass
    raise InvalidArgumentError(f"{what} id {value!r} is not a GUID")


def _guid(value: uuid.UUID) -> Any:
    """A ``GUID *`` holding ``value`` (field by field, so byte order is the C compiler's)."""
    guid = ffi.new("GUID *")
    guid.Data1, guid.Data2, guid.Data3 = value.fields[0], value.fields[1], value.fields[2]
    for index, byte in enumerate(value.bytes[8:]):
        guid.Data4[index] = byte
    return guid


def _document(value: Settings | None, what: str) -> str | None:
    """A document as the JSON text HNS takes (None stays NULL); text is not judged here."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        try:
            return json.dumps(value)
        except (TypeError, ValueError) as exc:
            raise InvalidArgumentError(f"{what} is not JSON-serialisable: {exc}") from None
    raise InvalidArgumentError(f"{what} must be a dict or JSON text, not {type(value).__name__}")


def _parse(text: str | None, operation: str, expected: type[_T], what: str) -> _T | None:
    """A result document HNS returned, parsed and of the ``expected`` JSON type (None when
    nothing was returned); anything else is an error, not a guess."""
    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, expected):
        raise error_from_hresult(
            hr.HCN_E_INVALID_JSON,
            operation=operation,
            message=f"HNS returned {text!r}, not {what}",
            document=text,
        )
    return value


def hcn_error(code: int, operation: str, what: str, record: str | None) -> HcsError:
    """The typed error of a failed HCN call: HNS's ``Error`` text (the record kept whole)."""
    message = None
    if record:
        try:
            parsed = json.loads(record)
        except ValueError:
            parsed = None  # not JSON: the raw record is still the error's document
        if isinstance(parsed, dict) and isinstance(parsed.get("Error"), str):
            message = parsed["Error"]
    return error_from_hresult(
        code,
        operation=operation,
        message=f"{what}: {message or hr.message(code)}",
        document=record,
    )


def _call(operation: str, what: str, function: Callable[..., int], *args: Any) -> str | None:
    """One HCN call with the ``ErrorRecord`` out-string last (and, when ``function`` has one,
    a result string before it: pass ``_RESULT`` in its place). Both strings are freed."""
    result = ffi.new("PWSTR *")
    error = ffi.new("PWSTR *")
    code = function(*(result if a is _RESULT else a for a in args), error)
    text = take_wide(result[0], lib.CoTaskMemFree)
    record = take_wide(error[0], lib.CoTaskMemFree)
    if hr.failed(code):
        raise hcn_error(code, operation, what, record)
    return text


#: Placeholder for a result out-string in `_call`'s arguments.
_RESULT: Final = object()


def _query(flags: int = 0, filter: Mapping[str, Any] | None = None) -> str:
    """A ``HostComputeQuery`` (``Filter`` is itself JSON text, as HNS wants it)."""
    query: dict[str, Any] = {"SchemaVersion": SCHEMA_VERSION, "Flags": flags}
    if filter:
        query["Filter"] = json.dumps(dict(filter))
    return json.dumps(query)


class HcnObject:
    """What every HCN object shares: create, open, enumerate, query, modify, delete, close.

    Subclasses name their kind; the C functions are ``Hcn<Verb><Kind>``."""

    #: The kind as the C function names spell it (``Network``, ``LoadBalancer``).
    kind: ClassVar[str] = ""
    #: The kind in messages (``network``, ``load balancer``).
    noun: ClassVar[str] = ""
    #: Whether HCN has Open/Enumerate/Query functions for the kind.
    queryable: ClassVar[bool] = True

    def __init__(self, handle: Any, object_id: uuid.UUID, name: str | None = None) -> None:
        self.id = object_id
        #: The ``Name`` of the settings it was created with, when pyhcs saw them.
        self.name = name
        close_name = f"HcnClose{self.kind}"
        close = getattr(lib, close_name)
        self._handle = OwnedHandle(
            self,
            handle,
            lambda value: check(close(value), operation=close_name),
            f"HCN {self.noun} {object_id}",
            lambda: None,
        )

    @property
    def _what(self) -> str:
        return f"{self.noun} {self.id}"

    # -- getting one -----------------------------------------------------------------------

    @classmethod
    def _create(
        cls, settings: Settings, object_id: Id | None, start: Callable[[Any, Any, Any], Any]
    ) -> Self:
        """Create through ``start(guid, settings, out)`` (which calls `_call`)."""
        new_id = uuid.uuid4() if object_id is None else _uuid(object_id, cls.noun)
        text = _document(settings, f"{cls.noun} settings")
        if text is None:
            raise InvalidArgumentError(f"a {cls.noun} needs settings")
        name = settings.get("Name") if isinstance(settings, Mapping) else None
        out = ffi.new("void **")
        try:
            start(_guid(new_id), wide(text), out)
        except BaseException:
            if out[0] != ffi.NULL:  # never seen, but a handle handed out is ours to close
                getattr(lib, f"HcnClose{cls.kind}")(out[0])
            raise
        return cls(out[0], new_id, name if isinstance(name, str) else None)

    @classmethod
    def create(cls, settings: Settings, *, id: Id | None = None) -> Self:
        """Create one from its settings (``id`` defaults to a new random GUID)."""
        operation = f"HcnCreate{cls.kind}"
        function = getattr(lib, operation)
        return cls._create(
            settings,
            id,
            lambda guid, text, out: _call(operation, cls.noun, function, guid, text, out),
        )

    @classmethod
    def open(cls, object_id: Id) -> Self:
        """Open an existing one by id (another process may have created it)."""
        operation = f"HcnOpen{cls.kind}"
        cls._require_queryable(operation)
        value = _uuid(object_id, cls.noun)
        out = ffi.new("void **")
        _call(operation, f"{cls.noun} {value}", getattr(lib, operation), _guid(value), out)
        return cls(out[0], value)

    @classmethod
    def enumerate(cls, filter: Mapping[str, Any] | None = None) -> list[uuid.UUID]:
        """The ids HNS has of this kind, optionally only those whose fields equal ``filter``'s
        (``{"Name": "nat"}``)."""
        plural = "LoadBalancers" if cls.kind == "LoadBalancer" else f"{cls.kind}s"
        operation = f"HcnEnumerate{plural}"
        cls._require_queryable(operation)
        text = _call(
            operation, f"{cls.noun}s", getattr(lib, operation), wide(_query(0, filter)), _RESULT
        )
        ids = _parse(text, operation, list, "a list of ids") or []
        return [_uuid(str(item), cls.noun) for item in ids]

    @classmethod
    def delete_by_id(cls, object_id: Id) -> None:
        """Delete the HNS object with that id (open handles to it stay open, and useless)."""
        operation = f"HcnDelete{cls.kind}"
        value = _uuid(object_id, cls.noun)
        _call(operation, f"{cls.noun} {value}", getattr(lib, operation), _guid(value))

    @classmethod
    def _require_queryable(cls, operation: str) -> None:
        if not cls.queryable:
            raise NotSupportedError(
                f"HCN has no {operation}",
                operation=operation,
                hint=f"a {cls.noun} can only be created, modified and deleted",
            )

    # -- using one -------------------------------------------------------------------------

    def properties(self, query: Settings | None = None) -> dict[str, Any]:
        """Its properties (a ``HostComputeQuery`` may ask for more or less)."""
        operation = f"HcnQuery{self.kind}Properties"
        self._require_queryable(operation)
        return self._ask(operation, query)

    def _ask(self, operation: str, query: Settings | None) -> dict[str, Any]:
        """One ``HcnQuery*`` call on this handle: its JSON object result."""
        text = _query() if query is None else _document(query, "query")
        with self._handle.use(operation) as handle:
            result = _call(
                operation, self._what, getattr(lib, operation), handle, wide(text), _RESULT
            )
        parsed = _parse(result, operation, dict, "a JSON object")
        if parsed is None:
            raise error_from_hresult(
                hr.HCN_E_INVALID_JSON,
                operation=operation,
                message=f"{self._what}: HNS returned no result",
            )
        return parsed

    def modify(self, request: Settings) -> None:
        """Apply a modification request (for networks and endpoints: policies Add / Remove /
        Update, ``{"ResourceType": "Policy", "RequestType": ..., "Settings": ...}``)."""
        operation = f"HcnModify{self.kind}"
        text = _document(request, "modification request")
        with self._handle.use(operation) as handle:
            _call(operation, self._what, getattr(lib, operation), handle, wide(text))

    def delete(self) -> None:
        """Delete the HNS object, then close this handle."""
        with self._handle.use(f"HcnDelete{self.kind}"):
            self.delete_by_id(self.id)
        self.close()

    # -- lifetime --------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._handle.closed

    def close(self) -> None:
        """Close this handle (the HNS object stays; `delete` removes it)."""
        self._handle.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        name = f" {self.name!r}" if self.name else ""
        state = "closed" if self.closed else "open"
        return f"<{type(self).__name__}{name} {self.id} {state}>"

    def _repr_html_(self) -> str:
        return f"<code>{escape(repr(self))}</code>"


class Network(HcnObject):
    """An HNS network (``HostComputeNetwork`` settings: ``Name``, ``Type``, ``Ipams``, ...)."""

    kind = "Network"
    noun = "network"

    def create_endpoint(self, settings: Settings, *, id: Id | None = None) -> Endpoint:
        """A new endpoint on this network (``HostComputeEndpoint`` settings)."""
        return Endpoint.create(self, settings, id=id)


class Endpoint(HcnObject):
    """An endpoint of a network: its addresses, statistics, and the namespace it is in."""

    kind = "Endpoint"
    noun = "endpoint"

    @classmethod
    def create(  # type: ignore[override]  # an endpoint is created on a network
        cls,
        network: Network,
        settings: Settings,
        *,
        id: Id | None = None,
    ) -> Self:
        if not isinstance(network, Network):
            raise InvalidArgumentError(
                f"an endpoint is created on a Network, not on {type(network).__name__}"
            )
        operation = "HcnCreateEndpoint"

        def start(guid: Any, text: Any, out: Any) -> None:
            with network._handle.use(operation) as handle:
                _call(
                    operation,
                    f"endpoint on {network._what}",
                    lib.HcnCreateEndpoint,
                    handle,
                    guid,
                    text,
                    out,
                )

        return cls._create(settings, id, start)

    def stats(self, query: Settings | None = None) -> dict[str, Any]:
        """Packet and byte counters (``HcnQueryEndpointStats``)."""
        return self._ask("HcnQueryEndpointStats", query)

    def addresses(self, query: Settings | None = None) -> dict[str, Any]:
        """Its IP and MAC addresses (``HcnQueryEndpointAddresses``)."""
        return self._ask("HcnQueryEndpointAddresses", query)

    @property
    def ip_addresses(self) -> list[str]:
        """The IP addresses of its ``IpConfigurations`` (one query)."""
        configs = self.properties().get("IpConfigurations") or []
        return [str(c["IpAddress"]) for c in configs if isinstance(c, dict) and "IpAddress" in c]

    @property
    def namespace_id(self) -> uuid.UUID | None:
        """The namespace it is attached to, if any (one query)."""
        value = self.properties().get("HostComputeNamespace")
        return _uuid(str(value), "namespace") if value else None


class Namespace(HcnObject):
    """A network namespace (a compartment): a container or VM joins it; endpoints are added
    to it."""

    kind = "Namespace"
    noun = "namespace"

    def _endpoint_request(self, endpoint: Endpoint | Id, request_type: str) -> None:
        value = endpoint.id if isinstance(endpoint, Endpoint) else _uuid(endpoint, "endpoint")
        self.modify(
            {
                "ResourceType": "Endpoint",
                "RequestType": request_type,
                "Settings": {"EndpointId": str(value)},
            }
        )

    def add_endpoint(self, endpoint: Endpoint | Id) -> None:
        """Put an endpoint into this namespace (AlreadyExistsError if it is in one)."""
        self._endpoint_request(endpoint, "Add")

    def remove_endpoint(self, endpoint: Endpoint | Id) -> None:
        """Take an endpoint out of this namespace."""
        self._endpoint_request(endpoint, "Remove")

    def endpoints(self) -> list[uuid.UUID]:
        """The ids of the endpoints in this namespace (its ``Resources`` of type Endpoint)."""
        out = []
        for resource in self.properties().get("Resources") or []:
            data = resource.get("Data") if isinstance(resource, dict) else None
            if resource.get("Type") == "Endpoint" and isinstance(data, dict) and data.get("Id"):
                out.append(_uuid(str(data["Id"]), "endpoint"))
        return out


class LoadBalancer(HcnObject):
    """A load balancer over endpoints (``HostComputeLoadBalancer`` settings)."""

    kind = "LoadBalancer"
    noun = "load balancer"


class GuestNetworkService(HcnObject):
    """A guest network service: HCN can create, modify and delete one, not open, enumerate
    or query it (those methods raise NotSupportedError)."""

    kind = "GuestNetworkService"
    noun = "guest network service"
    queryable = False
