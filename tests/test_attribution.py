"""quiz_study.attribution and the study around it (quiz_study.why): one value per process, the
saturated model checked against statsmodels, shares and their ranges over the orders, the intervals'
coverage by seeded simulation at the default size, and the whole study recorded with fake processes
whose effects are known (the real suite runs in tests/test_run_all.py's smoke study)."""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import pytest
from fake_processes import EFFECTS, FAKE_TESTS, FakeSuite, fake_collector

from quiz_study import attribution, design, floor, why
from quiz_study import variants as study_variants
from suitebench import store
from suitebench.errors import BenchError

STEP_EFFECTS = {step: EFFECTS[step] for step in design.STEPS}


def step_codes() -> pd.DataFrame:
    """Per cell: the four steps as 0/1 indicators."""
    cells = design.factorial_cells()
    return pd.DataFrame(
        {
            "storage": cells["storage"],
            "reference_data": cells["reference_data"],
            "session_wiring": (cells["isolation_wiring"] >= 1).astype(int),
            "isolation": (cells["isolation_wiring"] == 2).astype(int),
        }
    )


def true_means(effects=STEP_EFFECTS, interactions: dict[tuple[str, ...], float] | None = None) -> np.ndarray:
    codes = step_codes()
    means = sum(effects[s] * codes[s].to_numpy() for s in design.STEPS)
    for steps, value in (interactions or {}).items():
        means = means + value * np.prod([codes[s].to_numpy() for s in steps], axis=0)
    return np.asarray(means, dtype=float) + np.log(2.0)


def synthetic_timings(
    means: np.ndarray, *, repetitions: int = 3, n_tests: int = 5, process_sd: float = 0.05, seed: int = 0
) -> pd.DataFrame:
    """Tidy total-phase rows of a factorial run whose cell c has log summed time about means[c]."""
    rng = np.random.default_rng(seed)
    share = rng.dirichlet(np.ones(n_tests))
    rows, repetition = [], 0
    for block in range(repetitions):
        for cell, label in enumerate(design.factorial_variants()):
            process = rng.normal(0, process_sd)
            for i in range(n_tests):
                rows.append(
                    {
                        "run_id": "synthetic",
                        "repetition": repetition,
                        "block": block,
                        "order": 0,
                        "variant": label,
                        "warmup": False,
                        "valid": True,
                        "test": f"t.py::test_{i}",
                        "category": "crud" if i % 2 else "auth",
                        "outcome": "passed",
                        "phase": "total",
                        "seconds": float(np.exp(means[cell] + process) * share[i]),
                    }
                )
            repetition += 1
    return pd.DataFrame(rows)


# ---------------------------------------------------------------- one value per process


def test_one_value_per_process_over_the_tests_that_passed_everywhere():
    timings = synthetic_timings(true_means(), repetitions=2)
    own = timings["variant"].map(design.cell_of).map(design.factorial_cells()["session_wiring"]) == "own"
    timings.loc[own & (timings["test"] == "t.py::test_0"), "outcome"] = "xfailed"
    extra = timings[timings["variant"] == "transactional"].assign(variant="transactional+copies=2", repetition=99)
    values = attribution.process_values(pd.concat([timings, extra]))
    assert len(values.frame) == 24 and values.frame["process"].is_unique
    assert values.excluded_tests == ("t.py::test_0",) and values.other_variants == ("transactional+copies=2",)
    assert (values.frame["n_tests"] == 4).all()
    kept = timings[timings["test"] != "t.py::test_0"].groupby("repetition")["seconds"].sum()
    np.testing.assert_allclose(values.frame.set_index("repetition")["sum_s"].sort_index(), kept.sort_index())
    with pytest.raises(BenchError, match="no cell"):
        attribution.process_values(extra)


