"""Bundles into plans: every invalid bundle is refused with its JSON path, the documents are
what hcsshim would build, and (on the emulator, through the public API only) each plan's
systems are accepted by ``ComputeSystem.create``, start, and run their init process: a
Windows bundle on real layer folders, a Hyper-V one, a Linux bundle on a plain rootfs, a pod."""

from __future__ import annotations

import copy
import json
import logging
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyhcs import ComputeSystem, schema
from pyhcs.errors import InvalidArgumentError
from pyhcs.layer import Layer, LayerChain
from pyhcs.runtime import convert, oci
from pyhcs.runtime.convert import BundleError
from pyhcs.runtime.plan import Plan
from pyhcs.testing import Emulator, Layers

DATA = Path(__file__).resolve().parent.parent / "data" / "oci"
WAIT = 30.0


def write_bundle(directory: Path, spec: dict[str, Any]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(spec))
    return directory


def linux_spec(**extra: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "ociVersion": "1.0.2-dev",
        "process": {"args": ["./run.sh"], "cwd": "/", "env": ["PATH=/usr/bin:/bin"]},
        "root": {"path": "rootfs"},
        "linux": {"namespaces": [{"type": "pid"}]},
    }
    spec.update(extra)
    return spec


def linux_bundle(directory: Path, spec: dict[str, Any] | None = None) -> Path:
    (directory / "rootfs").mkdir(parents=True, exist_ok=True)
    return write_bundle(directory, linux_spec() if spec is None else spec)


def windows_spec(*folders: str, **extra: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "ociVersion": "1.1.0",
        "process": {"args": ["cmd", "/c", "echo hi"], "cwd": "C:\\"},
        "windows": {"layerFolders": list(folders) or ["C:\\l\\base", "C:\\l\\scratch"]},
    }
    spec.update(extra)
    return spec


def validate(plan: Plan) -> None:
    """Each document passes HCS's strict checks for the schema version it declares."""
    for system in plan.systems:
        minor = system.document["SchemaVersion"]["Minor"]
        release = schema.release_for_schema_version(2, minor)
        schema.ComputeSystem.parse(system.document, strict=True, release=release)
    schema.ProcessParameters.parse(plan.init, strict=True)


# -- invalid bundles ------------------------------------------------------------------------


def test_a_missing_bundle_or_config_is_named(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="is not a directory"):
        convert.load_bundle(tmp_path / "nope")
    with pytest.raises(BundleError) as caught:
        convert.load_bundle(tmp_path)
    assert caught.value.message == (
        f"JSON specification file config.json not found in bundle {tmp_path}"
    )
    assert caught.value.path == str(tmp_path / "config.json")


def test_bad_json_names_its_position(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"ociVersion": "1.0.0",\n "process": {,}}')
    with pytest.raises(BundleError) as caught:
        convert.load_bundle(tmp_path)
    assert "invalid JSON at line 2 column 14" in caught.value.message
    assert caught.value.json_path == "$"


def _set(document: dict[str, Any], path: str, value: Any) -> None:
    """Set (or with value None, delete) ``a.b[0].c`` in ``document``."""
    keys: list[str | int] = []
    for part in path.split("."):
        name, _, index = part.partition("[")
        keys.append(name)
        if index:
            keys.append(int(index.rstrip("]")))
    target: Any = document
    for key in keys[:-1]:
        target = target[key]
    if value is None:
        del target[keys[-1]]
    else:
        target[keys[-1]] = value


