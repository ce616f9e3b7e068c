"""pyhcs: the Windows Host Compute Service from Python, with an emulator everywhere else."""

from __future__ import annotations

__version__ = "0.1.0.dev0"
