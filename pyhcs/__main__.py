"""``python -m pyhcs`` is the ``pyhcs`` command."""

from pyhcs.cli import main

raise SystemExit(main())
