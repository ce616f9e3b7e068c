"""The Properties document of HcsGetComputeSystemProperties, built from the live system.

Everything measurable is measured: ProcessList, Statistics and a VM's memory use come from the
real host processes in ``/proc``. What a host cannot measure for an emulated guest (VM memory
balancing, guest physical addresses) is derived from the system's document, so it is stable and
consistent with what was configured.
"""

from __future__ import annotations

import functools
import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from pyhcs.emulator import documents
from pyhcs.errors import InvalidJsonError

if TYPE_CHECKING:
    from pyhcs.emulator.service.processes import HostProcess


@functools.cache
def property_types() -> frozenset[str]:
    """The schema's System_PropertyType values (the models are imported on first use: they
    take most of the service's start-up time)."""
    from pyhcs import schema  # noqa: PLC0415

    return frozenset(str(t.value) for t in schema.System_PropertyType)


#: Emulator-only property type: the live (modified) system document.
EXTENSION_TYPES: Final = frozenset({"Configuration"})
#: AssignedMemory and MemoryUsageInPages count 4 KiB pages whatever the guest's page size.
PAGE_BYTES: Final = 4096
#: Guest physical address where emulated shared-memory regions start (above 4 GiB).
SHARED_MEMORY_BASE: Final = 0x1_0000_0000
#: What an emulated guest connection reports: its protocol and schema versions (x.y covers
#: x.0 .. x.y).
GUEST_PROTOCOL_VERSION: Final = 4
GUEST_SCHEMA_VERSIONS: Final = ({"Major": 2, "Minor": 5},)


@dataclass(frozen=True)
class Query:
    """A validated System_PropertyQuery (shared between requests: never modified)."""

    types: tuple[str, ...]
    queries: dict[str, Any]

    @property
    def reads_document(self) -> bool:
        """Whether building the answer reads the system's document."""
        return not _DOCUMENT_FREE.issuperset(self.types) or bool(self.queries)


#: Property types whose value never reads the system's document.
_DOCUMENT_FREE: Final = frozenset({"TerminateOnLastHandleClosed", "ProcessList", "Statistics"})

#: Queries up to this size are remembered once validated (clients repeat the same few).
_CACHED_QUERY: Final = 4096


@dataclass
class Snapshot:
    """What the properties need of a system, copied under the service lock."""

    kind: str
    doc: dict[str, Any]
    basic: dict[str, Any]
    terminate_on_close: bool
    start_time: float
    processes: list[HostProcess]
    guest_processes: list[HostProcess]


def parse_query(text: str | None) -> Query:
    """Validate a System_PropertyQuery strictly; unknown property types → InvalidJsonError
    naming ``$.PropertyTypes[i]``. Unknown names under ``Queries`` are not an error of the
    call: each gets an Error entry in PropertyResponses, as 2.5 defines. A query text seen
    before answers from a cache (validation is the largest part of a GetProperties)."""
    if text is None or len(text) <= _CACHED_QUERY:
        return _parse_query_cached(text)
    return _parse_query(text)


@functools.lru_cache(maxsize=256)
def _parse_query_cached(text: str | None) -> Query:
    return _parse_query(text)


def _parse_query(text: str | None) -> Query:
    doc = documents.parse_object(text)
    types = doc.get("PropertyTypes", [])
    if types is None:
        types = []
    if not isinstance(types, list):
        raise InvalidJsonError("PropertyTypes must be an array", json_path="$.PropertyTypes")
    for index, name in enumerate(types):
        if not isinstance(name, str) or name not in property_types() | EXTENSION_TYPES:
            raise InvalidJsonError(
                f"unknown property type {name!r}", json_path=f"$.PropertyTypes[{index}]"
            )
    documents.validate(
        "System_PropertyQuery",
        dict(doc, PropertyTypes=[t for t in types if t not in EXTENSION_TYPES]),
    )
    queries = doc.get("Queries") or {}
    return Query(types=tuple(types), queries=dict(queries))


def build(snapshot: Snapshot, query: Query) -> dict[str, Any]:
    props = dict(snapshot.basic)
    for name in query.types:
        value = _value(snapshot, name)
        if value is not None:
            props[_FIELD.get(name, name)] = value
    if query.queries:
        props["PropertyResponses"] = documents.property_responses(
            query.queries,
            lambda n: _value(snapshot, n) if n in property_types() else None,
            lambda n: f"property {n!r} is not available for this system",
        )
    return props


#: Property type → the Properties field that carries it.
_FIELD: Final = {
    "SharedMemoryRegion": "SharedMemoryRegionInfo",
    "GuestConnection": "GuestConnectionInfo",
}


def _value(snapshot: Snapshot, name: str) -> Any:
    """The value of one property type, or None where the system has no such property."""
    vm = snapshot.kind == "VirtualMachine"
    if name == "Configuration":
        return snapshot.doc
    if name == "TerminateOnLastHandleClosed":
        return snapshot.terminate_on_close
    if name == "ProcessList":
        return [process_entry(p) for p in snapshot.processes]
    if name == "Statistics":
        return statistics(snapshot)
    if name == "Memory" and vm:
        return _vm_memory(snapshot)
    if name == "SystemGUID":
        # Not in the public Swagger (hcsshim's Properties.SystemGUID): the system's runtime id.
        return snapshot.basic.get("RuntimeId")
    if name == "SharedMemoryRegion" and vm:
        return _shared_memory(snapshot.doc)
    if name == "GuestConnection" and vm and "GuestConnection" in snapshot.doc["VirtualMachine"]:
        return {
            "SupportedSchemaVersions": [dict(v) for v in GUEST_SCHEMA_VERSIONS],
            "ProtocolVersion": GUEST_PROTOCOL_VERSION,
            "GuestDefinedCapabilities": {},
        }
    return None


