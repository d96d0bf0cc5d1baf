"""Experimental designs over the architecture switches: which cells to run, and what they alias.

The six categorical switches that separate the two presets (or could) are the factors, each
coded 0 at its baseline level and 1 at the other level (`LEVELS`); password_hash and client are
equal in both presets, so their 1 is the alternative (production cost, httpx).

**The refused cells.** isolation=rollback with session_wiring=own cannot run (the code's own
sessions live outside the test's outer transaction), so of the 2^6 = 64 cells 48 run. Together,
isolation and session_wiring form one three-level factor (recreate+own, recreate+injected,
rollback+injected): their interaction is not estimable in any design, because the column
isolation x session_wiring equals the isolation column in every runnable cell. Main effects
are therefore *defined* on the runnable grid:

* isolation: rollback vs recreate where both run, i.e. at session_wiring=injected;
* session_wiring: injected vs own where both run, i.e. at isolation=recreate;
* every other switch: its two levels, averaged over the 48 runnable cells.

With those definitions every other main effect and two-factor interaction is estimable in the
full 48-cell factorial (`full_factorial`). No regular 2^(k-p) fraction can avoid the refused
cells without aliasing isolation with session_wiring completely (the word isolation x wiring
would have to be in the defining relation), so the fractions here are D-optimal subsets of the
48 runnable cells for the main-effects model (`d_optimal_fraction`); their aliasing is not a
defining relation but an alias matrix, computed and stated for every design (`alias_matrix`).
`path_design` is the one-factor-at-a-time path from baseline to transactional (the smoke
design): its "main effects" are the conditional effects at the point of the path where each
switch changes.

The alias matrix uses centred coding over the runnable grid (each factor column minus its mean
over the 48 cells; interaction columns are products of centred columns), so that in the full
factorial it is zero, and an entry A[m, i] reads: the estimate of main effect m is biased by
A[m, i] times interaction i when i is left out of the model.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import combinations, product

import numpy as np
import pandas as pd

from quiz_architectures.architectures import BASELINE, PRESETS, TRANSACTIONAL, Switches, all_combinations, parse_spec
from quiz_study.errors import USER_ERRORS, StudyError

FACTORS: tuple[str, ...] = ("storage", "isolation", "reference_data", "session_wiring", "password_hash", "client")
# (level coded 0, level coded 1): 0 is the baseline preset's value.
LEVELS: dict[str, tuple[str, str]] = {
    "storage": ("disk", "memory"),
    "isolation": ("recreate", "rollback"),
    "reference_data": ("per_test", "per_session"),
    "session_wiring": ("own", "injected"),
    "password_hash": ("test", "production"),
    "client": ("testclient", "httpx"),
}
# The switches the presets differ in, in the waterfall's display order (wiring must change
# before isolation: rollback with own wiring is refused).
PATH_FACTORS: tuple[str, ...] = ("storage", "reference_data", "session_wiring", "isolation")
OFF_PATH_FACTORS: tuple[str, ...] = ("password_hash", "client")
# The one pair whose interaction no design can estimate (see the module docstring).
INESTIMABLE_PAIR: tuple[str, str] = ("isolation", "session_wiring")
# Toggling a factor is only possible where both cells run: the condition on the others.
TOGGLE_CONDITIONS: dict[str, dict[str, int]] = {"isolation": {"session_wiring": 1}, "session_wiring": {"isolation": 0}}
# Exchange-algorithm starts for D-optimal fractions: 48 candidates are few, so 40 random starts
# find the same optimum for every seed we tried (tests/test_design.py checks two seeds).
DEFAULT_STARTS = 40


def interaction_name(a: str, b: str) -> str:
    """`a:b` with the factors in `FACTORS` order."""
    first, second = sorted((a, b), key=FACTORS.index)
    return f"{first}:{second}"


def split_term(term: str) -> tuple[str, ...]:
    """The factors of a term: `("storage",)` or `("storage", "client")`."""
    factors = tuple(term.split(":"))
    unknown = [f for f in factors if f not in FACTORS]
    if unknown:
        raise StudyError(f"unknown factor {unknown[0]!r} in term {term!r}; factors are {', '.join(FACTORS)}")
    return factors


def estimable_interactions(factors: Iterable[str] = FACTORS) -> list[str]:
    """Every two-factor interaction among `factors` except isolation:session_wiring."""
    chosen = [f for f in FACTORS if f in set(factors)]
    skip = interaction_name(*INESTIMABLE_PAIR)
    return [name for a, b in combinations(chosen, 2) if (name := interaction_name(a, b)) != skip]


# ---------------------------------------------------------------- cells


def code_switches(switches: Switches) -> dict[str, int] | None:
    """The 0/1 codes of a switches value, or None when it is not a factorial cell (another
    storage or isolation such as postgres, truncate or none, or a scale knob set)."""
    if switches.extra_tables or switches.reference_rows or switches.copies != 1:
        return None
    codes: dict[str, int] = {}
    for factor in FACTORS:
        value = getattr(switches, factor)
        if value not in LEVELS[factor]:
            return None
        codes[factor] = LEVELS[factor].index(value)
    return codes


def switches_of(codes: Mapping[str, int]) -> Switches:
    """The Switches of a cell given as 0/1 codes (StudyError for a refused cell)."""
    return Switches(**{factor: LEVELS[factor][int(codes[factor])] for factor in FACTORS})


def candidate_cells() -> pd.DataFrame:
    """All 64 cells: one column per factor (0/1), `variant` (the Switches label, "" if refused),
    `runnable` and `refusal_reason`."""
    return _candidate_cells().copy()


@lru_cache(maxsize=1)
def _candidate_cells() -> pd.DataFrame:
    rows = []
    for values in product((0, 1), repeat=len(FACTORS)):
        codes = dict(zip(FACTORS, values))
        reason = _refusals().get(tuple(LEVELS[factor][code] for factor, code in codes.items()))
        rows.append(
            {
                **codes,
                "variant": "" if reason else switches_of(codes).label,
                "runnable": reason is None,
                "refusal_reason": reason or "",
            }
        )
    return pd.DataFrame(rows)


@lru_cache(maxsize=1)
def _refusals() -> dict[tuple[str, ...], str]:
    """Refusal reasons of the refused assignments (architectures.all_combinations), keyed by the
    factors' values in FACTORS order."""
    return {
        tuple(assignment[factor] for factor in FACTORS): reason
        for assignment, reason in all_combinations()
        if reason and assignment["isolation"] != "none"
    }


