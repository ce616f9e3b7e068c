"""``pyrunhcs``: runc's command line over HCS, as containerd's runc shim and go-runc call it.

Global flags come before the command (``--root``, ``--log``, ``--log-format text|json``,
``--debug``, runhcs's ``--owner``); flags take ``--flag value`` or ``--flag=value``, one or two
dashes, as Go's flag package does. Outputs, wrong-state errors, their messages and exit codes
are runc's: an error exits 1 (``exec``: 255) after it was logged (`pyhcs.runtime.logs`).

Every command is a short process. ``state``, ``list``, ``ps``, ``kill``, ``start``, ``pause``
and ``resume`` read the state directory and talk to the container's shim over its socket: none
of them imports pyhcs's HCS layer, so they answer in milliseconds. ``create``, ``run`` and
``exec`` start a shim (`pyhcs.runtime.shim`), which holds the HCS handles. ``delete`` opens
HCS only when a shim could not release the systems itself.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, Final, NoReturn

from pyhcs.runtime.logs import Logger, rfc3339_nano
from pyhcs.runtime.state import (
    OCI_VERSION,
    STATE,
    Container,
    NotExistError,
    StateError,
    alive,
    containers,
    default_root,
    owner_name,
    read_json,
    write_json,
    write_pid_file,
)

PROG: Final = "pyrunhcs"
#: How long a command waits for a shim to say it is ready, or to exit after ``delete``.
SHIM_TIMEOUT: Final = float(os.environ.get("PYRUNHCS_SHIM_TIMEOUT", "120"))
#: Exit status of a failed ``exec`` (runc's).
EXEC_FAILED: Final = 255


class CommandError(Exception):
    """End the command: log ``message`` as an error and exit with ``code``."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


class UsageError(CommandError):
    """Bad command line: runc prints "Incorrect Usage" and the command's usage first."""

    def __init__(self, message: str, usage: str, *, detail: bool = True) -> None:
        super().__init__(message)
        self.usage = usage
        self.detail = detail


# -- the command line --------------------------------------------------------------------------


class Flag:
    """One flag: its names (first is the long one), whether it takes a value, repeats."""

    def __init__(self, *names: str, value: bool = True, many: bool = False, default: Any = None):
        self.names = names
        self.value = value
        self.many = many
        self.default: Any = [] if many else (default if value else False)

    @property
    def dest(self) -> str:
        return self.names[0].replace("-", "_")


GLOBAL_FLAGS: Final = (
    Flag("root"),
    Flag("log", default=""),
    Flag("log-format", default="text"),
    Flag("debug", value=False),
    Flag("owner", default=PROG),
    Flag("systemd-cgroup", value=False),  # accepted, no meaning on HCS
    Flag("rootless"),
    Flag("criu"),
    Flag("version", "v", value=False),
    Flag("help", "h", value=False),
)


class Command:
    """A subcommand: flags, positional arguments, whether flags may follow arguments
    (urfave/cli reorders them, except where runc sets SkipArgReorder)."""

    def __init__(
        self,
        usage: str,
        flags: Sequence[Flag],
        nargs: tuple[int, int | None],
        handler: Callable[[Context, dict[str, Any], list[str]], int],
        *,
        reorder: bool = True,
    ) -> None:
        self.usage = usage
        self.flags = (*flags, Flag("help", "h", value=False))
        self.nargs = nargs
        self.handler = handler
        self.reorder = reorder


def _parse_bool(text: str, name: str) -> bool:
    lowered = text.lower()
    if lowered in ("1", "t", "true"):
        return True
    if lowered in ("0", "f", "false"):
        return False
    raise ValueError(f'invalid boolean value "{text}" for -{name}: parse error')


def parse_flags(
    flags: Sequence[Flag], args: Sequence[str], *, reorder: bool, stop_at_first: bool = False
) -> tuple[dict[str, Any], list[str]]:
    """Go-flag-style parsing: ``-f``/``--f``, ``--f=v``/``--f v``; with ``reorder``, flags may
    follow positional arguments (up to ``--``). ValueError with Go's message on a bad flag."""
    by_name = {name: flag for flag in flags for name in flag.names}
    values: dict[str, Any] = {f.dest: (list(f.default) if f.many else f.default) for f in flags}
    positional: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg == "--":
            positional.extend(args[i:])
            break
        if not arg.startswith("-") or arg == "-":
            positional.append(arg)
            if stop_at_first or not reorder:
                positional.extend(args[i:])
                break
            continue
        name, has_value, text = arg.lstrip("-").partition("=")
        flag = by_name.get(name)
        if flag is None or not name:
            raise ValueError(f"flag provided but not defined: -{name}")
        if not flag.value:
            values[flag.dest] = _parse_bool(text, name) if has_value else True
            continue
        if not has_value:
            if i >= len(args):
                raise ValueError(f"flag needs an argument: -{name}")
            text = args[i]
            i += 1
        if flag.many:
            values[flag.dest].append(text)
        else:
            values[flag.dest] = text
    return values, positional


