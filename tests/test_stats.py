"""Tests of suitebench.stats against direct numpy/scipy/statsmodels recomputation (the coverage of
the intervals is simulated in tests/test_inference_simulations.py)."""

from __future__ import annotations

import io
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests

from quiz_study import targets
from suitebench import stats as hs
from suitebench.errors import BenchError
from suitebench.store import REPETITION_COLUMNS_V1, TIMING_COLUMNS


def tidy_frames(
    samples: dict[str, dict[str, np.ndarray]],
    *,
    categories: dict[str, str] | None = None,
    warmups: int = 0,
    invalid: dict[str, int] | None = None,
    overhead_s: float = 1.0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Tidy ``timings`` and ``repetitions`` frames (columns as data/README.md) from known samples.

    ``samples[variant][test]`` holds the total seconds of the measured repetitions, in order.
    ``warmups`` warm-up repetitions per variant come first and ``invalid[variant]`` invalid
    repetitions last; both get absurd times (1000 s) so that any leak into the statistics shows.
    Variants are interleaved; wall time = sum of the tests + ``overhead_s``.
    """
    categories = categories or {}
    timing_rows, repetition_rows = [], []
    variants = list(samples)
    n_measured = {v: len(next(iter(samples[v].values()))) for v in variants}
    invalid = invalid or {}
    schedule = [(v, k, True, True) for k in range(warmups) for v in variants]
    schedule += [(v, k, False, True) for k in range(max(n_measured.values())) for v in variants if k < n_measured[v]]
    schedule += [(v, n_measured[v] + k, False, False) for v in variants for k in range(invalid.get(v, 0))]
    for repetition, (variant, k, warmup, valid) in enumerate(schedule):
        wall = overhead_s
        for test, values in samples[variant].items():
            total = 1000.0 if (warmup or not valid) else float(values[k])
            wall += total
            phases = {"setup": 0.25 * total, "call": 0.5 * total, "teardown": 0.25 * total, "total": total}
            for phase, seconds in phases.items():
                timing_rows.append(
                    dict(
                        run_id="run-1",
                        repetition=repetition,
                        block=k,
                        order=variants.index(variant),
                        variant=variant,
                        warmup=warmup,
                        valid=valid,
                        test=test,
                        category=categories.get(test, "api"),
                        outcome="passed" if valid else "failed",
                        phase=phase,
                        seconds=seconds,
                        sql_statements=10,
                        ddl_statements=0,
                        connections_opened=1,
                        commits=1,
                        rollbacks=0,
                        savepoints=0,
                    )
                )
        timing_rows.append(
            dict(
                run_id="run-1",
                repetition=repetition,
                block=k,
                order=variants.index(variant),
                variant=variant,
                warmup=warmup,
                valid=valid,
                test="<fixture:engine>",
                category="session",
                outcome="passed",
                phase="setup",
                seconds=500.0,
                sql_statements=3,
                ddl_statements=3,
                connections_opened=1,
                commits=1,
                rollbacks=0,
                savepoints=0,
            )
        )
        repetition_rows.append(
            dict(
                run_id="run-1",
                repetition=repetition,
                block=k,
                order=variants.index(variant),
                variant=variant,
                warmup=warmup,
                valid=valid,
                invalid_reason="" if valid else "failed",
                exit_code=0 if valid else 1,
                wall_s=wall,
                n_tests=len(samples[variant]),
                n_passed=len(samples[variant]) if valid else 0,
                n_failed=0 if valid else 1,
                started_at="2025-01-01T00:00:00",
                finished_at="2025-01-01T00:00:01",
            )
        )
    timings = pd.DataFrame(timing_rows, columns=TIMING_COLUMNS)
    return timings, pd.DataFrame(repetition_rows, columns=REPETITION_COLUMNS_V1)


def lognormal_suite(
    *, n_tests: int, reps: int, factor: float, sigma: float = 0.1, seed: int = 0
) -> dict[str, dict[str, np.ndarray]]:
    """Baseline test times 0.2..2 s; candidate = baseline median x ``factor``; log-normal noise."""
    rng = np.random.default_rng(seed)
    medians = np.linspace(0.2, 2.0, n_tests)
    tests = [f"tests/api/test_{i:02d}.py::test_case" for i in range(n_tests)]
    return {
        "baseline": {t: m * np.exp(rng.normal(0, sigma, reps)) for t, m in zip(tests, medians)},
        "transactional": {t: factor * m * np.exp(rng.normal(0, sigma, reps)) for t, m in zip(tests, medians)},
    }


@pytest.fixture(scope="module")
def two_variants():
    samples = lognormal_suite(n_tests=6, reps=9, factor=0.3, sigma=0.2, seed=1)
    tests = list(samples["baseline"])
    categories = {t: ("auth" if i % 2 else "questions") for i, t in enumerate(tests)}
    timings, repetitions = tidy_frames(samples, categories=categories, warmups=1, invalid={"baseline": 1})
    return samples, categories, timings, repetitions


# --------------------------------------------------------------------------- selection


def test_measured_totals_excludes_warmup_invalid_fixtures_and_phases():
    samples = {"baseline": {"t::a": np.array([1.0, 2.0, 3.0])}, "transactional": {"t::a": np.array([0.5, 0.6, 0.7])}}
    timings, _ = tidy_frames(samples, warmups=2, invalid={"baseline": 1})
    totals = hs.measured_totals(timings)
    assert set(totals["phase"]) == {"total"}
    assert not totals["test"].str.startswith("<fixture:").any()
    assert sorted(totals.loc[totals.variant == "baseline", "seconds"]) == [1.0, 2.0, 3.0]
    assert totals["seconds"].max() < 1000


def test_measured_totals_reads_csv_round_trip_booleans():
    samples = {"baseline": {"t::a": np.array([1.0, 2.0])}}
    timings, _ = tidy_frames(samples, warmups=1)
    buffer = io.StringIO()
    timings.astype({"valid": str, "warmup": str}).to_csv(buffer, index=False)
    buffer.seek(0)
    reread = pd.read_csv(buffer, dtype={"valid": str, "warmup": str})
    assert sorted(hs.measured_totals(reread)["seconds"]) == [1.0, 2.0]


def test_measured_totals_rejects_garbage_booleans_and_missing_columns():
    timings, _ = tidy_frames({"baseline": {"t::a": np.array([1.0])}})
    with pytest.raises(BenchError, match="non-boolean"):
        hs.measured_totals(timings.assign(valid="maybe"))
    with pytest.raises(BenchError, match="lacks column"):
        hs.measured_totals(timings.drop(columns=["phase"]))


# --------------------------------------------------------------------------- describe


def test_describe_matches_numpy(two_variants):
    samples, _, timings, _ = two_variants
    table = hs.describe(hs.measured_totals(timings), by=["variant", "test"]).set_index(["variant", "test"])
    for variant, tests in samples.items():
        for test, values in tests.items():
            row = table.loc[(variant, test)]
            assert row["n"] == len(values)
            assert row["mean"] == pytest.approx(np.mean(values))
            assert row["median"] == pytest.approx(np.median(values))
            assert row["sd"] == pytest.approx(np.std(values, ddof=1))
            assert row["min"] == pytest.approx(values.min())
            assert row["max"] == pytest.approx(values.max())
            assert row["p5"] == pytest.approx(np.percentile(values, 5))
            assert row["p95"] == pytest.approx(np.percentile(values, 95))
            assert row["iqr"] == pytest.approx(np.percentile(values, 75) - np.percentile(values, 25))


def test_describe_single_observation_has_nan_sd():
    frame = pd.DataFrame({"g": ["a"], "seconds": [1.5]})
    row = hs.describe(frame, by="g").iloc[0]
    assert row["n"] == 1 and row["median"] == 1.5 and math.isnan(row["sd"])


# --------------------------------------------------------------------------- per-test comparison


def test_compare_tests_agrees_with_direct_computation(two_variants):
    samples, _, timings, _ = two_variants
    table = hs.compare_tests(timings, baseline="baseline", candidate="transactional")
    assert list(table["unit"]) == sorted(samples["baseline"])
    assert tuple(table.columns) == hs.COMPARISON_COLUMNS
    for row in table.itertuples(index=False):
        base, cand = samples["baseline"][row.unit], samples["transactional"][row.unit]
        assert (row.n_base, row.n_cand) == (len(base), len(cand))
        assert row.median_base_s == pytest.approx(np.median(base))
        assert row.median_cand_s == pytest.approx(np.median(cand))
        assert row.geomean_base_s == pytest.approx(stats.gmean(base))
        ratio = stats.gmean(base) / stats.gmean(cand)
        assert row.speedup == pytest.approx(ratio)
        assert row.improvement_pct == pytest.approx((1 - 1 / ratio) * 100)
        welch = stats.ttest_ind(np.log(base), np.log(cand), equal_var=False)
        interval = welch.confidence_interval(0.95)
        assert (row.speedup_ci_low, row.speedup_ci_high) == pytest.approx((np.exp(interval.low), np.exp(interval.high)))
        assert row.welch_t_log == pytest.approx(welch.statistic)
        assert row.welch_p_value == pytest.approx(welch.pvalue)
        assert row.welch_df == pytest.approx(welch.df)
        mw = stats.mannwhitneyu(base, cand, alternative="two-sided")
        assert row.mw_u == pytest.approx(mw.statistic)
        assert row.mw_p_value == pytest.approx(mw.pvalue)
        pairs = np.subtract.outer(base, cand)
        assert row.cliffs_delta == pytest.approx(np.mean(np.sign(pairs)))
        log_pairs = np.subtract.outer(np.log(base), np.log(cand)).ravel()
        assert row.hl_ratio == pytest.approx(np.exp(np.median(log_pairs)))
        assert row.ci_method == "welch-log" and row.note == ""
    assert np.allclose(table["p_bh"], multipletests(table["welch_p_value"], method="fdr_bh")[1])
    assert table["differs"].tolist() == (table["p_bh"] < 0.05).tolist()


def test_compare_tests_restricted_to_a_test_set(two_variants):
    samples, _, timings, _ = two_variants
    chosen = sorted(samples["baseline"])[:2]
    table = hs.compare_tests(timings, baseline="baseline", candidate="transactional", tests=chosen)
    assert list(table["unit"]) == chosen


def test_compare_tests_unknown_or_equal_variants_raise(two_variants):
    _, _, timings, _ = two_variants
    with pytest.raises(BenchError, match="not in the data"):
        hs.compare_tests(timings, baseline="baseline", candidate="nope")
    with pytest.raises(BenchError, match="two different"):
        hs.compare_tests(timings, baseline="baseline", candidate="baseline")


def test_degenerate_samples_give_nan_p_values_and_a_note():
    one = hs.compare_two_samples([1.0], [0.5, 0.6])
    assert math.isnan(one.mw_p_value) and math.isnan(one.welch_p_value) and math.isnan(one.speedup_ci_low)
    assert one.speedup == pytest.approx(1.0 / stats.gmean([0.5, 0.6])) and "n < 2" in one.note
    flat = hs.compare_two_samples([1.0, 1.0, 1.0], [1.0, 1.0])
    assert math.isnan(flat.mw_p_value) and math.isnan(flat.welch_p_value)
    assert flat.speedup == 1.0 and flat.cliffs_delta == 0.0 and "all values equal" in flat.note
    constant_sides = hs.compare_two_samples([2.0, 2.0, 2.0], [1.0, 1.0, 1.0])
    assert math.isnan(constant_sides.welch_p_value) and "Welch undefined" in constant_sides.note
    assert constant_sides.mw_p_value == pytest.approx(stats.mannwhitneyu([2.0] * 3, [1.0] * 3).pvalue)
    empty = hs.compare_two_samples([], [1.0, 2.0])
    assert empty.n_base == 0 and math.isnan(empty.speedup) and "no samples" in empty.note
    nonpositive = hs.compare_two_samples([0.0, 1.0, 2.0], [1.0, 2.0, 3.0])
    assert math.isnan(nonpositive.welch_p_value) and math.isnan(nonpositive.hl_ratio)
    assert not math.isnan(nonpositive.mw_p_value)


def test_degenerate_tests_are_left_out_of_the_corrections():
    samples = {
        "baseline": {
            "t::flat": np.ones(4),
            "t::a": np.array([2.0, 2.1, 2.2, 2.3]),
            "t::b": np.array([1.0, 1.1, 1.2, 1.3]),
        },
        "transactional": {
            "t::flat": np.ones(4),
            "t::a": np.array([1.0, 1.1, 1.2, 1.3]),
            "t::b": np.array([0.9, 1.15, 1.25, 1.0]),
        },
    }
    samples["baseline"]["t::only_base"] = np.array([1.0, 1.0, 1.0, 1.0])
    timings, _ = tidy_frames(samples)
    table = hs.compare_tests(timings, baseline="baseline", candidate="transactional").set_index("unit")
    assert math.isnan(table.loc["t::flat", "p_bh"]) and not table.loc["t::flat", "differs"]
    assert table.loc["t::only_base", "n_cand"] == 0 and "no samples in candidate" in table.loc["t::only_base", "note"]
    raw = table.loc[["t::a", "t::b"], "welch_p_value"].to_numpy()
    assert np.allclose(table.loc[["t::a", "t::b"], "p_bh"], multipletests(raw, method="fdr_bh")[1])


def test_bootstrap_interval_or_its_fallback_is_labelled():
    rng = np.random.default_rng(4)
    base, cand = np.exp(rng.normal(1, 0.2, 15)), np.exp(rng.normal(0, 0.2, 15))
    result = hs.compare_two_samples(base, cand, rng=np.random.default_rng(1), n_resamples=500, ci_method="BCa")
    assert result.ci_method in {"BCa", "percentile (BCa undefined)"}
    assert result.speedup_ci_low < result.speedup < result.speedup_ci_high
    with pytest.raises(BenchError, match="random generator"):
        hs.compare_two_samples(base, cand, ci_method="percentile")


# --------------------------------------------------------------------------- log-scale intervals


def test_t_interval_matches_scipy_and_has_none_without_df():
    rng = np.random.default_rng(5)
    samples = rng.normal(0.3, 1.0, (3, 6))
    n = samples.shape[1]
    intervals = hs.t_interval(
        samples.mean(axis=1), samples.std(axis=1, ddof=1) / np.sqrt(n), n - 1, confidence_level=0.9
    )
    for i, sample in enumerate(samples):
        expected = stats.ttest_1samp(sample, 0.0)
        assert (intervals.ci_low[i], intervals.ci_high[i]) == pytest.approx(tuple(expected.confidence_interval(0.9)))
        assert intervals.p_value[i] == pytest.approx(expected.pvalue)
    one = hs.t_interval(1.5, 0.5, 4)
    assert isinstance(one.ci_low, float) and one.ci_low < 1.5 < one.ci_high
    none = hs.t_interval(1.5, 0.5, 0)
    assert none.estimate == 1.5 and math.isnan(none.ci_low) and math.isnan(none.ci_high) and math.isnan(none.p_value)
    assert math.isnan(hs.t_interval(1.5, 0.0, 4).p_value)


def test_welch_log_ratio_and_geometric_mean_match_scipy():
    rng = np.random.default_rng(11)
    base, cand = np.exp(rng.normal(1.0, 0.3, 4)), np.exp(rng.normal(0.0, 0.1, 5))
    ratio = hs.welch_log_ratio(base, cand, confidence_level=0.9)
    expected = stats.ttest_ind(np.log(base), np.log(cand), equal_var=False)
    interval = expected.confidence_interval(0.9)
    assert ratio.ratio == pytest.approx(stats.gmean(base) / stats.gmean(cand))
    assert (ratio.ci_low, ratio.ci_high) == pytest.approx((np.exp(interval.low), np.exp(interval.high)))
    assert (ratio.p_value, ratio.df) == pytest.approx((expected.pvalue, expected.df))
    geo = hs.geometric_mean_interval(cand)
    one = stats.ttest_1samp(np.log(cand), 0.0).confidence_interval(0.95)
    assert geo.geomean == pytest.approx(stats.gmean(cand))
    assert (geo.ci_low, geo.ci_high) == pytest.approx((np.exp(one.low), np.exp(one.high)))
    assert math.isnan(hs.geometric_mean_interval([1.0]).ci_low)
    assert math.isnan(hs.welch_log_ratio([1.0], [2.0, 3.0]).ci_low)


def test_repetitions_to_settle_is_the_first_size_whose_interval_clears_the_target():
    variances, distance = [0.04, 0.01], 0.1
    n = hs.repetitions_to_settle(unit_variances=variances, distance=distance)
    assert n is not None and n > 2

    def half_width(k: int) -> float:
        df = hs.satterthwaite_df([v / k for v in variances], [k - 1, k - 1])
        return stats.t.ppf(0.975, df) * math.sqrt(sum(variances) / k)

    assert half_width(n) < distance <= half_width(n - 1)
    assert hs.repetitions_to_settle(unit_variances=variances, distance=0.0) is None
    assert hs.repetitions_to_settle(unit_variances=variances, distance=1e-6, max_repetitions=100) is None


def test_comparable_tests_leave_out_xfailed_and_missing_tests():
    samples = {
        "baseline": {"t::a": np.array([1.0, 1.1]), "t::x": np.array([1.0, 1.0]), "t::gone": np.array([1.0, 1.0])},
        "transactional": {"t::a": np.array([0.5, 0.6]), "t::x": np.array([0.5, 0.5])},
    }
    timings, _ = tidy_frames(samples)
    xfailed = (timings["variant"] == "baseline") & (timings["test"] == "t::x")
    timings.loc[xfailed, "outcome"] = "xfailed"
    test_set = hs.comparable_tests(timings, variants=["baseline", "transactional"])
    assert test_set.tests == ("t::a",)
    assert test_set.excluded["t::x"] == "baseline: xfailed in 2 of 2 processes"
    assert test_set.excluded["t::gone"] == "transactional: not run"
    assert "1 tests passed" in test_set.describe() and "2 left out" in test_set.describe()


def test_median_test_improvement_is_the_harrell_davis_median_of_log_ratios_with_a_jackknife_interval(two_variants):
    samples, _, timings, _ = two_variants
    result = hs.median_test_improvement(timings, baseline="baseline", candidate="transactional")
    base = np.log(np.array([samples["baseline"][t] for t in sorted(samples["baseline"])])).T
    cand = np.log(np.array([samples["transactional"][t] for t in sorted(samples["baseline"])])).T
    point = hs.harrell_davis_median(base.mean(0) - cand.mean(0))[0]
    assert result.improvement_pct == pytest.approx((1 - np.exp(-point)) * 100)
    assert result.n_tests == len(samples["baseline"])

    def jackknife(side, other, sign):
        n = side.shape[0]
        values = [
            hs.harrell_davis_median(sign * (np.delete(side, i, axis=0).mean(0) - other.mean(0)))[0] for i in range(n)
        ]
        return (n - 1) / n * np.sum((np.array(values) - np.mean(values)) ** 2)

    var_b, var_c = jackknife(base, cand, 1.0), jackknife(cand, base, -1.0)
    df = (var_b + var_c) ** 2 / (var_b**2 / (base.shape[0] - 1) + var_c**2 / (cand.shape[0] - 1))
    half = stats.t.ppf(0.975, df) * np.sqrt(var_b + var_c)
    assert result.ci_low == pytest.approx((1 - np.exp(-(point - half))) * 100)
    assert result.ci_high == pytest.approx((1 - np.exp(-(point + half))) * 100)


# --------------------------------------------------------------------------- category and suite


def test_category_level_uses_per_repetition_sums(two_variants):
    samples, categories, timings, _ = two_variants
    table = hs.compare_categories(timings, baseline="baseline", candidate="transactional")
    assert set(table["level"]) == {"category"}
    for row in table.itertuples(index=False):
        members = [t for t, c in categories.items() if c == row.unit]
        base = np.sum([samples["baseline"][t] for t in members], axis=0)
        cand = np.sum([samples["transactional"][t] for t in members], axis=0)
        assert row.median_base_s == pytest.approx(np.median(base))
        assert row.speedup == pytest.approx(stats.gmean(base) / stats.gmean(cand))
        assert row.mw_p_value == pytest.approx(stats.mannwhitneyu(base, cand).pvalue)
    assert np.allclose(table["p_bh"], multipletests(table["welch_p_value"], method="fdr_bh")[1])


def test_suite_level_has_tests_sum_and_wall_rows(two_variants):
    samples, _, timings, repetitions = two_variants
    table = hs.compare_suite(timings, repetitions, baseline="baseline", candidate="transactional")
    table = table.set_index("unit")
    base = np.sum(list(samples["baseline"].values()), axis=0)
    cand = np.sum(list(samples["transactional"].values()), axis=0)
    assert table.loc[hs.SUITE_TESTS_SUM, "median_base_s"] == pytest.approx(np.median(base))
    assert table.loc[hs.SUITE_TESTS_SUM, "median_cand_s"] == pytest.approx(np.median(cand))
    # the helper's wall time is the tests' sum plus 1 s of process overhead
    assert table.loc[hs.SUITE_WALL, "median_base_s"] == pytest.approx(np.median(base + 1.0))
    assert table.loc[hs.SUITE_WALL, "n_base"] == len(base)
    assert (table["p_bh"] == table["welch_p_value"]).all()
    only_sum = hs.compare_suite(timings, None, baseline="baseline", candidate="transactional")
    assert list(only_sum["unit"]) == [hs.SUITE_TESTS_SUM]


# --------------------------------------------------------------------------- acceptance


def _verdicts(factor: float, *, sigma: float = 0.02, reps: int = 10, invalid=None, seed: int = 0):
    samples = lognormal_suite(n_tests=5, reps=reps, factor=factor, sigma=sigma, seed=seed)
    timings, repetitions = tidy_frames(samples, invalid=invalid)
    api_test = next(iter(samples["baseline"]))
    verdicts = targets.acceptance_verdicts(
        timings, repetitions, baseline="baseline", candidate="transactional", api_test=api_test
    )
    return samples, verdicts.set_index("criterion")


def test_acceptance_is_met_for_a_clear_improvement():
    samples, verdicts = _verdicts(0.2)
    assert list(verdicts.reset_index().columns) == list(targets.VERDICT_COLUMNS)
    assert (verdicts["verdict"] == "met").all() and verdicts["passed"].all()
    assert verdicts["repetitions_to_settle"].isna().all()
    suite = verdicts.loc["suite improvement >= 70 %"]
    base = np.sum(list(samples["baseline"].values()), axis=0)
    cand = np.sum(list(samples["transactional"].values()), axis=0)
    assert suite["measured"] == pytest.approx((1 - stats.gmean(cand) / stats.gmean(base)) * 100)
    assert suite["ci_low"] <= suite["measured"] <= suite["ci_high"]
    assert "sum of test totals" in suite["primary_measure"]
    api = verdicts.loc["API test < 0.5 s"]
    assert api["measured"] == pytest.approx(stats.gmean(next(iter(samples["transactional"].values()))))
    log_ratios = np.array(
        [
            np.log(stats.gmean(samples["baseline"][t]) / stats.gmean(samples["transactional"][t]))
            for t in samples["baseline"]
        ]
    )
    median_row = verdicts.loc["median per-test improvement >= 70 %"]
    # the Harrell-Davis median is taken on the log scale, then turned into a per cent improvement
    assert median_row["measured"] == pytest.approx((1 - np.exp(-hs.harrell_davis_median(log_ratios)[0])) * 100)
    assert median_row["ci_low"] <= median_row["measured"] <= median_row["ci_high"]
    assert verdicts.loc["no failing tests", "measured"] == 0


@pytest.mark.parametrize("factor, expected", [(0.28, "met"), (0.32, "not met")])
def test_improvement_verdict_flips_around_the_target(factor, expected):
    _, verdicts = _verdicts(factor, sigma=0.005)
    for criterion in ("suite improvement >= 70 %", "median per-test improvement >= 70 %"):
        assert verdicts.loc[criterion, "verdict"] == expected
        assert bool(verdicts.loc[criterion, "passed"]) is (expected == "met")


@pytest.mark.parametrize("factor, expected", [(0.45 / 0.2, "met"), (0.55 / 0.2, "not met")])
def test_api_verdict_flips_around_half_a_second(factor, expected):
    # the API test's baseline median is 0.2 s, so the candidate's median is about 0.2 x factor
    _, verdicts = _verdicts(factor, sigma=0.01)
    assert verdicts.loc["API test < 0.5 s", "verdict"] == expected


def test_noisy_improvement_at_the_target_is_undetermined_and_says_how_many_repetitions_settle_it():
    _, verdicts = _verdicts(0.3, sigma=0.6, reps=6, seed=3)
    row = verdicts.loc["suite improvement >= 70 %"]
    assert row["verdict"] == "undetermined" and not row["passed"]
    assert row["ci_low"] < 70 < row["ci_high"]
    assert row["repetitions_to_settle"] > 6
    assert "repetitions per side would settle it" in targets.verdict_text(row["verdict"], row["repetitions_to_settle"])


def test_three_states():
    at_least = lambda value: value >= 70  # noqa: E731
    assert targets.three_state(71, 80, passes=at_least) == "met"
    assert targets.three_state(60, 69, passes=at_least) == "not met"
    assert targets.three_state(69.8, 71.0, passes=at_least) == "undetermined"
    assert targets.three_state(math.nan, 71.0, passes=at_least) == "undetermined"


def test_an_invalid_repetition_fails_the_correctness_criterion():
    _, verdicts = _verdicts(0.2, invalid={"transactional": 1})
    row = verdicts.loc["no failing tests"]
    assert row["measured"] == 1 and row["verdict"] == "not met" and not row["passed"]
    # the invalid repetition's absurd times stayed out of the timing criteria
    assert verdicts.loc["suite improvement >= 70 %", "verdict"] == "met"


def test_acceptance_rejects_an_unknown_api_test(two_variants):
    _, _, timings, repetitions = two_variants
    with pytest.raises(BenchError, match="did you mean"):
        targets.acceptance_verdicts(
            timings,
            repetitions,
            baseline="baseline",
            candidate="transactional",
            api_test="tests/api/test_00.py::test_cas",
        )


# --------------------------------------------------------------------------- multiple testing


def test_holm_and_bh_match_statsmodels_with_nan_left_out():
    rng = np.random.default_rng(5)
    # multipletests runs gc.collect() on every Holm call (seconds once the heap is large): keep the loop short
    for _ in range(4):
        p = rng.uniform(size=rng.integers(1, 25)) ** 2
        p[rng.uniform(size=p.size) < 0.2] = np.nan
        ok = ~np.isnan(p)
        expected_holm = np.full(p.shape, np.nan)
        expected_bh = np.full(p.shape, np.nan)
        if ok.any():
            expected_holm[ok] = multipletests(p[ok], method="holm")[1]
            expected_bh[ok] = multipletests(p[ok], method="fdr_bh")[1]
        assert np.allclose(hs.holm_adjust(p), expected_holm, equal_nan=True)
        assert np.allclose(hs.holm_adjust_fast(p), expected_holm, equal_nan=True)
        assert np.allclose(hs.bh_adjust(p), expected_bh, equal_nan=True)


def test_holm_fast_handles_ties_and_empty_input():
    p = np.array([0.01, 0.01, 0.04, 0.5])
    assert np.allclose(hs.holm_adjust_fast(p), multipletests(p, method="holm")[1])
    assert hs.holm_adjust_fast(np.array([])).size == 0


# --------------------------------------------------------------------------- formatting


def test_format_table_plain_and_markdown():
    frame = pd.DataFrame({"unit": ["a|b", "c"], "speedup": [3.14159, np.nan], "n": [3, 12], "ok": [True, False]})
    plain = hs.format_table(frame, floatfmt=".2f").splitlines()
    assert plain[0].split() == ["unit", "speedup", "n", "ok"]
    assert set(plain[1].replace(" ", "")) == {"-"}
    assert "3.14" in plain[2] and "n/a" in plain[3] and "yes" in plain[2] and "no" in plain[3]
    # numbers are right-aligned under their header
    assert plain[2].index("3.14") + len("3.14") == plain[0].index("speedup") + len("speedup")
    markdown = hs.format_table(frame, style="markdown", floatfmt={"speedup": ".1f"}).splitlines()
    assert markdown[0].startswith("| unit") and markdown[1].startswith("| ---")
    assert "--:" in markdown[1] and "a\\|b" in markdown[2] and "3.1" in markdown[2]
    assert all(line.count("|") - line.count("\\|") == 5 for line in markdown)
    with pytest.raises(BenchError):
        hs.format_table(frame, style="html")


def test_format_comparison_and_verdict_lines(two_variants):
    _, _, timings, repetitions = two_variants
    table = hs.compare_tests(timings, baseline="baseline", candidate="transactional")
    lines = hs.format_comparison(table, limit=2)
    assert len(lines) == 3 and lines[-1] == f"... and {len(table) - 2} more"
    assert lines[0].startswith(table["unit"].iloc[0]) and "faster" in lines[0] and "95% CI" in lines[0]
    verdicts = targets.acceptance_verdicts(
        timings,
        repetitions,
        baseline="baseline",
        candidate="transactional",
        api_test=table["unit"].iloc[0],
    )
    verdict_lines = targets.format_verdicts(verdicts)
    assert len(verdict_lines) == 4 and all(
        line.startswith(("met", "not met", "undetermined")) for line in verdict_lines
    )


def test_harrell_davis_median_matches_its_beta_weights_and_is_smooth():
    values = np.random.default_rng(3).normal(size=(2, 9))
    m = values.shape[1]
    weights = np.diff(stats.beta.cdf(np.arange(m + 1) / m, (m + 1) / 2, (m + 1) / 2))
    assert hs.harrell_davis_median(values) == pytest.approx((np.sort(values, axis=1) * weights).sum(axis=1))
    assert hs.harrell_davis_median(np.arange(10.0))[0] == pytest.approx(4.5)
    # unlike the sample median, moving one value off the middle still moves the estimate a little
    moved = values[0].copy()
    moved[np.argmax(moved)] += 1.0
    assert hs.harrell_davis_median(moved)[0] > hs.harrell_davis_median(values[0])[0]