def runnable_cells() -> pd.DataFrame:
    """The 48 cells that run, in `candidate_cells` order, index reset."""
    cells = candidate_cells()
    return cells[cells["runnable"]].reset_index(drop=True)


def cells_from_variants(variants: Iterable[str]) -> pd.DataFrame:
    """Cells (factor codes + `variant`) of the given labels that are factorial cells; others skipped."""
    rows = []
    for label in variants:
        codes = code_switches(parse_spec(label))
        if codes is not None:
            rows.append({**codes, "variant": label})
    return pd.DataFrame(rows, columns=[*FACTORS, "variant"])


# ---------------------------------------------------------------- model matrices


def model_matrix(cells: pd.DataFrame, terms: Sequence[str], *, centre: pd.DataFrame | None = None) -> np.ndarray:
    """Rows = cells, columns = intercept then `terms` (main effects and `a:b` products).

    Parameters
    ----------
    cells : DataFrame
        One 0/1 column per factor.
    terms : sequence of str
        Main effects (`storage`) and two-factor interactions (`storage:client`).
    centre : DataFrame, optional
        Cells whose factor means are subtracted before products are taken (centred coding);
        None keeps the 0/1 coding.
    """
    means = {f: float(centre[f].mean()) for f in FACTORS} if centre is not None else dict.fromkeys(FACTORS, 0.0)
    columns = [np.ones(len(cells))]
    for term in terms:
        column = np.ones(len(cells))
        for factor in split_term(term):
            column = column * (cells[factor].to_numpy(dtype=float) - means[factor])
        columns.append(column)
    return np.column_stack(columns)


def _logdet(x: np.ndarray) -> float:
    sign, logdet = np.linalg.slogdet(x.T @ x)
    return float(logdet) if sign > 0 else -np.inf


def _logdet_information(information: np.ndarray) -> float:
    sign, logdet = np.linalg.slogdet(information)
    return float(logdet) if sign > 0 else -np.inf


