"""Regression tracking: stored baselines, the regression check, and its calibration.

A baseline is a versioned JSON file holding, per test, category and suite, the raw per-repetition
samples (so later checks can run significance tests, not just compare two numbers) and, per test,
the median deterministic counters (SQL statements, connections, ...).

The check has two gates (:func:`check_regressions`):

* timing: a test regresses when its slowdown (ratio of medians - 1) exceeds ``threshold`` AND a
  one-sided Mann-Whitney test (current slower than baseline) is significant at ``alpha`` after
  Holm correction across tests. Both are needed: the threshold says the change matters, the test
  says it is not noise. "Not flagged" means no regression was shown, not that there is none.
* counters: the counters are deterministic, so ANY increase of a test's median counter is flagged,
  without statistics.

:func:`calibrate` measures, on a run's own repetitions, how often the timing gate raises a false
alarm (A/A splits) and how often it catches injected slowdowns (power). Splits of one run see only
within-run noise; drift between runs (another day, another machine state) adds to it, so the
measured false-alarm rate is a lower bound for checks across runs.
"""

from __future__ import annotations

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
from suitebench.stats import (
    COUNTER_COLUMNS,
    holm_adjust_fast,
    measured_repetitions,
    measured_totals,
    ratio_of_medians,
    repetition_sums,
)
from suitebench.store import check_name

SCHEMA_VERSION = 1


# --------------------------------------------------------------------------- baselines


@dataclass(frozen=True)
class Samples:
    """Per-repetition seconds of one unit (test, category or suite)."""

    n: int
    median_s: float
    samples_s: tuple[float, ...]


@dataclass(frozen=True)
class TestBaseline:
    """One test in a baseline: its samples, category and median deterministic counters."""

    category: str
    n: int
    median_s: float
    samples_s: tuple[float, ...]
    counters: Mapping[str, float | None]


@dataclass(frozen=True)
class Baseline:
    """A stored baseline (see :func:`record_baseline` for the file layout)."""

    name: str
    variant: str
    created_at: str
    source_run_ids: tuple[str, ...]
    repetitions: tuple[int, ...]
    metadata: Mapping[str, Any]
    tests: Mapping[str, TestBaseline]
    categories: Mapping[str, Samples]
    suite: Samples
    wall: Samples | None
    schema_version: int = SCHEMA_VERSION


def _samples_json(values: Sequence[float]) -> dict[str, Any]:
    values = [float(v) for v in values]
    return {"n": len(values), "median_s": float(np.median(values)) if values else None, "samples_s": values}


def _counter_value(value: float) -> int | float | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    value = float(value)
    return int(value) if value.is_integer() else value


def baseline_path(name: str, store_dir: str | os.PathLike[str]) -> Path:
    """Path of the baseline called ``name`` in ``store_dir``.

    Parameters
    ----------
    name : str
        Letters, digits, ``.``, ``_`` and ``-``; starts with a letter or digit.
    store_dir : path
        Directory of stored baselines (``data/baselines``).

    Returns
    -------
    Path
        ``store_dir / f"{name}.json"``.
    """
    return Path(store_dir) / f"{check_name(name, what='baseline name')}.json"


