"""The HCS emulator: a long-lived service plus the client half behind ``pyhcs.raw.lib``.

See docs/emulator.md. ``backend.load()`` returns the function table; ``backend.open_table(dir)``
an independent one (tests, diagnostics via ``table.client.counters()``).
"""