INVALID_LINUX = [
    ("process.cwd", "tmp", "$.process.cwd", "absolute path, not 'tmp'"),
    ("process.args", [], "$.process.args", "args must not be empty"),
    ("process.args", ['a"b'], "$.process.args[0]", "double quote"),
    ("process.env", ["PATH=/bin", "NOEQUALS"], "$.process.env[1]", "want KEY=value"),
    ("process.env", ["=value"], "$.process.env[0]", "want KEY=value"),
    ("process", None, "$.process", "needs a process"),
    ("ociVersion", "2.0.0", "$.ociVersion", "1.x only"),
    ("root.path", "missing-rootfs", "$.root.path", "is not a directory"),
    ("root.path", "", "$.root.path", "needs root.path"),
    (
        "mounts",
        [{"destination": "/data", "type": "bind", "source": "/nonexistent/src"}],
        "$.mounts[0].source",
        "does not exist",
    ),
    ("mounts", [{"destination": "data", "type": "tmpfs"}], "$.mounts[0].destination", "absolute"),
    ("mounts", [{"destination": "/d", "type": "bind"}], "$.mounts[0].source", "needs a source"),
    (
        "annotations",
        {convert.VM_MEMORY: "lots"},
        f'$.annotations["{convert.VM_MEMORY}"]',
        "positive integer",
    ),
    (
        "annotations",
        {convert.SANDBOX_ID: "../escape"},
        f'$.annotations["{convert.SANDBOX_ID}"]',
        "invalid id format",
    ),
]


@pytest.mark.parametrize(("field", "value", "path", "text"), INVALID_LINUX)
def test_invalid_linux_bundles(
    tmp_path: Path, field: str, value: Any, path: str, text: str
) -> None:
    spec = linux_spec()
    _set(spec, field, value)
    bundle = linux_bundle(tmp_path, spec)
    with pytest.raises(BundleError) as caught:
        convert.load_bundle(bundle)
    assert caught.value.json_path == path
    assert text in caught.value.message
    assert caught.value.message.startswith(f"config.json: {path}: ")
    # The same checks guard plan() for a spec that did not come from load_bundle.
    with pytest.raises(BundleError):
        convert.plan(oci.Spec.parse(spec), bundle, "c1")


INVALID_WINDOWS = [
    ("process.cwd", "Windows", "$.process.cwd", "absolute path"),
    ("process.args", None, "$.process.args", "args or commandLine must not be empty"),
    ("windows.layerFolders", [], "$.windows.layerFolders", "neither windows.layerFolders nor"),
    ("windows", {"layerFolders": None}, "$.windows.layerFolders", "neither windows.layerFolders"),
    ("windows.layerFolders", ["C:\\only"], "$.windows.layerFolders", "at least one image"),
    ("windows.layerFolders", ["rel", "C:\\s"], "$.windows.layerFolders[0]", "absolute"),
    (
        "windows.layerFolders",
        ["C:\\a", "C:\\B", "c:\\b\\"],
        "$.windows.layerFolders[2]",
        "listed twice (also [1])",
    ),
    ("windows.resources", {"cpu": {"count": 2, "shares": 5}}, "$.windows.resources.cpu", "count"),
    ("windows.resources", {"cpu": {"count": 0}}, "$.windows.resources.cpu.count", "at least 1"),
    ("windows.resources", {"cpu": {"shares": 10001}}, "$.windows.resources.cpu.shares", "0..10000"),
    ("windows.resources", {"cpu": {"maximum": 0}}, "$.windows.resources.cpu.maximum", "1..10000"),
    (
        "windows.resources",
        {"memory": {"limit": 1000}},
        "$.windows.resources.memory.limit",
        "below 1 MiB",
    ),
    ("windows.servicing", True, "$.windows.servicing", "not supported"),
    (
        "windows.devices",
        [{"id": "24e552d7-6523-47f7-a647-d3465bf1f5ca", "idType": "vpci-instance-id"}],
        "$.windows.devices[0]",
        "idType 'vpci-instance-id'",
    ),
    ("windows.devices", [{"id": "gpu0", "idType": "class"}], "$.windows.devices[0]", "GUID"),
    (
        "windows.network",
        {"endpointList": ["not-a-guid"]},
        "$.windows.network.endpointList[0]",
        "GUID",
    ),
    ("mounts", [{"destination": "C:\\d", "type": "tmpfs", "source": "x"}], "$.mounts[0].type", ""),
    ("mounts", [{"destination": "C:\\d"}], "$.mounts[0].source", "needs a source"),
    ("mounts", [{"destination": "C:\\d", "source": "rel"}], "$.mounts[0].source", "absolute"),
    (
        "mounts",
        [{"destination": "C:\\d", "source": "\\\\.\\pipe\\p"}],
        "$.mounts[0]",
        "named pipe can only be mapped to a named pipe",
    ),
    ("root", {"path": "C:\\v", "readonly": True}, "$.root.readonly", "read-only"),
]


