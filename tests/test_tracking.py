"""Tests of suitebench.regression: baselines on disk, the regression check, and its calibration."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from suitebench import regression
from suitebench.errors import BenchError

COUNTERS = ("sql_statements", "ddl_statements", "connections_opened", "commits", "rollbacks", "savepoints")
TIMING_COLUMNS = [
    "run_id",
    "repetition",
    "block",
    "order",
    "variant",
    "warmup",
    "valid",
    "test",
    "category",
    "outcome",
    "phase",
    "seconds",
    *COUNTERS,
]
REPETITION_COLUMNS = [
    "run_id",
    "repetition",
    "block",
    "order",
    "variant",
    "warmup",
    "valid",
    "invalid_reason",
    "exit_code",
    "wall_s",
    "n_tests",
    "n_passed",
    "n_failed",
    "started_at",
    "finished_at",
]
VARIANT = "transactional"


def tidy_frames(
    samples: dict[str, np.ndarray],
    *,
    variant: str = VARIANT,
    run_id: str = "run-1",
    warmups: int = 1,
    invalid: int = 1,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Tidy ``timings``/``repetitions`` (columns as data/README.md) for one variant.

    ``samples[test]`` holds the measured total seconds per repetition; ``warmups`` warm-up and
    ``invalid`` invalid repetitions are added with absurd 1000 s times that must never count.
    Every test issues 10 SQL statements, 1 connection, 1 commit, 2 savepoints.
    """
    n = len(next(iter(samples.values())))
    schedule = [(True, True)] * warmups + [(False, True)] * n + [(False, False)] * invalid
    timing_rows, repetition_rows, measured = [], [], 0
    for repetition, (warmup, valid) in enumerate(schedule):
        wall = 1.0
        for i, (test, values) in enumerate(samples.items()):
            total = float(values[measured]) if (valid and not warmup) else 1000.0
            wall += total
            for phase, share in (("setup", 0.2), ("call", 0.6), ("teardown", 0.2), ("total", 1.0)):
                timing_rows.append(
                    dict(
                        run_id=run_id,
                        repetition=repetition,
                        block=repetition,
                        order=0,
                        variant=variant,
                        warmup=warmup,
                        valid=valid,
                        test=test,
                        category="auth" if i % 2 else "questions",
                        outcome="passed" if valid else "failed",
                        phase=phase,
                        seconds=share * total,
                        sql_statements=10,
                        ddl_statements=0,
                        connections_opened=1,
                        commits=1,
                        rollbacks=0,
                        savepoints=2,
                    )
                )
        repetition_rows.append(
            dict(
                run_id=run_id,
                repetition=repetition,
                block=repetition,
                order=0,
                variant=variant,
                warmup=warmup,
                valid=valid,
                invalid_reason="" if valid else "failed",
                exit_code=0 if valid else 1,
                wall_s=wall,
                n_tests=len(samples),
                n_passed=len(samples) if valid else 0,
                n_failed=0 if valid else 1,
                started_at="2025-01-01T00:00:00",
                finished_at="2025-01-01T00:00:01",
            )
        )
        measured += valid and not warmup
    return pd.DataFrame(timing_rows, columns=TIMING_COLUMNS), pd.DataFrame(repetition_rows, columns=REPETITION_COLUMNS)


