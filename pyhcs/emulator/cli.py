"""``pyhcs emulator serve|status|stop``."""

from __future__ import annotations

import argparse
import json
import os
import select
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pyhcs import hresult as hr
from pyhcs.cli import describe
from pyhcs.emulator import protocol
from pyhcs.emulator.client import autostart
from pyhcs.emulator.service import server
from pyhcs.errors import EmulatorError, HcsError

STOP_TIMEOUT = 15.0


STATUS_TIMEOUT = 10.0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``emulator`` command to the pyhcs console script."""
    parser = subparsers.add_parser("emulator", help="run or control the HCS emulator service")
    commands = parser.add_subparsers(dest="emulator_command", required=True)
    for name, helptext in (
        ("serve", "run the service in the foreground"),
        ("status", "show whether a service is running and what it holds"),
        ("stop", "stop the service (terminating its compute systems)"),
    ):
        sub = commands.add_parser(name, help=helptext)
        sub.add_argument("--dir", type=Path, default=None, help="state directory")
        if name == "serve":
            sub.add_argument("--ready-fd", type=int, default=None, help=argparse.SUPPRESS)
        if name == "status":
            sub.add_argument("--json", action="store_true", help="print JSON, not text")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    directory: Path = args.dir or autostart.default_dir()
    if args.emulator_command == "serve":
        autostart.check_dir(directory)  # a typed error, not a traceback from deep in bind()
        return server.serve(directory, args.ready_fd)
    if not autostart.reachable(directory):
        if args.emulator_command == "stop":
            print(f"no emulator service runs in {directory}; nothing to stop")
            return 0
        if args.json:
            print(json.dumps({"Running": False, "Directory": str(directory)}))
        else:
            print(f"Running: no (no emulator service in {directory})")
        return 1
    status = query_status(directory)
    if args.emulator_command == "status":
        report = {"Running": True, **status}
        print(json.dumps(report, indent=2) if args.json else "\n".join(_render(report)))
        return 0
    pid = int(status["Pid"])
    live = [s for s in status["Systems"] if s["State"] != "Stopped"]  # what shutdown ends
    if not stop(pid):
        return 1
    print(
        f"stopped emulator service pid {pid} in {status['Directory']} "
        f"(terminated {len(live)} system{'' if len(live) == 1 else 's'}: "
        f"{', '.join(s['Id'] for s in live) or 'none'})"
    )
    return 0


def query_status(directory: Path, timeout: float = STATUS_TIMEOUT) -> dict[str, Any]:
    """Ask the service in ``directory`` what it holds (its ``status`` request)."""
    try:
        sock = autostart.connect(directory)
    except OSError as exc:
        raise EmulatorError(
            f"cannot reach the emulator service in {directory}: {exc.strerror or exc}",
            hresult=hr.HCS_E_SERVICE_DISCONNECT,
        ) from exc
    try:
        sock.settimeout(timeout)
        protocol.send(sock, {"id": 1, "op": "status"})
        while True:
            reply, fds = protocol.receive(sock)
            for fd in fds:
                os.close(fd)
            if reply.get("re") == 1:
                break
    except (protocol.ConnectionClosedError, ValueError) as exc:
        raise EmulatorError(
            f"the emulator service in {directory} did not answer a status request: {exc}",
            hresult=hr.HCS_E_SERVICE_DISCONNECT,
        ) from exc
    finally:
        sock.close()
    if reply.get("hr") != hr.S_OK or not isinstance(reply.get("doc"), str):
        raise EmulatorError(
            f"the emulator service in {directory} refused a status request "
            f"({reply.get('why') or hr.describe(int(reply.get('hr') or hr.E_FAIL))}); it may "
            "be from another pyhcs version",
            hresult=int(reply.get("hr") or hr.E_FAIL),
        )
    status: dict[str, Any] = json.loads(reply["doc"])
    return status


def _render(status: dict[str, Any]) -> Iterator[str]:
    """The status for a terminal: the service, then a table of systems and of clients."""
    mode = "privileged" if status.get("Privileged") else "unprivileged"
    yield "Running: yes"
    yield f"Directory: {status['Directory']}"
    yield f"Pid: {status['Pid']} ({mode})"
    held = status.get("Containment") or {}
    if held:
        where = f" in {held['Tree']}" if held.get("Tree") else ""
        yield f"Processes held by: {held['Kind']}{where}; keeper pid {held['KeeperPid']}"
    systems = status["Systems"]
    yield f"Systems ({len(systems)}):"
    yield from _table(
        ("ID", "TYPE", "STATE", "OWNER", "PROCESSES", "HANDLES"),
        [
            (s["Id"], s["Type"], s["State"], s["Owner"] or "-", s["Processes"], s["Handles"])
            for s in systems
        ],
    )
    clients = status["Clients"]
    yield f"Clients ({len(clients)}, not counting this status query):"
    yield from _table(
        ("PID", "UID", "SYSTEM HANDLES", "PROCESS HANDLES"),
        [(c["Pid"], c["Uid"], c["SystemHandles"], c["ProcessHandles"]) for c in clients],
    )


def _table(header: tuple[str, ...], rows: list[tuple[Any, ...]]) -> Iterator[str]:
    if not rows:
        yield "  (none)"
        return
    cells = [header, *[tuple(str(v) for v in row) for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    for row in cells:
        yield "  " + "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip()


def stop(pid: int, timeout: float = STOP_TIMEOUT) -> bool:
    """SIGTERM the service and wait (bounded) until the process is gone."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        os.kill(pid, signal.SIGTERM)
        ready, _w, _x = select.select([pidfd], [], [], timeout)
    finally:
        os.close(pidfd)
    if not ready:
        print(f"pyhcs emulator: service {pid} did not stop within {timeout:g} s", file=sys.stderr)
    return bool(ready)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pyhcs")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args))
    except HcsError as exc:
        print(f"pyhcs: {describe(exc)}", file=sys.stderr)
        return 1