@pytest.mark.parametrize(("field", "value", "path", "text"), INVALID_WINDOWS)
def test_invalid_windows_bundles(
    tmp_path: Path, field: str, value: Any, path: str, text: str
) -> None:
    spec = windows_spec()
    _set(spec, field, value)
    write_bundle(tmp_path, spec)
    with pytest.raises(BundleError) as caught:
        convert.load_bundle(tmp_path)
    assert caught.value.json_path == path
    assert text in caught.value.message


def test_neither_layer_folders_nor_root(tmp_path: Path) -> None:
    write_bundle(tmp_path, {"ociVersion": "1.0.0", "process": {"args": ["x"], "cwd": "/"}})
    with pytest.raises(BundleError, match=r"neither windows\.layerFolders nor root\.path"):
        convert.load_bundle(tmp_path)
    write_bundle(tmp_path, windows_spec(root={"path": "C:\\v"}, windows={}))
    with pytest.raises(BundleError, match=r"needs windows\.layerFolders"):
        convert.load_bundle(tmp_path)


def test_hyperv_refuses_a_root_and_needs_a_utility_vm(tmp_path: Path) -> None:
    spec = windows_spec(hyperv={})
    spec["windows"]["hyperv"] = {}
    spec["root"] = {"path": "C:\\v"}
    write_bundle(tmp_path, spec)
    with pytest.raises(BundleError, match="root must not be set for a Hyper-V") as caught:
        convert.load_bundle(tmp_path)
    assert caught.value.json_path == "$.root"
    del spec["root"]
    with pytest.raises(BundleError, match="no image layer has a UtilityVM folder") as caught:
        convert.plan(oci.Spec.parse(spec), tmp_path, "hv")
    assert caught.value.json_path == "$.windows.hyperv.utilityVMPath"


@pytest.mark.parametrize("bad", ["", ".", "..", "a/b", "a b", "x\0", "é", "a" * 1025])
def test_invalid_container_ids(tmp_path: Path, bad: str) -> None:
    bundle = linux_bundle(tmp_path)
    spec = convert.load_bundle(bundle)
    with pytest.raises(InvalidArgumentError):
        convert.plan(spec, bundle, bad)


@settings(max_examples=60, deadline=None)
@given(
    cpu=st.fixed_dictionaries(
        {},
        optional={
            "count": st.integers(1, 64),
            "shares": st.integers(0, 10_000),
            "maximum": st.integers(1, 10_000),
        },
    )
)
def test_cpu_fields_are_mutually_exclusive(cpu: dict[str, int]) -> None:
    spec = oci.Spec.parse(windows_spec())
    assert spec.windows is not None
    spec.windows.resources = oci.WindowsResources.parse({"cpu": cpu})
    if len(cpu) > 1:
        with pytest.raises(BundleError, match="mutually exclusive") as caught:
            convert.plan(spec, Path("/b"), "c")
        assert caught.value.json_path == "$.windows.resources.cpu"
        return
    body = convert.plan(spec, Path("/b"), "c").systems[-1].document["Container"]
    names = {"count": "Count", "shares": "Weight", "maximum": "Maximum"}
    assert body.get("Processor") == ({names[k]: v for k, v in cpu.items()} or None)


# -- documents ------------------------------------------------------------------------------


