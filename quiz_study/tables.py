"""Every table of the validation report from one run's files.

``tables_for_run("data/runs/<run-id>")`` is the one call that regenerates every table the report
shows (see :data:`TABLE_DESCRIPTIONS`); the notebooks only display its output. Analysis settings
(the variants compared, the test set, the seed) come from the run's ``metadata.json`` and
its profile, so the same files always give the same tables.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from quiz_architectures.architectures import parse_spec
from quiz_study import paths, profiles, targets
from quiz_study.errors import USER_ERRORS
from suitebench import cli as engine_cli
from suitebench import stats, store
from suitebench.metadata import COMPARABLE_KEYS, metadata_differences

CONFIDENCE_LEVEL = 0.95
# The pair the report compares when a run measured both.
PRESET_PAIR: tuple[str, str] = ("baseline", "transactional")
FIXTURE_PREFIX = stats.FIXTURE_PREFIX
PHASES: tuple[str, ...] = ("setup", "call", "teardown")


TABLE_DESCRIPTIONS: dict[str, str] = {
    "run": "the run and the analysis settings (variants compared, seed, resamples, previous run)",
    "verdicts": "the seed's acceptance criteria: primary measure, measured value, confidence interval, target, "
    "verdict (met / not met / undetermined, with the repetitions that would settle it)",
    "seed_claims": "the figures the seed write-up (000_f87169cb2106bc20, Phase 2.4) reports, beside our "
    "measurement of the same quantity; the seed's figures are claims, not results of this study",
    "headline": "suite, per-test and API-test speedups with confidence intervals, each marked primary or secondary",
    "test_set": "the tests left out of every table, and why (not passed in every process of both variants)",
    "suite": "suite-level comparison (sum of test totals; process wall time): ratio of geometric means, Welch t on logs",
    "categories": "per-category comparison: ratio of geometric means, Welch t on logs, Benjamini-Hochberg",
    "tests": "per-test comparison: ratio of geometric means with Welch t interval on logs, Welch p with "
    "Benjamini-Hochberg, medians, Cliff's delta, Hodges-Lehmann",
    "describe": "descriptive statistics of per-test totals by architecture",
    "describe_categories": "descriptive statistics of per-test totals by architecture and category",
    "describe_suite": "descriptive statistics of the suite-level samples",
    "phases": "where a suite run's time goes: setup / call / teardown, session fixtures, outside tests",
    "phases_by_category": "setup / call / teardown per category and architecture",
    "counters": "database work (SQL, DDL, connections, commits, rollbacks, savepoints) per suite run and per test",
    "counters_by_category": "database work per test, by category and architecture",
    "repetitions": "planned, completed, valid and invalid repetitions per architecture; wall times",
    "architectures": "the switches of each architecture",
    "method": "how the figures were obtained: machine, versions, repetitions, interleaving, seeds",
    "reproducibility": "verdicts and speedup intervals against the previous run of the same profile",
    "reproducibility_tests": "per-test speedup intervals against the previous run of the same profile",
}

SWITCH_MEANINGS: dict[str, str] = {
    "storage": "where the database lives",
    "isolation": "how one test's data is removed before the next",
    "reference_data": "when roles, difficulty levels and time periods are seeded",
    "session_wiring": "whether JWT helpers and middlewares open their own sessions or use the test's",
    "password_hash": "argon2 cost (the same in both, so the comparison is about architecture)",
    "client": "HTTP test client",
    "extra_tables": "synthetic tables added to the schema (scale knob)",
    "reference_rows": "synthetic reference rows (scale knob)",
    "copies": "copies of every test (scale knob)",
}


# ---------------------------------------------------------------- settings


@dataclass(frozen=True)
class AnalysisSettings:
    """What the tables of one run are computed with; all derived from the run's files."""

    baseline: str
    candidate: str
    api_test: str
    seed: int
    n_resamples: int
    confidence_level: float
    profile: str | None
    test_set: stats.TestSet


def comparison_pair(variants: Sequence[str]) -> tuple[str, str]:
    """``baseline`` and ``transactional`` when measured, else the run's first two variants."""
    return engine_cli.comparison_pair(variants, preferred=PRESET_PAIR)


