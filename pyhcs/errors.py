"""Placeholder while the full module is written (see the foundation issue)."""

from __future__ import annotations


class HcsError(Exception):
    """Root of every pyhcs error."""


class CdefsNotFoundError(HcsError):
    """The packaged C declarations are missing or incomplete."""
