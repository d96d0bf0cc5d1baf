"""Statistics of a measured run: summaries and two-variant comparisons.

Every function takes the tidy tables described in ``data/README.md`` (``timings.csv`` and
``repetitions.csv`` as pandas DataFrames) and returns DataFrames or named results; formatting
(``format_*``, returning text) is kept apart from the computations, and nothing here prints.

Conventions used throughout:

* Only rows with ``phase == "total"``, ``valid`` True and ``warmup`` False enter statistics
  (:func:`measured_totals`). Fixture rows (``test`` = ``<fixture:NAME>``) have no total phase.
* The process is the unit of inference: one pytest process gives one value per unit (test,
  category, suite); tests inside one process share its conditions and are not independent draws.
* "base" is the baseline variant, "cand" the candidate. ``speedup`` is the ratio of geometric
  means over processes, ``base / cand`` (> 1: the candidate is faster), with Welch's t interval
  on the log scale; ``improvement_pct = (1 - 1 / speedup) * 100``. Medians are shown as
  descriptions only.
* Two-sided tests: a p-value below alpha says the variants' timings differ; a larger one says
  only that no difference was shown, not that they are equal.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Literal, NamedTuple

import numpy as np
import pandas as pd
from scipy import stats
from scipy.stats import mstats
from statsmodels.stats.multitest import multipletests

from suitebench.errors import BenchError
from suitebench.store import COUNTER_COLUMNS, REPETITION_COLUMNS, TIMING_COLUMNS, as_bool  # noqa: F401 - re-exported

TOTAL_PHASE = "total"
FIXTURE_PREFIX = "<fixture:"

# Resamples of the bootstrap intervals that remain for callers who ask for one (the report's
# intervals are analytic): a 95 % percentile interval from 2000 resamples moves by well under
# 1 % of its width between seeds.
DEFAULT_RESAMPLES = 2000


# --------------------------------------------------------------------------- input handling


def require_columns(frame: pd.DataFrame, required: Sequence[str], what: str) -> None:
    missing = [column for column in required if column not in frame.columns]
    if missing:
        raise BenchError(f"{what} lacks column(s) {', '.join(missing)} (see data/README.md)")


def check_variants(frame: pd.DataFrame, *variants: str) -> None:
    available = sorted(map(str, frame["variant"].dropna().unique()))
    for variant in variants:
        if variant not in available:
            raise BenchError(f"variant {variant!r} not in the data; available: {', '.join(available) or 'none'}")
    if len(set(variants)) != len(variants):
        raise BenchError(f"compare two different variants, got {', '.join(variants)}")


def measured_totals(timings: pd.DataFrame, *, variants: Sequence[str] | None = None) -> pd.DataFrame:
    """Rows of ``timings`` that enter statistics.

    Parameters
    ----------
    timings : DataFrame
        Tidy timings (``timings.csv``).
    variants : sequence of str, optional
        Keep only these variants.

    Returns
    -------
    DataFrame
        The rows with ``phase == "total"``, ``valid`` True and ``warmup`` False, fixture rows
        excluded, with boolean ``valid``/``warmup`` columns.
    """
    require_columns(
        timings, ("variant", "repetition", "test", "category", "phase", "seconds", "valid", "warmup"), "timings"
    )
    valid = as_bool(timings["valid"])
    warmup = as_bool(timings["warmup"])
    keep = (timings["phase"] == TOTAL_PHASE) & valid & ~warmup
    keep &= ~timings["test"].astype(str).str.startswith(FIXTURE_PREFIX)
    if variants is not None:
        keep &= timings["variant"].isin(list(variants))
    out = timings.loc[keep].copy()
    out["valid"] = True
    out["warmup"] = False
    out["seconds"] = out["seconds"].astype(float)
    return out


def measured_repetitions(repetitions: pd.DataFrame, *, variants: Sequence[str] | None = None) -> pd.DataFrame:
    """Rows of ``repetitions`` that enter statistics (``valid`` True, ``warmup`` False).

    Parameters
    ----------
    repetitions : DataFrame
        ``repetitions.csv``.
    variants : sequence of str, optional
        Keep only these variants.

    Returns
    -------
    DataFrame
        The selected rows, ``wall_s`` as float.
    """
    require_columns(repetitions, ("variant", "repetition", "valid", "warmup", "wall_s"), "repetitions")
    keep = as_bool(repetitions["valid"]) & ~as_bool(repetitions["warmup"])
    if variants is not None:
        keep &= repetitions["variant"].isin(list(variants))
    out = repetitions.loc[keep].copy()
    out["wall_s"] = out["wall_s"].astype(float)
    return out


def repetition_sums(totals: pd.DataFrame, *, by: str | None = None) -> pd.DataFrame:
    """Per-repetition sums of test total seconds.

    Parameters
    ----------
    totals : DataFrame
        Output of :func:`measured_totals`.
    by : str, optional
        Extra grouping column, e.g. ``"category"``; None sums over all tests (suite level).

    Returns
    -------
    DataFrame
        Columns ``variant, repetition, [by], seconds, n_tests``.
    """
    keys = ["variant", "repetition"] + ([by] if by else [])
    return (
        totals.groupby(keys, sort=True, observed=True)
        .agg(seconds=("seconds", "sum"), n_tests=("test", "nunique"))
        .reset_index()
    )


# --------------------------------------------------------------------------- description


def describe(frame: pd.DataFrame, *, by: str | Sequence[str], value: str = "seconds") -> pd.DataFrame:
    """Summary statistics of ``value`` per group.

    Parameters
    ----------
    frame : DataFrame
        Any table with the ``by`` column(s) and ``value``, e.g. :func:`measured_totals` output.
    by : str or sequence of str
        Grouping column(s).
    value : str
        The column to summarise.

    Returns
    -------
    DataFrame
        One row per group: ``n`` (non-missing count), ``mean``, ``median``, ``sd`` (ddof=1,
        NaN for n < 2), ``min``, ``max``, ``p5``, ``p95`` (linear-interpolation percentiles) and
        ``iqr`` (75th minus 25th percentile, :func:`scipy.stats.iqr`).
    """
    keys = [by] if isinstance(by, str) else list(by)
    require_columns(frame, [*keys, value], "frame")

    def _iqr(values: pd.Series) -> float:
        values = values.dropna()
        return float(stats.iqr(values)) if len(values) else math.nan

    return (
        frame.groupby(keys, sort=True, observed=True)[value]
        .agg(
            n="count",
            mean="mean",
            median="median",
            sd="std",
            min="min",
            max="max",
            p5=lambda v: v.quantile(0.05),
            p95=lambda v: v.quantile(0.95),
            iqr=_iqr,
        )
        .reset_index()
    )


# --------------------------------------------------------------------------- the test set


@dataclass(frozen=True)
class TestSet:
    """The tests a comparison uses, and why the others were left out.

    ``tests`` passed in every measured process of every variant compared; ``excluded`` maps each
    other test to the reason (``"baseline: xfailed in 4 of 4 processes"``). Every table of a
    comparison uses the same set, so a test that xfailed (or was skipped, or did not run) in one
    variant counts nowhere rather than in the suite sum of one side only.
    """

    __test__ = False  # not a pytest test class, despite its name

    tests: tuple[str, ...]
    excluded: Mapping[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        """``"190 tests passed in every process of both variants; 4 left out (...)"``."""
        text = f"{len(self.tests)} tests passed in every measured process of every variant compared"
        if self.excluded:
            reasons = sorted(set(self.excluded.values()))
            shown = "; ".join(reasons[:3]) + ("; ..." if len(reasons) > 3 else "")
            text += f"; {len(self.excluded)} left out ({shown})"
        return text


def comparable_tests(timings: pd.DataFrame, *, variants: Sequence[str]) -> TestSet:
    """Tests that passed in every measured process of each of ``variants``.

    Parameters
    ----------
    timings : DataFrame
        Tidy timings.
    variants : sequence of str
        The variants compared.

    Returns
    -------
    TestSet
        The tests with outcome ``passed`` in every valid, non-warm-up process of every variant,
        and the reason each other test was left out (xfailed, skipped, or not run somewhere).
    """
    totals = measured_totals(timings, variants=variants)
    keep: set[str] | None = None
    reasons: dict[str, list[str]] = {}
    all_tests = sorted(set(totals["test"].astype(str)))
    for variant in variants:
        rows = totals[totals["variant"] == variant]
        processes = rows["repetition"].nunique()
        passed = rows[rows["outcome"].astype(str) == "passed"].groupby("test")["repetition"].nunique()
        good = {str(t) for t, count in passed.items() if count == processes and processes > 0}
        keep = good if keep is None else keep & good
        for test in all_tests:
            if test in good:
                continue
            mine = rows[rows["test"] == test]
            if mine.empty:
                reasons.setdefault(test, []).append(f"{variant}: not run")
                continue
            outcomes = mine["outcome"].astype(str)
            other = outcomes[outcomes != "passed"]
            what = other.iloc[0] if len(other) else "passed"
            missing = processes - mine["repetition"].nunique()
            text = f"{variant}: {what} in {len(other)} of {processes} processes" if len(other) else ""
            if missing:
                text = (text + ", " if text else f"{variant}: ") + f"not run in {missing} of {processes} processes"
            reasons.setdefault(test, []).append(text)
    tests = tuple(sorted(keep or ()))
    return TestSet(tests=tests, excluded={t: "; ".join(r) for t, r in sorted(reasons.items()) if t not in tests})


def restrict_to_tests(timings: pd.DataFrame, tests: Sequence[str]) -> pd.DataFrame:
    """``timings`` with only the rows of ``tests`` and of session fixtures (``<fixture:...>``)."""
    names = timings["test"].astype(str)
    return timings[names.isin(set(tests)) | names.str.startswith(FIXTURE_PREFIX)]


# --------------------------------------------------------------------------- log-scale intervals


class LogRatio(NamedTuple):
    """Welch's t on log values: the ratio of geometric means ``base / cand`` with its interval.

    ``p_value`` is two-sided (H0: ratio 1); NaN fields where the statistic is undefined.
    """

    ratio: float
    ci_low: float
    ci_high: float
    t_statistic: float
    df: float
    p_value: float
    se_log: float


def welch_log_ratio(
    base: Sequence[float] | np.ndarray, cand: Sequence[float] | np.ndarray, *, confidence_level: float = 0.95
) -> LogRatio:
    """Ratio of geometric means with a Welch t interval on the log scale.

    Parameters
    ----------
    base, cand : array_like
        Positive values, one per process (seconds).
    confidence_level : float
        Of the interval.

    Returns
    -------
    LogRatio
        ``ratio = exp(mean log base - mean log cand)`` (> 1: ``cand`` is faster) and the
        interval ``exp`` of :meth:`scipy.stats.ttest_ind` ``(equal_var=False).confidence_interval``.
        With fewer than two values on a side, or no variation at all, only ``ratio`` is set.

    Notes
    -----
    The process is the unit: each value must come from its own process. In seeded simulations
    built on runs measured on the study machine (tests/test_inference_simulations.py) the 95 %
    interval covered 0.94-0.96 at 4 and 5 processes per side, equal or unequal variances.
    """
    log_base = np.log(np.asarray(base, dtype=float))
    log_cand = np.log(np.asarray(cand, dtype=float))
    nan = math.nan
    if log_base.size == 0 or log_cand.size == 0:
        return LogRatio(nan, nan, nan, nan, nan, nan, nan)
    ratio = float(np.exp(log_base.mean() - log_cand.mean()))
    var_base = log_base.var(ddof=1) / log_base.size if log_base.size > 1 else nan
    var_cand = log_cand.var(ddof=1) / log_cand.size if log_cand.size > 1 else nan
    if log_base.size < 2 or log_cand.size < 2 or var_base + var_cand == 0:
        return LogRatio(ratio, nan, nan, nan, nan, nan, nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # one side constant: Welch still defined
        result = stats.ttest_ind(log_base, log_cand, equal_var=False)
        interval = result.confidence_interval(confidence_level)
    return LogRatio(
        ratio=ratio,
        ci_low=float(np.exp(interval.low)),
        ci_high=float(np.exp(interval.high)),
        t_statistic=float(result.statistic),
        df=float(result.df),
        p_value=float(result.pvalue),
        se_log=float(math.sqrt(var_base + var_cand)),
    )


class GeometricMean(NamedTuple):
    """Geometric mean of positive values with a t interval on the log scale."""

    geomean: float
    ci_low: float
    ci_high: float
    n: int
    log_sd: float


def geometric_mean_interval(values: Sequence[float] | np.ndarray, *, confidence_level: float = 0.95) -> GeometricMean:
    """Geometric mean with the one-sample t interval of the mean log value.

    Parameters
    ----------
    values : array_like
        Positive values, one per process.
    confidence_level : float
        Of the interval.

    Returns
    -------
    GeometricMean
        ``exp(mean log x)`` and ``exp`` of :func:`scipy.stats.ttest_1samp` ``.confidence_interval``;
        NaN interval with fewer than two values or none varying.
    """
    logs = np.log(np.asarray(values, dtype=float))
    nan = math.nan
    if logs.size == 0:
        return GeometricMean(nan, nan, nan, 0, nan)
    centre = float(np.exp(logs.mean()))
    if logs.size < 2 or np.ptp(logs) == 0:
        return GeometricMean(centre, nan, nan, int(logs.size), nan if logs.size < 2 else 0.0)
    interval = stats.ttest_1samp(logs, 0.0).confidence_interval(confidence_level)
    return GeometricMean(
        geomean=centre,
        ci_low=float(np.exp(interval.low)),
        ci_high=float(np.exp(interval.high)),
        n=int(logs.size),
        log_sd=float(logs.std(ddof=1)),
    )


class TInterval(NamedTuple):
    """Estimates with two-sided t intervals: floats, or arrays of one shape (see :func:`t_interval`)."""

    estimate: float | np.ndarray
    se: float | np.ndarray
    ci_low: float | np.ndarray
    ci_high: float | np.ndarray
    df: float
    p_value: float | np.ndarray


def t_interval(
    estimate: float | np.ndarray, se: float | np.ndarray, df: float, *, confidence_level: float = 0.95
) -> TInterval:
    """The t interval ``estimate ± t_{df} se`` and the two-sided p-value of H0: 0, vectorised.

    Parameters
    ----------
    estimate, se : float or ndarray
        Estimates and their standard errors (broadcast against each other).
    df : float
        Degrees of freedom, one for all estimates.
    confidence_level : float
        Of the intervals.

    Returns
    -------
    TInterval
        Floats when ``estimate`` and ``se`` are scalars, else arrays. NaN bounds with ``df <= 0``
        (or NaN) or a non-finite ``se``; NaN p-value there and where ``se`` is 0.
    """
    estimate, se = np.asarray(estimate, dtype=float), np.asarray(se, dtype=float)
    shape = np.broadcast_shapes(estimate.shape, se.shape)
    if not df > 0:
        nan = np.full(shape, math.nan)
        ci_low = ci_high = p_value = nan
    else:
        half = np.where(np.isfinite(se), stats.t.ppf(0.5 + confidence_level / 2, df) * se, math.nan)
        ci_low, ci_high = estimate - half, estimate + half
        with np.errstate(invalid="ignore", divide="ignore"):
            p_value = np.where(np.isfinite(se) & (se > 0), 2 * stats.t.sf(np.abs(estimate / se), df), math.nan)
    if not shape:
        return TInterval(float(estimate), float(se), float(ci_low), float(ci_high), float(df), float(p_value))
    return TInterval(estimate, se, ci_low, ci_high, float(df), p_value)


def satterthwaite_df(variances: Sequence[float], dfs: Sequence[float]) -> float:
    """Welch-Satterthwaite degrees of freedom of a sum of independent variance estimates.

    Parameters
    ----------
    variances : sequence of float
        Variance estimates of the terms (e.g. ``s_i^2 / n_i``).
    dfs : sequence of float
        Their degrees of freedom (e.g. ``n_i - 1``).

    Returns
    -------
    float
        ``(sum v)^2 / sum(v^2 / df)``; NaN when every variance is zero.
    """
    v = np.asarray(variances, dtype=float)
    d = np.asarray(dfs, dtype=float)
    denominator = float(np.sum(v**2 / d))
    return float(np.sum(v) ** 2 / denominator) if denominator > 0 else math.nan


def repetitions_to_settle(
    *,
    unit_variances: Sequence[float],
    distance: float,
    confidence_level: float = 0.95,
    max_repetitions: int = 10_000,
) -> int | None:
    """How many repetitions per side would make an interval clear a target, if nothing else changed.

    Parameters
    ----------
    unit_variances : sequence of float
        Per side, the variance one repetition contributes: the variance of that side's mean at n
        repetitions is ``unit_variance / n`` (e.g. the sample variance of the log values).
    distance : float
        How far the estimate is from the target, on the interval's scale (e.g. ``|log ratio -
        log target|``).
    confidence_level : float
        Of the two-sided interval.
    max_repetitions : int
        Search limit.

    Returns
    -------
    int or None
        The smallest n >= 2 per side with ``t_{df(n)} * sqrt(sum(v) / n) < distance`` (Welch
        degrees of freedom, ``n - 1`` per side); None when no n up to ``max_repetitions`` does
        (the estimate sits on the target). A planning figure: the estimate and the spread move
        with new repetitions.
    """
    v = np.asarray(unit_variances, dtype=float)
    if not np.isfinite(distance) or distance <= 0 or not np.all(np.isfinite(v)):
        return None
    n = np.arange(2, max_repetitions + 1, dtype=float)
    if v.sum() == 0:
        return 2
    df = v.sum() ** 2 / np.sum(v**2) * (n - 1)
    half_width = stats.t.ppf(0.5 + confidence_level / 2, df) * np.sqrt(v.sum() / n)
    enough = np.flatnonzero(half_width < distance)
    return int(n[enough[0]]) if enough.size else None


# --------------------------------------------------------------------------- two samples


@dataclass(frozen=True)
class TwoSampleComparison:
    """Comparison of one unit (test, category, suite) between baseline and candidate, one value
    per process on each side.

    ``speedup`` is the ratio of geometric means (baseline / candidate, > 1: the candidate is
    faster), the estimand of its interval (``ci_method`` says which); ``improvement_pct = (1 -
    1 / speedup) x 100``. ``welch_p_value`` is Welch's two-sided t-test on log values, the test
    the tables correct and show; the medians, Mann-Whitney, Cliff's delta (+1: every baseline
    value exceeds every candidate value) and the Hodges-Lehmann ratio describe. ``note`` is
    empty when every statistic could be computed, else says which could not and why.
    """

    n_base: int
    n_cand: int
    median_base_s: float
    median_cand_s: float
    geomean_base_s: float
    geomean_cand_s: float
    improvement_pct: float
    speedup: float
    speedup_ci_low: float
    speedup_ci_high: float
    ci_method: str
    welch_t_log: float
    welch_df: float
    welch_p_value: float
    mw_u: float
    mw_p_value: float
    cliffs_delta: float
    hl_ratio: float
    note: str


CiMethod = Literal["welch-log", "percentile", "BCa"]


def ratio_of_geometric_means(base: np.ndarray, cand: np.ndarray, axis: int = -1) -> np.ndarray:
    """``exp(mean log base - mean log cand)`` along ``axis`` (vectorised bootstrap statistic)."""
    return np.exp(np.mean(np.log(base), axis=axis) - np.mean(np.log(cand), axis=axis))


def ratio_of_medians(base: np.ndarray, cand: np.ndarray, axis: int = -1) -> np.ndarray:
    """``median(base) / median(cand)`` along ``axis`` (vectorised bootstrap statistic).

    Parameters
    ----------
    base, cand : ndarray
        Samples (seconds).
    axis : int
        Axis holding the observations.

    Returns
    -------
    ndarray
        The ratio of medians (speedup of ``cand`` over ``base``).
    """
    return np.median(base, axis=axis) / np.median(cand, axis=axis)


class BootstrapInterval(NamedTuple):
    """A bootstrap interval and the method that gave it (``"<method> (BCa undefined)"`` for the fallback)."""

    ci_low: float
    ci_high: float
    method: str


def bootstrap_interval(
    data: tuple[np.ndarray, ...],
    statistic: Callable[..., np.ndarray],
    *,
    rng: np.random.Generator,
    n_resamples: int,
    confidence_level: float,
    method: Literal["percentile", "BCa"],
    batch: int | None = None,
) -> BootstrapInterval:
    """`scipy.stats.bootstrap` interval; BCa falls back to percentile where it is undefined.

    BCa needs a non-degenerate jackknife; with few or tied observations (medians of small
    samples often are) scipy warns and returns NaN, and the percentile interval is then the
    honest fallback. The method actually used is returned.
    """
    methods = [method] if method == "percentile" else [method, "percentile"]
    for current in methods:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = stats.bootstrap(
                data,
                statistic,
                n_resamples=n_resamples,
                vectorized=True,
                paired=False,
                confidence_level=confidence_level,
                method=current,
                rng=rng,
                batch=batch,
            )
        low, high = float(result.confidence_interval.low), float(result.confidence_interval.high)
        degenerate = any(issubclass(w.category, stats.DegenerateDataWarning) for w in caught)
        if current == "percentile" or not (degenerate or math.isnan(low) or math.isnan(high)):
            return BootstrapInterval(low, high, current if current == method else f"{current} (BCa undefined)")
    raise AssertionError("unreachable")  # pragma: no cover


def hodges_lehmann_ratio(base: np.ndarray, cand: np.ndarray) -> float:
    """Hodges-Lehmann estimate of the ratio ``base / cand``.

    Parameters
    ----------
    base, cand : ndarray
        Positive samples (seconds).

    Returns
    -------
    float
        ``exp(median(log b_i - log c_j))`` over all ``n_base * n_cand`` pairs: the shift
        estimator matching the Mann-Whitney test, on the log scale, so a ratio. NaN when a
        sample is empty or holds a non-positive value.

    References
    ----------
    Hodges, J. L. and Lehmann, E. L. (1963). Estimates of location based on rank tests.
    Ann. Math. Statist. 34, 598-611.
    """
    base, cand = np.asarray(base, float), np.asarray(cand, float)
    if base.size == 0 or cand.size == 0 or (base <= 0).any() or (cand <= 0).any():
        return math.nan
    return float(np.exp(np.median(np.subtract.outer(np.log(base), np.log(cand)))))


def cliffs_delta_from_u(u_statistic: float, n_base: int, n_cand: int) -> float:
    """Cliff's delta from the Mann-Whitney U statistic of the first sample.

    Parameters
    ----------
    u_statistic : float
        ``U1`` as returned by ``scipy.stats.mannwhitneyu(base, cand).statistic``: the number of
        pairs with ``base > cand`` plus half the tied pairs.
    n_base, n_cand : int
        Sample sizes.

    Returns
    -------
    float
        ``delta = 2 U1 / (n_base n_cand) - 1 = P(base > cand) - P(base < cand)``, in [-1, 1];
        +1 means every baseline time exceeds every candidate time (candidate faster).

    References
    ----------
    Cliff, N. (1993). Dominance statistics: ordinal analyses to answer ordinal questions.
    Psychological Bulletin 114, 494-509.
    """
    return 2.0 * u_statistic / (n_base * n_cand) - 1.0


def compare_two_samples(
    base: Sequence[float] | np.ndarray,
    cand: Sequence[float] | np.ndarray,
    *,
    confidence_level: float = 0.95,
    ci_method: CiMethod = "welch-log",
    rng: np.random.Generator | None = None,
    n_resamples: int = DEFAULT_RESAMPLES,
) -> TwoSampleComparison:
    """Compare baseline and candidate values of one unit, one value per process.

    Parameters
    ----------
    base, cand : array_like
        Seconds per process for the baseline and the candidate variant.
    confidence_level : float
        Of the speedup interval.
    ci_method : {"welch-log", "percentile", "BCa"}
        ``welch-log`` (default): Welch's t interval of the difference of mean logs
        (:func:`welch_log_ratio`), which covered 0.94-0.96 at 4-5 processes per side in the
        simulations of tests/test_inference_simulations.py. ``percentile``/``BCa``: a two-sample
        bootstrap of the same ratio of geometric means (needs ``rng``); at 4 per side a
        percentile bootstrap covers well under 0.95 (it has too few distinct resamples), so the
        report does not use it.
    rng : numpy.random.Generator, optional
        Source of the bootstrap resamples (bootstrap methods only).
    n_resamples : int
        Bootstrap resamples (bootstrap methods only).

    Returns
    -------
    TwoSampleComparison
        Degenerate inputs give NaN where a statistic is undefined: n < 1 on a side
        (everything), n < 2 on a side (interval and tests), all values equal (tests), zero
        variance on both sides (Welch), non-positive seconds (log-scale statistics); ``note``
        says which.
    """
    base = np.asarray(base, dtype=float)
    cand = np.asarray(cand, dtype=float)
    base, cand = base[~np.isnan(base)], cand[~np.isnan(cand)]
    n_base, n_cand = int(base.size), int(cand.size)
    notes: list[str] = []
    nan = math.nan
    median_base = float(np.median(base)) if n_base else nan
    median_cand = float(np.median(cand)) if n_cand else nan
    if n_base == 0 or n_cand == 0:
        side = "baseline" if n_base == 0 else "candidate"
        return TwoSampleComparison(
            n_base, n_cand, median_base, median_cand, *([nan] * 6), "", *([nan] * 7), f"no samples in {side}"
        )
    positive = bool((base > 0).all() and (cand > 0).all())
    geo_base = float(np.exp(np.log(base).mean())) if positive else nan
    geo_cand = float(np.exp(np.log(cand).mean())) if positive else nan
    speedup = geo_base / geo_cand if positive else nan
    hl = hodges_lehmann_ratio(base, cand)
    if not positive:
        notes.append("non-positive seconds: log-scale statistics undefined")

    ci_low = ci_high = mw_p = welch_t = welch_df = welch_p = nan
    method_used = ""
    with warnings.catch_warnings():
        # tiny or near-constant samples: scipy warns, the statistic is still the right number
        warnings.simplefilter("ignore", RuntimeWarning)
        mw = stats.mannwhitneyu(base, cand, alternative="two-sided", method="auto")
    mw_u = float(mw.statistic)
    cliffs = cliffs_delta_from_u(mw_u, n_base, n_cand)
    if n_base < 2 or n_cand < 2:
        notes.append("n < 2 on a side: no interval, no tests")
    elif np.ptp(np.concatenate([base, cand])) == 0:
        notes.append("all values equal: tests undefined")
        ci_low = ci_high = speedup
        method_used = "degenerate"
    else:
        mw_p = float(mw.pvalue)
        if positive:
            welch = welch_log_ratio(base, cand, confidence_level=confidence_level)
            if math.isnan(welch.p_value):
                notes.append("zero variance on both sides: Welch undefined")
            welch_t, welch_df, welch_p = welch.t_statistic, welch.df, welch.p_value
            if ci_method == "welch-log":
                ci_low, ci_high, method_used = welch.ci_low, welch.ci_high, "welch-log"
            else:
                if rng is None:
                    raise BenchError(f"ci_method {ci_method!r} needs a random generator (rng)")
                ci_low, ci_high, method_used = bootstrap_interval(
                    (base, cand),
                    ratio_of_geometric_means,
                    rng=rng,
                    n_resamples=n_resamples,
                    confidence_level=confidence_level,
                    method=ci_method,
                )
    return TwoSampleComparison(
        n_base=n_base,
        n_cand=n_cand,
        median_base_s=median_base,
        median_cand_s=median_cand,
        geomean_base_s=geo_base,
        geomean_cand_s=geo_cand,
        improvement_pct=improvement_from_speedup(speedup),
        speedup=speedup,
        speedup_ci_low=ci_low,
        speedup_ci_high=ci_high,
        ci_method=method_used,
        welch_t_log=welch_t,
        welch_df=welch_df,
        welch_p_value=welch_p,
        mw_u=mw_u,
        mw_p_value=mw_p,
        cliffs_delta=cliffs,
        hl_ratio=hl,
        note="; ".join(notes),
    )


# --------------------------------------------------------------------------- multiple testing


def holm_adjust(p_values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Holm step-down adjusted p-values, NaN entries left out of the family.

    Parameters
    ----------
    p_values : array_like
        Raw p-values; NaN marks a test that could not be computed.

    Returns
    -------
    ndarray
        Adjusted p-values (``statsmodels.stats.multitest.multipletests(method="holm")``),
        NaN where the input is NaN.
    """
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, math.nan)
    ok = ~np.isnan(p)
    if ok.any():
        out[ok] = multipletests(p[ok], method="holm")[1]
    return out