def analysis_settings(run: store.RunData) -> AnalysisSettings:
    """Settings from metadata: the run's profile gives seed and resamples, else the defaults."""
    profile_name = run.metadata.get("profile")
    profile = profiles.PROFILES.get(profile_name) if isinstance(profile_name, str) else None
    seed = run.metadata.get("seed")
    if seed is None:
        seed = profile.seed if profile else 0
    baseline, candidate = comparison_pair(run.variants)
    return AnalysisSettings(
        test_set=stats.comparable_tests(run.timings, variants=[baseline, candidate]),
        baseline=baseline,
        candidate=candidate,
        api_test=targets.api_test_in(run.timings["test"]),
        seed=int(seed),
        n_resamples=profile.n_resamples if profile else stats.DEFAULT_RESAMPLES,
        confidence_level=CONFIDENCE_LEVEL,
        profile=profile_name,
    )


def regeneration_call(run_dir: Path | str, table: str | None = None) -> str:
    """``quiz_study.tables.tables_for_run("data/runs/<id>")["<table>"]``."""
    call = f'quiz_study.tables.tables_for_run("{paths.display_path(run_dir)}")'
    return call + (f'["{table}"]' if table else "")


# ---------------------------------------------------------------- tables


def _measured_rows(timings: pd.DataFrame) -> pd.DataFrame:
    return timings[timings["valid"] & ~timings["warmup"]]


def _test_rows(timings: pd.DataFrame) -> pd.DataFrame:
    return timings[~timings["test"].astype(str).str.startswith(FIXTURE_PREFIX)]


def _verdict_table(run: store.RunData, settings: AnalysisSettings) -> pd.DataFrame:
    return targets.acceptance_verdicts(
        run.timings,
        run.repetitions,
        baseline=settings.baseline,
        candidate=settings.candidate,
        api_test=settings.api_test,
        suite_target_pct=targets.SUITE_TARGET_PCT,
        api_target_s=targets.API_TARGET_S,
        test_target_pct=targets.TEST_TARGET_PCT,
        tests=settings.test_set.tests,
        confidence_level=settings.confidence_level,
    )


def _comparisons(run: store.RunData, settings: AnalysisSettings) -> dict[str, pd.DataFrame]:
    # Every comparison on the one test set of the verdicts (tests/test_report.py checks that the
    # suite row and the suite verdict show the same interval).
    common = dict(
        baseline=settings.baseline,
        candidate=settings.candidate,
        tests=settings.test_set.tests,
        confidence_level=settings.confidence_level,
    )
    return {
        "suite": stats.compare_suite(run.timings, run.repetitions, **common),
        "categories": stats.compare_categories(run.timings, **common),
        "tests": stats.compare_tests(run.timings, **common),
    }


def _headline(
    verdicts: pd.DataFrame, comparisons: Mapping[str, pd.DataFrame], settings: AnalysisSettings
) -> pd.DataFrame:
    """Speedups with intervals; ``role`` says which measure decides a criterion (primary) and
    which only describes (secondary)."""
    rows = []
    suite = comparisons["suite"].set_index("unit")
    tests = comparisons["tests"].set_index("unit")

    def from_comparison(measure: str, role: str, row: pd.Series) -> dict[str, Any]:
        return {
            "measure": measure,
            "role": role,
            "baseline_s": row["geomean_base_s"],
            "candidate_s": row["geomean_cand_s"],
            "speedup": row["speedup"],
            "speedup_ci_low": row["speedup_ci_low"],
            "speedup_ci_high": row["speedup_ci_high"],
            "improvement_pct": row["improvement_pct"],
            "improvement_pct_ci_low": stats.improvement_from_speedup(row["speedup_ci_low"]),
            "improvement_pct_ci_high": stats.improvement_from_speedup(row["speedup_ci_high"]),
            "n_base": row["n_base"],
            "n_cand": row["n_cand"],
        }

    for unit, measure, role in (
        (stats.SUITE_TESTS_SUM, "suite: sum of test totals (geometric mean per process)", "primary: suite criterion"),
        (stats.SUITE_WALL, "suite: pytest process wall time (geometric mean per process)", "secondary"),
    ):
        if unit in suite.index:
            rows.append(from_comparison(measure, role, suite.loc[unit]))
    per_test = verdicts[verdicts["criterion"].str.startswith("median per-test improvement")]
    if len(per_test):
        row = per_test.iloc[0]
        sums = suite.loc[stats.SUITE_TESTS_SUM] if stats.SUITE_TESTS_SUM in suite.index else None
        rows.append(
            {
                "measure": "median over tests of the per-test improvement",
                "role": "primary: median per-test criterion",
                "baseline_s": math.nan,
                "candidate_s": math.nan,
                "speedup": stats.speedup_from_improvement(row["measured"]),
                "speedup_ci_low": stats.speedup_from_improvement(row["ci_low"]),
                "speedup_ci_high": stats.speedup_from_improvement(row["ci_high"]),
                "improvement_pct": row["measured"],
                "improvement_pct_ci_low": row["ci_low"],
                "improvement_pct_ci_high": row["ci_high"],
                "n_base": sums["n_base"] if sums is not None else math.nan,
                "n_cand": sums["n_cand"] if sums is not None else math.nan,
            }
        )
    if settings.api_test in tests.index:
        rows.append(
            from_comparison(
                f"API test ({settings.api_test.rsplit('::', 1)[-1]})",
                "secondary (the API criterion is on the candidate's time alone)",
                tests.loc[settings.api_test],
            )
        )
    return pd.DataFrame(rows)