class Context:
    """The global options of one invocation."""

    def __init__(self, options: dict[str, Any]) -> None:
        self.root = os.path.abspath(options["root"]) if options["root"] else default_root()
        self.log_path = os.path.abspath(options["log"]) if options["log"] else ""
        self.log_format = options["log_format"]
        self.debug = bool(options["debug"])
        self.owner = options["owner"]
        self.log = Logger(self.log_path, self.log_format, debug=self.debug)

    def container(self, container_id: str) -> Container:
        try:
            return Container(self.root, container_id)
        except StateError as exc:
            raise CommandError(str(exc)) from None


# -- shims -------------------------------------------------------------------------------------


def _package_root() -> str:
    """The directory holding this ``pyhcs`` package (so the shim runs the same code)."""
    here = os.path.dirname(os.path.abspath(__file__))
    return os.path.dirname(os.path.dirname(here))


def spawn_shim(ctx: Context, mode: str, directory: str, request: dict[str, Any]) -> Any:
    """Start a shim (the caller's fds 0/1/2 are its to relay) and wait for it to say it is
    ready. Returns the Popen; CommandError with the shim's error otherwise (the shim has exited)."""
    import socket  # noqa: PLC0415
    import subprocess  # noqa: PLC0415

    from pyhcs.runtime import channel  # noqa: PLC0415 (sockets: not for state/list)

    parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    env = dict(os.environ)
    path = env.get("PYTHONPATH")
    env["PYTHONPATH"] = _package_root() + (os.pathsep + path if path else "")
    command = [
        sys.executable,
        "-m",
        "pyhcs.runtime.shim",
        mode,
        directory,
        str(child.fileno()),
        ctx.log_path,
        ctx.log_format,
        "1" if ctx.debug else "0",
    ]
    try:
        # A session of its own: a terminal's ^C reaches the command, which passes it on, not
        # the shim directly; no fd beyond 0/1/2 and its socket leaks into it.
        shim = subprocess.Popen(
            command, pass_fds=(child.fileno(),), start_new_session=True, env=env
        )
    finally:
        child.close()
    try:
        parent.settimeout(SHIM_TIMEOUT)
        channel.send_message(parent, request)
        reply = channel.read_message(parent)
    except TimeoutError:
        shim.kill()
        shim.wait(SHIM_TIMEOUT)
        raise CommandError(f"the shim did not get ready in {SHIM_TIMEOUT:g} s") from None
    except (OSError, ValueError) as exc:
        reply = {"error": f"the shim failed: {exc}"}
    finally:
        parent.close()
    if not isinstance(reply, dict) or "error" in reply or not reply.get("ok"):
        shim.wait(SHIM_TIMEOUT)
        if isinstance(reply, dict) and "error" in reply:
            raise CommandError(str(reply["error"]))
        raise CommandError(
            f"the shim exited with status {shim.returncode} before it was ready"
            + _tail(os.path.join(directory, "shim.stderr"))
        )
    return shim


def _tail(path: str) -> str:
    try:
        with open(path, "rb") as f:
            lines = f.read().decode(errors="replace").strip().splitlines()
    except FileNotFoundError:
        return ""
    return f": {lines[-1]}" if lines else ""


class Forwarder:
    """Pass the signals a foreground ``run``/``exec`` receives on to its shim (which passes
    them on to the process), as runc's signal proxy does; one that arrives before the shim
    exists is delivered once it does."""

    SIGNALS: Final = ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2")

    def __init__(self) -> None:
        import signal  # noqa: PLC0415

        self.shim: Any = None
        self.pending: list[int] = []
        self.previous = {
            getattr(signal, name): signal.signal(getattr(signal, name), self._received)
            for name in self.SIGNALS
        }

    def _received(self, signo: int, _frame: object) -> None:
        if self.shim is None:
            self.pending.append(signo)
        elif self.shim.poll() is None:
            os.kill(self.shim.pid, signo)

    def attach(self, shim: Any) -> None:
        self.shim = shim
        for signo in self.pending:
            self._received(signo, None)
        self.pending.clear()

    def restore(self) -> None:
        import signal  # noqa: PLC0415

        for signo, handler in self.previous.items():
            signal.signal(signo, handler)


def wait_child(shim: Any) -> int:
    """The exit status of a shim this command started (128+N if a signal N killed it)."""
    code = int(shim.wait())  # as long as the container's process lives
    return 128 - code if code < 0 else code


def wait_gone(record: dict[str, Any] | None, timeout: float) -> bool:
    """Wait (bounded) until the process a shim.json record names has exited."""
    if not alive(record):
        return True
    assert record is not None
    deadline = time.monotonic() + timeout
    pidfd = -1
    try:
        pidfd = os.pidfd_open(int(record["pid"]))
    except (AttributeError, OSError):  # no pidfd here (old kernel, not Linux): poll /proc
        pidfd = -1
    try:
        if pidfd >= 0 and alive(record):
            import select  # noqa: PLC0415

            select.select([pidfd], [], [], max(0.0, deadline - time.monotonic()))
        while alive(record) and time.monotonic() < deadline:
            time.sleep(0.01)  # without a pidfd: a bounded poll of /proc
    finally:
        if pidfd >= 0:
            os.close(pidfd)
    return not alive(record)


