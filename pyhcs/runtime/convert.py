"""An OCI bundle as HCS documents: `load_bundle` reads and checks ``config.json``, `plan` turns
the spec into a `Plan` (the compute systems to create, in order, and the init process),
`process_parameters` turns one OCI ``process`` into HCS ``ProcessParameters`` (``exec``).

- **Windows bundles** (``windows.layerFolders``, topmost first, the scratch last) become a
  schema 2.1 container document the way hcsshim's hcsoci builds a v2 process-isolated
  container; with ``windows.hyperv`` a Windows utility VM comes first and the container is its
  hosted system (``HostingSystemId`` + ``HostedSystem``, as hcsshim sends it into a UVM).
- **Linux bundles** (``root.path``: the already-mounted rootfs; ``linux``) become what runhcs
  makes of a Linux container: a Linux utility VM (``Chipset.LinuxKernelDirect``) hosting the
  container, whose storage is the rootfs itself (nothing copied).
- Containers annotated as members of a CRI pod (``io.kubernetes.cri.container-type`` =
  ``container`` with ``io.kubernetes.cri.sandbox-id``) create no VM: they are hosted by the
  sandbox's (``<sandbox-id>@vm``), which the sandbox's own plan creates.

Nothing here allocates: a plan only *names* what create must do (``Plan.attach``: the layer
filters to attach) and create records what it did in ``Plan.resources``. Every problem with
the bundle is a `BundleError` naming the JSON path, raised before anything exists. What HCS
cannot express is logged as a warning on the ``pyhcs.runtime`` logger (hooks, endpoint lists,
CPU affinity, ...) and listed in docs/runtime-mapping.md; the CLI writes those records to its
``--log``.
"""

from __future__ import annotations

import logging
import subprocess
import uuid
from collections.abc import Mapping
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any, Final

from pyhcs.errors import InvalidArgumentError
from pyhcs.runtime import oci
from pyhcs.runtime.ids import check_id, vm_id
from pyhcs.runtime.oci import BundleError
from pyhcs.runtime.plan import Plan, SystemPlan

__all__ = [
    "CONFIG",
    "BundleError",
    "check_spec",
    "command_line",
    "load_bundle",
    "load_process",
    "plan",
    "process_parameters",
]

log = logging.getLogger("pyhcs.runtime")

#: The spec's file in a bundle.
CONFIG: Final = "config.json"
#: SchemaVersion of the documents written (hcsshim's for v2 containers; 2.2 where
#: ``LinuxKernelDirect`` needs it).
SCHEMA_2_1: Final = {"Major": 2, "Minor": 1}
SCHEMA_2_2: Final = {"Major": 2, "Minor": 2}
PIPE_PREFIX: Final = "\\\\.\\pipe\\"

#: CRI pod annotations (the ones hcsshim and runhcs read to place a pod in one VM).
CONTAINER_TYPE: Final = "io.kubernetes.cri.container-type"
SANDBOX_ID: Final = "io.kubernetes.cri.sandbox-id"
#: hcsshim's annotations for the utility VM's size and the Linux boot files.
VM_MEMORY: Final = "io.microsoft.virtualmachine.computetopology.memory.sizeinmb"
VM_PROCESSORS: Final = "io.microsoft.virtualmachine.computetopology.processor.count"
LCOW_BOOT_FILES: Final = "io.microsoft.virtualmachine.lcow.bootfilesrootpath"
#: hcsshim's defaults for a utility VM.
DEFAULT_VM_MEMORY_MB: Final = 1024
DEFAULT_VM_PROCESSORS: Final = 2
DEFAULT_LCOW_BOOT_FILES: Final = "C:\\Program Files\\Linux Containers"
#: Mount types the guest kernel provides itself in a Linux utility VM (not host directories).
KERNEL_MOUNTS: Final = frozenset(
    {"proc", "sysfs", "tmpfs", "devpts", "mqueue", "cgroup", "cgroup2", "shm", "devtmpfs"}
)
MIB: Final = 1024 * 1024


# -- reading --------------------------------------------------------------------------------