def alias_matrix(cells: pd.DataFrame, *, estimated: Sequence[str], omitted: Sequence[str]) -> pd.DataFrame:
    """A = (X1'X1)^-1 X1'X2 in centred coding: rows = estimated terms, columns = omitted terms.

    Parameters
    ----------
    cells : DataFrame
        The design's cells (0/1 factor columns).
    estimated : sequence of str
        Terms in the fitted model (intercept implied, not shown).
    omitted : sequence of str
        Terms left out (typically two-factor interactions).

    Returns
    -------
    DataFrame
        E[estimate of row term] = row term + sum over columns of A * column term. Zero rows mean
        the estimate is clear of every omitted term. StudyError when `estimated` is not
        estimable in these cells.

    References
    ----------
    Montgomery, D. C. (2017), Design and Analysis of Experiments, 9th ed., section 10.3 (the alias matrix).
    """
    grid = runnable_cells()
    x1 = model_matrix(cells, list(estimated), centre=grid)
    if np.linalg.matrix_rank(x1) < x1.shape[1]:
        raise StudyError(f"the terms {', '.join(estimated)} are not all estimable in this design")
    if not omitted:
        return pd.DataFrame(index=list(estimated))
    x2 = model_matrix(cells, list(omitted), centre=grid)[:, 1:]
    a = np.linalg.solve(x1.T @ x1, x1.T @ x2)[1:]
    a[np.abs(a) < 1e-10] = 0.0
    return pd.DataFrame(a, index=list(estimated), columns=list(omitted))


def d_efficiency(cells: pd.DataFrame, terms: Sequence[str]) -> float:
    """det(X'X / n)^(1/p) of the design relative to the full 48-cell factorial (1 = as informative
    per run as the full factorial), centred coding."""
    grid = runnable_cells()
    x = model_matrix(cells, terms, centre=grid)
    full = model_matrix(grid, terms, centre=grid)
    p = x.shape[1]
    own = _logdet(x / np.sqrt(len(cells)))
    reference = _logdet(full / np.sqrt(len(grid)))
    return float(np.exp((own - reference) / p)) if np.isfinite(own) else 0.0


# ---------------------------------------------------------------- designs


@dataclass(frozen=True)
class Design:
    """A set of cells to run, the model terms it estimates and what those estimates alias.

    `cells` has one 0/1 column per factor plus `variant` (the label the runner stores).
    `aliasing` is the plain-language statement; `alias` the matrix behind it (see `alias_matrix`).
    """

    name: str
    cells: pd.DataFrame
    terms: tuple[str, ...]
    aliasing: str
    alias: pd.DataFrame
    d_efficiency: float

    @property
    def variants(self) -> list[str]:
        return list(self.cells["variant"])

    @property
    def n_cells(self) -> int:
        return len(self.cells)

    def table(self) -> pd.DataFrame:
        """The cells with their levels spelled out (one row per cell)."""
        out = self.cells[["variant"]].copy()
        for factor in FACTORS:
            out[factor] = [LEVELS[factor][int(code)] for code in self.cells[factor]]
        return out.assign(design=self.name)


def _varying_factors(cells: pd.DataFrame) -> list[str]:
    return [f for f in FACTORS if cells[f].nunique() > 1]


def _largest_aliases(alias: pd.DataFrame, *, limit: int = 3) -> list[str]:
    parts = []
    for term, row in alias.iterrows():
        big = row[row.abs() > 1e-9].sort_values(key=np.abs, ascending=False)
        if len(big):
            shown = ", ".join(f"{name} ({value:+.2f})" for name, value in big.head(limit).items())
            more = f" and {len(big) - limit} more" if len(big) > limit else ""
            parts.append(f"{term} with {shown}{more}")
    return parts


def _with_variants(cells: pd.DataFrame) -> pd.DataFrame:
    cells = cells[list(FACTORS)].astype(int).reset_index(drop=True)
    return cells.assign(variant=[switches_of(row).label for row in cells.to_dict("records")])


def full_factorial() -> Design:
    """All 48 runnable cells; terms: every main effect and every estimable two-factor interaction."""
    cells = _with_variants(runnable_cells())
    terms = (*FACTORS, *estimable_interactions())
    statement = (
        "Full factorial over the 48 runnable cells of 2^6 = 64: the 16 cells with isolation=rollback "
        "and session_wiring=own are refused, so the isolation x session_wiring interaction is not "
        "estimable; the isolation effect is defined at session_wiring=injected and the "
        "session_wiring effect at isolation=recreate, every other main effect averages over the 48 "
        "cells. All six main effects and the other 14 two-factor interactions are estimable and "
        "mutually unaliased; three-factor and higher interactions are not modelled (they go into "
        "the residual)."
    )
    return Design(
        name="full",
        cells=cells,
        terms=terms,
        aliasing=statement,
        alias=alias_matrix(cells, estimated=terms, omitted=()),
        d_efficiency=1.0,
    )