def test_warm_up_tests_run_but_are_not_analysed():
    timings = synthetic_timings(true_means(), repetitions=1, n_tests=3)
    values = attribution.process_values(timings, tests=["t.py::test_1", "t.py::test_2"])
    assert values.tests == ("t.py::test_1", "t.py::test_2") and (values.frame["n_tests"] == 2).all()
    kept = timings[timings["test"] != "t.py::test_0"].groupby("repetition")["seconds"].sum()
    np.testing.assert_allclose(values.frame.set_index("repetition")["sum_s"].sort_index(), kept.sort_index())


def test_strata_weigh_each_test_by_its_categorys_size_in_the_suite():
    timings = synthetic_timings(true_means(), repetitions=1, n_tests=3)  # auth: test_0, test_2; crud: test_1
    values = attribution.process_values(timings, strata={"auth": 10, "crud": 30, "jwt": 5})
    assert values.weights == {"t.py::test_0": 5.0, "t.py::test_1": 30.0, "t.py::test_2": 5.0}
    assert "missing: jwt" in values.weighting
    one = timings[timings["repetition"] == 0].set_index("test")["seconds"]
    row = values.frame[values.frame["repetition"] == 0].iloc[0]
    assert row["sum_s"] == pytest.approx(5 * one["t.py::test_0"] + 30 * one["t.py::test_1"] + 5 * one["t.py::test_2"])
    expected_log = (
        5 * np.log(one["t.py::test_0"]) + 30 * np.log(one["t.py::test_1"]) + 5 * np.log(one["t.py::test_2"])
    ) / 40
    assert row["mean_log_s"] == pytest.approx(expected_log)


# ---------------------------------------------------------------- the model


def test_cell_fit_is_the_saturated_ols_of_statsmodels():
    import statsmodels.formula.api as smf

    values = attribution.process_values(synthetic_timings(true_means(), seed=3))
    fitted = attribution.fit_factorial(values)
    model = smf.ols("log_sum_s ~ C(cell)", data=values.frame).fit()
    predicted = model.predict(pd.DataFrame({"cell": range(12)})).to_numpy()
    np.testing.assert_allclose(fitted.fit.means, predicted)
    assert fitted.df == model.df_resid == 24
    assert float(fitted.fit.s2) == pytest.approx(model.scale)
    anova = attribution.anova_table(fitted)
    assert anova.set_index("term").loc["Residual", "df"] == 24
    assert {"storage x isolation_wiring", "storage x reference_data x isolation_wiring"} <= set(anova["term"])


def test_effects_recover_the_truth_and_flag_a_null_interaction():
    interactions = {("storage", "isolation"): 0.5}
    values = attribution.process_values(synthetic_timings(true_means(interactions=interactions), seed=4))
    effects = attribution.effects_table(attribution.fit_factorial(values)).set_index("term")
    truth = {**STEP_EFFECTS, "storage": EFFECTS["storage"] + 0.5 / 3, "isolation": EFFECTS["isolation"] + 0.25}
    for term, value in truth.items():
        row = effects.loc[term]
        assert np.log(row["ci_low"]) <= value <= np.log(row["ci_high"]), term
    assert effects.loc["storage x isolation", "distinguishable_from_zero"]
    assert not effects.loc["reference_data x session_wiring", "distinguishable_from_zero"]
    assert (effects["df"] == 24).all()


def test_shares_of_an_additive_truth_do_not_depend_on_the_order():
    values = attribution.process_values(synthetic_timings(true_means(), process_sd=1e-4, seed=5))
    shares, orders = attribution.shares_tables(attribution.fit_factorial(values))
    four = shares[(shares["form"] == "time-weighted") & (shares["view"] == "session wiring, then isolation")]
    total = sum(STEP_EFFECTS.values())
    for row in four.itertuples(index=False):
        assert row.share_min == pytest.approx(STEP_EFFECTS[row.switch] / total, abs=1e-3)
        assert row.share_max == pytest.approx(row.share_min, abs=1e-3)
        assert row.band_low <= row.share_mean_ci_low <= row.share_mean <= row.share_mean_ci_high <= row.band_high
    by_order = orders[(orders["form"] == "per-test") & (orders["view"] == "session wiring, then isolation")]
    np.testing.assert_allclose(by_order.groupby("order")["share"].sum(), 1.0)
    merged = shares[shares["view"] == "isolation and wiring as one switch"].set_index(["form", "switch"])
    assert merged.loc[("time-weighted", "isolation_wiring"), "n_orders"] == 6


