"""Ratios for the C-level layer: lazy function table vs plain dlopen, and UTF-16 marshalling.

Uses the C stand-in DLL of the tests (compiled here), so it runs on any host with a compiler.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import timeit
from pathlib import Path

from pyhcs.raw import NativeLibrary, ffi, read_wide, wide

REPO = Path(__file__).resolve().parent.parent
DOCUMENT = json.dumps(
    {
        "Owner": "pyhcs",
        "SchemaVersion": {"Major": 2, "Minor": 1},
        "Container": {
            "GuestOs": {"HostName": "bench"},
            "Storage": {
                "Layers": [{"Id": "0" * 8 + "-0000-0000-0000-" + "0" * 12, "Path": "C:\\l"}]
            },
            "MappedDirectories": [{"HostPath": "C:\\h", "ContainerPath": "C:\\c"}] * 8,
        },
    }
)


def _best(statement: object, number: int) -> float:
    return min(timeit.repeat(statement, number=number, repeat=5)) / number  # type: ignore[arg-type]


def main() -> int:
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        print("bench_raw: needs a C compiler (cc/gcc)", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        so = Path(tmp) / "fakecore.so"
        subprocess.run(
            [
                compiler,
                "-shared",
                "-fPIC",
                "-O1",
                "-o",
                str(so),
                str(REPO / "tests/native/fakecore.c"),
            ],
            check=True,
        )
        lazy = NativeLibrary(paths={"computecore.dll": str(so)})
        plain = ffi.dlopen(str(so))
        op = plain.HcsCreateOperation(ffi.NULL, ffi.NULL)
        lazy.HcsGetOperationType(op)  # warm: resolve once
        n = 200_000
        t_lazy = _best(lambda: lazy.HcsGetOperationType(op), n)
        t_plain = _best(lambda: plain.HcsGetOperationType(op), n)
        plain.HcsCloseOperation(op)
    n = 20_000
    t_wide = _best(lambda: read_wide(ffi.cast("PCWSTR", wide(DOCUMENT))), n)
    t_encode = _best(lambda: DOCUMENT.encode("utf-16-le").decode("utf-16-le"), n)
    print(f"lazy table call / plain dlopen call:          {t_lazy / t_plain:5.2f}x")
    print(f"wide()+read_wide() / utf-16 encode+decode:    {t_wide / t_encode:5.2f}x")
    print(f"(document of {len(DOCUMENT)} characters)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
