"""The CLI's pure parts, where input comes from outside: signal arguments, ids, flags, the
formats runc's callers parse (list table, created time, log lines)."""

from __future__ import annotations

import json
import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyhcs.runtime import cli, signals
from pyhcs.runtime.logs import Logger, rfc3339_nano
from pyhcs.runtime.state import valid_id


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", (False, "CtrlShutdown")),
        ("15", (False, "CtrlShutdown")),
        ("SIGTERM", (False, "CtrlShutdown")),
        ("term", (False, "CtrlShutdown")),
        ("9", (True, None)),
        ("KILL", (True, None)),
        ("0", (False, "CtrlC")),
        ("CTRLC", (False, "CtrlC")),
        ("1", (False, "CtrlBreak")),
        ("2", (False, "CtrlClose")),
        ("5", (False, "CtrlLogOff")),
        ("6", (False, "CtrlShutdown")),
        ("ctrlshutdown", (False, "CtrlShutdown")),
    ],
)
def test_windows_signal_table(text: str, expected: tuple[bool, str | None]) -> None:
    delivery = signals.parse(text, linux=False)
    assert (delivery.terminate, delivery.signal) == expected


@pytest.mark.parametrize("text", ["INT", "3", "USR1", "SIGHUP", "64", "x"])
def test_windows_refuses_other_signals(text: str) -> None:
    with pytest.raises(signals.SignalError, match="unknown signal"):
        signals.parse(text, linux=False)


def test_linux_signals_pass_through() -> None:
    assert signals.parse("SIGKILL", linux=True) == signals.Delivery(False, 9, 9)
    assert signals.parse("usr1", linux=True).signal == 10
    assert signals.parse("34", linux=True).signal == 34
    assert signals.parse("", linux=True).signal == 15
    for bad in ("0", "65", "CTRLC", "SIGNOPE"):
        with pytest.raises(signals.SignalError):
            signals.parse(bad, linux=True)


@given(st.text(max_size=12), st.booleans())
def test_any_signal_argument_is_parsed_or_refused(text: str, linux: bool) -> None:
    try:
        delivery = signals.parse(text, linux=linux)
    except signals.SignalError as exc:
        message = str(exc)
    else:
        message = ""
    if message:
        assert message.startswith("unknown signal")
        return
    assert delivery.terminate or delivery.signal is not None
    assert 1 <= delivery.number <= 64


@given(st.text(max_size=40))
def test_a_valid_id_never_leaves_the_root(text: str) -> None:
    if not valid_id(text):
        return
    root = "/run/root"
    path = os.path.normpath(os.path.join(root, text))
    assert os.path.dirname(path) == root
    assert os.path.basename(path) == text


def test_ids_as_runc_takes_them() -> None:
    assert all(valid_id(i) for i in ("a", "A-b_c.d", "x+y", "a,b", "0" * 64))
    assert not any(valid_id(i) for i in ("", ".", "..", "a/b", "a b", "ä", "a\n", "x" * 256))


def test_flags_go_style() -> None:
    flags = (
        cli.Flag("bundle", "b"),
        cli.Flag("detach", "d", value=False),
        cli.Flag("env", "e", many=True),
    )
    opts, args = cli.parse_flags(
        flags, ["-b", "x", "id", "--detach=false", "-e", "A=1", "--e=B=2"], reorder=True
    )
    assert opts == {"bundle": "x", "detach": False, "env": ["A=1", "B=2"]}
    assert args == ["id"]
    opts, args = cli.parse_flags(flags, ["-d", "id", "-b", "x"], reorder=False)
    assert (opts["detach"], opts["bundle"], args) == (True, None, ["id", "-b", "x"])
    _opts, args = cli.parse_flags(flags, ["--", "-b"], reorder=True)
    assert args == ["-b"]
    for bad, message in (
        (["--nope"], "flag provided but not defined: -nope"),
        (["-b"], "flag needs an argument: -b"),
        (["-d=maybe"], 'invalid boolean value "maybe" for -d: parse error'),
    ):
        with pytest.raises(ValueError, match=message):
            cli.parse_flags(flags, bad, reorder=True)


def test_list_table_as_go_tabwriter() -> None:
    rows = [
        ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"],
        ["c1", "17032", "created", "/tmp/tmp.78eXYc0Ans", "2026-12-02T08:06:48.651514446Z", "root"],
    ]
    # What runc 1.1.5 printed for the same container.
    assert cli._tabulate(rows).splitlines() == [
        "ID          PID         STATUS      BUNDLE                CREATED"
        "                          OWNER",
        "c1          17032       created     /tmp/tmp.78eXYc0Ans   "
        "2026-12-02T08:06:48.651514446Z   root",
    ]


def test_created_is_rfc3339_nano() -> None:
    assert rfc3339_nano(1_700_000_000_123_456_789) == "2023-11-14T22:13:20.123456789Z"
    assert rfc3339_nano(1_700_000_000_120_000_000) == "2023-11-14T22:13:20.12Z"
    assert rfc3339_nano(1_700_000_000_000_000_000) == "2023-11-14T22:13:20Z"


def test_log_lines() -> None:
    line = json.loads(Logger(fmt="json").line("error", 'a "quoted" msg'))
    assert list(line) == ["level", "msg", "time"]
    assert line["msg"] == 'a "quoted" msg'
    text = Logger().line("error", "container does not exist")
    assert text.endswith(' level=error msg="container does not exist"')
    with pytest.raises(ValueError, match="invalid log-format: xml"):
        Logger(fmt="xml")
