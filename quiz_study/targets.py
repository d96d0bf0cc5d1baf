"""The seed write-up's acceptance criteria and claims: targets, the API test, the verdicts.

The criteria (suite improvement >= 70 %, API test < 0.5 s, no failing tests, median per-test
improvement >= 70 %) and the figures the seed reports (SEED_CLAIMS) are the only study constants;
every measured value comes from a run's files. A seed claim is shown beside our measurement of
the same quantity, never as a result.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from quiz_study.errors import StudyError
from suitebench.stats import (
    MEDIAN_TEST_ESTIMAND,
    SUITE_TESTS_SUM,
    check_variants,
    comparable_tests,
    format_cell,
    geometric_mean_interval,
    improvement_from_speedup,
    measured_totals,
    median_test_improvement,
    repetitions_to_settle,
    require_columns,
    speedup_from_improvement,
    suite_samples,
    welch_log_ratio,
)
from suitebench.store import TIMING_COLUMNS, as_bool

API_TEST = "test_integration.py::test_login_then_protected_endpoint"


def api_test_in(node_ids: Sequence[str]) -> str:
    """The API test's node id as a run recorded it: node ids are relative to the suite's directory
    (runs recorded before the suite had its own configuration wrote `suite/test_...`)."""
    found = sorted({str(n) for n in node_ids if str(n) == API_TEST or str(n).endswith("/" + API_TEST)})
    return found[0] if found else API_TEST


SUITE_TARGET_PCT = 70.0
API_TARGET_S = 0.5
TEST_TARGET_PCT = 70.0


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
        "api_baseline",
        "API test time, old architecture",
        2.19,
        "s",
        '"2.19s baseline" (API endpoint mean before the change)',
    ),
    SeedClaim(
        "api_new",
        "API test time, new architecture",
        0.47,
        "s",
        '"API Endpoints: 0.47s mean" (0.4755 s; 25 iterations in one process)',
    ),
    SeedClaim(
        "api_improvement",
        "API test improvement",
        78.3,
        "%",
        '"78.3% from 2.19s baseline" (from the two means)',
    ),
    SeedClaim(
        "overall_improvement",
        "overall improvement (Phase 2 target 70-80 %)",
        78.3,
        "%",
        '"Phase 2 Target: 70-80% improvement ACHIEVED (78.3%)"',
    ),
)


# --------------------------------------------------------------------------- acceptance

VERDICT_COLUMNS = (
    "criterion",
    "primary_measure",
    "measured",
    "ci_low",
    "ci_high",
    "target",
    "unit",
    "verdict",
    "passed",
    "repetitions_to_settle",
    "how",
)
MET, NOT_MET, UNDETERMINED = "met", "not met", "undetermined"


def three_state(ci_low: float, ci_high: float, *, passes: Callable[[float], bool]) -> str:
    """``met`` when the whole interval is on the target's good side, ``not met`` when it is all
    on the bad side, ``undetermined`` when it straddles the target (or is missing)."""
    if math.isnan(ci_low) or math.isnan(ci_high):
        return UNDETERMINED
    low, high = passes(ci_low), passes(ci_high)
    if low and high:
        return MET
    if not low and not high:
        return NOT_MET
    return UNDETERMINED


def _closest(name: str, candidates: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, candidates, n=3, cutoff=0.4)
    return f"; did you mean {', '.join(close)}?" if close else ""


def acceptance_verdicts(
    timings: pd.DataFrame,
    repetitions: pd.DataFrame,
    *,
    baseline: str,
    candidate: str,
    api_test: str,
    seed: int = 0,
    tests: Sequence[str] | None = None,
    suite_target_pct: float = 70.0,
    api_target_s: float = 0.5,
    test_target_pct: float = 70.0,
    n_resamples: int | None = None,
    confidence_level: float = 0.95,
) -> pd.DataFrame:
    """The seed document's acceptance targets, measured, each on one declared primary measure.

    Parameters
    ----------
    timings : DataFrame
        Tidy timings.
    repetitions : DataFrame
        ``repetitions.csv``.
    baseline, candidate : str
        Variant labels (the old and the new architecture).
    api_test : str
        Node id of the API test held to the "< 0.5 s" target.
    seed, n_resamples
        Ignored (every interval is analytic); accepted for callers of the former bootstraps.
    tests : sequence of str, optional
        The test set every timing criterion uses (default :func:`suitebench.stats.comparable_tests`:
        tests that passed in every process of both variants).
    suite_target_pct, api_target_s, test_target_pct : float
        The targets: suite improvement >= 70 %, API test < 0.5 s, median per-test improvement >= 70 %.
    confidence_level : float
        Of the intervals.

    Returns
    -------
    DataFrame
        One row per criterion: ``criterion, primary_measure, measured, ci_low, ci_high, target,
        unit, verdict, passed, repetitions_to_settle, how``. ``verdict`` is ``met`` (the whole
        interval on the target's good side), ``not met`` (all of it on the bad side) or
        ``undetermined`` (it straddles the target); ``passed`` is True only for ``met``.
        ``repetitions_to_settle`` (undetermined only) is the number of repetitions per side at
        which the interval would clear the target if the estimate and the spread stayed as
        measured (NaN: settled, or no number would do).

    Raises
    ------
    StudyError
        Unknown variant or ``api_test`` never measured in the candidate.
    """
    require_columns(timings, TIMING_COLUMNS, "timings")
    require_columns(repetitions, ("variant", "repetition", "valid", "warmup", "wall_s"), "repetitions")
    check_variants(timings, baseline, candidate)
    if api_test not in set(timings["test"].astype(str)):
        known = sorted(set(timings["test"].astype(str)))
        raise StudyError(f"API test {api_test!r} not in the timings{_closest(api_test, known)}")
    if tests is None:
        tests = comparable_tests(timings, variants=[baseline, candidate]).tests
    tests = list(tests)
    rows = []
    at_least = lambda target: lambda value: value >= target  # noqa: E731

    def settle(unit_variances: Sequence[float], distance: float, verdict: str) -> float:
        if verdict != UNDETERMINED:
            return math.nan
        n = repetitions_to_settle(unit_variances=unit_variances, distance=distance, confidence_level=confidence_level)
        return float(n) if n is not None else math.nan

    # Suite: the sum of the test totals per process (the wall time and the per-test figures are
    # shown in the headline, but only this decides the criterion).
    samples = suite_samples(timings, None, variants=[baseline, candidate], tests=tests)
    base = samples.loc[samples["variant"] == baseline, "seconds"].to_numpy(float)
    cand = samples.loc[samples["variant"] == candidate, "seconds"].to_numpy(float)
    ratio = welch_log_ratio(base, cand, confidence_level=confidence_level)
    low, high = improvement_from_speedup(ratio.ci_low), improvement_from_speedup(ratio.ci_high)
    verdict = three_state(low, high, passes=at_least(suite_target_pct))
    variances = [np.log(base).var(ddof=1), np.log(cand).var(ddof=1)] if min(base.size, cand.size) > 1 else [math.nan]
    rows.append(
        dict(
            criterion=f"suite improvement >= {suite_target_pct:g} %",
            primary_measure=f"{SUITE_TESTS_SUM} per process, over the {len(tests)} comparable tests",
            measured=improvement_from_speedup(ratio.ratio),
            ci_low=low,
            ci_high=high,
            target=suite_target_pct,
            unit="%",
            verdict=verdict,
            passed=verdict == MET,
            repetitions_to_settle=settle(
                variances, abs(math.log(ratio.ratio) - math.log(speedup_from_improvement(suite_target_pct))), verdict
            ),
            how=(
                f"per process, the sum of the total seconds of the {len(tests)} tests that passed in every "
                f"process of both variants; (1 - 1 / ratio of geometric means) x 100 over {base.size} + "
                f"{cand.size} processes; {confidence_level:.0%} Welch t interval on log seconds"
            ),
        )
    )

    totals = measured_totals(timings, variants=[candidate])
    api = totals.loc[totals["test"] == api_test, "seconds"].to_numpy(float)
    geo = geometric_mean_interval(api, confidence_level=confidence_level)
    below = lambda value: value < api_target_s  # noqa: E731
    verdict = three_state(geo.ci_low, geo.ci_high, passes=below)
    rows.append(
        dict(
            criterion=f"API test < {api_target_s:g} s",
            primary_measure="geometric mean over processes of the API test's total seconds (candidate)",
            measured=geo.geomean,
            ci_low=geo.ci_low,
            ci_high=geo.ci_high,
            target=api_target_s,
            unit="s",
            verdict=verdict,
            passed=verdict == MET,
            repetitions_to_settle=settle(
                [geo.log_sd**2], abs(math.log(geo.geomean) - math.log(api_target_s)) if api.size else math.nan, verdict
            ),
            how=(
                f"geometric mean of the total (setup + call + teardown) seconds of {api_test} under {candidate} "
                f"over {api.size} processes; {confidence_level:.0%} one-sample t interval on log seconds"
            ),
        )
    )

    reps = repetitions[repetitions["variant"].isin([baseline, candidate])]
    invalid = reps.loc[~as_bool(reps["valid"])]
    per_variant = ", ".join(
        f"{variant}: {int((invalid['variant'] == variant).sum())} of {int((reps['variant'] == variant).sum())}"
        for variant in (baseline, candidate)
    )
    verdict = MET if (len(invalid) == 0 and len(reps) > 0) else NOT_MET
    rows.append(
        dict(
            criterion="no failing tests",
            primary_measure="repetitions with a failed or erroring test, or an unfinished process",
            measured=float(len(invalid)),
            ci_low=math.nan,
            ci_high=math.nan,
            target=0.0,
            unit="invalid repetitions",
            verdict=verdict,
            passed=verdict == MET,
            repetitions_to_settle=math.nan,
            how=(
                "count of repetitions (warm-ups included) with a failed or erroring test or an "
                f"unfinished process ({per_variant}); these are excluded from every timing statistic; "
                "counted exactly, no sampling error"
            ),
        )
    )

    median = median_test_improvement(
        timings, baseline=baseline, candidate=candidate, tests=tests, confidence_level=confidence_level
    )
    verdict = three_state(median.ci_low, median.ci_high, passes=at_least(test_target_pct))
    distance = (
        abs(
            math.log(speedup_from_improvement(median.improvement_pct))
            - math.log(speedup_from_improvement(test_target_pct))
        )
        if math.isfinite(median.improvement_pct)
        else math.nan
    )
    rows.append(
        dict(
            criterion=f"median per-test improvement >= {test_target_pct:g} %",
            primary_measure=f"median over the {median.n_tests} comparable tests of each test's improvement",
            measured=median.improvement_pct,
            ci_low=median.ci_low,
            ci_high=median.ci_high,
            target=test_target_pct,
            unit="%",
            verdict=verdict,
            passed=verdict == MET,
            repetitions_to_settle=settle(list(median.unit_variances), distance, verdict),
            how=(
                f"{MEDIAN_TEST_ESTIMAND}: Harrell-Davis median over {median.n_tests} tests of the log ratio of "
                f"geometric means, as (1 - 1 / ratio) x 100; {confidence_level:.0%} t interval from a "
                "delete-one-process jackknife on each side"
            ),
        )
    )
    return pd.DataFrame(rows, columns=list(VERDICT_COLUMNS))


# --------------------------------------------------------------------------- formatting


def verdict_text(verdict: str, repetitions: float) -> str:
    """``met``, ``not met``, or ``undetermined (about N repetitions per side would settle it)``."""
    if verdict != UNDETERMINED:
        return verdict
    if math.isnan(repetitions):
        return "undetermined (the interval straddles the target; no feasible number of repetitions settles it)"
    return f"undetermined (about {int(repetitions)} repetitions per side would settle it)"


def format_verdicts(verdicts: pd.DataFrame) -> list[str]:
    """One line per acceptance criterion (:func:`acceptance_verdicts`).

    Returns
    -------
    list of str
        ``"met: suite improvement >= 70 %: 81.2 % [CI 79.0, 83.1]"`` and the like.
    """
    lines = []
    for row in verdicts.itertuples(index=False):
        text = f"{verdict_text(row.verdict, row.repetitions_to_settle)}: {row.criterion}: "
        text += f"{format_cell(row.measured, '.4g')} {row.unit}"
        if not (math.isnan(row.ci_low) or math.isnan(row.ci_high)):
            text += f" [CI {row.ci_low:.4g}, {row.ci_high:.4g}]"
        lines.append(text)
    return lines