def _tty_raw(enable: bool) -> Callable[[], None]:
    """Put this command's terminal (fd 0) in raw mode while a foreground process has a
    console of its own, so keys go through untouched; returns the undo."""
    if not enable or not os.isatty(0):
        return lambda: None
    import termios  # noqa: PLC0415
    import tty  # noqa: PLC0415

    saved = termios.tcgetattr(0)
    tty.setraw(0)
    return lambda: termios.tcsetattr(0, termios.TCSADRAIN, saved)


# -- commands ----------------------------------------------------------------------------------


def _status_of(c: Container) -> tuple[str, dict[str, Any], dict[str, Any] | None]:
    try:
        c.state()
    except NotExistError as exc:
        raise CommandError(str(exc)) from None
    return c.status()


def _spec_dict(spec: Any) -> dict[str, Any]:
    """The loaded spec as a plain dict (the converter may hand back a model)."""
    if isinstance(spec, dict):
        return spec
    dump = getattr(spec, "model_dump", None)
    if dump is None:
        raise TypeError(f"unexpected spec type {type(spec).__name__}")
    result: dict[str, Any] = dump(by_alias=True, exclude_none=True)
    return result


def _plan_document(plan: Any) -> dict[str, Any]:
    return {
        "container": plan.container,
        "systems": [{"system_id": s.system_id, "document": s.document} for s in plan.systems],
        "init": plan.init,
        "terminal": plan.terminal,
        "resources": list(plan.resources.records),
    }


def create_container(
    ctx: Context,
    container_id: str,
    opts: dict[str, Any],
    *,
    detach: bool,
    verb: str,
) -> tuple[Container, Any]:
    """``create``: convert the bundle, record the state, start the shim (which creates and
    starts the systems). Nothing is left behind on failure."""
    c = ctx.container(container_id)
    bundle = os.path.abspath(opts.get("bundle") or os.getcwd())
    console = opts.get("console_socket") or ""
    try:
        from pathlib import Path  # noqa: PLC0415

        from pyhcs.runtime import convert  # noqa: PLC0415

        spec = convert.load_bundle(Path(bundle))
        plan = convert.plan(spec, Path(bundle), container_id, owner=ctx.owner)
    except (ValueError, OSError) as exc:
        raise CommandError(f"{PROG} {verb} failed: {exc}") from None
    if plan.terminal and not console and detach:
        raise CommandError("cannot allocate tty if runc will detach without setting console socket")
    if console and not plan.terminal:
        raise CommandError("cannot use console socket if runc will not detach or allocate tty")
    raw = _spec_dict(spec)
    root = raw.get("root") if isinstance(raw.get("root"), dict) else None
    rootfs = ""
    if root and root.get("path"):
        rootfs = os.path.join(bundle, str(root["path"]))
    os.makedirs(ctx.root, mode=0o700, exist_ok=True)
    try:
        os.mkdir(c.dir, 0o700)
    except FileExistsError:
        raise CommandError(
            f"{PROG} {verb} failed: container with given ID already exists"
        ) from None
    try:
        with c.locked():
            write_json(
                c.path(STATE),
                {
                    "id": container_id,
                    "ociVersion": raw.get("ociVersion") or OCI_VERSION,
                    "bundle": bundle,
                    "rootfs": rootfs,
                    "created": rfc3339_nano(time.time_ns()),
                    "owner": ctx.owner,
                    "annotations": plan.annotations,
                    "plan": _plan_document(plan),
                },
            )
            _attach_layers(c, plan, verb)
            request = {"console_socket": os.path.abspath(console) if console else ""}
            shim = spawn_shim(ctx, "init", c.dir, request)
    except BaseException:
        _release_attached(c)
        c.remove()
        raise
    if opts.get("pid_file"):
        write_pid_file(opts["pid_file"], shim.pid)
    ctx.log.debug(f"created {container_id}: shim pid {shim.pid}")
    return c, shim


def _attach_layers(c: Container, plan: Any, verb: str) -> None:
    """Attach the storage filters the plan needs, each recorded in the state as soon as it is
    attached (so ``delete --force`` detaches it even after a failure halfway)."""
    from pyhcs.errors import HcsError  # noqa: PLC0415
    from pyhcs.runtime import resources  # noqa: PLC0415

    for record in plan.attach:
        try:
            resources.attach(record)
        except HcsError as exc:
            raise CommandError(f"{PROG} {verb} failed: {exc}") from None
        state = read_json(c.path(STATE))
        state["plan"]["resources"].append(record)
        write_json(c.path(STATE), state)


