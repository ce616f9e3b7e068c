"""The OCI models: real specs (containerd's) and every ``windows`` field parse and write back
unchanged, unknown fields survive, bad documents fail naming the JSON path, and the state
document comes out as runc prints it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyhcs.runtime import oci
from pyhcs.runtime.oci import BundleError

DATA = Path(__file__).resolve().parent.parent / "data" / "oci"


def load(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((DATA / name).read_text())
    return document


@pytest.mark.parametrize("name", ["containerd-ctr.json", "containerd-cri-sandbox.json"])
def test_containerd_specs_parse_and_write_back_unchanged(name: str) -> None:
    document = load(name)
    spec = oci.Spec.parse(document)
    assert spec.to_dict() == document
    assert oci.Spec.parse(spec.to_json()).to_dict() == document
    assert spec.is_linux
    assert spec.process is not None
    assert spec.process.args is not None
    assert spec.process.args[0] == "/bin/busybox"
    assert spec.root is not None
    assert spec.root.path == "rootfs"
    assert spec.linux is not None
    assert spec.linux.resources is not None
    assert spec.linux.resources.cpu is not None
    assert spec.linux.resources.cpu.shares
    assert spec.linux.namespace("pid") is not None
    assert spec.linux.masked_paths
    assert "/proc/kcore" in spec.linux.masked_paths


def test_the_cri_sandbox_spec_carries_the_pod_annotations_and_netns() -> None:
    spec = oci.Spec.parse(load("containerd-cri-sandbox.json"))
    assert spec.annotations is not None
    assert spec.annotations["io.kubernetes.cri.container-type"] == "sandbox"
    assert spec.linux is not None
    network = spec.linux.namespace("network")
    assert network is not None
    assert network.path is not None
    assert network.path.startswith("/var/run/netns/")
    assert spec.root is not None
    assert spec.root.readonly
    binds = [m for m in spec.mounts or [] if m.type == "bind"]
    assert [m.read_only for m in binds] == [True, True]


def test_every_windows_field_reads_under_its_spec_name() -> None:
    document = load("windows-full.json")
    spec = oci.Spec.parse(document)
    assert spec.to_dict() == document
    assert not spec.is_linux
    windows = spec.windows
    assert windows is not None
    assert windows.layer_folders == [
        "C:\\layers\\app",
        "C:\\layers\\base",
        "C:\\layers\\scratch",
    ]
    assert windows.hyperv is not None
    assert windows.hyperv.utility_vm_path == "C:\\layers\\base\\UtilityVM"
    assert windows.devices is not None
    assert windows.devices[0].id_type == "class"
    resources = windows.resources
    assert resources is not None
    assert resources.memory is not None
    assert resources.memory.limit == 2 * 1024**3
    assert resources.cpu is not None
    assert resources.cpu.maximum == 5000
    assert resources.storage is not None
    assert resources.storage.sandbox_size == 20 * 1024**3
    network = windows.network
    assert network is not None
    assert network.allow_unqualified_dns_query is True
    assert network.dns_search_list == ["corp.example", "example"]
    assert network.network_shared_container_name == "sandbox-1"
    assert network.network_namespace is not None
    assert network.endpoint_list is not None
    assert windows.credential_spec == document["windows"]["credentialSpec"]
    assert windows.ignore_flushes_during_boot is True
    assert spec.process is not None
    assert spec.process.command_line == 'cmd /S /C "echo hi"'
    assert spec.process.user is not None
    assert spec.process.user.username == "ContainerUser"
    assert spec.process.console_size == oci.Box(height=25, width=80)


@pytest.mark.parametrize(
    "affinity",
    [{"mask": 3, "group": 0}, [{"mask": 3, "group": 0}, {"mask": 12, "group": 1}]],
)
def test_cpu_affinity_is_read_as_an_object_or_an_array(affinity: Any) -> None:
    # The spec's text and Go types say array; its JSON schema says object.
    cpu = oci.WindowsCpu.parse({"affinity": affinity})
    assert cpu.to_dict() == {"affinity": affinity}


def test_names_and_python_names_both_populate() -> None:
    by_alias = oci.WindowsNetwork.parse({"DNSSearchList": ["a"], "networkNamespace": "n"})
    by_name = oci.WindowsNetwork(dns_search_list=["a"], network_namespace="n")
    assert by_alias == by_name
    assert by_name.to_dict() == {"DNSSearchList": ["a"], "networkNamespace": "n"}
    mapping = oci.IdMapping.parse({"containerID": 0, "hostID": 1000, "size": 65536})
    assert mapping.host_id == 1000
    memory = oci.LinuxMemory.parse({"kernelTCP": 1, "disableOOMKiller": True})
    assert (memory.kernel_tcp, memory.disable_oom_killer) == (1, True)
    assert oci.LinuxResources.parse({"blockIO": {"weight": 10}}).block_io == {"weight": 10}


def test_unknown_fields_are_kept_at_every_level() -> None:
    document = {
        "ociVersion": "1.3.0",
        "newTopLevel": {"x": 1},
        "process": {"cwd": "/", "args": ["sh"], "futureFlag": True},
        "root": {"path": "rootfs", "idmap": "yes"},
        "linux": {
            "namespaces": [{"type": "time", "extra": 1}],
            "seccomp": {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": []},
            "memoryPolicy": {"mode": "MPOL_BIND"},
        },
        "windows": {"layerFolders": ["C:\\a", "C:\\b"], "newWindowsThing": [1, 2]},
        "vm": {"kernel": {"path": "/vmlinuz"}},
    }
    spec = oci.Spec.parse(document)
    assert spec.to_dict() == document
    assert spec.model_extra == {"newTopLevel": {"x": 1}, "vm": {"kernel": {"path": "/vmlinuz"}}}


def test_hooks_are_read_and_counted() -> None:
    hooks = oci.Hooks.parse(
        {
            "prestart": [{"path": "/bin/true"}],
            "createRuntime": [{"path": "/a"}, {"path": "/b", "args": ["b"], "timeout": 5}],
            "poststop": [],
        }
    )
    assert hooks.count() == {"prestart": 1, "createRuntime": 2}


@pytest.mark.parametrize(
    ("document", "path"),
    [
        ({}, "$.ociVersion"),
        ({"ociVersion": 1}, "$.ociVersion"),
        ({"ociVersion": "1.0.0", "process": {"args": ["x"]}}, "$.process.cwd"),
        ({"ociVersion": "1.0.0", "process": {"cwd": "/", "args": [1]}}, "$.process.args[0]"),
        (
            {"ociVersion": "1.0.0", "process": {"cwd": "/", "user": {"uid": "0"}}},
            "$.process.user.uid",
        ),
        ({"ociVersion": "1.0.0", "process": {"cwd": "/", "terminal": 1}}, "$.process.terminal"),
        (
            {"ociVersion": "1.0.0", "process": {"cwd": "/", "user": {"uid": -1}}},
            "$.process.user.uid",
        ),
        ({"ociVersion": "1.0.0", "mounts": [{"source": "/x"}]}, "$.mounts[0].destination"),
        ({"ociVersion": "1.0.0", "root": {}}, "$.root.path"),
        (
            {"ociVersion": "1.0.0", "windows": {"resources": {"cpu": {"shares": 70000}}}},
            "$.windows.resources.cpu.shares",
        ),
        (
            {"ociVersion": "1.0.0", "windows": {"network": {"DNSSearchList": "a,b"}}},
            "$.windows.network.DNSSearchList",
        ),
        ({"ociVersion": "1.0.0", "annotations": {"a": 1}}, "$.annotations.a"),
        (
            {"ociVersion": "1.0.0", "hooks": {"poststart": [{"args": []}]}},
            "$.hooks.poststart[0].path",
        ),
    ],
)
def test_a_mistyped_or_missing_field_is_named_by_its_json_path(
    document: dict[str, Any], path: str
) -> None:
    with pytest.raises(BundleError) as caught:
        oci.Spec.parse(document, source="config.json")
    assert caught.value.json_path == path
    assert caught.value.message.startswith(f"config.json: {path}: ")


def test_bad_json_is_reported_with_its_position() -> None:
    with pytest.raises(BundleError) as caught:
        oci.Spec.parse('{\n  "ociVersion": "1.0.0",\n  "process": }\n', source="b/config.json")
    assert caught.value.message.startswith("b/config.json: invalid JSON at line 3 column 14")
    assert caught.value.path == "b/config.json"
    with pytest.raises(BundleError, match="expected a JSON object, got list"):
        oci.Spec.parse("[]")


def test_a_bundle_error_is_an_invalid_argument_and_pickles() -> None:
    import pickle

    from pyhcs.errors import InvalidArgumentError

    error = BundleError("config.json: $.x: bad", json_path="$.x", path="config.json")
    assert isinstance(error, InvalidArgumentError)
    assert isinstance(error, ValueError)
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.message, copy.json_path, copy.path) == (error.message, "$.x", "config.json")


# -- state ----------------------------------------------------------------------------------


def test_state_has_runcs_fields_in_runcs_order() -> None:
    state = oci.State(
        id="c1", pid=42, status="running", bundle="/b", rootfs="/b/rootfs", created="T"
    )
    assert list(state.runc_dict()) == [
        "ociVersion",
        "id",
        "pid",
        "status",
        "bundle",
        "rootfs",
        "created",
        "owner",
    ]
    with_annotations = state.model_copy(update={"annotations": {"k": "v"}})
    assert list(with_annotations.runc_dict())[-2:] == ["annotations", "owner"]
    assert oci.State.parse(state.runc_dict()) == state


def test_state_as_runc_prints_it() -> None:
    state = oci.State(id="c1", status="stopped", bundle="/b", created="2024-01-02T03:04:05Z")
    text = oci.go_json(state.runc_dict(), indent=True)
    assert text == (
        "{\n"
        f'  "ociVersion": "{oci.SPEC_VERSION}",\n'
        '  "id": "c1",\n'
        '  "pid": 0,\n'
        '  "status": "stopped",\n'
        '  "bundle": "/b",\n'
        '  "rootfs": "",\n'
        '  "created": "2024-01-02T03:04:05Z",\n'
        '  "owner": ""\n'
        "}"
    )


@pytest.mark.parametrize("status", ["creating", "created", "running", "stopped", "paused"])
def test_state_statuses(status: str) -> None:
    assert oci.State.parse({"id": "x", "status": status, "bundle": "/b"}).status == status


def test_an_unknown_status_or_a_negative_pid_is_refused() -> None:
    with pytest.raises(BundleError) as caught:
        oci.State.parse({"id": "x", "status": "sleeping", "bundle": "/b"})
    assert caught.value.json_path == "$.status"
    with pytest.raises(BundleError):
        oci.State.parse({"id": "x", "status": "running", "bundle": "/b", "pid": -1})


def test_go_json_escapes_as_go_does() -> None:
    value = {"a": "<b>&c", "é": "\u2028\u2029", "n": [1, {}], "t": True}
    assert oci.go_json(value) == (
        '{"a":"\\u003cb\\u003e\\u0026c","é":"\\u2028\\u2029","n":[1,{}],"t":true}'
    )
    assert json.loads(oci.go_json(value)) == value
    assert json.loads(oci.go_json(value, indent=True)) == value


@pytest.mark.parametrize(
    ("ns", "text"),
    [
        (0, "1970-01-01T00:00:00Z"),
        (1_700_000_000_000_000_000, "2023-11-14T22:13:20Z"),
        (1_700_000_000_120_000_000, "2023-11-14T22:13:20.12Z"),
        (1_700_000_000_000_000_001, "2023-11-14T22:13:20.000000001Z"),
    ],
)
def test_rfc3339_nano_trims_as_go_does(ns: int, text: str) -> None:
    assert oci.rfc3339_nano(ns) == text


def test_rfc3339_nano_defaults_to_now() -> None:
    assert oci.rfc3339_nano().endswith("Z")


# -- hypothesis: lists from outside ---------------------------------------------------------

texts = st.text(st.characters(exclude_categories=["Cs"]), max_size=20)
mounts = st.lists(
    st.fixed_dictionaries(
        {"destination": texts},
        optional={"source": texts, "type": texts, "options": st.lists(texts, max_size=4)},
    ),
    max_size=5,
)


@settings(max_examples=100, deadline=None)
@given(
    args=st.lists(texts, max_size=6),
    env=st.lists(texts, max_size=6),
    mounts=mounts,
    annotations=st.dictionaries(texts, texts, max_size=4),
)
def test_arbitrary_lists_round_trip(
    args: list[str], env: list[str], mounts: list[dict[str, Any]], annotations: dict[str, str]
) -> None:
    document = {
        "ociVersion": "1.0.2",
        "process": {"cwd": "/", "args": args, "env": env},
        "mounts": mounts,
        "annotations": annotations,
    }
    spec = oci.Spec.parse(json.dumps(document))
    assert spec.to_dict() == document
    assert spec.mounts is not None
    assert [m.read_only for m in spec.mounts] == ["ro" in m.get("options", []) for m in mounts]


# -- import cost ----------------------------------------------------------------------------


def test_the_models_import_neither_cffi_nor_the_hcs_objects() -> None:
    code = (
        "import sys, pyhcs.runtime.oci, pyhcs.runtime.convert\n"
        "heavy = ('cffi', 'pyhcs.raw', 'pyhcs.system', 'pyhcs.layer')\n"
        "bad = [m for m in heavy if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[2])


def test_the_state_formats_and_ids_need_no_pydantic() -> None:
    # What `state` and `list` use must not cost pydantic's import (~100 ms).
    code = (
        "import sys, pyhcs.runtime.formats, pyhcs.runtime.ids, pyhcs.runtime.plan\n"
        "assert 'pydantic' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[2])
