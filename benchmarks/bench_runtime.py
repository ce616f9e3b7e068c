"""pyrunhcs as container managers call it (issue 9): python benchmarks/bench_runtime.py

Container managers run the runtime binary once per operation, so what counts is the wall time
of a whole process: ``state``, ``list``, ``kill`` and ``create``+``start``, each timed as a
subprocess, median of several runs, next to Debian's runc doing the same on the same machine
(``runc not installed`` otherwise; apt-get install runc). Target: ``state`` and ``list`` at most
60 ms median. pyrunhcs runs on a private emulator service started here (its ``create`` starts
a shim that imports pyhcs's HCS layer; ``state``/``list`` import none of it). The ratio is what
to compare; absolute numbers depend on the machine.

``--quick`` runs each a few times only; ``--json FILE`` writes the rows.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
BOUND = 120.0


def timed(command: list[str], env: dict[str, str] | None = None) -> float:
    """Wall time (ms) of one whole process; it must succeed. Its stderr goes to a file: a
    shim (or runc's init) left running keeps the caller's stdio, a pipe would never end."""
    with tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        process = subprocess.Popen(
            command, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err
        )
        # Popen.wait(timeout) polls with growing sleeps (it would round times up to its steps):
        # wait on a pidfd instead, bounded.
        pidfd = os.pidfd_open(process.pid)
        try:
            ready, _w, _x = select.select([pidfd], [], [], BOUND)
        finally:
            os.close(pidfd)
        if not ready:
            process.kill()
            process.wait()
            raise subprocess.TimeoutExpired(command, BOUND)
        code = process.wait()
        spent = (time.perf_counter() - start) * 1000.0
        if code != 0:
            err.seek(0)
            raise subprocess.CalledProcessError(code, command, stderr=err.read())
    return spent


class Tool:
    """One runtime binary with its own root, and a bundle running ``sleep``."""

    def __init__(self, name: str, argv: list[str], root: Path, bundle: Path, env: dict[str, str]):
        self.name = name
        self.argv = [*argv, "--root", str(root)]
        self.bundle = bundle
        self.env = env
        self.count = 0

    def __call__(self, *args: str) -> float:
        return timed([*self.argv, *args], self.env)

    def fresh(self) -> str:
        """A new id (created and started, running ``sleep``) and the time that took."""
        self.count += 1
        return f"bench{self.count}"

    def create_start(self) -> tuple[str, float]:
        container_id = self.fresh()
        spent = self("create", "--bundle", str(self.bundle), container_id)
        spent += self("start", container_id)
        return container_id, spent

    def cleanup(self) -> None:
        listed = subprocess.run(
            [*self.argv, "list", "-q"], env=self.env, capture_output=True, check=False
        )
        for container_id in listed.stdout.decode().split():
            subprocess.run(
                [*self.argv, "delete", "--force", container_id],
                env=self.env,
                capture_output=True,
                check=False,
                timeout=BOUND,
            )


def busybox_bundle(directory: Path) -> Path | None:
    """A bundle runc can run: busybox-static's sleep in a rootfs of its own."""
    busybox = shutil.which("busybox")
    runc = shutil.which("runc")
    if busybox is None or runc is None:
        return None
    (directory / "rootfs" / "bin").mkdir(parents=True)
    shutil.copy(busybox, directory / "rootfs" / "bin" / "busybox")
    for applet in ("sh", "sleep"):
        os.symlink("busybox", directory / "rootfs" / "bin" / applet)
    subprocess.run([runc, "spec", "--bundle", str(directory)], check=True)
    spec = json.loads((directory / "config.json").read_text())
    spec["process"]["terminal"] = False
    spec["process"]["args"] = ["sleep", "600"]
    (directory / "config.json").write_text(json.dumps(spec))
    return directory


def pyrunhcs_bundle(directory: Path) -> Path:
    (directory / "rootfs").mkdir(parents=True)
    spec = {
        "ociVersion": "1.0.2",
        "process": {"args": ["sleep", "600"], "cwd": "/", "env": ["PATH=/usr/bin:/bin"]},
        "root": {"path": "rootfs"},
    }
    (directory / "config.json").write_text(json.dumps(spec))
    return directory


def measure(tool: Tool, runs: int) -> dict[str, float]:
    """Median wall time (ms) of each operation."""
    results: dict[str, list[float]] = {"create+start": [], "state": [], "list": [], "kill": []}
    ids = []
    for _ in range(max(2, runs // 5)):
        container_id, spent = tool.create_start()
        ids.append(container_id)
        results["create+start"].append(spent)
    for _ in range(runs):
        results["state"].append(tool("state", ids[0]))
        results["list"].append(tool("list"))
    for container_id in ids:
        results["kill"].append(tool("kill", container_id, "KILL"))
    return {op: statistics.median(values) for op, values in results.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few runs of each only")
    parser.add_argument("--json", type=Path, help="write the rows here")
    options = parser.parse_args()
    runs = 5 if options.quick else 30
    work = Path(tempfile.mkdtemp(prefix="bench-rt-"))
    from pyhcs.emulator import cli as emulator_cli  # noqa: PLC0415
    from pyhcs.emulator.client import autostart  # noqa: PLC0415

    service = autostart.start(work / "emulator")
    env = dict(os.environ)
    env.update(
        PYHCS_BACKEND="emulator",
        PYHCS_EMULATOR_DIR=str(work / "emulator"),
        PYHCS_EMULATOR_AUTOSTART="0",
        PYTHONPATH=str(REPO),
    )
    tools: list[Tool] = [
        Tool(
            "pyrunhcs",
            [sys.executable, "-m", "pyhcs.runtime.cli"],
            work / "pyrunhcs-root",
            pyrunhcs_bundle(work / "pyrunhcs-bundle"),
            env,
        )
    ]
    runc_bundle = busybox_bundle(work / "runc-bundle")
    runc_note = ""
    if runc_bundle is None:
        runc_note = "runc not installed"
    else:
        runc = Tool("runc", ["runc"], work / "runc-root", runc_bundle, dict(os.environ))
        try:
            runc("list")
            tools.append(runc)
        except (subprocess.CalledProcessError, OSError) as exc:
            runc_note = f"runc cannot run containers here: {exc}"
    medians: dict[str, dict[str, float]] = {}
    bare = statistics.median(timed([sys.executable, "-c", "pass"]) for _ in range(runs))
    try:
        for tool in tools:
            try:
                medians[tool.name] = measure(tool, runs)
            except subprocess.CalledProcessError as exc:
                if tool.name == "pyrunhcs":
                    raise
                runc_note = f"runc failed: {exc.stderr.decode().strip()}"
            finally:
                tool.cleanup()
    finally:
        emulator_cli.stop(service)
        shutil.rmtree(work, ignore_errors=True)
    rows = _report(medians, runc_note, bare)
    if options.json:
        options.json.write_text(json.dumps({"quick": options.quick, "rows": rows}, indent=2))
    return 0


def _report(
    medians: dict[str, dict[str, float]], runc_note: str, bare: float
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = [{"op": "python -c pass", "pyrunhcs_ms": bare}]
    fmt: Callable[[float | None], str] = lambda v: "-" if v is None else f"{v:8.1f}"  # noqa: E731
    print(f"{'operation':<14}{'pyrunhcs ms':>12}{'runc ms':>10}{'ratio':>8}   target")
    for op in ("state", "list", "kill", "create+start"):
        ours = medians["pyrunhcs"][op]
        theirs = medians.get("runc", {}).get(op)
        ratio = None if theirs is None else ours / theirs
        target = "<= 60 ms" if op in ("state", "list") else ""
        verdict = "" if not target else (" ok" if ours <= 60.0 else " MISSED")
        print(
            f"{op:<14}{fmt(ours):>12}{fmt(theirs):>10}"
            f"{'-' if ratio is None else f'{ratio:7.1f}x':>8}   {target}{verdict}"
        )
        rows.append({"op": op, "pyrunhcs_ms": ours, "runc_ms": theirs, "ratio": ratio})
    print(f"{'python -c pass':<14}{fmt(bare):>12}   (the interpreter alone, for scale)")
    if runc_note:
        print(runc_note)
    return rows


if __name__ == "__main__":
    sys.exit(main())