def _release_attached(c: Container) -> None:
    """Undo `_attach_layers` of a create that failed (the state goes with it)."""
    from pyhcs.runtime import resources  # noqa: PLC0415

    try:
        state = read_json(c.path(STATE))
    except (OSError, ValueError):
        return
    records = (state.get("plan") or {}).get("resources") or []
    try:
        resources.release(records)
    except resources.ReleaseError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)


def cmd_create(ctx: Context, opts: dict[str, Any], args: list[str]) -> int:
    create_container(ctx, args[0], opts, detach=True, verb="create")
    return 0


def _start(c: Container) -> None:
    from pyhcs.runtime import channel  # noqa: PLC0415 (sockets: not for state/list)

    status, _record, _shim = _status_of(c)
    if status == "stopped":
        raise CommandError("cannot start a container that has stopped")
    if status == "running":
        raise CommandError("cannot start an already running container")
    if status != "created":
        raise CommandError(f"cannot start a container in the {status} state")
    try:
        channel.request(c.dir, {"op": "start"})
    except channel.ShimGoneError:
        raise CommandError("cannot start a container that has stopped") from None
    except channel.ShimError as exc:
        raise CommandError(str(exc)) from None


def cmd_start(ctx: Context, _opts: dict[str, Any], args: list[str]) -> int:
    c = ctx.container(args[0])
    with _locked(c):
        _start(c)
    return 0


def cmd_run(ctx: Context, opts: dict[str, Any], args: list[str]) -> int:
    detach = bool(opts["detach"])
    forwarder = None if detach else Forwarder()
    try:
        return _run(ctx, opts, args, forwarder)
    finally:
        if forwarder is not None:
            forwarder.restore()


def _run(ctx: Context, opts: dict[str, Any], args: list[str], forwarder: Forwarder | None) -> int:
    detach = forwarder is None
    c, shim = create_container(ctx, args[0], opts, detach=detach, verb="run")
    if forwarder is not None:
        forwarder.attach(shim)
    terminal = bool(c.state()["plan"].get("terminal"))
    try:
        with _locked(c):
            _start(c)
    except CommandError:
        if not detach:
            shim.wait(SHIM_TIMEOUT)
            with _locked(c):
                _delete(ctx, c, force=True)
        raise
    if detach:
        return 0
    restore = _tty_raw(terminal)
    try:
        code = wait_child(shim)
    finally:
        restore()
    if not opts["keep"]:
        with _locked(c):
            _delete(ctx, c, force=True)
    return code


def _locked(c: Container) -> Any:
    """The container's lock, "container does not exist" when there is none."""
    import contextlib  # noqa: PLC0415

    @contextlib.contextmanager
    def guard() -> Any:
        try:
            with c.locked():
                yield
        except NotExistError:
            raise CommandError("container does not exist") from None
        except StateError as exc:
            raise CommandError(str(exc)) from None

    return guard()


def _exec_parameters(
    state: dict[str, Any], opts: dict[str, Any], args: list[str]
) -> dict[str, Any]:
    from pyhcs.runtime.procspec import ProcessSpecError, environment, process_parameters  # noqa: PLC0415

    try:
        if opts["process"]:
            with open(opts["process"], "rb") as f:
                process = json.loads(f.read())
            params = process_parameters(process)
        else:
            import subprocess  # noqa: PLC0415

            if not args:
                raise ProcessSpecError("args must not be empty")
            base = dict(state["plan"].get("init") or {})
            params = {
                "CommandLine": subprocess.list2cmdline(args),
                "WorkingDirectory": opts["cwd"] or base.get("WorkingDirectory") or "/",
                "Environment": {**base.get("Environment", {}), **environment(opts["env"])},
            }
            if base.get("User"):
                params["User"] = base["User"]
            if opts["user"]:
                params["User"] = opts["user"]
            if opts["tty"]:
                params["EmulateConsole"] = True
            if opts["cwd"]:
                process_parameters({"args": args, "cwd": opts["cwd"]})  # validates the cwd
    except (OSError, ValueError) as exc:
        raise CommandError(str(exc)) from None
    return params


def _launch_exec(ctx: Context, c: Container, opts: dict[str, Any], args: list[str]) -> Any:
    """Check the container can take an exec, then start the exec shim; its Popen."""
    with _locked(c):
        state = c.state()
        status, _record, _shim = c.status()
        if status == "stopped":
            raise CommandError("cannot exec in a stopped container")
        if status == "paused" and not opts["ignore_paused"]:
            raise CommandError(
                "cannot exec in a paused container (use --ignore-paused to override)"
            )
        params = _exec_parameters(state, opts, args)
        terminal = bool(params.get("EmulateConsole"))
        console = opts["console_socket"]
        if terminal and opts["detach"] and not console:
            raise CommandError(
                "cannot allocate tty if runc will detach without setting console socket"
            )
        if console and not terminal:
            raise CommandError("cannot use console socket if runc will not detach or allocate tty")
        request = {
            "process": params,
            "console_socket": os.path.abspath(console) if console else "",
        }
        return spawn_shim(ctx, "exec", c.dir, request), terminal


