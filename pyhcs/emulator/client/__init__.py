"""The client half: runs in the user's process, behind ``pyhcs.raw.lib``."""
