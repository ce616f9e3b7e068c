"""containerd's go-runc client library (Debian's golang-github-containerd-go-runc-dev) driving a
runc-compatible binary directly, on an OCI bundle of the busybox image: gorunc/main.go, built
offline in GOPATH mode, runs Version, Create, State, List, Start, Ps, Kill, Delete and reports
each step as a JSON line."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.containerd import harness
from tests.containerd.conftest import require_tools

SOURCE = Path(__file__).resolve().parent / "gorunc"
SCRIPT = "trap 'exit 7' TERM; echo ready; sleep 1000 & wait"
TIMEOUT = 60.0


@pytest.fixture(scope="session")
def gorunc(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """gorunc/main.go built once per session, offline (GOPATH mode over Debian's gocode, no
    module proxy, a build cache of its own)."""
    require_tools(go=True)
    go = harness.which("go")
    assert go is not None
    work = tmp_path_factory.mktemp("gorunc")
    env = dict(
        os.environ,
        GO111MODULE="off",
        GOPATH=f"{harness.GOCODE}:{work / 'gopath'}",
        GOCACHE=str(work / "cache"),
        GOPROXY="off",
        GOFLAGS="",
        CGO_ENABLED="0",
    )
    output = work / "gorunc"
    harness.run([go, "build", "-o", output, "main.go"], env=env, cwd=SOURCE, timeout=300)
    return output


def _bundle(image: harness.BusyboxImage, directory: Path) -> Path:
    """The image unpacked as a bundle whose process prints ``ready`` and exits 7 on SIGTERM."""
    bundle = image.unpack(directory)
    config_path = bundle / "config.json"
    config = json.loads(config_path.read_text())
    config["process"]["terminal"] = False
    config["process"]["args"] = ["sh", "-c", SCRIPT]
    config_path.write_text(json.dumps(config, indent=2))
    return bundle


def test_go_runc_drives_the_runtime_through_a_container_lifecycle(
    runtime_binary: Path,
    gorunc: Path,
    busybox_image: harness.BusyboxImage,
    tmp_path: Path,
) -> None:
    bundle = _bundle(busybox_image, tmp_path / "bundle")
    root = tmp_path / "root"
    container_id = f"gorunc-{os.getpid()}"
    command = [
        str(gorunc),
        "-runtime",
        str(runtime_binary),
        "-root",
        str(root),
        "-bundle",
        str(bundle),
        "-id",
        container_id,
        "-timeout",
        f"{TIMEOUT:.0f}s",
    ]
    try:
        result = harness.capture(command, timeout=TIMEOUT + 10)
    finally:  # a run that failed half-way must not leave its container behind
        harness.capture(
            [runtime_binary, "--root", root, "delete", "--force", container_id], timeout=TIMEOUT
        )
    steps: dict[str, dict[str, Any]] = {}
    for line in result.stdout.splitlines():
        record = json.loads(line)
        steps[record["step"]] = record
    assert result.returncode == 0, (steps, result.stderr)

    if runtime_binary.name == "runc":  # go-runc parses only a "runc version X" first line
        assert steps["version"]["runc"]
        assert steps["version"]["spec"]
    pid = steps["create"]["pid"]  # read by go-runc's ReadPidFile, as the shim reads it
    assert pid > 0
    created = steps["state-created"]["container"]
    assert (created["id"], created["pid"], created["status"]) == (container_id, pid, "created")
    assert created["bundle"] == str(bundle)
    assert [c["id"] for c in steps["list-created"]["containers"]] == [container_id]
    assert steps["stdout"]["line"] == "ready\n"  # the container writes to create's pipes
    running = steps["state-running"]["container"]
    assert (running["pid"], running["status"]) == (pid, "running")
    assert pid in steps["ps"]["pids"]
    assert steps["wait"] == {"step": "wait", "exited": True, "exit_status": 7, "signaled": False}
    assert steps["state-stopped"]["container"]["status"] == "stopped"
    assert steps["list-deleted"]["containers"] == []
    assert steps["state-deleted"]["error"]
