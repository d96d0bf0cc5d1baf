"""The validation report: every table of it from one run's files, their display, and the HTML export.

``tables_for_run("data/runs/<run-id>")`` is the one call that regenerates every table the report
shows (see :data:`TABLE_DESCRIPTIONS`); the notebooks only display its output. Analysis settings
(the variants compared, bootstrap seed and resamples) come from the run's ``metadata.json`` and
its profile, so the same files always give the same tables. Display helpers (``*_html``,
``format_*``) turn the tables into text and never compute. :func:`export_html` renders an
executed notebook as one self-contained HTML page: no code, no prompts, figures as data URIs,
nothing fetched from the network.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sps

from harness import dataset, paths, profiles, stats
from quiz_architectures.architectures import parse_spec
from harness.errors import USER_ERRORS, HarnessError
from harness.metadata import COMPARABLE_KEYS, metadata_differences

API_TEST = "suite/test_integration.py::test_login_then_protected_endpoint"
SUITE_TARGET_PCT = 70.0
API_TARGET_S = 0.5
TEST_TARGET_PCT = 70.0
CONFIDENCE_LEVEL = 0.95
FIXTURE_PREFIX = stats.FIXTURE_PREFIX
PHASES: tuple[str, ...] = ("setup", "call", "teardown")


# ---------------------------------------------------------------- the seed's claims


@dataclass(frozen=True)
class SeedClaim:
    """A figure the seed write-up reports. Shown only beside our measurement, never as a result."""

    key: str
    figure: str
    claimed: float
    unit: str
    seed_says: str


SEED_CLAIMS: tuple[SeedClaim, ...] = (
    SeedClaim(
        "api_baseline", "API test time, old architecture", 2.19, "s",
        "\"2.19s baseline\" (API endpoint mean before the change)",
    ),
    SeedClaim(
        "api_new", "API test time, new architecture", 0.47, "s",
        "\"API Endpoints: 0.47s mean\" (0.4755 s; 25 iterations in one process)",
    ),
    SeedClaim(
        "api_improvement", "API test improvement", 78.3, "%",
        "\"78.3% from 2.19s baseline\" (from the two means)",
    ),
    SeedClaim(
        "overall_improvement", "overall improvement (Phase 2 target 70-80 %)", 78.3, "%",
        "\"Phase 2 Target: 70-80% improvement ACHIEVED (78.3%)\"",
    ),
)

TABLE_DESCRIPTIONS: dict[str, str] = {
    "run": "the run and the analysis settings (variants compared, seed, resamples, previous run)",
    "verdicts": "the seed's acceptance criteria: measured value, confidence interval, target, verdict",
    "seed_claims": "the figures the seed write-up (000_f87169cb2106bc20, Phase 2.4) reports, beside our "
    "measurement of the same quantity; the seed's figures are claims, not results of this study",
    "headline": "suite, per-test and API-test speedups with confidence intervals",
    "suite": "suite-level comparison (sum of test totals; process wall time)",
    "categories": "per-category comparison",
    "tests": "per-test comparison: medians, speedup with CI, Mann-Whitney (Holm, BH), Cliff's delta, Hodges-Lehmann",
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


def comparison_pair(variants: Sequence[str]) -> tuple[str, str]:
    """``baseline`` and ``transactional`` when measured, else the run's first two variants."""
    baseline = "baseline" if "baseline" in variants else (variants[0] if variants else None)
    others = [v for v in variants if v != baseline]
    candidate = "transactional" if "transactional" in others else (others[0] if others else None)
    if baseline is None or candidate is None:
        raise HarnessError(f"the report compares two variants; the run has: {', '.join(variants) or 'none'}")
    return baseline, candidate


def analysis_settings(run: dataset.RunData) -> AnalysisSettings:
    """Settings from metadata: the run's profile gives seed and resamples, else the defaults."""
    profile_name = run.metadata.get("profile")
    profile = profiles.PROFILES.get(profile_name) if isinstance(profile_name, str) else None
    seed = run.metadata.get("seed")
    if seed is None:
        seed = profile.seed if profile else 0
    baseline, candidate = comparison_pair(run.variants)
    return AnalysisSettings(
        baseline=baseline,
        candidate=candidate,
        api_test=API_TEST,
        seed=int(seed),
        n_resamples=profile.n_resamples if profile else stats.DEFAULT_RESAMPLES,
        confidence_level=CONFIDENCE_LEVEL,
        profile=profile_name,
    )


def display_path(path: Path | str) -> str:
    """A path as the reader should type it: relative to the project root when inside it."""
    path = Path(path).absolute()
    try:
        return path.relative_to(paths.ROOT).as_posix()
    except ValueError:
        return path.as_posix()


def regeneration_call(run_dir: Path | str, table: str | None = None) -> str:
    """``harness.report.tables_for_run("data/runs/<id>")["<table>"]``."""
    call = f'harness.report.tables_for_run("{display_path(run_dir)}")'
    return call + (f'["{table}"]' if table else "")


# ---------------------------------------------------------------- tables


def _speedup_to_improvement(speedup: float) -> float:
    return (1.0 - 1.0 / speedup) * 100.0 if speedup and math.isfinite(speedup) else math.nan


def _improvement_to_speedup(improvement_pct: float) -> float:
    return 100.0 / (100.0 - improvement_pct) if math.isfinite(improvement_pct) and improvement_pct < 100 else math.nan


def _measured_rows(timings: pd.DataFrame) -> pd.DataFrame:
    return timings[timings["valid"] & ~timings["warmup"]]


