"""Statistics of a measured run: summaries and two-variant comparisons.

Every function takes the tidy tables described in ``data/README.md`` (``timings.csv`` and
``repetitions.csv`` as pandas DataFrames) and returns DataFrames or named results; formatting
(``format_*``, returning text) is kept apart from the computations, and nothing here prints.

Conventions used throughout:

* Only rows with ``phase == "total"``, ``valid`` True and ``warmup`` False enter statistics
  (:func:`measured_totals`). Fixture rows (``test`` = ``<fixture:NAME>``) have no total phase.
* "base" is the baseline variant, "cand" the candidate. ``speedup = median_base / median_cand``
  (> 1: the candidate is faster) and ``improvement_pct = (1 - median_cand / median_base) * 100``.
* Two-sided tests: a p-value below alpha says the variants' timings differ; a larger one says
  only that no difference was shown, not that they are equal.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.multitest import multipletests

from suitebench.errors import BenchError
from suitebench.store import COUNTER_COLUMNS, REPETITION_COLUMNS, TIMING_COLUMNS, as_bool  # noqa: F401 - re-exported

TOTAL_PHASE = "total"
FIXTURE_PREFIX = "<fixture:"

CiMethod = Literal["percentile", "BCa"]

# Default resample count: a 95 % percentile interval from 2000 resamples moves by well under
# 1 % of its width between seeds, and a whole per-test table still takes about a second.
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


# --------------------------------------------------------------------------- two samples


@dataclass(frozen=True)
class TwoSampleComparison:
    """Comparison of one unit (test, category, suite) between baseline and candidate.

    ``speedup``/``hl_ratio`` > 1 and ``cliffs_delta`` > 0 mean the candidate is faster.
    ``note`` is empty when every statistic could be computed, else says which could not and why.
    """

    n_base: int
    n_cand: int
    median_base_s: float
    median_cand_s: float
    improvement_pct: float
    speedup: float
    speedup_ci_low: float
    speedup_ci_high: float
    ci_method: str
    mw_u: float
    mw_p_value: float
    welch_t_log: float
    welch_p_value: float
    cliffs_delta: float
    hl_ratio: float
    note: str


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


def bootstrap_interval(
    data: tuple[np.ndarray, ...],
    statistic: Callable[..., np.ndarray],
    *,
    rng: np.random.Generator,
    n_resamples: int,
    confidence_level: float,
    method: CiMethod,
    batch: int | None = None,
) -> tuple[float, float, str]:
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
            return low, high, current if current == method else f"{current} (BCa undefined)"
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
    rng: np.random.Generator,
    n_resamples: int = DEFAULT_RESAMPLES,
    confidence_level: float = 0.95,
    ci_method: CiMethod = "percentile",
) -> TwoSampleComparison:
    """Compare baseline and candidate timings of one unit.

    Parameters
    ----------
    base, cand : array_like
        Seconds per repetition for the baseline and the candidate variant.
    rng : numpy.random.Generator
        Source of the bootstrap resamples.
    n_resamples : int
        Bootstrap resamples.
    confidence_level : float
        Of the speedup interval.
    ci_method : {"percentile", "BCa"}
        Bootstrap interval; BCa falls back to percentile where it is undefined. Percentile is
        the default: for a ratio of medians of log-normal samples it covered 0.97-0.98 at
        n = 5-10 per side and 0.965 at n = 20 (200 simulated data sets), i.e. slightly
        conservative; BCa came nearer 0.95 there, but its acceleration rests on the jackknife
        of a median, which is unreliable for the small, tied samples this study produces.

    Returns
    -------
    TwoSampleComparison
        Medians, improvement, speedup (ratio of medians) with a two-sample bootstrap interval,
        two-sided Mann-Whitney U test, Welch's t-test on log seconds, Cliff's delta and the
        Hodges-Lehmann ratio. Degenerate inputs give NaN where a statistic is undefined:
        n < 1 on a side (everything), n < 2 on a side (interval and tests), all values equal
        (tests: there is no variation to test against), zero variance on both sides (Welch),
        non-positive seconds (log-scale statistics); ``note`` says which.
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
            n_base,
            n_cand,
            median_base,
            median_cand,
            nan,
            nan,
            nan,
            nan,
            "",
            nan,
            nan,
            nan,
            nan,
            nan,
            nan,
            f"no samples in {side}",
        )
    improvement = (1.0 - median_cand / median_base) * 100.0 if median_base > 0 else nan
    speedup = median_base / median_cand if median_cand > 0 else nan
    positive = bool((base > 0).all() and (cand > 0).all())
    hl = hodges_lehmann_ratio(base, cand)
    if not positive:
        notes.append("non-positive seconds: log-scale statistics undefined")

    ci_low = ci_high = mw_p = welch_t = welch_p = nan
    method_used = ""
    with warnings.catch_warnings():
        # tiny or near-constant samples: scipy warns, the statistic is still the right number
        warnings.simplefilter("ignore", RuntimeWarning)
        mw = stats.mannwhitneyu(base, cand, alternative="two-sided", method="auto")
    mw_u = float(mw.statistic)
    cliffs = cliffs_delta_from_u(mw_u, n_base, n_cand)
    all_equal = np.ptp(np.concatenate([base, cand])) == 0
    if n_base < 2 or n_cand < 2:
        notes.append("n < 2 on a side: no interval, no tests")
    elif all_equal:
        notes.append("all values equal: tests undefined")
        ci_low = ci_high = speedup
        method_used = "degenerate"
    else:
        if math.isfinite(speedup):
            ci_low, ci_high, method_used = bootstrap_interval(
                (base, cand),
                ratio_of_medians,
                rng=rng,
                n_resamples=n_resamples,
                confidence_level=confidence_level,
                method=ci_method,
            )
        mw_p = float(mw.pvalue)
        if positive:
            log_base, log_cand = np.log(base), np.log(cand)
            if np.ptp(log_base) == 0 and np.ptp(log_cand) == 0:
                notes.append("zero variance on both sides: Welch undefined")
            else:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    welch = stats.ttest_ind(log_base, log_cand, equal_var=False)
                welch_t, welch_p = float(welch.statistic), float(welch.pvalue)
    return TwoSampleComparison(
        n_base=n_base,
        n_cand=n_cand,
        median_base_s=median_base,
        median_cand_s=median_cand,
        improvement_pct=improvement,
        speedup=speedup,
        speedup_ci_low=ci_low,
        speedup_ci_high=ci_high,
        ci_method=method_used,
        mw_u=mw_u,
        mw_p_value=mw_p,
        welch_t_log=welch_t,
        welch_p_value=welch_p,
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
    "mw_p_holm",
    "mw_p_bh",
    "differs_holm",
)


