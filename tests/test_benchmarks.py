"""The benchmarks run: a tiny ``--quick`` pass of bench_api.py (its numbers are not checked;
benchmarks print ratios, tests never assert times)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_bench_api_quick_run_prints_a_table_and_writes_json(tmp_path: Path) -> None:
    output = tmp_path / "bench_api.json"
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks" / "bench_api.py"),
            "--quick",
            "--json",
            str(output),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(output.read_text())
    assert report["quick"] is True
    sections = {row["section"] for row in report["rows"]}
    assert sections == set("abcde")
    names = [row["name"] for row in report["rows"]]
    assert any(name.startswith("native: ") for name in names)
    assert any(name.startswith("emulator: ") for name in names)
    for row in report["rows"]:
        assert row["value"] is not None or row["note"].startswith("n/a"), row
        assert row["name"] in result.stdout
