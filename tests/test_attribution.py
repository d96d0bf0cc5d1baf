"""quiz_study.attribution (and the study around it, quiz_study.why): synthetic tidy timings with known
multiplicative effects must come back within their intervals; a switch with no effect must be
flagged as not distinguishable from zero; the whole study pipeline, run with a fake executor
that plays a suite with known effects, must recover them from the files it wrote."""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import pytest
from fake_processes import EFFECTS, FakeSuite

from quiz_study import attribution, design, floor, why
from quiz_study import variants as study_variants
from suitebench import store
from suitebench.errors import BenchError


def synthetic_timings(
    cells: pd.DataFrame,
    *,
    effects: dict[str, float] = EFFECTS,
    interactions: dict[tuple[str, str], float] | None = None,
    repetitions: int = 2,
    n_tests: int = 12,
    process_sd: float = 0.05,
    test_sd: float = 0.08,
    seed: int = 0,
) -> pd.DataFrame:
    """Tidy total-phase rows: log seconds = test effect + switch effects + process noise + noise."""
    rng = np.random.default_rng(seed)
    base = rng.normal(np.log(0.04), 0.6, n_tests)
    rows, repetition = [], 0
    for block in range(repetitions):
        for cell in cells.to_dict("records"):
            shift = sum(effects.get(f, 0.0) * cell[f] for f in design.FACTORS)
            shift += sum(v * cell[a] * cell[b] for (a, b), v in (interactions or {}).items())
            process = rng.normal(0, process_sd)
            for i in range(n_tests):
                seconds = float(np.exp(base[i] + shift + process + rng.normal(0, test_sd)))
                rows.append(
                    {
                        "run_id": "synthetic",
                        "repetition": repetition,
                        "block": block,
                        "order": 0,
                        "variant": cell["variant"],
                        "warmup": False,
                        "valid": True,
                        "test": f"t.py::test_{i}",
                        "category": "crud",
                        "outcome": "passed",
                        "phase": "total",
                        "seconds": seconds,
                    }
                )
            repetition += 1
    return pd.DataFrame(rows)


def fit(timings: pd.DataFrame, **options) -> attribution.AttributionFit:
    return attribution.fit_attribution(attribution.attribution_data(timings), **options)


def log_interval(row: pd.Series) -> tuple[float, float]:
    return float(np.log(row["ci_low"])), float(np.log(row["ci_high"]))


# ---------------------------------------------------------------- recovery


def test_full_factorial_recovers_main_effects_and_flags_the_null_switch():
    interactions = {("storage", "reference_data"): 0.12}
    timings = synthetic_timings(design.full_factorial().cells, interactions=interactions, seed=1)
    result = fit(timings)
    assert result.cov_type == "cluster" and len(result.terms) == 20
    effects = attribution.effects_table(result).set_index("switch")
    # Main effects average over the grid: storage and reference_data carry half the interaction.
    truth = {**EFFECTS, "storage": EFFECTS["storage"] + 0.06, "reference_data": EFFECTS["reference_data"] + 0.06}
    for switch, value in truth.items():
        low, high = log_interval(effects.loc[switch])
        assert low <= value <= high, switch
    assert not effects.loc["client", "distinguishable_from_zero"]
    assert effects.loc["client", "flag"] == "not distinguishable from zero"
    assert effects.drop(index="client")["distinguishable_from_zero"].all()
    table = attribution.interactions_table(result).set_index("interaction")
    assert table.loc["storage:reference_data", "distinguishable_from_zero"]
    low, high = log_interval(table.loc["storage:reference_data"])
    assert low <= 0.12 <= high
    assert table["distinguishable_from_zero"].sum() == 1


def test_fraction_recovers_main_effects_of_an_additive_truth():
    fraction = design.d_optimal_fraction(12, seed=0)
    result = fit(synthetic_timings(fraction.cells, repetitions=3, seed=2))
    assert all(":" not in term for term in result.terms)
    effects = attribution.effects_table(result).set_index("switch")
    for switch, value in EFFECTS.items():
        low, high = log_interval(effects.loc[switch])
        assert low <= value <= high, switch
    assert not effects.loc["client", "distinguishable_from_zero"]


def test_intervals_cover_the_truth_about_95_percent_of_the_time():
    """Coverage by simulation: process noise dominates, so only between-process intervals cover."""
    cells = design.d_optimal_fraction(12, seed=0).cells
    hits = []
    for seed in range(60):
        timings = synthetic_timings(cells, repetitions=2, n_tests=6, process_sd=0.1, test_sd=0.03, seed=100 + seed)
        effects = attribution.effects_table(fit(timings)).set_index("switch")
        low, high = log_interval(effects.loc["storage"])
        hits.append(low <= EFFECTS["storage"] <= high)
    assert 0.85 <= np.mean(hits) <= 1.0


