"""``python -m pyhcs.emulator serve|status|stop`` (same as ``pyhcs emulator ...``)."""

import sys

from pyhcs.emulator.cli import main

sys.exit(main(["emulator", *sys.argv[1:]]))