def test_the_full_windows_spec_as_hcsshim_builds_it(caplog: pytest.LogCaptureFixture) -> None:
    spec = oci.Spec.parse(json.loads((DATA / "windows-full.json").read_text()))
    with caplog.at_level(logging.WARNING, logger="pyhcs.runtime"):
        plan = convert.plan(spec, Path("/bundle"), "win-1", owner="tests")
    validate(plan)
    assert [s.system_id for s in plan.systems] == ["win-1@vm", "win-1"]
    vm, container = (s.document for s in plan.systems)
    assert vm["VirtualMachine"]["Devices"]["VirtualSmb"]["Shares"][0]["Path"] == (
        "C:\\layers\\base\\UtilityVM\\Files"
    )
    assert vm["VirtualMachine"]["ComputeTopology"]["Memory"]["SizeInMB"] == 1024
    assert container["HostingSystemId"] == "win-1@vm"
    assert container["Owner"] == "tests"
    assert container["HostedSystem"]["SchemaVersion"] == {"Major": 2, "Minor": 1}
    parents = [Layer("C:\\layers\\app").to_dict(), Layer("C:\\layers\\base").to_dict()]
    credential = oci.go_json(
        json.loads((DATA / "windows-full.json").read_text())["windows"]["credentialSpec"]
    )
    assert container["HostedSystem"]["Container"] == {
        "Storage": {
            "Layers": parents,
            "Path": "C:\\layers\\scratch",
            "QoS": {"IopsMaximum": 500, "BandwidthMaximum": 10_000_000},
        },
        "GuestOs": {"HostName": "win-box"},
        "MappedDirectories": [
            {"HostPath": "C:\\host\\data", "ContainerPath": "C:\\data", "ReadOnly": True},
            {"HostPath": "C:\\host\\logs", "ContainerPath": "C:\\logs"},
        ],
        "MappedPipes": [{"ContainerPipeName": "engine", "HostPath": "\\\\.\\pipe\\docker_engine"}],
        "Memory": {"SizeInMB": 2048},
        "Processor": {"Maximum": 5000},
        "Networking": {
            "AllowUnqualifiedDnsQuery": True,
            "DnsSearchList": "corp.example,example",
            "NetworkSharedContainerName": "sandbox-1",
            "Namespace": "d0d8a9f1-2b3c-4d5e-8f90-112233445566",
            "NetworkAdapters": ["a5e1b7d8-3b0c-4f7e-9a43-1c2b3d4e5f60"],
        },
        "AssignedDevices": [
            {"Type": "ClassGuid", "InterfaceClassGuid": "24e552d7-6523-47f7-a647-d3465bf1f5ca"}
        ],
        "ContainerCredentialGuard": {"CredentialSpec": credential},
    }
    assert plan.attach == [{"kind": "layer", "path": "C:\\layers\\scratch", "parents": parents}]
    assert plan.resources.records == []  # a conversion allocates nothing
    assert plan.init == {
        "CommandLine": 'cmd /S /C "echo hi"',
        "WorkingDirectory": "C:\\",
        "Environment": {"PATH": "C:\\Windows\\System32"},  # empty values dropped
        "User": "ContainerUser",
        "EmulateConsole": True,
        "ConsoleSize": [25, 80],
        "CreateStdInPipe": True,
        "CreateStdOutPipe": True,
        "CreateStdErrPipe": False,
    }
    assert plan.terminal
    assert plan.annotations == {"org.opencontainers.image.os": "windows"}
    warned = " ".join(r.getMessage() for r in caplog.records)
    assert "ignoreFlushesDuringBoot" in warned
    assert "sandboxSize" in warned


def test_a_process_isolated_windows_container() -> None:
    spec = oci.Spec.parse(windows_spec(hostname="h"))
    plan = convert.plan(spec, Path("/b"), "argon")
    validate(plan)
    (only,) = plan.systems
    assert only.system_id == "argon"
    assert only.document == {
        "SchemaVersion": {"Major": 2, "Minor": 1},
        "Owner": "pyrunhcs",
        "ShouldTerminateOnLastHandleClosed": True,
        "Container": {
            "Storage": {"Layers": [Layer("C:\\l\\base").to_dict()], "Path": "C:\\l\\scratch"},
            "GuestOs": {"HostName": "h"},
        },
    }
    assert plan.init["CommandLine"] == 'cmd /c "echo hi"'


def test_a_mounted_root_volume_is_the_storage_and_nothing_is_attached() -> None:
    volume = "\\\\?\\Volume{f2d4a7c1-0000-0000-0000-100000000000}\\"
    plan = convert.plan(oci.Spec.parse(windows_spec(root={"path": volume})), Path("/b"), "v")
    assert plan.systems[0].document["Container"]["Storage"]["Path"] == volume
    assert plan.attach == []