def _test_rows(timings: pd.DataFrame) -> pd.DataFrame:
    return timings[~timings["test"].astype(str).str.startswith(FIXTURE_PREFIX)]


def _bootstrap_interval(data: tuple[np.ndarray, ...], statistic, *, seed: Any, settings: AnalysisSettings) -> tuple[float, float]:
    if any(len(d) < 2 for d in data) or all(np.ptp(d) == 0 for d in data):
        return math.nan, math.nan
    result = sps.bootstrap(
        data, statistic, n_resamples=settings.n_resamples, confidence_level=settings.confidence_level,
        method="percentile", vectorized=True, paired=False, rng=np.random.default_rng(seed),
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def _verdict_table(run: dataset.RunData, settings: AnalysisSettings) -> pd.DataFrame:
    return stats.acceptance_verdicts(
        run.timings, run.repetitions, baseline=settings.baseline, candidate=settings.candidate,
        api_test=settings.api_test, seed=settings.seed, suite_target_pct=SUITE_TARGET_PCT,
        api_target_s=API_TARGET_S, test_target_pct=TEST_TARGET_PCT, n_resamples=settings.n_resamples,
        confidence_level=settings.confidence_level,
    )


def _suite_seed(seed: int) -> np.random.SeedSequence:
    """The stream :func:`harness.stats.acceptance_verdicts` gives its suite criterion (the first
    of three children of ``SeedSequence(seed)``, used by a ``compare_suite`` without
    repetitions), so the suite table and the verdict show the same interval
    (tests/test_report.py checks that they do)."""
    return np.random.SeedSequence(seed).spawn(3)[0]


def _comparisons(run: dataset.RunData, settings: AnalysisSettings) -> dict[str, pd.DataFrame]:
    common = dict(
        baseline=settings.baseline, candidate=settings.candidate,
        n_resamples=settings.n_resamples, confidence_level=settings.confidence_level,
    )
    # The sum-of-tests row exactly as acceptance_verdicts computes it (without the repetitions,
    # so with the same child stream), the wall-time row from the call that has them.
    tests_sum = stats.compare_suite(run.timings, None, seed=_suite_seed(settings.seed), **common)
    with_wall = stats.compare_suite(run.timings, run.repetitions, seed=_suite_seed(settings.seed), **common)
    suite = pd.concat([tests_sum, with_wall[with_wall["unit"] != stats.SUITE_TESTS_SUM]], ignore_index=True)
    suite.attrs.update(with_wall.attrs)
    return {
        "suite": suite,
        "categories": stats.compare_categories(run.timings, seed=settings.seed, **common),
        "tests": stats.compare_tests(run.timings, seed=settings.seed, **common),
    }


def _headline(verdicts: pd.DataFrame, comparisons: Mapping[str, pd.DataFrame], settings: AnalysisSettings) -> pd.DataFrame:
    rows = []
    suite = comparisons["suite"].set_index("unit")
    tests = comparisons["tests"].set_index("unit")

    def from_comparison(measure: str, row: pd.Series) -> dict[str, Any]:
        return {
            "measure": measure,
            "baseline_s": row["median_base_s"],
            "candidate_s": row["median_cand_s"],
            "speedup": row["speedup"],
            "speedup_ci_low": row["speedup_ci_low"],
            "speedup_ci_high": row["speedup_ci_high"],
            "improvement_pct": row["improvement_pct"],
            "improvement_pct_ci_low": _speedup_to_improvement(row["speedup_ci_low"]),
            "improvement_pct_ci_high": _speedup_to_improvement(row["speedup_ci_high"]),
            "n_base": row["n_base"],
            "n_cand": row["n_cand"],
        }

    for unit, measure in ((stats.SUITE_TESTS_SUM, "suite: sum of test totals (median per run)"),
                          (stats.SUITE_WALL, "suite: pytest process wall time (median per run)")):
        if unit in suite.index:
            rows.append(from_comparison(measure, suite.loc[unit]))
    per_test = verdicts[verdicts["criterion"].str.startswith("median per-test improvement")]
    if len(per_test):
        row = per_test.iloc[0]
        rows.append({
            "measure": "median over tests of the per-test improvement",
            "baseline_s": math.nan, "candidate_s": math.nan,
            "speedup": _improvement_to_speedup(row["measured"]),
            "speedup_ci_low": _improvement_to_speedup(row["ci_low"]),
            "speedup_ci_high": _improvement_to_speedup(row["ci_high"]),
            "improvement_pct": row["measured"],
            "improvement_pct_ci_low": row["ci_low"],
            "improvement_pct_ci_high": row["ci_high"],
            "n_base": suite.loc[stats.SUITE_TESTS_SUM, "n_base"] if stats.SUITE_TESTS_SUM in suite.index else math.nan,
            "n_cand": suite.loc[stats.SUITE_TESTS_SUM, "n_cand"] if stats.SUITE_TESTS_SUM in suite.index else math.nan,
        })
    if settings.api_test in tests.index:
        rows.append(from_comparison(f"API test ({settings.api_test.rsplit('::', 1)[-1]})", tests.loc[settings.api_test]))
    return pd.DataFrame(rows)


def _seed_claims(run: dataset.RunData, verdicts: pd.DataFrame, settings: AnalysisSettings) -> pd.DataFrame:
    totals = stats.measured_totals(run.timings, variants=[settings.baseline, settings.candidate])
    api = totals[totals["test"] == settings.api_test]
    base = api.loc[api["variant"] == settings.baseline, "seconds"].to_numpy(float)
    cand = api.loc[api["variant"] == settings.candidate, "seconds"].to_numpy(float)
    seeds = np.random.SeedSequence([settings.seed, 7]).spawn(3)
    mean = lambda x, axis=-1: np.mean(x, axis=axis)  # noqa: E731
    ratio = lambda b, c, axis=-1: np.mean(b, axis=axis) / np.mean(c, axis=axis)  # noqa: E731
    ours: dict[str, tuple[float, float, float, str]] = {}
    low, high = _bootstrap_interval((base,), mean, seed=seeds[0], settings=settings)
    ours["api_baseline"] = (float(np.mean(base)) if base.size else math.nan, low, high,
                            f"mean total seconds of the API test under {settings.baseline} over {base.size} fresh processes")
    low, high = _bootstrap_interval((cand,), mean, seed=seeds[1], settings=settings)
    ours["api_new"] = (float(np.mean(cand)) if cand.size else math.nan, low, high,
                       f"mean total seconds of the API test under {settings.candidate} over {cand.size} fresh processes")
    improvement = (1 - np.mean(cand) / np.mean(base)) * 100 if base.size and cand.size else math.nan
    low, high = _bootstrap_interval((base, cand), ratio, seed=seeds[2], settings=settings)
    ours["api_improvement"] = (float(improvement), _speedup_to_improvement(low), _speedup_to_improvement(high),
                               "(1 - mean new / mean old) x 100 of the API test, as the seed computes it")
    suite_row = verdicts[verdicts["criterion"].str.startswith("suite improvement")].iloc[0]
    ours["overall_improvement"] = (float(suite_row["measured"]), float(suite_row["ci_low"]), float(suite_row["ci_high"]),
                                   "suite improvement (sum of test totals, medians per run)")
    rows = []
    for claim in SEED_CLAIMS:
        value, low, high, how = ours[claim.key]
        rows.append({
            "figure": claim.figure, "seed_claim": claim.claimed, "unit": claim.unit, "seed_says": claim.seed_says,
            "measured": value, "ci_low": low, "ci_high": high, "how_we_measured": how,
        })
    return pd.DataFrame(rows)


def _phases(run: dataset.RunData, variants: Sequence[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    measured = _measured_rows(run.timings)
    measured = measured[measured["variant"].isin(list(variants))]
    tests = _test_rows(measured)
    per_rep = (
        tests[tests["phase"].isin([*PHASES, "total"])]
        .groupby(["variant", "repetition", "phase"], observed=True)["seconds"].sum()
        .unstack("phase")
    )
    fixtures = measured[measured["test"].astype(str).str.startswith(FIXTURE_PREFIX)]
    fixture_sums = fixtures.groupby(["variant", "repetition"], observed=True)["seconds"].sum()
    walls = stats.measured_repetitions(run.repetitions, variants=variants).set_index(["variant", "repetition"])["wall_s"]
    rows = []
    for variant in variants:
        if variant not in per_rep.index.get_level_values("variant"):
            continue
        mine = per_rep.loc[variant]
        reps = mine.index
        fixture = fixture_sums.reindex(pd.MultiIndex.from_product([[variant], reps])).fillna(0.0).to_numpy(float)
        wall = walls.reindex(pd.MultiIndex.from_product([[variant], reps])).to_numpy(float)
        total = mine["total"].to_numpy(float) if "total" in mine else np.full(len(reps), math.nan)
        row = {"variant": variant, "n_repetitions": len(reps)}
        for phase in PHASES:
            row[f"{phase}_s"] = float(np.nanmedian(mine[phase])) if phase in mine else math.nan
        row["tests_total_s"] = float(np.nanmedian(total))
        row["session_fixtures_s"] = float(np.nanmedian(fixture))
        row["outside_tests_s"] = float(np.nanmedian(wall - total - fixture))
        row["wall_s"] = float(np.nanmedian(wall))
        rows.append(row)
    phases = pd.DataFrame(rows)
    by_category = (
        tests[tests["phase"].isin(PHASES)]
        .groupby(["category", "variant", "repetition", "phase"], observed=True)["seconds"].sum()
        .groupby(["category", "variant", "phase"], observed=True).median()
        .unstack("phase")
        .reindex(columns=list(PHASES))
        .add_suffix("_s")
        .reset_index()
    )
    by_category.columns.name = None
    return phases, by_category


def _counters(run: dataset.RunData, variants: Sequence[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    measured = _measured_rows(run.timings)
    measured = measured[measured["variant"].isin(list(variants))]
    tests = _test_rows(measured)
    tests = tests[tests["phase"] == "total"]
    fixtures = measured[measured["test"].astype(str).str.startswith(FIXTURE_PREFIX)]
    counters = list(stats.COUNTER_COLUMNS)
    everything = pd.concat([tests, fixtures])
    per_run = everything.groupby(["variant", "repetition"], observed=True)[counters].sum().astype(float)
    per_run = per_run.groupby("variant", observed=True).median()
    n_tests = tests.groupby(["variant", "repetition"], observed=True)["test"].nunique().groupby("variant", observed=True).median()
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
    by_category = (
        by_category.groupby(["category", "variant"], observed=True)[counters].mean().reset_index()
    )
    return table, by_category


REPETITION_LISTING_COLUMNS: tuple[str, ...] = (
    "repetition", "block", "order", "variant", "warmup", "valid", "wall_s", "n_tests", "n_passed", "n_failed",
    "invalid_reason",
)


def repetitions_listing(run: dataset.RunData) -> pd.DataFrame:
    """Every completed repetition in execution order (the columns of repetitions.csv that matter)."""
    return run.repetitions.sort_values("repetition")[list(REPETITION_LISTING_COLUMNS)].reset_index(drop=True)


def repetition_summary(run: dataset.RunData) -> pd.DataFrame:
    """Per variant: planned, completed, valid and invalid repetitions, wall times (table ``repetitions``)."""
    schedule = pd.DataFrame(run.metadata.get("schedule", []))
    rows = []
    for variant in run.variants:
        reps = run.repetitions[run.repetitions["variant"] == variant]
        planned = schedule[schedule["variant"] == variant] if not schedule.empty else schedule
        measured = reps[~reps["warmup"] & reps["valid"]]
        reasons = sorted(set(reps.loc[~reps["valid"], "invalid_reason"].astype(str)) - {""})
        rows.append({
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
        })
    return pd.DataFrame(rows)


def _architectures(run: dataset.RunData) -> pd.DataFrame:
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


def _method(run: dataset.RunData, settings: AnalysisSettings, repetitions: pd.DataFrame) -> pd.DataFrame:
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
        ("machine", f"{cpu.get('model')}, {cpu.get('logical_cores')} logical cores "
                    f"({cpu.get('usable_cores')} usable), governor {cpu.get('frequency_governor')}"),
        ("memory", f"{(memory.get('total_bytes') or 0) / 2**30:.1f} GiB total" if memory.get("total_bytes") else "unknown"),
        ("operating system", platform_info.get("platform")),
        ("python", f"{python.get('implementation')} {python.get('version')}"),
        ("packages", ", ".join(f"{k} {v}" for k, v in packages.items() if v)),
        ("source", f"git {str(git.get('commit'))[:12]}" + (" (uncommitted changes)" if git.get("dirty") else "")),
        ("load average at start / end", f"{env.get('load_average')} / {meta.get('load_average_at_end')}"),
        ("architectures", ", ".join(run.variants)),
        ("tests selected", ", ".join(f"{k} {v!r}" for k, v in selection.items()) or "the whole suite"),
        ("repetitions", f"{arguments.get('repetitions')} measured + {arguments.get('warmup')} warm-up blocks; "
                        f"each block runs every architecture once in a fresh pytest process"),
        ("valid measured repetitions", measured),
        ("interleaving", f"{schedule}: " + ("the same order in every block" if schedule == "abab"
                                            else f"order shuffled per block with seed {meta.get('seed')}")),
        ("child environment", ", ".join(f"{k}={v}" for k, v in (meta.get("child_environment") or {}).items())),
        ("statistics", f"medians; {settings.confidence_level:.0%} percentile bootstrap intervals, "
                       f"{settings.n_resamples} resamples, seed {settings.seed}; two-sided Mann-Whitney U "
                       f"with Holm correction across tests; Cliff's delta; warm-ups and invalid repetitions excluded"),
        ("API test", settings.api_test),
    ]
    return pd.DataFrame(items, columns=["item", "value"]).astype({"value": str})


def _previous_run(run: dataset.RunData, runs_dir: Path, profile: str | None) -> Path | None:
    if profile is None:
        return None
    started = str(run.metadata.get("started_at") or "")
    earlier = [
        s for s in dataset.list_runs(runs_dir, profile=profile)
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
        rows.append({
            "item": row.criterion, "kind": "verdict",
            "current": row.measured, "current_ci_low": row.ci_low, "current_ci_high": row.ci_high,
            "current_passed": bool(row.passed),
            "previous": p["measured"], "previous_ci_low": p["ci_low"], "previous_ci_high": p["ci_high"],
            "previous_passed": bool(p["passed"]),
            "verdicts_agree": bool(row.passed) == bool(p["passed"]),
            "cis_overlap": _overlap(row.ci_low, row.ci_high, p["ci_low"], p["ci_high"]),
            "previous_run_id": previous_id,
        })
    prev_suite = previous["suite"].set_index("unit")
    for row in current["suite"].itertuples(index=False):
        if row.unit not in prev_suite.index:
            continue
        p = prev_suite.loc[row.unit]
        rows.append({
            "item": f"speedup ({row.unit})", "kind": "speedup",
            "current": row.speedup, "current_ci_low": row.speedup_ci_low, "current_ci_high": row.speedup_ci_high,
            "current_passed": None,
            "previous": p["speedup"], "previous_ci_low": p["speedup_ci_low"], "previous_ci_high": p["speedup_ci_high"],
            "previous_passed": None, "verdicts_agree": None,
            "cis_overlap": _overlap(row.speedup_ci_low, row.speedup_ci_high, p["speedup_ci_low"], p["speedup_ci_high"]),
            "previous_run_id": previous_id,
        })
    summary = pd.DataFrame(rows)
    cur_tests = current["tests"].set_index("unit")
    prev_tests = previous["tests"].set_index("unit")
    common = sorted(set(cur_tests.index) & set(prev_tests.index))
    tests = pd.DataFrame({
        "test": common,
        "speedup": cur_tests.loc[common, "speedup"].to_numpy(float),
        "speedup_ci_low": cur_tests.loc[common, "speedup_ci_low"].to_numpy(float),
        "speedup_ci_high": cur_tests.loc[common, "speedup_ci_high"].to_numpy(float),
        "previous_speedup": prev_tests.loc[common, "speedup"].to_numpy(float),
        "previous_speedup_ci_low": prev_tests.loc[common, "speedup_ci_low"].to_numpy(float),
        "previous_speedup_ci_high": prev_tests.loc[common, "speedup_ci_high"].to_numpy(float),
    })
    tests["cis_overlap"] = [
        _overlap(a, b, c, d) for a, b, c, d in zip(
            tests["speedup_ci_low"], tests["speedup_ci_high"], tests["previous_speedup_ci_low"], tests["previous_speedup_ci_high"]
        )
    ]
    return summary, tests


REPRODUCIBILITY_COLUMNS = (
    "item", "kind", "current", "current_ci_low", "current_ci_high", "current_passed", "previous",
    "previous_ci_low", "previous_ci_high", "previous_passed", "verdicts_agree", "cis_overlap", "previous_run_id",
)


def _core_tables(run: dataset.RunData, settings: AnalysisSettings) -> dict[str, pd.DataFrame]:
    verdicts = _verdict_table(run, settings)
    return {"verdicts": verdicts, **_comparisons(run, settings)}


def tables_for_run(run_dir: Path | str, *, runs_dir: Path | str | None = None) -> dict[str, pd.DataFrame]:
    """Every table of the report, regenerated from one run's files.

    Parameters
    ----------
    run_dir : path
        A run directory (``data/runs/<run-id>``) written by :func:`harness.runner.run_benchmark`.
    runs_dir : path, optional
        Where to look for the previous run of the same profile (default: the run's parent).

    Returns
    -------
    dict of str to DataFrame
        Keyed as :data:`TABLE_DESCRIPTIONS`. The comparison compares ``baseline`` with
        ``transactional`` (or the run's first two variants); bootstrap seed and resamples come
        from the run's profile, so repeated calls give identical tables. ``reproducibility`` and
        ``reproducibility_tests`` are empty when there is no earlier complete run of the
        same profile in ``runs_dir``.

    Raises
    ------
    HarnessError
        Not a run directory, no completed repetitions, fewer than two variants, or the API test
        not measured.
    """
    run_dir = Path(run_dir)
    run = dataset.load_run(run_dir)
    settings = analysis_settings(run)
    variants = [settings.baseline, settings.candidate]
    core = _core_tables(run, settings)
    totals = stats.measured_totals(run.timings, variants=variants)
    tables: dict[str, pd.DataFrame] = {}
    repetitions = repetition_summary(run)
    runs_dir = Path(runs_dir) if runs_dir is not None else run_dir.parent
    previous_dir = _previous_run(run, runs_dir, settings.profile)
    previous_id = ""
    environment_note = ""
    if previous_dir is not None:
        previous_run = dataset.load_run(previous_dir)
        previous_id = previous_run.run_id
        differences = metadata_differences(
            previous_run.metadata.get("environment") or {}, run.metadata.get("environment") or {}, keys=COMPARABLE_KEYS
        )
        environment_note = "; ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in differences.items())
        previous = _core_tables(previous_run, analysis_settings(previous_run))
        reproducibility, reproducibility_tests = _reproducibility(core, previous, previous_id)
    else:
        reproducibility = pd.DataFrame(columns=list(REPRODUCIBILITY_COLUMNS))
        reproducibility_tests = pd.DataFrame(columns=[
            "test", "speedup", "speedup_ci_low", "speedup_ci_high", "previous_speedup",
            "previous_speedup_ci_low", "previous_speedup_ci_high", "cis_overlap",
        ])
    tables["run"] = pd.DataFrame([{
        "run_id": run.run_id,
        "run_dir": display_path(run_dir),
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
        "runs_dir": display_path(runs_dir),
        "previous_run_id": previous_id,
        "previous_environment_differences": environment_note,
    }])
    tables["verdicts"] = core["verdicts"]
    tables["seed_claims"] = _seed_claims(run, core["verdicts"], settings)
    tables["headline"] = _headline(core["verdicts"], core, settings)
    tables["suite"] = core["suite"]
    tables["categories"] = core["categories"]
    tables["tests"] = core["tests"]
    tables["describe"] = stats.describe(totals, by="variant")
    tables["describe_categories"] = stats.describe(totals, by=["category", "variant"])
    tables["describe_suite"] = stats.describe(
        stats.suite_samples(run.timings, run.repetitions, variants=variants), by=["measure", "variant"]
    )
    tables["phases"], tables["phases_by_category"] = _phases(run, variants)
    tables["counters"], tables["counters_by_category"] = _counters(run, variants)
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
    for summary in dataset.list_runs(runs_dir, profile=profile):
        if summary.status != "complete":
            continue
        try:
            run = dataset.load_run(summary.path)
        except USER_ERRORS:
            continue
        sums = stats.repetition_sums(stats.measured_totals(run.timings))
        walls = stats.measured_repetitions(run.repetitions)
        for variant, group in sums.groupby("variant", sort=True):
            seconds = group["seconds"].to_numpy(float)
            wall = walls.loc[walls["variant"] == variant, "wall_s"].to_numpy(float)
            rows.append({
                "run_id": run.run_id, "started_at": summary.started_at, "profile": summary.profile,
                "variant": variant, "n": seconds.size, "median_s": float(np.median(seconds)),
                "p25_s": float(np.percentile(seconds, 25)), "p75_s": float(np.percentile(seconds, 75)),
                "median_wall_s": float(np.median(wall)) if wall.size else math.nan,
            })
    return pd.DataFrame(rows, columns=["run_id", "started_at", "profile", "variant", "n", "median_s", "p25_s", "p75_s", "median_wall_s"])


# ---------------------------------------------------------------- display


def _format_number(value: Any, spec: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return "n/a"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return format(float(value), spec)
    return str(value)


def number_format(column: str) -> str:
    """The format spec of a column, from its name: ``*_s`` seconds 4 significant digits,
    ``*_pct`` one decimal, speedups and ratios 3 significant digits, p-values 2, counts per
    suite run whole numbers, anything else 4 significant digits."""
    name = column.removesuffix("_ci_low").removesuffix("_ci_high")
    if name.endswith("_pct"):
        return ".1f"
    if name == "rate":
        return ".3f"
    if name.endswith("_s") or name.endswith("_s_mean"):
        return ".4g"
    if "speedup" in name or name in ("hl_ratio",):
        return ".3g"
    if name in ("cliffs_delta",):
        return "+.2f"
    if "p_value" in name or name.startswith("mw_p") or name.startswith("p_holm") or name in ("p_bh",):
        return ".2g"
    if name.endswith("_per_run"):
        return ".0f"
    return ".4g"


def format_measured(value: float, unit: str) -> str:
    """A measured value in its unit's precision: % one decimal, s four significant digits."""
    if unit == "%":
        return _format_number(value, ".1f")
    if unit == "s":
        return _format_number(value, ".4g")
    return _format_number(value, ".0f") if isinstance(value, float) and float(value).is_integer() else _format_number(value, ".4g")


def _interval(low: Any, high: Any, spec: str) -> str:
    if low is None or high is None or pd.isna(low) or pd.isna(high):
        return "n/a"
    return f"[{format(float(low), spec)}, {format(float(high), spec)}]"


def format_frame(frame: pd.DataFrame, *, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """A table for display: numbers formatted by column name (:func:`number_format`), each
    ``X_ci_low``/``X_ci_high`` pair merged into one ``X 95 % CI`` column, booleans yes/no."""
    frame = frame if columns is None else frame[list(columns)]
    out: dict[str, list[str]] = {}
    skip: set[str] = set()
    level = frame.attrs.get("confidence_level", CONFIDENCE_LEVEL) * 100
    for column in frame.columns:
        name = str(column)
        if name in skip:
            continue
        if name.endswith("_ci_low") or name == "ci_low":
            prefix = name.removesuffix("ci_low")
            high = prefix + "ci_high"
            if high in frame.columns:
                base = prefix.removesuffix("_") or "measured"
                spec = number_format(base)
                out[f"{base} {level:.0f} % CI"] = [_interval(a, b, spec) for a, b in zip(frame[name], frame[high])]
                skip.add(high)
                continue
        spec = number_format(name)
        out[name] = [_format_number(v, spec) for v in frame[column]]
    return pd.DataFrame(out, index=frame.index)


def verdicts_display(verdicts: pd.DataFrame) -> pd.DataFrame:
    """The acceptance checklist for display: criterion, measured, CI, target, verdict, how."""
    rows = []
    for row in verdicts.itertuples(index=False):
        spec = ".1f" if row.unit == "%" else ".4g"
        unit = "" if row.unit not in ("%", "s") else f" {row.unit}"
        verdict = "PASS" if row.passed else "FAIL"
        verdict += " (conclusive)" if row.conclusive else " (inconclusive: the interval straddles the target)"
        rows.append({
            "criterion": row.criterion,
            "measured": format_measured(row.measured, row.unit) + unit,
            "95 % CI": _interval(row.ci_low, row.ci_high, spec),
            "target": ("< " if row.unit == "s" else ">= " if row.unit == "%" else "= ")
            + format_measured(row.target, row.unit) + unit,
            "verdict": verdict,
            "how it was measured": row.how,
        })
    return pd.DataFrame(rows)


def seed_claims_display(claims: pd.DataFrame) -> pd.DataFrame:
    """The seed's claims beside ours, both columns labelled with whose figure they are."""
    rows = []
    for row in claims.itertuples(index=False):
        spec = ".1f" if row.unit == "%" else ".4g"
        rows.append({
            "figure": row.figure,
            "the seed's claim (not measured here)": f"{format(row.seed_claim, 'g')} {row.unit}",
            "where the seed says it": row.seed_says,
            "our measurement": f"{format_measured(row.measured, row.unit)} {row.unit}",
            "our 95 % CI": _interval(row.ci_low, row.ci_high, spec),
            "how we measured it": row.how_we_measured,
        })
    return pd.DataFrame(rows)


_TEST_COLUMNS = (
    "unit", "n_base", "n_cand", "median_base_s", "median_cand_s", "improvement_pct", "speedup",
    "speedup_ci_low", "speedup_ci_high", "mw_p_value", "mw_p_holm", "cliffs_delta", "hl_ratio", "note",
)
_DISPLAY: dict[str, Any] = {
    "verdicts": verdicts_display,
    "seed_claims": seed_claims_display,
    "suite": lambda f: format_frame(f, columns=_TEST_COLUMNS),
    "categories": lambda f: format_frame(f, columns=_TEST_COLUMNS),
    "tests": lambda f: format_frame(f, columns=_TEST_COLUMNS),
    "reproducibility": lambda f: format_frame(f.drop(columns=["previous_run_id"], errors="ignore")),
}


def display_frame(tables: Mapping[str, pd.DataFrame], name: str) -> pd.DataFrame:
    """Table ``name`` of :func:`tables_for_run` formatted for display (strings only)."""
    if name not in tables:
        raise HarnessError(f"no table {name!r}; tables: {', '.join(tables)}")
    formatter = _DISPLAY.get(name, format_frame)
    return formatter(tables[name])


def frame_html(
    frame: pd.DataFrame, *, table_id: str | None = None, caption: str | None = None, empty: str = "(none)"
) -> str:
    """A display frame as an HTML table (cells escaped; ``caption`` is HTML); ``empty`` for no rows."""
    if frame.empty:
        ident = f' id="{html.escape(table_id)}"' if table_id else ""
        return f'<p class="empty-table"{ident}>{html.escape(empty)}</p>'
    body = frame.to_html(index=False, escape=True, border=0, classes="report-table", table_id=table_id, na_rep="n/a")
    text = f"<figcaption>{caption}</figcaption>" if caption else ""
    return f'<figure class="report-table-figure">{body}{text}</figure>'


def table_html(tables: Mapping[str, pd.DataFrame], name: str, *, caption: bool = True) -> str:
    """Table ``name`` as HTML, captioned with the call that regenerates it."""
    run = tables["run"].iloc[0]
    text = None
    if caption:
        call = html.escape(regeneration_call(run["run_dir"], name))
        text = f"{html.escape(TABLE_DESCRIPTIONS.get(name, name))}. Regenerate: <code>{call}</code>"
    return frame_html(display_frame(tables, name), table_id=name, caption=text,
                      empty=f"(table {name} is empty for this run)")


def format_header(tables: Mapping[str, pd.DataFrame]) -> str:
    """Markdown naming the run, its profile and the regeneration call."""
    run = tables["run"].iloc[0]
    return (
        f"**Run `{run['run_id']}`** (profile `{run['profile']}`, status {run['status']}, "
        f"started {run['started_at']}, finished {run['finished_at']}): `{run['candidate']}` compared with "
        f"`{run['baseline']}`.\n\n"
        f"Every table in this report is computed from that run's files; regenerate any of them with "
        f"`{regeneration_call(run['run_dir'])}`."
    )


def format_verdict_summary(tables: Mapping[str, pd.DataFrame]) -> list[str]:
    """One sentence per criterion, plainly."""
    lines = []
    for row in tables["verdicts"].itertuples(index=False):
        status = "met" if row.passed else "NOT met"
        certainty = "conclusively" if row.conclusive else "but the confidence interval straddles the target"
        spec = ".1f" if row.unit == "%" else ".4g"
        ci = _interval(row.ci_low, row.ci_high, spec)
        ci_text = f" (95 % CI {ci})" if ci != "n/a" else ""
        unit = f" {row.unit}" if row.unit in ("%", "s") else f" {row.unit}"
        lines.append(f"{row.criterion}: {status}, {certainty}: measured {format_measured(row.measured, row.unit)}{unit}{ci_text}.")
    return lines


def format_reproducibility(tables: Mapping[str, pd.DataFrame]) -> list[str]:
    """Plain statements: do the verdicts agree with the previous run, do the speedup CIs overlap."""
    run = tables["run"].iloc[0]
    summary = tables["reproducibility"]
    if summary.empty:
        return [
            f"No earlier complete run of profile '{run['profile']}' in {run['runs_dir']}: "
            "nothing to compare with yet (reproducibility is checked from the second run on)."
        ]
    lines = [f"Compared with the previous '{run['profile']}' run {run['previous_run_id']}:"]
    if run["previous_environment_differences"]:
        lines.append(
            f"Caution: that run was measured on another machine or Python ({run['previous_environment_differences']})."
        )
    verdicts = summary[summary["kind"] == "verdict"]
    disagree = verdicts[~verdicts["verdicts_agree"].astype(bool)]
    if disagree.empty:
        lines.append(f"All {len(verdicts)} verdicts agree.")
    else:
        for row in disagree.itertuples(index=False):
            now = "PASS" if row.current_passed else "FAIL"
            before = "PASS" if row.previous_passed else "FAIL"
            lines.append(f"The verdicts DISAGREE on '{row.item}': {now} now, {before} in the previous run.")
    speedups = summary[summary["kind"] == "speedup"]
    for row in speedups.itertuples(index=False):
        now = _interval(row.current_ci_low, row.current_ci_high, ".3g")
        before = _interval(row.previous_ci_low, row.previous_ci_high, ".3g")
        values = f"{format(row.current, '.3g')}x {now} now, {format(row.previous, '.3g')}x {before} before"
        item = row.item[:1].upper() + row.item[1:]
        if row.cis_overlap is None or (isinstance(row.cis_overlap, float) and math.isnan(row.cis_overlap)):
            lines.append(f"{item}: the intervals cannot be compared, one is missing ({values}).")
        elif row.cis_overlap:
            lines.append(f"{item}: the 95 % intervals overlap ({values}).")
        else:
            lines.append(
                f"{item}: the 95 % intervals do NOT overlap ({values}); "
                "the two runs disagree by more than their noise."
            )
    tests = tables["reproducibility_tests"]
    known = tests.dropna(subset=["cis_overlap"]) if len(tests) else tests
    if len(known):
        apart = known[~known["cis_overlap"].astype(bool)]
        text = f"Per test, {len(known) - len(apart)} of {len(known)} speedup intervals overlap with the previous run's"
        if len(apart):
            names = ", ".join(t.rsplit("::", 1)[-1] for t in apart["test"][:5])
            text += f"; {len(apart)} do NOT ({names}{', ...' if len(apart) > 5 else ''})"
        lines.append(text + ".")
    return lines


def study_command(run_dir: Path | str) -> str:
    """The run_all.py command that re-renders the report of the run in ``run_dir``."""
    run_dir = Path(run_dir).absolute()
    command = f"python run_all.py --resume {run_dir.name}"
    root = run_dir.parent.parent.parent
    if run_dir.parent.name == "runs" and run_dir.parent.parent.name == "data" and root != paths.ROOT:
        command += f" --output-root {display_path(root)}"
    return command


def format_regeneration(tables: Mapping[str, pd.DataFrame]) -> str:
    """Markdown: how to regenerate every table, and the whole report."""
    run = tables["run"].iloc[0]
    names = "\n".join(f"- `{name}`: {text}" for name, text in TABLE_DESCRIPTIONS.items())
    return (
        "Every table above comes from one call on the run's files:\n\n"
        f"```python\nimport harness.report\ntables = {regeneration_call(run['run_dir'])}\n"
        'tables["verdicts"]\n```\n\n'
        f"The tables it returns:\n\n{names}\n\n"
        f"To re-execute the notebooks and re-export this page from the same run: "
        f"`{study_command(run['run_dir'] if Path(run['run_dir']).is_absolute() else paths.ROOT / run['run_dir'])}`."
    )


def markdown_lines(lines: Sequence[str]) -> str:
    """Lines as a Markdown bullet list."""
    return "\n".join(f"- {line}" for line in lines)


# ---------------------------------------------------------------- HTML export

_PAGE_CSS = """
body { font-family: -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; color: #222;
       max-width: 1100px; margin: 2em auto; padding: 0 1.5em; line-height: 1.45; background: #fff; }
h1, h2, h3 { line-height: 1.2; } h2 { border-bottom: 1px solid #ddd; padding-bottom: .2em; margin-top: 1.8em; }
code, pre { font-family: "SFMono-Regular", Consolas, "Liberation Mono", monospace; font-size: .9em; }
pre { background: #f6f8fa; padding: .8em; overflow-x: auto; border-radius: 4px; }
table.report-table, .rendered_html table { border-collapse: collapse; margin: .6em 0; font-size: .85em; }
table.report-table th, table.report-table td, .rendered_html th, .rendered_html td {
  border: 1px solid #d0d7de; padding: .25em .55em; text-align: left; vertical-align: top; }
table.report-table th { background: #f0f3f6; }
table.report-table tr:nth-child(even) td { background: #fafbfc; }
figure.report-table-figure { margin: 0 0 1.2em 0; overflow-x: auto; }
figcaption { font-size: .8em; color: #555; margin-top: .2em; }
img { max-width: 100%; height: auto; }
.output_stderr, .output_error { display: none; }
a.anchor-link { display: none; }
.jp-OutputPrompt, .prompt, .input_prompt, .output_prompt { display: none; }
"""

_EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", re.IGNORECASE)
_EXTERNAL_CSS = re.compile(r"""(?:@import|url\(\s*["']?\s*(?:https?:)?//)""", re.IGNORECASE)


def external_references(text: str) -> list[str]:
    """``src``/``href`` attributes and CSS imports that point at another host (a self-contained page has none)."""
    found = [text[m.start(): m.start() + 80] for m in _EXTERNAL.finditer(text)]
    found += [text[m.start(): m.start() + 80] for m in _EXTERNAL_CSS.finditer(text)]
    return found


def export_html(executed_notebook_path: Path | str, html_path: Path | str, *, title: str | None = None) -> Path:
    """Render an executed notebook as one self-contained HTML page.

    nbconvert's ``basic`` template (cell bodies only: no MathJax, require.js or font links, which
    the lab/classic templates fetch from CDNs) with inputs and prompts excluded, wrapped in a
    minimal page with inline CSS. Images stay inline as ``data:`` URIs.

    Parameters
    ----------
    executed_notebook_path : path
        A notebook with outputs (e.g. papermill's copy under ``reports/<run-id>/``).
    html_path : path
        Where to write the page.
    title : str, optional
        The page title (default: the notebook's file name).

    Returns
    -------
    Path
        ``html_path``.

    Raises
    ------
    HarnessError
        Unreadable notebook, or the page would reference anything outside itself.
    """
    import nbformat
    from nbconvert import HTMLExporter

    source = Path(executed_notebook_path)
    try:
        notebook = nbformat.read(source, as_version=4)
    except (OSError, ValueError) as problem:
        raise HarnessError(f"cannot read notebook {source}: {problem}") from None
    for cell in notebook.cells:
        if cell.get("cell_type") == "code":
            # A failed cell's traceback and anything the kernel printed on stderr are not report content.
            cell["outputs"] = [
                o for o in cell.get("outputs", [])
                if o.get("output_type") != "error" and not (o.get("output_type") == "stream" and o.get("name") == "stderr")
                and not {"application/javascript", "text/javascript"} & set(o.get("data", {}))
            ]
    exporter = HTMLExporter(
        template_name="basic", exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True,
        exclude_raw=True,
    )
    body, _ = exporter.from_notebook_node(notebook)
    body = re.sub(r"<script\b.*?</script>", "", body, flags=re.DOTALL | re.IGNORECASE)
    title = title or source.stem
    page = (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        f"<title>{html.escape(title)}</title>\n<style>{_PAGE_CSS}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n"
    )
    external = external_references(page)
    if external:
        raise HarnessError(f"the report would load {len(external)} external resource(s), e.g. {external[0]!r}")
    target = Path(html_path)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.tmp")
    temporary.write_text(page, encoding="utf-8")
    temporary.replace(target)
    return target
