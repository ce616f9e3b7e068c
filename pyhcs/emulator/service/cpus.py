"""The host's processors, read from /proc: what service properties and saved states report."""

from __future__ import annotations

import os
from typing import Any


def logical() -> list[dict[str, int]]:
    """Logical processors of the host: index, package and core from /proc/cpuinfo."""
    found: list[dict[str, int]] = []
    current: dict[str, int] = {}
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            lines = [*f.read().splitlines(), ""]
    except OSError:
        lines = []
    for line in lines:
        if not line.strip():
            if "processor" in current:
                found.append(current)
            current = {}
            continue
        key, _sep, value = (part.strip() for part in line.partition(":"))
        if key in ("processor", "physical id", "core id") and value.isdigit():
            current[key] = int(value)
    if not found:
        found = [{"processor": i} for i in range(os.cpu_count() or 1)]
    return found


def features() -> list[str]:
    """The host CPU's feature flags (what a saved state records as processor requirements)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith(("flags", "Features")):
                    return sorted(set(line.split(":", 1)[1].split()))
    except OSError:
        return []
    return []


def requirements() -> dict[str, Any]:
    return {"LogicalProcessorCount": len(logical()), "ProcessorFeatures": features()}
