"""`python -m suitebench`: the engine's command line (see suitebench.cli)."""

import sys

from suitebench.cli import main

if __name__ == "__main__":
    sys.exit(main())
