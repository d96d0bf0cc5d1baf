"""`python -m harness`: kept for the study's commands; the study lives in `quiz_study`."""

import sys

from quiz_study.cli import main

if __name__ == "__main__":
    sys.exit(main())
