"""Service-wide settings and properties: HcsGetServiceProperties and HcsModifyServiceSettings.

They live in the service (not in a client) because CPU groups and Container Credential Guard
instances are host state every client sees. Processor facts are read from the real host.
"""

from __future__ import annotations

import base64
import json
import os
import threading
from typing import Any

from pyhcs import hresult as hr
from pyhcs.emulator import documents
from pyhcs.emulator.documents import SUPPORTED_SCHEMA_VERSIONS
from pyhcs.emulator.service import cpus
from pyhcs.emulator.service.computecore import RequestFailedError, request_document
from pyhcs.errors import InvalidJsonError


def host_memory() -> dict[str, int]:
    """The host's memory for the ``Memory`` service property (a value only the official
    ServiceSample asks for; no document says what HCS answers). The names are those of
    hcsshim's ContainerMemoryInformation, the one memory-information struct no other call
    explains; the values are measured from /proc/meminfo, in bytes."""
    fields: dict[str, int] = {}
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                name, _, rest = line.partition(":")
                parts = rest.split()
                if parts and parts[0].isdigit():
                    fields[name] = int(parts[0]) * (1024 if parts[1:] == ["kB"] else 1)
    except OSError:
        return {}
    total = fields.get("MemTotal", 0)
    return {
        "TotalPhysicalBytes": total,
        "TotalUsage": total - fields.get("MemAvailable", total),
        "CommittedBytes": fields.get("Committed_AS", 0),
        "SharedCommittedBytes": fields.get("Shmem", 0),
        "CommitLimitBytes": fields.get("CommitLimit", 0),
    }