def _compare_units(
    samples: pd.DataFrame,
    *,
    level: str,
    unit_column: str,
    baseline: str,
    candidate: str,
    seed: int | np.random.SeedSequence,
    n_resamples: int,
    confidence_level: float,
    ci_method: CiMethod,
    alpha: float,
    correct: bool,
) -> pd.DataFrame:
    units = sorted(samples[unit_column].astype(str).unique())
    # One child generator per unit: a unit's interval does not depend on which others are present.
    root = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    children = root.spawn(len(units))
    by_key = {
        key: group["seconds"].to_numpy(float)
        for key, group in samples.groupby([samples[unit_column].astype(str), "variant"], sort=False)
    }
    rows = []
    for unit, child in zip(units, children):
        result = compare_two_samples(
            by_key.get((unit, baseline), np.empty(0)),
            by_key.get((unit, candidate), np.empty(0)),
            rng=np.random.default_rng(child),
            n_resamples=n_resamples,
            confidence_level=confidence_level,
            ci_method=ci_method,
        )
        rows.append({"level": level, "unit": unit, **asdict(result)})
    frame = pd.DataFrame(rows, columns=list(COMPARISON_COLUMNS[:-3]))
    if correct:
        frame["mw_p_holm"] = holm_adjust(frame["mw_p_value"])
        frame["mw_p_bh"] = bh_adjust(frame["mw_p_value"])
    else:
        frame["mw_p_holm"] = frame["mw_p_value"]
        frame["mw_p_bh"] = frame["mw_p_value"]
    frame["differs_holm"] = (frame["mw_p_holm"] < alpha).fillna(False).astype(bool)
    frame.attrs.update(baseline=baseline, candidate=candidate, confidence_level=confidence_level, alpha=alpha)
    return frame


