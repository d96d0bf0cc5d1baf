"""Seeded simulations: do the report's intervals cover, and does the regression gate keep its
false-alarm rate and reach its power, at the sizes the study runs (4 and 5 processes per side)?

The noise model is written out here, with where each number came from:

* The suite: 194 tests in seven categories (auth 21, crud 51, integration 7, isolation 10, jwt 61,
  middleware 32, workflow 12); per-test log mean time of transactional ~ N(-4.5, 1.0) and of
  baseline ~ N(-2.6, 0.3) (a whole-suite run recorded on the study machine, 2026-12-02); the call
  phase's share of each transactional test ~ Beta(3, 1.6) (that run: quantiles 0.17 / 0.57 / 0.67
  / 0.82 / 0.99).
* log time of test i in process p = mean_i + process effect_p + residual_pi, the residual a
  standardised gamma (right-skewed like the measured residuals) scaled by a per-test sd drawn
  log-normally (spread 0.5) around a median.
* "quiet" (an idle machine): tests/data/golden-small/run (smoke selection, 3 processes a side)
  has per-test residual sd medians 0.12 (transactional) and 0.05 (baseline) and residual skew
  ~0.7 (gamma shape 8); process effects 0.012 and 0.025 give the per-process sd of the mean log
  time over 194 tests of 0.017 implied by the issue's two 5-repetition sessions (4.3 % apart, Welch
  p = 0.005); sessions drift by sd 0.03 (that same 4.3 %).
* "loaded" (two other test suites running on the 2-core machine, the 2026-12-02 run):
  transactional process sd 0.09, residual median 0.30; baseline process sd 0.23, residual median
  0.22, skew 1.75 (gamma shape 1.3).

Measured with these seeds (the README quotes them): coverage of the 95 % intervals 0.94-0.96
(the median per-test improvement, a Harrell-Davis median with a jackknife interval, included; with
the sample median its jackknife covered 0.98 on the idle machine's noise); gate false alarms <= 1 % in both modes;
same-session power for +10 % in every test's call phase 0.92 at 4 processes a side and 0.99 at 5
(idle), for +50 % in one category 0.94-1.0 at 4 and 1.0 at 5 (regression.OVERALL_SHARE = 0.7; at
0.5 the call-phase power at 4 was 0.88, below the 0.90 target); stored-baseline mode at the default
10 % minimum effect: 90 % power from a uniform slowdown of about 20 % at 4 and 17 % at 5.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from suitebench import regression
from suitebench.stats import harrell_davis_median

CATEGORY_SIZES = {
    "auth": 21,
    "crud": 51,
    "integration": 7,
    "isolation": 10,
    "jwt": 61,
    "middleware": 32,
    "workflow": 12,
}
CATEGORY = np.concatenate([[i] * n for i, n in enumerate(CATEGORY_SIZES.values())])
N_TESTS = CATEGORY.size
# process sd, residual sd median, gamma shape; candidate (transactional) and baseline
REGIMES = {
    "quiet": {"cand": (0.012, 0.12, 8.0), "base": (0.025, 0.06, 8.0)},
    "loaded": {"cand": (0.09, 0.30, 8.0), "base": (0.23, 0.22, 1.3)},
}
SESSION_DRIFT_SD = 0.03


class Suite:
    """The fixed suite of one simulation: per-test means, residual scales and call shares."""

    def __init__(self, seed: int) -> None:
        rng = np.random.default_rng(seed)
        self.rng = rng
        self.mean = {"cand": rng.normal(-4.5, 1.0, N_TESTS), "base": rng.normal(-2.6, 0.3, N_TESTS)}
        self.scale = {side: np.exp(rng.normal(0.0, 0.5, N_TESTS)) for side in ("cand", "base")}
        self.call_share = rng.beta(3.0, 1.6, N_TESTS)

    def logs(self, side: str, regime: str, *, sims: int, n: int) -> np.ndarray:
        """(sims, n, tests) log seconds of ``n`` processes."""
        process_sd, residual_sd, shape = REGIMES[regime][side]
        residual = (self.rng.gamma(shape, size=(sims, n, N_TESTS)) - shape) / math.sqrt(shape)
        return (
            self.mean[side] + residual_sd * self.scale[side] * residual + self.rng.normal(0.0, process_sd, (sims, n, 1))
        )


def covered(low: np.ndarray, high: np.ndarray, truth: np.ndarray | float) -> float:
    return float(np.mean((low <= truth) & (truth <= high)))


def welch_interval(base: np.ndarray, cand: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    interval = stats.ttest_ind(base, cand, axis=-2, equal_var=False).confidence_interval(0.95)
    return interval.low, interval.high


# --------------------------------------------------------------------------- coverage


@pytest.mark.parametrize("regime", sorted(REGIMES))
def test_every_interval_the_report_shows_covers_at_four_and_five_processes(regime):
    suite = Suite(seed=20261202)
    # The truth of a suite sum: E log(sum of test times) per side, from 20,000 simulated processes.
    truth_sum = {
        side: float(np.mean(np.log(np.exp(suite.logs(side, regime, sims=1, n=20_000)).sum(axis=-1))))
        for side in ("base", "cand")
    }
    true_log_ratio = suite.mean["base"] - suite.mean["cand"]
    results = {}
    for n in (4, 5):
        sims = 1500
        base = suite.logs("base", regime, sims=sims, n=n)
        cand = suite.logs("cand", regime, sims=sims, n=n)
        # suite speedup and the suite verdict: Welch t on each process's log sum of test totals
        low, high = welch_interval(np.log(np.exp(base).sum(-1))[..., None], np.log(np.exp(cand).sum(-1))[..., None])
        results[("suite speedup", n)] = covered(low[:, 0], high[:, 0], truth_sum["base"] - truth_sum["cand"])
        # per-test speedups (and the API test's, and the seed-claim improvement): Welch t on logs
        low, high = welch_interval(base, cand)
        results[("per-test speedup", n)] = covered(low, high, true_log_ratio)
        # API verdict and the seed-claim rows: geometric mean of one test, one-sample t on logs
        interval = stats.ttest_1samp(cand[:, :, 0], 0.0, axis=1).confidence_interval(0.95)
        results[("API geometric mean", n)] = covered(interval.low, interval.high, suite.mean["cand"][0])
        # median per-test improvement: Harrell-Davis median over the fixed tests, delete-one-process
        # jackknife t interval (stats.median_test_improvement's arithmetic, written out here)
        truth = float(harrell_davis_median(true_log_ratio)[0])
        hits = 0
        for s in range(500):
            b, c = base[s], cand[s]
            point = harrell_davis_median(b.mean(0) - c.mean(0))[0]
            variances = []
            for side, other, sign in ((b, c, 1.0), (c, b, -1.0)):
                loo = (side.sum(0) - side) / (n - 1)
                values = harrell_davis_median(sign * (loo - other.mean(0)))
                variances.append((n - 1) / n * np.sum((values - values.mean()) ** 2))
            df = sum(variances) ** 2 / sum(v**2 / (n - 1) for v in variances)
            half = stats.t.ppf(0.975, df) * math.sqrt(sum(variances))
            hits += point - half <= truth <= point + half
        results[("median per-test improvement", n)] = hits / 500
    print(f"\ncoverage of the 95 % intervals ({regime}):")
    for (name, n), value in results.items():
        print(f"  {name}, {n} per side: {value:.3f}")
    for (name, n), value in results.items():
        # [0.93, 0.97] is the target; the bounds allow the Monte Carlo error of 500-1500 draws
        # (the sample median's jackknife, 0.975-0.98 on the quiet noise, fails the upper bound)
        assert 0.925 <= value <= 0.975, (name, n, value)


# --------------------------------------------------------------------------- the gate


def components(logs: np.ndarray) -> np.ndarray:
    """The gate's per-process values: mean log time over all tests, then over each category."""
    parts = [logs.mean(-1), *[logs[..., CATEGORY == k].mean(-1) for k in range(len(CATEGORY_SIZES))]]
    return np.stack(parts, axis=-1)


