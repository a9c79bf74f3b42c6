"""``python -m kit``: the command line (kit.cli.commands)."""

import sys

from kit.cli.commands import main

if __name__ == "__main__":
    sys.exit(main())
