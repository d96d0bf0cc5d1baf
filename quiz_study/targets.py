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
    DEFAULT_RESAMPLES,
    SUITE_TESTS_SUM,
    bootstrap_interval,
    check_variants,
    compare_suite,
    format_cell,
    improvement_from_speedup,
    measured_totals,
    median_test_improvement,
    require_columns,
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
    "measured",
    "ci_low",
    "ci_high",
    "target",
    "unit",
    "passed",
    "conclusive",
    "how",
)


def conclusive(ci_low: float, ci_high: float, *, passes: Callable[[float], bool]) -> bool:
    """True when the whole interval is on one side of the target."""
    if math.isnan(ci_low) or math.isnan(ci_high):
        return False
    return passes(ci_low) == passes(ci_high)


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
    seed: int,
    suite_target_pct: float = 70.0,
    api_target_s: float = 0.5,
    test_target_pct: float = 70.0,
    n_resamples: int = DEFAULT_RESAMPLES,
    confidence_level: float = 0.95,
) -> pd.DataFrame:
    """The seed document's acceptance targets, measured.

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
    seed : int
        Seeds every bootstrap.
    suite_target_pct, api_target_s, test_target_pct : float
        The targets: suite improvement >= 70 %, API test median < 0.5 s, median per-test
        improvement >= 70 %.
    n_resamples, confidence_level
        Bootstrap settings (percentile intervals).

    Returns
    -------
    DataFrame
        One row per criterion with columns ``criterion, measured, ci_low, ci_high, target, unit,
        passed, conclusive, how``. ``passed`` compares the point estimate with the target;
        ``conclusive`` is True when the whole interval lies on the same side of the target
        (for the failure count, which has no sampling error, always True). A criterion that
        cannot be measured (no valid repetitions) has NaN and ``passed`` False.

    Raises
    ------
    StudyError
        Unknown variant or ``api_test`` never measured in the candidate.
    """
    require_columns(timings, TIMING_COLUMNS, "timings")
    require_columns(repetitions, ("variant", "repetition", "valid", "warmup", "wall_s"), "repetitions")
    check_variants(timings, baseline, candidate)
    seeds = np.random.SeedSequence(seed).spawn(3)
    rows = []

    suite = (
        compare_suite(
            timings,
            None,
            baseline=baseline,
            candidate=candidate,
            seed=seeds[0],
            n_resamples=n_resamples,
            confidence_level=confidence_level,
        )
        .set_index("unit")
        .loc[SUITE_TESTS_SUM]
    )
    measured = float(suite["improvement_pct"])
    low = improvement_from_speedup(float(suite["speedup_ci_low"]))
    high = improvement_from_speedup(float(suite["speedup_ci_high"]))
    at_least = lambda target: lambda value: value >= target  # noqa: E731
    rows.append(
        dict(
            criterion=f"suite improvement >= {suite_target_pct:g} %",
            measured=measured,
            ci_low=low,
            ci_high=high,
            target=suite_target_pct,
            unit="%",
            passed=bool(measured >= suite_target_pct),
            conclusive=conclusive(low, high, passes=at_least(suite_target_pct)),
            how=(
                "per repetition, sum of all tests' total seconds; (1 - median cand / median base) "
                f"x 100 over {int(suite['n_base'])} + {int(suite['n_cand'])} repetitions; "
                f"{confidence_level:.0%} two-sample percentile bootstrap of the ratio of medians"
            ),
        )
    )

    totals = measured_totals(timings, variants=[candidate])
    if api_test not in set(timings["test"].astype(str)):
        known = sorted(set(timings["test"].astype(str)))
        raise StudyError(f"API test {api_test!r} not in the timings{_closest(api_test, known)}")
    api = totals.loc[totals["test"] == api_test, "seconds"].to_numpy(float)
    measured = float(np.median(api)) if api.size else math.nan
    low = high = math.nan
    if api.size >= 2 and np.ptp(api) > 0:
        low, high, _ = bootstrap_interval(
            (api,),
            lambda x, axis=-1: np.median(x, axis=axis),
            rng=np.random.default_rng(seeds[1]),
            n_resamples=n_resamples,
            confidence_level=confidence_level,
            method="percentile",
        )
    elif api.size >= 2:
        low = high = measured
    below = lambda value: value < api_target_s  # noqa: E731
    rows.append(
        dict(
            criterion=f"API test < {api_target_s:g} s",
            measured=measured,
            ci_low=low,
            ci_high=high,
            target=api_target_s,
            unit="s",
            passed=bool(measured < api_target_s),
            conclusive=conclusive(low, high, passes=below),
            how=(
                f"median total (setup + call + teardown) seconds of {api_test} under {candidate} "
                f"over {api.size} repetitions; {confidence_level:.0%} percentile bootstrap of the median"
            ),
        )
    )

    reps = repetitions[repetitions["variant"].isin([baseline, candidate])]
    invalid = reps.loc[~as_bool(reps["valid"])]
    per_variant = ", ".join(
        f"{variant}: {int((invalid['variant'] == variant).sum())} of {int((reps['variant'] == variant).sum())}"
        for variant in (baseline, candidate)
    )
    rows.append(
        dict(
            criterion="no failing tests",
            measured=float(len(invalid)),
            ci_low=math.nan,
            ci_high=math.nan,
            target=0.0,
            unit="invalid repetitions",
            passed=bool(len(invalid) == 0 and len(reps) > 0),
            conclusive=True,
            how=(
                "count of repetitions (warm-ups included) with a failed or erroring test or an "
                f"unfinished process ({per_variant}); these are excluded from every timing statistic"
            ),
        )
    )

    measured, low, high, n_tests = median_test_improvement(
        timings,
        baseline=baseline,
        candidate=candidate,
        seed=seeds[2],
        n_resamples=n_resamples,
        confidence_level=confidence_level,
    )
    rows.append(
        dict(
            criterion=f"median per-test improvement >= {test_target_pct:g} %",
            measured=measured,
            ci_low=low,
            ci_high=high,
            target=test_target_pct,
            unit="%",
            passed=bool(measured >= test_target_pct),
            conclusive=conclusive(low, high, passes=at_least(test_target_pct)),
            how=(
                f"median over {n_tests} tests of (1 - median cand / median base) x 100 of each "
                f"test's total seconds; {confidence_level:.0%} percentile bootstrap resampling "
                "whole repetitions of each variant"
            ),
        )
    )
    return pd.DataFrame(rows, columns=list(VERDICT_COLUMNS))


# --------------------------------------------------------------------------- formatting


def format_verdicts(verdicts: pd.DataFrame) -> list[str]:
    """One line per acceptance criterion (:func:`acceptance_verdicts`).

    Parameters
    ----------
    verdicts : DataFrame
        Output of :func:`acceptance_verdicts`.

    Returns
    -------
    list of str
        ``"PASS suite improvement >= 70 %: 81.2 % [CI 79.0, 83.1] (conclusive)"`` and the like.
    """
    lines = []
    for row in verdicts.itertuples(index=False):
        status = "PASS" if row.passed else "FAIL"
        text = f"{status} {row.criterion}: {format_cell(row.measured, '.4g')} {row.unit}"
        if not (math.isnan(row.ci_low) or math.isnan(row.ci_high)):
            text += f" [CI {row.ci_low:.4g}, {row.ci_high:.4g}]"
        text += " (conclusive)" if row.conclusive else " (inconclusive: the interval straddles the target)"
        lines.append(text)
    return lines
