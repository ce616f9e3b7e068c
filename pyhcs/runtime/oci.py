"""The OCI runtime spec's documents as pydantic models: a bundle's ``config.json`` (`Spec`), one
``process`` object (`Process`, also what ``exec --process`` reads) and the ``state`` document
(`State`, with runc's extra fields).

Conventions, as `pyhcs.schema` has them for HCS: snake_case attributes with the spec's exact
camelCase JSON names as aliases (either spelling populates, including the spec's odd ones:
``DNSSearchList``, ``utilityVMPath``, ``containerID``), unknown fields kept on input so nothing
a newer spec adds is lost, and `OciModel.to_dict` writes back only what was set, so a document
read and written again is unchanged. Parsing failures raise `BundleError` naming the JSON path.

What is modelled: ``process``, ``root``, ``mounts``, ``hostname``, ``annotations``, ``hooks``,
the whole ``windows`` section and the ``linux`` section's fields a runtime reads (namespaces,
resources, cgroupsPath, devices, masked and read-only paths, sysctl, ...); the rest of
``linux`` (seccomp, intelRdt, personality, ...) is kept as plain JSON.

This module imports pydantic and nothing of pyhcs's HCS layers (no cffi): the runtime's CLI
imports it only for the commands that read a bundle.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel
from typing_extensions import Self

from pyhcs.errors import InvalidArgumentError
from pyhcs.runtime.formats import SPEC_VERSION, go_json, rfc3339_nano

__all__ = [
    "SPEC_VERSION",
    "BundleError",
    "Hook",
    "Hooks",
    "Linux",
    "Mount",
    "OciModel",
    "Process",
    "Root",
    "Spec",
    "State",
    "Status",
    "User",
    "Windows",
    "go_json",
    "rfc3339_nano",
]

UInt16 = Annotated[int, Field(ge=0, le=0xFFFF)]
UInt32 = Annotated[int, Field(ge=0, le=0xFFFF_FFFF)]
UInt64 = Annotated[int, Field(ge=0, le=0xFFFF_FFFF_FFFF_FFFF)]
Int64 = Annotated[int, Field(ge=-(2**63), le=2**63 - 1)]


class BundleError(InvalidArgumentError):
    """A bundle (or a process document) that cannot be run: nothing was created.

    ``json_path`` names the offending value (``$.process.cwd``) when there is one, ``path``
    the file."""

    def __init__(
        self,
        message: str,
        *,
        json_path: str | None = None,
        path: str | None = None,
        **context: Any,
    ) -> None:
        super().__init__(message, **context)
        self.json_path = json_path
        self.path = path

    def _context(self) -> dict[str, Any]:
        return {**super()._context(), "extra": {"json_path": self.json_path, "path": self.path}}


def json_path(loc: tuple[int | str, ...], root: str = "$") -> str:
    """A pydantic error location (aliases, indexes) in JSON path notation."""
    path = root
    for item in loc:
        path += f"[{item}]" if isinstance(item, int) else f".{item}"
    return path


class OciModel(BaseModel):
    """An OCI object (see the module docstring for the conventions)."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="allow",
        protected_namespaces=(),
    )

    @classmethod
    def parse(cls, document: Mapping[str, Any] | str | bytes, *, source: str = "") -> Self:
        """Build from a dict or JSON text; BundleError with the JSON path on failure
        (``source`` names the file in the message). Types are checked as Go's decoder does:
        no strings for numbers, no numbers for booleans."""
        prefix = f"{source}: " if source else ""
        if isinstance(document, (str, bytes)):
            try:
                document = json.loads(document)
            except json.JSONDecodeError as exc:
                raise BundleError(
                    f"{prefix}invalid JSON at line {exc.lineno} column {exc.colno}"
                    f" (char {exc.pos}): {exc.msg}",
                    json_path="$",
                    path=source or None,
                ) from None
        if not isinstance(document, Mapping):
            raise BundleError(
                f"{prefix}expected a JSON object, got {type(document).__name__}",
                json_path="$",
                path=source or None,
            )
        try:
            return cls.model_validate(document, strict=True)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = json_path(tuple(first["loc"]))
            raise BundleError(
                f"{prefix}{where}: {first['msg']}", json_path=where, path=source or None
            ) from None

    def to_dict(self) -> dict[str, Any]:
        """The JSON object: camelCase names, only the fields that were set (unknown ones
        included), so parse-then-write gives the input back."""
        return self.model_dump(mode="json", by_alias=True, exclude_unset=True)

    def to_json(self) -> str:
        return json.dumps(self.to_dict())


# -- process ------------------------------------------------------------------------------


class Box(OciModel):
    height: UInt32
    width: UInt32


class User(OciModel):
    """``uid``/``gid``/``umask``/``additionalGids`` are POSIX; ``username`` is Windows's."""

    uid: UInt32 = 0
    gid: UInt32 = 0
    umask: UInt32 | None = None
    additional_gids: list[UInt32] | None = None
    username: str | None = None


