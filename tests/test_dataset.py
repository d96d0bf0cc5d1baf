"""suitebench.store: a run reads back as its completed repetitions, typed, or fails with one clear error."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from suitebench import store
from suitebench.errors import BenchError


def _metadata(
    run_id: str, *, status: str = "complete", profile: str | None = None, started_at: str = "2024-01-01T00:00:00+00:00"
) -> dict:
    return {
        "schema_version": store.SCHEMA_VERSION,
        "run_id": run_id,
        "status": status,
        "profile": profile,
        "started_at": started_at,
        "variants": [{"label": "baseline"}, {"label": "transactional"}],
        "schedule": [{"repetition": 0}, {"repetition": 1}],
    }


def _repetition(repetition: int, *, variant: str, warmup: bool = False, valid: bool = True) -> dict:
    return {
        "run_id": "r1",
        "repetition": repetition,
        "block": repetition // 2,
        "order": repetition % 2,
        "variant": variant,
        "warmup": warmup,
        "valid": valid,
        "invalid_reason": "" if valid else "1 test(s) failed or errored",
        "exit_code": 0 if valid else 1,
        "wall_s": 1.5 + repetition,
        "n_tests": 2,
        "n_passed": 2 if valid else 1,
        "n_failed": 0 if valid else 1,
        "started_at": "2024-01-01T00:00:00+00:00",
        "finished_at": "2024-01-01T00:00:01+00:00",
    }


def _timings(repetition: int, *, variant: str) -> pd.DataFrame:
    rows = []
    for test in ("tests/test_a.py::test_one", "tests/test_a.py::test_two[a,b]"):
        for phase, seconds in (("setup", 0.1), ("call", 0.2), ("teardown", 0.05), ("total", 0.35)):
            rows.append(
                {
                    "run_id": "r1",
                    "repetition": repetition,
                    "block": repetition // 2,
                    "order": repetition % 2,
                    "variant": variant,
                    "warmup": False,
                    "valid": True,
                    "test": test,
                    "category": "crud",
                    "outcome": "passed",
                    "phase": phase,
                    "seconds": seconds,
                    "sql_statements": 3,
                    "ddl_statements": 0,
                    "connections_opened": 1,
                    "commits": 1,
                    "rollbacks": 0,
                    "savepoints": 0,
                }
            )
    return pd.DataFrame(rows)


def _write_run(run_dir, *, repetitions: int = 2, **metadata_options) -> None:
    run_dir.mkdir(parents=True)
    store.write_metadata(run_dir, _metadata(run_dir.name, **metadata_options))
    for repetition in range(repetitions):
        variant = ("baseline", "transactional")[repetition % 2]
        store.append_frame(
            run_dir / store.TIMINGS_FILE, _timings(repetition, variant=variant), columns=store.TIMING_COLUMNS
        )
        store.append_frame(
            run_dir / store.REPETITIONS_FILE,
            pd.DataFrame([_repetition(repetition, variant=variant, valid=repetition != 1)]),
            columns=store.REPETITION_COLUMNS,
        )


def test_load_run_returns_typed_tables(tmp_path):
    _write_run(tmp_path / "r1")
    run = store.load_run(tmp_path / "r1")

    assert run.run_id == "r1"
    assert run.metadata["status"] == "complete"
    assert list(run.repetitions.columns) == list(store.REPETITION_COLUMNS)
    assert list(run.timings.columns) == list(store.TIMING_COLUMNS)
    assert run.repetitions["valid"].tolist() == [True, False]
    assert run.repetitions["warmup"].dtype == bool
    assert run.repetitions["wall_s"].tolist() == [1.5, 2.5]
    assert run.repetitions["invalid_reason"].tolist() == ["", "1 test(s) failed or errored"]
    assert len(run.timings) == 2 * 2 * 4
    assert "tests/test_a.py::test_two[a,b]" in set(run.timings["test"])
    assert run.timings["sql_statements"].sum() == 3 * 16
    assert run.measured_repetitions["repetition"].tolist() == [0]


def test_load_run_ignores_truncated_line_and_orphan_timing_rows(tmp_path):
    run_dir = tmp_path / "r1"
    _write_run(run_dir)
    # A kill during repetition 2: its timing rows were written, its repetition row only half.
    store.append_frame(run_dir / store.TIMINGS_FILE, _timings(2, variant="baseline"), columns=store.TIMING_COLUMNS)
    with open(run_dir / store.REPETITIONS_FILE, "a") as handle:
        handle.write("r1,2,1,0,baseline,False,Tr")
    with open(run_dir / store.TIMINGS_FILE, "a") as handle:
        handle.write("r1,2,1,0,baseline,False,True,tests/test_a.py::test_thr")

    run = store.load_run(run_dir)
    assert run.repetitions["repetition"].tolist() == [0, 1]
    assert sorted(set(run.timings["repetition"])) == [0, 1]


def test_load_run_of_missing_directory_is_a_clear_error(tmp_path):
    with pytest.raises(BenchError, match="no run at"):
        store.load_run(tmp_path / "absent")


def test_load_run_without_metadata_is_a_clear_error(tmp_path):
    with pytest.raises(BenchError, match="not a run directory"):
        store.load_run(tmp_path)


def test_load_run_rejects_other_schema_version(tmp_path):
    _write_run(tmp_path / "r1")
    path = tmp_path / "r1" / store.METADATA_FILE
    path.write_text(json.dumps({**json.loads(path.read_text()), "schema_version": 99}))
    with pytest.raises(BenchError, match="schema_version 99"):
        store.load_run(tmp_path / "r1")


def test_load_run_without_completed_repetitions_is_a_clear_error(tmp_path):
    _write_run(tmp_path / "r1", repetitions=0)
    with pytest.raises(BenchError, match="no completed repetitions"):
        store.load_run(tmp_path / "r1")


def test_list_runs_orders_by_start_and_filters_by_profile(tmp_path):
    _write_run(tmp_path / "late", started_at="2024-03-01T00:00:00+00:00", profile="quick")
    _write_run(tmp_path / "early", started_at="2024-01-01T00:00:00+00:00", profile="full")
    (tmp_path / "not-a-run").mkdir()

    assert [s.run_id for s in store.list_runs(tmp_path)] == ["early", "late"]
    assert [s.run_id for s in store.list_runs(tmp_path, profile="full")] == ["early"]
    summary = store.list_runs(tmp_path)[0]
    assert (summary.planned_repetitions, summary.completed_repetitions) == (2, 2)


def test_latest_run_skips_incomplete_runs_unless_asked(tmp_path):
    _write_run(tmp_path / "done", started_at="2024-01-01T00:00:00+00:00")
    _write_run(tmp_path / "cut", started_at="2024-02-01T00:00:00+00:00", status="interrupted")

    assert store.latest_run(tmp_path) == tmp_path / "done"
    assert store.latest_run(tmp_path, include_incomplete=True) == tmp_path / "cut"


def test_latest_run_without_runs_is_a_clear_error(tmp_path):
    _write_run(tmp_path / "r1", profile="quick")
    with pytest.raises(BenchError, match="no complete runs with profile 'full'"):
        store.latest_run(tmp_path, profile="full")
    with pytest.raises(BenchError, match="no complete runs"):
        store.latest_run(tmp_path / "nothing-here")
