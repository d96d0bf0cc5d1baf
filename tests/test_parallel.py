"""Parallel execution (issue 7, section 2): both presets pass under pytest-xdist with a database
per worker, the timing plugin's per-worker files merge to every test exactly once, and the
runner measures serial against parallel variants side by side."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd
import pytest
from suite_process import run_suite

from quiz_architectures import architectures
from quiz_architectures.isolation import TestDatabase
from quiz_study import environments, variants
from quiz_study import variants as study_variants
from suitebench import store
from suitebench.errors import BenchError

LIMITATION_TESTS = {
    "test_integration.py::test_flushed_user_logs_in_and_calls_protected_endpoint",
    "test_integration.py::test_token_revoked_in_this_test_is_rejected_by_blacklist_middleware",
    "test_integration.py::test_no_second_connection_during_request_cycle",
    "test_integration.py::test_role_granted_in_this_test_is_seen_by_authorization_middleware",
}
# By default the baseline under -n 2 (the transactional preset runs under -n 2 on PostgreSQL
# below); --run-slow adds both presets under -n auto and the other crossings.
CASES = [
    ("baseline", "2"),
    pytest.param("transactional", "auto", marks=pytest.mark.slow),
    pytest.param("baseline", "auto", marks=pytest.mark.slow),
    pytest.param("transactional", "2", marks=pytest.mark.slow),
]


@pytest.fixture
def parallel_run(suite_runs):
    """The suite under (preset, workers): one shared run per pair for the whole session."""
    return lambda preset, workers: suite_runs.get("--arch", preset, "-n", workers)


@pytest.mark.parametrize(("preset", "workers"), CASES)
def test_preset_passes_under_xdist(parallel_run, preset, workers):
    run = parallel_run(preset, workers)
    assert run.exit_code == 0, run.output[-3000:]
    outcomes = run.outcomes
    assert len(outcomes) >= 60
    expected_xfail = LIMITATION_TESTS if preset == "baseline" else set()
    assert {n for n, o in outcomes.items() if o == "xfailed"} == expected_xfail
    assert set(outcomes.values()) <= {"passed", "xfailed"}


@pytest.mark.parametrize(("preset", "workers"), CASES)
def test_merged_timing_data_has_every_test_exactly_once(parallel_run, preset, workers):
    run = parallel_run(preset, workers)
    tests = Counter(r["nodeid"] for r in run.records if r.get("kind") == "test")
    assert tests and set(tests.values()) == {1}
    sessions = [r for r in run.records if r.get("kind") == "session"]
    # One file per worker, none from the controller; each worker prepared its own database.
    assert len(sessions) == 2
    databases = [r for r in run.records if r.get("kind") == "fixture" and r["name"] == "database"]
    assert len(databases) == 2
    frame = run.frame()
    assert frame[frame["phase"] == "total"]["test"].is_unique


def test_serial_and_parallel_runs_hold_the_same_tests(parallel_run, tmp_path):
    serial = run_suite("--arch", "baseline", "--collect-only", workdir=tmp_path)
    assert serial.exit_code == 0
    parallel_tests = set(parallel_run("baseline", "2").outcomes)
    collected = {line.strip() for line in serial.output.splitlines() if "::" in line}
    assert parallel_tests == collected


@pytest.mark.postgres
@pytest.mark.parametrize("preset", [pytest.param("baseline", marks=pytest.mark.slow), "transactional"])
def test_preset_on_postgres_passes_with_a_database_per_worker(tmp_path, preset):
    # The controller starts one throwaway cluster and hands its URL to both workers.
    run = run_suite("--arch", preset, "--switch", "storage=postgres", "-n", "2", workdir=tmp_path)
    assert run.exit_code == 0, sorted(run.failed()) or run.output[-3000:]
    assert Counter(r["nodeid"] for r in run.records if r.get("kind") == "test").most_common(1)[0][1] == 1
    # Workers connect to the controller's server: no worker starts one of its own.
    setups = [
        r["duration_ns"] / 1e9 for r in run.records if r.get("kind") == "fixture" and r["name"] == "postgres_admin_url"
    ]
    assert len(setups) == 2 and max(setups) < 0.5


def test_every_worker_gets_its_own_database(tmp_path):
    switches = architectures.resolve("baseline", ["storage=disk"])
    gw0 = TestDatabase(switches, workdir=tmp_path / "gw0", worker="gw0")
    gw1 = TestDatabase(switches, workdir=tmp_path / "gw1", worker="gw1")
    assert gw0.path != gw1.path
    postgres = architectures.resolve("transactional", ["storage=postgres"])
    names = {
        TestDatabase(
            postgres, workdir=tmp_path, worker=worker, postgres_admin_url="postgresql+psycopg://u@/postgres"
        ).database_name
        for worker in ("gw0", "gw1")
    }
    assert len(names) == 2 and all(name.startswith("quiz_gw") for name in names)


# ---------------------------------------------------------------- variants and the speedup table


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("baseline", ("baseline", None)),
        ("baseline@n=2", ("baseline", "2")),
        ("transactional+storage=disk@n=auto", ("transactional+storage=disk", "auto")),
    ],
)
def test_variant_specs_carry_the_worker_count(spec, expected):
    assert variants.split_variant(spec) == expected


@pytest.mark.parametrize("bad", ["baseline@n=0", "baseline@n=two", "baseline@n="])
def test_bad_worker_count_is_one_clear_error(bad):
    with pytest.raises(BenchError, match="positive integer or auto"):
        variants.split_variant(bad)


def test_runner_variants_add_xdist_arguments():
    serial, two = study_variants.resolve_variants(["transactional+storage=disk", "transactional+storage=disk@n=2"])
    assert serial.label == "transactional+storage=disk" and "-n" not in serial.pytest_args
    assert two.label == "transactional+storage=disk@n=2" and two.pytest_args[-2:] == ("-n", "2")
    assert two.pytest_args[:-2] == serial.pytest_args
    assert variants.parallel_variants(["baseline"], workers=["2", "auto"]) == [
        "baseline",
        "baseline@n=2",
        "baseline@n=auto",
    ]


def synthetic_repetitions(walls: dict[str, float], n: int = 8, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = [
        {"variant": label, "repetition": i, "valid": True, "warmup": False, "wall_s": wall * rng.lognormal(0, 0.02)}
        for label, wall in walls.items()
        for i in range(n)
    ]
    return pd.DataFrame(rows)


def test_speedup_table_puts_parallel_next_to_architecture_speedups():
    reps = synthetic_repetitions(
        {"baseline": 12.0, "baseline@n=2": 8.0, "transactional": 6.0, "transactional@n=2": 6.0}
    )
    table = environments.speedup_table(reps, seed=0, n_resamples=500)
    by = {(r.comparison, r.architecture, r.workers): r for r in table.itertuples()}
    assert set(by) == {
        ("parallel", "baseline", "2"),
        ("parallel", "transactional", "2"),
        ("architecture", "transactional", "serial"),
        ("architecture", "transactional", "2"),
    }
    assert by[("parallel", "baseline", "2")].speedup == pytest.approx(1.5, rel=0.05)
    assert by[("parallel", "transactional", "2")].speedup == pytest.approx(1.0, rel=0.05)
    assert by[("architecture", "transactional", "serial")].speedup == pytest.approx(2.0, rel=0.05)
    assert by[("architecture", "transactional", "2")].speedup == pytest.approx(8 / 6, rel=0.05)
    for row in table.itertuples():
        assert row.speedup_ci_low <= row.speedup <= row.speedup_ci_high
    lines = environments.format_speedup_table(table)
    assert any("baseline@n=2" in line for line in lines)


def test_runner_measures_serial_and_parallel_side_by_side(tmp_path):
    variants = ["transactional", "transactional@n=2"]
    result = study_variants.run_benchmark(
        variants=variants,
        repetitions=1,
        warmup=0,
        selection={"keyword": "canary"},
        output_dir=tmp_path,
        run_id="parallel-smoke",
        progress=False,
    )
    assert result.status == "complete" and result.invalid_measured_repetitions == 0
    repetitions = pd.read_csv(result.run_dir / store.REPETITIONS_FILE)
    assert list(repetitions["variant"]) == variants  # interleaved in one block
    timings = pd.read_csv(result.run_dir / store.TIMINGS_FILE)
    totals = timings[timings["phase"] == "total"]
    per_repetition = totals.groupby("repetition")["test"].agg(["size", "nunique"])
    assert (per_repetition["size"] == per_repetition["nunique"]).all() and per_repetition["size"].nunique() == 1
    (row,) = environments.speedup_table(repetitions, seed=0, n_resamples=200).itertuples()
    assert (row.comparison, row.architecture, row.workers) == ("parallel", "transactional", "2")
    assert row.speedup > 0 and "n < 2" in row.note  # one repetition each: no interval