def cmd_exec(ctx: Context, opts: dict[str, Any], args: list[str]) -> int:
    forwarder = None if opts["detach"] else Forwarder()
    try:
        try:
            c = ctx.container(args[0])
            shim, terminal = _launch_exec(ctx, c, opts, args[1:])
        except CommandError as exc:
            raise CommandError(f"exec failed: {exc}", EXEC_FAILED) from None
        if opts["pid_file"]:
            write_pid_file(opts["pid_file"], shim.pid)
        if forwarder is None:
            return 0
        forwarder.attach(shim)
        restore = _tty_raw(terminal)
        try:
            return wait_child(shim)
        finally:
            restore()
    finally:
        if forwarder is not None:
            forwarder.restore()


def cmd_kill(ctx: Context, opts: dict[str, Any], args: list[str]) -> int:
    from pyhcs.runtime import channel, signals  # noqa: PLC0415

    c = ctx.container(args[0])
    everyone = bool(opts["all"])
    with _locked(c):
        status, record, _shim = _status_of(c)
        try:
            delivery = signals.parse(
                args[1] if len(args) > 1 else "", linux=record.get("os") == "linux"
            )
        except signals.SignalError as exc:
            raise CommandError(str(exc)) from None
        if status in ("stopped", "creating"):
            if everyone:
                return 0
            raise CommandError("container not running")
        request = {
            "op": "kill",
            "terminate": delivery.terminate,
            "signal": delivery.signal,
            "number": delivery.number,
            "all": everyone,
        }
        try:
            channel.request(c.dir, request)
        except channel.ShimGoneError:
            if not everyone:
                raise CommandError("container not running") from None
        except channel.ShimError as exc:
            if not (everyone and str(exc) in ("container not running", "no such process")):
                raise CommandError(str(exc)) from None
    return 0


def _release_systems(c: Container, state: dict[str, Any]) -> None:
    """Terminate the systems a shim could not release (it crashed, was killed, or a create
    did not finish); a system HCS no longer has is fine."""
    from pyhcs import ComputeSystem  # noqa: PLC0415
    from pyhcs.errors import HcsError, NotFoundError  # noqa: PLC0415

    plan = state.get("plan") or {}
    for entry in reversed(plan.get("systems") or []):
        try:
            with ComputeSystem.open(entry["system_id"]) as system:
                system.terminate()
        except NotFoundError:
            continue
        except HcsError as exc:
            raise CommandError(
                f"container {c.id}: could not release {entry['system_id']}: {exc}"
            ) from None


def _release_resources(c: Container, state: dict[str, Any]) -> None:
    from pyhcs.runtime import resources  # noqa: PLC0415

    records = (state.get("plan") or {}).get("resources") or []
    try:
        resources.release(records)
    except resources.ReleaseError as exc:
        raise CommandError(f"container {c.id}: {exc} (the state is kept: retry delete)") from None


def _stop_shim(c: Container, shim: dict[str, Any] | None, *, force: bool) -> None:
    """Ask the shim to terminate the container and wait until it exited; a shim that does
    not answer is killed (``--force``)."""
    import signal  # noqa: PLC0415

    from pyhcs.runtime import channel  # noqa: PLC0415 (sockets: not for state/list)

    try:
        channel.request(c.dir, {"op": "destroy"}, timeout=SHIM_TIMEOUT)
    except channel.ShimGoneError:
        pass
    except channel.ShimError as exc:
        if not force:
            raise CommandError(str(exc)) from None
    if wait_gone(shim, SHIM_TIMEOUT):
        return
    if not force:
        raise CommandError(f"container {c.id}: the shim did not exit in {SHIM_TIMEOUT:g} s")
    assert shim is not None
    if alive(shim):
        os.kill(int(shim["pid"]), signal.SIGKILL)
    if not wait_gone(shim, SHIM_TIMEOUT):
        raise CommandError(f"container {c.id}: the shim {shim['pid']} survived SIGKILL")


def _delete(ctx: Context, c: Container, *, force: bool) -> None:
    try:
        state = c.state()
    except NotExistError:
        # A create that never finished: only --force clears it (runc says it does not exist).
        if not force:
            raise CommandError("container does not exist") from None
        shim = c.shim()
        if alive(shim):
            _stop_shim(c, shim, force=True)
        c.remove()
        return
    status, record, shim = c.status()
    if status not in ("stopped", "created") and not force:
        raise CommandError(f"cannot delete container {c.id} that is not stopped: {status}")
    if status != "stopped":
        _stop_shim(c, shim, force=force)
        record = c.status_record()
    if not record.get("released"):
        _release_systems(c, state)
    _release_resources(c, state)
    c.remove()
    ctx.log.debug(f"deleted {c.id}")