def compare_tests(
    timings: pd.DataFrame,
    *,
    baseline: str,
    candidate: str,
    seed: int,
    n_resamples: int = DEFAULT_RESAMPLES,
    confidence_level: float = 0.95,
    ci_method: CiMethod = "percentile",
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Per-test comparison of two variants.

    Parameters
    ----------
    timings : DataFrame
        Tidy timings; only measured totals are used (:func:`measured_totals`).
    baseline, candidate : str
        Variant labels.
    seed : int
        Seeds the bootstrap (one child stream per test).
    n_resamples, confidence_level, ci_method
        Bootstrap settings, see :func:`compare_two_samples`.
    alpha : float
        Family-wise error rate for ``differs_holm``.

    Returns
    -------
    DataFrame
        One row per test (``unit`` = node id, ``level`` = "test") with the fields of
        :class:`TwoSampleComparison`, plus ``mw_p_holm`` and ``mw_p_bh`` (Mann-Whitney p-values
        corrected across all tests with a p-value; Holm controls the family-wise error rate,
        Benjamini-Hochberg the false discovery rate) and ``differs_holm`` (True: the test's
        timings differ between the variants at family-wise level ``alpha``; False: no difference
        shown, which is not evidence of equality). Tests present in one variant only have n = 0
        on the other side and a note.
    """
    check_variants(timings, baseline, candidate)
    totals = measured_totals(timings, variants=[baseline, candidate])
    return _compare_units(
        totals,
        level="test",
        unit_column="test",
        baseline=baseline,
        candidate=candidate,
        seed=seed,
        n_resamples=n_resamples,
        confidence_level=confidence_level,
        ci_method=ci_method,
        alpha=alpha,
        correct=True,
    )


def compare_categories(
    timings: pd.DataFrame,
    *,
    baseline: str,
    candidate: str,
    seed: int,
    n_resamples: int = DEFAULT_RESAMPLES,
    confidence_level: float = 0.95,
    ci_method: CiMethod = "percentile",
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Per-category comparison: one sample per repetition, the sum of the category's test totals.

    Parameters
    ----------
    timings : DataFrame
        Tidy timings.
    baseline, candidate : str
        Variant labels.
    seed : int
        Seeds the bootstrap.
    n_resamples, confidence_level, ci_method, alpha
        As in :func:`compare_tests`.

    Returns
    -------
    DataFrame
        Columns as :func:`compare_tests`, ``level`` = "category", ``unit`` = category; the
        corrections run across categories.
    """
    check_variants(timings, baseline, candidate)
    sums = repetition_sums(measured_totals(timings, variants=[baseline, candidate]), by="category")
    return _compare_units(
        sums,
        level="category",
        unit_column="category",
        baseline=baseline,
        candidate=candidate,
        seed=seed,
        n_resamples=n_resamples,
        confidence_level=confidence_level,
        ci_method=ci_method,
        alpha=alpha,
        correct=True,
    )


SUITE_TESTS_SUM = "sum of test totals"
SUITE_WALL = "process wall time"


def suite_samples(timings: pd.DataFrame, repetitions: pd.DataFrame | None, *, variants: Sequence[str]) -> pd.DataFrame:
    """Suite-level samples, one per measured repetition.

    Parameters
    ----------
    timings : DataFrame
        Tidy timings.
    repetitions : DataFrame or None
        ``repetitions.csv``; None leaves out the wall-time measure.
    variants : sequence of str
        Variants to keep.

    Returns
    -------
    DataFrame
        Columns ``variant, repetition, measure, seconds``; ``measure`` is
        ``"sum of test totals"`` (per-test totals summed; excludes start-up, collection and
        session-scoped fixtures) or ``"process wall time"`` (``wall_s``: the whole pytest process).
    """
    sums = repetition_sums(measured_totals(timings, variants=variants))
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
    seed: int,
    n_resamples: int = DEFAULT_RESAMPLES,
    confidence_level: float = 0.95,
    ci_method: CiMethod = "percentile",
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Suite-level comparison: per-repetition sum of test totals, and process wall time.

    Parameters
    ----------
    timings : DataFrame
        Tidy timings.
    repetitions : DataFrame or None
        ``repetitions.csv``; None gives only the sum-of-tests row.
    baseline, candidate : str
        Variant labels.
    seed : int
        Seeds the bootstrap.
    n_resamples, confidence_level, ci_method, alpha
        As in :func:`compare_tests`.

    Returns
    -------
    DataFrame
        Columns as :func:`compare_tests`, ``level`` = "suite", ``unit`` = the measure. The two
        rows measure the same thing two ways, so they are not a family: ``mw_p_holm`` and
        ``mw_p_bh`` equal ``mw_p_value``.
    """
    check_variants(timings, baseline, candidate)
    samples = suite_samples(timings, repetitions, variants=[baseline, candidate])
    return _compare_units(
        samples,
        level="suite",
        unit_column="measure",
        baseline=baseline,
        candidate=candidate,
        seed=seed,
        n_resamples=n_resamples,
        confidence_level=confidence_level,
        ci_method=ci_method,
        alpha=alpha,
        correct=False,
    )


# --------------------------------------------------------------------------- speedup and improvement


def improvement_from_speedup(speedup: float) -> float:
    """``(1 - 1 / speedup) * 100``: the percentage of the baseline's time saved; NaN when undefined."""
    return (1.0 - 1.0 / speedup) * 100.0 if speedup and math.isfinite(speedup) else math.nan


def speedup_from_improvement(improvement_pct: float) -> float:
    """The inverse of :func:`improvement_from_speedup`."""
    return 1.0 / (1.0 - improvement_pct / 100.0) if improvement_pct < 100.0 else math.inf


def _test_matrix(totals: pd.DataFrame, variant: str, tests: Sequence[str]) -> np.ndarray:
    """repetitions x tests matrix of total seconds (NaN where a test did not run)."""
    rows = totals[totals["variant"] == variant]
    table = rows.pivot_table(index="repetition", columns="test", values="seconds", aggfunc="sum")
    return table.reindex(columns=list(tests)).to_numpy(float)


def median_test_improvement(
    timings: pd.DataFrame,
    *,
    baseline: str,
    candidate: str,
    seed: int,
    n_resamples: int = DEFAULT_RESAMPLES,
    confidence_level: float = 0.95,
) -> tuple[float, float, float, int]:
    """Median over tests of the per-test improvement, with a repetition-bootstrap interval.

    Parameters
    ----------
    timings : DataFrame
        Tidy timings.
    baseline, candidate : str
        Variant labels.
    seed : int
        Seeds the bootstrap.
    n_resamples, confidence_level
        Bootstrap settings.

    Returns
    -------
    tuple of (float, float, float, int)
        ``(median_improvement_pct, ci_low, ci_high, n_tests)``. The tests are the fixed
        population, the repetitions are the random sample: the percentile interval resamples
        whole repetitions of each variant (keeping each repetition's tests together),
        recomputes every test's median and improvement, and takes the median over tests.
        Only tests measured in both variants count.
    """
    totals = measured_totals(timings, variants=[baseline, candidate])
    tests = sorted(
        set(totals.loc[totals["variant"] == baseline, "test"]) & set(totals.loc[totals["variant"] == candidate, "test"])
    )
    if not tests:
        return math.nan, math.nan, math.nan, 0
    base = _test_matrix(totals, baseline, tests)
    cand = _test_matrix(totals, candidate, tests)

    def statistic(base_index: np.ndarray, cand_index: np.ndarray, axis: int = -1) -> np.ndarray:
        b = np.nanmedian(base[np.asarray(base_index, dtype=int)], axis=-2)
        c = np.nanmedian(cand[np.asarray(cand_index, dtype=int)], axis=-2)
        return np.nanmedian((1.0 - c / b) * 100.0, axis=-1)

    base_index = np.arange(base.shape[0], dtype=float)
    cand_index = np.arange(cand.shape[0], dtype=float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices: tests missing in a resample
        point = float(statistic(base_index, cand_index))
        if base.shape[0] < 2 or cand.shape[0] < 2:
            return point, math.nan, math.nan, len(tests)
        # bounded memory: a batch holds batch x repetitions x tests floats
        batch = max(1, int(2e6 // max(1, max(base.shape[0], cand.shape[0]) * len(tests))))
        low, high, _ = bootstrap_interval(
            (base_index, cand_index),
            statistic,
            rng=np.random.default_rng(seed),
            n_resamples=n_resamples,
            confidence_level=confidence_level,
            method="percentile",
            batch=batch,
        )
    return point, low, high, len(tests)


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
        E.g. ``"tests/test_x.py::test_a: 1.20 s -> 0.210 s, 82.5 % faster, speedup 5.71x
        [95 % CI 5.1, 6.4], Mann-Whitney p 0.0002 (Holm 0.003), Cliff's delta 1.00"``.
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
            f"{row.unit}: {row.median_base_s:.3g} s -> {row.median_cand_s:.3g} s, {change_text}, "
            f"speedup {row.speedup:.3g}x"
        )
        if not math.isnan(row.speedup_ci_low):
            text += f" [{ci_label}{row.speedup_ci_low:.3g}, {row.speedup_ci_high:.3g}]"
        text += f", Mann-Whitney p {_p(row.mw_p_value)}"
        if row.mw_p_holm != row.mw_p_value and not math.isnan(row.mw_p_holm):
            text += f" (Holm {_p(row.mw_p_holm)})"
        if not math.isnan(row.cliffs_delta):
            text += f", Cliff's delta {row.cliffs_delta:+.2f}"
        text += f", n {row.n_base}/{row.n_cand}"
        if row.note:
            text += f" ({row.note})"
        lines.append(text)
    if limit is not None and len(frame) > limit:
        lines.append(f"... and {len(frame) - limit} more")
    return lines
