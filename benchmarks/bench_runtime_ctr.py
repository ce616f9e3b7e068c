"""containerd + its runc shim with a runc-compatible binary (issue 9):
python benchmarks/bench_runtime_ctr.py [--rounds N] [--quick] [--json PATH]

Wall time of ``ctr run --rm`` of a short container (busybox ``true``, and ``echo``), the whole
path a container manager takes (containerd → containerd-shim-runc-v2 → the binary's
create/start/delete), through Debian's runc and through the ``pyrunhcs`` executable (n/a when
it is not on PATH), as ratios to runc. A private containerd runs in a temporary directory
(tests/containerd/harness.py) with a busybox image built there; needs root and the Debian
packages of the README's test command. The two runtimes alternate, round by round, and each
keeps its best and median round (the machines are shared and noisy); ``--quick`` is a smoke
run whose numbers mean nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # measure this checkout's harness
    sys.path.insert(0, str(REPO))

from tests.containerd import harness  # noqa: E402

DEFAULT_JSON = REPO / "benchmarks" / "results" / "bench_runtime_ctr.json"
WORKLOADS = {"true": ("true",), "echo": ("echo", "hello")}


def _runtimes() -> dict[str, Path | None]:
    runc = harness.which("runc")
    pyrunhcs = shutil.which("pyrunhcs")
    return {
        "runc": Path(runc) if runc else None,
        "pyrunhcs": Path(pyrunhcs) if pyrunhcs else None,
    }


def _one_run(runtime: harness.Runtime, command: tuple[str, ...]) -> float:
    """Seconds for one ``ctr run --rm``; RuntimeError if it did not exit 0."""
    container_id = runtime.new_id("bench")
    argv = runtime.run_command(container_id, *command, rm=True)
    start = time.perf_counter()
    result = subprocess.run(
        argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=120, check=False
    )
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        stderr = result.stderr.decode(errors="replace").strip()
        raise RuntimeError(f"ctr run exited {result.returncode}: {stderr}")
    return elapsed


def measure(rounds: int) -> list[dict[str, Any]]:
    """One row per (workload, runtime): best and median seconds, ratio to runc."""
    rows: list[dict[str, Any]] = []
    binaries = _runtimes()
    with tempfile.TemporaryDirectory(prefix="pyhcs-bench-ctrd-") as tmp:
        image = harness.build_busybox_image(Path(tmp) / "image")
        with harness.Containerd(Path(tmp) / "containerd") as containerd:
            containerd.import_image(image)
            runtimes = {
                name: harness.Runtime(containerd, path)
                for name, path in binaries.items()
                if path is not None
            }
            try:
                for workload, command in WORKLOADS.items():
                    times: dict[str, list[float]] = {name: [] for name in runtimes}
                    failures: dict[str, str] = {}
                    for round_number in range(rounds + 1):  # round 0 warms up, untimed
                        for name, runtime in runtimes.items():
                            if name in failures:
                                continue
                            try:
                                elapsed = _one_run(runtime, command)
                            except RuntimeError as error:
                                failures[name] = str(error)
                                continue
                            if round_number:
                                times[name].append(elapsed)
                    rows += _rows(workload, binaries, times, failures)
            finally:
                for runtime in runtimes.values():
                    runtime.cleanup()
    return rows


def _rows(
    workload: str,
    binaries: dict[str, Path | None],
    times: dict[str, list[float]],
    failures: dict[str, str],
) -> list[dict[str, Any]]:
    runc_best = min(times["runc"]) if times.get("runc") else None
    rows = []
    for name, path in binaries.items():
        row: dict[str, Any] = {
            "workload": workload,
            "runtime": name,
            "binary": str(path) if path else None,
        }
        samples = times.get(name) or []
        if path is None:
            row["note"] = "n/a: not on PATH"
        elif name in failures:
            row["note"] = f"n/a: failed: {failures[name][:200]}"
        elif samples:
            best, median = min(samples), statistics.median(samples)
            row |= {"best_s": best, "median_s": median, "rounds": len(samples)}
            if runc_best:
                row["ratio_to_runc"] = best / runc_best
        rows.append(row)
    return rows


def _print(rows: list[dict[str, Any]]) -> None:
    print(f"{'ctr run --rm':<16} {'runtime':<10} {'best ms':>9} {'median ms':>10} {'x runc':>8}")
    for row in rows:
        if "best_s" in row:
            ratio = row.get("ratio_to_runc")
            print(
                f"{row['workload']:<16} {row['runtime']:<10} {row['best_s'] * 1e3:>9.1f} "
                f"{row['median_s'] * 1e3:>10.1f} {f'{ratio:.2f}x' if ratio else '-':>8}"
            )
        else:
            print(f"{row['workload']:<16} {row['runtime']:<10} {row['note']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=15, help="timed runs per runtime")
    parser.add_argument("--quick", action="store_true", help="two rounds: a smoke run")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="where to write JSON")
    args = parser.parse_args(argv)
    if os.geteuid() != 0 or (missing := harness.missing_packages()):
        why = "not root" if os.geteuid() != 0 else f"missing Debian packages {missing}"
        print(f"bench_runtime_ctr: n/a ({why})")
        return 0
    rows = measure(2 if args.quick else args.rounds)
    _print(rows)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"quick": args.quick, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
