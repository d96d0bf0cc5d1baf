"""`python -m harness`: the study's command line (see harness.cli)."""

import sys

from harness.cli import main

if __name__ == "__main__":
    sys.exit(main())
