"""Scaling: how per-test and whole-suite cost grow with schema width, reference data and suite size.

A sweep varies one scale knob at a time (`quiz_architectures.architectures` knobs) on each architecture:
`extra_tables` (synthetic tables added to the 15 of the quiz schema plus its synthetic
reference table), `reference_rows` (rows of the synthetic reference table, seeded like the
other reference data) and `copies` (every test parametrized that many times). Its variants are
the presets (the zero point of every knob) and `PRESET+knob=value` for every other value, all
in one interleaved run, so `Sweep.variants()` is what `suitebench.runner.run_benchmark` gets.

Fits, per architecture and knob (x = total tables, synthetic reference rows, or tests in the
process):

* per-test cost: OLS of per-test seconds on x with per-test fixed effects (`C(test)`; the copies
  of one test share its effect), cluster-robust by process when there are enough processes
  (as in `quiz_study.attribution`), else ordinary OLS (`cov_type` says which);
* whole-suite cost, one point per process: `suite_s` = the tests' totals plus the session-scoped
  fixtures' set-up (where rollback pays for its schema once), and `wall_s` = the whole process
  (interpreter start-up and collection included); ordinary OLS on x, intervals need >= 3
  processes (df = processes - 2; NaN below).

The projection to `PROJECTION_TESTS` tests extends the copies fit of the whole-suite cost
linearly, and every row says so (`kind = "PROJECTION"` and its assumptions).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import cache

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats as scipy_stats

from quiz_architectures.architectures import PRESETS, Switches, parse_spec
from quiz_study.errors import StudyError
from suitebench.stats import FIXTURE_PREFIX, measured_repetitions, measured_totals, t_interval

KNOBS: tuple[str, ...] = ("extra_tables", "reference_rows", "copies")
ARCHITECTURES: tuple[str, ...] = ("baseline", "transactional")
PROJECTION_TESTS = 5000
# As in quiz_study.attribution: cluster-robust intervals only with this many spare processes.
MIN_PROCESS_DF = 4
UNITS = {"extra_tables": "table", "reference_rows": "reference row", "copies": "test"}
X_NAMES = {"extra_tables": "tables", "reference_rows": "reference_rows", "copies": "tests"}
_COPY_ID = r"(\[copy\d+\]$)|((?<=\[)copy\d+-)|(-copy\d+(?=\]))"


@cache
def schema_tables(extra_tables: int = 0) -> int:
    """Tables the suite creates with `extra_tables` synthetic ones (the quiz schema, its synthetic
    reference table and the extras)."""
    from quiz_architectures.isolation import scaled_metadata

    return len(scaled_metadata(extra_tables)[0].tables)


@dataclass(frozen=True)
class Sweep:
    """Values of each knob to measure on each architecture (the default value is always added)."""

    extra_tables: tuple[int, ...] = (0, 100)
    reference_rows: tuple[int, ...] = (0, 10_000)
    copies: tuple[int, ...] = (1, 5)
    architectures: tuple[str, ...] = ARCHITECTURES

    def __post_init__(self) -> None:
        for architecture in self.architectures:
            if architecture not in PRESETS:
                raise StudyError(f"unknown architecture {architecture!r}; choose from {', '.join(PRESETS)}")
        for knob in KNOBS:
            for value in getattr(self, knob):
                replace(Switches(), **{knob: value})  # range check: StudyError if out of range

    def values(self, knob: str) -> list[int]:
        default = getattr(Switches(), knob)
        return sorted({default, *getattr(self, knob)})

    def variants(self) -> list[str]:
        """The presets, then every architecture x knob x non-default value, as variant specs."""
        specs = list(self.architectures)
        for knob in KNOBS:
            default = getattr(Switches(), knob)
            for value in self.values(knob):
                if value != default:
                    specs += [f"{architecture}+{knob}={value}" for architecture in self.architectures]
        return specs


@dataclass(frozen=True)
class SweepPoint:
    """What a variant label is in a sweep: `knob` None for a preset (every knob's zero point)."""

    architecture: str
    knob: str | None
    value: int | None


def classify(label: str) -> SweepPoint | None:
    """The sweep point of a variant label, or None when it is not a preset with at most one knob changed."""
    switches = parse_spec(label)
    default = Switches()
    knobs_changed = [k for k in KNOBS if getattr(switches, k) != getattr(default, k)]
    categorical = replace(switches, **{k: getattr(default, k) for k in KNOBS})
    architecture = next((name for name, preset in PRESETS.items() if preset == categorical), None)
    if architecture is None or len(knobs_changed) > 1:
        return None
    if not knobs_changed:
        return SweepPoint(architecture, None, None)
    return SweepPoint(architecture, knobs_changed[0], int(getattr(switches, knobs_changed[0])))


def _points(labels: Sequence[str]) -> dict[str, SweepPoint]:
    return {label: point for label in labels if (point := classify(label)) is not None}


def _x(knob: str, value: int, n_tests: float) -> float:
    if knob == "extra_tables":
        return float(schema_tables(value))
    if knob == "reference_rows":
        return float(value)
    return float(n_tests)


def base_test(node_id: str) -> str:
    """A test's node id without the `copyN` parametrization the copies knob adds."""
    return pd.Series([node_id]).str.replace(_COPY_ID, "", regex=True).str.replace(r"\[\]$", "", regex=True).iloc[0]


def sweep_processes(timings: pd.DataFrame, repetitions: pd.DataFrame) -> pd.DataFrame:
    """One row per measured process and knob it informs (a preset's process informs every knob).

    Returns
    -------
    DataFrame
        run_id, repetition, variant, architecture, knob, value, x, n_tests, test_sum_s (sum of
        test totals), suite_s (test_sum_s + session-scoped fixtures' set-up), wall_s.
    """
    reps = measured_repetitions(repetitions)
    points = _points(sorted(reps["variant"].unique()))
    if not any(p.knob for p in points.values()):
        raise StudyError("no sweep variant (a preset with one scale knob changed) in the data")
    totals = measured_totals(timings, variants=list(points))
    test_sums = totals.groupby(["run_id", "repetition"])["seconds"].agg(test_sum_s="sum", n_tests="count")
    fixtures = timings[
        timings["test"].astype(str).str.startswith(FIXTURE_PREFIX)
        & timings["valid"].astype(bool)
        & ~timings["warmup"].astype(bool)
    ]
    fixture_sums = fixtures.groupby(["run_id", "repetition"])["seconds"].sum().rename("fixture_s")
    reps = reps[reps["variant"].isin(list(points))].drop(columns=["n_tests"]).set_index(["run_id", "repetition"])
    joined = reps.join(test_sums, how="inner").join(fixture_sums, how="left").reset_index()
    joined["fixture_s"] = joined["fixture_s"].fillna(0.0)
    rows = []
    for row in joined.to_dict("records"):
        point = points[row["variant"]]
        knobs = [point.knob] if point.knob else list(KNOBS)
        for knob in knobs:
            value = point.value if point.knob else getattr(Switches(), knob)
            rows.append(
                {
                    "run_id": row["run_id"],
                    "repetition": int(row["repetition"]),
                    "variant": row["variant"],
                    "architecture": point.architecture,
                    "knob": knob,
                    "value": int(value),
                    "x": _x(knob, int(value), row["n_tests"]),
                    "n_tests": int(row["n_tests"]),
                    "test_sum_s": float(row["test_sum_s"]),
                    "suite_s": float(row["test_sum_s"] + row["fixture_s"]),
                    "wall_s": float(row["wall_s"]),
                }
            )
    frame = pd.DataFrame(rows)
    # A knob measured on one value only (its zero point) has no sweep.
    swept = frame.groupby(["architecture", "knob"])["value"].transform("nunique") > 1
    return frame[swept].reset_index(drop=True)


def sweep_tests(timings: pd.DataFrame, repetitions: pd.DataFrame) -> pd.DataFrame:
    """Per-test totals of the sweep's processes: the rows of `sweep_processes` joined with
    their tests (passing tests only; `base_test` groups the copies of a test)."""
    processes = sweep_processes(timings, repetitions)
    totals = measured_totals(timings, variants=list(processes["variant"].unique()))
    totals = totals[totals["outcome"] == "passed"]
    merged = processes.merge(
        totals[["run_id", "repetition", "test", "category", "seconds"]], on=["run_id", "repetition"], how="inner"
    )
    merged["base_test"] = merged["test"].map(base_test)
    return merged


def sweep_points_table(timings: pd.DataFrame, repetitions: pd.DataFrame) -> pd.DataFrame:
    """Per architecture, knob and value: the measured means (what the scaling figure plots).

    Returns
    -------
    DataFrame
        architecture, knob, value, x, unit, n_processes, n_tests, per_test_s (mean per-test
        total), suite_s, wall_s (means over processes).
    """
    processes = sweep_processes(timings, repetitions)
    processes = processes.assign(per_test_s=processes["test_sum_s"] / processes["n_tests"])
    table = (
        processes.groupby(["architecture", "knob", "value"], sort=True)
        .agg(
            x=("x", "mean"),
            n_processes=("repetition", "count"),
            n_tests=("n_tests", "mean"),
            per_test_s=("per_test_s", "mean"),
            suite_s=("suite_s", "mean"),
            wall_s=("wall_s", "mean"),
        )
        .reset_index()
    )
    table["unit"] = table["knob"].map(UNITS)
    return table


# ---------------------------------------------------------------- fits


@dataclass(frozen=True)
class Slope:
    """A fitted straight line: seconds = intercept_s + slope_s_per_unit * x."""

    slope_s_per_unit: float
    ci_low_s_per_unit: float
    ci_high_s_per_unit: float
    p_value: float
    intercept_s: float
    se_s_per_unit: float
    df: float
    cov_type: str


def fit_line(x: np.ndarray, y: np.ndarray, *, alpha: float = 0.05) -> Slope:
    """Ordinary least squares y = a + b x with a t interval for b (NaN when df = n - 2 < 1).

    Parameters
    ----------
    x, y : ndarray
        One point per process.
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(np.unique(x)) < 2:
        raise StudyError("a slope needs at least two distinct x values")
    result = sm.OLS(y, sm.add_constant(x)).fit()
    df = float(result.df_resid)
    se = float(np.sqrt(result.cov_params()[1, 1])) if df >= 1 else float("nan")
    slope = t_interval(float(result.params[1]), se, df, confidence_level=1 - alpha)
    return Slope(
        slope_s_per_unit=slope.estimate,
        ci_low_s_per_unit=slope.ci_low,
        ci_high_s_per_unit=slope.ci_high,
        p_value=slope.p_value,
        intercept_s=float(result.params[0]),
        se_s_per_unit=se,
        df=df,
        cov_type="nonrobust",
    )


def fit_per_test_slope(frame: pd.DataFrame, *, alpha: float = 0.05) -> Slope:
    """OLS of per-test seconds on x with per-test fixed effects (`base_test`), cluster-robust by
    process when processes - 2 >= MIN_PROCESS_DF, else ordinary (see the module docstring)."""
    if frame["x"].nunique() < 2:
        raise StudyError("a slope needs at least two distinct x values")
    tests = pd.Categorical(frame["base_test"])
    x = np.column_stack([np.eye(len(tests.categories))[tests.codes], frame["x"].to_numpy(dtype=float)])
    y = frame["seconds"].to_numpy(dtype=float)
    process = pd.Categorical(frame["run_id"].astype(str) + "/" + frame["repetition"].astype(str))
    n_processes = len(process.categories)
    process_df = n_processes - 2
    model = sm.OLS(y, x)
    if process_df >= MIN_PROCESS_DF:
        result = model.fit(cov_type="cluster", cov_kwds={"groups": process.codes, "use_correction": False})
        variance = float(np.asarray(result.cov_params())[-1, -1]) * n_processes / process_df
        df, cov_type = float(process_df), "cluster"
    else:
        result = model.fit()
        df, cov_type = float(result.df_resid), "nonrobust"
        variance = float(np.asarray(result.cov_params())[-1, -1]) if df >= 1 else float("nan")
    se = float(np.sqrt(variance)) if variance >= 0 else float("nan")
    slope = t_interval(float(np.asarray(result.params)[-1]), se, df, confidence_level=1 - alpha)
    return Slope(
        slope_s_per_unit=slope.estimate,
        ci_low_s_per_unit=slope.ci_low,
        ci_high_s_per_unit=slope.ci_high,
        p_value=slope.p_value,
        # At x = 0 for the average test (the mean of the test effects).
        intercept_s=float(np.asarray(result.params)[:-1].mean()),
        se_s_per_unit=se,
        df=df,
        cov_type=cov_type,
    )


def scaling_slopes(timings: pd.DataFrame, repetitions: pd.DataFrame, *, alpha: float = 0.05) -> pd.DataFrame:
    """Fitted slopes per architecture, knob and measure (per_test_s, suite_s, wall_s).

    Returns
    -------
    DataFrame
        architecture, knob, measure, unit, slope_s_per_unit, ci_low_s_per_unit,
        ci_high_s_per_unit, p_value, intercept_s, df, cov_type, grows (the interval lies above
        zero), flat (the interval covers zero: no growth shown - not proof of none; NaN-interval
        rows are neither), n_points (distinct x), n_processes, x_min, x_max.
    """
    processes = sweep_processes(timings, repetitions)
    tests = sweep_tests(timings, repetitions)
    rows = []
    for (architecture, knob), group in processes.groupby(["architecture", "knob"], sort=True):
        per_test = tests[(tests["architecture"] == architecture) & (tests["knob"] == knob)]
        fits = {
            "per_test_s": fit_per_test_slope(per_test, alpha=alpha),
            "suite_s": fit_line(group["x"].to_numpy(), group["suite_s"].to_numpy(), alpha=alpha),
            "wall_s": fit_line(group["x"].to_numpy(), group["wall_s"].to_numpy(), alpha=alpha),
        }
        for measure, slope in fits.items():
            has_ci = np.isfinite(slope.ci_low_s_per_unit)
            rows.append(
                {
                    "architecture": architecture,
                    "knob": knob,
                    "measure": measure,
                    "unit": UNITS[knob],
                    "slope_s_per_unit": slope.slope_s_per_unit,
                    "ci_low_s_per_unit": slope.ci_low_s_per_unit,
                    "ci_high_s_per_unit": slope.ci_high_s_per_unit,
                    "p_value": slope.p_value,
                    "intercept_s": slope.intercept_s,
                    "df": slope.df,
                    "cov_type": slope.cov_type,
                    "grows": bool(has_ci and slope.ci_low_s_per_unit > 0),
                    "flat": bool(has_ci and slope.ci_low_s_per_unit <= 0 <= slope.ci_high_s_per_unit),
                    "n_points": int(group["x"].nunique()),
                    "n_processes": int(len(group)),
                    "x_min": float(group["x"].min()),
                    "x_max": float(group["x"].max()),
                }
            )
    return pd.DataFrame(rows)


def project_suite(
    timings: pd.DataFrame,
    repetitions: pd.DataFrame,
    *,
    n_tests: int = PROJECTION_TESTS,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """PROJECTION of the whole-suite cost at `n_tests` tests from the copies sweep's linear fit.

    Returns
    -------
    DataFrame
        kind ("PROJECTION"), architecture (and a "baseline / transactional" speedup row when both
        are there), measure (suite_s, wall_s), n_tests, projected_s (for the speedup row: the
        ratio), ci_low_s, ci_high_s (t interval of the fitted mean at n_tests; the speedup's by
        the delta method on the log ratio, fits independent), measured_n_min, measured_n_max,
        extrapolation_factor (n_tests / measured_n_max), per_test_slope_s (the per-test cost's
        slope in suite size; the projection assumes it is negligible), assumptions.
    """
    processes = sweep_processes(timings, repetitions)
    copies = processes[processes["knob"] == "copies"]
    if copies.empty:
        raise StudyError("the projection needs a copies sweep (two or more suite sizes)")
    slopes = scaling_slopes(timings, repetitions, alpha=alpha)
    rows = []
    for measure in ("suite_s", "wall_s"):
        estimates = {}
        for architecture, group in copies.groupby("architecture", sort=True):
            x, y = group["x"].to_numpy(dtype=float), group[measure].to_numpy(dtype=float)
            result = sm.OLS(y, sm.add_constant(x)).fit()
            point = np.array([1.0, float(n_tests)])
            projected = float(point @ result.params)
            df = float(result.df_resid)
            se = float(np.sqrt(point @ result.cov_params() @ point)) if df >= 1 else float("nan")
            interval = t_interval(projected, se, df, confidence_level=1 - alpha)
            estimates[architecture] = (projected, se)
            per_test = slopes[
                (slopes["architecture"] == architecture)
                & (slopes["knob"] == "copies")
                & (slopes["measure"] == "per_test_s")
            ]["slope_s_per_unit"]
            rows.append(
                {
                    "kind": "PROJECTION",
                    "architecture": architecture,
                    "measure": measure,
                    "n_tests": n_tests,
                    "projected_s": projected,
                    "ci_low_s": interval.ci_low,
                    "ci_high_s": interval.ci_high,
                    "df": df,
                    "measured_n_min": int(x.min()),
                    "measured_n_max": int(x.max()),
                    "extrapolation_factor": n_tests / x.max(),
                    "per_test_slope_s": float(per_test.iloc[0]) if len(per_test) else float("nan"),
                    "assumptions": _assumptions(x, n_tests),
                }
            )
        if {"baseline", "transactional"} <= set(estimates):
            (b, b_se), (t, t_se) = estimates["baseline"], estimates["transactional"]
            ratio = b / t
            log_se = float(np.hypot(b_se / b, t_se / t)) if b > 0 and t > 0 else float("nan")
            quantile = scipy_stats.norm.ppf(1 - alpha / 2)
            if np.isfinite(log_se):
                low, high = ratio * np.exp(-quantile * log_se), ratio * np.exp(quantile * log_se)
            else:
                low, high = float("nan"), float("nan")
            rows.append(
                {
                    "kind": "PROJECTION",
                    "architecture": "baseline / transactional",
                    "measure": measure,
                    "n_tests": n_tests,
                    "projected_s": ratio,
                    "ci_low_s": float(low),
                    "ci_high_s": float(high),
                    "df": float("nan"),
                    "measured_n_min": int(copies["x"].min()),
                    "measured_n_max": int(copies["x"].max()),
                    "extrapolation_factor": n_tests / copies["x"].max(),
                    "per_test_slope_s": float("nan"),
                    "assumptions": "speedup = ratio of the two projections (a ratio, not seconds); "
                    + _assumptions(copies["x"].to_numpy(), n_tests),
                }
            )
    return pd.DataFrame(rows)


def _assumptions(x: np.ndarray, n_tests: int) -> str:
    return (
        f"PROJECTION, not a measurement: straight-line extrapolation from suites of {int(np.min(x))}-"
        f"{int(np.max(x))} tests to {n_tests} ({n_tests / np.max(x):.0f}x the largest measured); "
        "assumes tests like the swept subset (copies of it), one process (no xdist), a per-test "
        "cost that does not grow with suite size (see per_test_slope_s), and no memory or "
        "database growth beyond the measured range."
    )
