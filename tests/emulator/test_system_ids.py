"""HCS ids are arbitrary strings: on disk they never alias, escape or hit the service's files."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from pyhcs.emulator import statedir
from pyhcs.emulator.client.table import Table
from pyhcs.emulator.service.computecore import system_dir_name
from pyhcs.raw.ffi import ffi
from tests.emulator.capi import CApi, read_all
from tests.emulator.conftest import CONTAINER

#: Ids that once escaped or aliased: "." deleted systems/, ".." the service's own files.
HOSTILE = [".", "..", "col/x", "col_x", "../../etc", "a" * 100 + "1", "a" * 100 + "2", "Ünï cødé"]


@given(st.text(), st.text())
def test_distinct_ids_get_distinct_plain_folder_names(a: str, b: str) -> None:
    for system_id in (a, b):
        name = system_dir_name(system_id)
        assert name not in (".", "..")
        assert "/" not in name
        assert "\0" not in name
        assert len(name.encode()) <= 255
    assert (system_dir_name(a) == system_dir_name(b)) == (a == b)


def test_hostile_ids_keep_their_own_root(service_dir: Path, table: Table, c: CApi) -> None:
    systems = []
    for number, system_id in enumerate(HOSTILE):
        system, code, _ = c.create(system_id, CONTAINER)
        assert code == 0, system_id
        assert c.system_op("HcsStartComputeSystem", system) == (0, None)
        params = {"CommandLine": f'sh -c "echo {number} > mine.txt"'}
        process, code, _info, _ = c.spawn(system, params)
        assert code == 0
        assert c.wait_process(process)[1]["ExitCode"] == 0
        table.HcsCloseProcess(process)
        systems.append(system)
    # The id is what HCS reports, whatever the folder is called.
    reported = json.loads(
        c.run(lambda op: table.HcsEnumerateComputeSystems(ffi.NULL, op))[1] or "[]"
    )
    assert sorted(s["Id"] for s in reported) == sorted(HOSTILE)
    roots = sorted(p.name for p in (service_dir / statedir.SYSTEMS_NAME).iterdir())
    assert len(roots) == len(HOSTILE)
    # Forget "." and "..": the others keep their C:\, the service keeps its files.
    for system in systems[:2]:
        assert c.system_op("HcsTerminateComputeSystem", system)[0] == 0
        table.HcsCloseComputeSystem(system)
    for name in (statedir.SOCKET_NAME, statedir.PID_NAME, statedir.LOCK_NAME):
        assert (service_dir / name).exists(), name
    for number, system in enumerate(systems[2:], start=2):
        reader = {"CommandLine": "cat mine.txt", "CreateStdOutPipe": True}
        process, code, info, _ = c.spawn(system, reader)
        assert code == 0
        assert read_all(info.StdOutput).decode().strip() == str(number), HOSTILE[number]
        assert table.CloseHandle(info.StdOutput) == 1
        assert c.wait_process(process)[1]["ExitCode"] == 0
        table.HcsCloseProcess(process)
        assert c.system_op("HcsTerminateComputeSystem", system)[0] == 0
        table.HcsCloseComputeSystem(system)