def list_baselines(store_dir: str | os.PathLike[str]) -> list[str]:
    """Names of the baselines stored in ``store_dir`` (empty if it does not exist).

    Parameters
    ----------
    store_dir : path
        Directory of stored baselines.

    Returns
    -------
    list of str
        Sorted names.
    """
    directory = Path(store_dir)
    return sorted(p.stem for p in directory.glob("*.json")) if directory.is_dir() else []


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
    """Store one variant's measured timings as a named baseline.

    Parameters
    ----------
    timings : DataFrame
        Tidy timings; only measured totals (valid, not warm-up) of ``variant`` are stored.
    repetitions : DataFrame or None
        ``repetitions.csv``, for the process wall times; None stores no wall times.
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
        The written file. Layout: ``schema_version, name, variant, created_at`` (UTC ISO 8601),
        ``source_run_ids, repetitions, metadata``, ``tests: {node id: {category, n, median_s,
        samples_s, counters: {sql_statements, ddl_statements, connections_opened, commits,
        rollbacks, savepoints}}}`` (median counters), ``categories: {name: {n, median_s,
        samples_s}}`` and ``suite`` (per-repetition sums), ``wall`` (process wall seconds or null).

    Raises
    ------
    BenchError
        Bad name, existing baseline without ``overwrite``, unknown variant, no measured rows.
    """
    path = baseline_path(name, store_dir)
    if path.exists() and not overwrite:
        raise BenchError(f"baseline {name!r} exists at {path}; choose another name or overwrite it")
    if variant not in set(timings["variant"].astype(str)):
        available = ", ".join(sorted(set(timings["variant"].astype(str)))) or "none"
        raise BenchError(f"variant {variant!r} not in the timings; available: {available}")
    totals = measured_totals(timings, variants=[variant])
    if totals.empty:
        raise BenchError(f"no valid, non-warm-up repetitions of {variant!r} to record")
    totals = totals.sort_values(["test", "repetition"])

    tests: dict[str, Any] = {}
    for test, rows in totals.groupby("test", sort=True):
        entry = _samples_json(rows["seconds"].to_numpy(float))
        counters = {
            column: _counter_value(rows[column].astype(float).median()) if column in rows else None
            for column in COUNTER_COLUMNS
        }
        tests[str(test)] = {"category": str(rows["category"].iloc[0]), **entry, "counters": counters}
    categories = {
        str(category): _samples_json(rows.sort_values("repetition")["seconds"])
        for category, rows in repetition_sums(totals, by="category").groupby("category", sort=True)
    }
    suite = _samples_json(repetition_sums(totals).sort_values("repetition")["seconds"])
    wall = None
    if repetitions is not None:
        walls = measured_repetitions(repetitions, variants=[variant]).sort_values("repetition")
        wall = _samples_json(walls["wall_s"])

    document = {
        "schema_version": SCHEMA_VERSION,
        "name": name,
        "variant": variant,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "source_run_ids": sorted(set(totals["run_id"].astype(str))) if "run_id" in totals else [],
        "repetitions": sorted(int(r) for r in totals["repetition"].unique()),
        "metadata": dict(metadata or {}),
        "tests": tests,
        "categories": categories,
        "suite": suite,
        "wall": wall,
    }
    try:
        text = json.dumps(document, indent=2, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise BenchError(f"baseline metadata is not plain JSON: {error}") from error
    path.parent.mkdir(parents=True, exist_ok=True)
    # write-then-rename: a crash never leaves a half-written baseline behind
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text + "\n")
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def _samples(entry: Mapping[str, Any]) -> Samples:
    values = tuple(float(v) for v in entry["samples_s"])
    median = entry.get("median_s")
    return Samples(n=len(values), median_s=math.nan if median is None else float(median), samples_s=values)


