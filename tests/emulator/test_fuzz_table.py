"""Every function of the table, called with hostile arguments: the connection survives, no
exception reaches C, and a call that fails changes nothing the client or the service holds."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyhcs import hresult as hr
from pyhcs.emulator.client.table import Table
from pyhcs.raw import cdefs
from pyhcs.raw.ffi import ffi
from tests.emulator.capi import CApi
from tests.emulator.conftest import CONTAINER

#: Freeing memory or closing handles the test itself owns would be a bug of the test, not a
#: hostile call; those functions get only hostile (never valid) arguments below.
_RELEASES = re.compile(r"Close|Free|LocalFree|CoTaskMemFree")
#: Waits get short timeouts: a valid system never exits on its own.
_TIMEOUT_NAMES = re.compile(r"(?i)timeout")

#: Random text never names a real place on this host (no separators, no drive): the calls
#: that destroy or overwrite must be safe on their own (see test_destroy_layer_refuses...),
#: and a fuzz run must not bet the machine on it.
_HOSTILE_TEXT = st.one_of(
    st.text(max_size=40).filter(lambda t: not set(t) & set("/\\:.~")),
    st.sampled_from(
        [
            "",
            "{",
            "null",
            "[]",
            '{"Container":{}}',
            '{"Owner":' + "[" * 2000 + "]" * 2000 + "}",
            '{"SchemaVersion":{"Major":99,"Minor":0},"Container":{}}',
            '{"ResourcePath":"Container/Memory/SizeInMB","Settings":1e999}',
            '{"Signal":1000}',
            '{"Operation":"ConsoleSize","ConsoleSize":{"Height":70000,"Width":-1}}',
            "/nonexistent-pyhcs-fuzz/" + "p" * 5000,
            "C:\\nonexistent-pyhcs-fuzz\\" + "d" * 300,
            "\ud800",
            "x" * 200_000,
        ]
    ),
)


def _param_names(signature: str) -> list[str]:
    inner = signature[signature.index("*)(") + 3 : -1]
    return [part.strip().split(" ")[-1].lstrip("*") for part in inner.split(",") if part.strip()]


class Pool:
    """Valid handles the fuzz may pass, next to invalid ones."""

    def __init__(self, table: Table, c: CApi) -> None:
        self.table, self.c = table, c
        self.system, code, _ = c.create("fuzz-target", CONTAINER)
        assert code == 0
        assert c.system_op("HcsStartComputeSystem", self.system) == (0, None)
        self.process, code, _info, _ = c.spawn(self.system, {"CommandLine": "sleep 600"})
        assert code == 0
        self.callbacks: dict[str, Any] = {}

    def callback(self, ctype: Any) -> Any:
        if ctype.cname not in self.callbacks:
            result = ctype.result
            self.callbacks[ctype.cname] = ffi.callback(
                ctype, lambda *args: None if result.kind == "void" else 0
            )
        return self.callbacks[ctype.cname]

    def close(self) -> None:
        self.c.process_op("HcsTerminateProcess", self.process)
        self.table.HcsCloseProcess(self.process)
        self.c.system_op("HcsTerminateComputeSystem", self.system)
        self.table.HcsCloseComputeSystem(self.system)


@pytest.fixture(scope="module")
def pool(module_table: Table) -> Iterator[Pool]:
    made = Pool(module_table, CApi(module_table))
    yield made
    made.close()


def _argument(  # noqa: PLR0917 - one argument's whole context
    draw: Any, ctype: Any, name: str, pool: Pool, op: Any, releases: bool, keep: list[Any]
) -> Any:
    """One argument of C type ``ctype``: NULL, garbage, or (sometimes) something valid."""
    cname = ctype.cname
    if ctype.kind in ("primitive", "enum"):
        if _TIMEOUT_NAMES.search(name):
            return draw(st.integers(0, 50))
        top = 2 ** (8 * ffi.sizeof(ctype)) - 1
        return draw(st.integers(0, top) | st.sampled_from([0, 1, top]))
    if ctype.kind == "function":
        return ffi.NULL if releases or draw(st.booleans()) else pool.callback(ctype)
    if ctype.kind != "pointer":
        pytest.fail(f"no strategy for {cname} {name}")
    if cname.endswith("char16_t *") and cname.count("*") == 1:
        text = draw(st.none() | _HOSTILE_TEXT)
        if text is None:
            return ffi.NULL
        buffer = ffi.new("char16_t[]", text)
        keep.append(buffer)
        return buffer
    item = ctype.item
    valid: dict[str, Any] = {
        "struct HCS_SYSTEM__": pool.system,
        "struct HCS_PROCESS__": pool.process,
        "struct HCS_OPERATION__": op,
    }
    if item.kind == "struct" and item.cname in valid and not releases and draw(st.booleans()):
        return valid[item.cname]
    choice = draw(st.sampled_from(["null", "garbage", "buffer"]))
    if choice == "null":
        return ffi.NULL
    handle = item.kind == "void" or (item.kind == "struct" and item.cname.endswith("__"))
    if handle:
        # A handle value nobody issued (handles are keys, never dereferenced) or NULL: a
        # garbage pointer to real data would crash C code on Windows too, so it is not sent.
        return ffi.cast(cname, draw(st.integers(1, 2**31))) if choice == "garbage" else ffi.NULL
    try:
        buffer = ffi.new(cname)
    except TypeError:
        return ffi.NULL
    keep.append(buffer)
    return buffer


def _snapshot(table: Table, c: CApi) -> tuple[Any, ...]:
    """What a failed call must leave unchanged: the systems the service reports and every
    counter of the client."""
    code, listing = c.run(lambda op: table.HcsEnumerateComputeSystems(ffi.NULL, op))
    assert code == 0
    systems = sorted((s["Id"], s["State"]) for s in json.loads(listing or "[]"))
    counters = dict(table.client.counters())
    del counters["bad_frees"]  # LocalFree of a bad pointer is counted, and changes nothing
    return tuple(systems), tuple(sorted(counters.items()))


FUNCTIONS = sorted(cdefs.signatures())


@pytest.mark.parametrize("name", FUNCTIONS)
@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_hostile_arguments_fail_one_call_only(  # noqa: PLR0917 - pytest fixtures
    name: str,
    data: st.DataObject,
    module_table: Table,
    pool: Pool,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    table, c = module_table, pool.c
    monkeypatch.chdir(tmp_path)  # relative paths a storage call may create land here
    signature = cdefs.signatures()[name]
    ctype = ffi.typeof(signature)
    names = _param_names(signature)
    releases = bool(_RELEASES.search(name))
    op = table.HcsCreateOperation(ffi.NULL, ffi.NULL)
    keep: list[Any] = []
    try:
        args = [
            _argument(data.draw, arg, arg_name, pool, op, releases, keep)
            for arg, arg_name in zip(ctype.args, names, strict=True)
        ]
        before = _snapshot(table, c)
        files = sorted(p.name for p in tmp_path.iterdir())
        result = getattr(table, name)(*args)
        failed = ctype.result.cname == "long" and (int(result) & 0x80000000)
        if any(a is op for a in args) and not failed and ctype.result.cname == "long":
            doc = ffi.new("PWSTR *")
            code = table.HcsWaitForOperationResult(op, 10_000, doc)
            c.take(doc)
            failed = (code & 0xFFFFFFFF) not in (hr.S_OK, hr.HCS_E_OPERATION_NOT_STARTED)
        _free_outputs(c, name, ctype, args)
        assert table.errors == [], (name, table.errors)
        assert not table.client.connection.disconnected
        if failed:
            assert _snapshot(table, c) == before, name
            assert sorted(p.name for p in tmp_path.iterdir()) == files, name
    finally:
        table.HcsCloseOperation(op)


_HCN_KINDS = ("GuestNetworkService", "LoadBalancer", "Namespace", "Endpoint", "Network")


def _free_outputs(c: CApi, name: str, ctype: Any, args: list[Any]) -> None:
    """What a call returned through out-parameters is the caller's: strings are freed and
    handles closed (HCS hands out a system handle even when the create then fails)."""
    for arg, arg_type in zip(args, ctype.args, strict=True):
        if arg == ffi.NULL or arg_type.kind != "pointer" or arg_type.item.kind != "pointer":
            continue
        value = arg[0]
        if value == ffi.NULL:
            continue
        if arg_type.cname == "char16_t * *":
            c.take(arg)
        elif arg_type.item.cname == "struct HCS_SYSTEM__ *":
            c.t.HcsCloseComputeSystem(value)
        elif arg_type.item.cname == "struct HCS_PROCESS__ *":
            c.t.HcsCloseProcess(value)
        elif arg_type.item.cname == "void *" and "Register" in name:
            getattr(c.t, name.replace("Register", "Unregister"))(value)
        elif arg_type.item.cname == "void *" and name.startswith("Hcn"):
            kind = next(k for k in _HCN_KINDS if k in name)
            getattr(c.t, f"HcnClose{kind}")(value)