def holm_adjust_fast(p_values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Holm adjusted p-values in plain numpy, for hot loops; same values as :func:`holm_adjust`.

    ``multipletests(method="holm")`` calls ``gc.collect()`` on every call (statsmodels 0.14 and
    0.15), which costs tens of milliseconds once pandas is loaded; the regression calibration runs
    the detector thousands of times. The tests check this against statsmodels.

    Parameters
    ----------
    p_values : array_like
        Raw p-values; NaN marks a test that could not be computed.

    Returns
    -------
    ndarray
        ``max_{j <= i} min(1, (m - j + 1) p_(j))`` in the input order, over the m non-NaN
        entries; NaN where the input is NaN.

    References
    ----------
    Holm, S. (1979). A simple sequentially rejective multiple test procedure.
    Scand. J. Statist. 6, 65-70.
    """
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, math.nan)
    ok = np.flatnonzero(~np.isnan(p))
    if ok.size:
        order = ok[np.argsort(p[ok], kind="stable")]
        factors = np.arange(ok.size, 0, -1)
        out[order] = np.minimum(1.0, np.maximum.accumulate(p[order] * factors))
    return out


def bh_adjust(p_values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (false discovery rate), NaN left out of the family.

    Parameters
    ----------
    p_values : array_like
        Raw p-values; NaN marks a test that could not be computed.

    Returns
    -------
    ndarray
        ``scipy.stats.false_discovery_control(method="bh")`` of the non-NaN entries, NaN elsewhere.
    """
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, math.nan)
    ok = ~np.isnan(p)
    if ok.any():
        out[ok] = stats.false_discovery_control(p[ok], method="bh")
    return out


