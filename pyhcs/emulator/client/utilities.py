"""computecore's synchronous utility functions on the host filesystem.

Guest-state and runtime-state files are created empty (the emulator has no VM worker to fill
them); VM access grants check that the file exists, since there are no ACLs for a VM account to
receive here; a WER report is validated and accepted.
"""

from __future__ import annotations

import json
from pathlib import Path

from pyhcs import hresult as hr
from pyhcs.emulator.client.computestorage import StorageError


def create_empty_file(path: str) -> None:
    target = Path(path)
    if not target.parent.is_dir():
        raise StorageError(hr.ERROR_PATH_NOT_FOUND, f"{target.parent} does not exist")
    target.touch()


def grant_access(vm_id: str, path: str | None = None) -> None:
    target = Path(path if path is not None else vm_id)
    if not target.exists():
        raise StorageError(hr.ERROR_FILE_NOT_FOUND, f"{target} does not exist")


def submit_wer_report(settings: str) -> None:
    try:
        json.loads(settings)
    except json.JSONDecodeError as exc:
        raise StorageError(hr.HCS_E_INVALID_JSON, f"crash report: {exc.msg}") from exc
