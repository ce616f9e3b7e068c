"""The HCS emulator: the other side of the function table, off Windows.

The folders say which process runs a file:

- ``client/`` runs in the user's process: the function table behind ``pyhcs.raw.lib``
  (``table``), the C-level behaviour of each DLL (``computecore``, ``computestorage``,
  ``computenetwork``), the connection to the service and starting it on first use;
- ``service/`` runs in the long-lived service process (``pyhcs emulator serve``): compute
  systems and their host processes (``computecore``), HCN records (``computenetwork``), host
  settings, the socket server;
- the modules here are used by both: the wire ``protocol``, the checked ``statedir``, the JSON
  ``documents``, ``privilege`` (root or not, ``PYHCS_EMULATOR_UNPRIVILEGED``), and the ``cli``
  that starts, inspects and stops the service.
"""