# --------------------------------------------------------------------------- comparison tables

COMPARISON_COLUMNS = (
    "level",
    "unit",
    *(f.name for f in fields(TwoSampleComparison)),
    "p_bh",
    "differs",
)
# What a comparison table shows: only tests that can reach alpha at a run's size. Welch on log
# times and its Benjamini-Hochberg adjustment do from 2 processes per side; a Mann-Whitney with
# Holm across ~190 tests cannot below 8 per side, so it is not shown.
COMPARISON_DISPLAY_COLUMNS = (
    "unit",
    "n_base",
    "n_cand",
    "geomean_base_s",
    "geomean_cand_s",
    "improvement_pct",
    "speedup",
    "speedup_ci_low",
    "speedup_ci_high",
    "welch_p_value",
    "p_bh",
    "differs",
    "cliffs_delta",
)


def _compare_units(
    samples: pd.DataFrame,
    *,
    level: str,
    unit_column: str,
    baseline: str,
    candidate: str,
    confidence_level: float,
    alpha: float,
    correct: bool,
) -> pd.DataFrame:
    units = sorted(samples[unit_column].astype(str).unique())
    by_key = {
        key: group["seconds"].to_numpy(float)
        for key, group in samples.groupby([samples[unit_column].astype(str), "variant"], sort=False)
    }
    rows = []
    for unit in units:
        result = compare_two_samples(
            by_key.get((unit, baseline), np.empty(0)),
            by_key.get((unit, candidate), np.empty(0)),
            confidence_level=confidence_level,
        )
        rows.append({"level": level, "unit": unit, **asdict(result)})
    frame = pd.DataFrame(rows, columns=list(COMPARISON_COLUMNS[:-2]))
    frame["p_bh"] = bh_adjust(frame["welch_p_value"]) if correct else frame["welch_p_value"]
    frame["differs"] = (frame["p_bh"] < alpha).fillna(False).astype(bool)
    frame.attrs.update(baseline=baseline, candidate=candidate, confidence_level=confidence_level, alpha=alpha)
    return frame


