"""quiz_study.scaling: sweep variants, fits that recover known slopes, the marked projection, and a
real smoke sweep of the suite under study (forked processes)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from quiz_architectures.errors import ArchitectureError
from quiz_study import scaling
from quiz_study import variants as study_variants
from suitebench.errors import BenchError
from suitebench.store import load_run

# Known per-test cost: seconds = base + slope * extra tables (+ rows); copies add tests.
TABLE_SLOPE_S = {"baseline": 0.004, "transactional": 0.0}
ROW_SLOPE_S = {"baseline": 2e-6, "transactional": 0.0}
BASE_S = {"baseline": 0.08, "transactional": 0.02}
PROCESS_START_S = 2.5


def synthetic_sweep(
    sweep: scaling.Sweep, *, repetitions: int = 3, n_tests: int = 5, noise_sd: float = 0.002, seed: int = 0
):
    """(timings, repetitions) of a sweep run whose costs follow the constants above."""
    rng = np.random.default_rng(seed)
    timing_rows, repetition_rows, repetition = [], [], 0
    for block in range(repetitions):
        for label in sweep.variants():
            point = scaling.classify(label)
            tables = point.value if point.knob == "extra_tables" else 0
            rows = point.value if point.knob == "reference_rows" else 0
            copies = point.value if point.knob == "copies" else 1
            arch = point.architecture
            total = 0.0
            for i in range(n_tests):
                for copy in range(copies):
                    seconds = BASE_S[arch] + 0.01 * i + TABLE_SLOPE_S[arch] * tables + ROW_SLOPE_S[arch] * rows
                    seconds += rng.normal(0, noise_sd)
                    total += seconds
                    name = f"t.py::test_{i}" + (f"[copy{copy}]" if copies > 1 else "")
                    timing_rows.append(
                        {
                            "run_id": "sweep",
                            "repetition": repetition,
                            "block": block,
                            "order": 0,
                            "variant": label,
                            "warmup": False,
                            "valid": True,
                            "test": name,
                            "category": "crud",
                            "outcome": "passed",
                            "phase": "total",
                            "seconds": seconds,
                        }
                    )
            session = 0.05 + (0.001 * tables if arch == "transactional" else 0.0)
            timing_rows.append(
                {
                    "run_id": "sweep",
                    "repetition": repetition,
                    "block": block,
                    "order": 0,
                    "variant": label,
                    "warmup": False,
                    "valid": True,
                    "test": "<fixture:database>",
                    "category": "session",
                    "outcome": "passed",
                    "phase": "setup",
                    "seconds": session,
                }
            )
            repetition_rows.append(
                {
                    "run_id": "sweep",
                    "repetition": repetition,
                    "block": block,
                    "order": 0,
                    "variant": label,
                    "warmup": False,
                    "valid": True,
                    "wall_s": PROCESS_START_S + total + session + rng.normal(0, 0.01),
                    "n_tests": n_tests * copies,
                }
            )
            repetition += 1
    return pd.DataFrame(timing_rows), pd.DataFrame(repetition_rows)


SWEEP = scaling.Sweep(extra_tables=(0, 25, 50, 100), reference_rows=(0, 1000, 10_000), copies=(1, 2, 4))


def test_sweep_variants_are_presets_then_one_knob_at_a_time():
    variants = scaling.Sweep(extra_tables=(0, 50), reference_rows=(0,), copies=(1, 3)).variants()
    assert variants == [
        "baseline",
        "transactional",
        "baseline+extra_tables=50",
        "transactional+extra_tables=50",
        "baseline+copies=3",
        "transactional+copies=3",
    ]
    for label in variants:
        point = scaling.classify(label)
        assert point is not None and point.architecture in ("baseline", "transactional")


def test_classify_rejects_other_architectures_and_two_knobs():
    assert scaling.classify("baseline+storage=memory") is None
    assert scaling.classify("transactional+copies=2,extra_tables=5") is None
    assert scaling.classify("transactional+copies=2") == scaling.SweepPoint("transactional", "copies", 2)


def test_sweep_values_are_range_checked():
    with pytest.raises(ArchitectureError, match="extra_tables"):
        scaling.Sweep(extra_tables=(0, 10_000))
    with pytest.raises(BenchError, match="unknown architecture"):
        scaling.Sweep(architectures=("nightly",))


@pytest.mark.parametrize(
    ("node", "base"),
    [
        ("t.py::t[copy0]", "t.py::t"),
        ("t.py::t[copy12-empty]", "t.py::t[empty]"),
        ("t.py::t[a-copy3]", "t.py::t[a]"),
        ("t.py::t[x]", "t.py::t[x]"),
    ],
)
def test_base_test_strips_the_copy_parametrization(node, base):
    assert scaling.base_test(node) == base


def test_schema_tables_counts_the_real_and_synthetic_tables():
    assert scaling.schema_tables(0) >= 12
    assert scaling.schema_tables(30) == scaling.schema_tables(0) + 30


def test_per_test_slopes_recover_linear_for_recreate_and_flat_for_rollback():
    timings, repetitions = synthetic_sweep(SWEEP)
    slopes = scaling.scaling_slopes(timings, repetitions).set_index(["architecture", "knob", "measure"])
    baseline = slopes.loc[("baseline", "extra_tables", "per_test_s")]
    assert baseline["ci_low_s_per_unit"] <= TABLE_SLOPE_S["baseline"] <= baseline["ci_high_s_per_unit"]
    assert baseline["grows"] and not baseline["flat"] and baseline["cov_type"] == "cluster"
    rollback = slopes.loc[("transactional", "extra_tables", "per_test_s")]
    assert rollback["flat"] and not rollback["grows"]
    rows = slopes.loc[("baseline", "reference_rows", "per_test_s")]
    assert rows["ci_low_s_per_unit"] <= ROW_SLOPE_S["baseline"] <= rows["ci_high_s_per_unit"]
    # Whole suite: n tests x the per-test slope; rollback pays its tables once, in the session fixture.
    suite = slopes.loc[("baseline", "extra_tables", "suite_s")]
    assert suite["ci_low_s_per_unit"] <= 5 * TABLE_SLOPE_S["baseline"] <= suite["ci_high_s_per_unit"]
    session = slopes.loc[("transactional", "extra_tables", "suite_s")]
    assert session["ci_low_s_per_unit"] <= 0.001 <= session["ci_high_s_per_unit"]
    copies = slopes.loc[("baseline", "copies", "per_test_s")]
    assert copies["flat"]
    assert slopes.loc[("baseline", "extra_tables", "per_test_s"), "unit"] == "table"


def test_projection_is_marked_and_extends_the_fitted_line():
    timings, repetitions = synthetic_sweep(SWEEP)
    projection = scaling.project_suite(timings, repetitions, n_tests=5000)
    assert (projection["kind"] == "PROJECTION").all()
    assert projection["assumptions"].str.contains("PROJECTION, not a measurement").all()
    suite = projection[(projection["measure"] == "suite_s")].set_index("architecture")
    wall = projection[(projection["measure"] == "wall_s")].set_index("architecture")
    mean_per_test = {arch: BASE_S[arch] + 0.01 * 2 for arch in BASE_S}  # tests 0..4: mean offset 0.02
    for arch in ("baseline", "transactional"):
        expected = 0.05 + 5000 * mean_per_test[arch]
        assert suite.loc[arch, "ci_low_s"] <= expected <= suite.loc[arch, "ci_high_s"]
        assert wall.loc[arch, "projected_s"] == pytest.approx(expected + PROCESS_START_S, rel=0.03)
        assert wall.loc[arch, "extrapolation_factor"] == pytest.approx(5000 / 20)
    speedup = wall.loc["baseline / transactional", "projected_s"]
    assert speedup == pytest.approx(wall.loc["baseline", "projected_s"] / wall.loc["transactional", "projected_s"])


def test_fit_line_needs_two_x_values_and_has_no_interval_without_residual_df():
    with pytest.raises(BenchError, match="two distinct"):
        scaling.fit_line(np.array([1.0, 1.0]), np.array([2.0, 3.0]))
    two_points = scaling.fit_line(np.array([1.0, 2.0]), np.array([2.0, 4.0]))
    assert two_points.slope_s_per_unit == pytest.approx(2.0)
    assert np.isnan(two_points.ci_low_s_per_unit)


def test_no_sweep_variant_is_an_error():
    timings, repetitions = synthetic_sweep(scaling.Sweep(extra_tables=(0,), reference_rows=(0,), copies=(1,)))
    with pytest.raises(BenchError, match="no sweep variant"):
        scaling.sweep_processes(timings, repetitions)


def test_smoke_sweep_runs_on_the_real_suite(tmp_path):
    """Three pytest processes on one real test (forked, a few seconds): transactional, +10 tables,
    +2 copies; the knobs really change the work."""
    from quiz_study.forkserver import ForkServer

    sweep = scaling.Sweep(extra_tables=(0, 10), reference_rows=(0,), copies=(1, 2), architectures=("transactional",))
    with ForkServer() as forks:
        result = study_variants.run_benchmark(
            variants=sweep.variants(),
            repetitions=1,
            warmup=0,
            selection={"keyword": "test_login_returns_bearer_token"},
            output_dir=tmp_path,
            run_id="smoke-sweep",
            progress=False,
            timeout_s=120,
            executor=forks,
        )
    assert result.invalid_measured_repetitions == 0, result
    run = load_run(result.run_dir)
    points = scaling.sweep_points_table(run.timings, run.repetitions)
    assert set(points["knob"]) == {"extra_tables", "copies"}
    copies = points[points["knob"] == "copies"].set_index("value")
    assert copies.loc[2, "n_tests"] == 2 * copies.loc[1, "n_tests"]
    slopes = scaling.scaling_slopes(run.timings, run.repetitions)
    assert set(slopes["measure"]) == {"per_test_s", "suite_s", "wall_s"}
    assert np.isfinite(slopes["slope_s_per_unit"]).all()
    projection = scaling.project_suite(run.timings, run.repetitions)
    assert (projection["kind"] == "PROJECTION").all()
