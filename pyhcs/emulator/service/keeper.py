"""The service's keeper: what the service started ends when the service ends, however it ends.

A service killed with SIGKILL gets no chance to stop its systems, and its processes would run
on as orphans. So the service starts a small keeper process, in a session of its own, that
holds the read end of a pipe whose write end only the service has. The pipe ends when the
service does — by exit, crash or SIGKILL — and the keeper then kills the service's cgroup tree
(as root), or else every process group the service told it about, and exits.

Unprivileged there are no cgroups: the keeper reaches the process group of each process the
service started, but not a process that left its group (``setsid``); that one outlives the
service. The service writes ``+PGID`` when it starts a process and ``-PGID`` once that group
is gone, one line each.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pyhcs
from pyhcs.emulator.service.cgroups import CgroupError, Tree

log = logging.getLogger("pyhcs.emulator.service")

#: Bound on how long an orderly service stop waits for the keeper to finish.
KEEPER_TIMEOUT = 15.0


class Keeper:
    """The service's end of the keeper: start it, tell it about process groups, end it."""

    def __init__(self, tree: Tree | None) -> None:
        read_end, self._write_end = os.pipe()
        argv = [sys.executable, "-m", __name__]
        if tree is not None:
            argv += ["--tree", str(tree.root), "--version", str(tree.version)]
        try:
            # Run from the folder that holds this pyhcs, so ``-m`` imports the same code.
            self._process = subprocess.Popen(
                argv,
                stdin=read_end,
                stdout=subprocess.DEVNULL,
                cwd=Path(pyhcs.__file__).resolve().parent.parent,
                start_new_session=True,
                close_fds=True,
            )
        except BaseException:
            os.close(self._write_end)
            raise
        finally:
            os.close(read_end)
        self._lock = threading.Lock()
        self.pid = self._process.pid

    def track(self, pgid: int) -> None:
        self._say(f"+{pgid}\n")

    def untrack(self, pgid: int) -> None:
        self._say(f"-{pgid}\n")

    def _say(self, line: str) -> None:
        with self._lock:
            if self._write_end < 0:
                return
            try:
                os.write(self._write_end, line.encode())
            except BrokenPipeError:  # the keeper is gone: a process start must not fail for it
                log.warning("keeper pid %d is gone: processes may outlive the service", self.pid)
                os.close(self._write_end)
                self._write_end = -1

    def close(self, timeout: float = KEEPER_TIMEOUT) -> int | None:
        """End the pipe (the keeper cleans up) and wait, bounded, for it to finish; its exit
        status, or None if it did not finish in time."""
        with self._lock:
            if self._write_end >= 0:
                os.close(self._write_end)
                self._write_end = -1
        try:
            return self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pyhcs-emulator-keeper")
    parser.add_argument("--tree", type=Path)
    parser.add_argument("--version", type=int, default=2)
    args = parser.parse_args(argv)
    groups: set[int] = set()
    for line in sys.stdin.buffer:  # until the service's end of the pipe closes
        text = line.strip().decode("ascii", "replace")
        if text[:1] in "+-" and text[1:].isdigit():
            (groups.add if text[0] == "+" else groups.discard)(int(text[1:]))
    status = 0
    if args.tree is not None:
        try:
            Tree(args.tree, args.version).destroy()
        except (CgroupError, OSError) as exc:
            print(f"pyhcs emulator keeper: could not clear {args.tree}: {exc}", file=sys.stderr)
            status = 1
    for pgid in groups:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
    return status


if __name__ == "__main__":
    sys.exit(main())
