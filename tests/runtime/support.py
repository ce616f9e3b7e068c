"""What the CLI tests share: the runtime driven as a subprocess, as containerd and go-runc
drive runc, against the session's emulator service; bundles made on the fly; a supervisor that
plays containerd's runc shim (a subreaper that reaps the pid in the pid file)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
#: Every wait of these tests is bounded by this.
BOUND = 60.0


def bundle(directory: Path, args: list[str], **process: Any) -> Path:
    """A Linux-style bundle (config.json + an empty rootfs) whose process runs ``args``."""
    (directory / "rootfs").mkdir(parents=True, exist_ok=True)
    spec = {
        "ociVersion": "1.0.2",
        "process": {"args": args, "cwd": "/", "env": ["PATH=/usr/bin:/bin"], **process},
        "root": {"path": "rootfs"},
    }
    (directory / "config.json").write_text(json.dumps(spec))
    return directory


class Runtime:
    """pyrunhcs with its own ``--root``, talking to the test session's emulator."""

    def __init__(self, root: Path, emulator_dir: Path) -> None:
        self.root = root
        self.env = dict(os.environ)
        self.env.update(
            PYHCS_BACKEND="emulator",
            PYHCS_EMULATOR_DIR=str(emulator_dir),
            PYHCS_EMULATOR_AUTOSTART="0",
            PYTHONPATH=str(REPO),
        )

    def argv(self, *args: str, globals_: tuple[str, ...] = ()) -> list[str]:
        return [
            sys.executable,
            "-m",
            "pyhcs.runtime.cli",
            "--root",
            str(self.root),
            *globals_,
            *args,
        ]

    def __call__(
        self,
        *args: str,
        input: bytes | None = None,
        globals_: tuple[str, ...] = (),
        stdin: Any = subprocess.DEVNULL,
    ) -> subprocess.CompletedProcess[str]:
        """Run one command to its end (stdout and stderr as text). They go through files, not
        pipes: a shim left behind (``run -d``, ``exec -d``) keeps the caller's stdio open for
        its container, so a pipe would only end with the container."""
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            result = subprocess.run(
                self.argv(*args, globals_=globals_),
                input=input,
                stdin=None if input is not None else stdin,
                stdout=out,
                stderr=err,
                env=self.env,
                timeout=BOUND,
                check=False,
            )
            out.seek(0)
            err.seek(0)
            return subprocess.CompletedProcess(
                result.args, result.returncode, out.read().decode(), err.read().decode()
            )

    def state(self, container_id: str) -> dict[str, Any]:
        result = self("state", container_id)
        assert result.returncode == 0, result.stderr
        document: dict[str, Any] = json.loads(result.stdout)
        return document

    def error(self, result: subprocess.CompletedProcess[str]) -> str:
        """The message of a failed command (the logrus line on stderr)."""
        line = result.stderr.strip().splitlines()[-1]
        marker = 'msg="'
        assert marker in line, result.stderr
        return str(json.loads(line[line.index(marker) + 4 :]))


class Supervised:
    """A container created under `tests.runtime.supervisor` (a subreaper, as containerd's
    shim): the shim's pid, whether the supervisor is its parent, and later its exit status."""

    def __init__(self, runtime: Runtime, *create_args: str, stdout: Path | None = None) -> None:
        self.pid_file = runtime.root.parent / f"{create_args[-1]}.pid"
        command = [
            sys.executable,
            "-m",
            "tests.runtime.supervisor",
            str(self.pid_file),
            str(stdout or os.devnull),
            *runtime.argv("create", "--pid-file", str(self.pid_file), *create_args),
        ]
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=runtime.env, cwd=REPO
        )
        assert self.process.stdout is not None
        first = json.loads(self.process.stdout.readline() or "{}")
        if "pid" not in first:
            _out, err = self.process.communicate(timeout=BOUND)
            raise AssertionError(f"create failed: {first} {err.decode()}")
        self.pid: int = first["pid"]
        self.child: bool = first["child"]
        self.pid_file_text: str = first["text"]

    def exit_status(self) -> int:
        """The shim's exit status as the supervisor reaped it (128+N for a signal N)."""
        out, err = self.process.communicate(timeout=BOUND)
        assert self.process.returncode == 0, err.decode()
        status: int = json.loads(out)["status"]
        return status
