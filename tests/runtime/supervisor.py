"""Plays containerd's runc shim for the tests: ``python -m tests.runtime.supervisor PIDFILE
STDOUT CREATE-ARGV...`` becomes a child subreaper, runs ``create`` with its stdout going to the
file STDOUT (the container's stdout), reads the pid file and prints, one JSON line each, the
pid (and whether the shim became its child), then the shim's exit status once it reaped it."""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys
import tempfile

PR_SET_CHILD_SUBREAPER = 36
BOUND = 60.0


def main() -> int:
    pid_file, stdout_path, *create = sys.argv[1:]
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")
    # The container keeps fds 0/1/2 of create: files, so that create's end is seen at once.
    with open(stdout_path, "wb") as out, tempfile.TemporaryFile() as err:
        result = subprocess.run(
            create, stdin=subprocess.DEVNULL, stdout=out, stderr=err, timeout=BOUND, check=False
        )
        if result.returncode != 0:
            err.seek(0)
            print(json.dumps({"error": err.read().decode()}), flush=True)
            return 1
    with open(pid_file, encoding="ascii") as f:
        text = f.read()
    pid = int(text)
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        parent = int(f.read().rsplit(")", 1)[1].split()[1])
    print(json.dumps({"pid": pid, "child": parent == os.getpid(), "text": text}), flush=True)
    _pid, status = os.waitpid(pid, 0)  # the container's whole life: bounded by the test
    code = os.waitstatus_to_exitcode(status)
    print(json.dumps({"status": 128 - code if code < 0 else code}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