def _seed_claims(run: store.RunData, verdicts: pd.DataFrame, settings: AnalysisSettings) -> pd.DataFrame:
    totals = stats.measured_totals(run.timings, variants=[settings.baseline, settings.candidate])
    api = totals[totals["test"] == settings.api_test]
    base = api.loc[api["variant"] == settings.baseline, "seconds"].to_numpy(float)
    cand = api.loc[api["variant"] == settings.candidate, "seconds"].to_numpy(float)
    level = settings.confidence_level
    ours: dict[str, tuple[float, float, float, str]] = {}
    # Geometric means with t intervals on logs, the estimator of the API verdict: a t interval for
    # the arithmetic mean of these right-skewed times covered 0.925 at 4 processes under load
    # (simulated like tests/test_inference_simulations.py); the two means differ by well under 1 % here.
    geo_base = stats.geometric_mean_interval(base, confidence_level=level)
    geo_cand = stats.geometric_mean_interval(cand, confidence_level=level)
    ours["api_baseline"] = (
        geo_base.geomean,
        geo_base.ci_low,
        geo_base.ci_high,
        f"geometric mean of the API test's total seconds under {settings.baseline} over {base.size} fresh "
        "processes (t interval on logs)",
    )
    ours["api_new"] = (
        geo_cand.geomean,
        geo_cand.ci_low,
        geo_cand.ci_high,
        f"geometric mean of the API test's total seconds under {settings.candidate} over {cand.size} fresh "
        "processes (t interval on logs)",
    )
    ratio = stats.welch_log_ratio(base, cand, confidence_level=level) if base.size and cand.size else None
    ours["api_improvement"] = (
        stats.improvement_from_speedup(ratio.ratio) if ratio else math.nan,
        stats.improvement_from_speedup(ratio.ci_low) if ratio else math.nan,
        stats.improvement_from_speedup(ratio.ci_high) if ratio else math.nan,
        "(1 - 1 / ratio of geometric means) x 100 of the API test (Welch t on logs); the seed divided means",
    )
    suite_row = verdicts[verdicts["criterion"].str.startswith("suite improvement")].iloc[0]
    ours["overall_improvement"] = (
        float(suite_row["measured"]),
        float(suite_row["ci_low"]),
        float(suite_row["ci_high"]),
        "suite improvement (sum of test totals per process, ratio of geometric means)",
    )
    rows = []
    for claim in targets.SEED_CLAIMS:
        value, low, high, how = ours[claim.key]
        rows.append(
            {
                "figure": claim.figure,
                "seed_claim": claim.claimed,
                "unit": claim.unit,
                "seed_says": claim.seed_says,
                "measured": value,
                "ci_low": low,
                "ci_high": high,
                "how_we_measured": how,
            }
        )
    return pd.DataFrame(rows)


