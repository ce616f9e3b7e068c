"""pyrunhcs: a runc/runhcs-compatible runtime over OCI bundles, built on pyhcs's public API only.

Each command is a short process (``pyrunhcs create|start|state|kill|...``); what must outlive it
(the system and process handles, the stdio relay, the exit code) lives in a small per-container
shim process. Modules: ``oci`` (the OCI spec and state documents), ``convert`` (a bundle as HCS
documents: `plan.Plan`), ``state`` (one directory per container under ``--root``), ``shim``,
``cli``. Nothing here imports ``pyhcs.raw`` or the emulator.
"""