def rate(base: np.ndarray, current: np.ndarray, *, min_effect: float, alpha: float = 0.01) -> float:
    levels = regression.gate_levels(base.shape[-1], alpha=alpha)
    return float(np.mean(regression.gate_excess(base, current, levels) > math.log1p(min_effect)))


def scenarios(suite: Suite) -> dict[str, np.ndarray]:
    """Log-time shifts per test: the issue's injected slowdowns."""
    out = {"A/A": np.zeros(N_TESTS), "call phase +10 %": np.log1p(0.10 * suite.call_share)}
    for k, name in enumerate(CATEGORY_SIZES):
        out[f"{name} +50 %"] = np.where(CATEGORY == k, math.log(1.5), 0.0)
    tenth = suite.rng.permutation(N_TESTS)[: N_TESTS // 10]
    out["10 % of the tests +50 %"] = np.where(np.isin(np.arange(N_TESTS), tenth), math.log(1.5), 0.0)
    return out


def test_same_session_gate_false_alarms_and_power():
    suite = Suite(seed=7)
    table = {}
    for n in (4, 5):
        sims = 4000
        base = components(suite.logs("cand", "quiet", sims=sims, n=n))
        current = suite.logs("cand", "quiet", sims=sims, n=n)
        for name, shift in scenarios(suite).items():
            table[(name, n)] = rate(base, components(current + shift), min_effect=0.0)
    print("\nsame-session gate (quiet machine), share of sessions flagged:")
    for (name, n), value in table.items():
        print(f"  {name}, {n} per side: {value:.3f}")
    for n in (4, 5):
        assert table[("A/A", n)] <= 0.012  # target 1 %; 4000 draws
    # The targets (>= 0.90), less the Monte Carlo error of 4000 draws (~0.005).
    assert table[("call phase +10 %", 4)] >= 0.9 and table[("call phase +10 %", 5)] >= 0.93
    for name in CATEGORY_SIZES:
        assert table[(f"{name} +50 %", 4)] >= 0.9 and table[(f"{name} +50 %", 5)] >= 0.93


def test_same_session_gate_false_alarms_under_load():
    suite = Suite(seed=8)
    for n in (4, 5):
        base = components(suite.logs("cand", "loaded", sims=4000, n=n))
        current = components(suite.logs("cand", "loaded", sims=4000, n=n))
        assert rate(base, current, min_effect=0.0) <= 0.012


def sessions(suite: Suite, *, count: int, n: int, shift: np.ndarray | float = 0.0) -> np.ndarray:
    """(count, n, components) values of separate sessions, each with its own drift per component."""
    drift = suite.rng.normal(0.0, SESSION_DRIFT_SD, (count, 1, 1 + len(CATEGORY_SIZES)))
    return components(suite.logs("cand", "quiet", sims=count, n=n) + shift) + drift


def test_stored_baseline_gate_false_alarms_power_and_calibrated_minimum_effect():
    suite = Suite(seed=9)
    smallest = {}
    for n in (4, 5):
        base = sessions(suite, count=4000, n=n)
        current = sessions(suite, count=4000, n=n)
        aa = rate(base, current, min_effect=regression.DEFAULT_STORED_MIN_EFFECT)
        assert aa <= 0.01, (n, aa)
        # A uniform slowdown moves every component by the same log amount.
        for slowdown in np.arange(0.10, 0.40, 0.01):
            power = rate(base, current + math.log1p(slowdown), min_effect=regression.DEFAULT_STORED_MIN_EFFECT)
            if power >= 0.9:
                smallest[n] = float(slowdown)
                break
    print(f"\nstored baseline, minimum effect 10 %: 90 % power from a uniform slowdown of {smallest}")
    assert 0.12 <= smallest[4] <= 0.30 and 0.12 <= smallest[5] <= 0.30


def test_minimum_effect_calibrated_from_ten_sessions_keeps_false_alarms_near_one_percent():
    """calibrate_minimum_effect on 10 simulated A/A sessions, then fresh session pairs at that m."""
    suite = Suite(seed=10)
    n = 4
    names = (regression.OVERALL, *CATEGORY_SIZES)
    realised = []
    for repeat in range(8):
        values = sessions(suite, count=10, n=n)
        within = values.var(axis=1, ddof=1).mean(axis=0)
        spread = values.mean(axis=1).var(axis=0, ddof=1)
        upper = 9 * spread / stats.chi2.ppf(0.1, 9)
        between = np.maximum(0.0, upper - within / n)
        m = regression.minimum_effect_for(
            within_variance=within, between_variance=between, n_base=n, n_current=n, draws=4000, seed=repeat
        )
        assert len(names) == values.shape[-1]
        realised.append(rate(sessions(suite, count=2000, n=n), sessions(suite, count=2000, n=n), min_effect=m))
    print(f"\nfalse alarms across sessions at the calibrated m (8 calibrations): {np.round(realised, 4)}")
    # The 90 % upper bound of the drift variance makes most calibrations conservative.
    assert np.median(realised) <= 0.01 and max(realised) <= 0.03
