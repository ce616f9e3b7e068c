"""Windows command-line splitting (CommandLineToArgvW rules) and ``C:\\`` path mapping.

HCS takes one ``CommandLine`` string; the emulator runs a real host program, so it must split the
string exactly as Windows would before exec'ing.
"""

from __future__ import annotations

import errno
import os
import posixpath
from pathlib import Path

#: The search path of a Linux container's process whose Environment names none.
LINUX_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

#: As many symbolic links as Linux follows in one lookup before ELOOP.
_MAX_LINKS = 40


def split(command_line: str) -> list[str]:
    """Split like CommandLineToArgvW: argv[0] has no escapes, the rest use the backslash rules."""
    text = command_line.lstrip(" \t")
    args: list[str] = []
    i, n = 0, len(text)
    if n == 0:
        return args
    # argv[0]: quoted up to the next quote, or up to whitespace; backslashes are literal.
    if text[0] == '"':
        end = text.find('"', 1)
        end = n if end < 0 else end
        args.append(text[1:end])
        i = end + 1
    else:
        while i < n and text[i] not in " \t":
            i += 1
        args.append(text[:i])
    while True:
        while i < n and text[i] in " \t":
            i += 1
        if i >= n:
            return args
        current: list[str] = []
        quoted = False
        while i < n and (quoted or text[i] not in " \t"):
            ch = text[i]
            if ch == "\\":
                start = i
                while i < n and text[i] == "\\":
                    i += 1
                count = i - start
                if i < n and text[i] == '"':
                    current.append("\\" * (count // 2))
                    if count % 2:
                        current.append('"')
                        i += 1
                else:
                    current.append("\\" * count)
                continue
            if ch == '"':
                if quoted and i + 1 < n and text[i + 1] == '"':
                    current.append('"')
                    i += 2
                    continue
                quoted = not quoted
                i += 1
                continue
            current.append(ch)
            i += 1
        args.append("".join(current))


def to_host(path: str, root: Path) -> Path:
    """Map a container path (``C:\\x\\y``, ``\\x``, ``/x``) to the host path under ``root``."""
    p = path.replace("\\", "/")
    if len(p) >= 2 and p[1] == ":":
        p = p[2:]
    parts = [part for part in p.split("/") if part not in ("", ".")]
    resolved = root
    for part in parts:
        resolved = resolved.parent if part == ".." and resolved != root else resolved / part
    return resolved


def resolve_program(argv0: str, root: Path, environment: dict[str, str]) -> str:
    """argv[0] as a host executable: a container path if it exists there, else the host PATH."""
    if "\\" in argv0 or (len(argv0) > 1 and argv0[1] == ":"):
        return str(to_host(argv0, root))
    if "/" in argv0:
        return argv0
    search = environment.get("PATH", os.environ.get("PATH", os.defpath))
    for directory in search.split(os.pathsep):
        for name in (argv0, argv0[:-4] if argv0.lower().endswith(".exe") else None):
            if name is None:
                continue
            candidate = os.path.join(directory, name)
            if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
                return candidate
    return argv0


def linux_path(path: str, cwd: str = "/") -> str:
    """A container path (``/x``, ``C:\\x``, ``\\x`` or relative to ``cwd``) as the absolute,
    normalised path a process chroot'ed into the container's root sees."""
    p = path.replace("\\", "/")
    if len(p) >= 2 and p[1] == ":":
        p = p[2:] or "/"
    if not p.startswith("/"):
        p = f"{cwd.rstrip('/')}/{p}"
    return "/" + posixpath.normpath(p).lstrip("/")


def in_root(path: str, root: Path) -> Path:
    """The host path of absolute container path ``path`` under ``root``, following symbolic
    links the way a process chroot'ed into ``root`` would: an absolute target starts again at
    ``root`` and ``..`` never climbs out of it. Raises OSError(ELOOP) on a link cycle."""
    todo = [part for part in path.split("/") if part]
    done: list[str] = []
    hops = 0
    while todo:
        part = todo.pop(0)
        if part == ".":
            continue
        if part == "..":
            if done:
                done.pop()
            continue
        candidate = root.joinpath(*done, part)
        if not candidate.is_symlink():
            done.append(part)
            continue
        hops += 1
        if hops > _MAX_LINKS:
            raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), path)
        target = os.readlink(candidate)
        if target.startswith("/"):
            done = []
        todo = [p for p in target.split("/") if p] + todo
    return root.joinpath(*done)


def resolve_in_root(argv0: str, root: Path, environment: dict[str, str], cwd: str) -> str | None:
    """argv[0] as the container path a chroot'ed process execs: a path as given (relative to
    ``cwd``), a bare name searched on the container's PATH inside ``root``; None if the
    search finds nothing."""
    if "/" in argv0 or "\\" in argv0 or (len(argv0) > 1 and argv0[1] == ":"):
        return linux_path(argv0, cwd)
    search = environment.get("PATH", LINUX_PATH)
    for directory in search.split(":"):
        for name in (argv0, argv0[:-4] if argv0.lower().endswith(".exe") else None):
            if name is None or not directory:
                continue
            candidate = linux_path(f"{directory}/{name}", cwd)
            try:
                host = in_root(candidate, root)
                if host.is_file() and os.access(host, os.X_OK):
                    return candidate
            except OSError:
                continue
    return None
