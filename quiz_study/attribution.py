"""Attribution: how much of the speedup each switch accounts for, from the 12-cell factorial.

Input: the tidy timings of a run whose variants are the cells of `quiz_study.design` (each cell
measured in several fresh processes, interleaved). **One value per process** (`process_values`),
in two forms:

* time-weighted: log of the process's summed test time (the tests that passed in every process
  of the design): the quantity a developer waits for, dominated by the slow tests;
* per-test: mean over the same tests of log test time: every test counts alike (a geometric mean).

**Model.** OLS of the process values on storage x reference_data x isolation_wiring with every
interaction: the saturated model of the 2 x 2 x 3 factorial, so its fitted values are the 12
cell means and its residual degrees of freedom are processes minus cells (24 with 3 processes
per cell). Intervals are t intervals on those df: they rest on process-to-process variation,
never on test-to-test variation inside a process (tests of one process share its conditions).
statsmodels fits the model and tests each interaction term (`anova_table`); the contrasts below
are linear in the cell means, computed by `cell_fit` / `contrast_intervals` / `share_intervals`,
small vectorised functions that the tests also run on thousands of simulated designs to check
the intervals' coverage at the default size.

**Shares.** A step's contribution in one order is the difference of two cell means along the
path (`design.path_contrasts`); its share is that contribution over the total baseline ->
transactional change (the same for every order). Each switch is reported as the range of its
shares over the feasible orders (12 with session wiring and isolation as two steps, 6 with
isolation_wiring as one switch), the mean over the orders, and intervals: delta-method t
intervals for every order's share and for the mean, and a band from the lowest lower bound to
the highest upper bound over the orders (it covers the whole true range whenever every order's
interval covers its share). Shares are of the log change, so they add up to 1 in every order.

**Direct contrast.** With the saturated model the model's total equals the difference of the
two preset cells' means. Beside it `direct_contrasts` shows what the main run measured for the
same presets (whole suite, and the factorial's tests only), Welch t intervals over processes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd

from quiz_study import design
from quiz_study.design import N_CELLS
from quiz_study.errors import StudyError
from suitebench.stats import TInterval, measured_totals, t_interval, welch_log_ratio

FORMS: tuple[str, ...] = ("time-weighted", "per-test")
VALUE_COLUMNS: dict[str, str] = {"time-weighted": "log_sum_s", "per-test": "mean_log_s"}
FORM_MEANING: dict[str, str] = {
    "time-weighted": "log of the process's summed test time",
    "per-test": "mean over tests of log test time (each test counts alike)",
}
PROCESS_COLUMN = "process"


# ---------------------------------------------------------------- one value per process


@dataclass(frozen=True)
class ProcessValues:
    """The factorial's processes, one row each.

    `frame` columns: process (run_id/repetition), run_id, repetition, block, variant, cell,
    storage, reference_data, isolation_wiring (codes), n_tests, sum_s (weighted sum of test
    times), log_sum_s (its log: the time-weighted value), mean_log_s (weighted mean of log test
    times: the per-test value). `tests`: the tests every value is computed over (passed in every
    process); `weights`: each test's weight (1, or its category's suite size over the tests of
    that category measured, see `process_values`); `excluded_tests`: tests left out (not
    passed everywhere, e.g. the strict-xfail tests under own wiring); `other_variants`: measured
    labels that are not cells of the design.
    """

    frame: pd.DataFrame
    tests: tuple[str, ...]
    weights: Mapping[str, float]
    excluded_tests: tuple[str, ...]
    other_variants: tuple[str, ...]
    weighting: str = "none: every test counts once"


class Weighting(NamedTuple):
    """Per-test weights and a sentence saying how they were chosen."""

    weights: dict[str, float]
    description: str


def test_weights(categories: Mapping[str, str], strata: Mapping[str, int] | None) -> Weighting:
    """Per-test weights that make a stratified sample stand for the suite.

    Parameters
    ----------
    categories : mapping
        Test -> category of the tests measured.
    strata : mapping, optional
        Category -> number of tests of that category in the whole suite; None: every weight 1.

    Returns
    -------
    Weighting
        ``{test: N_c / n_c}`` and a sentence saying so. A weighted sum of test times then estimates
        the suite's summed time (Horvitz-Thompson for a stratified sample); a category of the
        suite with no measured test is missing from it, and the sentence says which.
    """
    if not strata:
        return Weighting(dict.fromkeys(categories, 1.0), "none: every test counts once")
    measured: dict[str, int] = {}
    for category in categories.values():
        measured[category] = measured.get(category, 0) + 1
    weights = {
        test: float(strata.get(category, measured[category])) / measured[category]
        for test, category in categories.items()
    }
    missing = sorted(set(strata) - set(measured))
    text = (
        f"stratified by category: each test weighs (tests of its category in the suite) / (measured), "
        f"so the weighted sums estimate the whole suite's ({sum(strata.values())} tests)"
    )
    if missing:
        text += f"; categories with no measured test are missing: {', '.join(missing)}"
    return Weighting(weights, text)


def process_values(
    timings: pd.DataFrame, *, strata: Mapping[str, int] | None = None, tests: Sequence[str] | None = None
) -> ProcessValues:
    """One value per process of the factorial cells (see the module docstring).

    Parameters
    ----------
    timings : DataFrame
        Tidy timings of the factorial run.
    strata : mapping, optional
        Category -> tests in the whole suite, when the run measured a stratified sample
        (`test_weights`); None weighs every test once.
    tests : sequence of str, optional
        The tests analysed (default: every test measured); the others (warm-up tests that ran
        before them) are left out.

    Raises
    ------
    StudyError
        No cell of the design among the measured variants, or no test passed in every process.
    """
    totals = measured_totals(timings)
    if tests is not None:
        totals = totals[totals["test"].isin(list(tests))]
    cells = design.cells_from_variants(sorted(totals["variant"].unique()))
    others = tuple(sorted(set(totals["variant"]) - set(cells)))
    if not cells:
        raise StudyError("no cell of the attribution design among the measured variants (see quiz_study.design)")
    frame = totals[totals["variant"].isin(list(cells))].copy()
    frame[PROCESS_COLUMN] = frame["run_id"].astype(str) + "/" + frame["repetition"].astype(str)
    n_processes = frame[PROCESS_COLUMN].nunique()
    passed = frame[frame["outcome"] == "passed"].groupby("test")[PROCESS_COLUMN].nunique()
    keep = sorted(passed[passed == n_processes].index)
    if not keep:
        raise StudyError("no test passed in every process of the design's cells")
    excluded = tuple(sorted(set(frame["test"]) - set(keep)))
    frame = frame[frame["test"].isin(keep)]
    categories = frame.drop_duplicates("test").set_index("test")["category"].astype(str).to_dict()
    weighting = test_weights(categories, strata)
    weight = frame["test"].map(weighting.weights)
    frame = frame.assign(
        weighted_s=frame["seconds"] * weight,
        weighted_log_s=np.log(frame["seconds"].clip(lower=1e-9)) * weight,
        weight=weight,
    )
    keys = [PROCESS_COLUMN, "run_id", "repetition", "variant"] + (["block"] if "block" in frame.columns else [])
    values = (
        frame.groupby(keys, sort=True)
        .agg(
            n_tests=("test", "nunique"),
            sum_s=("weighted_s", "sum"),
            weighted_log=("weighted_log_s", "sum"),
            weight=("weight", "sum"),
        )
        .reset_index()
    )
    values["mean_log_s"] = values["weighted_log"] / values["weight"]
    if "block" not in values.columns:
        values["block"] = 0
    values["log_sum_s"] = np.log(values["sum_s"])
    values["cell"] = values["variant"].map(cells).astype(int)
    codes = design.factorial_cells().set_index("cell")
    for factor in design.FACTORS:
        values[factor] = values["cell"].map(codes[factor]).astype(int)
    columns = [
        PROCESS_COLUMN,
        "run_id",
        "repetition",
        "block",
        "variant",
        "cell",
        *design.FACTORS,
        "n_tests",
        "sum_s",
        "log_sum_s",
        "mean_log_s",
    ]
    return ProcessValues(
        frame=values[columns].sort_values(["cell", "repetition"]).reset_index(drop=True),
        tests=tuple(keep),
        weights=weighting.weights,
        excluded_tests=excluded,
        other_variants=others,
        weighting=weighting.description,
    )


# ---------------------------------------------------------------- the vectorised core


class CellFit(NamedTuple):
    """Cell means of process values and the pooled within-cell variance.

    `means` has shape (..., 12) (NaN for a cell without processes), `counts` (12,), `s2` (...)
    the residual variance of the saturated model, `df` its residual degrees of freedom
    (processes minus non-empty cells; 0: no interval).
    """

    means: np.ndarray
    counts: np.ndarray
    s2: np.ndarray
    df: int


def cell_fit(values: np.ndarray, cells: np.ndarray, *, n_cells: int = N_CELLS) -> CellFit:
    """Fit the saturated cell-means model to one or many sets of process values.

    Parameters
    ----------
    values : ndarray, shape (..., n)
        Process values (log scale); leading axes index independent data sets (simulations).
    cells : ndarray of int, shape (n,)
        Each process's cell.
    n_cells : int
        Cells in the design.

    Returns
    -------
    CellFit
        The OLS fit of ``values ~ C(cell)``: cell means, counts, residual variance and df.
    """
    values = np.asarray(values, dtype=float)
    cells = np.asarray(cells, dtype=int)
    counts = np.bincount(cells, minlength=n_cells).astype(float)
    indicator = np.eye(n_cells)[cells]
    with np.errstate(invalid="ignore", divide="ignore"):
        means = (values @ indicator) / counts
    residuals = values - np.nan_to_num(means)[..., cells]
    df = int(len(cells) - np.count_nonzero(counts))
    s2 = (residuals**2).sum(axis=-1) / df if df > 0 else np.full(values.shape[:-1], np.nan)
    return CellFit(means=means, counts=counts, s2=np.asarray(s2), df=df)


def contrast_intervals(fit: CellFit, weights: np.ndarray, *, alpha: float = 0.05) -> TInterval:
    """Linear contrasts ``weights @ means`` with t intervals on the fit's residual df.

    Parameters
    ----------
    fit : CellFit
    weights : ndarray, shape (m, 12)
        One contrast per row.
    alpha : float
        1 - confidence level.

    Returns
    -------
    TInterval
        Arrays of shape (..., m), t intervals on the fit's residual df (NaN without residual
        df) and two-sided p-values (vs 0); ``se = sqrt(s2 * sum_k w_k^2 / n_k)``.
    """
    weights = np.atleast_2d(np.asarray(weights, dtype=float))
    used = weights != 0
    with np.errstate(invalid="ignore", divide="ignore"):
        estimate = np.where(used.any(axis=1), np.nan_to_num(fit.means) @ weights.T, 0.0)
        missing = (used & (fit.counts == 0)).any(axis=1)
        estimate = np.where(missing, np.nan, estimate)
        variance_factor = (weights**2 / np.where(fit.counts > 0, fit.counts, np.inf)).sum(axis=1)
        se = np.sqrt(fit.s2[..., None] * variance_factor)
    return t_interval(estimate, se, fit.df, confidence_level=1 - alpha)


class ShareIntervals(NamedTuple):
    """Shares of the total log change per order and step, and their summaries per step.

    `share`, `low`, `high`: shape (..., orders, steps), delta-method t intervals per order;
    `mean`, `mean_low`, `mean_high`: the mean over orders (Shapley over the feasible orders),
    shape (..., steps); `range_low`, `range_high`: the smallest and largest share over the
    orders; `band_low`, `band_high`: the lowest lower and highest upper bound over the orders;
    `total`: the total log change (..., ) with its interval `total_low`, `total_high`.
    """

    share: np.ndarray
    low: np.ndarray
    high: np.ndarray
    mean: np.ndarray
    mean_low: np.ndarray
    mean_high: np.ndarray
    range_low: np.ndarray
    range_high: np.ndarray
    band_low: np.ndarray
    band_high: np.ndarray
    total: np.ndarray
    total_low: np.ndarray
    total_high: np.ndarray


def _ratio_intervals(fit: CellFit, numerators: np.ndarray, total: np.ndarray, *, alpha: float) -> TInterval:
    """Delta-method t intervals of (w @ means) / (t @ means) for each row w of `numerators`
    (shape (..., m, 12) or (m, 12))."""
    inverse_counts = 1.0 / np.where(fit.counts > 0, fit.counts, np.inf)
    means = np.nan_to_num(fit.means)
    c = np.einsum("...mk,...k->...m", numerators, means)
    t_value = means @ total
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = c / t_value[..., None]
        var_c = np.einsum("...mk,k,...mk->...m", numerators, inverse_counts, numerators)
        cov_ct = np.einsum("...mk,k,k->...m", numerators, inverse_counts, total)
        var_t = float(total**2 @ inverse_counts)
        variance = fit.s2[..., None] * (var_c - 2 * ratio * cov_ct + ratio**2 * var_t) / t_value[..., None] ** 2
        se = np.sqrt(np.maximum(variance, 0.0))
    return t_interval(ratio, se, fit.df, confidence_level=1 - alpha)


def share_intervals(fit: CellFit, path: design.PathContrasts, *, alpha: float = 0.05) -> ShareIntervals:
    """Each step's share of the total log change, per order and summarised (see the class).

    Parameters
    ----------
    fit : CellFit
        Needs every cell measured.
    path : design.PathContrasts
        The orders and their contrasts (`design.path_contrasts`).
    alpha : float
        1 - confidence level of every interval.

    Returns
    -------
    ShareIntervals

    References
    ----------
    Shapley, L. S. (1953), A value for n-person games; Grömping, U. (2007), Estimators of relative
    importance in linear regression based on variance decomposition, The American Statistician 61(2)
    (order dependence of sequential attributions).
    """
    orders, steps = path.weights.shape[:2]
    flat = path.weights.reshape(orders * steps, N_CELLS)
    per_order = _ratio_intervals(fit, flat, path.total, alpha=alpha)
    share, low, high = (
        a.reshape(*a.shape[:-1], orders, steps) for a in (per_order.estimate, per_order.ci_low, per_order.ci_high)
    )
    mean = _ratio_intervals(fit, path.weights.mean(axis=0), path.total, alpha=alpha)
    total = contrast_intervals(fit, path.total[None, :], alpha=alpha)
    return ShareIntervals(
        share=share,
        low=low,
        high=high,
        mean=mean.estimate,
        mean_low=mean.ci_low,
        mean_high=mean.ci_high,
        range_low=share.min(axis=-2),
        range_high=share.max(axis=-2),
        band_low=low.min(axis=-2),
        band_high=high.max(axis=-2),
        total=total.estimate[..., 0],
        total_low=total.ci_low[..., 0],
        total_high=total.ci_high[..., 0],
    )


# ---------------------------------------------------------------- fits of a run


@dataclass(frozen=True)
class FactorialFit:
    """The saturated model fitted to one form of the process values."""

    form: str
    fit: CellFit
    values: pd.DataFrame = None  # type: ignore[assignment]
    n_tests: int = 0

    @property
    def df(self) -> int:
        return self.fit.df

    @property
    def n_processes(self) -> int:
        return int(self.fit.counts.sum())

    @property
    def residual_sd_log(self) -> float:
        return float(np.sqrt(self.fit.s2))


def fit_factorial(values: ProcessValues, *, form: str = "time-weighted") -> FactorialFit:
    """Fit the saturated model to the process values of one form ("time-weighted" or "per-test")."""
    if form not in VALUE_COLUMNS:
        raise StudyError(f"unknown form {form!r}; choose one of {', '.join(FORMS)}")
    frame = values.frame
    fit = cell_fit(frame[VALUE_COLUMNS[form]].to_numpy(), frame["cell"].to_numpy())
    return FactorialFit(form=form, fit=fit, values=frame, n_tests=len(values.tests))


def _complete(fitted: FactorialFit) -> bool:
    return bool((fitted.fit.counts > 0).all())


def anova_table(fitted: FactorialFit) -> pd.DataFrame:
    """statsmodels' OLS of the process values on storage * reference_data * isolation_wiring
    (sum-to-zero coding), each term tested (type III F tests on the residual df of processes).

    Returns
    -------
    DataFrame
        form, term, df, sum_sq, F, p_value (the Residual row: its df and sum of squares).
    """
    import statsmodels.formula.api as smf
    from statsmodels.stats.anova import anova_lm

    frame = fitted.values.assign(y=fitted.values[VALUE_COLUMNS[fitted.form]])
    if fitted.df < 1 or not _complete(fitted):
        return pd.DataFrame(columns=["form", "term", "df", "sum_sq", "F", "p_value"])
    model = smf.ols("y ~ C(storage, Sum) * C(reference_data, Sum) * C(isolation_wiring, Sum)", data=frame).fit()
    table = anova_lm(model, typ=3).reset_index().rename(columns={"index": "term", "PR(>F)": "p_value"})
    table = table[table["term"] != "Intercept"]
    table["term"] = (
        table["term"].str.replace(r"C\((\w+), Sum\)", r"\1", regex=True).str.replace(":", " x ", regex=False)
    )
    return table.assign(form=fitted.form)[["form", "term", "df", "sum_sq", "F", "p_value"]].reset_index(drop=True)


def _t_rows(intervals: TInterval, index: int) -> dict[str, float]:
    estimate = float(intervals.estimate[index])
    return {
        "effect_log": estimate,
        "se_log": float(intervals.se[index]),
        "time_ratio": float(np.exp(estimate)),
        "ci_low": float(np.exp(intervals.ci_low[index])),
        "ci_high": float(np.exp(intervals.ci_high[index])),
        "p_value": float(intervals.p_value[index]),
    }


def effects_table(fitted: FactorialFit, *, alpha: float = 0.05) -> pd.DataFrame:
    """Main effects and interactions of the four steps as time ratios (< 1: faster).

    Returns
    -------
    DataFrame
        form, term, kind, definition, effect_log, se_log, time_ratio, ci_low, ci_high (of
        time_ratio), p_value, distinguishable_from_zero (False: the interval covers no change,
        which is "not shown to matter", not "no effect"), df.
    """
    effects = design.effect_contrasts()
    intervals = contrast_intervals(fitted.fit, np.vstack([e.weights for e in effects]), alpha=alpha)
    rows = []
    for i, effect in enumerate(effects):
        row = {"form": fitted.form, "term": effect.term, "kind": effect.kind, "definition": effect.definition}
        row |= _t_rows(intervals, i)
        row["distinguishable_from_zero"] = bool(row["p_value"] < alpha)
        rows.append(row)
    return pd.DataFrame(rows).assign(df=fitted.df)


def _share_rows(fitted: FactorialFit, *, merged: bool, alpha: float) -> tuple[list[dict], list[dict]]:
    path = design.path_contrasts(merged=merged)
    shares = share_intervals(fitted.fit, path, alpha=alpha)
    view = "isolation and wiring as one switch" if merged else "session wiring, then isolation"
    summary = []
    for j, step in enumerate(path.steps):
        low, high = design.STEP_LEVELS[step]
        contributions = path.weights[:, j, :] @ np.nan_to_num(fitted.fit.means)
        summary.append(
            {
                "form": fitted.form,
                "view": view,
                "switch": step,
                "level_from": low,
                "level_to": high,
                "n_orders": len(path.orders),
                "share_min": float(shares.range_low[j]),
                "share_max": float(shares.range_high[j]),
                "share_mean": float(shares.mean[j]),
                "share_mean_ci_low": float(shares.mean_low[j]),
                "share_mean_ci_high": float(shares.mean_high[j]),
                "band_low": float(shares.band_low[j]),
                "band_high": float(shares.band_high[j]),
                "time_ratio_min": float(np.exp(contributions.min())),
                "time_ratio_max": float(np.exp(contributions.max())),
            }
        )
    orders = []
    for o, order in enumerate(path.orders):
        for j, step in enumerate(path.steps):
            orders.append(
                {
                    "form": fitted.form,
                    "view": view,
                    "order": " -> ".join(order),
                    "position": order.index(step) + 1,
                    "switch": step,
                    "share": float(shares.share[o, j]),
                    "share_ci_low": float(shares.low[o, j]),
                    "share_ci_high": float(shares.high[o, j]),
                }
            )
    return summary, orders


class SharesTables(NamedTuple):
    """The shares of one form: per switch (`shares`) and per order and switch (`share_orders`)."""

    shares: pd.DataFrame
    share_orders: pd.DataFrame


def shares_tables(fitted: FactorialFit, *, alpha: float = 0.05) -> SharesTables:
    """The shares tables of one form, both views (four steps; isolation_wiring as one).

    Returns
    -------
    SharesTables
        shares: form, view, switch, level_from, level_to, n_orders, share_min, share_max (the
        range over the orders), share_mean with share_mean_ci_low/high, band_low, band_high (the
        interval band over the orders), time_ratio_min/max (the step's time ratio over the orders),
        df. share_orders: form, view, order, position, switch, share, share_ci_low, share_ci_high.
    """
    if not _complete(fitted):
        missing = [design.factorial_variants()[c] for c in np.flatnonzero(fitted.fit.counts == 0)]
        raise StudyError(f"shares need every cell of the design; not measured: {', '.join(missing)}")
    summary, orders = [], []
    for merged in (False, True):
        s, o = _share_rows(fitted, merged=merged, alpha=alpha)
        summary += s
        orders += o
    return SharesTables(
        shares=pd.DataFrame(summary).assign(df=fitted.df), share_orders=pd.DataFrame(orders).assign(df=fitted.df)
    )


def model_total(fitted: FactorialFit, *, alpha: float = 0.05) -> dict[str, float]:
    """The model's baseline -> transactional change: log change, speedup (baseline time /
    transactional time) and its interval."""
    path = design.path_contrasts()
    total = contrast_intervals(fitted.fit, path.total[None, :], alpha=alpha)
    estimate, low, high = (float(a[0]) for a in (total.estimate, total.ci_low, total.ci_high))
    return {
        "change_log": estimate,
        "speedup": float(np.exp(-estimate)),
        "speedup_ci_low": float(np.exp(-high)),
        "speedup_ci_high": float(np.exp(-low)),
        "df": float(fitted.df),
    }


def fit_summary(fitted: FactorialFit, values: ProcessValues) -> dict[str, object]:
    """One row describing a fit: counts, model, interval basis."""
    counts = fitted.fit.counts
    return {
        "form": fitted.form,
        "value": FORM_MEANING[fitted.form],
        "design": "storage x reference_data x isolation_wiring, 2 x 2 x 3 full factorial",
        "n_cells": int(np.count_nonzero(counts)),
        "processes_per_cell": f"{int(counts.min())}-{int(counts.max())}"
        if counts.min() != counts.max()
        else str(int(counts.min())),
        "n_processes": fitted.n_processes,
        "n_tests": len(values.tests),
        "excluded_tests": len(values.excluded_tests),
        "model": "OLS of one value per process on storage * reference_data * isolation_wiring (saturated: every interaction)",
        "residual_df": fitted.df,
        "residual_sd_log": fitted.residual_sd_log,
        "ci_basis": (
            f"between processes: t with {fitted.df} residual df (processes - cells)"
            if fitted.df > 0
            else "no interval: one process per cell leaves no residual degrees of freedom"
        ),
    }


# ---------------------------------------------------------------- the direct contrast


def direct_contrasts(
    timings: pd.DataFrame,
    *,
    tests: Sequence[str] = (),
    weights: Mapping[str, float] | None = None,
    alpha: float = 0.05,
    source: str = "main run",
) -> pd.DataFrame:
    """Baseline -> transactional as measured directly in a run of both presets (the main run):
    the speedup of each form over its processes (Welch t interval on the log scale), over every
    test that passed in all its processes and, when `tests` is given, over those tests only,
    weighted by `weights` (the factorial's, so that the row compares with the model's total).

    Returns
    -------
    DataFrame
        source, tests ("whole suite" / "the factorial's tests"), n_tests, form, n_base, n_cand,
        speedup, speedup_ci_low, speedup_ci_high, change_log.
    """
    totals = measured_totals(timings, variants=["baseline", "transactional"])
    if totals.empty or set(totals["variant"]) != {"baseline", "transactional"}:
        raise StudyError("the direct contrast needs valid processes of both presets")
    totals = totals.assign(process=totals["run_id"].astype(str) + "/" + totals["repetition"].astype(str))
    n_processes = totals["process"].nunique()
    passed = totals[totals["outcome"] == "passed"].groupby("test")["process"].nunique()
    everywhere = set(passed[passed == n_processes].index)
    selections = [("whole suite", sorted(everywhere))]
    if tests:
        selections.append(("the factorial's tests", sorted(everywhere & set(tests))))
    rows = []
    for label, chosen in selections:
        if not chosen:
            continue
        part = totals[totals["test"].isin(chosen)]
        weight = part["test"].map(weights or {}).fillna(1.0) if label != "whole suite" else 1.0
        part = part.assign(
            weighted_s=part["seconds"] * weight,
            weighted_log=np.log(part["seconds"].clip(lower=1e-9)) * weight,
            w=weight,
        )
        per_process = part.groupby(["variant", "process"]).agg(
            sum_s=("weighted_s", "sum"), weighted_log=("weighted_log", "sum"), w=("w", "sum")
        )
        per_process["mean_log_s"] = per_process["weighted_log"] / per_process["w"]
        for form in FORMS:
            values = per_process["sum_s"] if form == "time-weighted" else np.exp(per_process["mean_log_s"])
            base, cand = values.loc["baseline"].to_numpy(), values.loc["transactional"].to_numpy()
            ratio = welch_log_ratio(base, cand, confidence_level=1 - alpha)
            rows.append(
                {
                    "source": source,
                    "tests": label,
                    "n_tests": len(chosen),
                    "form": form,
                    "n_base": len(base),
                    "n_cand": len(cand),
                    "speedup": ratio.ratio,
                    "speedup_ci_low": ratio.ci_low,
                    "speedup_ci_high": ratio.ci_high,
                    "change_log": float(-np.log(ratio.ratio)),
                }
            )
    return pd.DataFrame(rows)


def totals_table(
    fits: Mapping[str, FactorialFit], *, direct: pd.DataFrame | None = None, alpha: float = 0.05
) -> pd.DataFrame:
    """The model's total beside the directly measured contrasts (one block per form).

    Returns
    -------
    DataFrame
        form, source, tests, n_tests, speedup, speedup_ci_low, speedup_ci_high, change_log, note.
    """
    rows = []
    for form, fitted in fits.items():
        total = model_total(fitted, alpha=alpha)
        rows.append(
            {
                "form": form,
                "source": "factorial model",
                "tests": "the factorial's tests",
                "n_tests": fitted.n_tests,
                "speedup": total["speedup"],
                "speedup_ci_low": total["speedup_ci_low"],
                "speedup_ci_high": total["speedup_ci_high"],
                "change_log": total["change_log"],
                "note": "saturated model: equals the factorial's own baseline and transactional cells' difference",
            }
        )
        if direct is not None and not direct.empty:
            for row in direct[direct["form"] == form].itertuples(index=False):
                rows.append(
                    {
                        "form": form,
                        "source": row.source,
                        "tests": row.tests,
                        "n_tests": row.n_tests,
                        "speedup": row.speedup,
                        "speedup_ci_low": row.speedup_ci_low,
                        "speedup_ci_high": row.speedup_ci_high,
                        "change_log": row.change_log,
                        "note": f"measured: {row.n_base} + {row.n_cand} fresh whole-suite processes, Welch t interval",
                    }
                )
    return pd.DataFrame(rows)
