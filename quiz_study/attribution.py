"""Attribution: how much of the speedup each architecture switch is responsible for.

Input: the tidy timings of a run whose variants are cells of a factorial design
(`quiz_study.design`). Model, fitted by OLS (statsmodels) on every test of every process::

    log(seconds of test i in process p) = alpha_i + sum_terms beta_term * x_term(cell of p) + error

`alpha_i` are per-test fixed effects (`C(test)`), so switches are compared within tests and a
switch's effect is a multiplicative change of per-test time averaged (geometrically) over the
tests. `x_term` are the 0/1 codes of `design.LEVELS` and their products (two-factor
interactions). Only tests that passed in every process enter (the four strict-xfail tests under
session_wiring=own do other work there), so every cell covers the same tests.

Effects are linear contrasts of the coefficients, which makes them independent of the coding:

* main effect of a switch = predicted log-time change from switching it, averaged over the 48
  runnable cells where both of its levels run (isolation at session_wiring=injected,
  session_wiring at isolation=recreate; see `quiz_study.design`). In a main-effects-only model this
  is its coefficient;
* waterfall = the path from baseline to transactional (password_hash and client stay at the
  presets' shared values). Each path switch's contribution is its Shapley value: its step
  averaged over the 12 orders of the four path switches that change session_wiring before
  isolation (the others pass through the refused rollback x own cell). It equals the main
  effect when the model is additive; an interaction goes to whichever of its two switches
  changes second, so it is split in proportion to the feasible orders (half each, except that
  isolation, always after session_wiring, is second to storage or reference_data in 2 of 3).
  The contributions add up to the model's total log change exactly; a share is a
  contribution over that total.

Uncertainty. Tests in one process share its conditions (load, CPU frequency), so the
covariance is cluster-robust by process (CR0 scaled by G / (G - p), G processes, p
process-level parameters) with t intervals on G - p degrees of freedom. When a design has too
few processes for that (G - p < `MIN_PROCESS_DF`, e.g. one process per cell of a small
fraction), the ordinary OLS covariance is used instead and every table says so
(`cov_type="nonrobust"`): its intervals then reflect test-to-test variation only, not
process-to-process variation. Shares get delta-method intervals. "Not distinguishable from
zero" means the interval covers no change; it does not mean the switch has no effect.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import permutations
from typing import Literal

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats as scipy_stats

from quiz_architectures.architectures import parse_spec
from quiz_study import design as design_mod
from quiz_study.design import FACTORS, LEVELS, OFF_PATH_FACTORS, PATH_FACTORS, TOGGLE_CONDITIONS, Design
from quiz_study.errors import StudyError
from suitebench.stats import holm_adjust, measured_totals

CovChoice = Literal["auto", "cluster", "nonrobust"]
# Fewest process-level residual degrees of freedom for cluster-robust intervals: below this the
# cluster covariance rests on a handful of residual sums and is itself too noisy to use.
MIN_PROCESS_DF = 4
# Interactions join the model ("auto") only with this many spare cells beyond its parameters.
MIN_SPARE_CELLS = 4
PROCESS_COLUMN = "process"


# ---------------------------------------------------------------- data


@dataclass(frozen=True)
class AttributionData:
    """Per-test log times of the factorial cells of one or more runs.

    `frame` columns: process (run_id/repetition), run_id, variant, test, category, seconds,
    log_s, and one 0/1 column per factor. `excluded_tests`: tests left out because they did not
    pass in every process; `other_variants`: measured labels that are not factorial cells.
    """

    frame: pd.DataFrame
    excluded_tests: tuple[str, ...]
    other_variants: tuple[str, ...]


def attribution_data(timings: pd.DataFrame) -> AttributionData:
    """The rows of `timings` that enter the attribution (see the module docstring).

    Parameters
    ----------
    timings : DataFrame
        Tidy timings (timings.csv) of one or more runs.

    Returns
    -------
    AttributionData

    Raises
    ------
    StudyError
        No factorial cell, or no test that passed in every process.
    """
    totals = measured_totals(timings)
    cells: dict[str, dict[str, int]] = {}
    others = []
    for label in sorted(totals["variant"].unique()):
        codes = design_mod.code_switches(parse_spec(label))
        if codes is None:
            others.append(label)
        else:
            cells[label] = codes
    if not cells:
        raise StudyError("no factorial cell among the measured variants (see quiz_study.design)")
    frame = totals[totals["variant"].isin(list(cells))].copy()
    frame[PROCESS_COLUMN] = frame["run_id"].astype(str) + "/" + frame["repetition"].astype(str)
    n_processes = frame[PROCESS_COLUMN].nunique()
    passed = frame[frame["outcome"] == "passed"].groupby("test")[PROCESS_COLUMN].nunique()
    keep = sorted(passed[passed == n_processes].index)
    excluded = sorted(set(frame["test"]) - set(keep))
    if not keep:
        raise StudyError("no test passed in every process of the factorial cells")
    frame = frame[frame["test"].isin(keep)].copy()
    frame["log_s"] = np.log(frame["seconds"].clip(lower=1e-9))
    for factor in FACTORS:
        frame[factor] = frame["variant"].map(lambda label, factor=factor: cells[label][factor]).astype(int)
    columns = [PROCESS_COLUMN, "run_id", "repetition", "variant", "test", "category", "seconds", "log_s", *FACTORS]
    return AttributionData(
        frame=frame[columns].reset_index(drop=True), excluded_tests=tuple(excluded), other_variants=tuple(others)
    )


# ---------------------------------------------------------------- fit


@dataclass(frozen=True)
class AttributionFit:
    """An OLS fit of log per-test time on the switches (test fixed effects absorbed).

    `params` / `cov`: the switch terms' coefficients (0/1 coding, log scale) and covariance;
    `df`: degrees of freedom of the t intervals; `cov_type`: "cluster" (by process) or
    "nonrobust"; `not_estimable`: switches that do not vary in the data (their effects are NaN).
    """

    terms: tuple[str, ...]
    params: pd.Series
    cov: pd.DataFrame
    df: float
    cov_type: str
    n_obs: int
    n_tests: int
    n_processes: int
    n_cells: int
    residual_sd_log: float
    not_estimable: tuple[str, ...]
    excluded_tests: tuple[str, ...]
    design: Design

    @property
    def ci_basis(self) -> str:
        if self.cov_type == "cluster":
            return f"between processes: cluster-robust by process, t with {self.df:g} df"
        return (
            f"within processes only (too few processes for a cluster-robust interval): OLS, t with "
            f"{self.df:g} df; process-to-process variation is not in these intervals"
        )

    def contrast(self, weights: Mapping[str, float]) -> tuple[float, float]:
        """Estimate and standard error of sum(weights[term] * beta[term]); NaN when a term with a
        non-zero weight is not in the model."""
        vector = np.zeros(len(self.terms))
        for term, weight in weights.items():
            if abs(weight) < 1e-12:
                continue
            if term not in self.terms:
                return float("nan"), float("nan")
            vector[self.terms.index(term)] = weight
        estimate = float(vector @ self.params.to_numpy())
        variance = float(vector @ self.cov.to_numpy() @ vector)
        return estimate, float(np.sqrt(max(variance, 0.0)))


def _term_columns(frame: pd.DataFrame, terms: Sequence[str]) -> np.ndarray:
    return design_mod.model_matrix(frame, terms)[:, 1:]


def _choose_terms(cells: pd.DataFrame, interactions: str | Sequence[str]) -> tuple[list[str], list[str]]:
    """Main effects that vary, then the requested interactions that are estimable."""
    mains = [f for f in FACTORS if cells[f].nunique() > 1]
    not_estimable = [f for f in FACTORS if f not in mains]
    candidates = design_mod.estimable_interactions(mains)
    if isinstance(interactions, str):
        if interactions == "none":
            wanted: list[str] = []
        elif interactions == "auto":
            x = design_mod.model_matrix(cells, [*mains, *candidates])
            full_rank = np.linalg.matrix_rank(x) == x.shape[1]
            wanted = candidates if full_rank and len(cells) >= x.shape[1] + MIN_SPARE_CELLS else []
        else:
            raise StudyError(f"interactions must be 'auto', 'none' or a list of terms, got {interactions!r}")
    else:
        wanted = [design_mod.interaction_name(*design_mod.split_term(t)) for t in interactions]
        unknown = [t for t in wanted if t not in candidates]
        if unknown:
            raise StudyError(f"interaction {unknown[0]!r} is not estimable here; estimable: {', '.join(candidates)}")
    terms = [*mains, *wanted]
    x = design_mod.model_matrix(cells, terms)
    if np.linalg.matrix_rank(x) < x.shape[1]:
        raise StudyError(f"the terms {', '.join(terms)} are not all estimable from the {len(cells)} measured cells")
    return terms, not_estimable


def fit_attribution(
    data: AttributionData, *, interactions: str | Sequence[str] = "auto", cov: CovChoice = "auto"
) -> AttributionFit:
    """Fit the model of the module docstring.

    Parameters
    ----------
    data : AttributionData
        From :func:`attribution_data`.
    interactions : "auto", "none" or list of str
        Two-factor interactions to include. "auto": all estimable ones when the cells allow
        them with `MIN_SPARE_CELLS` to spare (the full factorial), else none.
    cov : "auto", "cluster" or "nonrobust"
        "auto": cluster-robust by process when G - p >= `MIN_PROCESS_DF`, else nonrobust.

    Returns
    -------
    AttributionFit
    """
    frame = data.frame
    cells = frame.drop_duplicates("variant")[[*FACTORS, "variant"]].reset_index(drop=True)
    terms, not_estimable = _choose_terms(cells, interactions)
    if not terms:
        raise StudyError("no switch varies among the measured cells")
    tests = pd.Categorical(frame["test"])
    dummies = np.eye(len(tests.categories))[tests.codes]
    x = np.column_stack([dummies, _term_columns(frame, terms)])
    y = frame["log_s"].to_numpy()
    n_tests = len(tests.categories)
    n_processes = frame[PROCESS_COLUMN].nunique()
    process_params = 1 + len(terms)
    process_df = n_processes - process_params
    if cov == "auto":
        cov = "cluster" if process_df >= MIN_PROCESS_DF else "nonrobust"
    if cov not in ("cluster", "nonrobust"):
        raise StudyError(f"cov must be 'auto', 'cluster' or 'nonrobust', got {cov!r}")
    model = sm.OLS(y, x)
    if cov == "cluster":
        if process_df < 1:
            raise StudyError(
                f"cluster-robust intervals need more processes than process-level parameters "
                f"({n_processes} processes, {process_params} parameters)"
            )
        groups = pd.Categorical(frame[PROCESS_COLUMN]).codes
        result = model.fit(cov_type="cluster", cov_kwds={"groups": groups, "use_correction": False})
        # CR0 -> unbiased for balanced designs with process-level errors (cf. HC1 at process level).
        full_cov = np.asarray(result.cov_params()) * n_processes / process_df
        df = float(process_df)
    else:
        result = model.fit()
        full_cov = np.asarray(result.cov_params())
        df = float(result.df_resid)
        if df < 1:
            raise StudyError("no residual degrees of freedom: measure more tests, cells or repetitions")
    block = slice(n_tests, n_tests + len(terms))
    params = pd.Series(np.asarray(result.params)[block], index=terms)
    covariance = pd.DataFrame(full_cov[block, block], index=terms, columns=terms)
    return AttributionFit(
        terms=tuple(terms),
        params=params,
        cov=covariance,
        df=df,
        cov_type=cov,
        n_obs=len(frame),
        n_tests=n_tests,
        n_processes=n_processes,
        n_cells=len(cells),
        residual_sd_log=float(np.sqrt(result.scale)),
        not_estimable=tuple(not_estimable),
        excluded_tests=data.excluded_tests,
        design=design_mod.design_for_variants(cells["variant"]),
    )


# ---------------------------------------------------------------- contrasts


def _row(codes: Mapping[str, int], terms: Sequence[str]) -> np.ndarray:
    return np.array([np.prod([codes[f] for f in design_mod.split_term(term)]) for term in terms], dtype=float)


def main_effect_weights(factor: str, terms: Sequence[str]) -> dict[str, float]:
    """Contrast weights of a switch's main effect: the mean, over the runnable cells where both of
    its levels run, of the predicted log-time change from level 0 to level 1."""
    grid = design_mod.runnable_cells()
    keep = grid[factor] == 0
    for other, value in TOGGLE_CONDITIONS.get(factor, {}).items():
        keep &= grid[other] == value
    low = grid[keep]
    high = low.assign(**{factor: 1})
    differences = design_mod.model_matrix(high, terms)[:, 1:] - design_mod.model_matrix(low, terms)[:, 1:]
    return dict(zip(terms, differences.mean(axis=0)))


def path_orders(path: Sequence[str] = PATH_FACTORS) -> list[tuple[str, ...]]:
    """Orders of the path switches that never pass through a refused cell (wiring before isolation)."""
    orders = []
    for order in permutations(path):
        if (
            "isolation" in order
            and "session_wiring" in order
            and order.index("isolation") < order.index("session_wiring")
        ):
            continue
        orders.append(order)
    return orders


def path_contribution_weights(terms: Sequence[str], path: Sequence[str] = PATH_FACTORS) -> dict[str, dict[str, float]]:
    """Shapley contrast weights: per path switch, its step averaged over `path_orders`, from the
    baseline cell (off-path switches at their shared preset values, code 0)."""
    start = dict(design_mod.code_switches(parse_spec("baseline")))
    totals = {factor: np.zeros(len(terms)) for factor in path}
    orders = path_orders(path)
    for order in orders:
        codes = dict(start)
        for factor in order:
            before = _row(codes, terms)
            codes[factor] = 1
            totals[factor] += _row(codes, terms) - before
    return {factor: dict(zip(terms, totals[factor] / len(orders))) for factor in path}


# ---------------------------------------------------------------- tables


def _t_interval(estimate: float, se: float, *, df: float, alpha: float) -> tuple[float, float, float]:
    if not np.isfinite(estimate) or not np.isfinite(se):
        return float("nan"), float("nan"), float("nan")
    quantile = scipy_stats.t.ppf(1 - alpha / 2, df)
    if se == 0:
        return estimate, estimate, float("nan")
    p_value = float(2 * scipy_stats.t.sf(abs(estimate / se), df))
    return estimate - quantile * se, estimate + quantile * se, p_value


def _definition(factor: str) -> str:
    low, high = LEVELS[factor]
    where = {"isolation": " at session_wiring=injected", "session_wiring": " at isolation=recreate"}.get(factor, "")
    return f"{low} -> {high}{where}, averaged over the runnable cells"


def effects_table(fit: AttributionFit, *, alpha: float = 0.05) -> pd.DataFrame:
    """One row per switch: its main effect on per-test time with a (1 - alpha) interval.

    Returns
    -------
    DataFrame
        switch, on_path, level_from, level_to, definition, estimable, effect_log, se_log,
        time_ratio (per-test time at level_to / at level_from; < 1 = faster), ci_low, ci_high (of
        time_ratio), p_value, distinguishable_from_zero (False = the interval covers no change:
        not shown to matter, which is not "no effect"), flag, cov_type, df, n_processes,
        n_tests, n_cells, design.
    """
    rows = []
    for factor in FACTORS:
        estimable = factor in fit.terms
        estimate, se = fit.contrast(main_effect_weights(factor, fit.terms)) if estimable else (np.nan, np.nan)
        low, high, p_value = _t_interval(estimate, se, df=fit.df, alpha=alpha)
        distinguishable = bool(estimable and p_value < alpha)
        if not estimable:
            flag = "not estimated: this switch does not vary in the measured cells"
        elif not distinguishable:
            flag = "not distinguishable from zero"
        else:
            flag = ""
        rows.append(
            {
                "switch": factor,
                "on_path": factor in PATH_FACTORS,
                "level_from": LEVELS[factor][0],
                "level_to": LEVELS[factor][1],
                "definition": _definition(factor),
                "estimable": estimable,
                "effect_log": estimate,
                "se_log": se,
                "time_ratio": float(np.exp(estimate)),
                "ci_low": float(np.exp(low)),
                "ci_high": float(np.exp(high)),
                "p_value": p_value,
                "distinguishable_from_zero": distinguishable,
                "flag": flag,
            }
        )
    return _annotate(pd.DataFrame(rows), fit)


def interactions_table(fit: AttributionFit, *, alpha: float = 0.05) -> pd.DataFrame:
    """The model's two-factor interactions (empty when it has none).

    `time_ratio` is the extra multiplicative change when both switches are at level 1, beyond
    the product of their separate changes; `p_value_holm` is Holm-adjusted over the rows and
    `distinguishable_from_zero` uses it (the interactions that matter).
    """
    rows = []
    for term in fit.terms:
        if ":" not in term:
            continue
        estimate, se = fit.contrast({term: 1.0})
        low, high, p_value = _t_interval(estimate, se, df=fit.df, alpha=alpha)
        rows.append(
            {
                "interaction": term,
                "effect_log": estimate,
                "se_log": se,
                "time_ratio": float(np.exp(estimate)),
                "ci_low": float(np.exp(low)),
                "ci_high": float(np.exp(high)),
                "p_value": p_value,
            }
        )
    columns = ["interaction", "effect_log", "se_log", "time_ratio", "ci_low", "ci_high", "p_value"]
    frame = pd.DataFrame(rows, columns=columns)
    frame["p_value_holm"] = holm_adjust(frame["p_value"].to_numpy()) if len(frame) else pd.Series(dtype=float)
    frame["distinguishable_from_zero"] = frame["p_value_holm"] < alpha
    return _annotate(frame, fit)


def waterfall_table(fit: AttributionFit, *, alpha: float = 0.05) -> pd.DataFrame:
    """Baseline -> transactional as steps: each path switch's contribution and share, with intervals.

    Returns
    -------
    DataFrame
        One row per path switch (in `PATH_FACTORS` order) and a final `total` row: step, switch,
        level_from, level_to, change_log, time_ratio (< 1 = this switch makes tests faster),
        ci_low, ci_high (of time_ratio), share (of the total log change; shares add up to 1),
        share_ci_low, share_ci_high (delta method), distinguishable_from_zero, flag,
        cumulative_time_ratio (model time relative to baseline after this step), speedup
        (total row: baseline time / transactional time, with speedup_ci_low/high), allocation.
    """
    missing = [f for f in PATH_FACTORS if f not in fit.terms]
    if missing:
        raise StudyError(f"the waterfall needs every path switch to vary; not estimable: {', '.join(missing)}")
    weights = path_contribution_weights(fit.terms)
    vectors = {f: np.array([weights[f][t] for t in fit.terms]) for f in PATH_FACTORS}
    total_vector = sum(vectors.values())
    beta = fit.params.to_numpy()
    cov = fit.cov.to_numpy()
    total = float(total_vector @ beta)
    quantile = scipy_stats.t.ppf(1 - alpha / 2, fit.df)
    rows = []
    cumulative = 0.0
    for step, factor in enumerate(PATH_FACTORS, start=1):
        vector = vectors[factor]
        estimate = float(vector @ beta)
        se = float(np.sqrt(max(vector @ cov @ vector, 0.0)))
        low, high, p_value = _t_interval(estimate, se, df=fit.df, alpha=alpha)
        gradient = (vector * total - total_vector * estimate) / total**2
        share_se = float(np.sqrt(max(gradient @ cov @ gradient, 0.0)))
        share = estimate / total
        cumulative += estimate
        distinguishable = bool(p_value < alpha)
        rows.append(
            {
                "step": str(step),
                "switch": factor,
                "level_from": LEVELS[factor][0],
                "level_to": LEVELS[factor][1],
                "change_log": estimate,
                "se_log": se,
                "time_ratio": float(np.exp(estimate)),
                "ci_low": float(np.exp(low)),
                "ci_high": float(np.exp(high)),
                "p_value": p_value,
                "share": share,
                "share_ci_low": share - quantile * share_se,
                "share_ci_high": share + quantile * share_se,
                "distinguishable_from_zero": distinguishable,
                "flag": "" if distinguishable else "not distinguishable from zero",
                "cumulative_time_ratio": float(np.exp(cumulative)),
            }
        )
    total_se = float(np.sqrt(max(total_vector @ cov @ total_vector, 0.0)))
    low, high, p_value = _t_interval(total, total_se, df=fit.df, alpha=alpha)
    rows.append(
        {
            "step": "total",
            "switch": "baseline -> transactional",
            "level_from": "baseline",
            "level_to": "transactional",
            "change_log": total,
            "se_log": total_se,
            "time_ratio": float(np.exp(total)),
            "ci_low": float(np.exp(low)),
            "ci_high": float(np.exp(high)),
            "p_value": p_value,
            "share": 1.0,
            "share_ci_low": 1.0,
            "share_ci_high": 1.0,
            "distinguishable_from_zero": bool(p_value < alpha),
            "flag": "" if p_value < alpha else "not distinguishable from zero",
            "cumulative_time_ratio": float(np.exp(total)),
        }
    )
    frame = pd.DataFrame(rows)
    frame["speedup"] = 1.0 / frame["time_ratio"]
    frame["speedup_ci_low"] = 1.0 / frame["ci_high"]
    frame["speedup_ci_high"] = 1.0 / frame["ci_low"]
    has_interactions = any(":" in t for t in fit.terms)
    frame["allocation"] = (
        "Shapley: step averaged over the 12 orders with session_wiring before isolation"
        if has_interactions
        else "additive model: each step is the switch's main effect (order does not matter)"
    )
    return _annotate(frame, fit)


def _annotate(frame: pd.DataFrame, fit: AttributionFit) -> pd.DataFrame:
    return frame.assign(
        cov_type=fit.cov_type,
        df=fit.df,
        n_processes=fit.n_processes,
        n_tests=fit.n_tests,
        n_cells=fit.n_cells,
        design=fit.design.name,
    )


def off_path_effects(effects: pd.DataFrame) -> pd.DataFrame:
    """The rows of `effects_table` for the switches both presets share (password_hash, client)."""
    return effects[effects["switch"].isin(OFF_PATH_FACTORS)].reset_index(drop=True)


def fit_summary(fit: AttributionFit) -> pd.DataFrame:
    """One row describing the fit: design, aliasing statement, model terms, interval basis, counts."""
    return pd.DataFrame(
        [
            {
                "design": fit.design.name,
                "n_cells": fit.n_cells,
                "n_processes": fit.n_processes,
                "n_tests": fit.n_tests,
                "n_obs": fit.n_obs,
                "terms": " + ".join(fit.terms),
                "not_estimable": ", ".join(fit.not_estimable),
                "excluded_tests": len(fit.excluded_tests),
                "cov_type": fit.cov_type,
                "df": fit.df,
                "ci_basis": fit.ci_basis,
                "residual_sd_log": fit.residual_sd_log,
                "aliasing": fit.design.aliasing,
                "model": "log(seconds) ~ C(test) + " + " + ".join(fit.terms) + " (OLS, 0/1 coding)",
            }
        ]
    )


def alias_table(fit: AttributionFit) -> pd.DataFrame:
    """The measured design's alias matrix in long form: term, aliased_with, coefficient (non-zero only)."""
    alias = fit.design.alias
    if alias.empty or alias.shape[1] == 0:
        return pd.DataFrame(columns=["term", "aliased_with", "coefficient"])
    long = alias.stack().rename("coefficient").reset_index()
    long.columns = ["term", "aliased_with", "coefficient"]
    return long[long["coefficient"].abs() > 1e-9].reset_index(drop=True)
