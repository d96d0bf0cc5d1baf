"""Tests of suitebench.regression: baselines on disk, the process-level gate, the check in both modes,
its calibration, and the same-session A/B against a git revision (with fake processes).

The gate's false-alarm rate and power are simulated in tests/test_inference_simulations.py."""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from suitebench import ab, regression, runner
from suitebench.errors import BenchError
from suitebench.store import COUNTER_COLUMNS, REPETITION_COLUMNS, TIMING_COLUMNS, load_run

VARIANT = "transactional"
CATEGORIES = ("auth", "crud", "jwt")


def tidy_frames(
    seconds: dict[str, np.ndarray],
    *,
    variant: str = VARIANT,
    run_id: str = "run-1",
    outcomes: dict[str, str] | None = None,
    sql: int = 10,
    first_repetition: int = 0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Tidy frames of one variant: ``seconds[variant_label][...]`` is a (processes x tests) array
    of total seconds for tests ``t{i}`` in categories cycling through CATEGORIES; the call phase
    is 60 % of each total. One warm-up process with absurd times comes first (never counted)."""
    matrix = seconds[variant]
    n, tests = matrix.shape
    timing_rows, repetition_rows = [], []
    for k in range(n + 1):
        warmup = k == 0
        repetition = first_repetition + k
        columns = dict(
            run_id=run_id, repetition=repetition, block=k, order=0, variant=variant, warmup=warmup, valid=True
        )
        for i in range(tests):
            total = 1000.0 if warmup else float(matrix[k - 1, i])
            name = f"t.py::t{i:02d}"
            for phase, share in (("setup", 0.3), ("call", 0.6), ("teardown", 0.1), ("total", 1.0)):
                timing_rows.append(
                    {
                        **columns,
                        "test": name,
                        "category": CATEGORIES[i % len(CATEGORIES)],
                        "outcome": (outcomes or {}).get(name, "passed"),
                        "phase": phase,
                        "seconds": share * total,
                        **{c: (sql if c == "sql_statements" else 1) for c in COUNTER_COLUMNS},
                    }
                )
        repetition_rows.append(
            {
                **columns,
                "invalid_reason": "",
                "exit_code": 0,
                "wall_s": float(np.sum(matrix[k - 1])) + 1.0 if not warmup else 2000.0,
                "n_tests": tests,
                "n_passed": tests,
                "n_failed": 0,
                "started_at": "",
                "finished_at": "",
            }
        )
    return pd.DataFrame(timing_rows, columns=list(TIMING_COLUMNS)), pd.DataFrame(
        repetition_rows, columns=list(REPETITION_COLUMNS)
    )


def noisy(*, n: int = 5, tests: int = 12, seed: int = 0, process_sd: float = 0.01, test_sd: float = 0.05) -> np.ndarray:
    rng = np.random.default_rng(seed)
    medians = np.linspace(0.01, 0.05, tests)
    return medians * np.exp(rng.normal(0, test_sd, (n, tests)) + rng.normal(0, process_sd, (n, 1)))


@pytest.fixture
def stored(tmp_path):
    matrix = noisy(seed=1)
    timings, repetitions = tidy_frames({VARIANT: matrix})
    path = regression.record_baseline(
        timings, repetitions, name="main", store_dir=tmp_path, variant=VARIANT, metadata={"cpu": "test"}
    )
    return matrix, timings, path, regression.load_baseline("main", tmp_path)


def check(matrix: np.ndarray, baseline: regression.Baseline, **kwargs) -> regression.CheckResult:
    timings, _ = tidy_frames({VARIANT: matrix}, run_id="run-2")
    return regression.check_regressions(timings, baseline=baseline, variant=VARIANT, **kwargs)


# --------------------------------------------------------------------------- baselines


def test_record_and_load_round_trip(stored, tmp_path):
    matrix, _, path, baseline = stored
    document = json.loads(path.read_text())
    assert document["schema_version"] == regression.SCHEMA_VERSION == 2
    assert document["processes"] == [1, 2, 3, 4, 5] and document["source_run_ids"] == ["run-1"]
    assert document["metadata"] == {"cpu": "test"}
    entry = document["tests"]["t.py::t03"]
    assert entry["category"] == "auth" and entry["passed"] == [True] * 5
    assert np.allclose(entry["total_s"], matrix[:, 3]) and np.allclose(entry["phases_s"]["call"], 0.6 * matrix[:, 3])
    sample = baseline.sample
    assert sample.tests == tuple(f"t.py::t{i:02d}" for i in range(12)) and sample.n_processes == 5
    assert np.allclose(sample.total_s, matrix) and np.allclose(sample.phases_s["setup"], 0.3 * matrix)
    assert sample.counters["t.py::t00"]["sql_statements"] == 10
    assert np.allclose(baseline.wall_s, matrix.sum(axis=1) + 1.0)
    assert regression.list_baselines(tmp_path) == ["main"]


def test_record_refuses_to_overwrite_and_bad_input(stored, tmp_path):
    _, timings, _, _ = stored
    with pytest.raises(BenchError, match="exists"):
        regression.record_baseline(timings, None, name="main", store_dir=tmp_path, variant=VARIANT)
    with pytest.raises(BenchError, match="baseline name"):
        regression.record_baseline(timings, None, name="../x", store_dir=tmp_path, variant=VARIANT)
    with pytest.raises(BenchError, match="not in the timings"):
        regression.record_baseline(timings, None, name="x", store_dir=tmp_path, variant="baseline")
    with pytest.raises(BenchError, match="plain JSON"):
        regression.record_baseline(
            timings, None, name="x", store_dir=tmp_path, variant=VARIANT, metadata={"f": object()}
        )


def test_load_reports_missing_old_and_broken_baselines(stored, tmp_path):
    _, _, path, _ = stored
    with pytest.raises(BenchError, match="stored: main"):
        regression.load_baseline("other", tmp_path)
    document = json.loads(path.read_text())
    path.write_text(json.dumps({**document, "schema_version": 1}))
    with pytest.raises(BenchError, match="schema_version 1.*record it again"):
        regression.load_baseline("main", tmp_path)
    path.write_text("{not json")
    with pytest.raises(BenchError, match="cannot read"):
        regression.load_baseline("main", tmp_path)


# --------------------------------------------------------------------------- the gate


def test_gate_levels_spend_alpha_once():
    levels = regression.gate_levels(8, alpha=0.01)
    assert levels[0] == pytest.approx(0.01 * regression.OVERALL_SHARE) and levels.sum() == pytest.approx(0.01)
    assert np.allclose(levels[1:], 0.01 * (1 - regression.OVERALL_SHARE) / 7)
    assert regression.gate_levels(1, alpha=0.01).tolist() == [0.01]


def test_welch_shift_matches_scipy():
    rng = np.random.default_rng(3)
    base, current = rng.normal(0, 1, (4, 3)), rng.normal(0.5, 2, (5, 3))
    shift = regression.welch_shift(base, current)
    for c in range(3):
        expected = stats.ttest_ind(current[:, c], base[:, c], equal_var=False, alternative="greater")
        assert shift.estimate[c] / shift.se[c] == pytest.approx(expected.statistic)
        assert shift.df[c] == pytest.approx(expected.df)
        lower = expected.confidence_interval(0.99).low
        assert shift.estimate[c] - stats.t.ppf(0.99, shift.df[c]) * shift.se[c] == pytest.approx(lower)


def test_identical_data_and_fresh_noise_are_not_flagged(stored):
    matrix, _, _, baseline = stored
    same = check(matrix, baseline)
    assert not same.regressed and not same.gate.fired and same.localisation.empty
    assert list(same.gate.components["component"]) == [regression.OVERALL, *CATEGORIES]
    assert same.gate.components["slowdown_pct"].abs().max() < 1e-9
    assert "default 10 %" in same.min_effect_source
    assert not check(noisy(seed=2), baseline).regressed
    assert "no regression shown" in regression.format_check(same)[1]


def test_a_uniform_slowdown_fires_the_gate_and_is_localised(stored):
    matrix, _, _, baseline = stored
    result = check(noisy(seed=2) * 1.3, baseline)
    assert result.regressed and result.gate.fired
    overall = result.gate.components.iloc[0]
    assert overall["fired"] and overall["lower_bound_pct"] > 10
    assert overall["slowdown_pct"] == pytest.approx(
        (np.exp(np.log(noisy(seed=2) * 1.3).mean() - np.log(matrix).mean()) - 1) * 100
    )
    assert result.localisation["flagged"].sum() >= 6
    lines = regression.format_check(result)
    assert lines[1].startswith("REGRESSED: timing gate fired") and any("FIRED all tests" in line for line in lines)


def test_one_slowed_category_fires_its_own_component(stored):
    _, _, _, baseline = stored
    slowed = noisy(seed=2)
    slowed[:, [i for i in range(12) if i % 3 == 1]] *= 1.5  # crud
    components = check(slowed, baseline, min_effect=0.0).gate.components.set_index("component")
    assert components.loc["crud", "fired"] and not components.loc["auth", "fired"]


def test_the_minimum_effect_hides_a_significant_small_slowdown(stored):
    _, _, _, baseline = stored
    slower = noisy(seed=2, process_sd=0.001, test_sd=0.01) * 1.05
    assert check(slower, baseline, min_effect=0.0).gate.fired
    assert not check(slower, baseline).gate.fired  # the default 10 %


def test_a_calibration_sets_the_minimum_effect(stored, tmp_path):
    _, _, _, baseline = stored
    calibration = regression.MinimumEffectCalibration(
        components=(regression.OVERALL, *CATEGORIES),
        within_variance=(1e-4,) * 4,
        between_variance=(0.0,) * 4,
        n_sessions=10,
        session_ids=("s",) * 10,
        n_processes=(5,) * 10,
        target_false_alarm=0.01,
        pairs_compared=90,
        pairs_flagged=0,
    )
    path = regression.save_calibration(calibration, name="main", store_dir=tmp_path)
    assert path.parent.name == regression.CALIBRATION_DIR
    loaded = regression.load_calibration("main", tmp_path)
    assert loaded == calibration and regression.load_calibration("other", tmp_path) is None
    result = check(noisy(seed=2), baseline, calibration=loaded)
    assert result.gate.min_effect == 0.0 and "calibrated from 10 A/A sessions" in result.min_effect_source


def test_counter_increases_are_flagged_exactly(stored):
    _, _, _, baseline = stored
    timings, _ = tidy_frames({VARIANT: noisy(seed=2)}, sql=11)
    result = regression.check_regressions(timings, baseline=baseline, variant=VARIANT)
    assert result.regressed and not result.gate.fired
    assert len(result.counters) == 12 and set(result.counters["counter"]) == {"sql_statements"}
    fewer, _ = tidy_frames({VARIANT: noisy(seed=2)}, sql=9)
    assert not regression.check_regressions(fewer, baseline=baseline, variant=VARIANT).regressed


def test_tests_not_passed_everywhere_are_left_out(stored):
    _, _, _, baseline = stored
    timings, _ = tidy_frames({VARIANT: noisy(seed=2)}, outcomes={"t.py::t00": "xfailed"})
    result = regression.check_regressions(timings, baseline=baseline, variant=VARIANT)
    assert "t.py::t00" in result.test_set.excluded and result.gate.n_tests == 11


def test_too_few_processes_are_refused_with_the_number_needed(stored):
    _, _, _, baseline = stored
    with pytest.raises(BenchError, match="at least 3 repetitions per side"):
        check(noisy(n=2, seed=2), baseline)
    with pytest.raises(BenchError, match="not in the timings"):
        regression.check_regressions(tidy_frames({VARIANT: noisy()})[0], baseline=baseline, variant="baseline")


def test_same_session_check_compares_two_variants_of_one_run():
    reference, _ = tidy_frames({"rev": noisy(seed=1)}, variant="rev")
    changed, _ = tidy_frames({"wt": noisy(seed=2) * 1.2}, variant="wt", first_repetition=10)
    result = regression.check_same_session(pd.concat([reference, changed]), reference="rev", variant="wt")
    assert result.mode == "same session" and result.gate.min_effect == 0.0 and result.regressed
    assert "measured in the same session" in regression.format_check(result)[0]


# --------------------------------------------------------------------------- calibration


def sample(matrix: np.ndarray, label: str = VARIANT) -> regression.ProcessSample:
    return regression.process_sample(tidy_frames({label: matrix}, variant=label)[0], variant=label)


def test_calibrate_gate_enumerates_every_split_and_every_session_pair():
    sessions = [sample(noisy(n=8, seed=1)), sample(noisy(n=4, seed=2)), sample(noisy(n=4, seed=3))]
    calibration = regression.calibrate_gate(sessions, n_per_side=4, slowdowns=(0.5,))
    rates = calibration.rates
    splits = rates[rates["source"].str.startswith("A/A splits")]
    pairs = rates[rates["source"].str.startswith("session pairs")]
    assert (splits["comparisons"] == math.comb(8, 4)).all() and (pairs["comparisons"] == 3 * 2).all()
    assert splits.loc[splits["scenario"] == "A/A", "rate"].iloc[0] <= 0.05
    call = splits[splits["scenario"] == "call phase, every test"]
    assert call["rate"].iloc[0] == 1.0  # +50 % of the call phase (60 % of each test)
    assert set(rates.loc[rates["scenario"] == "one category", "category"]) == set(CATEGORIES)
    assert any("power" in line for line in regression.format_calibration(calibration))
    small = regression.calibrate_gate([sample(noisy(n=4))], n_per_side=4)
    assert small.rates.empty and len(small.notes) == 2


def test_calibrate_minimum_effect_needs_ten_sessions_and_checks_every_pair():
    rng = np.random.default_rng(5)
    sessions = [sample(noisy(n=4, seed=i) * math.exp(rng.normal(0, 0.03))) for i in range(10)]
    with pytest.raises(BenchError, match="at least 10 A/A sessions, got 9"):
        regression.calibrate_minimum_effect(sessions[:9])
    calibration = regression.calibrate_minimum_effect(sessions, draws=2000)
    assert calibration.pairs_compared == 90 and calibration.pairs_flagged <= 2
    assert calibration.n_sessions == 10 and len(calibration.components) == 4
    m = calibration.min_effect(n_base=4, n_current=4)
    assert 0.02 < m < 0.3


def test_simulated_calibration_from_one_session():
    rates = regression.simulate_gate_calibration(sample(noisy(n=5, seed=4)), n_per_side=4, draws=400, slowdowns=(0.5,))
    assert set(rates["source"]) == {
        "simulated from this session (same session)",
        "simulated from this session (stored baseline, drift sd 3 %)",
    }
    aa = rates[rates["scenario"] == "A/A"]
    assert (aa["rate"] <= 0.03).all()
    assert rates[rates["scenario"] == "call phase, every test"]["rate"].min() > 0.5


# --------------------------------------------------------------------------- same session against a revision


def git(*args: str, cwd: Path) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture
def repository(tmp_path) -> Path:
    """A git repository whose suite declares its speed in `speed.txt` (read by the fake processes)."""
    repo = tmp_path / "repo"
    (repo / "suite").mkdir(parents=True)
    (repo / "suite" / "test_a.py").write_text("def test_a():\n    pass\n")
    (repo / "speed.txt").write_text("1.0\n")
    git("init", "-q", cwd=repo)
    git("-c", "user.email=t@t", "-c", "user.name=t", "add", ".", cwd=repo)
    git("-c", "user.email=t@t", "-c", "user.name=t", "commit", "-q", "-m", "one", cwd=repo)
    return repo


class SpeedFromTree:
    """Fake pytest processes: each test takes `speed.txt` (of the process's working directory) times
    its base time, with noise; records which suite path each process was pointed at."""

    def __init__(self, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)
        self.targets: list[tuple[str, str]] = []

    def __call__(self, command, *, env, cwd, log_path, timeout_s):
        self.targets.append((str(cwd), command[3]))
        speed = float((Path(cwd) / "speed.txt").read_text())
        raw = Path(next(a for a in command if a.startswith("--suitebench-timings=")).split("=", 1)[1])
        with open(raw / "1-main.jsonl", "w") as handle:
            for i in range(6):
                seconds = speed * 0.01 * (i + 1) * float(np.exp(self.rng.normal(0, 0.02)))
                record = {
                    "schema_version": 1,
                    "kind": "test",
                    "nodeid": f"test_a.py::t{i}",
                    "category": ("auth", "crud")[i % 2],
                    "outcome": "passed",
                    "phases": {"call": {"duration_ns": int(seconds * 1e9), "counters": {}}},
                }
                handle.write(json.dumps(record) + "\n")
        log_path.write_text("fake\n")
        return runner.ProcessOutcome(exit_code=0, wall_s=1.0, timed_out=False)


def test_against_revision_measures_a_worktree_and_the_working_tree_interleaved(repository, tmp_path):
    (repository / "speed.txt").write_text("1.5\n")  # the uncommitted change makes every test slower
    fake = SpeedFromTree()
    measured = ab.measure_against_revision(
        revision="HEAD",
        suite_path=repository / "suite",
        pytest_args=("-p", "no:randomly"),
        runs_dir=tmp_path / "runs",
        run_id="ab",
        repetitions=4,
        warmup=0,
        seed=1,
        progress=False,
        executor=fake,
    )
    worktrees = {cwd for cwd, _ in fake.targets} - {str(repository)}
    assert len(worktrees) == 1
    (worktree,) = worktrees
    assert not Path(worktree).exists(), "the worktree is removed afterwards"
    for cwd, target in fake.targets:
        assert target == str(Path(cwd) / "suite")
    assert measured.reference_label.startswith("rev-") and measured.current_label == ab.WORKING_TREE
    run = load_run(measured.run_dir)
    assert run.metadata["ab"]["revision"] == "HEAD"
    result = regression.check_same_session(
        run.timings, reference=measured.reference_label, variant=measured.current_label
    )
    assert result.gate.fired and result.gate.components.iloc[0]["slowdown_pct"] == pytest.approx(50, abs=3)
    listed = subprocess.run(["git", "worktree", "list"], cwd=repository, capture_output=True, text=True).stdout
    assert len(listed.strip().splitlines()) == 1


def test_against_an_unknown_revision_is_one_clear_error(repository, tmp_path):
    with pytest.raises(BenchError, match="no-such-rev"):
        ab.measure_against_revision(
            revision="no-such-rev", suite_path=repository / "suite", runs_dir=tmp_path / "runs", progress=False
        )
