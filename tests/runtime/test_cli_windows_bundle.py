"""A Windows bundle (``windows.layerFolders``) through the CLI: create attaches the writable
layer's storage filter and records it, so the container sees its layers' union and
``delete`` detaches it again."""

from __future__ import annotations

import json
from pathlib import Path

from pyhcs.testing import Layers
from tests.runtime.support import Runtime


def test_a_windows_bundle_runs_on_its_layers_and_delete_detaches(
    runtime: Runtime, hcs_layers: Layers, tmp_path: Path
) -> None:
    base = hcs_layers.base({"hello.txt": "from the base layer\n"})
    scratch = hcs_layers.writable([base])
    bundle = tmp_path / "windows-bundle"
    bundle.mkdir()
    config = {
        "ociVersion": "1.0.2",
        "process": {"args": ["cat", "hello.txt"], "cwd": "C:\\"},
        "windows": {"layerFolders": [str(base.path), str(scratch.path)]},
    }
    (bundle / "config.json").write_text(json.dumps(config))
    result = runtime("run", "-b", str(bundle), "win1")
    assert (result.returncode, result.stdout) == (0, "from the base layer\n"), result.stderr
    if "win1" in runtime("list", "-q").stdout.split():
        assert runtime("delete", "win1").returncode == 0
    # The filter is detached again (by run's end or by delete): an attached layer could not be
    # destroyed (ERROR_BUSY).
    scratch.destroy()
    assert not Path(scratch.path).exists()
