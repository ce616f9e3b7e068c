"""A private containerd and a locally built busybox image, for driving a runc-compatible binary
through containerd's stock runc shim (issue 9). Used by the tests here and by
benchmarks/bench_runtime_ctr.py.

containerd runs as a child of the test process with every path of its own (root, state, gRPC and
ttrpc sockets) in a directory we made; the host's containerd, if any, is never touched. The one
place we cannot move is the shim's socket directory, ``/run/containerd/s`` (hard-coded in the
shim): sockets there are named ``sha256(<grpc address>/<namespace>/<container id>)``, so we remove
exactly the ones our containers would have used, and only directories we created, if empty.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import struct
import subprocess
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from pyhcs.emulator import cli as emulator_cli

#: Where the Debian packages put the tools, whatever the caller's PATH (runc is in /usr/sbin).
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#: Executable -> the Debian package that ships it.
TOOLS = {
    "containerd": "containerd",
    "ctr": "containerd",
    "containerd-shim-runc-v2": "containerd",
    "runc": "runc",
    "umoci": "umoci",
    "skopeo": "skopeo",
}
GO_TOOLS = {"go": "golang-go"}
#: busybox-static's binary (Debian's dynamic ``busybox`` package installs the same path).
BUSYBOX = Path("/bin/busybox")
#: GOPATH root of Debian's Go library packages.
GOCODE = Path("/usr/share/gocode")
GO_RUNC_SOURCE = GOCODE / "src/github.com/containerd/go-runc/runc.go"

IMAGE = "pyhcs.test/busybox:latest"
NAMESPACE = "pyhcs-test"
SHIM_SOCKET_DIR = Path("/run/containerd/s")
#: Directories containerd or its shim may create under /run even with our own config.
RUN_DIRS = (Path("/run/containerd"), SHIM_SOCKET_DIR)

READY_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
COMMAND_TIMEOUT = 60.0


class HarnessError(RuntimeError):
    """containerd, ctr, umoci or skopeo did not do what the harness needed."""


def which(tool: str) -> str | None:
    """``tool`` on the caller's PATH or in the system directories."""
    return shutil.which(tool) or shutil.which(tool, path=SYSTEM_PATH)


def _is_static_elf(path: Path) -> bool:
    """Whether ``path`` is a 64-bit little-endian ELF without a PT_INTERP (dynamic loader)
    program header: a dynamic busybox would not run in a rootfs without libc."""
    with path.open("rb") as file:
        header = file.read(64)
        if len(header) < 64 or header[:4] != b"\x7fELF" or header[4] != 2 or header[5] != 1:
            return False
        (phoff,) = struct.unpack_from("<Q", header, 32)
        phentsize, phnum = struct.unpack_from("<HH", header, 54)
        file.seek(phoff)
        table = file.read(phentsize * phnum)
    pt_interp = 3
    return all(
        struct.unpack_from("<I", table, index * phentsize)[0] != pt_interp for index in range(phnum)
    )


def missing_packages(*, go: bool = False) -> list[str]:
    """The Debian packages whose tools are absent (empty when everything is there)."""
    tools = {**TOOLS, **(GO_TOOLS if go else {})}
    missing = {package for tool, package in tools.items() if which(tool) is None}
    if not (BUSYBOX.is_file() and _is_static_elf(BUSYBOX.resolve())):
        missing.add("busybox-static")
    if go and not GO_RUNC_SOURCE.is_file():
        missing.add("golang-github-containerd-go-runc-dev")
    return sorted(missing)