def _design_cells(indices: Sequence[int], grid: pd.DataFrame) -> pd.DataFrame:
    return _with_variants(grid.iloc[sorted(indices)])


def d_optimal_fraction(
    n_runs: int, *, seed: int = 0, include: Sequence[str] = ("baseline", "transactional"), starts: int = DEFAULT_STARTS
) -> Design:
    """A D-optimal `n_runs`-cell subset of the 48 runnable cells for the main-effects model.

    Parameters
    ----------
    n_runs : int
        Cells in the fraction, from 8 (7 parameters + 1 residual degree of freedom) to 48.
    seed : int
        Seeds `np.random.default_rng` for the random starts of the exchange algorithm.
    include : sequence of str
        Preset names forced into the fraction (both by default, so the sweep's zero points and
        a direct baseline/transactional check are in the same run).
    starts : int
        Random starts; the best design (largest det X'X, ties broken by the smallest sum of
        squared alias entries) is kept.

    Returns
    -------
    Design
        Terms = the six main effects; aliasing = the two-factor interactions each main-effect
        estimate is biased by (the alias matrix over the 14 estimable interactions).

    References
    ----------
    Fedorov, V. V. (1972), Theory of Optimal Experiments (the exchange algorithm);
    Atkinson, Donev & Tobias (2007), Optimum Experimental Designs, with SAS, ch. 12.
    """
    grid = runnable_cells()
    terms = list(FACTORS)
    if not isinstance(n_runs, int) or not len(terms) + 2 <= n_runs <= len(grid):
        raise StudyError(f"a fraction needs from {len(terms) + 2} to {len(grid)} cells, got {n_runs!r}")
    forced = []
    for name in include:
        if name not in PRESETS:
            raise StudyError(f"unknown preset {name!r} to include; choose from {', '.join(PRESETS)}")
        codes = code_switches(PRESETS[name])
        match = grid.index[(grid[list(FACTORS)] == pd.Series(codes)).all(axis=1)]
        forced.append(int(match[0]))
    forced = sorted(set(forced))
    x_all = model_matrix(grid, terms, centre=grid)
    interactions = estimable_interactions()
    rng = np.random.default_rng(seed)

    def score(indices: list[int]) -> tuple[float, float]:
        logdet = _logdet(x_all[indices])
        if not np.isfinite(logdet):
            return (-np.inf, 0.0)
        alias = alias_matrix(grid.iloc[indices], estimated=terms, omitted=interactions)
        return (round(logdet, 9), -float((alias.to_numpy() ** 2).sum()))

    best: tuple[tuple[float, float], list[int]] | None = None
    free = np.array([i for i in range(len(grid)) if i not in forced])
    outer = np.einsum("ni,nj->nij", x_all, x_all)
    for _ in range(starts):
        chosen = forced + [int(i) for i in rng.choice(free, size=n_runs - len(forced), replace=False)]
        information = outer[chosen].sum(axis=0)
        current = _logdet_information(information)
        improved = True
        while improved:
            improved = False
            for position in range(len(forced), n_runs):
                # Every exchange of this position at once: M - x_out x_out' + x_c x_c'.
                trials = information - outer[chosen[position]] + outer[free]
                sign, values = np.linalg.slogdet(trials)
                values = np.where(sign > 0, values, -np.inf)
                values[np.isin(free, chosen)] = -np.inf
                pick = int(np.argmax(values))
                if values[pick] > current + 1e-9:
                    information = trials[pick]
                    chosen[position] = int(free[pick])
                    current, improved = float(values[pick]), True
        scored = (score(sorted(chosen)), sorted(chosen))
        if best is None or scored[0] > best[0]:
            best = scored
    assert best is not None
    if not np.isfinite(best[0][0]):
        raise StudyError(f"no {n_runs}-cell fraction estimates every main effect")
    cells = _design_cells(best[1], grid)
    alias = alias_matrix(cells, estimated=terms, omitted=interactions)
    aliased = _largest_aliases(alias)
    statement = (
        f"D-optimal {n_runs}-cell fraction of the 48 runnable cells for the main-effects model "
        f"(D-efficiency {d_efficiency(cells, terms):.2f} per run relative to the full factorial; "
        f"seed {seed}). Not a regular 2^(k-p) fraction: none avoids the refused "
        "isolation=rollback x session_wiring=own cells without aliasing isolation with "
        "session_wiring completely. Isolation is defined at session_wiring=injected, "
        "session_wiring at isolation=recreate. "
    )
    statement += (
        "Main effects are partially aliased with two-factor interactions (alias matrix, centred coding): "
        + "; ".join(aliased)
        + "."
        if aliased
        else "Main effects are clear of every two-factor interaction."
    )
    return Design(
        name=f"fraction-{n_runs}",
        cells=cells,
        terms=tuple(terms),
        aliasing=statement,
        alias=alias,
        d_efficiency=d_efficiency(cells, terms),
    )


