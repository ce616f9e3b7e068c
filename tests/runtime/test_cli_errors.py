"""runc's refusals, their messages and exit codes: wrong-state transitions, missing
containers, bad ids and bundles, bad command lines; JSON logs whose last error line is what
containerd shows; concurrent commands on one container; a create that never finished."""

from __future__ import annotations

import json
import os
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.runtime.support import BOUND, Runtime, Supervised, bundle


def _fails(runtime: Runtime, *args: str, code: int = 1) -> str:
    result = runtime(*args)
    assert result.returncode == code, (args, result.stdout, result.stderr)
    return runtime.error(result)


def test_wrong_state_transitions(runtime: Runtime, tmp_path: Path) -> None:
    c = Supervised(runtime, "-b", str(bundle(tmp_path / "b", ["sleep", "30"])), "w")
    assert _fails(runtime, "resume", "w") == "container not paused"
    assert runtime("start", "w").returncode == 0
    assert _fails(runtime, "start", "w") == "cannot start an already running container"
    assert (
        _fails(runtime, "delete", "w") == "cannot delete container w that is not stopped: running"
    )
    assert _fails(runtime, "resume", "w") == "container not paused"
    # A Linux bundle runs in a utility VM: pausing the container pauses that VM.
    assert runtime("pause", "w").returncode == 0
    assert runtime.state("w")["status"] == "paused"
    assert _fails(runtime, "pause", "w") == "container not running"
    assert runtime("resume", "w").returncode == 0
    assert runtime.state("w")["status"] == "running"
    assert _fails(runtime, "kill", "w", "NOPE") == 'unknown signal "NOPE"'
    assert runtime("kill", "w", "KILL").returncode == 0
    c.exit_status()
    assert runtime.state("w")["status"] == "stopped"
    assert _fails(runtime, "kill", "w", "9") == "container not running"
    assert runtime("kill", "--all", "w", "9").returncode == 0  # --all: not running is fine
    assert _fails(runtime, "start", "w") == "cannot start a container that has stopped"
    assert _fails(runtime, "pause", "w") == "container not running"
    assert _fails(runtime, "resume", "w") == "container not paused"
    assert _fails(runtime, "exec", "w", "true", code=255) == (
        "exec failed: cannot exec in a stopped container"
    )
    assert runtime("ps", "--format", "json", "w").stdout == "null\n"
    assert _fails(runtime, "events", "--stats", "w") == "container not running"
    assert runtime("delete", "w").returncode == 0


@pytest.mark.parametrize(
    "args",
    [
        ("state", "nope"),
        ("start", "nope"),
        ("kill", "nope", "9"),
        ("delete", "nope"),
        ("pause", "nope"),
        ("resume", "nope"),
        ("ps", "nope"),
        ("events", "--stats", "nope"),
        ("resize-tty", "nope", "80", "24"),
    ],
)
def test_missing_container(runtime: Runtime, args: tuple[str, ...]) -> None:
    assert _fails(runtime, *args) == "container does not exist"


@pytest.mark.parametrize("bad", ["../escape", "a/b", ".", "..", "with space", "é", "x" * 256])
def test_bad_ids_touch_nothing(runtime: Runtime, tmp_path: Path, bad: str) -> None:
    b = bundle(tmp_path / "b", ["true"])
    for args in (("create", "-b", str(b), bad), ("state", bad), ("delete", "-f", bad)):
        assert _fails(runtime, *args) == "invalid container ID format"
    assert not (tmp_path / "escape").exists()
    assert sorted(os.listdir(tmp_path)) == ["b"] + (["root"] if runtime.root.exists() else [])


def test_bad_bundles_leave_nothing(runtime: Runtime, tmp_path: Path) -> None:
    def make(name: str, text: str | None) -> Path:
        d = tmp_path / name
        (d / "rootfs").mkdir(parents=True)
        if text is not None:
            (d / "config.json").write_text(text)
        return d

    good: dict[str, Any] = {
        "ociVersion": "1.0.2",
        "process": {"args": ["true"], "cwd": "/"},
        "root": {"path": "rootfs"},
    }
    cases = {
        "missing": (tmp_path / "nowhere", "is not a directory"),
        "noconfig": (make("noconfig", None), "config.json not found"),
        "badjson": (make("badjson", "{bad"), "invalid JSON at line 1 column 2"),
        "notobject": (make("notobject", "[]"), "expected a JSON object, got list"),
        "relcwd": (
            make("relcwd", json.dumps({**good, "process": {"args": ["true"], "cwd": "rel"}})),
            "the working directory must be an absolute path",
        ),
        "noargs": (
            make("noargs", json.dumps({**good, "process": {"args": [], "cwd": "/"}})),
            "args must not be empty",
        ),
        "noroot": (
            make("noroot", json.dumps({"ociVersion": "1.0.2", "process": good["process"]})),
            "neither windows.layerFolders nor root.path",
        ),
    }
    for name, (path, message) in cases.items():
        error = _fails(runtime, "create", "-b", str(path), name)
        assert error.startswith("pyrunhcs create failed: "), error
        assert message in error, (name, error)
    assert runtime("list", "-q").stdout == ""
    b = make("tty", json.dumps({**good, "process": {**good["process"], "terminal": True}}))
    assert _fails(runtime, "create", "-b", str(b), "tty") == (
        "cannot allocate tty if runc will detach without setting console socket"
    )
    plain = make("plain", json.dumps(good))
    console = _fails(runtime, "create", "-b", str(plain), "--console-socket", "/x", "c")
    assert console == "cannot use console socket if runc will not detach or allocate tty"