def cmd_delete(ctx: Context, opts: dict[str, Any], args: list[str]) -> int:
    c = ctx.container(args[0])
    force = bool(opts["force"])
    if not c.exists():
        if force:
            return 0
        raise CommandError("container does not exist")
    try:
        with c.locked():
            _delete(ctx, c, force=force)
    except NotExistError:
        if not force:
            raise CommandError("container does not exist") from None
    except StateError as exc:
        raise CommandError(str(exc)) from None
    return 0


def _simple(op: str, allowed: tuple[str, ...], refusal: str) -> Callable[..., int]:
    def handler(ctx: Context, _opts: dict[str, Any], args: list[str]) -> int:
        from pyhcs.runtime import channel  # noqa: PLC0415 (sockets: not for state/list)

        c = ctx.container(args[0])
        with _locked(c):
            status, _record, _shim = _status_of(c)
            if status not in allowed:
                raise CommandError(refusal)
            try:
                channel.request(c.dir, {"op": op})
            except channel.ShimGoneError:
                raise CommandError(refusal) from None
            except channel.ShimError as exc:
                raise CommandError(str(exc)) from None
        return 0

    return handler


def _pids(c: Container, key: str = "pids") -> list[int]:
    """The container's pids as the caller knows them (``pids``: the init process as the pid
    of the pid file) or as the host runs them (``processes``)."""
    from pyhcs.runtime import channel  # noqa: PLC0415 (sockets: not for state/list)

    status, _record, _shim = _status_of(c)
    if status == "stopped":
        return []
    try:
        reply = channel.request(c.dir, {"op": "pids"})
    except channel.ShimGoneError:
        return []
    except channel.ShimError as exc:
        raise CommandError(str(exc)) from None
    return [int(p) for p in reply.get(key, [])]