def _proc_fields(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().rsplit(")", 1)[1].split()
    except OSError:
        return []


def _proc_io(pid: int) -> dict[str, int]:
    """``/proc/<pid>/io`` counters (empty where the kernel does not allow reading them)."""
    try:
        with open(f"/proc/{pid}/io", encoding="ascii") as f:
            pairs = [line.split(":", 1) for line in f if ":" in line]
    except OSError:
        return {}
    return {key.strip(): int(value) for key, value in pairs}


def _boot_time() -> float:
    with open("/proc/stat", encoding="ascii") as f:
        for line in f:
            if line.startswith("btime "):
                return float(line.split()[1])
    raise OSError("no btime in /proc/stat")


def _rfc3339(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + (
        f".{int((seconds % 1) * 1_000_000):06d}Z"
    )


def _ticks_to_100ns(ticks: int) -> int:
    return ticks * 10_000_000 // os.sysconf("SC_CLK_TCK")


def process_entry(process: HostProcess) -> dict[str, Any]:
    """ProcessDetails of one live host process."""
    fields = _proc_fields(process.pid)
    entry: dict[str, Any] = {"ProcessId": process.pid, "ImageName": process.image}
    if not fields:
        return entry
    page = os.sysconf("SC_PAGE_SIZE")
    started = _boot_time() + int(fields[19]) / os.sysconf("SC_CLK_TCK")
    entry.update(
        CreateTimestamp=_rfc3339(started),
        UserTime100ns=_ticks_to_100ns(int(fields[11])),
        KernelTime100ns=_ticks_to_100ns(int(fields[12])),
        MemoryCommitBytes=int(fields[20]),  # virtual size
        MemoryWorkingSetPrivateBytes=int(fields[21]) * page,
        MemoryWorkingSetSharedBytes=0,
    )
    return entry


def _rss(processes: list[HostProcess]) -> int:
    page = os.sysconf("SC_PAGE_SIZE")
    total = 0
    for process in processes:
        fields = _proc_fields(process.pid)
        if fields:
            total += int(fields[21]) * page
    return total


def statistics(snapshot: Snapshot) -> dict[str, Any]:
    """Statistics summed over the system's live processes."""
    user = kernel = rss = commit = 0
    reads = read_bytes = writes = write_bytes = 0
    page = os.sysconf("SC_PAGE_SIZE")
    for process in snapshot.processes:
        fields = _proc_fields(process.pid)
        if fields:
            user += int(fields[11])
            kernel += int(fields[12])
            commit += int(fields[20])
            rss += int(fields[21]) * page
        io = _proc_io(process.pid)
        reads += io.get("syscr", 0)
        writes += io.get("syscw", 0)
        read_bytes += io.get("rchar", 0)
        write_bytes += io.get("wchar", 0)
    now = time.time()
    stats: dict[str, Any] = {
        "Timestamp": _rfc3339(now),
        "Uptime100ns": int((now - snapshot.start_time) * 10_000_000) if snapshot.start_time else 0,
        "Processor": {
            "TotalRuntime100ns": _ticks_to_100ns(user + kernel),
            "RuntimeUser100ns": _ticks_to_100ns(user),
            "RuntimeKernel100ns": _ticks_to_100ns(kernel),
        },
        "Memory": {
            "MemoryUsageCommitBytes": commit,
            "MemoryUsageCommitPeakBytes": commit,
            "MemoryUsagePrivateWorkingSetBytes": rss,
        },
        "Storage": {
            "ReadCountNormalized": reads,
            "ReadSizeBytes": read_bytes,
            "WriteCountNormalized": writes,
            "WriteSizeBytes": write_bytes,
        },
    }
    if snapshot.start_time:
        stats["ContainerStartTime"] = _rfc3339(snapshot.start_time)
    return stats


def _vm_memory(snapshot: Snapshot) -> dict[str, Any]:
    """MemoryInformationForVm: the configured size as assigned pages, the measured use of the
    VM's and its guests' processes as the node's usage."""
    topology = snapshot.doc["VirtualMachine"].get("ComputeTopology") or {}
    size_mb = int((topology.get("Memory") or {}).get("SizeInMB") or 0)
    processors = int((topology.get("Processor") or {}).get("Count") or 1)
    used = _rss(snapshot.processes + snapshot.guest_processes)
    assigned_pages = size_mb * (1 << 20) // PAGE_BYTES
    return {
        "VirtualNodeCount": 1,
        "VirtualMachineMemory": {
            "AvailableMemory": max(0, size_mb - used // (1 << 20)),
            "AvailableMemoryBuffer": 0,
            "ReservedMemory": 0,
            "AssignedMemory": assigned_pages,
            "SlpActive": False,
            "BalancingEnabled": False,
            "DmOperationInProgress": False,
        },
        "VirtualNodes": [
            {
                "VirtualNodeIndex": 0,
                "PhysicalNodeNumber": 0,
                "VirtualProcessorCount": processors,
                "MemoryUsageInPages": -(-used // PAGE_BYTES),
            }
        ],
    }


def _shared_memory(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """SharedMemoryRegionInfo: each configured region mapped at consecutive guest physical
    addresses from SHARED_MEMORY_BASE, in document order."""
    devices = doc["VirtualMachine"].get("Devices") or {}
    regions = (devices.get("SharedMemory") or {}).get("Regions") or []
    out = []
    address = SHARED_MEMORY_BASE
    for region in regions:
        out.append({"SectionName": region.get("SectionName", ""), "GuestPhysicalAddress": address})
        address += int(region.get("Length") or 0)
    return out
