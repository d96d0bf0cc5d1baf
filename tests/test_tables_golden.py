"""The report's tables from a stored small run are exactly the stored tables.

`tests/data/golden-small/run` is a real run (smoke selection, both presets, 3 repetitions)
recorded before the engine moved into `suitebench`; `tables/` holds every table the code of that
time computed from it. The layout change had to leave them identical: `run_all.py`, the
notebooks and `tables_for_run` all read these tables. When the analysis changes on purpose, the
stored tables are rewritten with `python tests/test_tables_golden.py --regenerate` and the
difference is reviewed in the commit.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pandas as pd
import pytest

from quiz_study import tables

GOLDEN = Path(__file__).parent / "data" / "golden-small"
# Where the run was read from: the only cells that depend on the machine, not on the data.
PATH_COLUMNS = {"run": ("run_dir", "runs_dir")}


def computed_tables(workdir: Path) -> dict[str, pd.DataFrame]:
    runs = workdir / "runs"
    shutil.copytree(GOLDEN / "run", runs / "golden-small")
    return tables.tables_for_run(runs / "golden-small", runs_dir=runs)


def as_stored(frame: pd.DataFrame, path: Path) -> pd.DataFrame:
    """A table as its CSV file reads back (the form run_all.py writes and the golden is kept in)."""
    frame.to_csv(path, index=False)
    return pd.read_csv(path, keep_default_na=False)


@pytest.fixture(scope="module")
def computed(tmp_path_factory) -> dict[str, pd.DataFrame]:
    return computed_tables(tmp_path_factory.mktemp("golden"))


def test_every_stored_table_is_computed_and_no_other(computed):
    assert set(computed) == {path.stem for path in (GOLDEN / "tables").glob("*.csv")}


@pytest.mark.parametrize("name", sorted(path.stem for path in (GOLDEN / "tables").glob("*.csv")))
def test_table_is_identical_to_the_stored_one(computed, name, tmp_path):
    stored = pd.read_csv(GOLDEN / "tables" / f"{name}.csv", keep_default_na=False)
    now = as_stored(computed[name], tmp_path / f"{name}.csv")
    ignored = list(PATH_COLUMNS.get(name, ()))
    pd.testing.assert_frame_equal(now.drop(columns=ignored), stored.drop(columns=ignored), check_exact=True)


def regenerate() -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        for name, frame in computed_tables(Path(scratch)).items():
            frame.to_csv(GOLDEN / "tables" / f"{name}.csv", index=False)


if __name__ == "__main__" and sys.argv[1:] == ["--regenerate"]:
    regenerate()