def test_create_twice_is_refused(runtime: Runtime, tmp_path: Path) -> None:
    b = bundle(tmp_path / "b", ["true"])
    Supervised(runtime, "-b", str(b), "twice")
    assert _fails(runtime, "create", "-b", str(b), "twice") == (
        "pyrunhcs create failed: container with given ID already exists"
    )
    assert runtime.state("twice")["status"] == "created"  # the first one is untouched


def test_half_written_state(runtime: Runtime, tmp_path: Path) -> None:
    """A create that died before writing its state: only delete --force clears it."""
    (runtime.root / "half").mkdir(parents=True)
    assert _fails(runtime, "state", "half") == "container does not exist"
    assert _fails(runtime, "delete", "half") == "container does not exist"
    assert _fails(runtime, "create", "-b", str(bundle(tmp_path / "b", ["true"])), "half") == (
        "pyrunhcs create failed: container with given ID already exists"
    )
    listed = runtime("list")
    assert listed.returncode == 0
    assert "load container half: container does not exist" in listed.stderr
    assert runtime("delete", "--force", "half").returncode == 0
    assert not (runtime.root / "half").exists()


def test_json_log_last_error_line(runtime: Runtime, tmp_path: Path) -> None:
    log = tmp_path / "log.json"
    flags = ("--log", str(log), "--log-format", "json")
    result = runtime("kill", "gone", "9", globals_=flags)
    assert (result.returncode, result.stderr) == (1, "container does not exist\n")
    result = runtime("--debug", "start", "gone", globals_=flags)
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert all(list(line) == ["level", "msg", "time"] for line in lines)
    errors = [line["msg"] for line in lines if line["level"] == "error"]
    assert errors == ["container does not exist", "container does not exist"]
    assert runtime("--log-format=json", "--log=" + str(log), "delete", "x/y").returncode == 1
    last = json.loads(log.read_text().splitlines()[-1])
    assert (last["level"], last["msg"]) == ("error", "invalid container ID format")
    assert last["time"].endswith("Z") or last["time"][-6] in "+-"
    bad = runtime("--log-format", "yaml", "list")
    assert (bad.returncode, runtime.error(bad)) == (1, "invalid log-format: yaml")


def test_command_line(runtime: Runtime, tmp_path: Path) -> None:
    unknown = runtime("state", "--bogus", "x")
    assert unknown.returncode == 1
    assert unknown.stdout.startswith("Incorrect Usage: flag provided but not defined: -bogus")
    count = runtime("state")
    assert count.stdout.startswith("Incorrect Usage.")
    assert runtime.error(count) == 'pyrunhcs: "state" requires exactly 1 argument(s)'
    assert runtime.error(runtime("kill", "a", "b", "c")) == (
        'pyrunhcs: "kill" requires a maximum of 2 argument(s)'
    )
    assert runtime.error(runtime("exec")) == 'pyrunhcs: "exec" requires a minimum of 1 argument(s)'
    assert runtime("no-such-command").returncode == 3
    version = runtime("--version").stdout.splitlines()
    assert version[0].startswith("pyrunhcs version ")
    assert [line.split(":")[0] for line in version[1:3]] == ["commit", "spec"]
    features = json.loads(runtime("features").stdout)
    assert {"ociVersionMin", "ociVersionMax", "hooks", "mountOptions"} <= set(features)
    assert runtime("spec", "-b", str(tmp_path)).returncode == 0
    spec = json.loads((tmp_path / "config.json").read_text())
    assert spec["process"]["args"] == ["sh"]
    assert runtime.error(runtime("spec", "--bundle", str(tmp_path))) == (
        "File config.json exists. Remove it first"
    )
    # Flags after the id (urfave/cli reorders them), = forms, bool values.
    b = bundle(tmp_path / "b", ["true"])
    Supervised(runtime, f"--bundle={b}", "late")
    assert runtime("delete", "late", "--force=true").returncode == 0
    assert runtime("list", "--format", "yaml").returncode == 1


def test_concurrent_kill_and_delete(runtime: Runtime, tmp_path: Path) -> None:
    c = Supervised(runtime, "-b", str(bundle(tmp_path / "b", ["sleep", "30"])), "race")
    assert runtime("start", "race").returncode == 0
    commands = (
        [("kill", "race", "KILL")] * 3
        + [("delete", "--force", "race")] * 2
        + [("kill", "--all", "race", "TERM")]
    )
    results: list[subprocess.CompletedProcess[str]] = []
    barrier = threading.Barrier(len(commands))

    def one(args: tuple[str, ...]) -> None:
        barrier.wait(BOUND)
        results.append(runtime(*args))

    threads = [threading.Thread(target=one, args=(a,)) for a in commands]
    for t in threads:
        t.start()
    for t in threads:
        t.join(BOUND)
    assert len(results) == len(commands)
    for result in results:
        assert "Traceback" not in result.stderr
        if result.returncode != 0:
            assert runtime.error(result) in ("container not running", "container does not exist")
    assert all(r.returncode == 0 for r in results if "delete" in r.args)
    c.exit_status()
    assert runtime("list", "-q").stdout == ""
