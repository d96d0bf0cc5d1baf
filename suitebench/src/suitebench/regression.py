"""Regression tracking: stored baselines, the process-level regression gate, and its calibration.

The unit of inference is the pytest process. Within one process the tests share its conditions
(CPU frequency, caches, whatever else ran on the machine), so they are not independent draws; a
gate that tested each of ~200 tests as if they were either cannot fire at 4-5 processes per side
(one Mann-Whitney per test with Holm) or raises false alarms (pooled as independent). So:

* The gate (:func:`run_gate`) reduces every process to a few numbers, the mean log total time over
  the tests that passed in every process on both sides (the whole set, and each category), and
  runs one-sided Welch tests on those per-process values: the whole set at ``0.7 alpha``
  (``OVERALL_SHARE``), each of the K categories at ``0.3 alpha / K`` (Bonferroni), so the family
  fires with probability at most ``alpha`` when nothing changed. A component fires when the lower confidence bound of its
  slowdown exceeds the minimum effect ``m``. The categories are in the family because a +50 %
  slowdown of a 7-test category moves the mean over ~200 tests by 1.5 %, below one process's
  noise; tested on its own it is plain to see.
* Localisation (:func:`localise`) runs only after the gate fired: one-sided Welch on each test's
  log times with Benjamini-Hochberg, to say where to look.
* The counter gate flags any increase of a test's median deterministic counter (SQL statements,
  connections, ...), without statistics.

Two modes. Same session (:func:`check_same_session`, ``check --against-rev REV``): the reference
and the changed code measured interleaved in one session; drift between sessions cannot enter, so
``m = 0``. Stored baseline (:func:`check_regressions`): the current run against processes recorded
in an earlier session. Sessions drift (two 5-repetition sessions of the same code on the study
machine differed by 4.3 % in mean log test time, Welch p = 0.005), so ``m`` must absorb the drift:
:func:`calibrate_minimum_effect` estimates it from at least 10 A/A sessions so that false alarms
across sessions stay at or below 1 %; until such a calibration exists :data:`DEFAULT_STORED_MIN_EFFECT`
is used. :func:`calibrate_gate` measures false alarms and power of exactly this gate at the size it
runs, from A/A splits (enumerated) and from pairs of separate sessions, with slowdowns injected per
phase.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np
import pandas as pd
from scipy import stats as sps

from suitebench.errors import BenchError
from suitebench.stats import COUNTER_COLUMNS, TestSet, bh_adjust, measured_repetitions, measured_totals
from suitebench.store import check_name

SCHEMA_VERSION = 2
CALIBRATION_SCHEMA_VERSION = 1
PHASES: tuple[str, ...] = ("setup", "call", "teardown")
OVERALL = "all tests"

# The family-wise false-alarm rate of the gate: the target is at most 1 % in both modes.
DEFAULT_ALPHA = 0.01
# Share of alpha spent on the whole-set component; the rest is split over the categories. 0.7 is
# where both same-session power targets hold at 4 processes a side in the seeded simulation
# (tests/test_inference_simulations.py): +10 % in every call phase 0.92 (0.88 at 0.5), +50 % in
# any one category >= 0.94 (>= 0.975 at 0.5), false alarms <= 1 %.
OVERALL_SHARE = 0.7
# False discovery rate of the per-test localisation after the gate fired.
LOCALISE_FDR = 0.05
# Welch needs a variance on each side; at 2 processes per side it has 1-2 degrees of freedom and
# the critical t of a category component (alpha / 14) exceeds 25: no slowdown could be flagged.
MIN_PROCESSES_PER_SIDE = 3
# Stored-baseline mode before a calibration exists: the slowdown that two separate sessions of the
# same code exceed by chance less than 1 % of the time when their drift has the spread the study
# machine showed (sd of a session's mean log time 0.03: 4.3 % between two 5-repetition sessions),
# at 4 processes per side (tests/test_inference_simulations.py computes it with
# calibrate_minimum_effect on simulated sessions). Under heavy load the drift is far larger:
# calibrate on the machine that runs the check.
DEFAULT_STORED_MIN_EFFECT = 0.10
MIN_CALIBRATION_SESSIONS = 10
CALIBRATION_DIR = "calibrations"

Mode = Literal["same session", "stored baseline"]


# --------------------------------------------------------------------------- processes


@dataclass(frozen=True)
class ProcessSample:
    """One variant's measured processes: per test, per process, total and phase seconds.

    ``total_s`` and each ``phases_s[phase]`` are (processes x tests) arrays, NaN where the test was
    not measured in that process; ``passed`` says where it passed. ``counters`` holds each test's
    median deterministic counters.
    """

    label: str
    tests: tuple[str, ...]
    categories: tuple[str, ...]
    processes: tuple[int, ...]
    total_s: np.ndarray = field(repr=False)
    phases_s: Mapping[str, np.ndarray] = field(repr=False)
    passed: np.ndarray = field(repr=False)
    counters: Mapping[str, Mapping[str, float | None]] = field(repr=False, default_factory=dict)
    run_ids: tuple[str, ...] = ()

    @property
    def n_processes(self) -> int:
        return len(self.processes)

    def passed_everywhere(self) -> set[str]:
        """Tests that passed in every process of this sample."""
        ok = self.passed.all(axis=0) & ~np.isnan(self.total_s).any(axis=0) if self.n_processes else []
        return {t for t, good in zip(self.tests, ok) if good}

    def select(self, rows: Sequence[int]) -> ProcessSample:
        """The sample restricted to the processes at positions ``rows``."""
        rows = list(rows)
        return ProcessSample(
            label=self.label,
            tests=self.tests,
            categories=self.categories,
            processes=tuple(self.processes[i] for i in rows),
            total_s=self.total_s[rows],
            phases_s={phase: values[rows] for phase, values in self.phases_s.items()},
            passed=self.passed[rows],
            counters=self.counters,
            run_ids=self.run_ids,
        )

    def slowed(self, factors: np.ndarray, *, phase: str | None = None) -> ProcessSample:
        """A copy with each test's time multiplied by ``factors`` (one per test): every phase, or
        only ``phase`` (the total then grows by that phase's extra time)."""
        factors = np.asarray(factors, dtype=float)
        if phase is None:
            total = self.total_s * factors
            phases = {name: values * factors for name, values in self.phases_s.items()}
        else:
            extra = np.nan_to_num(self.phases_s[phase]) * (factors - 1.0)
            total = self.total_s + extra
            phases = {**self.phases_s, phase: self.phases_s[phase] * factors}
        return ProcessSample(
            label=self.label,
            tests=self.tests,
            categories=self.categories,
            processes=self.processes,
            total_s=total,
            phases_s=phases,
            passed=self.passed,
            counters=self.counters,
            run_ids=self.run_ids,
        )


def _median_counter(values: pd.Series) -> float | None:
    value = values.astype(float).median()
    if value is None or math.isnan(value):
        return None
    return int(value) if float(value).is_integer() else float(value)


def process_sample(timings: pd.DataFrame, *, variant: str) -> ProcessSample:
    """One variant's valid, non-warm-up processes of a run as a :class:`ProcessSample`.

    Raises
    ------
    BenchError
        ``variant`` absent, or no measured process.
    """
    if variant not in set(timings["variant"].astype(str)):
        available = ", ".join(sorted(set(timings["variant"].astype(str)))) or "none"
        raise BenchError(f"variant {variant!r} not in the timings; available: {available}")
    totals = measured_totals(timings, variants=[variant])
    if totals.empty:
        raise BenchError(f"no valid, non-warm-up repetitions of {variant!r}")
    tests = sorted(set(totals["test"].astype(str)))
    processes = sorted(int(r) for r in totals["repetition"].unique())
    category = totals.groupby("test")["category"].first()

    def matrix(frame: pd.DataFrame, value: str = "seconds") -> np.ndarray:
        table = frame.pivot_table(index="repetition", columns="test", values=value, aggfunc="sum")
        return table.reindex(index=processes, columns=tests).to_numpy(float)

    phase_rows = timings[
        (timings["variant"].astype(str) == variant)
        & timings["repetition"].isin(processes)
        & timings["phase"].isin(PHASES)
        & timings["test"].isin(tests)
    ]
    phases = {}
    for phase in PHASES:
        rows = phase_rows[phase_rows["phase"] == phase].assign(seconds=lambda f: f["seconds"].astype(float))
        phases[phase] = np.nan_to_num(matrix(rows)) if len(rows) else np.zeros((len(processes), len(tests)))
    passed = (
        totals.assign(ok=(totals["outcome"].astype(str) == "passed").astype(float))
        .pivot_table(index="repetition", columns="test", values="ok", aggfunc="min")
        .reindex(index=processes, columns=tests)
        .fillna(0.0)
        .to_numpy()
        > 0
    )
    counters = {
        str(test): {c: (_median_counter(rows[c]) if c in rows else None) for c in COUNTER_COLUMNS}
        for test, rows in totals.groupby("test", sort=True)
    }
    return ProcessSample(
        label=variant,
        tests=tuple(tests),
        categories=tuple(str(category[t]) for t in tests),
        processes=tuple(processes),
        total_s=matrix(totals),
        phases_s=phases,
        passed=passed,
        counters=counters,
        run_ids=tuple(sorted(set(totals["run_id"].astype(str)))) if "run_id" in totals else (),
    )


def common_tests(*samples: ProcessSample) -> TestSet:
    """Tests that passed in every process of every sample (the set every gate statistic uses)."""
    keep = set.intersection(*(s.passed_everywhere() for s in samples))
    every = set().union(*(s.tests for s in samples))
    excluded = {}
    for test in sorted(every - keep):
        where = [s.label for s in samples if test not in s.passed_everywhere()]
        excluded[test] = f"not passed in every process of {', '.join(dict.fromkeys(where))}"
    return TestSet(tests=tuple(sorted(keep)), excluded=excluded)


# --------------------------------------------------------------------------- the gate


class GateValues(NamedTuple):
    """Per-process gate statistics: ``values`` (processes x components) of mean log total
    seconds; ``components`` names them (:data:`OVERALL` first, then categories); ``n_tests``
    counts each component's tests."""

    components: tuple[str, ...]
    n_tests: tuple[int, ...]
    values: np.ndarray


def gate_values(sample: ProcessSample, tests: Sequence[str]) -> GateValues:
    """Mean log total seconds per process over ``tests``, and over each category's share of them.

    Raises
    ------
    BenchError
        No test in common, or a non-positive time.
    """
    if not tests:
        raise BenchError("no test passed in every process on both sides: nothing to compare")
    index = {t: i for i, t in enumerate(sample.tests)}
    columns = np.array([index[t] for t in tests])
    logs = sample.total_s[:, columns]
    if not (logs > 0).all():
        raise BenchError("a test time is zero or negative: the gate works on log times")
    logs = np.log(logs)
    categories = np.array([sample.categories[i] for i in columns])
    names = [OVERALL]
    counts = [len(columns)]
    parts = [logs.mean(axis=1)]
    # One category is the whole set again: testing it twice would only halve each level.
    for category in sorted(set(categories)) if len(set(categories)) > 1 else ():
        members = categories == category
        names.append(str(category))
        counts.append(int(members.sum()))
        parts.append(logs[:, members].mean(axis=1))
    return GateValues(tuple(names), tuple(counts), np.stack(parts, axis=1))


def gate_levels(n_components: int, *, alpha: float, overall_share: float = OVERALL_SHARE) -> np.ndarray:
    """Per-component one-sided levels: ``alpha * share`` for the whole set, the rest split evenly
    over the categories (Bonferroni: the family's false-alarm rate is at most ``alpha``)."""
    if n_components == 1:
        return np.array([alpha])
    rest = alpha * (1.0 - overall_share) / (n_components - 1)
    return np.array([alpha * overall_share, *([rest] * (n_components - 1))])


class WelchShift(NamedTuple):
    """One-sided Welch statistics of ``current - base`` (log scale), vectorised."""

    estimate: np.ndarray
    se: np.ndarray
    df: np.ndarray


def welch_shift(base: np.ndarray, current: np.ndarray) -> WelchShift:
    """Welch's difference of means along axis -2 (processes), for arrays (..., n, components).

    Parameters
    ----------
    base, current : ndarray
        Per-process values; the process axis is the second last.

    Returns
    -------
    WelchShift
        ``estimate = mean(current) - mean(base)``, its standard error and Welch-Satterthwaite
        degrees of freedom (NaN standard error when a side has fewer than two processes).
    """
    n_b, n_c = base.shape[-2], current.shape[-2]
    var_b = base.var(axis=-2, ddof=1) / n_b
    var_c = current.var(axis=-2, ddof=1) / n_c
    se = np.sqrt(var_b + var_c)
    with np.errstate(divide="ignore", invalid="ignore"):
        df = (var_b + var_c) ** 2 / (var_b**2 / (n_b - 1) + var_c**2 / (n_c - 1))
    return WelchShift(current.mean(axis=-2) - base.mean(axis=-2), se, df)


def gate_excess(base: np.ndarray, current: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Largest one-sided lower confidence bound of the log slowdown over the components.

    The gate fires exactly when this exceeds ``log(1 + m)``; arrays as in :func:`welch_shift`,
    the result has the leading (trial) shape. Used by the check and by every calibration, so the
    calibrated detector is the one that runs.
    """
    shift = welch_shift(base, current)
    with np.errstate(invalid="ignore"):
        bound = shift.estimate - sps.t.ppf(1.0 - levels, shift.df) * shift.se
    return np.nanmax(np.where(np.isnan(bound), -np.inf, bound), axis=-1)


def check_design(n_base: int, n_current: int) -> None:
    """Refuse a design the gate cannot use.

    Raises
    ------
    BenchError
        Fewer than :data:`MIN_PROCESSES_PER_SIDE` measured processes on a side; the message says
        how many repetitions are needed.
    """
    if min(n_base, n_current) < MIN_PROCESSES_PER_SIDE:
        raise BenchError(
            f"the regression gate cannot reach its level with {n_base} baseline and {n_current} current "
            f"process(es): measure at least {MIN_PROCESSES_PER_SIDE} repetitions per side "
            "(4-5 give the power in the README)"
        )


@dataclass(frozen=True)
class GateResult:
    """The process-level gate.

    ``fired`` is True when some component's lower confidence bound of the slowdown exceeds
    ``min_effect``: a slowdown of more than ``min_effect`` is shown at family-wise level
    ``alpha``. False means no such slowdown was shown, which is not proof that nothing got slower.
    ``components`` has one row per component: ``component, n_tests, slowdown_pct`` (ratio of
    geometric means - 1), ``lower_bound_pct`` (one-sided, at the component's ``level``),
    ``p_value`` (one-sided Welch, H0: slowdown <= min_effect), ``fired``.
    """

    alpha: float
    min_effect: float
    n_base: int
    n_current: int
    n_tests: int
    components: pd.DataFrame = field(repr=False)

    @property
    def fired(self) -> bool:
        return bool(self.components["fired"].any())


def run_gate(
    base: ProcessSample,
    current: ProcessSample,
    *,
    tests: Sequence[str],
    alpha: float = DEFAULT_ALPHA,
    min_effect: float = 0.0,
) -> GateResult:
    """The process-level gate on ``tests`` (see the module docstring).

    Parameters
    ----------
    base, current : ProcessSample
        Reference and current processes.
    tests : sequence of str
        The tests that passed everywhere (:func:`common_tests`).
    alpha : float
        Family-wise false-alarm rate.
    min_effect : float
        Slowdowns up to this fraction are never flagged (0.1 = 10 %).

    Returns
    -------
    GateResult
    """
    check_design(base.n_processes, current.n_processes)
    before = gate_values(base, tests)
    after = gate_values(current, tests)
    levels = gate_levels(len(before.components), alpha=alpha)
    shift = welch_shift(before.values, after.values)
    log_m = math.log1p(min_effect)
    with np.errstate(invalid="ignore", divide="ignore"):
        quantile = sps.t.ppf(1.0 - levels, shift.df)
        bound = shift.estimate - quantile * shift.se
        p_value = sps.t.sf((shift.estimate - log_m) / shift.se, shift.df)
    components = pd.DataFrame(
        {
            "component": before.components,
            "n_tests": before.n_tests,
            "slowdown_pct": np.expm1(shift.estimate) * 100.0,
            "lower_bound_pct": np.expm1(bound) * 100.0,
            "level": levels,
            "p_value": p_value,
            "fired": np.nan_to_num(bound, nan=-np.inf) > log_m,
        }
    )
    return GateResult(
        alpha=alpha,
        min_effect=min_effect,
        n_base=base.n_processes,
        n_current=current.n_processes,
        n_tests=len(tests),
        components=components,
    )


def localise(
    base: ProcessSample, current: ProcessSample, *, tests: Sequence[str], fdr: float = LOCALISE_FDR
) -> pd.DataFrame:
    """Which tests got slower: one-sided Welch on each test's log times, Benjamini-Hochberg.

    Run only after the gate fired: the per-test tests are many and each has only the processes'
    worth of data, so they say where to look, not whether something regressed.

    Returns
    -------
    DataFrame
        ``test, category, slowdown_pct`` (ratio of geometric means - 1), ``p_value`` (one-sided,
        current slower), ``p_bh``, ``flagged`` (p_bh < fdr), sorted by p_value.
    """
    index_b = {t: i for i, t in enumerate(base.tests)}
    index_c = {t: i for i, t in enumerate(current.tests)}
    b = np.log(base.total_s[:, [index_b[t] for t in tests]])
    c = np.log(current.total_s[:, [index_c[t] for t in tests]])
    shift = welch_shift(b, c)
    with np.errstate(invalid="ignore", divide="ignore"):
        p_value = sps.t.sf(shift.estimate / shift.se, shift.df)
    p_bh = bh_adjust(p_value)
    frame = pd.DataFrame(
        {
            "test": list(tests),
            "category": [current.categories[index_c[t]] for t in tests],
            "slowdown_pct": np.expm1(shift.estimate) * 100.0,
            "p_value": p_value,
            "p_bh": p_bh,
            "flagged": np.nan_to_num(p_bh, nan=1.0) < fdr,
        }
    )
    return frame.sort_values(["p_value", "test"]).reset_index(drop=True)


def counter_increases(base: ProcessSample, current: ProcessSample, *, tests: Sequence[str]) -> pd.DataFrame:
    """Tests whose median deterministic counter grew (any increase: the counts have no noise).

    Returns
    -------
    DataFrame
        ``test, counter, baseline, current``, one row per increase.
    """
    rows = []
    for test in tests:
        before = base.counters.get(test, {})
        after = current.counters.get(test, {})
        for counter in COUNTER_COLUMNS:
            old, new = before.get(counter), after.get(counter)
            if old is not None and new is not None and new > old:
                rows.append({"test": test, "counter": counter, "baseline": old, "current": new})
    return pd.DataFrame(rows, columns=["test", "counter", "baseline", "current"])


# --------------------------------------------------------------------------- the check


@dataclass(frozen=True)
class CheckResult:
    """Outcome of a regression check.

    ``regressed`` is True when the timing gate fired or a counter grew; False means no
    regression was shown at this ``alpha`` and minimum effect, not that nothing got slower.
    ``localisation`` (per test) is empty unless the gate fired.
    """

    mode: Mode
    reference: str
    reference_label: str
    variant: str
    min_effect_source: str
    gate: GateResult
    test_set: TestSet
    localisation: pd.DataFrame = field(repr=False)
    counters: pd.DataFrame = field(repr=False)
    missing_in_current: tuple[str, ...] = ()
    new_in_current: tuple[str, ...] = ()

    @property
    def regressed(self) -> bool:
        return self.gate.fired or not self.counters.empty


def compare_samples(
    base: ProcessSample,
    current: ProcessSample,
    *,
    mode: Mode,
    reference: str,
    alpha: float,
    min_effect: float,
    min_effect_source: str,
) -> CheckResult:
    """The whole check (timing gate, localisation after it fires, counters) of two samples."""
    test_set = common_tests(base, current)
    gate = run_gate(base, current, tests=test_set.tests, alpha=alpha, min_effect=min_effect)
    localisation = (
        localise(base, current, tests=test_set.tests)
        if gate.fired
        else pd.DataFrame(columns=["test", "category", "slowdown_pct", "p_value", "p_bh", "flagged"])
    )
    return CheckResult(
        mode=mode,
        reference=reference,
        reference_label=base.label,
        variant=current.label,
        min_effect_source=min_effect_source,
        gate=gate,
        test_set=test_set,
        localisation=localisation,
        counters=counter_increases(base, current, tests=test_set.tests),
        missing_in_current=tuple(sorted(set(base.tests) - set(current.tests))),
        new_in_current=tuple(sorted(set(current.tests) - set(base.tests))),
    )


def check_same_session(
    timings: pd.DataFrame,
    *,
    reference: str,
    variant: str,
    alpha: float = DEFAULT_ALPHA,
    min_effect: float = 0.0,
) -> CheckResult:
    """Same-session check: variant ``variant`` against variant ``reference`` of one interleaved run.

    Both were measured side by side in one session, so drift between sessions cannot enter and
    ``min_effect`` can stay 0. Raises BenchError for an unknown variant or too few processes.
    """
    base = process_sample(timings, variant=reference)
    current = process_sample(timings, variant=variant)
    return compare_samples(
        base,
        current,
        mode="same session",
        reference=reference,
        alpha=alpha,
        min_effect=min_effect,
        min_effect_source="same session: no drift between sessions to absorb",
    )


def check_regressions(
    timings: pd.DataFrame,
    *,
    baseline: Baseline,
    variant: str,
    alpha: float = DEFAULT_ALPHA,
    min_effect: float | None = None,
    calibration: MinimumEffectCalibration | None = None,
) -> CheckResult:
    """Stored-baseline check: a run's ``variant`` against a baseline recorded in another session.

    Parameters
    ----------
    timings : DataFrame
        Tidy timings of the current run.
    baseline : Baseline
        From :func:`load_baseline`.
    variant : str
        Variant label in ``timings`` to check.
    alpha : float
        Family-wise false-alarm rate within a session.
    min_effect : float, optional
        Explicit minimum effect; else ``calibration``'s at these sizes, else
        :data:`DEFAULT_STORED_MIN_EFFECT`.
    calibration : MinimumEffectCalibration, optional
        From :func:`calibrate_minimum_effect` (:func:`load_calibration`).

    Returns
    -------
    CheckResult

    Raises
    ------
    BenchError
        ``variant`` absent, too few processes on a side, no test in common.
    """
    current = process_sample(timings, variant=variant)
    check_design(baseline.sample.n_processes, current.n_processes)
    if min_effect is not None:
        source = f"given ({min_effect * 100:.1f} %)"
    elif calibration is not None:
        min_effect = calibration.min_effect(
            n_base=baseline.sample.n_processes, n_current=current.n_processes, alpha=alpha
        )
        source = (
            f"calibrated from {calibration.n_sessions} A/A sessions for at most "
            f"{calibration.target_false_alarm * 100:.0f} % false alarms across sessions ({min_effect * 100:.1f} %)"
        )
    else:
        min_effect = DEFAULT_STORED_MIN_EFFECT
        source = (
            f"default {min_effect * 100:.0f} % until a calibration from {MIN_CALIBRATION_SESSIONS} A/A sessions "
            "exists (baseline calibrate)"
        )
    return compare_samples(
        baseline.sample,
        current,
        mode="stored baseline",
        reference=baseline.name,
        alpha=alpha,
        min_effect=min_effect,
        min_effect_source=source,
    )


def format_check(result: CheckResult, *, limit: int = 10) -> list[str]:
    """Human-readable lines for a :class:`CheckResult`: the verdict, the gate's components, the
    localisation (when it fired), counter increases, and the tests left out."""
    gate = result.gate
    where = (
        f"baseline {result.reference!r} (recorded from {result.reference_label})"
        if result.mode == "stored baseline"
        else f"{result.reference_label} measured in the same session"
    )
    lines = [
        f"{result.variant} vs {where}: {gate.n_base} vs {gate.n_current} processes, {gate.n_tests} tests that "
        f"passed in every process; gate = one-sided Welch on per-process mean log time (all tests at "
        f"{OVERALL_SHARE:g} alpha, each category at {1 - OVERALL_SHARE:g} alpha/K), family alpha {gate.alpha:g}, minimum effect "
        f"{gate.min_effect * 100:.1f} % ({result.min_effect_source}); counter gate = any increase"
    ]
    if result.regressed:
        what = []
        if gate.fired:
            what.append("timing gate fired")
        if not result.counters.empty:
            what.append(f"{len(result.counters)} counter increase(s)")
        lines.append("REGRESSED: " + " and ".join(what))
    else:
        lines.append("no regression shown (not proof of no change: see the calibration for the gate's power)")
    for row in gate.components.itertuples(index=False):
        mark = "FIRED " if row.fired else "      "
        lines.append(
            f"  {mark}{row.component} ({row.n_tests} tests): {row.slowdown_pct:+.1f} %, lower bound "
            f"{row.lower_bound_pct:+.1f} % at level {row.level:.2g}, p {row.p_value:.2g}"
        )
    if gate.fired:
        flagged = result.localisation[result.localisation["flagged"]]
        lines.append(
            f"localisation (one-sided Welch per test, Benjamini-Hochberg {LOCALISE_FDR:g}): {len(flagged)} test(s)"
        )
        for row in flagged.head(limit).itertuples(index=False):
            lines.append(f"  timing  {row.test}: {row.slowdown_pct:+.0f} %, p {row.p_value:.2g}, BH {row.p_bh:.2g}")
        if len(flagged) > limit:
            lines.append(f"  ... and {len(flagged) - limit} more")
    for row in result.counters.itertuples(index=False):
        lines.append(f"  counter {row.test}: {row.counter} {row.baseline} -> {row.current}")
    if result.test_set.excluded:
        lines.append(f"left out ({len(result.test_set.excluded)}: not passed in every process on both sides)")
    if result.missing_in_current:
        lines.append(f"not run now ({len(result.missing_in_current)}, not checked)")
    if result.new_in_current:
        lines.append(f"new since the reference ({len(result.new_in_current)}, not checked)")
    return lines


# --------------------------------------------------------------------------- baselines


@dataclass(frozen=True)
class Baseline:
    """A stored baseline (see :func:`record_baseline` for the file layout)."""

    name: str
    variant: str
    created_at: str
    source_run_ids: tuple[str, ...]
    metadata: Mapping[str, Any]
    sample: ProcessSample = field(repr=False)
    wall_s: tuple[float, ...] = ()
    schema_version: int = SCHEMA_VERSION


def baseline_path(name: str, store_dir: str | os.PathLike[str]) -> Path:
    """``store_dir / f"{name}.json"`` (``name``: letters, digits, ``.``, ``_``, ``-``)."""
    return Path(store_dir) / f"{check_name(name, what='baseline name')}.json"


def list_baselines(store_dir: str | os.PathLike[str]) -> list[str]:
    """Sorted names of the baselines stored in ``store_dir`` (empty if it does not exist)."""
    directory = Path(store_dir)
    return sorted(p.stem for p in directory.glob("*.json")) if directory.is_dir() else []


def _json_list(values: np.ndarray) -> list[float | None]:
    return [None if math.isnan(v) else float(v) for v in values]


def _write_json(path: Path, document: Mapping[str, Any]) -> None:
    try:
        text = json.dumps(document, indent=1, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise BenchError(f"{path.name}: metadata is not plain JSON: {error}") from error
    path.parent.mkdir(parents=True, exist_ok=True)
    # write-then-rename: a crash never leaves a half-written file behind
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text + "\n")
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def record_baseline(
    timings: pd.DataFrame,
    repetitions: pd.DataFrame | None,
    *,
    name: str,
    store_dir: str | os.PathLike[str],
    variant: str,
    metadata: Mapping[str, Any] | None = None,
    overwrite: bool = False,
) -> Path:
    """Store one variant's measured processes as a named baseline.

    Parameters
    ----------
    timings : DataFrame
        Tidy timings; the valid, non-warm-up processes of ``variant`` are stored.
    repetitions : DataFrame or None
        ``repetitions.csv``, for the process wall times; None stores none.
    name : str
        Baseline name (file ``store_dir/<name>.json``).
    store_dir : path
        Directory of stored baselines; created if missing.
    variant : str
        Variant label to store.
    metadata : mapping, optional
        JSON-serialisable context (machine, git commit, ...), stored as given.
    overwrite : bool
        Replace an existing baseline of that name.

    Returns
    -------
    Path
        The written file: ``schema_version`` (2), ``name, variant, created_at`` (UTC),
        ``source_run_ids, processes`` (repetition numbers), ``metadata``, ``tests: {node id:
        {category, total_s, phases_s: {setup, call, teardown}, passed, counters}}`` (lists
        aligned with ``processes``, null where not measured), ``wall_s``.

    Raises
    ------
    BenchError
        Bad name, existing baseline without ``overwrite``, unknown variant, no measured rows.
    """
    path = baseline_path(name, store_dir)
    if path.exists() and not overwrite:
        raise BenchError(f"baseline {name!r} exists at {path}; choose another name or overwrite it")
    sample = process_sample(timings, variant=variant)
    tests = {
        test: {
            "category": sample.categories[i],
            "total_s": _json_list(sample.total_s[:, i]),
            "phases_s": {phase: _json_list(sample.phases_s[phase][:, i]) for phase in PHASES},
            "passed": [bool(v) for v in sample.passed[:, i]],
            "counters": dict(sample.counters.get(test, {})),
        }
        for i, test in enumerate(sample.tests)
    }
    wall: list[float] = []
    if repetitions is not None:
        walls = measured_repetitions(repetitions, variants=[variant]).set_index("repetition")["wall_s"]
        wall = [float(walls[p]) for p in sample.processes if p in walls.index]
    document = {
        "schema_version": SCHEMA_VERSION,
        "name": name,
        "variant": variant,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "source_run_ids": list(sample.run_ids),
        "processes": list(sample.processes),
        "metadata": dict(metadata or {}),
        "tests": tests,
        "wall_s": wall,
    }
    _write_json(path, document)
    return path


def _array(values: Sequence[float | None]) -> np.ndarray:
    return np.array([math.nan if v is None else float(v) for v in values], dtype=float)


def load_baseline(name: str, store_dir: str | os.PathLike[str]) -> Baseline:
    """Read a baseline written by :func:`record_baseline`.

    Raises
    ------
    BenchError
        Missing file (the message lists the stored names), unreadable JSON, other schema version.
    """
    path = baseline_path(name, store_dir)
    if not path.exists():
        known = ", ".join(list_baselines(store_dir)) or "none"
        raise BenchError(f"no baseline {name!r} in {store_dir}; stored: {known}")
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise BenchError(f"cannot read baseline {path}: {error}") from error
    version = document.get("schema_version") if isinstance(document, dict) else None
    if version != SCHEMA_VERSION:
        raise BenchError(
            f"baseline {path} has schema_version {version!r}; this code reads {SCHEMA_VERSION} "
            "(record it again from a run: baseline record)"
        )
    try:
        tests = sorted(document["tests"])
        entries = [document["tests"][t] for t in tests]
        n = len(document["processes"])
        columns = lambda key: np.column_stack([_array(e[key]) for e in entries]) if entries else np.zeros((n, 0))  # noqa: E731
        sample = ProcessSample(
            label=document["variant"],
            tests=tuple(tests),
            categories=tuple(str(e["category"]) for e in entries),
            processes=tuple(int(p) for p in document["processes"]),
            total_s=columns("total_s"),
            phases_s={
                phase: np.column_stack([_array(e["phases_s"][phase]) for e in entries]) if entries else np.zeros((n, 0))
                for phase in PHASES
            },
            passed=np.column_stack([np.array(e["passed"], dtype=bool) for e in entries])
            if entries
            else np.zeros((n, 0), bool),
            counters={t: dict(e.get("counters", {})) for t, e in zip(tests, entries)},
            run_ids=tuple(document.get("source_run_ids", ())),
        )
        return Baseline(
            name=document["name"],
            variant=document["variant"],
            created_at=document["created_at"],
            source_run_ids=tuple(document.get("source_run_ids", ())),
            metadata=document.get("metadata", {}),
            sample=sample,
            wall_s=tuple(float(v) for v in document.get("wall_s", [])),
            schema_version=version,
        )
    except (KeyError, TypeError, ValueError) as error:
        raise BenchError(f"baseline {path} is malformed: {error!r}") from error


# --------------------------------------------------------------------------- the minimum effect


@dataclass(frozen=True)
class MinimumEffectCalibration:
    """Variance components of the gate's statistics across A/A sessions, and what they imply.

    Per component (:data:`OVERALL`, then categories): ``within_variance`` of one process's value
    within a session (pooled) and ``between_variance``, the variance of a session's drift, as a
    90 % upper confidence bound (so that the false-alarm target holds for most calibrations, not
    half of them). :meth:`min_effect` turns them into the minimum effect for a check's sizes.
    ``pairs_false_alarm`` is the share of the ordered pairs of the calibrating sessions that the
    gate flags at the minimum effect for their own sizes (enumerated, a check of the model).
    """

    components: tuple[str, ...]
    within_variance: tuple[float, ...]
    between_variance: tuple[float, ...]
    n_sessions: int
    session_ids: tuple[str, ...]
    n_processes: tuple[int, ...]
    target_false_alarm: float
    pairs_compared: int
    pairs_flagged: int
    seed: int = 0
    draws: int = 20_000
    created_at: str = ""
    schema_version: int = CALIBRATION_SCHEMA_VERSION

    @property
    def pairs_false_alarm(self) -> float:
        return self.pairs_flagged / self.pairs_compared if self.pairs_compared else math.nan

    def min_effect(self, *, n_base: int, n_current: int, alpha: float = DEFAULT_ALPHA) -> float:
        """The smallest ``m`` with at most ``target_false_alarm`` false alarms across sessions.

        Simulates the gate's largest lower bound (:func:`gate_excess`) under the calibrated model
        at these sizes (``draws`` seeded draws; drifts independent across components, which
        can only raise the estimate) and takes its ``1 - target`` quantile.
        """
        return minimum_effect_for(
            within_variance=self.within_variance,
            between_variance=self.between_variance,
            n_base=n_base,
            n_current=n_current,
            alpha=alpha,
            target_false_alarm=self.target_false_alarm,
            seed=self.seed,
            draws=self.draws,
        )


def minimum_effect_for(
    *,
    within_variance: Sequence[float],
    between_variance: Sequence[float],
    n_base: int,
    n_current: int,
    alpha: float = DEFAULT_ALPHA,
    target_false_alarm: float = 0.01,
    seed: int = 0,
    draws: int = 20_000,
) -> float:
    """Minimum effect for a stored-baseline check under a variance-components model.

    Parameters
    ----------
    within_variance, between_variance : sequence of float
        Per component: one process's variance within a session, and the variance of a
        session's drift.
    n_base, n_current : int
        Processes per side of the check.
    alpha : float
        The gate's family-wise level.
    target_false_alarm : float
        Wanted rate of false alarms across sessions.
    seed, draws : int
        Monte Carlo settings.

    Returns
    -------
    float
        ``m >= 0`` (a fraction) such that the gate fires with probability ``target_false_alarm``
        when the two sessions measured the same code.
    """
    rng = np.random.default_rng(seed)
    within = np.asarray(within_variance, dtype=float)
    between = np.asarray(between_variance, dtype=float)
    components = within.size
    sd_w, sd_b = np.sqrt(within), np.sqrt(between)
    base = rng.normal(0.0, sd_b, (draws, 1, components)) + rng.normal(0.0, sd_w, (draws, n_base, components))
    current = rng.normal(0.0, sd_b, (draws, 1, components)) + rng.normal(0.0, sd_w, (draws, n_current, components))
    excess = gate_excess(base, current, gate_levels(components, alpha=alpha))
    return max(0.0, float(np.expm1(np.quantile(excess, 1.0 - target_false_alarm))))


def calibrate_minimum_effect(
    sessions: Sequence[ProcessSample],
    *,
    alpha: float = DEFAULT_ALPHA,
    target_false_alarm: float = 0.01,
    min_sessions: int = MIN_CALIBRATION_SESSIONS,
    seed: int = 0,
    draws: int = 20_000,
    upper_confidence: float = 0.9,
) -> MinimumEffectCalibration:
    """Calibrate the stored-baseline gate's minimum effect from A/A sessions.

    Parameters
    ----------
    sessions : sequence of ProcessSample
        At least ``min_sessions`` separate sessions (runs on different occasions) of the same
        code and variant, each with at least 2 processes.
    alpha : float
        The gate's family-wise level within a session.
    target_false_alarm : float
        Wanted rate of false alarms across sessions (0.01).
    min_sessions : int
        Refuse fewer sessions: the drift's variance needs them.
    seed, draws : int
        Monte Carlo settings of :func:`minimum_effect_for`.
    upper_confidence : float
        One-sided confidence of the upper bound used for the drift variance.

    Returns
    -------
    MinimumEffectCalibration

    Notes
    -----
    One-way random-effects model per component: a session's mean of n processes has variance
    ``tau^2 + sigma^2 / n``. ``sigma^2`` is pooled within sessions; ``tau^2`` is bounded above by
    ``(k - 1) S^2 / chi2_{1 - c, k - 1} - mean(sigma^2 / n)`` with ``S^2`` the variance of the k
    session means. Then every ordered pair of sessions is checked with the gate at the minimum
    effect for its sizes.
    """
    if len(sessions) < min_sessions:
        raise BenchError(
            f"calibrating the minimum effect needs at least {min_sessions} A/A sessions, got {len(sessions)}"
        )
    if any(s.n_processes < 2 for s in sessions):
        raise BenchError("every calibration session needs at least 2 measured processes")
    tests = common_tests(*sessions).tests
    values = [gate_values(s, tests) for s in sessions]
    components = values[0].components
    if any(v.components != components for v in values):
        raise BenchError("the calibration sessions do not share their categories")
    sizes = np.array([s.n_processes for s in sessions])
    k = len(sessions)
    means = np.stack([v.values.mean(axis=0) for v in values])
    pooled = sum((n - 1) * v.values.var(axis=0, ddof=1) for n, v in zip(sizes, values)) / (sizes - 1).sum()
    spread = means.var(axis=0, ddof=1)
    upper = (k - 1) * spread / sps.chi2.ppf(1.0 - upper_confidence, k - 1)
    between = np.maximum(0.0, upper - pooled * np.mean(1.0 / sizes))
    calibration = MinimumEffectCalibration(
        components=tuple(components),
        within_variance=tuple(float(v) for v in pooled),
        between_variance=tuple(float(v) for v in between),
        n_sessions=k,
        session_ids=tuple(",".join(s.run_ids) or s.label for s in sessions),
        n_processes=tuple(int(n) for n in sizes),
        target_false_alarm=target_false_alarm,
        pairs_compared=0,
        pairs_flagged=0,
        seed=seed,
        draws=draws,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    levels = gate_levels(len(components), alpha=alpha)
    flagged = 0
    pairs = list(itertools.permutations(range(k), 2))
    cache: dict[tuple[int, int], float] = {}
    for i, j in pairs:
        key = (int(sizes[i]), int(sizes[j]))
        if key not in cache:
            cache[key] = calibration.min_effect(n_base=key[0], n_current=key[1], alpha=alpha)
        excess = gate_excess(values[i].values, values[j].values, levels)
        flagged += bool(excess > math.log1p(cache[key]))
    return MinimumEffectCalibration(**{**calibration.__dict__, "pairs_compared": len(pairs), "pairs_flagged": flagged})


def calibration_path(name: str, store_dir: str | os.PathLike[str]) -> Path:
    """Where the minimum-effect calibration of baseline ``name`` lives: ``store_dir/calibrations/``."""
    return Path(store_dir) / CALIBRATION_DIR / f"{check_name(name, what='baseline name')}.json"


def save_calibration(calibration: MinimumEffectCalibration, *, name: str, store_dir: str | os.PathLike[str]) -> Path:
    """Write ``calibration`` as the one :func:`check_regressions` uses for baseline ``name``."""
    path = calibration_path(name, store_dir)
    document = {
        key: (list(value) if isinstance(value, tuple) else value) for key, value in calibration.__dict__.items()
    }
    _write_json(path, document)
    return path


def load_calibration(name: str, store_dir: str | os.PathLike[str]) -> MinimumEffectCalibration | None:
    """The calibration stored for baseline ``name``, or None when there is none."""
    path = calibration_path(name, store_dir)
    if not path.exists():
        return None
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        if document.get("schema_version") != CALIBRATION_SCHEMA_VERSION:
            raise BenchError(f"calibration {path} has another schema_version; calibrate again")
        return MinimumEffectCalibration(
            **{key: (tuple(value) if isinstance(value, list) else value) for key, value in document.items()}
        )
    except (OSError, ValueError, TypeError) as error:
        raise BenchError(f"cannot read calibration {path}: {error}") from error


# --------------------------------------------------------------------------- calibration of the gate


SCENARIOS: tuple[str, ...] = ("A/A", "call phase, every test", "one category", "10 % of the tests")
DEFAULT_SLOWDOWNS: tuple[float, ...] = (0.02, 0.05, 0.10, 0.20, 0.50)


@dataclass(frozen=True)
class GateCalibration:
    """False alarms and power of the gate at one size, from real processes.

    ``rates`` has one row per (source, scenario, category, slowdown): ``source`` is "A/A splits
    (same session)" or "session pairs (stored baseline)"; ``scenario`` one of :data:`SCENARIOS`
    (A/A: nothing injected, every flag is a false alarm); ``category`` the slowed category (one
    category scenario); ``comparisons``, ``flagged``, ``rate`` and its Clopper-Pearson ``ci_low`` /
    ``ci_high``. The comparisons reuse the same processes, so they are not independent: read the
    interval as the Monte Carlo error of an enumeration, not of the machine. ``notes`` say what
    could not be calibrated and why.
    """

    n_per_side: int
    alpha: float
    min_effect_same_session: float
    min_effect_stored: float
    rates: pd.DataFrame = field(repr=False)
    notes: tuple[str, ...] = ()


def _splits(n_total: int, n: int) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
    """All ordered splits of consecutive windows of ``2n`` processes into two groups of ``n``."""
    out = []
    for start in range(0, n_total - 2 * n + 1, 2 * n):
        window = range(start, start + 2 * n)
        for chosen in itertools.combinations(window, n):
            rest = tuple(i for i in window if i not in chosen)
            out.append((chosen, rest))
    return out


class Injection(NamedTuple):
    """One injected condition: ``slowdown`` (a fraction) of ``tests`` (every phase, or ``phase``)."""

    scenario: str
    category: str
    slowdown: float
    tests: frozenset[str]
    phase: str | None

    def factors(self, sample: ProcessSample) -> np.ndarray:
        """Per-test factors aligned with ``sample.tests``."""
        return np.array([1.0 + self.slowdown if t in self.tests else 1.0 for t in sample.tests])


def _injections(sample: ProcessSample, tests: Sequence[str], slowdowns: Sequence[float], seed: int) -> list[Injection]:
    """The A/A condition and every injected slowdown, named by test so that sessions with other
    test lists get the same tests slowed."""
    category_of = dict(zip(sample.tests, sample.categories))
    categories = sorted({category_of[t] for t in tests})
    order = np.random.default_rng(seed).permutation(len(tests))
    tenth = frozenset(tests[i] for i in order[: max(1, round(0.1 * len(tests)))])
    out = [Injection("A/A", "", 0.0, frozenset(), None)]
    for s in slowdowns:
        out.append(Injection("call phase, every test", "", s, frozenset(tests), "call"))
        for category in categories:
            members = frozenset(t for t in tests if category_of[t] == category)
            out.append(Injection("one category", category, s, members, None))
        out.append(Injection("10 % of the tests", "", s, tenth, None))
    return out


def calibrate_gate(
    sessions: Sequence[ProcessSample],
    *,
    n_per_side: int,
    alpha: float = DEFAULT_ALPHA,
    min_effect_stored: float = DEFAULT_STORED_MIN_EFFECT,
    slowdowns: Sequence[float] = DEFAULT_SLOWDOWNS,
    seed: int = 0,
    confidence_level: float = 0.95,
) -> GateCalibration:
    """False alarms and power of exactly the gate ``check`` runs, at ``n_per_side`` processes a side.

    Parameters
    ----------
    sessions : sequence of ProcessSample
        Sessions of the same code and variant (runs, or the two sides of a same-session A/A run).
    n_per_side : int
        The size the check runs at.
    alpha : float
        The gate's family-wise level.
    min_effect_stored : float
        The minimum effect of the stored-baseline mode (the same-session mode uses 0).
    slowdowns : sequence of float
        Injected slowdowns (fractions) of the power curves.
    seed : int
        Chooses the 10 % of tests slowed in that scenario.
    confidence_level : float
        Of the Clopper-Pearson intervals.

    Returns
    -------
    GateCalibration
        Same-session rates from every split of each session's consecutive windows of
        ``2 n_per_side`` processes into two groups of ``n_per_side`` (all of them, enumerated);
        stored-baseline rates from every ordered pair of sessions (the first ``n_per_side``
        processes of each). Power: the current side's times multiplied per test (call phase of
        every test; every phase of one category, for each category; every phase of a seeded
        10 % of the tests).
    """
    notes: list[str] = []
    if not sessions:
        raise BenchError("calibrating the gate needs at least one session")
    check_design(n_per_side, n_per_side)
    tests = common_tests(*sessions).tests
    rows = []
    conditions = _injections(sessions[-1], list(tests), slowdowns, seed)

    def evaluate(source: str, pairs: list[tuple[ProcessSample, ProcessSample]], min_effect: float) -> None:
        base_values = np.stack([gate_values(b, tests).values for b, _ in pairs])
        components = gate_values(pairs[0][0], tests).components
        levels = gate_levels(len(components), alpha=alpha)
        for condition in conditions:
            current_values = np.stack(
                [gate_values(c.slowed(condition.factors(c), phase=condition.phase), tests).values for _, c in pairs]
            )
            fired = gate_excess(base_values, current_values, levels) > math.log1p(min_effect)
            count = int(fired.sum())
            interval = sps.binomtest(count, len(pairs)).proportion_ci(confidence_level=confidence_level)
            rows.append(
                {
                    "source": source,
                    "scenario": condition.scenario,
                    "category": condition.category,
                    "slowdown_pct": condition.slowdown * 100.0,
                    "min_effect_pct": min_effect * 100.0,
                    "comparisons": len(pairs),
                    "flagged": count,
                    "rate": count / len(pairs),
                    "ci_low": float(interval.low),
                    "ci_high": float(interval.high),
                }
            )

    splits = [
        (session.select(chosen), session.select(rest))
        for session in sessions
        for chosen, rest in _splits(session.n_processes, n_per_side)
    ]
    if splits:
        evaluate("A/A splits (same session)", splits, 0.0)
    else:
        notes.append(
            f"same session: no session has {2 * n_per_side} processes to split {n_per_side} vs {n_per_side} "
            f"(an A/A session of that size: check --against-rev on an unchanged tree)"
        )
    usable = [s for s in sessions if s.n_processes >= n_per_side]
    pairs = [
        (usable[i].select(range(n_per_side)), usable[j].select(range(n_per_side)))
        for i, j in itertools.permutations(range(len(usable)), 2)
    ]
    if pairs:
        evaluate("session pairs (stored baseline)", pairs, min_effect_stored)
    else:
        notes.append(
            f"stored baseline: needs two sessions with at least {n_per_side} processes each; "
            f"{len(usable)} recorded so far"
        )
    return GateCalibration(
        n_per_side=n_per_side,
        alpha=alpha,
        min_effect_same_session=0.0,
        min_effect_stored=min_effect_stored,
        rates=pd.DataFrame(
            rows,
            columns=[
                "source",
                "scenario",
                "category",
                "slowdown_pct",
                "min_effect_pct",
                "comparisons",
                "flagged",
                "rate",
                "ci_low",
                "ci_high",
            ],
        ),
        notes=tuple(notes),
    )


def format_calibration(calibration: GateCalibration) -> list[str]:
    """Plain lines: the false-alarm rates, and the power at +10 % (call phase) and +50 % (each category)."""
    c = calibration
    lines = [f"calibration of the gate at {c.n_per_side} vs {c.n_per_side} processes, family alpha {c.alpha:g}"]
    rates = c.rates
    for source, rows in rates.groupby("source", sort=False):
        aa = rows[rows["scenario"] == "A/A"].iloc[0]
        lines.append(
            f"  {source}: false alarms {aa.rate * 100:.1f} % ({aa.flagged} of {aa.comparisons}, enumerated) at minimum "
            f"effect {aa.min_effect_pct:.1f} %"
        )
        call = rows[(rows["scenario"] == "call phase, every test") & np.isclose(rows["slowdown_pct"], 10.0)]
        if len(call):
            lines.append(f"    power, call phase +10 %: {call.iloc[0].rate * 100:.0f} %")
        cats = rows[(rows["scenario"] == "one category") & np.isclose(rows["slowdown_pct"], 50.0)]
        if len(cats):
            weakest = cats.sort_values("rate").iloc[0]
            lines.append(
                f"    power, one category +50 %: {cats['rate'].min() * 100:.0f} % ({weakest.category}) to "
                f"{cats['rate'].max() * 100:.0f} %"
            )
    lines += [f"  {note}" for note in c.notes]
    return lines


# The spread of a session's drift assumed before a calibration exists: 4.3 % between two
# 5-repetition sessions of the same code on the study machine (sd of one session ~ 0.043 / sqrt 2).
ASSUMED_DRIFT_SD = 0.03


def simulate_gate_calibration(
    sample: ProcessSample,
    *,
    n_per_side: int,
    alpha: float = DEFAULT_ALPHA,
    min_effect_stored: float = DEFAULT_STORED_MIN_EFFECT,
    drift_sd: float = ASSUMED_DRIFT_SD,
    slowdowns: Sequence[float] = DEFAULT_SLOWDOWNS,
    draws: int = 2000,
    seed: int = 0,
) -> pd.DataFrame:
    """False alarms and power of the gate at ``n_per_side``, simulated from one session's noise.

    The session's log times are split into test means, a per-process effect and per-test
    residuals; simulated processes redraw the process effect (normal, the session's variance) and
    each test's residual (normal, that test's residual variance), so the simulated noise has the
    session's size and shape across tests. Slowdowns are injected as in :func:`calibrate_gate`
    (the call phase by each test's median call share). The stored-baseline rows add an
    independent drift per side and component with sd ``drift_sd``. What the enumerated
    calibration gives when enough sessions exist; this one exists from the first run on, and is
    only as good as the normal model and one session's variance estimates.

    Returns
    -------
    DataFrame
        Columns as :attr:`GateCalibration.rates` (``comparisons`` = draws), ``source`` "simulated
        from this session (same session)" or "... (stored baseline, drift sd X)".
    """
    check_design(n_per_side, n_per_side)
    if sample.n_processes < 3:
        raise BenchError("simulating the gate needs a session with at least 3 processes")
    tests = sorted(sample.passed_everywhere())
    if not tests:
        raise BenchError("no test passed in every process of the session")
    index = {t: i for i, t in enumerate(sample.tests)}
    columns = np.array([index[t] for t in tests])
    logs = np.log(sample.total_s[:, columns])
    mu = logs.mean(axis=0)
    effect = (logs - mu).mean(axis=1)
    residual = logs - mu - effect[:, None]
    residual_sd = np.sqrt(residual.var(axis=0, ddof=1) * sample.n_processes / max(1, sample.n_processes - 1))
    effect_sd = float(effect.std(ddof=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        call_share = np.nan_to_num(np.median(sample.phases_s["call"][:, columns] / sample.total_s[:, columns], axis=0))
    categories = np.array([sample.categories[i] for i in columns])
    names = sorted(set(categories))
    members = [np.flatnonzero(categories == c) for c in names]
    rng = np.random.default_rng(seed)

    def processes(n: int) -> np.ndarray:
        return (
            mu + rng.normal(0.0, effect_sd, (draws, n, 1)) + rng.normal(0.0, 1.0, (draws, n, len(tests))) * residual_sd
        )

    def components(values: np.ndarray) -> np.ndarray:
        return np.stack([values.mean(axis=-1), *[values[..., m].mean(axis=-1) for m in members]], axis=-1)

    base = components(processes(n_per_side))
    current = processes(n_per_side)
    levels = gate_levels(1 + len(names), alpha=alpha)
    drift = rng.normal(0.0, drift_sd, (2, draws, 1, 1 + len(names)))
    chosen = np.random.default_rng(seed).permutation(len(tests))[: max(1, round(0.1 * len(tests)))]
    conditions: list[tuple[str, str, float, np.ndarray]] = [("A/A", "", 0.0, np.zeros(len(tests)))]
    for s in slowdowns:
        conditions.append(("call phase, every test", "", s, np.log1p(s * call_share)))
        for name, m in zip(names, members):
            shift = np.zeros(len(tests))
            shift[m] = math.log1p(s)
            conditions.append(("one category", name, s, shift))
        shift = np.zeros(len(tests))
        shift[chosen] = math.log1p(s)
        conditions.append(("10 % of the tests", "", s, shift))
    rows = []
    for scenario, category, slowdown, shift in conditions:
        after = components(current + shift)
        for source, b, c, m in (
            ("simulated from this session (same session)", base, after, 0.0),
            (
                f"simulated from this session (stored baseline, drift sd {drift_sd * 100:.0f} %)",
                base + drift[0],
                after + drift[1],
                min_effect_stored,
            ),
        ):
            count = int((gate_excess(b, c, levels) > math.log1p(m)).sum())
            interval = sps.binomtest(count, draws).proportion_ci(confidence_level=0.95)
            rows.append(
                {
                    "source": source,
                    "scenario": scenario,
                    "category": category,
                    "slowdown_pct": slowdown * 100.0,
                    "min_effect_pct": m * 100.0,
                    "comparisons": draws,
                    "flagged": count,
                    "rate": count / draws,
                    "ci_low": float(interval.low),
                    "ci_high": float(interval.high),
                }
            )
    return pd.DataFrame(rows).sort_values(["source", "scenario", "category", "slowdown_pct"], kind="stable")