def capture(
    command: Sequence[str | os.PathLike[str]],
    *,
    timeout: float = COMMAND_TIMEOUT,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``command`` to completion with stdin /dev/null, capturing text output, whatever its
    exit code."""
    return subprocess.run(
        [os.fspath(part) for part in command],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=cwd,
        check=False,
    )


def run(
    command: Sequence[str | os.PathLike[str]],
    *,
    timeout: float = COMMAND_TIMEOUT,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> str:
    """Run a helper tool to completion; its stdout, or HarnessError with its stderr."""
    result = capture(command, timeout=timeout, env=env, cwd=cwd)
    if result.returncode != 0:
        raise HarnessError(
            f"{' '.join(map(str, command))} exited with {result.returncode}: "
            f"{result.stderr.strip() or result.stdout.strip()}"
        )
    return result.stdout


@dataclass(frozen=True)
class BusyboxImage:
    """busybox-static as a one-layer OCI image: the OCI layout (for ``umoci unpack``) and a
    docker-archive tarball of it (for ``ctr images import``)."""

    layout: Path
    tag: str
    archive: Path
    name: str = IMAGE

    def unpack(self, bundle: Path) -> Path:
        """An OCI runtime bundle (``config.json`` + ``rootfs``) of the image in ``bundle``."""
        command = [_tool("umoci"), "unpack", "--image", f"{self.layout}:{self.tag}", str(bundle)]
        if os.geteuid() != 0:
            command.insert(2, "--rootless")
        run(command)
        return bundle


def _tool(name: str) -> str:
    path = which(name)
    if path is None:
        raise HarnessError(f"{name} not found: install Debian's {TOOLS.get(name, name)}")
    return path


def build_busybox_image(directory: Path, *, name: str = IMAGE) -> BusyboxImage:
    """Build the image in ``directory`` (no registry: umoci makes the layer from a rootfs of
    /bin/busybox and its applet links, skopeo writes the archive)."""
    umoci = _tool("umoci")
    directory.mkdir(parents=True, exist_ok=True)
    layout, tag, bundle = directory / "oci", "busybox", directory / "bundle"
    reference = f"{layout}:{tag}"
    run([umoci, "init", "--layout", layout])
    run([umoci, "new", "--image", reference])
    rootless = ["--rootless"] if os.geteuid() != 0 else []
    run([umoci, "unpack", *rootless, "--image", reference, bundle])
    _populate_rootfs(bundle / "rootfs")
    run([umoci, "repack", "--image", reference, bundle])
    run(
        [
            umoci,
            "config",
            "--image",
            reference,
            "--config.cmd",
            "sh",
            "--config.env",
            "PATH=/bin:/sbin:/usr/bin:/usr/sbin",
            "--config.workingdir",
            "/",
        ]
    )
    policy = directory / "policy.json"  # the host's /etc/containers policy is not ours to trust
    policy.write_text(json.dumps({"default": [{"type": "insecureAcceptAnything"}]}))
    archive = directory / "busybox.tar"
    run(
        [
            _tool("skopeo"),
            "--policy",
            policy,
            "copy",
            f"oci:{reference}",
            f"docker-archive:{archive}:{name}",
        ]
    )
    return BusyboxImage(layout=layout, tag=tag, archive=archive, name=name)


def _populate_rootfs(rootfs: Path) -> None:
    """/bin/busybox, a symlink per applet where busybox would install it, a root user."""
    (rootfs / "bin").mkdir(parents=True, exist_ok=True)
    shutil.copy2(BUSYBOX.resolve(), rootfs / "bin" / "busybox")
    for applet in run([str(BUSYBOX), "--list-full"]).split():
        link = rootfs / applet
        if link.name == "busybox" or link.exists() or link.is_symlink():
            continue
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to("/bin/busybox")
    etc = rootfs / "etc"
    etc.mkdir(exist_ok=True)
    (etc / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (etc / "group").write_text("root:x:0:\n")
    for empty in ("tmp", "root", "proc", "sys", "dev"):
        (rootfs / empty).mkdir(exist_ok=True)


def shim_socket(address: Path, namespace: str, container_id: str) -> Path:
    """The socket containerd's runc shim binds for one container of one containerd."""
    digest = hashlib.sha256(os.path.join(address, namespace, container_id).encode()).hexdigest()
    return SHIM_SOCKET_DIR / digest


def _mounts_under(directory: Path) -> list[str]:
    """Mount points at or below ``directory`` (from /proc/self/mountinfo, octal escapes
    decoded)."""
    prefix = str(directory.resolve())
    found = []
    with open("/proc/self/mountinfo", encoding="utf-8") as table:
        for line in table:
            point = line.split()[4]
            point = point.encode().decode("unicode_escape")
            if point == prefix or point.startswith(prefix + "/"):
                found.append(point)
    return found


def _remove_cgroups(namespace: str) -> None:
    """Remove the per-namespace parent cgroups (``<hierarchy>/<namespace>``) that runc makes
    for containerd's containers and leaves behind, empty; rmdir fails on one still in use."""
    with open("/proc/self/mountinfo", encoding="utf-8") as table:
        for line in table:
            fields = line.split()
            fstype = fields[fields.index("-") + 1]
            if fstype in {"cgroup", "cgroup2"}:
                with contextlib.suppress(OSError):
                    (Path(fields[4]) / namespace).rmdir()


@dataclass(frozen=True)
class TaskRow:
    """One line of ``ctr task ls``."""

    id: str
    pid: int
    status: str


class Containerd:
    """A containerd of our own in ``directory`` (start, use with `ctr`, `stop`)."""

    def __init__(self, directory: Path, *, namespace: str = NAMESPACE) -> None:
        self.directory = Path(directory).resolve()
        self.namespace = namespace
        self.address = self.directory / "grpc.sock"
        self.config = self.directory / "config.toml"
        self.log = self.directory / "containerd.log"
        self.fifo_dir = self.directory / "fifo"
        self.process: subprocess.Popen[bytes] | None = None
        self._ids: set[str] = set()
        self._created_run_dirs: list[Path] = []
        self._counter = 0
        self._ctr = _tool("ctr")

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        """Write the config, start containerd (own session, no inherited fds) and wait until
        it answers ``ctr version``."""
        binary = _tool("containerd")
        self.directory.mkdir(parents=True, exist_ok=True)
        self.fifo_dir.mkdir(exist_ok=True)
        self._created_run_dirs = [path for path in RUN_DIRS if not path.exists()]
        self.config.write_text(self._config_text())
        env = dict(
            os.environ,
            PATH=f"{os.environ.get('PATH', '')}:{SYSTEM_PATH}",
            # pyrunhcs (run by containerd's shim) talks to an emulator of this containerd's own,
            # auto-started on first use and stopped in `stop`.
            PYHCS_BACKEND="emulator",
            PYHCS_EMULATOR_DIR=str(self.emulator_dir),
        )
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [binary, "--config", str(self.config)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                close_fds=True,
                start_new_session=True,
                env=env,
            )
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            if self.process.poll() is not None:
                raise HarnessError(
                    f"containerd exited with {self.process.returncode} while starting: "
                    f"{self._log_tail()}"
                )
            if self.address.exists():
                probe = self.ctr("version", check=False, timeout=10)
                if probe.returncode == 0:
                    return
            if time.monotonic() > deadline:
                self.stop()
                raise HarnessError(
                    f"containerd did not answer within {READY_TIMEOUT:.0f} s: {self._log_tail()}"
                )
            time.sleep(0.02)  # readiness poll, bounded by the deadline above

    def _config_text(self) -> str:
        d = self.directory
        return (
            "version = 2\n"
            f'root = "{d / "root"}"\n'
            f'state = "{d / "state"}"\n'
            # CRI (and its CNI setup) is not needed for ctr and only slows the start.
            'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
            "[grpc]\n"
            f'  address = "{self.address}"\n'
            "[ttrpc]\n"
            f'  address = "{d / "ttrpc.sock"}"\n'
            "[debug]\n"
            f'  address = "{d / "debug.sock"}"\n'
        )

    def _log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"

    @property
    def emulator_dir(self) -> Path:
        return self.directory / "emulator"

    def _stop_emulator(self, problems: list[str]) -> None:
        """Stop the emulator service pyrunhcs auto-started, by the pid it recorded."""
        try:
            pid = int((self.emulator_dir / "service.pid").read_text())
        except (FileNotFoundError, ValueError):
            return
        if not emulator_cli.stop(pid, STOP_TIMEOUT):
            problems.append(f"the emulator service {pid} ignored SIGTERM")
            os.kill(pid, signal.SIGKILL)

    def stop(self) -> None:
        """Remove whatever is left in our namespace, stop containerd by its pid, remove the shim
        sockets of our containers and the /run directories we caused. HarnessError if
        containerd would not stop or a mount was left under our directory (unmounted first)."""
        problems: list[str] = []
        if self.process is not None and self.process.poll() is None:
            try:
                self.remove(None)
            finally:
                self.process.send_signal(signal.SIGTERM)
                try:
                    self.process.wait(timeout=STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    problems.append(f"containerd ignored SIGTERM for {STOP_TIMEOUT:.0f} s")
                    self.process.kill()
                    self.process.wait(timeout=STOP_TIMEOUT)
        self._stop_emulator(problems)
        for container_id in sorted(self._ids):
            socket = shim_socket(self.address, self.namespace, container_id)
            if socket.is_socket():
                socket.unlink()
        for directory in reversed(self._created_run_dirs):
            with contextlib.suppress(OSError):  # not empty: a containerd started since uses it
                directory.rmdir()
        _remove_cgroups(self.namespace)
        leftover = _mounts_under(self.directory)
        for point in reversed(leftover):
            subprocess.run(["umount", "-l", point], check=False, timeout=COMMAND_TIMEOUT)
        if leftover:
            problems.append(f"mounts left under {self.directory}: {leftover}")
        if problems:
            raise HarnessError("; ".join(problems))

    def remove(self, container_ids: Iterable[str] | None) -> list[str]:
        """Kill (SIGKILL) and delete the tasks of ``container_ids`` (None: every one in our
        namespace) and remove the containers; what was found. Tests that fail half-way leave
        containers behind: this keeps their shims from outliving the test."""
        wanted = None if container_ids is None else set(container_ids)
        found: list[str] = []
        for row in self.tasks():
            if wanted is not None and row.id not in wanted:
                continue
            self._ids.add(row.id)
            found.append(f"task {row.id} ({row.status})")
            if row.status != "STOPPED":
                self.ctr("task", "kill", "--signal", "SIGKILL", row.id, check=False)
                self.wait_status(row.id, {"STOPPED"}, check=False)
            self.ctr("task", "delete", row.id, check=False)
        for container_id in self.ctr("containers", "ls", "--quiet").stdout.split():
            if wanted is not None and container_id not in wanted:
                continue
            self._ids.add(container_id)
            found.append(f"container {container_id}")
            self.ctr("containers", "delete", container_id, check=False)
        return found

    def __enter__(self) -> Containerd:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- using it ---------------------------------------------------------------------------

    def new_id(self, prefix: str = "c") -> str:
        """A container id unique in this containerd, remembered for cleaning up."""
        self._counter += 1
        container_id = f"{prefix}-{os.getpid()}-{self._counter}"
        self._ids.add(container_id)
        return container_id

    def ctr_command(self, *args: str) -> list[str]:
        """The argv of ``ctr`` against this containerd and namespace."""
        return [self._ctr, "--address", str(self.address), "--namespace", self.namespace, *args]

    def ctr(
        self, *args: str, check: bool = True, timeout: float = COMMAND_TIMEOUT
    ) -> subprocess.CompletedProcess[str]:
        """Run ``ctr ARGS`` to completion (stdin /dev/null); with ``check`` a non-zero exit
        raises HarnessError with ctr's stderr."""
        result = capture(self.ctr_command(*args), timeout=timeout)
        if check and result.returncode != 0:
            raise HarnessError(
                f"ctr {' '.join(args)} exited with {result.returncode}: {result.stderr.strip()}"
            )
        return result

    def import_image(self, image: BusyboxImage) -> None:
        """``ctr images import`` of the image's archive into our namespace."""
        self.ctr("images", "import", str(image.archive))

    def runtime_flags(self, binary: Path | str) -> list[str]:
        """``ctr run`` options that make the runc shim call ``binary`` in runc's place, with a
        state root of its own."""
        root = self.directory / "runtime-root" / Path(binary).name
        return ["--runc-binary", str(binary), "--runc-root", str(root)]

    def tasks(self) -> list[TaskRow]:
        """``ctr task ls`` parsed."""
        rows = []
        for line in self.ctr("task", "ls").stdout.splitlines()[1:]:
            task_id, pid, status = line.split()
            rows.append(TaskRow(task_id, int(pid), status))
        return rows

    def task(self, container_id: str) -> TaskRow | None:
        """The task of ``container_id``, if it has one."""
        return next((row for row in self.tasks() if row.id == container_id), None)

    def wait_status(
        self,
        container_id: str,
        statuses: Iterable[str],
        *,
        timeout: float = 20.0,
        check: bool = True,
    ) -> TaskRow | None:
        """Poll ``ctr task ls`` (ctr 1.6 has no ``task wait``) until the task is in one of
        ``statuses``; HarnessError after ``timeout`` when ``check``."""
        wanted = set(statuses)
        deadline = time.monotonic() + timeout
        while True:
            row = self.task(container_id)
            if row is not None and row.status in wanted:
                return row
            if time.monotonic() > deadline:
                if check:
                    raise HarnessError(
                        f"task {container_id} not {sorted(wanted)} after {timeout:.0f} s: {row}"
                    )
                return row
            time.sleep(0.02)  # bounded poll: the shim reports the exit asynchronously

    def leftover_shim_sockets(self) -> list[Path]:
        """Shim sockets of our containers still present (a running shim owns one)."""
        return [
            path
            for container_id in sorted(self._ids)
            if (path := shim_socket(self.address, self.namespace, container_id)).exists()
        ]


class Runtime:
    """One runc-compatible binary driven through ``ctr`` and the runc shim of a `Containerd`:
    builds the ``ctr`` command lines and removes the containers it named (`cleanup`)."""

    def __init__(self, containerd: Containerd, binary: Path) -> None:
        self.containerd = containerd
        self.binary = binary
        self.ids: list[str] = []

    def new_id(self, prefix: str = "c") -> str:
        """A fresh container id, removed by `cleanup`."""
        container_id = self.containerd.new_id(prefix)
        self.ids.append(container_id)
        return container_id

    def run_command(
        self,
        container_id: str,
        *command: str,
        detach: bool = False,
        rm: bool = False,
        tty: bool = False,
        image: str = IMAGE,
    ) -> list[str]:
        """The argv of ``ctr run`` of ``command`` in a new container, with this runtime."""
        options = ["--fifo-dir", str(self.containerd.fifo_dir)]
        options += self.containerd.runtime_flags(self.binary)
        options += ["--detach"] if detach else []
        options += ["--rm"] if rm else []
        options += ["--tty"] if tty else []
        return self.containerd.ctr_command("run", *options, image, container_id, *command)

    def exec_command(
        self, container_id: str, exec_id: str, *command: str, tty: bool = False
    ) -> list[str]:
        """The argv of ``ctr task exec`` of ``command`` in a running container."""
        options = ["--fifo-dir", str(self.containerd.fifo_dir), "--exec-id", exec_id]
        options += ["--tty"] if tty else []
        return self.containerd.ctr_command("task", "exec", *options, container_id, *command)

    def run(self, *argv: str, timeout: float = COMMAND_TIMEOUT) -> subprocess.CompletedProcess[str]:
        """Run a ctr command line to completion (stdin /dev/null), whatever its exit code."""
        return capture(argv, timeout=timeout)

    def cleanup(self) -> list[str]:
        """Remove the containers of `new_id` still present; what was left."""
        return self.containerd.remove(self.ids)