def test_an_interaction_spreads_the_shares_over_the_orders():
    means = true_means(interactions={("storage", "isolation"): 0.5})
    values = attribution.process_values(synthetic_timings(means, process_sd=1e-4, seed=6))
    shares, _ = attribution.shares_tables(attribution.fit_factorial(values))
    storage = shares.set_index(["form", "view", "switch"]).loc[
        ("time-weighted", "session wiring, then isolation", "storage")
    ]
    total = means[design.preset_cell("transactional")] - means[design.preset_cell("baseline")]
    # storage's step is -0.4 before isolation and -0.4 + 0.5 after it; the total is negative
    assert storage["share_max"] == pytest.approx(EFFECTS["storage"] / total, abs=1e-3)
    assert storage["share_min"] == pytest.approx((EFFECTS["storage"] + 0.5) / total, abs=1e-3)
    assert storage["time_ratio_min"] == pytest.approx(np.exp(EFFECTS["storage"]), rel=1e-3)


def test_shares_need_every_cell_and_no_replication_means_no_interval():
    timings = synthetic_timings(true_means(), repetitions=1, seed=7)
    fitted = attribution.fit_factorial(attribution.process_values(timings))
    assert fitted.df == 0 and attribution.anova_table(fitted).empty
    shares, _ = attribution.shares_tables(fitted)
    assert shares["band_low"].isna().all() and shares["share_min"].notna().all()
    missing = timings[timings["variant"] != "transactional"]
    with pytest.raises(BenchError, match="not measured: transactional"):
        attribution.shares_tables(attribution.fit_factorial(attribution.process_values(missing)))


# ---------------------------------------------------------------- coverage at the default size


def test_intervals_cover_at_the_default_size():
    """Seeded simulation of the standard plan (12 cells x 3 processes, residual df 24) with cell
    means from the standard run measured on the study machine and its process-level sd (0.2 on
    the log scale, a loaded hour): the effect intervals, every order's share interval, the mean
    share's, and the band over the orders (which must hold the whole true range) cover."""
    plan = why.why_plan("standard")
    cells = np.repeat(np.arange(design.N_CELLS), plan.factorial_repetitions)
    measured = np.log([17.96, 18.53, 6.975, 13.68, 15.52, 6.861, 7.688, 7.198, 6.493, 6.446, 7.382, 5.847])
    rng = np.random.default_rng(20240601)
    sims = 4000
    values = measured[cells] + rng.normal(0, 0.2, (sims, len(cells)))
    fit = attribution.cell_fit(values, cells)
    assert fit.df == 24
    weights = np.vstack([e.weights for e in design.effect_contrasts()])
    effects = attribution.contrast_intervals(fit, weights)
    truth = weights @ measured
    coverage = ((effects.ci_low <= truth) & (truth <= effects.ci_high)).mean(axis=0)
    assert np.all((coverage > 0.935) & (coverage < 0.965)), coverage
    for merged in (False, True):
        path = design.path_contrasts(merged=merged)
        shares = attribution.share_intervals(fit, path)
        true_share = (path.weights @ measured) / (path.total @ measured)
        per_order = ((shares.low <= true_share) & (true_share <= shares.high)).mean(axis=0)
        assert per_order.min() > 0.92 and per_order.mean() > 0.935, per_order
        true_mean = true_share.mean(axis=0)
        mean_cover = ((shares.mean_low <= true_mean) & (true_mean <= shares.mean_high)).mean(axis=0)
        assert np.all(mean_cover > 0.93), mean_cover
        band = (shares.band_low <= true_share.min(axis=0)) & (true_share.max(axis=0) <= shares.band_high)
        assert np.all(band.mean(axis=0) >= 0.95), band.mean(axis=0)


