"""``pyhcs emulator serve|status|stop``."""

from __future__ import annotations

import argparse
import json
import os
import select
import signal
import sys
from pathlib import Path

from pyhcs.emulator import statedir
from pyhcs.emulator.client import autostart
from pyhcs.emulator.service import server

STOP_TIMEOUT = 15.0


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
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    directory: Path = args.dir or autostart.default_dir()
    if args.emulator_command == "serve":
        return server.serve(directory, args.ready_fd)
    pid_file = directory / statedir.PID_NAME
    if not autostart.reachable(directory):
        print(json.dumps({"Running": False, "Directory": str(directory)}))
        return 1 if args.emulator_command == "status" else 0
    pid = int(pid_file.read_text().strip())
    if args.emulator_command == "status":
        print(json.dumps({"Running": True, "Directory": str(directory), "Pid": pid}))
        return 0
    return 0 if stop(pid) else 1


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
    return int(args.handler(args))