def _phases(run: store.RunData, variants: Sequence[str], test_set: stats.TestSet) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Medians per process of each phase summed over the comparable tests; the left-out tests'
    time has a column of its own, so the parts still add up to the wall time."""
    measured = _measured_rows(run.timings)
    measured = measured[measured["variant"].isin(list(variants))]
    every_test = _test_rows(measured)
    kept = set(test_set.tests)
    tests = every_test[every_test["test"].isin(kept)]
    left_out = (
        every_test[~every_test["test"].isin(kept) & (every_test["phase"] == "total")]
        .groupby(["variant", "repetition"], observed=True)["seconds"]
        .sum()
    )
    per_rep = (
        tests[tests["phase"].isin([*PHASES, "total"])]
        .groupby(["variant", "repetition", "phase"], observed=True)["seconds"]
        .sum()
        .unstack("phase")
    )
    fixtures = measured[measured["test"].astype(str).str.startswith(FIXTURE_PREFIX)]
    fixture_sums = fixtures.groupby(["variant", "repetition"], observed=True)["seconds"].sum()
    walls = stats.measured_repetitions(run.repetitions, variants=variants).set_index(["variant", "repetition"])[
        "wall_s"
    ]
    rows = []
    for variant in variants:
        if variant not in per_rep.index.get_level_values("variant"):
            continue
        mine = per_rep.loc[variant]
        reps = mine.index
        fixture = fixture_sums.reindex(pd.MultiIndex.from_product([[variant], reps])).fillna(0.0).to_numpy(float)
        wall = walls.reindex(pd.MultiIndex.from_product([[variant], reps])).to_numpy(float)
        total = mine["total"].to_numpy(float) if "total" in mine else np.full(len(reps), math.nan)
        excluded = left_out.reindex(pd.MultiIndex.from_product([[variant], reps])).fillna(0.0).to_numpy(float)
        row = {"variant": variant, "n_repetitions": len(reps)}
        for phase in PHASES:
            row[f"{phase}_s"] = float(np.nanmedian(mine[phase])) if phase in mine else math.nan
        row["tests_total_s"] = float(np.nanmedian(total))
        row["left_out_tests_s"] = float(np.nanmedian(excluded))
        row["session_fixtures_s"] = float(np.nanmedian(fixture))
        row["outside_tests_s"] = float(np.nanmedian(wall - total - excluded - fixture))
        row["wall_s"] = float(np.nanmedian(wall))
        rows.append(row)
    phases = pd.DataFrame(rows)
    by_category = (
        tests[tests["phase"].isin(PHASES)]
        .groupby(["category", "variant", "repetition", "phase"], observed=True)["seconds"]
        .sum()
        .groupby(["category", "variant", "phase"], observed=True)
        .median()
        .unstack("phase")
        .reindex(columns=list(PHASES))
        .add_suffix("_s")
        .reset_index()
    )
    by_category.columns.name = None
    return phases, by_category


def _counters(
    run: store.RunData, variants: Sequence[str], test_set: stats.TestSet
) -> tuple[pd.DataFrame, pd.DataFrame]:
    measured = _measured_rows(run.timings)
    measured = measured[measured["variant"].isin(list(variants))]
    tests = _test_rows(measured)
    tests = tests[tests["test"].isin(set(test_set.tests))]
    tests = tests[tests["phase"] == "total"]
    fixtures = measured[measured["test"].astype(str).str.startswith(FIXTURE_PREFIX)]
    counters = list(stats.COUNTER_COLUMNS)
    everything = pd.concat([tests, fixtures])
    per_run = everything.groupby(["variant", "repetition"], observed=True)[counters].sum().astype(float)
    per_run = per_run.groupby("variant", observed=True).median()
    n_tests = (
        tests.groupby(["variant", "repetition"], observed=True)["test"]
        .nunique()
        .groupby("variant", observed=True)
        .median()
    )
    per_test = tests.groupby(["variant", "repetition"], observed=True)[counters].sum().astype(float)
    per_test = per_test.groupby("variant", observed=True).median().div(n_tests, axis=0)
    present = [v for v in variants if v in per_run.index]
    table = pd.DataFrame({"counter": counters})
    for variant in present:
        table[f"{variant}_per_run"] = per_run.loc[variant, counters].to_numpy(float)
    for variant in present:
        table[f"{variant}_per_test"] = per_test.loc[variant, counters].to_numpy(float)
    by_category = tests.copy()
    for column in counters:
        by_category[column] = by_category[column].astype(float)
    by_category = by_category.groupby(["category", "variant"], observed=True)[counters].mean().reset_index()
    return table, by_category


REPETITION_LISTING_COLUMNS: tuple[str, ...] = (
    *(column for column in store.RUN_COLUMNS if column != "run_id"),  # one run: its id on every row says nothing
    "wall_s",
    "n_tests",
    "n_passed",
    "n_failed",
    "invalid_reason",
)


def repetitions_listing(run: store.RunData) -> pd.DataFrame:
    """Every completed repetition in execution order (the columns of repetitions.csv that matter)."""
    return run.repetitions.sort_values("repetition")[list(REPETITION_LISTING_COLUMNS)].reset_index(drop=True)


def repetition_summary(run: store.RunData) -> pd.DataFrame:
    """Per variant: planned, completed, valid and invalid repetitions, wall times (table ``repetitions``)."""
    schedule = pd.DataFrame(run.metadata.get("schedule", []))
    rows = []
    for variant in run.variants:
        reps = run.repetitions[run.repetitions["variant"] == variant]
        planned = schedule[schedule["variant"] == variant] if not schedule.empty else schedule
        measured = reps[~reps["warmup"] & reps["valid"]]
        reasons = sorted(set(reps.loc[~reps["valid"], "invalid_reason"].astype(str)) - {""})
        rows.append(
            {
                "variant": variant,
                "planned": len(planned),
                "planned_warmup": int(planned["warmup"].sum()) if len(planned) else 0,
                "completed": len(reps),
                "measured_valid": len(measured),
                "invalid": int((~reps["valid"]).sum()),
                "tests_per_run": int(reps["n_tests"].median()) if len(reps) else 0,
                "median_wall_s": float(measured["wall_s"].median()) if len(measured) else math.nan,
                "min_wall_s": float(measured["wall_s"].min()) if len(measured) else math.nan,
                "max_wall_s": float(measured["wall_s"].max()) if len(measured) else math.nan,
                "invalid_reasons": "; ".join(reasons),
            }
        )
    return pd.DataFrame(rows)


def _architectures(run: store.RunData) -> pd.DataFrame:
    switches = {}
    for variant in run.metadata.get("variants", []):
        label = str(variant["label"])
        architecture = label.split("@", 1)[0]
        try:
            switches[label] = asdict(parse_spec(architecture))
        except USER_ERRORS:
            switches[label] = {}
    names = list(SWITCH_MEANINGS)
    table = pd.DataFrame({"switch": names, "meaning": [SWITCH_MEANINGS[n] for n in names]})
    for label, values in switches.items():
        table[label] = [str(values.get(name, "")) for name in names]
    return table


def _method(run: store.RunData, settings: AnalysisSettings, repetitions: pd.DataFrame) -> pd.DataFrame:
    meta = run.metadata
    env = meta.get("environment") or {}
    arguments = meta.get("arguments") or {}
    cpu = env.get("cpu") or {}
    python = env.get("python") or {}
    platform_info = env.get("platform") or {}
    memory = env.get("memory") or {}
    git = env.get("git") or {}
    packages = env.get("packages") or {}
    selection = arguments.get("selection") or {}
    measured = ", ".join(f"{r.variant}: {r.measured_valid}" for r in repetitions.itertuples())
    schedule = arguments.get("schedule") or meta.get("schedule_kind")
    items = [
        ("run id", meta.get("run_id")),
        ("profile", settings.profile or "(none)"),
        ("started / finished (UTC)", f"{meta.get('started_at')} / {meta.get('finished_at')}"),
        ("status", meta.get("status")),
        (
            "machine",
            f"{cpu.get('model')}, {cpu.get('logical_cores')} logical cores "
            f"({cpu.get('usable_cores')} usable), governor {cpu.get('frequency_governor')}",
        ),
        (
            "memory",
            f"{(memory.get('total_bytes') or 0) / 2**30:.1f} GiB total" if memory.get("total_bytes") else "unknown",
        ),
        ("operating system", platform_info.get("platform")),
        ("python", f"{python.get('implementation')} {python.get('version')}"),
        ("packages", ", ".join(f"{k} {v}" for k, v in packages.items() if v)),
        ("source", f"git {str(git.get('commit'))[:12]}" + (" (uncommitted changes)" if git.get("dirty") else "")),
        ("load average at start / end", f"{env.get('load_average')} / {meta.get('load_average_at_end')}"),
        ("architectures", ", ".join(run.variants)),
        ("tests selected", ", ".join(f"{k} {v!r}" for k, v in selection.items()) or "the whole suite"),
        (
            "repetitions",
            f"{arguments.get('repetitions')} measured + {arguments.get('warmup')} warm-up blocks; "
            f"each block runs every architecture once in a fresh pytest process",
        ),
        ("valid measured repetitions", measured),
        (
            "interleaving",
            f"{schedule}: "
            + (
                "the same order in every block"
                if schedule == "abab"
                else f"order shuffled per block with seed {meta.get('seed')}"
            ),
        ),
        ("child environment", ", ".join(f"{k}={v}" for k, v in (meta.get("child_environment") or {}).items())),
        ("tests compared", settings.test_set.describe()),
        (
            "statistics",
            f"one pytest process = one observation; speedups are ratios of geometric means over processes "
            f"with {settings.confidence_level:.0%} Welch t intervals on log seconds (suite, categories, tests); "
            "the API test's geometric mean with a one-sample t interval on logs; the median per-test improvement "
            "(Harrell-Davis median) with a delete-one-process jackknife t interval; per-test and per-category Welch p-values with "
            "Benjamini-Hochberg; Cliff's delta; warm-ups and invalid repetitions excluded",
        ),
        ("API test", settings.api_test),
    ]
    return pd.DataFrame(items, columns=["item", "value"]).astype({"value": str})


def _previous_run(run: store.RunData, runs_dir: Path, profile: str | None) -> Path | None:
    if profile is None:
        return None
    started = str(run.metadata.get("started_at") or "")
    earlier = [
        s
        for s in store.list_runs(runs_dir, profile=profile)
        if s.status == "complete" and s.run_id != run.run_id and s.started_at < started
    ]
    return earlier[-1].path if earlier else None


def _overlap(a_low: float, a_high: float, b_low: float, b_high: float) -> object:
    if any(math.isnan(x) for x in (a_low, a_high, b_low, b_high)):
        return None
    return bool(a_low <= b_high and b_low <= a_high)


def _reproducibility(
    current: Mapping[str, pd.DataFrame], previous: Mapping[str, pd.DataFrame], previous_id: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    rows = []
    prev_verdicts = previous["verdicts"].set_index("criterion")
    for row in current["verdicts"].itertuples(index=False):
        if row.criterion not in prev_verdicts.index:
            continue
        p = prev_verdicts.loc[row.criterion]
        rows.append(
            {
                "item": row.criterion,
                "kind": "verdict",
                "current": row.measured,
                "current_ci_low": row.ci_low,
                "current_ci_high": row.ci_high,
                "current_verdict": row.verdict,
                "previous": p["measured"],
                "previous_ci_low": p["ci_low"],
                "previous_ci_high": p["ci_high"],
                "previous_verdict": p["verdict"],
                "verdicts_agree": row.verdict == p["verdict"],
                "cis_overlap": _overlap(row.ci_low, row.ci_high, p["ci_low"], p["ci_high"]),
                "previous_run_id": previous_id,
            }
        )
    prev_suite = previous["suite"].set_index("unit")
    for row in current["suite"].itertuples(index=False):
        if row.unit not in prev_suite.index:
            continue
        p = prev_suite.loc[row.unit]
        rows.append(
            {
                "item": f"speedup ({row.unit})",
                "kind": "speedup",
                "current": row.speedup,
                "current_ci_low": row.speedup_ci_low,
                "current_ci_high": row.speedup_ci_high,
                "current_verdict": None,
                "previous": p["speedup"],
                "previous_ci_low": p["speedup_ci_low"],
                "previous_ci_high": p["speedup_ci_high"],
                "previous_verdict": None,
                "verdicts_agree": None,
                "cis_overlap": _overlap(
                    row.speedup_ci_low, row.speedup_ci_high, p["speedup_ci_low"], p["speedup_ci_high"]
                ),
                "previous_run_id": previous_id,
            }
        )
    summary = pd.DataFrame(rows)
    cur_tests = current["tests"].set_index("unit")
    prev_tests = previous["tests"].set_index("unit")
    common = sorted(set(cur_tests.index) & set(prev_tests.index))
    tests = pd.DataFrame(
        {
            "test": common,
            "speedup": cur_tests.loc[common, "speedup"].to_numpy(float),
            "speedup_ci_low": cur_tests.loc[common, "speedup_ci_low"].to_numpy(float),
            "speedup_ci_high": cur_tests.loc[common, "speedup_ci_high"].to_numpy(float),
            "previous_speedup": prev_tests.loc[common, "speedup"].to_numpy(float),
            "previous_speedup_ci_low": prev_tests.loc[common, "speedup_ci_low"].to_numpy(float),
            "previous_speedup_ci_high": prev_tests.loc[common, "speedup_ci_high"].to_numpy(float),
        }
    )
    tests["cis_overlap"] = [
        _overlap(a, b, c, d)
        for a, b, c, d in zip(
            tests["speedup_ci_low"],
            tests["speedup_ci_high"],
            tests["previous_speedup_ci_low"],
            tests["previous_speedup_ci_high"],
        )
    ]
    return summary, tests


REPRODUCIBILITY_COLUMNS = (
    "item",
    "kind",
    "current",
    "current_ci_low",
    "current_ci_high",
    "current_verdict",
    "previous",
    "previous_ci_low",
    "previous_ci_high",
    "previous_verdict",
    "verdicts_agree",
    "cis_overlap",
    "previous_run_id",
)


def _core_tables(run: store.RunData, settings: AnalysisSettings) -> dict[str, pd.DataFrame]:
    verdicts = _verdict_table(run, settings)
    return {"verdicts": verdicts, **_comparisons(run, settings)}


def tables_for_run(run_dir: Path | str, *, runs_dir: Path | str | None = None) -> dict[str, pd.DataFrame]:
    """Every table of the report, regenerated from one run's files.

    Parameters
    ----------
    run_dir : path
        A run directory (``data/runs/<run-id>``) written by :func:`suitebench.runner.run_benchmark`.
    runs_dir : path, optional
        Where to look for the previous run of the same profile (default: the run's parent).

    Returns
    -------
    dict of str to DataFrame
        Keyed as :data:`TABLE_DESCRIPTIONS`. The comparison compares ``baseline`` with
        ``transactional`` (or the run's first two variants) on the tests that passed in every
        process of both; every interval is analytic, so repeated calls give identical tables. ``reproducibility`` and
        ``reproducibility_tests`` are empty when there is no earlier complete run of the
        same profile in ``runs_dir``.

    Raises
    ------
    StudyError
        Not a run directory, no completed repetitions, fewer than two variants, or the API test
        not measured.
    """
    run_dir = Path(run_dir)
    run = store.load_run(run_dir)
    settings = analysis_settings(run)
    variants = [settings.baseline, settings.candidate]
    core = _core_tables(run, settings)
    compared = stats.restrict_to_tests(run.timings, settings.test_set.tests)
    totals = stats.measured_totals(compared, variants=variants)
    tables: dict[str, pd.DataFrame] = {}
    repetitions = repetition_summary(run)
    runs_dir = Path(runs_dir) if runs_dir is not None else run_dir.parent
    previous_dir = _previous_run(run, runs_dir, settings.profile)
    previous_id = ""
    environment_note = ""
    if previous_dir is not None:
        previous_run = store.load_run(previous_dir)
        previous_id = previous_run.run_id
        differences = metadata_differences(
            previous_run.metadata.get("environment") or {}, run.metadata.get("environment") or {}, keys=COMPARABLE_KEYS
        )
        environment_note = "; ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in differences.items())
        previous = _core_tables(previous_run, analysis_settings(previous_run))
        reproducibility, reproducibility_tests = _reproducibility(core, previous, previous_id)
    else:
        reproducibility = pd.DataFrame(columns=list(REPRODUCIBILITY_COLUMNS))
        reproducibility_tests = pd.DataFrame(
            columns=[
                "test",
                "speedup",
                "speedup_ci_low",
                "speedup_ci_high",
                "previous_speedup",
                "previous_speedup_ci_low",
                "previous_speedup_ci_high",
                "cis_overlap",
            ]
        )
    tables["run"] = pd.DataFrame(
        [
            {
                "run_id": run.run_id,
                "run_dir": paths.display_path(run_dir),
                "profile": settings.profile,
                "status": run.metadata.get("status"),
                "started_at": run.metadata.get("started_at"),
                "finished_at": run.metadata.get("finished_at"),
                "baseline": settings.baseline,
                "candidate": settings.candidate,
                "api_test": settings.api_test,
                "seed": settings.seed,
                "n_resamples": settings.n_resamples,
                "confidence_level": settings.confidence_level,
                "runs_dir": paths.display_path(runs_dir),
                "previous_run_id": previous_id,
                "previous_environment_differences": environment_note,
                "n_tests_compared": len(settings.test_set.tests),
                "n_tests_left_out": len(settings.test_set.excluded),
            }
        ]
    )
    tables["verdicts"] = core["verdicts"]
    tables["seed_claims"] = _seed_claims(run, core["verdicts"], settings)
    tables["headline"] = _headline(core["verdicts"], core, settings)
    tables["test_set"] = pd.DataFrame(
        {"test": list(settings.test_set.excluded), "why_left_out": list(settings.test_set.excluded.values())},
        columns=["test", "why_left_out"],
    )
    tables["suite"] = core["suite"]
    tables["categories"] = core["categories"]
    tables["tests"] = core["tests"]
    tables["describe"] = stats.describe(totals, by="variant")
    tables["describe_categories"] = stats.describe(totals, by=["category", "variant"])
    tables["describe_suite"] = stats.describe(
        stats.suite_samples(run.timings, run.repetitions, variants=variants, tests=settings.test_set.tests),
        by=["measure", "variant"],
    )
    tables["phases"], tables["phases_by_category"] = _phases(run, variants, settings.test_set)
    tables["counters"], tables["counters_by_category"] = _counters(run, variants, settings.test_set)
    tables["repetitions"] = repetitions
    tables["architectures"] = _architectures(run)
    tables["method"] = _method(run, settings, repetitions)
    tables["reproducibility"] = reproducibility
    tables["reproducibility_tests"] = reproducibility_tests
    return {name: tables[name] for name in TABLE_DESCRIPTIONS}


# ---------------------------------------------------------------- trend across runs


def trend_table(runs_dir: Path | str, *, profile: str | None = None) -> pd.DataFrame:
    """Suite time of every complete run (of ``profile``) in ``runs_dir``, per variant.

    Returns
    -------
    DataFrame
        ``run_id, started_at, profile, variant, n, median_s, p25_s, p75_s, median_wall_s``:
        per-repetition sums of test totals (valid, not warm-up) and process wall times.
        Runs with another test selection measure other tests: keep to one profile.
    """
    rows = []
    for summary in store.list_runs(runs_dir, profile=profile):
        if summary.status != "complete":
            continue
        try:
            run = store.load_run(summary.path)
        except USER_ERRORS:
            continue
        sums = stats.repetition_sums(stats.measured_totals(run.timings))
        walls = stats.measured_repetitions(run.repetitions)
        for variant, group in sums.groupby("variant", sort=True):
            seconds = group["seconds"].to_numpy(float)
            wall = walls.loc[walls["variant"] == variant, "wall_s"].to_numpy(float)
            rows.append(
                {
                    "run_id": run.run_id,
                    "started_at": summary.started_at,
                    "profile": summary.profile,
                    "variant": variant,
                    "n": seconds.size,
                    "median_s": float(np.median(seconds)),
                    "p25_s": float(np.percentile(seconds, 25)),
                    "p75_s": float(np.percentile(seconds, 75)),
                    "median_wall_s": float(np.median(wall)) if wall.size else math.nan,
                }
            )
    return pd.DataFrame(
        rows, columns=["run_id", "started_at", "profile", "variant", "n", "median_s", "p25_s", "p75_s", "median_wall_s"]
    )