def test_the_same_folder_gets_the_same_layer_id_in_every_plan() -> None:
    a = convert.plan(oci.Spec.parse(windows_spec("C:\\x", "C:\\s1")), Path("/b"), "a")
    b = convert.plan(oci.Spec.parse(windows_spec("C:\\x", "C:\\s2")), Path("/b"), "b")
    layers_a = a.systems[0].document["Container"]["Storage"]["Layers"]
    layers_b = b.systems[0].document["Container"]["Storage"]["Layers"]
    assert layers_a == layers_b == [Layer("C:\\x").to_dict()]


def test_hooks_are_accepted_and_ignored_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spec = linux_spec(hooks={"prestart": [{"path": "/bin/true"}], "poststop": [{"path": "/x"}]})
    bundle = linux_bundle(tmp_path, spec)
    with caplog.at_level(logging.WARNING, logger="pyhcs.runtime"):
        plan = convert.plan(convert.load_bundle(bundle), bundle, "hooked")
    assert plan.systems[-1].system_id == "hooked"
    assert any(
        "hooks" in r.getMessage() and "prestart (1), poststop (1)" in r.getMessage()
        for r in caplog.records
    )


@pytest.mark.parametrize("name", ["containerd-ctr.json", "containerd-cri-sandbox.json"])
def test_containerds_linux_specs_become_a_utility_vm_and_a_hosted_container(
    tmp_path: Path, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    document = json.loads((DATA / name).read_text())
    for mount in document["mounts"]:  # the CRI sandbox's bind sources, made real here
        if mount["type"] == "bind":
            source = tmp_path / "host" / mount["destination"].strip("/").replace("/", "-")
            if mount["destination"] == "/dev/shm":
                source.mkdir(parents=True)
            else:
                source.parent.mkdir(parents=True, exist_ok=True)
                source.write_text("nameserver 192.0.2.1\n")
            mount["source"] = str(source)
    bundle = linux_bundle(tmp_path / "bundle", document)
    with caplog.at_level(logging.WARNING, logger="pyhcs.runtime"):
        plan = convert.plan(convert.load_bundle(bundle), bundle, "ctr-1")
    validate(plan)
    vm, container = plan.systems
    assert vm.system_id == "ctr-1@vm"
    assert vm.document["SchemaVersion"] == {"Major": 2, "Minor": 2}
    kernel = vm.document["VirtualMachine"]["Chipset"]["LinuxKernelDirect"]
    assert kernel["KernelFilePath"] == "C:\\Program Files\\Linux Containers\\vmlinux"
    hosted = container.document["HostedSystem"]["Container"]
    assert container.document["HostingSystemId"] == "ctr-1@vm"
    assert hosted["Storage"] == {"Path": str(bundle / "rootfs")}
    assert plan.init["CommandArgs"] == document["process"]["args"]
    assert plan.init["User"] == "0:0"
    if name == "containerd-cri-sandbox.json":
        assert hosted["MappedDirectories"] == [
            {
                "HostPath": str(tmp_path / "host" / "dev-shm"),
                "ContainerPath": "/dev/shm",
                "ReadOnly": True,
            }
        ]
        assert any("/etc/resolv.conf (a file bind)" in r.getMessage() for r in caplog.records)
    else:
        assert "MappedDirectories" not in hosted
        assert not caplog.records  # proc, sysfs, tmpfs, ...: the guest's own, nothing to say


def test_pod_members_share_the_sandboxs_vm(tmp_path: Path) -> None:
    sandbox = linux_spec(
        annotations={convert.CONTAINER_TYPE: "sandbox", convert.SANDBOX_ID: "pod1"}
    )
    member = linux_spec(
        annotations={convert.CONTAINER_TYPE: "container", convert.SANDBOX_ID: "pod1"}
    )
    first = convert.plan(oci.Spec.parse(sandbox), linux_bundle(tmp_path / "s"), "pod1")
    second = convert.plan(oci.Spec.parse(member), linux_bundle(tmp_path / "m"), "app")
    assert [s.system_id for s in first.systems] == ["pod1@vm", "pod1"]
    assert [s.system_id for s in second.systems] == ["app"]
    assert second.systems[0].document["HostingSystemId"] == "pod1@vm"
    # A Windows process-isolated pod has no VM to share.
    windows = windows_spec(annotations=member["annotations"])
    assert (
        "HostingSystemId"
        not in convert.plan(oci.Spec.parse(windows), tmp_path, "w").systems[0].document
    )


def test_vm_size_and_boot_files_from_annotations(tmp_path: Path) -> None:
    annotations = {
        convert.VM_MEMORY: "512",
        convert.VM_PROCESSORS: "4",
        convert.LCOW_BOOT_FILES: "/opt/lcow",
    }
    plan = convert.plan(
        oci.Spec.parse(linux_spec(annotations=annotations)), linux_bundle(tmp_path), "sized"
    )
    machine = plan.systems[0].document["VirtualMachine"]
    assert machine["ComputeTopology"]["Memory"]["SizeInMB"] == 512
    assert machine["ComputeTopology"]["Processor"]["Count"] == 4
    assert machine["Chipset"]["LinuxKernelDirect"]["InitRdPath"] == "/opt/lcow/initrd.img"
    assert "nr_cpus=4" in machine["Chipset"]["LinuxKernelDirect"]["KernelCmdLine"]


# -- processes ------------------------------------------------------------------------------


def test_process_parameters_per_platform() -> None:
    process = oci.Process.parse(
        {
            "args": ["prog", "a b", 'q"uote'],
            "cwd": "/w",
            "env": ["A=1", "EMPTY=", "A=2", "B=x=y"],
            "user": {"uid": 1000, "gid": 100},
            "consoleSize": {"height": 10, "width": 20},
        }
    )
    linux = convert.process_parameters(process, linux=True)
    assert linux == {
        "CommandLine": 'prog "a b" q\\"uote',
        "CommandArgs": ["prog", "a b", 'q"uote'],
        "WorkingDirectory": "/w",
        "Environment": {"A": "2", "EMPTY": "", "B": "x=y"},
        "User": "1000:100",
        "EmulateConsole": False,  # consoleSize means nothing without a terminal
        "CreateStdInPipe": True,
        "CreateStdOutPipe": True,
        "CreateStdErrPipe": True,
    }
    windows = convert.process_parameters(process, linux=False)
    assert windows["Environment"] == {"A": "2", "B": "x=y"}
    assert "CommandArgs" not in windows
    assert "User" not in windows


def test_command_line_quotes_argv0_without_escapes() -> None:
    assert convert.command_line(["C:\\Program Files\\x.exe", "a"]) == (
        '"C:\\Program Files\\x.exe" a'
    )
    assert convert.command_line(["C:\\dir\\", "b c\\"]) == 'C:\\dir\\ "b c\\\\"'
    assert convert.command_line([""]) == '""'
    with pytest.raises(InvalidArgumentError):
        convert.command_line(['a"b'])


def test_exec_process_documents(tmp_path: Path) -> None:
    good = tmp_path / "process.json"
    good.write_text(json.dumps({"args": ["sh", "-c", "true"], "cwd": "/", "terminal": True}))
    process = convert.load_process(good, linux=True)
    assert convert.process_parameters(process, linux=True)["EmulateConsole"] is True
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"args": ["sh"], "cwd": "relative"}))
    with pytest.raises(BundleError) as caught:
        convert.load_process(bad, linux=True)
    assert (caught.value.json_path, caught.value.path) == ("$.cwd", str(bad))
    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps({"cwd": "/"}))
    with pytest.raises(BundleError, match=r"\$\.args: args must not be empty"):
        convert.load_process(empty, linux=True)
    with pytest.raises(BundleError, match="No such file"):
        convert.load_process(tmp_path / "missing.json", linux=True)