def test_path_design_measures_the_steps_and_falls_back_to_within_process_intervals():
    path = design.path_design()
    result = fit(synthetic_timings(path.cells, repetitions=1, seed=3))
    assert result.cov_type == "nonrobust"
    assert "process-to-process variation is not in these intervals" in result.ci_basis
    effects = attribution.effects_table(result).set_index("switch")
    assert not effects.loc["password_hash", "estimable"]
    assert "does not vary" in effects.loc["password_hash", "flag"]
    assert np.isnan(effects.loc["client", "time_ratio"])
    for switch in design.PATH_FACTORS:
        assert effects.loc[switch, "effect_log"] == pytest.approx(EFFECTS[switch], abs=0.15)


def test_waterfall_shares_add_up_and_match_the_effects_of_an_additive_truth():
    timings = synthetic_timings(design.full_factorial().cells, process_sd=0.0, test_sd=0.001, seed=4)
    waterfall = attribution.waterfall_table(fit(timings, interactions="none"))
    steps = waterfall[waterfall["step"] != "total"].set_index("switch")
    total = sum(EFFECTS[f] for f in design.PATH_FACTORS)
    for switch in design.PATH_FACTORS:
        assert steps.loc[switch, "share"] == pytest.approx(EFFECTS[switch] / total, abs=0.01)
        assert steps.loc[switch, "share_ci_low"] <= steps.loc[switch, "share"] <= steps.loc[switch, "share_ci_high"]
    assert steps["share"].sum() == pytest.approx(1.0)
    final = waterfall.set_index("step").loc["total"]
    assert final["speedup"] == pytest.approx(np.exp(-total), rel=0.01)
    assert final["cumulative_time_ratio"] == pytest.approx(steps["cumulative_time_ratio"].iloc[-1])
    assert "additive" in final["allocation"]


def test_waterfall_splits_an_interaction_over_the_feasible_orders():
    interactions = {("storage", "isolation"): -0.30, ("storage", "reference_data"): 0.10}
    timings = synthetic_timings(
        design.full_factorial().cells, interactions=interactions, process_sd=0.0, test_sd=0.001, seed=5
    )
    steps = attribution.waterfall_table(fit(timings)).set_index("switch")
    # An interaction goes to whichever of its switches changes second. Isolation comes after
    # session_wiring in every feasible order, so it is second to storage in 2 of 3 orders;
    # storage and reference_data are each second in half of them.
    assert steps.loc["storage", "change_log"] == pytest.approx(EFFECTS["storage"] - 0.10 + 0.05, abs=0.01)
    assert steps.loc["isolation", "change_log"] == pytest.approx(EFFECTS["isolation"] - 0.20, abs=0.01)
    assert steps.loc["reference_data", "change_log"] == pytest.approx(EFFECTS["reference_data"] + 0.05, abs=0.01)
    assert "Shapley" in steps["allocation"].iloc[0]


def test_shapley_orders_never_pass_through_the_refused_cell():
    orders = attribution.path_orders()
    assert len(orders) == 12
    assert all(order.index("session_wiring") < order.index("isolation") for order in orders)


def test_tests_that_did_not_pass_everywhere_are_left_out():
    cells = design.path_design().cells
    timings = synthetic_timings(cells, repetitions=1, seed=6)
    own = timings["variant"].isin(cells.loc[cells["session_wiring"] == 0, "variant"])
    timings.loc[own & (timings["test"] == "t.py::test_0"), "outcome"] = "xfailed"
    data = attribution.attribution_data(timings)
    assert data.excluded_tests == ("t.py::test_0",)
    assert "t.py::test_0" not in set(data.frame["test"])


def test_variants_that_are_not_cells_are_ignored_and_no_cell_is_an_error():
    cells = design.path_design().cells
    timings = synthetic_timings(cells, repetitions=1, seed=7)
    extra = timings[timings["variant"] == "transactional"].assign(variant="transactional+copies=2", repetition=99)
    data = attribution.attribution_data(pd.concat([timings, extra]))
    assert data.other_variants == ("transactional+copies=2",)
    with pytest.raises(BenchError, match="no factorial cell"):
        attribution.attribution_data(extra)


def test_cluster_intervals_need_more_processes_than_parameters():
    timings = synthetic_timings(design.path_design().cells, repetitions=1, seed=8)
    with pytest.raises(BenchError, match="more processes"):
        fit(timings, cov="cluster")


def test_main_effect_weights_average_over_the_cells_where_both_levels_run():
    terms = ["isolation", "session_wiring", "storage:isolation"]
    weights = attribution.main_effect_weights("isolation", terms)
    assert weights["isolation"] == pytest.approx(1.0)
    assert weights["session_wiring"] == pytest.approx(0.0)
    assert weights["storage:isolation"] == pytest.approx(0.5)


# ---------------------------------------------------------------- the study, with a fake suite


