"""The ``hcs_layers`` fixture of the pytest plugin: fresh layers a container can run on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pyhcs import ComputeSystem, LayerChain
from pyhcs.testing import Emulator, Layers


def test_fresh_layers_are_a_container_root(hcs: Emulator, hcs_layers: Layers) -> None:
    base = hcs_layers.base({"etc/motd": "from the base\n", "etc/shadowed": "base\n"})
    app = hcs_layers.layer({"etc/shadowed": "app\n"}, [base], name="app")
    chain = LayerChain([app, base])
    scratch = hcs_layers.writable(chain)
    doc: dict[str, Any] = {
        "SchemaVersion": {"Major": 2, "Minor": 1},
        "ShouldTerminateOnLastHandleClosed": True,
        "Container": {"Storage": chain.storage(scratch)},
    }
    with scratch.attached(chain), ComputeSystem.create("plugin-layers", doc) as system:
        system.start()
        assert system.run(["cat", "etc/motd", "etc/shadowed"]).stdout == b"from the base\napp\n"
        system.terminate()
        system.wait(10)


def test_cleanup_destroys_every_layer_even_one_left_attached(hcs: Emulator, tmp_path: Path) -> None:
    layers = Layers(tmp_path / "own")
    base = layers.base()
    scratch = layers.writable([base])
    scratch.attach_filter([base])  # the test "forgets" to detach
    layers.cleanup()
    assert not Path(base.path).exists()
    assert not Path(scratch.path).exists()