# -- on the emulator ------------------------------------------------------------------------


@contextmanager
def created(plan: Plan) -> Iterator[ComputeSystem]:
    """What create + start do with a plan, through the public API: attach the layers, create
    and start each system in order; afterwards terminate and release everything."""
    with ExitStack() as stack:
        for record in plan.attach:
            parents = LayerChain(Layer(p["Path"], p["Id"]) for p in record["parents"])
            stack.enter_context(Layer(record["path"]).attached(parents))
        system: ComputeSystem | None = None
        for step in plan.systems:
            system = stack.enter_context(ComputeSystem.create(step.system_id, step.document))
            stack.callback(system.terminate)
            system.start()
        assert system is not None
        yield system


def run_init(system: ComputeSystem, params: dict[str, Any]) -> tuple[bytes, bytes, int]:
    with system.create_process(params) as process:
        process.close_stdin()
        assert process.stdout is not None
        out = process.stdout.read()
        err = process.stderr.read() if process.stderr is not None else b""
        return out, err, process.wait(WAIT)


WINDOWS_PROGRAM = """
import os, sys
print(open("hello.txt").read().strip())
print(os.environ["GREETING"], os.environ.get("EMPTY"), os.environ.get("COMPUTERNAME"))
print(open(os.path.join("data", "in.txt")).read().strip())
open("written.txt", "w").write("from the container")
sys.exit(7)
"""


