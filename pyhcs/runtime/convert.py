"""A minimal bundle conversion, standing in until the ``oci`` branch's converter replaces this
module (same two functions, same `Plan`).

Handles Linux-style bundles only: ``config.json`` read with ``json``; ``process`` (args, env,
cwd, terminal, consoleSize, user.username) becomes the init ``ProcessParameters``;
``root.path`` (relative to the bundle, the already-mounted rootfs) becomes
``Container.Storage.Path`` of a plain container. No utility VM, no layers, no mounts, so
nothing is allocated and ``Plan.resources`` stays empty.
"""

from __future__ import annotations

import json
import os
from typing import Any

from pyhcs.runtime.plan import Plan, SystemPlan
from pyhcs.runtime.procspec import ProcessSpecError, process_parameters


class BundleError(ValueError):
    """A bundle that cannot be run; nothing was created."""


def load_bundle(bundle: str) -> dict[str, Any]:
    """``bundle``/config.json as a dict (BundleError: no bundle, no config.json, bad JSON)."""
    if not os.path.isdir(bundle):
        raise BundleError(f"bundle {bundle}: no such directory")
    path = os.path.join(bundle, "config.json")
    try:
        with open(path, "rb") as f:
            spec = json.loads(f.read())
    except FileNotFoundError:
        raise BundleError("JSON specification file config.json not found") from None
    except json.JSONDecodeError as exc:
        raise BundleError(
            f"config.json: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    if not isinstance(spec, dict):
        raise BundleError("config.json must hold a JSON object")
    return spec


def plan(spec: dict[str, Any], bundle: str, container_id: str, *, owner: str = "pyrunhcs") -> Plan:
    """The HCS plan of one Linux-style bundle: one plain container system."""
    root = spec.get("root")
    if not isinstance(root, dict) or not isinstance(root.get("path"), str) or not root["path"]:
        raise BundleError("root.path must name the container's root file system")
    rootfs = os.path.join(os.path.abspath(bundle), root["path"])
    if not os.path.isdir(rootfs):
        raise BundleError(f"root.path {root['path']}: no such directory in the bundle")
    process = spec.get("process")
    init: dict[str, Any] = {}
    if process is not None:
        try:
            init = process_parameters(process)
        except ProcessSpecError as exc:
            raise BundleError(f"process: {exc}") from None
    container: dict[str, Any] = {"Storage": {"Path": rootfs}}
    hostname = spec.get("hostname")
    if isinstance(hostname, str) and hostname:
        container["GuestOs"] = {"HostName": hostname}
    document = {
        "SchemaVersion": {"Major": 2, "Minor": 1},
        "Owner": owner,
        "ShouldTerminateOnLastHandleClosed": True,
        "Container": container,
    }
    annotations = spec.get("annotations") or {}
    return Plan(
        container=container_id,
        systems=[SystemPlan(container_id, document)],
        init=init,
        terminal=bool(isinstance(process, dict) and process.get("terminal")),
        annotations={str(k): str(v) for k, v in annotations.items()},
    )