class Capabilities(OciModel):
    bounding: list[str] | None = None
    effective: list[str] | None = None
    inheritable: list[str] | None = None
    permitted: list[str] | None = None
    ambient: list[str] | None = None


class Rlimit(OciModel):
    type: str
    hard: UInt64
    soft: UInt64


class IoPriority(OciModel):
    class_: str = Field(alias="class")
    priority: int


class Process(OciModel):
    """One process: the spec's ``process`` and the document ``exec --process`` reads."""

    terminal: bool = False
    console_size: Box | None = None
    user: User | None = None
    args: list[str] | None = None
    #: Windows: the whole command line, preferred over ``args``.
    command_line: str | None = None
    env: list[str] | None = None
    cwd: str
    capabilities: Capabilities | None = None
    rlimits: list[Rlimit] | None = None
    no_new_privileges: bool = False
    apparmor_profile: str | None = None
    oom_score_adj: int | None = None
    scheduler: dict[str, Any] | None = None
    selinux_label: str | None = None
    io_priority: IoPriority | None = None
    exec_cpu_affinity: dict[str, Any] | None = None


# -- root, mounts, hooks ------------------------------------------------------------------


class Root(OciModel):
    path: str
    readonly: bool = False


class IdMapping(OciModel):
    container_id: UInt32 = Field(alias="containerID")
    host_id: UInt32 = Field(alias="hostID")
    size: UInt32


class Mount(OciModel):
    destination: str
    type: str | None = None
    source: str | None = None
    options: list[str] | None = None
    uid_mappings: list[IdMapping] | None = None
    gid_mappings: list[IdMapping] | None = None

    @property
    def read_only(self) -> bool:
        return "ro" in (self.options or [])


class Hook(OciModel):
    path: str
    args: list[str] | None = None
    env: list[str] | None = None
    timeout: int | None = None


class Hooks(OciModel):
    """POSIX-platform lifecycle hooks: parsed, never run (HCS has no place to run them)."""

    prestart: list[Hook] | None = None
    create_runtime: list[Hook] | None = None
    create_container: list[Hook] | None = None
    start_container: list[Hook] | None = None
    poststart: list[Hook] | None = None
    poststop: list[Hook] | None = None

    def count(self) -> dict[str, int]:
        """Hooks per lifecycle point (only points that have some)."""
        out: dict[str, int] = {}
        for name, field in type(self).model_fields.items():
            hooks = getattr(self, name)
            if hooks:
                out[field.alias or name] = len(hooks)
        for name, value in (self.model_extra or {}).items():
            if isinstance(value, list) and value:
                out[name] = len(value)
        return out


# -- windows ------------------------------------------------------------------------------


class WindowsDevice(OciModel):
    id: str
    id_type: str


class WindowsMemory(OciModel):
    #: Bytes.
    limit: UInt64 | None = None


class WindowsCpuAffinity(OciModel):
    mask: UInt64
    group: UInt32


class WindowsCpu(OciModel):
    """``count``, ``shares`` and ``maximum`` are mutually exclusive (HCS takes one)."""

    count: UInt64 | None = None
    shares: UInt16 | None = None
    maximum: UInt16 | None = None
    #: An array in the spec's text and Go types, one object in its JSON schema: both accepted.
    affinity: list[WindowsCpuAffinity] | WindowsCpuAffinity | None = None


class WindowsStorage(OciModel):
    iops: UInt64 | None = None
    bps: UInt64 | None = None
    #: Bytes.
    sandbox_size: UInt64 | None = None


class WindowsResources(OciModel):
    memory: WindowsMemory | None = None
    cpu: WindowsCpu | None = None
    storage: WindowsStorage | None = None


class WindowsNetwork(OciModel):
    endpoint_list: list[str] | None = None
    allow_unqualified_dns_query: bool | None = Field(default=None, alias="allowUnqualifiedDNSQuery")
    dns_search_list: list[str] | None = Field(default=None, alias="DNSSearchList")
    network_shared_container_name: str | None = None
    network_namespace: str | None = None


class HyperV(OciModel):
    utility_vm_path: str | None = Field(default=None, alias="utilityVMPath")


class Windows(OciModel):
    """The ``windows`` section: layer folders topmost first, the scratch (writable) last."""

    layer_folders: list[str] | None = None
    devices: list[WindowsDevice] | None = None
    resources: WindowsResources | None = None
    network: WindowsNetwork | None = None
    #: gMSA credential spec: any JSON (an object, or the object as text).
    credential_spec: Any = None
    servicing: bool = False
    ignore_flushes_during_boot: bool = False
    #: Present (even empty) means Hyper-V isolation.
    hyperv: HyperV | None = None


# -- linux --------------------------------------------------------------------------------


class LinuxNamespace(OciModel):
    type: str
    path: str | None = None