def test_a_windows_bundle_runs_on_real_layer_folders(
    hcs: Emulator, hcs_layers: Layers, tmp_path: Path
) -> None:
    base = hcs_layers.base({"hello.txt": "hello from the image\n"})
    scratch = hcs_layers.writable([base])
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "in.txt").write_text("mapped in\n")
    spec = windows_spec(
        base.path,
        scratch.path,
        hostname="winbox",
        mounts=[{"destination": "C:\\data", "source": str(shared), "options": ["ro"]}],
    )
    spec["process"] = {
        "args": [sys.executable, "-c", WINDOWS_PROGRAM],
        "cwd": "C:\\",
        "env": ["GREETING=hi there", "EMPTY="],
    }
    bundle = write_bundle(tmp_path / "bundle", spec)
    plan = convert.plan(convert.load_bundle(bundle), bundle, "oci-win")
    validate(plan)
    with created(plan) as system:
        out, err, code = run_init(system, plan.init)
        assert (err, code) == (b"", 7)
        assert out.decode().splitlines() == [
            "hello from the image",
            "hi there None winbox",
            "mapped in",
        ]
        assert (scratch.files / "written.txt").read_text() == "from the container"
    assert not (Path(base.path) / "Files" / "written.txt").exists()


def test_a_hyperv_windows_bundle_runs_in_its_utility_vm(
    hcs: Emulator, hcs_layers: Layers, tmp_path: Path
) -> None:
    base = hcs_layers.base()
    (Path(base.path) / "UtilityVM" / "Files").mkdir(parents=True)  # found by the search
    scratch = hcs_layers.writable([base])
    spec = windows_spec(base.path, scratch.path)
    spec["windows"]["hyperv"] = {}
    spec["process"] = {"args": [sys.executable, "-c", "print(open('hello.txt').read())"]}
    spec["process"]["cwd"] = "C:\\"
    plan = convert.plan(oci.Spec.parse(spec), tmp_path, "oci-hv")
    validate(plan)
    shares = plan.systems[0].document["VirtualMachine"]["Devices"]["VirtualSmb"]["Shares"]
    assert shares[0]["Path"] == f"{base.path}/UtilityVM/Files"
    with created(plan) as system:
        out, _, code = run_init(system, plan.init)
        assert (out, code) == (b"hello from the base layer\n\n", 0)
        assert system.properties().hosting_system_id == "oci-hv@vm"


RUN_SH = """#!/bin/sh
echo "hello from $NAME"
cat data/in.txt
echo made > made-by-container
exit 3
"""


def make_rootfs(bundle: Path) -> Path:
    rootfs = bundle / "rootfs"
    rootfs.mkdir(parents=True)
    script = rootfs / "run.sh"
    script.write_text(RUN_SH)
    script.chmod(0o755)
    return rootfs


