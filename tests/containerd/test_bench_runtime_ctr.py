"""benchmarks/bench_runtime_ctr.py runs: a ``--quick`` pass (its numbers are not checked)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tests.conftest import REPO
from tests.containerd import harness
from tests.containerd.conftest import require_tools


def test_bench_runtime_ctr_quick_run_reports_every_runtime(tmp_path: Path) -> None:
    require_tools()
    output = tmp_path / "bench_runtime_ctr.json"
    script = REPO / "benchmarks" / "bench_runtime_ctr.py"
    result = harness.capture([sys.executable, script, "--quick", "--json", output], timeout=300)
    assert result.returncode == 0, result.stderr
    rows = json.loads(output.read_text())["rows"]
    assert {(row["workload"], row["runtime"]) for row in rows} == {
        (workload, runtime) for workload in ("true", "echo") for runtime in ("runc", "pyrunhcs")
    }
    for row in rows:
        if row["runtime"] == "runc":
            assert row["ratio_to_runc"] == 1.0, row
        else:
            assert "best_s" in row or row["note"].startswith("n/a"), row
        assert row["workload"] in result.stdout