class LinuxDevice(OciModel):
    path: str
    type: str
    major: Int64 | None = None
    minor: Int64 | None = None
    file_mode: UInt32 | None = None
    uid: UInt32 | None = None
    gid: UInt32 | None = None


class LinuxDeviceCgroup(OciModel):
    allow: bool
    type: str | None = None
    major: Int64 | None = None
    minor: Int64 | None = None
    access: str | None = None


class LinuxMemory(OciModel):
    limit: Int64 | None = None
    reservation: Int64 | None = None
    swap: Int64 | None = None
    kernel: Int64 | None = None
    kernel_tcp: Int64 | None = Field(default=None, alias="kernelTCP")
    swappiness: UInt64 | None = None
    disable_oom_killer: bool | None = Field(default=None, alias="disableOOMKiller")
    use_hierarchy: bool | None = None
    check_before_update: bool | None = None


class LinuxCpu(OciModel):
    shares: UInt64 | None = None
    quota: Int64 | None = None
    burst: UInt64 | None = None
    period: UInt64 | None = None
    realtime_runtime: Int64 | None = None
    realtime_period: UInt64 | None = None
    cpus: str | None = None
    mems: str | None = None
    idle: Int64 | None = None


class LinuxPids(OciModel):
    limit: Int64


class LinuxResources(OciModel):
    devices: list[LinuxDeviceCgroup] | None = None
    memory: LinuxMemory | None = None
    cpu: LinuxCpu | None = None
    pids: LinuxPids | None = None
    block_io: dict[str, Any] | None = Field(default=None, alias="blockIO")
    hugepage_limits: list[dict[str, Any]] | None = None
    network: dict[str, Any] | None = None
    rdma: dict[str, Any] | None = None
    unified: dict[str, str] | None = None


class Linux(OciModel):
    uid_mappings: list[IdMapping] | None = None
    gid_mappings: list[IdMapping] | None = None
    sysctl: dict[str, str] | None = None
    resources: LinuxResources | None = None
    cgroups_path: str | None = None
    namespaces: list[LinuxNamespace] | None = None
    devices: list[LinuxDevice] | None = None
    seccomp: dict[str, Any] | None = None
    rootfs_propagation: str | None = None
    masked_paths: list[str] | None = None
    readonly_paths: list[str] | None = None
    mount_label: str | None = None
    intel_rdt: dict[str, Any] | None = None
    personality: dict[str, Any] | None = None
    time_offsets: dict[str, Any] | None = None

    def namespace(self, kind: str) -> LinuxNamespace | None:
        return next((ns for ns in self.namespaces or [] if ns.type == kind), None)


# -- the spec -----------------------------------------------------------------------------


class Spec(OciModel):
    """A bundle's ``config.json``."""

    oci_version: str = Field(alias="ociVersion")
    process: Process | None = None
    root: Root | None = None
    hostname: str | None = None
    domainname: str | None = None
    mounts: list[Mount] | None = None
    hooks: Hooks | None = None
    annotations: dict[str, str] | None = None
    linux: Linux | None = None
    windows: Windows | None = None

    @property
    def is_linux(self) -> bool:
        """A Linux container: a ``linux`` section, or a root file system and no ``windows``
        section (hcsshim's rule: a spec with ``linux`` is LCOW)."""
        return self.linux is not None or (self.windows is None and self.root is not None)

    @classmethod
    def load(cls, path: Path) -> Spec:
        """Read and parse a ``config.json`` (BundleError naming the file on failure)."""
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise BundleError(f"{path} not found", path=str(path)) from None
        except OSError as exc:
            raise BundleError(f"{path}: {exc.strerror}", path=str(path)) from None
        return cls.parse(data, source=str(path))


# -- state --------------------------------------------------------------------------------

#: ``creating|created|running|stopped`` are the spec's; ``paused`` is runc's; ``unknown``
#: runhcs's (HCS reported a state that maps to none of them).
Status = Literal["creating", "created", "running", "stopped", "paused", "unknown"]


class State(OciModel):
    """The ``state`` document, with runc's extra fields, in runc's field order (``ociVersion,
    id, pid, status, bundle, rootfs, created, annotations, owner``; annotations left out when
    empty, as Go's ``omitempty``)."""

    oci_version: str = Field(default=SPEC_VERSION, alias="ociVersion")
    id: str
    #: runc prints 0 for a stopped container; pyrunhcs's is its shim's host pid (as runhcs).
    pid: Annotated[int, Field(ge=0)] = 0
    status: Status
    bundle: str
    rootfs: str = ""
    #: RFC 3339 with nanoseconds, UTC (`rfc3339_nano`).
    created: str = ""
    annotations: dict[str, str] | None = None
    owner: str = ""

    def runc_dict(self) -> dict[str, Any]:
        """Every field in runc's order (unlike `to_dict`, which writes only what was set)."""
        out = self.model_dump(mode="json", by_alias=True)
        if not out.get("annotations"):
            out.pop("annotations", None)
        return out