def test_intervals_cover_with_heavy_tailed_process_noise():
    """The same design with t(4) process noise (a few slow processes): the effect intervals still cover."""
    cells = np.repeat(np.arange(design.N_CELLS), 3)
    truth_means = true_means(interactions={("storage", "isolation"): 0.5})
    rng = np.random.default_rng(7)
    values = truth_means[cells] + 0.1 * rng.standard_t(4, (4000, len(cells)))
    fit = attribution.cell_fit(values, cells)
    weights = np.vstack([e.weights for e in design.effect_contrasts()])
    effects = attribution.contrast_intervals(fit, weights)
    truth = weights @ truth_means
    coverage = ((effects.ci_low <= truth) & (truth <= effects.ci_high)).mean(axis=0)
    assert np.all(coverage > 0.93), coverage


# ---------------------------------------------------------------- the study, with a fake suite


@pytest.fixture(scope="module")
def fake_study(tmp_path_factory):
    suite = FakeSuite(interactions={("storage", "isolation"): 0.3})
    output = tmp_path_factory.mktemp("runs")
    main = study_variants.run_benchmark(
        variants=["baseline", "transactional"],
        repetitions=3,
        warmup=0,
        output_dir=output,
        run_id="main",
        progress=False,
        executor=suite,
    )
    result = why.run_why_study(
        profile_size="standard",
        output_dir=output,
        seed=0,
        run_prefix="main-why",
        main_run=main.run_dir,
        runner=functools.partial(study_variants.run_benchmark, executor=suite),
        floor_runner=functools.partial(floor.measure_floor, executor=suite),
        collector=fake_collector,
    )
    return result, output


def test_study_writes_one_run_per_part_and_every_table(fake_study):
    result, output = fake_study
    assert set(result.run_dirs) == {"factorial", "floor"}
    expected = {
        "runs",
        "attribution_fit",
        "design",
        "process_values",
        "model",
        "effects",
        "shares",
        "share_orders",
        "totals",
        "floor_tests",
        "floor_categories",
        "floor_overall",
        "floor_phases",
    }
    assert expected <= set(result.tables)
    roles = result.tables["runs"].set_index("run_id")["roles"]
    assert roles["main-why-factorial"] == "attribution" and roles["main"] == "direct"
    assert why.latest_why_runs(output) == [*result.run_dirs.values(), output / "main"]
    fit = result.tables["attribution_fit"]
    assert (fit["residual_df"] == 24).all() and (fit["processes_per_cell"] == "3").all()
    assert "stratified" in fit["weighting"].iloc[0]
    subset = store.read_metadata(result.run_dirs["factorial"])["subset"]
    assert subset["tests"] == [t for t, _ in FAKE_TESTS]
    assert subset["warmup_tests"] == [
        f"{t.split('::')[0]}::test_warm_up_{c}_{k}" for t, c in FAKE_TESTS for k in (1, 2)
    ]
    assert (
        "each after unmeasured warm-up tests"
        in result.tables["runs"].set_index("run_id").loc["main-why-factorial", "selection"]
    )
    # The floor measures the sampled tests, not their warm-ups.
    assert set(store.read_metadata(result.run_dirs["floor"])["arguments"]["targets"]) == {t for t, _ in FAKE_TESTS}


