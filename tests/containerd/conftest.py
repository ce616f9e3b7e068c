"""Fixtures of the containerd tier (issue 9): Debian's containerd, started privately, with a
busybox image built here, driving a runc-compatible binary through its stock runc shim.

The tools come from Debian packages (the README's test command installs them). Without them,
or without root, the tests skip with the reason; under CI (``CI=true``) they fail instead,
so a broken install cannot pass unnoticed.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.containerd import harness

#: The runtimes every scenario runs with; pyrunhcs is expected to fail until it is merged.
RUNTIMES = [
    pytest.param("runc", id="runc"),
    pytest.param("pyrunhcs", id="pyrunhcs"),
]
#: Debian packages to install for this tier (the README's test command has them).
PACKAGES = (
    "containerd runc busybox-static umoci skopeo golang-go golang-github-containerd-go-runc-dev"
)


def in_ci() -> bool:
    """Whether we run under CI (``CI`` set to true/1/yes), where a missing tool is a failure."""
    return os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}


def require_tools(*, go: bool = False) -> None:
    """Skip (fail under CI) unless we are root and the Debian packages are installed."""
    reason = None
    if os.geteuid() != 0:
        reason = "the containerd tests need root (containerd, runc and overlay mounts)"
    elif missing := harness.missing_packages(go=go):
        reason = f"missing Debian packages {' '.join(missing)} (apt-get install -y {PACKAGES})"
    if reason is None:
        return
    if in_ci():
        pytest.fail(f"CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def busybox_image(tmp_path_factory: pytest.TempPathFactory) -> harness.BusyboxImage:
    """The busybox OCI image, built once per session."""
    require_tools()
    return harness.build_busybox_image(tmp_path_factory.mktemp("busybox-image"))


@pytest.fixture(scope="session")
def containerd(
    tmp_path_factory: pytest.TempPathFactory, busybox_image: harness.BusyboxImage
) -> Iterator[harness.Containerd]:
    """A containerd of the session's own with the image imported; stopped afterwards (by
    pid), with what it left in /run/containerd/s removed."""
    directory = tmp_path_factory.mktemp("containerd")
    own_directory = None
    if len(os.fsencode(directory / "ttrpc.sock")) > 100:  # sun_path has 108 bytes
        own_directory = Path(tempfile.mkdtemp(prefix="pyhcs-ctrd-"))
        directory = own_directory
    daemon = harness.Containerd(directory)
    daemon.start()
    try:
        daemon.import_image(busybox_image)
        yield daemon
    finally:
        daemon.stop()
        if own_directory is not None:
            shutil.rmtree(own_directory)


@pytest.fixture(params=RUNTIMES)
def runtime_binary(request: pytest.FixtureRequest) -> Path:
    """The runc-compatible binary under test: Debian's runc, or pyrunhcs when installed."""
    name: str = request.param
    if name == "runc":
        require_tools()
        path = harness.which("runc")
        assert path is not None  # require_tools checked it
        return Path(path)
    found = shutil.which("pyrunhcs")
    if found is None:
        message = "no pyrunhcs executable on PATH (install pyhcs: pip install -e .)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return Path(found)


@pytest.fixture
def runtime(runtime_binary: Path, containerd: harness.Containerd) -> Iterator[harness.Runtime]:
    """``runtime_binary`` driven through ``containerd``; the test's containers are removed
    afterwards, whether it passed or not."""
    under_test = harness.Runtime(containerd, runtime_binary)
    try:
        yield under_test
    finally:
        under_test.cleanup()