def load_baseline(name: str, store_dir: str | os.PathLike[str]) -> Baseline:
    """Read a baseline written by :func:`record_baseline`.

    Parameters
    ----------
    name : str
        Baseline name.
    store_dir : path
        Directory of stored baselines.

    Returns
    -------
    Baseline
        The stored samples, counters and metadata.

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
        raise BenchError(f"baseline {path} has schema_version {version!r}; this code reads {SCHEMA_VERSION}")
    try:
        tests = {
            test: TestBaseline(
                category=entry["category"],
                n=len(entry["samples_s"]),
                median_s=float(entry["median_s"]),
                samples_s=tuple(float(v) for v in entry["samples_s"]),
                counters=dict(entry.get("counters", {})),
            )
            for test, entry in document["tests"].items()
        }
        return Baseline(
            name=document["name"],
            variant=document["variant"],
            created_at=document["created_at"],
            source_run_ids=tuple(document.get("source_run_ids", ())),
            repetitions=tuple(document.get("repetitions", ())),
            metadata=document.get("metadata", {}),
            tests=tests,
            categories={key: _samples(value) for key, value in document["categories"].items()},
            suite=_samples(document["suite"]),
            wall=_samples(document["wall"]) if document.get("wall") else None,
            schema_version=version,
        )
    except (KeyError, TypeError, ValueError) as error:
        raise BenchError(f"baseline {path} is malformed: {error!r}") from error


# --------------------------------------------------------------------------- the detector


class TimingDecisions(NamedTuple):
    """Per-test outcome of the timing gate; arrays aligned with the input sequences."""

    ratio: np.ndarray
    p_value: np.ndarray
    p_holm: np.ndarray
    flagged: np.ndarray


def _one_sided_mwu(current: np.ndarray, base: np.ndarray) -> np.ndarray:
    """One-sided Mann-Whitney p-values, column-wise over two (n, tests) matrices.

    scipy's ``method="auto"`` decides exact vs asymptotic once for the whole array (any tie in
    any column makes all asymptotic); grouping columns by ties reproduces the per-test choice,
    so the vectorised path gives the same p-values as one call per test.
    """
    p = np.full(current.shape[1], math.nan)
    both = np.concatenate([current, base], axis=0)
    ordered = np.sort(both, axis=0)
    tied = (np.diff(ordered, axis=0) == 0).any(axis=0)
    constant = ordered[0] == ordered[-1]
    for group in (tied & ~constant, ~tied & ~constant):
        if group.any():
            p[group] = sps.mannwhitneyu(
                current[:, group], base[:, group], alternative="greater", axis=0, method="auto"
            ).pvalue
    return p


def detect_timing_regressions(
    base_samples: Sequence[np.ndarray],
    current_samples: Sequence[np.ndarray],
    *,
    threshold: float,
    alpha: float,
) -> TimingDecisions:
    """The timing gate, for aligned per-test samples.

    Parameters
    ----------
    base_samples, current_samples : sequence of ndarray
        Seconds per repetition, one array per test, same order on both sides.
    threshold : float
        Minimum slowdown that counts (0.2 = 20 %), applied to the ratio of medians.
    alpha : float
        Family-wise error rate of the Holm-corrected one-sided Mann-Whitney tests.

    Returns
    -------
    TimingDecisions
        ``ratio`` (median current / median base), ``p_value`` (one-sided Mann-Whitney,
        alternative: current slower; NaN when a side has no samples or all values are equal:
        nothing to test), ``p_holm`` (Holm across the tests with a p-value) and ``flagged``
        (True: ``ratio - 1 > threshold`` and ``p_holm < alpha``; False: no regression shown).
    """
    n_tests = len(base_samples)
    if len(current_samples) != n_tests:
        raise BenchError("base and current samples must list the same tests")
    base_list = [np.asarray(b, dtype=float) for b in base_samples]
    current_list = [np.asarray(c, dtype=float) for c in current_samples]
    ratio = np.full(n_tests, math.nan)
    p_value = np.full(n_tests, math.nan)
    usable = np.array([b.size > 0 and c.size > 0 for b, c in zip(base_list, current_list)], dtype=bool)
    same_shape = (
        usable.all()
        and n_tests > 0
        and len({b.size for b in base_list}) == 1
        and len({c.size for c in current_list}) == 1
    )
    if same_shape:
        base = np.column_stack(base_list)
        current = np.column_stack(current_list)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = ratio_of_medians(current, base, axis=0)
        p_value = _one_sided_mwu(current, base)
    else:
        for i in np.flatnonzero(usable):
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio[i] = ratio_of_medians(current_list[i], base_list[i])
            p_value[i] = _one_sided_mwu(current_list[i][:, None], base_list[i][:, None])[0]
    p_holm = holm_adjust_fast(p_value)
    with np.errstate(invalid="ignore"):
        flagged = ((ratio - 1.0) > threshold) & (p_holm < alpha)
    return TimingDecisions(ratio=ratio, p_value=p_value, p_holm=p_holm, flagged=np.asarray(flagged, bool))


# --------------------------------------------------------------------------- the check


@dataclass(frozen=True)
class Finding:
    """One flagged regression.

    ``kind`` is "timing" or "counter". For timing findings ``slowdown_pct`` is
    ``(median current / median baseline - 1) x 100`` with a bootstrap interval
    (``ci_low_pct``, ``ci_high_pct``), ``p_value`` the one-sided Mann-Whitney p-value and
    ``p_holm`` its Holm-adjusted value; counter findings have NaN there and name the counter.
    """

    test: str
    kind: Literal["timing", "counter"]
    change: str
    p_value: float = math.nan
    p_holm: float = math.nan
    slowdown_pct: float = math.nan
    ci_low_pct: float = math.nan
    ci_high_pct: float = math.nan
    counter: str = ""
    baseline_value: float = math.nan
    current_value: float = math.nan


@dataclass(frozen=True)
class CheckResult:
    """Outcome of :func:`check_regressions`.

    ``regressed`` is True when at least one finding was flagged; False means no regression was
    shown at this threshold and alpha, which is not proof that nothing got slower.
    ``comparisons`` has one row per test present on both sides.
    """

    baseline_name: str
    baseline_variant: str
    variant: str
    threshold: float
    alpha: float
    findings: tuple[Finding, ...]
    comparisons: pd.DataFrame = field(repr=False)
    missing_in_current: tuple[str, ...] = ()
    new_in_current: tuple[str, ...] = ()

    @property
    def regressed(self) -> bool:
        return bool(self.findings)


def check_regressions(
    timings: pd.DataFrame,
    *,
    baseline: Baseline,
    variant: str,
    threshold: float = 0.2,
    alpha: float = 0.05,
    seed: int = 0,
    n_resamples: int = 2000,
    confidence_level: float = 0.95,
) -> CheckResult:
    """Compare a run's variant against a stored baseline.

    Parameters
    ----------
    timings : DataFrame
        Tidy timings of the current run; measured totals of ``variant`` are used.
    baseline : Baseline
        From :func:`load_baseline`.
    variant : str
        Variant label in ``timings`` to check.
    threshold : float
        Slowdowns at or below this fraction are never flagged (0.2 = 20 %).
    alpha : float
        Family-wise error rate of the Holm-corrected one-sided Mann-Whitney tests.
    seed : int
        Seeds the bootstrap intervals of the flagged slowdowns (the decision itself is
        deterministic).
    n_resamples, confidence_level : int, float
        Bootstrap settings for those intervals.

    Returns
    -------
    CheckResult
        Findings (timing: both gates passed; counter: any increase of a per-test median
        counter), the per-test comparison table, and the tests present on one side only (listed,
        never flagged).

    Raises
    ------
    BenchError
        ``variant`` absent from ``timings`` or without measured repetitions.
    """
    if variant not in set(timings["variant"].astype(str)):
        available = ", ".join(sorted(set(timings["variant"].astype(str)))) or "none"
        raise BenchError(f"variant {variant!r} not in the timings; available: {available}")
    totals = measured_totals(timings, variants=[variant])
    if totals.empty:
        raise BenchError(f"no valid, non-warm-up repetitions of {variant!r} to check")
    current_groups = {str(test): rows for test, rows in totals.groupby("test", sort=True)}
    common = sorted(set(current_groups) & set(baseline.tests))
    missing = tuple(sorted(set(baseline.tests) - set(current_groups)))
    new = tuple(sorted(set(current_groups) - set(baseline.tests)))

    base_samples = [np.asarray(baseline.tests[test].samples_s) for test in common]
    current_samples = [current_groups[test]["seconds"].to_numpy(float) for test in common]
    decisions = detect_timing_regressions(base_samples, current_samples, threshold=threshold, alpha=alpha)

    findings: list[Finding] = []
    children = np.random.SeedSequence(seed).spawn(max(1, len(common)))
    for i, test in enumerate(common):
        if not decisions.flagged[i]:
            continue
        slowdown = (decisions.ratio[i] - 1.0) * 100.0
        low = high = math.nan
        if base_samples[i].size >= 2 and current_samples[i].size >= 2:
            interval = sps.bootstrap(
                (current_samples[i], base_samples[i]),
                ratio_of_medians,
                n_resamples=n_resamples,
                vectorized=True,
                confidence_level=confidence_level,
                method="percentile",
                rng=np.random.default_rng(children[i]),
            ).confidence_interval
            low, high = (interval.low - 1.0) * 100.0, (interval.high - 1.0) * 100.0
        findings.append(
            Finding(
                test=test,
                kind="timing",
                change=f"{slowdown:+.0f} %",
                p_value=float(decisions.p_value[i]),
                p_holm=float(decisions.p_holm[i]),
                slowdown_pct=float(slowdown),
                ci_low_pct=float(low),
                ci_high_pct=float(high),
                baseline_value=float(np.median(base_samples[i])),
                current_value=float(np.median(current_samples[i])),
            )
        )

    counter_rows = []
    for test in common:
        rows = current_groups[test]
        for counter in COUNTER_COLUMNS:
            before = baseline.tests[test].counters.get(counter)
            if before is None or counter not in rows:
                continue
            now = float(rows[counter].astype(float).median())
            if math.isnan(now):
                continue
            counter_rows.append((test, counter, float(before), now))
            if now > before:
                findings.append(
                    Finding(
                        test=test,
                        kind="counter",
                        change=f"{counter} {_counter_value(before)} -> {_counter_value(now)}",
                        counter=counter,
                        baseline_value=float(before),
                        current_value=now,
                    )
                )

    comparisons = pd.DataFrame(
        {
            "test": common,
            "n_base": [b.size for b in base_samples],
            "n_current": [c.size for c in current_samples],
            "median_base_s": [float(np.median(b)) if b.size else math.nan for b in base_samples],
            "median_current_s": [float(np.median(c)) if c.size else math.nan for c in current_samples],
            "slowdown_pct": (decisions.ratio - 1.0) * 100.0,
            "p_value": decisions.p_value,
            "p_holm": decisions.p_holm,
            "timing_flagged": decisions.flagged,
        }
    )
    counter_flags = {(t, c) for t, c, b, n in counter_rows if n > b}
    comparisons["counters_increased"] = [
        ", ".join(c for c in COUNTER_COLUMNS if (test, c) in counter_flags) for test in common
    ]
    findings.sort(key=lambda f: (f.kind != "timing", f.test, f.counter))
    return CheckResult(
        baseline_name=baseline.name,
        baseline_variant=baseline.variant,
        variant=variant,
        threshold=threshold,
        alpha=alpha,
        findings=tuple(findings),
        comparisons=comparisons,
        missing_in_current=missing,
        new_in_current=new,
    )


def format_check(result: CheckResult) -> list[str]:
    """Human-readable lines for a :class:`CheckResult`.

    Parameters
    ----------
    result : CheckResult
        From :func:`check_regressions`.

    Returns
    -------
    list of str
        A headline (REGRESSED or "no regression shown"), one line per finding, then the tests
        present on one side only.
    """
    n_tests = len(result.comparisons)
    headline = (
        f"{result.variant} vs baseline {result.baseline_name!r} (recorded from "
        f"{result.baseline_variant}): {n_tests} tests compared, "
        f"timing gate = slowdown > {result.threshold:.0%} and Holm-corrected one-sided "
        f"Mann-Whitney p < {result.alpha:g}; counter gate = any increase"
    )
    lines = [headline]
    if result.regressed:
        n_timing = sum(f.kind == "timing" for f in result.findings)
        lines.append(f"REGRESSED: {n_timing} timing and {len(result.findings) - n_timing} counter finding(s)")
    else:
        lines.append("no regression shown (not proof of no change: see the calibration for power)")
    for finding in result.findings:
        if finding.kind == "timing":
            text = (
                f"  timing  {finding.test}: {finding.change} ({finding.baseline_value:.3g} s -> "
                f"{finding.current_value:.3g} s"
            )
            if not math.isnan(finding.ci_low_pct):
                text += f", CI {finding.ci_low_pct:+.0f} % to {finding.ci_high_pct:+.0f} %"
            text += f"), p {finding.p_value:.2g}, Holm p {finding.p_holm:.2g}"
        else:
            text = f"  counter {finding.test}: {finding.change}"
        lines.append(text)
    if result.missing_in_current:
        lines.append(f"not run now ({len(result.missing_in_current)}, not flagged):")
        lines += [f"  {test}" for test in result.missing_in_current]
    if result.new_in_current:
        lines.append(f"new since the baseline ({len(result.new_in_current)}, not flagged):")
        lines += [f"  {test}" for test in result.new_in_current]
    return lines


# --------------------------------------------------------------------------- calibration


@dataclass(frozen=True)
class Calibration:
    """Detection rates of the timing gate measured on one run's own repetitions.

    ``rates`` has one row per (threshold, injected slowdown): ``threshold``,
    ``injected_slowdown`` (0 = A/A, the false-alarm rate), ``n_trials``, ``detections`` (trials
    with at least one test flagged), ``rate`` with its Clopper-Pearson ``ci_low``/``ci_high``,
    and ``mean_fraction_flagged`` (the share of tests flagged, averaged over trials: per-test
    power for injected slowdowns, per-test false-alarm rate for A/A).
    ``min_attainable_p`` is the smallest one-sided Mann-Whitney p-value possible with halves
    of this size; if it is not below ``alpha / n_tests`` the Holm gate can never fire.
    """

    variant: str
    alpha: float
    threshold: float
    n_repetitions: int
    half_size: int
    n_tests: int
    n_trials: int
    seed: int
    min_attainable_p: float
    rates: pd.DataFrame = field(repr=False)
    dropped_tests: tuple[str, ...] = ()

    @property
    def false_alarm_rate(self) -> float:
        """A/A rate at the configured threshold."""
        return self.rate(0.0)

    def rate(self, slowdown: float, *, threshold: float | None = None) -> float:
        """Detection rate for an injected ``slowdown`` (0 = A/A) at ``threshold``.

        Parameters
        ----------
        slowdown : float
            Injected slowdown fraction.
        threshold : float, optional
            Defaults to the configured threshold.

        Returns
        -------
        float
            The share of trials with at least one test flagged.
        """
        threshold = self.threshold if threshold is None else threshold
        rows = self.rates[
            np.isclose(self.rates["threshold"], threshold) & np.isclose(self.rates["injected_slowdown"], slowdown)
        ]
        if rows.empty:
            raise BenchError(f"no calibration row for slowdown {slowdown} at threshold {threshold}")
        return float(rows["rate"].iloc[0])


def calibrate(
    timings: pd.DataFrame,
    *,
    variant: str,
    threshold: float = 0.2,
    alpha: float = 0.05,
    slowdowns: Sequence[float] = (0.05, 0.10, 0.20),
    n_trials: int = 200,
    seed: int = 0,
    confidence_level: float = 0.95,
) -> Calibration:
    """False-alarm rate and power of the timing gate, from one variant's repetitions.

    Each trial randomly splits the variant's measured repetitions into two halves and runs
    :func:`detect_timing_regressions` with one half as the baseline and the other as the
    current run: unchanged (A/A: any flag is a false alarm), and with the current half's times
    multiplied by ``1 + s`` for each slowdown ``s`` (real noise resampled, a known slowdown
    injected). Every condition sees the same splits. The rates are computed at ``threshold``
    and, for information, at threshold 0 (the statistical test alone): by design a 20 %
    threshold leaves almost no power for 5 and 10 % slowdowns.

    The trials reuse one run's repetitions, so they are not independent draws: read the
    Clopper-Pearson intervals as a guide to the Monte Carlo error only.

    Parameters
    ----------
    timings : DataFrame
        Tidy timings.
    variant : str
        Variant whose repetitions are split.
    threshold, alpha : float
        Detector settings, as in :func:`check_regressions`.
    slowdowns : sequence of float
        Injected slowdown fractions.
    n_trials : int
        Random splits.
    seed : int
        Seeds the splits.
    confidence_level : float
        Of the Clopper-Pearson intervals of the rates (``scipy.stats.binomtest``).

    Returns
    -------
    Calibration
        The rates table and the setting. Tests not measured in every repetition are left out
        (listed in ``dropped_tests``) so that the halves stay aligned.

    Raises
    ------
    BenchError
        Fewer than 4 measured repetitions, or no test measured in all of them.
    """
    if n_trials < 1:
        raise BenchError("n_trials must be at least 1")
    totals = measured_totals(timings, variants=[variant])
    matrix = totals.pivot_table(index="repetition", columns="test", values="seconds", aggfunc="sum")
    complete = matrix.columns[matrix.notna().all(axis=0)]
    dropped = tuple(sorted(str(t) for t in set(matrix.columns) - set(complete)))
    matrix = matrix[complete]
    n_reps, n_tests = matrix.shape
    if n_reps < 4:
        raise BenchError(f"calibration needs at least 4 measured repetitions of {variant!r}, found {n_reps}")
    if n_tests == 0:
        raise BenchError(f"no test of {variant!r} was measured in every repetition")
    values = matrix.to_numpy(float)
    half = n_reps // 2
    # Equal halves (one repetition idle when the count is odd); with m runs a side the most
    # extreme one-sided Mann-Whitney p-value is 1 / C(2m, m).
    min_p = 1.0 / math.comb(2 * half, half)

    thresholds = sorted({float(threshold), 0.0}, reverse=True)
    conditions = [0.0, *[float(s) for s in slowdowns]]
    any_flag = {(t, s): 0 for t in thresholds for s in conditions}
    fraction = {(t, s): 0.0 for t in thresholds for s in conditions}
    rng = np.random.default_rng(seed)
    for _ in range(n_trials):
        order = rng.permutation(n_reps)
        base = list(values[order[:half]].T)
        current = values[order[half : 2 * half]]
        for slowdown in conditions:
            shifted = list((current * (1.0 + slowdown)).T)
            for t in thresholds:
                flagged = detect_timing_regressions(base, shifted, threshold=t, alpha=alpha).flagged
                any_flag[(t, slowdown)] += bool(flagged.any())
                fraction[(t, slowdown)] += float(flagged.mean())

    rows = []
    for t in thresholds:
        for slowdown in conditions:
            detections = any_flag[(t, slowdown)]
            interval = sps.binomtest(detections, n_trials).proportion_ci(
                confidence_level=confidence_level, method="exact"
            )
            rows.append(
                {
                    "threshold": t,
                    "injected_slowdown": slowdown,
                    "kind": "false alarm" if slowdown == 0 else "power",
                    "n_trials": n_trials,
                    "detections": detections,
                    "rate": detections / n_trials,
                    "ci_low": float(interval.low),
                    "ci_high": float(interval.high),
                    "mean_fraction_flagged": fraction[(t, slowdown)] / n_trials,
                }
            )
    return Calibration(
        variant=variant,
        alpha=alpha,
        threshold=float(threshold),
        n_repetitions=n_reps,
        half_size=half,
        n_tests=n_tests,
        n_trials=n_trials,
        seed=seed,
        min_attainable_p=min_p,
        rates=pd.DataFrame(rows),
        dropped_tests=dropped,
    )


def format_calibration(calibration: Calibration) -> list[str]:
    """Human-readable lines for a :class:`Calibration`.

    Parameters
    ----------
    calibration : Calibration
        From :func:`calibrate`.

    Returns
    -------
    list of str
        The setting, then one line per (threshold, slowdown).
    """
    c = calibration
    lines = [
        f"calibration of the timing gate on {c.variant}: {c.n_repetitions} repetitions split "
        f"{c.half_size} vs {c.half_size}, {c.n_tests} tests, {c.n_trials} random splits, alpha {c.alpha:g}"
    ]
    if c.min_attainable_p >= c.alpha / c.n_tests:
        lines.append(
            f"  warning: halves of {c.half_size} cannot reach p < alpha / tests "
            f"(smallest possible p {c.min_attainable_p:.2g}); the gate cannot fire"
        )
    for row in c.rates.itertuples(index=False):
        what = "false alarms (A/A)" if row.injected_slowdown == 0 else f"power at +{row.injected_slowdown:.0%}"
        lines.append(
            f"  threshold {row.threshold:.0%}: {what}: {row.rate:.1%} "
            f"[{row.ci_low:.1%}, {row.ci_high:.1%}] ({row.detections}/{row.n_trials}); "
            f"{row.mean_fraction_flagged:.1%} of tests flagged on average"
        )
    if c.dropped_tests:
        lines.append(f"  {len(c.dropped_tests)} test(s) not measured in every repetition were left out")
    return lines
