"""runc-style logging: logrus text or JSON lines, to ``--log`` or to stderr.

containerd's runc shim passes ``--log BUNDLE/log.json --log-format json`` and, when a call fails,
shows the ``msg`` of the last line whose ``level`` is ``error``; it even decides how to treat a
failed ``kill`` from that text. So every fatal error is logged here before the command exits,
in logrus's shape (``{"level","msg","time"}``, keys in that order). As runc 1.1 does, an error
logged to a file is also printed plainly on stderr; logged to stderr, it is printed once.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Final, TextIO

FORMATS: Final = ("text", "json")
#: logrus's levels, lowest first.
LEVELS: Final = ("debug", "info", "warning", "error", "fatal")


def rfc3339(seconds: float | None = None) -> str:
    """Local time as Go's time.RFC3339 (``Z`` for UTC, else ``+hh:mm``), as logrus stamps."""
    now = time.time() if seconds is None else seconds
    local = time.localtime(now)
    offset = local.tm_gmtoff or 0
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", local)
    if offset == 0:
        return stamp + "Z"
    sign = "+" if offset > 0 else "-"
    hours, minutes = divmod(abs(offset) // 60, 60)
    return f"{stamp}{sign}{hours:02d}:{minutes:02d}"


def rfc3339_nano(nanoseconds: int) -> str:
    """UTC as Go's time.RFC3339Nano (trailing zeros of the fraction dropped), as runc's
    ``created`` field."""
    seconds, fraction = divmod(nanoseconds, 1_000_000_000)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    digits = f"{fraction:09d}".rstrip("0")
    return f"{stamp}.{digits}Z" if digits else f"{stamp}Z"


def _quote(value: str) -> str:
    """logrus's text formatter quotes a value unless it is made of safe characters only."""
    if value and all(c.isalnum() or c in "-._/@^+" for c in value):
        return value
    return json.dumps(value, ensure_ascii=False)


class Logger:
    """Where and how one process logs (a command, or a shim)."""

    def __init__(self, path: str = "", fmt: str = "text", *, debug: bool = False) -> None:
        if fmt not in FORMATS:
            raise ValueError(f"invalid log-format: {fmt}")
        self.path = path
        self.format = fmt
        self.level = "debug" if debug else "info"

    @property
    def to_file(self) -> bool:
        return bool(self.path)

    def line(self, level: str, msg: str) -> str:
        now = rfc3339()
        if self.format == "json":
            return json.dumps(
                {"level": level, "msg": msg, "time": now}, ensure_ascii=False, separators=(",", ":")
            )
        return f"time={_quote(now)} level={level} msg={_quote(msg)}"

    def log(self, level: str, msg: str) -> None:
        if LEVELS.index(level) < LEVELS.index(self.level):
            return
        text = self.line(level, msg) + "\n"
        if not self.path:
            _write(sys.stderr, text)
            return
        # O_APPEND: concurrent writers (a command and the shims) never interleave a line.
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            os.write(fd, text.encode("utf-8", "backslashreplace"))
        finally:
            os.close(fd)

    def debug(self, msg: str) -> None:
        self.log("debug", msg)

    def info(self, msg: str) -> None:
        self.log("info", msg)

    def warning(self, msg: str) -> None:
        self.log("warning", msg)

    def failure(self, msg: str) -> None:
        """Log an error; logged to a file, also say it plainly on stderr (as runc)."""
        self.log("error", msg)
        if self.path:
            _write(sys.stderr, msg + "\n")


def _write(stream: TextIO | None, text: str) -> None:
    if stream is None:  # no stderr at all (fd 2 closed by the caller)
        return
    try:
        stream.write(text)
        stream.flush()
    except (OSError, ValueError):  # a closed or broken stderr must not mask the real error
        return
