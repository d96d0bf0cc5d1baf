"""`python -m quiz_study` (or `python -m harness`): the study's command line (see quiz_study.cli)."""

import sys

from quiz_study.cli import main

if __name__ == "__main__":
    sys.exit(main())
