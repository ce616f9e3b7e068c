"""``kill``'s signal argument: runc's syntax, runhcs's meaning.

runc takes a number (``9``) or a name with or without ``SIG``, in any case (``KILL``,
``sigkill``). What it does depends on the guest, as in runhcs:

- a Windows container only has console control events, so only runhcs's Windows table is
  valid: ``CTRLC``/0, ``CTRLBREAK``/1, ``CTRLCLOSE``/2, ``CTRLLOGOFF``/5, ``CTRLSHUTDOWN``/6
  and ``TERM``/15 become HcsSignalProcess with that event, ``KILL``/9 becomes
  HcsTerminateProcess;
- a Linux guest takes every Linux signal by number (``{"Signal": n}``).
"""

from __future__ import annotations

from typing import Final, NamedTuple

#: The Linux signal table (x86-64 / arm64 numbering), by name without ``SIG``.
LINUX: Final[dict[str, int]] = {
    "HUP": 1,
    "INT": 2,
    "QUIT": 3,
    "ILL": 4,
    "TRAP": 5,
    "ABRT": 6,
    "IOT": 6,
    "BUS": 7,
    "FPE": 8,
    "KILL": 9,
    "USR1": 10,
    "SEGV": 11,
    "USR2": 12,
    "PIPE": 13,
    "ALRM": 14,
    "TERM": 15,
    "STKFLT": 16,
    "CHLD": 17,
    "CONT": 18,
    "STOP": 19,
    "TSTP": 20,
    "TTIN": 21,
    "TTOU": 22,
    "URG": 23,
    "XCPU": 24,
    "XFSZ": 25,
    "VTALRM": 26,
    "PROF": 27,
    "WINCH": 28,
    "IO": 29,
    "POLL": 29,
    "PWR": 30,
    "SYS": 31,
}
#: Real-time signals a Linux guest also takes (SIGRTMIN..SIGRTMAX as the kernel numbers them).
LINUX_RT: Final = range(32, 65)

#: runhcs's Windows table: name -> (number, what HCS is asked; ``None`` = terminate).
WINDOWS: Final[dict[str, tuple[int, str | None]]] = {
    "CTRLC": (0, "CtrlC"),
    "CTRLBREAK": (1, "CtrlBreak"),
    "CTRLCLOSE": (2, "CtrlClose"),
    "CTRLLOGOFF": (5, "CtrlLogOff"),
    "CTRLSHUTDOWN": (6, "CtrlShutdown"),
    "KILL": (9, None),
    "TERM": (15, "CtrlShutdown"),
}

#: The Linux signal a Windows event stands for, for the exit status of a container killed
#: before its process started (128 + this), as the emulator maps them.
WINDOWS_AS_LINUX: Final[dict[str, int]] = {
    "CtrlC": 2,
    "CtrlBreak": 3,
    "CtrlClose": 1,
    "CtrlLogOff": 1,
    "CtrlShutdown": 15,
}


class SignalError(ValueError):
    """A signal argument that is not valid for the container's guest."""


class Delivery(NamedTuple):
    """What to ask HCS: ``terminate``, or HcsSignalProcess with ``signal`` (an event name or
    a Linux number); ``number`` is the Linux-numbered signal (for 128 + N exit statuses)."""

    terminate: bool
    signal: str | int | None
    number: int


def parse(text: str, *, linux: bool) -> Delivery:
    """The delivery of ``kill``'s signal argument (default SIGTERM) for a Linux or Windows guest."""
    spec = (text or "TERM").strip()
    upper = spec.upper()
    name = upper[3:] if upper.startswith("SIG") else upper
    if linux:
        if spec.isascii() and spec.isdigit():
            number = int(spec)
            if number not in LINUX.values() and number not in LINUX_RT:
                raise SignalError(f'unknown signal "{spec}"')
        elif name in LINUX:
            number = LINUX[name]
        else:
            raise SignalError(f'unknown signal "{spec}"')
        return Delivery(terminate=False, signal=number, number=number)
    if spec.isascii() and spec.isdigit():
        entry = next((e for e in WINDOWS.values() if e[0] == int(spec)), None)
    else:
        entry = WINDOWS.get(name)
    if entry is None:
        raise SignalError(f'unknown signal "{spec}"')
    event = entry[1]
    if event is None:
        return Delivery(terminate=True, signal=None, number=9)
    return Delivery(terminate=False, signal=event, number=WINDOWS_AS_LINUX[event])