def path_design(*, off_path: bool = False) -> Design:
    """The one-factor-at-a-time path baseline -> +storage -> +reference_data -> +session_wiring
    -> +isolation (= transactional); with `off_path`, also transactional with password_hash and
    with client switched. Each main effect is then the conditional effect at the point where the
    switch changes, aliased with its interactions with every switch changed before it."""
    current = dict(code_switches(BASELINE))
    rows = [dict(current)]
    for factor in PATH_FACTORS:
        current[factor] = 1
        rows.append(dict(current))
    if current != code_switches(TRANSACTIONAL):
        raise StudyError("the path does not end at the transactional preset")  # pragma: no cover
    if off_path:
        for factor in OFF_PATH_FACTORS:
            rows.append({**current, factor: 1})
    cells = _with_variants(pd.DataFrame(rows))
    terms = tuple(f for f in FACTORS if f in _varying_factors(cells))
    omitted = estimable_interactions(terms)
    alias = alias_matrix(cells, estimated=terms, omitted=omitted)
    statement = (
        "One-factor-at-a-time path from baseline to transactional (storage, reference_data, "
        "session_wiring, isolation in that order"
        + (", then password_hash and client each switched on the transactional preset" if off_path else "")
        + "). Each effect is measured where that switch changes on the path, so it is aliased with "
        "every interaction with the switches changed before it (alias matrix, centred coding): "
        + "; ".join(_largest_aliases(alias))
        + "."
        + ("" if off_path else " password_hash and client are not varied: their effects are not estimated.")
    )
    return Design(
        name="path" + ("+off_path" if off_path else ""),
        cells=cells,
        terms=terms,
        aliasing=statement,
        alias=alias,
        d_efficiency=d_efficiency(cells, terms) if len(terms) == len(FACTORS) else float("nan"),
    )


def design_for_variants(variants: Iterable[str]) -> Design:
    """The design a set of measured labels forms (for tables regenerated from a run's files):
    the cells among `variants`, terms = the main effects that vary, aliasing computed."""
    cells = cells_from_variants(variants)
    if cells.empty:
        raise StudyError("none of the variants is a factorial cell")
    full = full_factorial()
    if len(cells) == full.n_cells and set(cells["variant"]) == set(full.variants):
        return full
    terms = tuple(_varying_factors(cells))
    omitted = estimable_interactions(terms)
    try:
        alias = alias_matrix(cells, estimated=terms, omitted=omitted)
    except USER_ERRORS:
        alias = pd.DataFrame(index=list(terms))
    aliased = _largest_aliases(alias)
    efficiency = d_efficiency(cells, terms) if len(terms) == len(FACTORS) else float("nan")
    statement = (
        f"{len(cells)} measured cells of the 48 runnable ones"
        + (
            f" (D-efficiency {efficiency:.2f} per run relative to the full factorial)"
            if np.isfinite(efficiency)
            else ""
        )
        + ". Isolation is defined at session_wiring=injected, session_wiring at isolation=recreate. "
        + f"Main effects of {', '.join(terms) or 'no switch'} "
        + (
            "are partially aliased with two-factor interactions (alias matrix, centred coding): "
            + "; ".join(aliased)
            + "."
            if aliased
            else "are clear of every two-factor interaction."
        )
        + (
            ""
            if len(terms) == len(FACTORS)
            else f" Not varied, so not estimated: {', '.join(f for f in FACTORS if f not in terms)}."
        )
    )
    return Design(
        name=f"{len(cells)}-cell",
        cells=_with_variants(cells),
        terms=terms,
        aliasing=statement,
        alias=alias,
        d_efficiency=efficiency,
    )


def balance(cells: pd.DataFrame) -> pd.DataFrame:
    """How often each factor takes each level in the cells: columns factor, level, n_cells."""
    rows = [
        {"factor": factor, "level": LEVELS[factor][code], "n_cells": int((cells[factor] == code).sum())}
        for factor in FACTORS
        for code in (0, 1)
    ]
    return pd.DataFrame(rows)
