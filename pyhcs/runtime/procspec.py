"""An OCI ``process`` object (config.json's, or ``exec --process``'s) as HCS
``ProcessParameters`` (a dict), the way hcsshim maps it: the command line (``commandLine`` as
given, else ``args`` quoted by Windows's rules, which HCS splits back), the working directory,
the environment as a map, the console. The std pipes are the shim's business."""

from __future__ import annotations

import subprocess
from typing import Any


class ProcessSpecError(ValueError):
    """A process object HCS cannot run (no args, relative cwd, bad types)."""


def absolute(path: str) -> bool:
    """A container path that is absolute: ``/x``, ``\\x`` or ``C:\\x``."""
    return path.startswith(("/", "\\")) or (len(path) >= 3 and path[1] == ":" and path[2] in "/\\")


def process_parameters(process: Any) -> dict[str, Any]:
    """``ProcessParameters`` for an OCI process object; ProcessSpecError if it is not valid."""
    if not isinstance(process, dict):
        raise ProcessSpecError("process must be a JSON object")
    args = process.get("args")
    line = process.get("commandLine")
    if args is not None and (
        not isinstance(args, list) or not all(isinstance(a, str) for a in args)
    ):
        raise ProcessSpecError("process.args must be a list of strings")
    if line is not None and not isinstance(line, str):
        raise ProcessSpecError("process.commandLine must be a string")
    if not line and not args:
        raise ProcessSpecError("args must not be empty")
    cwd = process.get("cwd")
    if not isinstance(cwd, str) or not cwd:
        raise ProcessSpecError("cwd property must not be empty")
    if not absolute(cwd):
        raise ProcessSpecError("cwd must be an absolute path")
    env = process.get("env") or []
    if not isinstance(env, list) or not all(isinstance(e, str) for e in env):
        raise ProcessSpecError("process.env must be a list of KEY=VALUE strings")
    params: dict[str, Any] = {
        "CommandLine": line or subprocess.list2cmdline(args or []),
        "WorkingDirectory": cwd,
        "Environment": environment(env),
    }
    if process.get("terminal"):
        params["EmulateConsole"] = True
        size = process.get("consoleSize")
        if isinstance(size, dict) and size.get("height") and size.get("width"):
            params["ConsoleSize"] = [int(size["height"]), int(size["width"])]
    user = process.get("user")
    if isinstance(user, dict) and isinstance(user.get("username"), str) and user["username"]:
        params["User"] = user["username"]
    return params


def environment(entries: list[str]) -> dict[str, str]:
    """``KEY=VALUE`` strings as a map (a later entry wins, an entry without ``=`` is empty)."""
    result: dict[str, str] = {}
    for entry in entries:
        key, _sep, value = entry.partition("=")
        if key:
            result[key] = value
    return result