def test_study_recovers_the_fake_suites_effects_and_floor(fake_study):
    result, _ = fake_study
    effects = result.tables["effects"].set_index(["form", "term"])
    assert effects.loc[("per-test", "storage x isolation"), "effect_log"] == pytest.approx(0.3, abs=0.03)
    assert effects.loc[("per-test", "reference_data"), "effect_log"] == pytest.approx(
        EFFECTS["reference_data"], abs=0.03
    )
    totals = result.tables["totals"].set_index(["form", "source", "tests"])
    model = totals.loc[("per-test", "factorial model", "the factorial's tests"), "speedup"]
    direct = totals.loc[("per-test", "main run main", "whole suite")]
    assert direct["speedup_ci_low"] <= model <= direct["speedup_ci_high"]
    overall = result.tables["floor_overall"].set_index("architecture")
    assert overall.loc["transactional", "overhead_s"] == pytest.approx(0.005, abs=0.002)
    assert overall.loc["transactional", "n_blocks"] == 3


def test_tables_are_regenerated_from_the_files_alone(fake_study):
    result, output = fake_study
    again = why.why_tables(*result.run_dirs.values(), output / "main")
    for name in ("effects", "shares", "totals", "floor_categories", "model"):
        pd.testing.assert_frame_equal(again[name], result.tables[name])


def test_one_run_per_role(fake_study):
    result, _ = fake_study
    with pytest.raises(BenchError, match="never pooled"):
        why.why_tables(result.run_dirs["factorial"], result.run_dirs["factorial"])


def test_plans_measure_at_least_three_processes_per_cell_by_default():
    standard = why.why_plan("standard")
    assert standard.factorial_repetitions >= 3 and standard.forked and standard.tests_per_category == 1
    assert standard.floor_repetitions >= 3 and floor.FLOOR_SPEC in standard.floor_variants
    smoke = why.why_plan("smoke")
    assert smoke.factorial_processes == 12 and smoke.categories == ("auth",)
    full = why.why_plan("full")
    assert full.tests_per_category is None and not full.forked and full.factorial_repetitions >= 5
    assert full.sweep is not None and max(full.sweep.extra_tables) >= 100
    with pytest.raises(BenchError, match="unknown size"):
        why.why_plan("huge")


def test_subset_is_stratified_and_selectable_with_k():
    collected = pd.DataFrame(
        {
            "test": [
                "test_a.py::test_login",
                "test_a.py::test_login_twice",
                "test_a.py::test_logout",
                "test_b.py::test_attack[alg-none]",
                "test_b.py::test_attack[bad sig]",
                "test_c.py::test_revoked_token_rejected",
            ],
            "category": ["auth", "auth", "auth", "jwt", "jwt", "middleware"],
            "markers": [(), (), (), (), (), ("needs_shared_transaction",)],
        }
    )
    eligible = why.selectable(collected).tolist()
    # test_login is inside test_login_twice; a space cannot go in -k; strict-xfail tests are out
    assert eligible == [False, True, True, True, False, False]
    subset = why.choose_subset(collected, per_category=1, seed=0, categories=["auth", "jwt"])
    assert len(subset.tests) == 2 and subset.strata == {"auth": 3, "jwt": 2}
    assert subset.keyword == " or ".join(t.rsplit("::", 1)[1] for t in subset.tests)
    with pytest.raises(BenchError, match="middleware"):
        why.choose_subset(collected, per_category=1, seed=0)

    # With warm-ups: the measured test has a selectable test of its category before it, which
    # runs first (unmeasured); auth's only such pair is test_login_twice -> test_logout.
    warmed = why.choose_subset(collected, per_category=1, seed=0, categories=["auth"], warm_up=1)
    assert warmed.tests == ("test_a.py::test_logout",) and warmed.warmups == ("test_a.py::test_login_twice",)
    assert warmed.keyword == "test_login_twice or test_logout"
    assert warmed.describe()["warmup_tests"] == ["test_a.py::test_login_twice"]
    with pytest.raises(BenchError, match="'jwt' has no 2 tests that can be selected"):
        why.choose_subset(collected, per_category=1, seed=0, categories=["jwt"], warm_up=1)
    with pytest.raises(BenchError, match="'auth' has no 3 tests .* after 2 warm-up tests"):
        why.choose_subset(collected, per_category=1, seed=0, categories=["auth"], warm_up=2)