@pytest.fixture(scope="module")
def fake_study(tmp_path_factory):
    suite = FakeSuite()
    output = tmp_path_factory.mktemp("runs")
    result = why.run_why_study(
        profile_size="standard",
        output_dir=output,
        seed=0,
        runner=functools.partial(study_variants.run_benchmark, executor=suite),
        floor_runner=functools.partial(floor.measure_floor, executor=suite),
    )
    return result, output


def test_study_writes_one_run_per_part_and_every_table(fake_study):
    result, output = fake_study
    assert set(result.run_dirs) == {"design", "floor"}
    expected = {
        "runs",
        "attribution_fit",
        "design",
        "aliasing",
        "effects",
        "interactions",
        "waterfall",
        "floor_tests",
        "floor_categories",
        "floor_overall",
        "floor_phases",
        "scaling_points",
        "scaling_slopes",
        "projection",
    }
    assert expected <= set(result.tables)
    roles = result.tables["runs"].set_index("run_id")["roles"]
    assert roles[result.run_dirs["design"].name] == "attribution, scaling"
    assert set(why.latest_why_runs(output, size="standard")) == set(result.run_dirs.values())


def test_study_recovers_the_fake_suites_effects(fake_study):
    result, _ = fake_study
    effects = result.tables["effects"].set_index("switch")
    for switch, value in EFFECTS.items():
        assert effects.loc[switch, "effect_log"] == pytest.approx(value, abs=0.05), switch
    assert not effects.loc["client", "distinguishable_from_zero"]
    slopes = result.tables["scaling_slopes"].set_index(["architecture", "knob", "measure"])
    assert slopes.loc[("baseline", "extra_tables", "per_test_s"), "slope_s_per_unit"] == pytest.approx(0.002, rel=0.2)
    assert slopes.loc[("transactional", "extra_tables", "per_test_s"), "slope_s_per_unit"] == pytest.approx(
        0.0, abs=5e-4
    )
    overall = result.tables["floor_overall"].set_index("architecture")
    assert overall.loc["transactional", "overhead_s"] == pytest.approx(0.005, abs=0.002)


def test_tables_are_regenerated_from_the_files_alone(fake_study):
    result, _ = fake_study
    again = why.why_tables(*result.run_dirs.values())
    for name in ("effects", "waterfall", "floor_categories", "scaling_slopes", "projection"):
        pd.testing.assert_frame_equal(again[name], result.tables[name])


@pytest.mark.parametrize(("size", "processes"), [("smoke", 12), ("standard", 17)])
def test_small_sizes_run_few_processes(size, processes):
    plan = why.why_plan(size)
    design_run = {*plan.design.variants, *plan.sweep.variants()}
    assert plan.sweep_joins_design and plan.design_repetitions == plan.floor_repetitions == 1
    assert len(design_run) + 3 * plan.floor_tests == processes


def test_full_size_is_the_whole_factorial_sweep_and_floor():
    plan = why.why_plan("full")
    assert plan.design.name == "full" and len(plan.design.variants) == 48
    assert plan.subset_categories == tuple(why.SUBSET_TESTS) and plan.floor_tests == len(why.SUBSET_TESTS)
    assert plan.design_repetitions >= 3 and plan.sweep_repetitions >= 2 and plan.floor_repetitions >= 3
    # the ranges: ~100 extra tables, 10 -> 10,000 reference rows, tens -> hundreds of tests
    assert max(plan.sweep.extra_tables) >= 100 and max(plan.sweep.reference_rows) == 10_000
    assert len(why.SUBSET_TESTS) * max(plan.sweep.copies) >= 300
    with pytest.raises(BenchError, match="unknown size"):
        why.why_plan("huge")


def test_one_run_per_role(fake_study):
    result, _ = fake_study
    with pytest.raises(BenchError, match="never pooled"):
        why.why_tables(result.run_dirs["design"], result.run_dirs["design"])


def test_smoke_size_runs_the_real_suite_end_to_end(tmp_path):
    """The why-study's smoke size on the real suite (real pytest processes): every part completes
    with no invalid process, and every table is computed from the files written."""
    result = why.run_why_study(profile_size="smoke", output_dir=tmp_path, seed=1)
    assert set(result.run_dirs) == {"design", "floor"}
    for path in result.run_dirs.values():
        run = store.load_run(path)
        assert run.metadata["status"] == "complete"
        assert run.repetitions["valid"].all(), run.repetitions[~run.repetitions["valid"]]
    for name in ("effects", "waterfall", "floor_overall", "scaling_points", "scaling_slopes", "projection"):
        assert not result.tables[name].empty, name
    # the sweep's knobs really changed the work: 10 extra tables, 3 copies of every test
    points = result.tables["scaling_points"]
    assert {"extra_tables", "copies"} <= set(points["knob"])
    copies = points[(points["knob"] == "copies")].set_index(["architecture", "value"])["n_tests"]
    assert copies[("baseline", 3)] == 3 * copies[("baseline", 1)]