def load_bundle(bundle: Path) -> oci.Spec:
    """Read ``bundle/config.json`` and check it (`check_spec`): BundleError if it cannot run."""
    bundle = Path(bundle)
    if not bundle.is_dir():
        raise BundleError(f"bundle {bundle} is not a directory", path=str(bundle))
    config = bundle / CONFIG
    if not config.is_file():
        raise BundleError(
            f"JSON specification file {CONFIG} not found in bundle {bundle}", path=str(config)
        )
    spec = oci.Spec.load(config)
    check_spec(spec, bundle)
    return spec


def load_process(path: Path, *, linux: bool) -> oci.Process:
    """Read one OCI ``process`` document (``exec --process``) and check it."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise BundleError(f"{path}: {exc.strerror}", path=str(path)) from None
    process = oci.Process.parse(data, source=str(path))
    _check_process(process, linux=linux, where="$", source=str(path))
    return process


# -- checks ---------------------------------------------------------------------------------


def _fail(message: str, where: str, source: str = CONFIG) -> BundleError:
    return BundleError(f"{source}: {where}: {message}", json_path=where, path=source)


def _is_absolute(path: str, *, linux: bool) -> bool:
    if linux:
        return PurePosixPath(path).is_absolute()
    # A Windows path with a root ("C:\\x", "\\x"); a POSIX absolute path is one too on the
    # emulator, where host folders stand in for Windows volumes.
    return bool(PureWindowsPath(path).root) or PurePosixPath(path).is_absolute()


def check_spec(spec: oci.Spec, bundle: Path) -> None:
    """Every check that can be made without creating anything; BundleError on the first
    problem. Warnings (logged) for what is accepted but ignored."""
    version = spec.oci_version.split(".", 1)[0]
    if version != "1":
        raise _fail(f"unsupported ociVersion {spec.oci_version!r} (1.x only)", "$.ociVersion")
    linux = spec.is_linux
    if spec.process is None:
        raise _fail("the container needs a process", "$.process")
    _check_process(spec.process, linux=linux, where="$.process")
    if spec.hooks is not None and (counts := spec.hooks.count()):
        listed = ", ".join(f"{name} ({n})" for name, n in counts.items())
        log.warning("hooks are POSIX-platform features that HCS cannot run; ignored: %s", listed)
    for index, mount in enumerate(spec.mounts or []):
        _check_mount(mount, f"$.mounts[{index}]", linux=linux)
    _check_annotations(spec.annotations or {})
    if linux:
        _check_linux(spec, bundle)
    else:
        _check_windows(spec)


def _check_process(process: oci.Process, *, linux: bool, where: str, source: str = CONFIG) -> None:
    if not _is_absolute(process.cwd, linux=linux):
        raise _fail(
            f"the working directory must be an absolute path, not {process.cwd!r}",
            f"{where}.cwd",
            source,
        )
    if linux or not process.command_line:
        if not process.args:
            what = "args" if linux else "args or commandLine"
            raise _fail(f"{what} must not be empty", f"{where}.args", source)
        if '"' in process.args[0]:
            # CommandLineToArgvW reads argv[0] up to the next quote: no way to escape one.
            raise _fail("args[0] cannot contain a double quote", f"{where}.args[0]", source)
    for index, entry in enumerate(process.env or []):
        name, sep, _value = entry.partition("=")
        if not sep or not name:
            raise _fail(
                f"invalid environment variable {entry!r} (want KEY=value)",
                f"{where}.env[{index}]",
                source,
            )
    if process.console_size is not None and not process.terminal:
        log.warning("process.consoleSize is ignored without process.terminal")


def _check_mount(mount: oci.Mount, where: str, *, linux: bool) -> None:
    if not _is_absolute(mount.destination, linux=linux):
        raise _fail(
            f"mount destination must be an absolute path, not {mount.destination!r}",
            f"{where}.destination",
        )
    if linux:
        if _is_bind(mount) and not mount.source:
            raise _fail("a bind mount needs a source", f"{where}.source")
        return
    if mount.type not in (None, "", "bind"):
        raise _fail(
            f"mount type {mount.type!r} is not supported for Windows containers"
            " (host directories and named pipes only)",
            f"{where}.type",
        )
    if not mount.source:
        raise _fail("a mount needs a source (a host directory or named pipe)", f"{where}.source")
    pipes = (_is_pipe(mount.source), _is_pipe(mount.destination))
    if pipes[0] != pipes[1]:
        raise _fail(
            "a named pipe can only be mapped to a named pipe (source and destination both"
            f" under {PIPE_PREFIX})",
            where,
        )
    if not pipes[0] and not _is_absolute(mount.source, linux=False):
        raise _fail(
            f"mount source must be an absolute host path, not {mount.source!r}", f"{where}.source"
        )


def _check_annotations(annotations: Mapping[str, str]) -> None:
    for key in (VM_MEMORY, VM_PROCESSORS):
        if key in annotations:
            _positive(annotations[key], f'$.annotations["{key}"]')
    if annotations.get(SANDBOX_ID):
        try:
            check_id(annotations[SANDBOX_ID])
        except InvalidArgumentError as exc:
            raise _fail(exc.message, f'$.annotations["{SANDBOX_ID}"]') from None


def _positive(text: str, where: str) -> int:
    try:
        value = int(text, 10)
    except ValueError:
        value = 0
    if value <= 0:
        raise _fail(f"want a positive integer, not {text!r}", where)
    return value


def _check_linux(spec: oci.Spec, bundle: Path) -> None:
    if spec.root is None or not spec.root.path:
        raise _fail("a Linux container needs root.path (its root file system)", "$.root.path")
    rootfs = _rootfs(spec, bundle)
    if not rootfs.is_dir():
        raise _fail(f"root file system {rootfs} is not a directory", "$.root.path")
    if spec.windows is not None and spec.windows.layer_folders:
        log.warning("windows.layerFolders of a Linux container are ignored: root.path is used")
    for index, mount in enumerate(spec.mounts or []):
        if _is_bind(mount) and not _mount_source(mount, bundle).exists():
            raise _fail(
                f"mount source {_mount_source(mount, bundle)} does not exist",
                f"$.mounts[{index}].source",
            )


def _check_windows(spec: oci.Spec) -> None:
    windows = spec.windows
    folders = [] if windows is None else windows.layer_folders or []
    if not folders:
        if spec.root is None:
            raise _fail(
                "neither windows.layerFolders nor root.path: nothing to build the container from",
                "$.windows.layerFolders",
            )
        raise _fail(
            "a Windows container needs windows.layerFolders (its image layers and scratch)",
            "$.windows.layerFolders",
        )
    assert windows is not None
    if len(folders) < 2:
        raise _fail(
            "windows.layerFolders needs at least one image layer and the scratch layer (last)",
            "$.windows.layerFolders",
        )
    seen: dict[str, int] = {}
    for index, folder in enumerate(folders):
        where = f"$.windows.layerFolders[{index}]"
        if not folder or not _is_absolute(folder, linux=False):
            raise _fail(f"a layer folder must be an absolute path, not {folder!r}", where)
        key = folder.rstrip("\\/").lower()
        if key in seen:
            raise _fail(f"layer folder {folder} is listed twice (also [{seen[key]}])", where)
        seen[key] = index
    if spec.root is not None:
        if windows.hyperv is not None:
            raise _fail("root must not be set for a Hyper-V isolated container", "$.root")
        if spec.root.readonly:
            raise _fail("a Windows container's root cannot be read-only", "$.root.readonly")
    if windows.servicing:
        raise _fail("servicing mode is not supported by HCS schema 2", "$.windows.servicing")
    for index, device in enumerate(windows.devices or []):
        where = f"$.windows.devices[{index}]"
        if device.id_type != "class":
            raise _fail(f"device idType {device.id_type!r} is not supported (class)", where)
        try:
            uuid.UUID(device.id)
        except ValueError:
            raise _fail(f"device id {device.id!r} is not an interface class GUID", where) from None
    _check_windows_resources(windows.resources)
    network = windows.network
    for index, endpoint in enumerate([] if network is None else network.endpoint_list or []):
        try:
            uuid.UUID(endpoint)
        except ValueError:
            raise _fail(
                f"endpoint {endpoint!r} is not an HNS endpoint id (a GUID)",
                f"$.windows.network.endpointList[{index}]",
            ) from None
    if windows.ignore_flushes_during_boot:
        log.warning("windows.ignoreFlushesDuringBoot has no HCS schema 2 setting; ignored")


def _check_windows_resources(resources: oci.WindowsResources | None) -> None:
    if resources is None:
        return
    cpu = resources.cpu
    if cpu is not None:
        given = [
            name
            for name, value in (
                ("count", cpu.count),
                ("shares", cpu.shares),
                ("maximum", cpu.maximum),
            )
            if value is not None
        ]
        if len(given) > 1:
            raise _fail(
                f"cpu {', '.join(given)} are mutually exclusive: give one",
                "$.windows.resources.cpu",
            )
        if cpu.count is not None and cpu.count < 1:
            raise _fail("cpu count must be at least 1", "$.windows.resources.cpu.count")
        if cpu.shares is not None and cpu.shares > 10_000:
            raise _fail("cpu shares must be 0..10000", "$.windows.resources.cpu.shares")
        if cpu.maximum is not None and not 1 <= cpu.maximum <= 10_000:
            raise _fail(
                "cpu maximum must be 1..10000 (cycles per 10000)",
                "$.windows.resources.cpu.maximum",
            )
        if cpu.affinity:
            log.warning("windows.resources.cpu.affinity has no container setting; ignored")
    memory = resources.memory
    if memory is not None and memory.limit is not None and memory.limit < MIB:
        raise _fail(
            f"memory limit {memory.limit} is below 1 MiB (HCS counts whole MiB)",
            "$.windows.resources.memory.limit",
        )
    storage = resources.storage
    if storage is not None and storage.sandbox_size is not None:
        log.warning("windows.resources.storage.sandboxSize is ignored: folder layers grow freely")


# -- the plan -------------------------------------------------------------------------------


def plan(spec: oci.Spec, bundle: Path, container_id: str, *, owner: str = "pyrunhcs") -> Plan:
    """The systems to create for ``spec`` (VM first when there is one), the init process and
    the layers to attach; BundleError if the spec cannot run. Allocates nothing."""
    bundle = Path(bundle).absolute()
    check_id(container_id)
    check_spec(spec, bundle)
    assert spec.process is not None
    linux = spec.is_linux
    annotations = dict(spec.annotations or {})
    host, own_vm = _hosting(annotations, container_id, linux=linux, hyperv=_hyperv(spec))
    systems: list[SystemPlan] = []
    attach: list[dict[str, Any]] = []
    if linux:
        body = _linux_container(spec, bundle)
        if own_vm:
            systems.append(SystemPlan(host or "", _linux_vm(annotations, owner)))
    else:
        body, attach = _windows_container(spec)
        if own_vm:
            systems.append(SystemPlan(host or "", _windows_vm(spec, annotations, owner)))
    systems.append(SystemPlan(container_id, _system_document(body, owner, host)))
    return Plan(
        container=container_id,
        systems=systems,
        init=process_parameters(spec.process, linux=linux),
        terminal=spec.process.terminal,
        annotations=annotations,
        attach=attach,
    )


def _hyperv(spec: oci.Spec) -> bool:
    return spec.windows is not None and spec.windows.hyperv is not None


def _hosting(
    annotations: Mapping[str, str], container_id: str, *, linux: bool, hyperv: bool
) -> tuple[str | None, bool]:
    """The VM hosting the container (None: process isolation) and whether this plan creates
    it (a pod member uses its sandbox's)."""
    if not (linux or hyperv):
        return None, False
    sandbox = annotations.get(SANDBOX_ID)
    if annotations.get(CONTAINER_TYPE) == "container" and sandbox and sandbox != container_id:
        return vm_id(sandbox), False
    return vm_id(container_id), True


def _system_document(body: dict[str, Any], owner: str, host: str | None) -> dict[str, Any]:
    document: dict[str, Any] = {
        "SchemaVersion": SCHEMA_2_1,
        "Owner": owner,
        "ShouldTerminateOnLastHandleClosed": True,
    }
    if host is None:
        document["Container"] = body
    else:
        document["HostingSystemId"] = host
        document["HostedSystem"] = {"SchemaVersion": SCHEMA_2_1, "Container": body}
    return document


def _vm_topology(annotations: Mapping[str, str]) -> dict[str, Any]:
    memory = annotations.get(VM_MEMORY)
    processors = annotations.get(VM_PROCESSORS)
    return {
        "Memory": {
            "SizeInMB": DEFAULT_VM_MEMORY_MB
            if memory is None
            else _positive(memory, f'$.annotations["{VM_MEMORY}"]'),
            "AllowOvercommit": True,
        },
        "Processor": {
            "Count": DEFAULT_VM_PROCESSORS
            if processors is None
            else _positive(processors, f'$.annotations["{VM_PROCESSORS}"]')
        },
    }


def _join(base: str, *parts: str) -> str:
    """Join path parts with the separator ``base`` uses (Windows paths stay Windows paths)."""
    sep = "\\" if "\\" in base and "/" not in base else "/"
    return sep.join([base.rstrip("\\/"), *parts])


def _vm_document(owner: str, version: dict[str, int], machine: dict[str, Any]) -> dict[str, Any]:
    return {
        "SchemaVersion": version,
        "Owner": owner,
        "ShouldTerminateOnLastHandleClosed": True,
        "VirtualMachine": {"StopOnReset": True, **machine},
    }


def _linux_vm(annotations: Mapping[str, str], owner: str) -> dict[str, Any]:
    """A Linux utility VM booting its kernel directly (LCOW's kernel and initrd)."""
    boot = annotations.get(LCOW_BOOT_FILES) or DEFAULT_LCOW_BOOT_FILES
    topology = _vm_topology(annotations)
    count = topology["Processor"]["Count"]
    machine = {
        "Chipset": {
            "LinuxKernelDirect": {
                "KernelFilePath": _join(boot, "vmlinux"),
                "InitRdPath": _join(boot, "initrd.img"),
                "KernelCmdLine": f"panic=-1 quiet pci=off nr_cpus={count}",
            }
        },
        "ComputeTopology": topology,
        "Devices": {"Scsi": {"0": {"Attachments": {}}}},
    }
    return _vm_document(owner, SCHEMA_2_2, machine)


def _windows_vm(spec: oci.Spec, annotations: Mapping[str, str], owner: str) -> dict[str, Any]:
    """A Windows utility VM booting from its image's ``Files`` over a VSMB share."""
    image = _utility_vm_path(spec)
    machine = {
        "Chipset": {
            "Uefi": {
                "BootThis": {
                    "DevicePath": "\\EFI\\Microsoft\\Boot\\bootmgfw.efi",
                    "DeviceType": "VmbFs",
                }
            }
        },
        "ComputeTopology": _vm_topology(annotations),
        "Devices": {
            "Scsi": {"0": {"Attachments": {}}},
            "VirtualSmb": {
                "Shares": [
                    {
                        "Name": "os",
                        "Path": _join(image, "Files"),
                        "Options": {
                            "ReadOnly": True,
                            "ShareRead": True,
                            "CacheIo": True,
                            "TakeBackupPrivilege": True,
                            "PseudoOplocks": True,
                        },
                    }
                ]
            },
        },
    }
    return _vm_document(owner, SCHEMA_2_1, machine)


def _utility_vm_path(spec: oci.Spec) -> str:
    """``hyperv.utilityVMPath``, else the ``UtilityVM`` folder of the lowest image layer that
    has one (hcsshim's search, base layer first)."""
    assert spec.windows is not None
    assert spec.windows.hyperv is not None
    given = spec.windows.hyperv.utility_vm_path
    if given:
        return given
    for folder in reversed((spec.windows.layer_folders or [])[:-1]):
        candidate = _join(folder, "UtilityVM")
        if Path(candidate).is_dir():
            return candidate
    raise _fail(
        "no image layer has a UtilityVM folder: give windows.hyperv.utilityVMPath",
        "$.windows.hyperv.utilityVMPath",
    )


def _windows_container(spec: oci.Spec) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The ``Container`` body of a Windows bundle and the layer filter create must attach."""
    from pyhcs.layer import Layer, LayerChain  # noqa: PLC0415 (cffi: only when planning)

    windows = spec.windows
    assert windows is not None
    folders = windows.layer_folders
    assert folders
    *images, scratch = folders
    parents = LayerChain(Layer(folder) for folder in images)
    layers = [layer.to_dict() for layer in parents]
    storage: dict[str, Any] = {"Layers": layers}
    attach: list[dict[str, Any]] = []
    if spec.root is not None and spec.root.path:
        storage["Path"] = spec.root.path  # a volume the caller mounted already
    else:
        storage["Path"] = scratch
        attach.append({"kind": "layer", "path": scratch, "parents": layers})
    body: dict[str, Any] = {"Storage": storage}
    if spec.hostname:
        body["GuestOs"] = {"HostName": spec.hostname}
    directories, pipes = [], []
    for mount in spec.mounts or []:
        assert mount.source is not None
        if _is_pipe(mount.destination):
            pipes.append(
                {
                    "ContainerPipeName": mount.destination[len(PIPE_PREFIX) :],
                    "HostPath": mount.source,
                }
            )
        else:
            directories.append(_mapped_directory(mount.source, mount))
    if directories:
        body["MappedDirectories"] = directories
    if pipes:
        body["MappedPipes"] = pipes
    resources = windows.resources
    if resources is not None:
        _windows_resources(body, storage, resources)
    network = windows.network
    if network is not None:
        networking = {
            "AllowUnqualifiedDnsQuery": network.allow_unqualified_dns_query,
            "DnsSearchList": ",".join(network.dns_search_list) if network.dns_search_list else None,
            "NetworkSharedContainerName": network.network_shared_container_name or None,
            "Namespace": network.network_namespace or None,
            "NetworkAdapters": network.endpoint_list or None,
        }
        networking = {k: v for k, v in networking.items() if v is not None}
        if networking:
            body["Networking"] = networking
    if windows.devices:
        body["AssignedDevices"] = [
            {"Type": "ClassGuid", "InterfaceClassGuid": device.id} for device in windows.devices
        ]
    if windows.credential_spec is not None:
        credential = windows.credential_spec
        text = credential if isinstance(credential, str) else oci.go_json(credential)
        body["ContainerCredentialGuard"] = {"CredentialSpec": text}
    return body, attach


def _windows_resources(
    body: dict[str, Any], storage: dict[str, Any], resources: oci.WindowsResources
) -> None:
    if resources.memory is not None and resources.memory.limit is not None:
        body["Memory"] = {"SizeInMB": resources.memory.limit // MIB}
    cpu = resources.cpu
    if cpu is not None:
        for value, name in ((cpu.count, "Count"), (cpu.maximum, "Maximum"), (cpu.shares, "Weight")):
            if value is not None:
                body["Processor"] = {name: value}
    qos = resources.storage
    if qos is not None:
        limits = {"IopsMaximum": qos.iops, "BandwidthMaximum": qos.bps}
        limits = {k: v for k, v in limits.items() if v is not None}
        if limits:
            storage["QoS"] = limits


def _mapped_directory(host_path: str, mount: oci.Mount) -> dict[str, Any]:
    entry: dict[str, Any] = {"HostPath": host_path, "ContainerPath": mount.destination}
    if mount.read_only:
        entry["ReadOnly"] = True
    return entry


def _rootfs(spec: oci.Spec, bundle: Path) -> Path:
    assert spec.root is not None
    root = Path(spec.root.path)
    return root if root.is_absolute() else bundle / root


def _is_bind(mount: oci.Mount) -> bool:
    options = mount.options or []
    return mount.type == "bind" or "bind" in options or "rbind" in options


def _is_pipe(path: str | None) -> bool:
    return path is not None and path.lower().startswith(PIPE_PREFIX)


def _mount_source(mount: oci.Mount, bundle: Path) -> Path:
    """A bind mount's source; a relative one is relative to the bundle (as runc reads it)."""
    assert mount.source is not None
    source = Path(mount.source)
    return source if source.is_absolute() else bundle / source


def _linux_container(spec: oci.Spec, bundle: Path) -> dict[str, Any]:
    """The ``Container`` body of a Linux bundle: the rootfs as its storage, directory binds
    as mapped directories. Kernel file systems (proc, sysfs, tmpfs, ...) are the guest's own
    and file binds have no HCS form: both are left to the guest (logged)."""
    body: dict[str, Any] = {"Storage": {"Path": str(_rootfs(spec, bundle))}}
    if spec.hostname:
        body["GuestOs"] = {"HostName": spec.hostname}
    directories = []
    skipped = []
    for mount in spec.mounts or []:
        if not _is_bind(mount):
            if (mount.type or "") not in KERNEL_MOUNTS:
                skipped.append(f"{mount.destination} ({mount.type})")
            continue
        source = _mount_source(mount, bundle)
        if source.is_dir():
            directories.append(_mapped_directory(str(source), mount))
        else:
            skipped.append(f"{mount.destination} (a file bind)")
    if skipped:
        log.warning("mounts HCS cannot map, left out: %s", ", ".join(skipped))
    if directories:
        body["MappedDirectories"] = directories
    resources = spec.linux.resources if spec.linux is not None else None
    if resources is not None and resources.memory is not None:
        limit = resources.memory.limit
        if limit is not None and limit > 0:
            body["Memory"] = {"SizeInMB": max(1, limit // MIB)}
    return body


# -- processes ------------------------------------------------------------------------------


def command_line(args: list[str]) -> str:
    """``args`` as one Windows command line that CommandLineToArgvW splits back into ``args``:
    argv[0] quoted without escapes (it has none: ``"`` cannot appear in it), the rest with
    the C runtime's backslash rules (`subprocess.list2cmdline`)."""
    first = args[0]
    if '"' in first:
        raise InvalidArgumentError(f"argv[0] {first!r} cannot contain a double quote")
    head = f'"{first}"' if not first or any(c in first for c in " \t") else first
    rest = subprocess.list2cmdline(args[1:])
    return f"{head} {rest}" if rest else head


def process_parameters(process: oci.Process, *, linux: bool) -> dict[str, Any]:
    """HCS ``ProcessParameters`` for one OCI ``process`` (the init process or an exec).

    Windows: ``commandLine``, else ``args`` joined (`command_line`); environment entries with
    empty values dropped (Windows has no empty variables). Linux: ``CommandArgs`` as LCOW
    sends them, plus the same ``CommandLine`` (what the emulator runs); empty values kept.
    A terminal asks for a console (``EmulateConsole``, ``ConsoleSize`` [height, width]) and
    no stderr pipe (the console merges it)."""
    params: dict[str, Any] = {}
    if not linux and process.command_line:
        params["CommandLine"] = process.command_line
    else:
        args = list(process.args or [])
        params["CommandLine"] = command_line(args)
        if linux:
            params["CommandArgs"] = args
    params["WorkingDirectory"] = process.cwd
    environment: dict[str, str] = {}
    for entry in process.env or []:
        name, _, value = entry.partition("=")
        if value or linux:
            environment[name] = value
        else:
            environment.pop(name, None)
    if process.env is not None:
        params["Environment"] = environment
    user = process.user
    if user is not None:
        if user.username:
            params["User"] = user.username
        elif linux:
            params["User"] = f"{user.uid}:{user.gid}"
    params["EmulateConsole"] = process.terminal
    if process.terminal and process.console_size is not None:
        params["ConsoleSize"] = [process.console_size.height, process.console_size.width]
    params["CreateStdInPipe"] = True
    params["CreateStdOutPipe"] = True
    params["CreateStdErrPipe"] = not process.terminal
    return params