def noisy_samples(*, n_tests: int = 8, reps: int = 12, sigma: float = 0.05, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    medians = np.linspace(0.01, 0.2, n_tests)
    return {f"tests/test_{i:02d}.py::test_case": m * np.exp(rng.normal(0, sigma, reps)) for i, m in enumerate(medians)}


@pytest.fixture
def stored(tmp_path):
    samples = noisy_samples(seed=1)
    timings, repetitions = tidy_frames(samples)
    path = regression.record_baseline(
        timings,
        repetitions,
        name="main-2025",
        store_dir=tmp_path,
        variant=VARIANT,
        metadata={"cpu": "test"},
    )
    return samples, timings, path, regression.load_baseline("main-2025", tmp_path)


# --------------------------------------------------------------------------- baselines


def test_record_and_load_round_trip(stored, tmp_path):
    samples, _, path, baseline = stored
    document = json.loads(path.read_text())
    assert document["schema_version"] == regression.SCHEMA_VERSION
    assert document["name"] == "main-2025" and document["source_run_ids"] == ["run-1"]
    assert document["metadata"] == {"cpu": "test"} and document["created_at"].endswith("+00:00")
    assert baseline.variant == VARIANT and set(baseline.tests) == set(samples)
    for test, values in samples.items():
        entry = baseline.tests[test]
        assert np.allclose(entry.samples_s, values)
        assert entry.n == len(values) and entry.median_s == pytest.approx(np.median(values))
        assert entry.counters == {
            "sql_statements": 10,
            "ddl_statements": 0,
            "connections_opened": 1,
            "commits": 1,
            "rollbacks": 0,
            "savepoints": 2,
        }
    suite = np.sum(list(samples.values()), axis=0)
    assert np.allclose(baseline.suite.samples_s, suite)
    assert np.allclose(baseline.wall.samples_s, suite + 1.0)
    questions = [v for i, v in enumerate(samples.values()) if i % 2 == 0]
    assert np.allclose(baseline.categories["questions"].samples_s, np.sum(questions, axis=0))
    assert regression.list_baselines(tmp_path) == ["main-2025"]


def test_record_refuses_to_overwrite_unless_asked(stored, tmp_path):
    _, timings, path, original = stored
    with pytest.raises(BenchError, match="exists"):
        regression.record_baseline(timings, None, name="main-2025", store_dir=tmp_path, variant=VARIANT, metadata={})
    faster = timings.assign(seconds=timings["seconds"] / 2)
    regression.record_baseline(
        faster, None, name="main-2025", store_dir=tmp_path, variant=VARIANT, metadata={}, overwrite=True
    )
    reloaded = regression.load_baseline("main-2025", tmp_path)
    assert reloaded.wall is None
    assert reloaded.suite.median_s == pytest.approx(original.suite.median_s / 2)


def test_record_rejects_bad_input(tmp_path):
    timings, _ = tidy_frames(noisy_samples())
    with pytest.raises(BenchError, match="baseline name"):
        regression.record_baseline(timings, None, name="../escape", store_dir=tmp_path, variant=VARIANT, metadata={})
    with pytest.raises(BenchError, match="not in the timings"):
        regression.record_baseline(timings, None, name="x", store_dir=tmp_path, variant="baseline", metadata={})
    with pytest.raises(BenchError, match="plain JSON"):
        regression.record_baseline(
            timings, None, name="x", store_dir=tmp_path, variant=VARIANT, metadata={"f": object()}
        )
    assert not list(tmp_path.iterdir())


def test_load_reports_missing_and_foreign_baselines(stored, tmp_path):
    _, _, path, _ = stored
    with pytest.raises(BenchError, match="stored: main-2025"):
        regression.load_baseline("other", tmp_path)
    document = json.loads(path.read_text())
    document["schema_version"] = 99
    path.write_text(json.dumps(document))
    with pytest.raises(BenchError, match="schema_version 99"):
        regression.load_baseline("main-2025", tmp_path)
    path.write_text("{not json")
    with pytest.raises(BenchError, match="cannot read"):
        regression.load_baseline("main-2025", tmp_path)


# --------------------------------------------------------------------------- the check


def test_identical_data_is_not_flagged(stored):
    _, timings, _, baseline = stored
    result = regression.check_regressions(timings, baseline=baseline, variant=VARIANT, seed=0)
    assert not result.regressed and result.findings == ()
    assert (result.comparisons["slowdown_pct"] == 0).all()
    assert result.missing_in_current == () and result.new_in_current == ()
    assert "no regression shown" in regression.format_check(result)[1]


def test_fresh_noise_is_not_flagged(stored):
    _, _, _, baseline = stored
    timings, _ = tidy_frames(noisy_samples(seed=2))
    assert not regression.check_regressions(timings, baseline=baseline, variant=VARIANT, seed=0).regressed


def test_a_doubled_test_is_flagged_with_its_p_value(stored):
    samples, _, _, baseline = stored
    current = noisy_samples(seed=2)
    slow = "tests/test_03.py::test_case"
    current[slow] = current[slow] * 2
    timings, _ = tidy_frames(current)
    result = regression.check_regressions(timings, baseline=baseline, variant=VARIANT, seed=0)
    assert result.regressed
    assert [(f.test, f.kind) for f in result.findings] == [(slow, "timing")]
    finding = result.findings[0]
    expected = (np.median(current[slow]) / np.median(samples[slow]) - 1) * 100
    assert finding.slowdown_pct == pytest.approx(expected)
    assert finding.change == f"{expected:+.0f} %"
    assert finding.p_value == pytest.approx(
        stats.mannwhitneyu(current[slow], samples[slow], alternative="greater").pvalue
    )
    assert finding.p_holm <= min(1.0, finding.p_value * len(samples)) + 1e-12
    assert finding.ci_low_pct <= finding.slowdown_pct <= finding.ci_high_pct
    lines = regression.format_check(result)
    assert lines[1].startswith("REGRESSED") and any(slow in line and "timing" in line for line in lines)


def test_a_small_significant_slowdown_stays_below_the_threshold(tmp_path):
    samples = noisy_samples(reps=30, sigma=0.01, seed=4)
    timings, _ = tidy_frames(samples)
    slower, _ = tidy_frames({t: v * 1.10 for t, v in noisy_samples(reps=30, sigma=0.01, seed=5).items()})
    regression.record_baseline(timings, None, name="b", store_dir=tmp_path, variant=VARIANT, metadata={})
    baseline = regression.load_baseline("b", tmp_path)
    gated = regression.check_regressions(slower, baseline=baseline, variant=VARIANT, threshold=0.2, seed=0)
    assert not gated.regressed
    assert (gated.comparisons["p_holm"] < 0.05).all()  # significant, but a 10 % change is below 20 %
    ungated = regression.check_regressions(slower, baseline=baseline, variant=VARIANT, threshold=0.0, seed=0)
    assert ungated.regressed and len(ungated.findings) == len(samples)


def test_one_extra_sql_statement_is_flagged_exactly(stored):
    _, timings, _, baseline = stored
    more_sql = timings.assign(sql_statements=timings["sql_statements"] + 1)
    result = regression.check_regressions(more_sql, baseline=baseline, variant=VARIANT, seed=0)
    assert result.regressed
    assert {f.kind for f in result.findings} == {"counter"}
    assert len(result.findings) == len(baseline.tests)
    assert {f.change for f in result.findings} == {"sql_statements 10 -> 11"}
    assert all(math.isnan(f.p_value) for f in result.findings)
    fewer = timings.assign(savepoints=timings["savepoints"] - 1)
    assert not regression.check_regressions(fewer, baseline=baseline, variant=VARIANT, seed=0).regressed


def test_tests_on_one_side_only_are_listed_not_flagged(stored):
    samples, _, _, baseline = stored
    current = dict(samples)
    gone = "tests/test_00.py::test_case"
    del current[gone]
    current["tests/test_new.py::test_case"] = current["tests/test_01.py::test_case"] * 50
    timings, _ = tidy_frames(current)
    result = regression.check_regressions(timings, baseline=baseline, variant=VARIANT, seed=0)
    assert not result.regressed
    assert result.missing_in_current == (gone,)
    assert result.new_in_current == ("tests/test_new.py::test_case",)
    lines = regression.format_check(result)
    assert any("not run now" in line for line in lines) and any("new since" in line for line in lines)


def test_check_rejects_unknown_variant(stored):
    _, timings, _, baseline = stored
    with pytest.raises(BenchError, match="not in the timings"):
        regression.check_regressions(timings, baseline=baseline, variant="baseline", seed=0)


def test_vectorised_and_per_test_detector_paths_agree():
    rng = np.random.default_rng(9)
    base = [np.round(rng.lognormal(0, 0.1, 6), 2) for _ in range(12)]  # rounding makes ties
    current = [np.round(b * rng.choice([1.0, 1.5]) * rng.lognormal(0, 0.1, 6), 2) for b in base]
    current[3] = base[3].copy()
    vectorised = regression.detect_timing_regressions(base, current, threshold=0.2, alpha=0.05)
    # one unequal length forces the per-test loop
    looped = regression.detect_timing_regressions(
        [*base, np.array([1.0, 2.0, 3.0])], [*current, np.array([1.0, 2.0])], threshold=0.2, alpha=0.05
    )
    assert np.allclose(vectorised.p_value, looped.p_value[:-1], equal_nan=True)
    for b, c, p in zip(base, current, vectorised.p_value):
        if np.ptp(np.concatenate([b, c])) > 0:
            assert p == pytest.approx(stats.mannwhitneyu(c, b, alternative="greater").pvalue)
    assert vectorised.flagged.any() and not vectorised.flagged.all()


# --------------------------------------------------------------------------- calibration


def test_calibration_on_pure_noise():
    timings, _ = tidy_frames(noisy_samples(n_tests=10, reps=20, sigma=0.05, seed=6))
    calibration = regression.calibrate(timings, variant=VARIANT, threshold=0.2, alpha=0.05, n_trials=60, seed=1)
    rates = calibration.rates
    assert set(rates["threshold"]) == {0.2, 0.0}
    assert set(rates["injected_slowdown"]) == {0.0, 0.05, 0.10, 0.20}
    assert calibration.n_repetitions == 20 and calibration.half_size == 10 and calibration.n_tests == 10
    # Holm keeps the family-wise false-alarm rate near alpha; 60 trials leave room for noise
    assert calibration.false_alarm_rate <= 0.12
    assert calibration.rate(0.0, threshold=0.0) <= 0.12
    # sigma 5 %: the statistical test alone sees a 20 % slowdown every time ...
    assert calibration.rate(0.20, threshold=0.0) >= 0.95
    # ... while the 20 % threshold hides 5 % slowdowns by design
    assert calibration.rate(0.05) <= 0.1
    assert (rates["ci_low"] <= rates["rate"]).all() and (rates["rate"] <= rates["ci_high"]).all()
    row = rates.iloc[0]
    expected = stats.binomtest(int(row["detections"]), int(row["n_trials"])).proportion_ci()
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((expected.low, expected.high))
    lines = regression.format_calibration(calibration)
    assert len(lines) == 1 + len(rates)


def test_calibration_warns_when_halves_are_too_small_and_refuses_fewer_than_four():
    timings, _ = tidy_frames(noisy_samples(n_tests=5, reps=6))
    calibration = regression.calibrate(timings, variant=VARIANT, n_trials=5, seed=0)
    assert calibration.min_attainable_p == pytest.approx(1 / 20)
    assert calibration.rates["detections"].sum() == 0
    assert "cannot fire" in regression.format_calibration(calibration)[1]
    too_few, _ = tidy_frames(noisy_samples(n_tests=5, reps=3))
    with pytest.raises(BenchError, match="at least 4"):
        regression.calibrate(too_few, variant=VARIANT, n_trials=5, seed=0)


def test_calibration_is_reproducible_per_seed():
    timings, _ = tidy_frames(noisy_samples(n_tests=6, reps=12, sigma=0.1))
    first = regression.calibrate(timings, variant=VARIANT, n_trials=20, seed=3)
    again = regression.calibrate(timings, variant=VARIANT, n_trials=20, seed=3)
    pd.testing.assert_frame_equal(first.rates, again.rates)