def test_a_linux_bundle_runs_on_its_rootfs_in_a_linux_utility_vm(
    hcs: Emulator, tmp_path: Path
) -> None:
    bundle = tmp_path / "bundle"
    rootfs = make_rootfs(bundle)
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "in.txt").write_text("bound in\n")
    spec = linux_spec(
        hostname="linbox",
        mounts=[
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/data", "type": "bind", "source": str(shared), "options": ["rbind"]},
        ],
    )
    spec["process"]["env"].append("NAME=linux")
    write_bundle(bundle, spec)
    plan = convert.plan(convert.load_bundle(bundle), bundle, "oci-lin")
    validate(plan)
    with created(plan) as system:
        out, err, code = run_init(system, plan.init)
        # A Linux-flavoured guest: exit codes as Linux reports them.
        assert (out, err, code) == (b"hello from linux\nbound in\n", b"", 3)
        # The rootfs is the container's root itself: nothing was copied.
        assert (rootfs / "made-by-container").read_text() == "made\n"
        assert system.properties().runtime_os_type == "Linux"
        signal_exit = system.create_process(
            {**plan.init, "CommandLine": "sleep 30", "CommandArgs": ["sleep", "30"]}
        )
        with signal_exit:
            signal_exit.signal(15)
            assert signal_exit.wait(WAIT) == 128 + 15
    assert not (rootfs / "data").exists()  # the mapped directory went with the container


def test_a_linux_pod_sandbox_and_member_share_one_vm(hcs: Emulator, tmp_path: Path) -> None:
    def bundle_for(name: str, kind: str) -> tuple[Path, oci.Spec]:
        bundle = tmp_path / name
        make_rootfs(bundle)
        (bundle / "rootfs" / "data").mkdir()
        (bundle / "rootfs" / "data" / "in.txt").write_text(f"{name}\n")
        spec = linux_spec(annotations={convert.CONTAINER_TYPE: kind, convert.SANDBOX_ID: "pod-a"})
        spec["process"]["env"].append(f"NAME={name}")
        write_bundle(bundle, spec)
        return bundle, convert.load_bundle(bundle)

    sandbox_bundle, sandbox_spec = bundle_for("pod-a", "sandbox")
    member_bundle, member_spec = bundle_for("app", "container")
    sandbox = convert.plan(sandbox_spec, sandbox_bundle, "pod-a")
    member = convert.plan(member_spec, member_bundle, "app")
    with created(sandbox) as pause, created(member) as app:
        assert run_init(app, member.init) == (b"hello from app\napp\n", b"", 3)
        assert app.properties().hosting_system_id == "pod-a@vm"
        assert run_init(pause, sandbox.init)[2] == 3


PRINT_ARGV = "import json, sys; sys.stdout.write(json.dumps(sys.argv[1:]))"
args_text = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\0"), max_size=12)


def test_args_reach_the_process_exactly(hcs: Emulator) -> None:
    """Whatever the args, the command line built for them is split back into the same argv
    (the emulator splits it as CommandLineToArgvW does)."""
    document = {
        "SchemaVersion": {"Major": 2, "Minor": 1},
        "Owner": "tests",
        "Container": {},
    }
    with ComputeSystem.create("oci-argv", document) as system:
        system.start()

        @settings(max_examples=25, deadline=None)
        @given(args=st.lists(args_text, max_size=5))
        def check(args: list[str]) -> None:
            process = oci.Process(args=[sys.executable, "-c", PRINT_ARGV, *args], cwd="C:\\")
            params = convert.process_parameters(process, linux=False)
            out, err, code = run_init(system, params)
            assert (json.loads(out), err, code) == (args, b"", 0)

        check()
        system.terminate()


def test_every_plan_document_is_json_serializable(tmp_path: Path) -> None:
    spec = oci.Spec.parse(json.loads((DATA / "windows-full.json").read_text()))
    plan = convert.plan(spec, tmp_path, "serial")
    for step in plan.systems:
        assert json.loads(json.dumps(step.document)) == step.document
    assert copy.deepcopy(plan.init) == json.loads(json.dumps(plan.init))


@pytest.mark.parametrize("good", ["a", "A-b_c.d+e", "9db7603530b5acba32a6388cc17b2b3d", "x" * 1024])
def test_valid_container_ids(good: str) -> None:
    from pyhcs.runtime.ids import check_id, vm_id

    assert check_id(good) == good
    assert vm_id(good) == f"{good}@vm"