class HostSettings:
    """CPU groups and Container Credential Guard instances of this service."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.cpu_groups: dict[str, dict[str, Any]] = {}
        self.credential_guard: dict[str, dict[str, Any]] = {}

    # -- properties ------------------------------------------------------------------------

    def properties(self, text: str | None) -> str:
        """ServiceProperties for a Service_PropertyQuery (NULL/empty asks for Basic)."""
        query = request_document(text, "GetServiceProperties", kind="Service_PropertyQuery")
        types = query.get("PropertyTypes")
        if types is None and "PropertyQueries" not in query:
            types = ["Basic"]
        result: dict[str, Any] = {"Properties": [self._property(t) for t in types or []]}
        if "PropertyQueries" in query:
            result["PropertyResponses"] = documents.property_responses(
                query["PropertyQueries"], self._query, lambda n: f"unknown service property {n!r}"
            )
        return json.dumps(result)

    def _property(self, name: str) -> dict[str, Any]:
        if name == "Basic":
            return {"SupportedSchemaVersions": [dict(v) for v in SUPPORTED_SCHEMA_VERSIONS]}
        if name == "CpuGroup":
            with self._lock:
                return {"CpuGroups": [json.loads(json.dumps(g)) for g in self.cpu_groups.values()]}
        if name == "ProcessorTopology":
            found = cpus.logical()
            return {
                "LogicalProcessorCount": len(found),
                "LogicalProcessors": [
                    {
                        "LpIndex": cpu["processor"],
                        "NodeNumber": 0,
                        "PackageId": cpu.get("physical id", 0),
                        "CoreId": cpu.get("core id", cpu["processor"]),
                        "RootVpIndex": -1,
                    }
                    for cpu in found
                ],
            }
        if name == "ContainerCredentialGuard":
            with self._lock:
                return {"Instances": list(self.credential_guard.values())}
        if name == "Memory":
            return host_memory()
        # QoSCapabilities: processor limits/weights are recorded, not enforced (no cgroups).
        return {"ProcessorQoSSupported": False}

    def _query(self, name: str) -> dict[str, Any] | None:
        """2.5 PropertyQueries: the GetPropertyType names plus ProcessorCapabilities."""
        if name == "ProcessorCapabilities":
            return cpus.requirements()
        if name in ("Basic", "CpuGroup", "ProcessorTopology", "ContainerCredentialGuard", "Memory"):
            return self._property(name)
        if name == "QoSCapabilities":
            return self._property(name)
        return None

    # -- modification ----------------------------------------------------------------------

    def modify(self, text: str | None) -> None:
        """A ModificationRequest: CpuGroup (create/delete/set property) or
        ContainerCredentialGuard (add/remove instance)."""
        try:
            self._apply(documents.parse_object(text, allow_empty=False))
        except InvalidJsonError as exc:
            raise RequestFailedError(
                hr.HCS_E_INVALID_JSON, documents.describe(exc), "ModifyServiceSettings"
            ) from exc

    def _apply(self, request: dict[str, Any]) -> None:
        documents.validate("ModificationRequest", request)
        kind = request.get("PropertyType")
        settings = request.get("Settings")
        if not isinstance(settings, dict):
            raise InvalidJsonError("Settings is required", json_path="$.Settings")
        if kind == "CpuGroup":
            documents.validate("HostProcessorModificationRequest", settings)
            self._modify_cpu_group(settings)
        elif kind == "ContainerCredentialGuard":
            documents.validate("ContainerCredentialGuardOperationRequest", settings)
            self._modify_credential_guard(settings)
        else:
            raise InvalidJsonError("PropertyType is required", json_path="$.PropertyType")

    def _modify_cpu_group(self, settings: dict[str, Any]) -> None:
        operation = settings.get("Operation")
        details = settings.get("OperationDetails")
        if not isinstance(details, dict):
            raise InvalidJsonError("OperationDetails is required", json_path="$.OperationDetails")
        kinds = {
            "CreateGroup": "CreateGroupOperation",
            "DeleteGroup": "DeleteGroupOperation",
            "SetProperty": "SetPropertyOperation",
        }
        if operation not in kinds:
            raise InvalidJsonError("Operation is required", json_path="$.Settings.Operation")
        documents.validate(kinds[operation], details)
        group_id = str(details.get("GroupId", "")).lower()
        if not group_id:
            raise InvalidJsonError("GroupId is required", json_path="$.OperationDetails.GroupId")
        with self._lock:
            group = self.cpu_groups.get(group_id)
            if operation == "CreateGroup":
                self._create_group(group_id, group, details)
            elif group is None:
                raise RequestFailedError(
                    hr.ERROR_NOT_FOUND, f"no CPU group {group_id}", "ModifyServiceSettings"
                )
            elif operation == "DeleteGroup":
                del self.cpu_groups[group_id]
            else:
                props = [
                    p
                    for p in group["GroupProperties"]
                    if p["PropertyCode"] != details.get("PropertyCode")
                ]
                props.append(
                    {
                        "PropertyCode": int(details.get("PropertyCode", 0)),
                        "PropertyValue": int(details.get("PropertyValue", 0)),
                    }
                )
                group["GroupProperties"] = props

    def _create_group(
        self, group_id: str, existing: dict[str, Any] | None, details: dict[str, Any]
    ) -> None:
        if existing is not None:
            raise RequestFailedError(
                hr.ERROR_ALREADY_EXISTS, f"CPU group {group_id} exists", "ModifyServiceSettings"
            )
        processors = [int(p) for p in details.get("LogicalProcessors", [])]
        count = int(details.get("LogicalProcessorCount", len(processors)))
        host = len(cpus.logical())
        if count != len(processors) or any(p >= host for p in processors):
            raise RequestFailedError(
                hr.E_INVALIDARG,
                f"LogicalProcessors must list {count} of the host's {host} processors",
                "ModifyServiceSettings",
            )
        taken = {p for g in self.cpu_groups.values() for p in g["Affinity"]["LogicalProcessors"]}
        if taken & set(processors):
            raise RequestFailedError(
                hr.ERROR_ALREADY_EXISTS,
                f"logical processors {sorted(taken & set(processors))} belong to another group",
                "ModifyServiceSettings",
            )
        self.cpu_groups[group_id] = {
            "GroupId": group_id,
            "Affinity": {"LogicalProcessorCount": count, "LogicalProcessors": processors},
            "GroupProperties": [],
            "HypervisorGroupId": len(self.cpu_groups) + 1,
        }

    def _modify_credential_guard(self, settings: dict[str, Any]) -> None:
        operation = settings.get("Operation")
        details = settings.get("OperationDetails")
        if not isinstance(details, dict) or operation not in ("AddInstance", "RemoveInstance"):
            raise InvalidJsonError("Operation and OperationDetails are required", json_path="$")
        if operation == "AddInstance":
            documents.validate("ContainerCredentialGuardAddInstanceRequest", details)
        else:
            documents.validate("ContainerCredentialGuardRemoveInstanceRequest", details)
        instance_id = str(details.get("Id", ""))
        with self._lock:
            if operation == "RemoveInstance":
                if self.credential_guard.pop(instance_id, None) is None:
                    raise RequestFailedError(
                        hr.ERROR_NOT_FOUND,
                        f"no Container Credential Guard instance {instance_id!r}",
                        "ModifyServiceSettings",
                    )
                return
            if instance_id in self.credential_guard:
                raise RequestFailedError(
                    hr.ERROR_ALREADY_EXISTS,
                    f"instance {instance_id!r} exists",
                    "ModifyServiceSettings",
                )
            transport = details.get("Transport", "LRPC")
            self.credential_guard[instance_id] = {
                "Id": instance_id,
                "CredentialGuard": {
                    "Cookie": base64.b64encode(os.urandom(16)).decode(),
                    "RpcEndpoint": f"pyhcs-ccg-{instance_id}",
                    "Transport": transport,
                    "CredentialSpec": details.get("CredentialSpec", ""),
                },
            }