def _selected(timings: pd.DataFrame, tests: Sequence[str] | None) -> pd.DataFrame:
    return timings if tests is None else restrict_to_tests(timings, tests)


def compare_tests(
    timings: pd.DataFrame,
    *,
    baseline: str,
    candidate: str,
    tests: Sequence[str] | None = None,
    confidence_level: float = 0.95,
    alpha: float = 0.05,
    seed: object = None,
    n_resamples: int | None = None,
) -> pd.DataFrame:
    """Per-test comparison of two variants, one value per process.

    Parameters
    ----------
    timings : DataFrame
        Tidy timings; only measured totals are used (:func:`measured_totals`).
    baseline, candidate : str
        Variant labels.
    tests : sequence of str, optional
        Compare only these (e.g. :func:`comparable_tests`); None compares every test measured.
    confidence_level : float
        Of the speedup intervals (Welch t on log seconds).
    alpha : float
        False discovery rate for ``differs``.
    seed, n_resamples
        Ignored: the intervals are analytic. Accepted so callers written for the former
        bootstrap intervals keep working.

    Returns
    -------
    DataFrame
        One row per test (``unit`` = node id, ``level`` = "test") with the fields of
        :class:`TwoSampleComparison`, plus ``p_bh`` (Welch p-values adjusted by
        Benjamini-Hochberg across the tests with a p-value) and ``differs`` (True: the test's
        times differ between the variants at false discovery rate ``alpha``; False: no
        difference shown, which is not evidence of equality). Welch on log times reaches any
        alpha from 2 processes per side; a per-test Mann-Whitney with Holm cannot below 8.
    """
    check_variants(timings, baseline, candidate)
    totals = measured_totals(_selected(timings, tests), variants=[baseline, candidate])
    return _compare_units(
        totals,
        level="test",
        unit_column="test",
        baseline=baseline,
        candidate=candidate,
        confidence_level=confidence_level,
        alpha=alpha,
        correct=True,
    )


