"""The service half: runs in the emulator service process (``pyhcs emulator serve``)."""
