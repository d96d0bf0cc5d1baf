"""Path constants of the project tree, computed from this package's location (no side effects)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

ROOT: Path = Path(__file__).resolve().parent.parent
DATA: Path = ROOT / "data"
RUNS: Path = DATA / "runs"
BASELINES: Path = DATA / "baselines"
REPORTS: Path = ROOT / "reports"
SUITE: Path = ROOT / "suite"
NOTEBOOKS: Path = ROOT / "notebooks"

# The output root a notebook's relative data paths are under, like `run_all.py --output-root`.
OUTPUT_ROOT_ENV = "QUIZ_STUDY_OUTPUT_ROOT"


def notebook_data_path(path: Path | str, *, environ: Mapping[str, str] | None = None) -> Path:
    """A data path from a notebook's parameters, as the notebook means it.

    Absolute paths are kept. Relative ones (the defaults ``data/runs``, ``data/baselines``) are
    under ``$QUIZ_STUDY_OUTPUT_ROOT`` when set, else under the project root: never under the
    kernel's working directory, which JupyterLab sets to the notebook's own folder.
    """
    path = Path(path)
    if path.is_absolute():
        return path
    root = (os.environ if environ is None else environ).get(OUTPUT_ROOT_ENV) or ROOT
    return Path(root).absolute() / path


def display_path(path: Path | str) -> str:
    """A path as the reader should type it: relative to the project root when inside it."""
    path = Path(path).absolute()
    try:
        return path.relative_to(ROOT).as_posix()
    except ValueError:
        return path.as_posix()