def compare_categories(
    timings: pd.DataFrame,
    *,
    baseline: str,
    candidate: str,
    tests: Sequence[str] | None = None,
    confidence_level: float = 0.95,
    alpha: float = 0.05,
    seed: object = None,
    n_resamples: int | None = None,
) -> pd.DataFrame:
    """Per-category comparison: one value per process, the sum of the category's test totals.

    Parameters
    ----------
    timings : DataFrame
        Tidy timings.
    baseline, candidate : str
        Variant labels.
    tests, confidence_level, alpha, seed, n_resamples
        As in :func:`compare_tests`.

    Returns
    -------
    DataFrame
        Columns as :func:`compare_tests`, ``level`` = "category", ``unit`` = category; the
        Benjamini-Hochberg correction runs across categories.
    """
    check_variants(timings, baseline, candidate)
    sums = repetition_sums(measured_totals(_selected(timings, tests), variants=[baseline, candidate]), by="category")
    return _compare_units(
        sums,
        level="category",
        unit_column="category",
        baseline=baseline,
        candidate=candidate,
        confidence_level=confidence_level,
        alpha=alpha,
        correct=True,
    )


SUITE_TESTS_SUM = "sum of test totals"
SUITE_WALL = "process wall time"


def suite_samples(
    timings: pd.DataFrame,
    repetitions: pd.DataFrame | None,
    *,
    variants: Sequence[str],
    tests: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Suite-level samples, one per measured process.

    Parameters
    ----------
    timings : DataFrame
        Tidy timings.
    repetitions : DataFrame or None
        ``repetitions.csv``; None leaves out the wall-time measure.
    variants : sequence of str
        Variants to keep.
    tests : sequence of str, optional
        The tests summed (default: every test measured).

    Returns
    -------
    DataFrame
        Columns ``variant, repetition, measure, seconds``; ``measure`` is
        ``"sum of test totals"`` (per-test totals summed; excludes start-up, collection and
        session-scoped fixtures) or ``"process wall time"`` (``wall_s``: the whole pytest process).
    """
    sums = repetition_sums(measured_totals(_selected(timings, tests), variants=variants))
    parts = [sums.assign(measure=SUITE_TESTS_SUM)[["variant", "repetition", "measure", "seconds"]]]
    if repetitions is not None:
        walls = measured_repetitions(repetitions, variants=variants)
        parts.append(
            walls.assign(measure=SUITE_WALL, seconds=walls["wall_s"])[["variant", "repetition", "measure", "seconds"]]
        )
    return pd.concat(parts, ignore_index=True)


def compare_suite(
    timings: pd.DataFrame,
    repetitions: pd.DataFrame | None,
    *,
    baseline: str,
    candidate: str,
    tests: Sequence[str] | None = None,
    confidence_level: float = 0.95,
    alpha: float = 0.05,
    seed: object = None,
    n_resamples: int | None = None,
) -> pd.DataFrame:
    """Suite-level comparison: per-process sum of test totals, and process wall time.

    Parameters
    ----------
    timings : DataFrame
        Tidy timings.
    repetitions : DataFrame or None
        ``repetitions.csv``; None gives only the sum-of-tests row.
    baseline, candidate : str
        Variant labels.
    tests, confidence_level, alpha, seed, n_resamples
        As in :func:`compare_tests`.

    Returns
    -------
    DataFrame
        Columns as :func:`compare_tests`, ``level`` = "suite", ``unit`` = the measure. The two
        rows measure the same thing two ways, so they are not a family: ``p_bh`` equals
        ``welch_p_value``.
    """
    check_variants(timings, baseline, candidate)
    samples = suite_samples(timings, repetitions, variants=[baseline, candidate], tests=tests)
    return _compare_units(
        samples,
        level="suite",
        unit_column="measure",
        baseline=baseline,
        candidate=candidate,
        confidence_level=confidence_level,
        alpha=alpha,
        correct=False,
    )


# --------------------------------------------------------------------------- speedup and improvement


def improvement_from_speedup(speedup: float) -> float:
    """``(1 - 1 / speedup) * 100``: the percentage of the baseline's time saved; NaN when undefined."""
    return (1.0 - 1.0 / speedup) * 100.0 if speedup and math.isfinite(speedup) else math.nan


def speedup_from_improvement(improvement_pct: float) -> float:
    """The inverse of :func:`improvement_from_speedup`: ``100 / (100 - improvement_pct)``; NaN when
    undefined (not finite, or 100 % and more)."""
    return 100.0 / (100.0 - improvement_pct) if math.isfinite(improvement_pct) and improvement_pct < 100.0 else math.nan


def process_test_matrix(totals: pd.DataFrame, variant: str, tests: Sequence[str]) -> np.ndarray:
    """processes x tests matrix of total seconds (NaN where a test did not run)."""
    rows = totals[totals["variant"] == variant]
    table = rows.pivot_table(index="repetition", columns="test", values="seconds", aggfunc="sum")
    return table.reindex(columns=list(tests)).to_numpy(float)


MEDIAN_TEST_ESTIMAND = (
    "the median (Harrell-Davis), over this fixed set of tests, of each test's improvement in "
    "geometric-mean time (the tests are the population; the processes are the random sample)"
)


def harrell_davis_median(values: np.ndarray) -> np.ndarray:
    """Harrell-Davis median of each row: a Beta-weighted mean of all order statistics.

    A smooth function of the data, unlike the sample median, so the delete-one jackknife
    estimates its variance without the sample median's upward bias (the seeded simulation in
    tests/test_inference_simulations.py: coverage 0.975 with the sample median on an idle
    machine's noise, 0.955 with this one).

    References
    ----------
    Harrell, F. E. and Davis, C. E. (1982). A new distribution-free quantile estimator.
    Biometrika 69, 635-640.
    """
    rows = np.atleast_2d(values)
    return np.asarray(mstats.hdquantiles(rows, prob=[0.5], axis=1)).reshape(rows.shape[0])


class MedianImprovement(NamedTuple):
    """The median per-test improvement with its interval (see :func:`median_test_improvement`)."""

    improvement_pct: float
    ci_low: float
    ci_high: float
    n_tests: int
    se_log: float
    df: float
    unit_variances: tuple[float, float]


def median_test_improvement(
    timings: pd.DataFrame,
    *,
    baseline: str,
    candidate: str,
    tests: Sequence[str] | None = None,
    confidence_level: float = 0.95,
    seed: object = None,
    n_resamples: int | None = None,
) -> MedianImprovement:
    """Median over tests of the per-test improvement, with a process-level jackknife t interval.

    Parameters
    ----------
    timings : DataFrame
        Tidy timings.
    baseline, candidate : str
        Variant labels.
    tests : sequence of str, optional
        The fixed test set (default: tests measured in every process of both variants).
    confidence_level : float
        Of the interval.
    seed, n_resamples
        Ignored (the interval is analytic); accepted for callers of the former bootstrap.

    Returns
    -------
    MedianImprovement
        The estimand is :data:`MEDIAN_TEST_ESTIMAND`: with ``d_i`` the difference of mean log
        seconds of test i (baseline minus candidate), the estimate is the Harrell-Davis median
        of the ``d_i`` (:func:`harrell_davis_median`) reported as ``(1 - exp(-median)) x 100``. The tests are fixed and the processes random, so the
        interval resamples processes, not tests: a delete-one-process jackknife on each side
        gives that side's variance (the processes of one side are independent, the tests within
        a process are not), and ``median ± t_df se`` uses Welch-Satterthwaite degrees of freedom
        (``n - 1`` per side). ``unit_variances`` are the two sides' jackknife variances times
        their process counts (what :func:`repetitions_to_settle` needs). NaN interval with fewer
        than two processes on a side.

    References
    ----------
    Efron, B. and Stein, C. (1981). The jackknife estimate of variance. Ann. Statist. 9, 586-596.
    Harrell, F. E. and Davis, C. E. (1982). A new distribution-free quantile estimator.
    Biometrika 69, 635-640.
    """
    totals = measured_totals(_selected(timings, tests), variants=[baseline, candidate])
    nan = math.nan
    base_all = process_test_matrix(totals, baseline, sorted(set(totals["test"])))
    cand_all = process_test_matrix(totals, candidate, sorted(set(totals["test"])))
    names = np.array(sorted(set(totals["test"])))
    complete = ~np.isnan(base_all).any(axis=0) & ~np.isnan(cand_all).any(axis=0)
    complete &= (np.nan_to_num(base_all, nan=1.0) > 0).all(axis=0) & (np.nan_to_num(cand_all, nan=1.0) > 0).all(axis=0)
    if base_all.shape[0] == 0 or cand_all.shape[0] == 0 or not complete.any():
        return MedianImprovement(nan, nan, nan, 0, nan, nan, (nan, nan))
    base = np.log(base_all[:, complete])
    cand = np.log(cand_all[:, complete])
    n_tests = int(len(names[complete]))
    point = float(harrell_davis_median(base.mean(axis=0) - cand.mean(axis=0))[0])
    if base.shape[0] < 2 or cand.shape[0] < 2:
        return MedianImprovement(improvement_from_speedup(math.exp(point)), nan, nan, n_tests, nan, nan, (nan, nan))

    def jackknife_variance(side: np.ndarray, other_mean: np.ndarray, sign: float) -> float:
        n = side.shape[0]
        leave_one_out = (side.sum(axis=0) - side) / (n - 1)
        values = harrell_davis_median(sign * (leave_one_out - other_mean))
        return float((n - 1) / n * np.sum((values - values.mean()) ** 2))

    var_base = jackknife_variance(base, cand.mean(axis=0), 1.0)
    var_cand = jackknife_variance(cand, base.mean(axis=0), -1.0)
    se = math.sqrt(var_base + var_cand)
    df = satterthwaite_df([var_base, var_cand], [base.shape[0] - 1, cand.shape[0] - 1])
    if se == 0 or math.isnan(df):
        low = high = point
    else:
        interval = t_interval(point, se, df, confidence_level=confidence_level)
        low, high = interval.ci_low, interval.ci_high
    return MedianImprovement(
        improvement_pct=improvement_from_speedup(math.exp(point)),
        ci_low=improvement_from_speedup(math.exp(low)),
        ci_high=improvement_from_speedup(math.exp(high)),
        n_tests=n_tests,
        se_log=se,
        df=df,
        unit_variances=(var_base * base.shape[0], var_cand * cand.shape[0]),
    )


def format_cell(value: object, fmt: str) -> str:
    if value is None:
        return ""
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        if math.isnan(value):
            return "n/a"
        return format(float(value), fmt)
    return str(value)


def format_table(
    frame: pd.DataFrame,
    *,
    style: Literal["plain", "markdown"] = "plain",
    floatfmt: str | Mapping[str, str] = ".4g",
    index: bool = False,
) -> str:
    """Render a DataFrame as aligned text or a GitHub-flavoured Markdown table.

    Parameters
    ----------
    frame : DataFrame
        The table.
    style : {"plain", "markdown"}
        Plain: space-separated aligned columns. Markdown: pipe table, numbers right-aligned.
    floatfmt : str or mapping of column to str
        ``format`` spec for floats, one for all columns or per column (default ``.4g``).
    index : bool
        Include the index as the first column(s).

    Returns
    -------
    str
        The table, lines joined by newlines, no trailing newline. NaN renders as ``n/a``,
        booleans as ``yes``/``no``.
    """
    if style not in ("plain", "markdown"):
        raise BenchError(f"unknown table style {style!r}; choose plain or markdown")
    if index:
        frame = frame.reset_index()
    columns = [str(column) for column in frame.columns]

    def fmt_for(column: str) -> str:
        if isinstance(floatfmt, str):
            return floatfmt
        return floatfmt.get(column, ".4g")

    cells = [
        [format_cell(value, fmt_for(column)) for column, value in zip(columns, row)]
        for row in frame.itertuples(index=False, name=None)
    ]
    numeric = [
        pd.api.types.is_numeric_dtype(frame[column]) and not pd.api.types.is_bool_dtype(frame[column])
        for column in frame.columns
    ]
    if style == "markdown":
        cells = [[cell.replace("|", "\\|") for cell in row] for row in cells]
        columns = [column.replace("|", "\\|") for column in columns]
    widths = [max([len(column), *(len(row[i]) for row in cells)], default=0) for i, column in enumerate(columns)]
    if style == "markdown":
        widths = [max(3, width) for width in widths]

    def render(row: Sequence[str]) -> list[str]:
        return [cell.rjust(w) if num else cell.ljust(w) for cell, w, num in zip(row, widths, numeric)]

    if style == "plain":
        lines = ["  ".join(render(columns)).rstrip(), "  ".join("-" * w for w in widths)]
        lines += ["  ".join(render(row)).rstrip() for row in cells]
    else:
        rule = ["-" * (w - 1) + ":" if num else "-" * w for w, num in zip(widths, numeric)]
        lines = ["| " + " | ".join(render(columns)) + " |", "| " + " | ".join(rule) + " |"]
        lines += ["| " + " | ".join(render(row)) + " |" for row in cells]
    return "\n".join(lines)


def _p(value: float) -> str:
    if math.isnan(value):
        return "n/a"
    return f"{value:.2g}" if value >= 1e-4 else f"{value:.1e}"


def format_comparison(frame: pd.DataFrame, *, limit: int | None = None) -> list[str]:
    """One line per row of a comparison table (:func:`compare_tests` and friends).

    Parameters
    ----------
    frame : DataFrame
        Output of :func:`compare_tests`, :func:`compare_categories` or :func:`compare_suite`.
    limit : int, optional
        Show at most this many rows (in the frame's order), then a line saying how many more.

    Returns
    -------
    list of str
        E.g. ``"tests/test_x.py::test_a: 1.20 s -> 0.210 s (geometric means), 82.5 % faster,
        speedup 5.71x [95 % CI 5.1, 6.4], Welch p 0.0002 (BH 0.003), Cliff's delta +1.00"``.
    """
    level = frame.attrs.get("confidence_level")
    ci_label = f"{level:.0%} CI " if level else "CI "
    lines = []
    shown = frame if limit is None else frame.head(limit)
    for row in shown.itertuples(index=False):
        if row.n_base == 0 or row.n_cand == 0:
            lines.append(f"{row.unit}: {row.note}")
            continue
        change = row.improvement_pct
        direction = "faster" if change >= 0 else "slower"
        change_text = f"{abs(change):.1f} % {direction}" if not math.isnan(change) else "change n/a"
        text = (
            f"{row.unit}: {row.geomean_base_s:.3g} s -> {row.geomean_cand_s:.3g} s (geometric means), "
            f"{change_text}, speedup {row.speedup:.3g}x"
        )
        if not math.isnan(row.speedup_ci_low):
            text += f" [{ci_label}{row.speedup_ci_low:.3g}, {row.speedup_ci_high:.3g}]"
        text += f", Welch p {_p(row.welch_p_value)}"
        if row.p_bh != row.welch_p_value and not math.isnan(row.p_bh):
            text += f" (BH {_p(row.p_bh)})"
        if not math.isnan(row.cliffs_delta):
            text += f", Cliff's delta {row.cliffs_delta:+.2f}"
        text += f", n {row.n_base}/{row.n_cand}"
        if row.note:
            text += f" ({row.note})"
        lines.append(text)
    if limit is not None and len(frame) > limit:
        lines.append(f"... and {len(frame) - limit} more")
    return lines
