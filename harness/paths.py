"""Path constants of the project tree, computed from this package's location (no side effects)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT: Path = Path(__file__).resolve().parent.parent
DATA: Path = ROOT / "data"
RUNS: Path = DATA / "runs"
BASELINES: Path = DATA / "baselines"
REPORTS: Path = ROOT / "reports"
SUITE: Path = ROOT / "suite"
NOTEBOOKS: Path = ROOT / "notebooks"

# A run id names a directory under RUNS: no separators, no leading dot.
RUN_ID_PATTERN: re.Pattern[str] = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