def cmd_ps(ctx: Context, opts: dict[str, Any], args: list[str]) -> int:
    c = ctx.container(args[0])
    fmt = opts["format"]
    if fmt not in ("table", "json"):
        raise CommandError("invalid format option")
    if fmt == "json":
        _out(json.dumps(_pids(c) or None, separators=(",", ":")) + "\n")
        return 0
    pids = _pids(c, "processes")
    import subprocess  # noqa: PLC0415

    ps_args = args[1:] or ["-ef"]
    try:
        output = subprocess.run(["ps", *ps_args], capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        raise CommandError(f"ps: {exc}") from None
    lines = output.decode(errors="replace").splitlines()
    if not lines:
        return 0
    header = lines[0].split()
    if "PID" not in header:
        raise CommandError("couldn't find PID field in ps output")
    column = header.index("PID")
    wanted = set(pids)
    kept = [lines[0]]
    for line in lines[1:]:
        fields = line.split()
        if len(fields) > column and fields[column].isdigit() and int(fields[column]) in wanted:
            kept.append(line)
    _out("\n".join(kept) + "\n")
    return 0


def cmd_state(ctx: Context, _opts: dict[str, Any], args: list[str]) -> int:
    c = ctx.container(args[0])
    try:
        document = c.oci_state()
    except NotExistError as exc:
        raise CommandError(str(exc)) from None
    _out(json.dumps(document, indent=2, ensure_ascii=False))
    return 0


def cmd_list(ctx: Context, opts: dict[str, Any], _args: list[str]) -> int:
    fmt = opts["format"]
    if fmt not in ("table", "json"):
        raise CommandError(f"invalid format option {fmt!r}")
    entries = []
    for name in containers(ctx.root):
        c = Container(ctx.root, name)
        try:
            uid = os.stat(c.dir).st_uid
            entries.append(c.oci_state(owner=owner_name(uid)))
        except (NotExistError, OSError) as exc:
            sys.stderr.write(f"load container {name}: {exc}\n")
    if opts["quiet"]:
        _out("".join(f"{e['id']}\n" for e in entries))
        return 0
    if fmt == "json":
        text = json.dumps(entries or None, separators=(",", ":"), ensure_ascii=False)
        _out(_go_html_escape(text) + "\n")
        return 0
    rows = [["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]]
    rows += [
        [e["id"], str(e["pid"]), e["status"], e["bundle"], e["created"], e["owner"]]
        for e in entries
    ]
    _out(_tabulate(rows))
    return 0


def _tabulate(rows: list[list[str]]) -> str:
    """Go's tabwriter as runc sets it (min width 12, padding 3; the last cell is not padded)."""
    widths = [max(12, max(len(r[i]) for r in rows) + 3) for i in range(len(rows[0]) - 1)]
    return "".join(
        "".join(cell.ljust(w) for cell, w in zip(row[:-1], widths, strict=True)) + row[-1] + "\n"
        for row in rows
    )


def _go_html_escape(text: str) -> str:
    """Go's encoding/json escapes <, > and & inside strings."""
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def cmd_events(ctx: Context, opts: dict[str, Any], args: list[str]) -> int:
    from pyhcs.runtime import channel  # noqa: PLC0415 (sockets: not for state/list)

    c = ctx.container(args[0])
    interval = _duration(opts["interval"])
    while True:
        status, _record, _shim = _status_of(c)
        if status not in ("running", "created", "paused"):
            raise CommandError("container not running")
        try:
            reply = channel.request(c.dir, {"op": "stats"})
        except channel.ShimGoneError:
            raise CommandError("container not running") from None
        except channel.ShimError as exc:
            raise CommandError(str(exc)) from None
        _out(json.dumps({"type": "stats", "id": c.id, "data": reply["stats"]}) + "\n")
        if opts["stats"]:
            return 0
        time.sleep(interval)  # the reporting period the caller asked for


def _duration(text: str) -> float:
    """A Go duration as runc takes it (``5s``, ``500ms``, ``1m``)."""
    units = (("ms", 0.001), ("s", 1.0), ("m", 60.0), ("h", 3600.0))
    for suffix, scale in units:
        number = text[: -len(suffix)].replace(".", "", 1)
        if text.endswith(suffix) and number.isascii() and number.isdigit():
            value = float(text[: -len(suffix)]) * scale
            if value > 0:
                return value
    raise CommandError("duration interval must be greater than 0")


def cmd_resize_tty(ctx: Context, opts: dict[str, Any], args: list[str]) -> int:
    from pyhcs.runtime import channel  # noqa: PLC0415 (sockets: not for state/list)

    c = ctx.container(args[0])
    try:
        width, height = int(args[1]), int(args[2])
    except ValueError:
        raise CommandError("width and height must be numbers") from None
    if not (0 < width <= 65535 and 0 < height <= 65535):
        raise CommandError("width and height must be between 1 and 65535")
    _status_of(c)
    name = channel.exec_socket(int(opts["pid"])) if opts["pid"] else channel.INIT_SOCKET
    try:
        channel.request(c.dir, {"op": "resize", "width": width, "height": height}, name=name)
    except channel.ShimGoneError:
        raise CommandError("container not running") from None
    except channel.ShimError as exc:
        raise CommandError(str(exc)) from None
    return 0


FEATURES: Final = {
    "ociVersionMin": "1.0.0",
    "ociVersionMax": "1.1.0",
    "hooks": [],
    "mountOptions": ["ro", "rw"],
    "annotations": {
        "io.github.pyhcs.runtime": "pyrunhcs",
        "io.github.pyhcs.runtime.console": "console-socket",
    },
}


def cmd_features(_ctx: Context, _opts: dict[str, Any], _args: list[str]) -> int:
    _out(json.dumps(FEATURES, indent=4) + "\n")
    return 0


SPEC_TEMPLATE: Final = {
    "ociVersion": OCI_VERSION,
    "process": {
        "terminal": True,
        "user": {"uid": 0, "gid": 0},
        "args": ["sh"],
        "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
        "cwd": "/",
    },
    "root": {"path": "rootfs", "readonly": True},
    "hostname": PROG,
    "mounts": [],
    "linux": {},
}


def cmd_spec(_ctx: Context, opts: dict[str, Any], _args: list[str]) -> int:
    bundle = opts["bundle"] or "."
    path = os.path.join(bundle, "config.json")
    if os.path.exists(path):
        raise CommandError("File config.json exists. Remove it first")
    try:
        with open(path, "x", encoding="utf-8") as f:
            f.write(json.dumps(SPEC_TEMPLATE, indent="\t"))
    except OSError as exc:
        raise CommandError(str(exc)) from None
    return 0


def _out(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def version_text() -> str:
    from pyhcs import __version__  # noqa: PLC0415

    python = ".".join(str(n) for n in sys.version_info[:3])
    return (
        f"{PROG} version {__version__}\ncommit: pyhcs {__version__}\n"
        f"spec: {OCI_VERSION}\npython: {python}\n"
    )


_BUNDLE = Flag("bundle", "b")
_PID_FILE = Flag("pid-file")
_CONSOLE = Flag("console-socket")
_CREATE_FLAGS = (
    _BUNDLE,
    _CONSOLE,
    _PID_FILE,
    Flag("no-pivot", value=False),
    Flag("no-new-keyring", value=False),
    Flag("preserve-fds"),
    Flag("pidfd-socket"),
    Flag("detach", "d", value=False),  # go-runc passes it to create: accepted, no meaning
)

COMMANDS: Final[dict[str, Command]] = {
    "create": Command("create [command options] <container-id>", _CREATE_FLAGS, (1, 1), cmd_create),
    "start": Command("start <container-id>", (), (1, 1), cmd_start),
    "run": Command(
        "run [command options] <container-id>",
        (
            *_CREATE_FLAGS[:-1],
            Flag("detach", "d", value=False),
            Flag("keep", value=False),
            Flag("no-subreaper", value=False),
        ),
        (1, 1),
        cmd_run,
    ),
    "exec": Command(
        "exec [command options] <container-id> <command> [command options]"
        "  || -p process.json <container-id>",
        (
            Flag("process", "p", default=""),
            Flag("detach", "d", value=False),
            _PID_FILE,
            _CONSOLE,
            Flag("pidfd-socket"),
            Flag("cwd", default=""),
            Flag("env", "e", many=True),
            Flag("tty", "t", value=False),
            Flag("user", "u", default=""),
            Flag("additional-gids", "g", many=True),
            Flag("process-label"),
            Flag("apparmor"),
            Flag("no-new-privs", value=False),
            Flag("cap", "c", many=True),
            Flag("preserve-fds"),
            Flag("cgroup", many=True),
            Flag("ignore-paused", value=False),
        ),
        (1, None),
        cmd_exec,
        reorder=False,
    ),
    "kill": Command(
        "kill [command options] <container-id> [signal]",
        (Flag("all", "a", value=False),),
        (1, 2),
        cmd_kill,
        reorder=False,
    ),
    "delete": Command(
        "delete [command options] <container-id>",
        (Flag("force", "f", value=False),),
        (1, 1),
        cmd_delete,
    ),
    "pause": Command(
        "pause <container-id>",
        (),
        (1, 1),
        _simple("pause", ("running", "created"), "container not running"),
    ),
    "resume": Command(
        "resume <container-id>", (), (1, 1), _simple("resume", ("paused",), "container not paused")
    ),
    "ps": Command(
        "ps [command options] <container-id> [ps options]",
        (Flag("format", "f", default="table"),),
        (1, None),
        cmd_ps,
        reorder=False,
    ),
    "state": Command("state <container-id>", (), (1, 1), cmd_state),
    "list": Command(
        "list [command options]",
        (Flag("format", "f", default="table"), Flag("quiet", "q", value=False)),
        (0, 0),
        cmd_list,
    ),
    "events": Command(
        "events [command options] <container-id>",
        (Flag("interval", default="5s"), Flag("stats", value=False)),
        (1, 1),
        cmd_events,
    ),
    "resize-tty": Command(
        "resize-tty [command options] <container-id> <width> <height>",
        (Flag("pid", "p", default=""),),
        (3, 3),
        cmd_resize_tty,
    ),
    "features": Command("features", (), (0, 0), cmd_features),
    "spec": Command(
        "spec [command options]", (_BUNDLE, Flag("rootless", value=False)), (0, 0), cmd_spec
    ),
}


def _help() -> str:
    names = "\n".join(f"   {name}" for name in COMMANDS)
    return (
        f"NAME:\n   {PROG} - run OCI bundles on the Windows Host Compute Service\n\n"
        f"USAGE:\n   {PROG} [global options] command [command options] [arguments...]\n\n"
        f"COMMANDS:\n{names}\n\nGLOBAL OPTIONS:\n"
        "   --root value, --log value, --log-format text|json, --debug, --owner value,"
        " --version/-v, --help/-h\n"
    )


def _check_nargs(name: str, command: Command, positional: list[str]) -> None:
    low, high = command.nargs
    if len(positional) < low and high != low:
        message = f'{PROG}: "{name}" requires a minimum of {low} argument(s)'
    elif low == high and len(positional) != low:
        message = f'{PROG}: "{name}" requires exactly {low} argument(s)'
    elif high is not None and len(positional) > high:
        message = f'{PROG}: "{name}" requires a maximum of {high} argument(s)'
    else:
        return
    raise UsageError(message, command.usage, detail=False)


def run(argv: Sequence[str]) -> int:
    """One invocation; its exit status."""
    try:
        options, rest = parse_flags(GLOBAL_FLAGS, argv, reorder=False, stop_at_first=True)
    except ValueError as exc:
        Logger().failure(str(exc))
        _out(f"Incorrect Usage: {exc}\n\n{_help()}")
        return 1
    try:
        ctx = Context(options)
    except ValueError as exc:  # --log-format
        Logger().failure(str(exc))
        return 1
    if options["version"]:
        _out(version_text())
        return 0
    if not rest or options["help"] or rest[0] == "help":
        _out(_help())
        return 0
    name, args = rest[0], rest[1:]
    command = COMMANDS.get(name)
    if command is None:
        ctx.log.failure(f"No help topic for '{name}'")
        return 3
    try:
        try:
            opts, positional = parse_flags(command.flags, args, reorder=command.reorder)
        except ValueError as exc:
            raise UsageError(str(exc), command.usage) from None
        if opts["help"]:
            _out(f"USAGE:\n   {PROG} {command.usage}\n")
            return 0
        _check_nargs(name, command, positional)
        return command.handler(ctx, opts, positional)
    except UsageError as exc:
        heading = f"Incorrect Usage: {exc}" if exc.detail else "Incorrect Usage."
        _out(f"{heading}\n\nUSAGE:\n   {PROG} {exc.usage}\n")
        ctx.log.failure(str(exc))
        return exc.code
    except CommandError as exc:
        ctx.log.failure(str(exc))
        return exc.code
    except StateError as exc:
        ctx.log.failure(str(exc))
        return 1


def main(argv: Sequence[str] | None = None) -> NoReturn:
    sys.exit(run(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    main()
