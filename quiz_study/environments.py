"""Does the result hold on PostgreSQL and in parallel? The environment study and its tables.

One run measures, interleaved in the same blocks, the two presets on SQLite, both presets'
wirings on PostgreSQL under every isolation strategy that accepts them, and serial vs
`pytest -n 2` variants (`quiz_study.parallel`). Keeping them in one run is what makes the ratios
between them fair on a shared, noisy machine: every variant sees the same conditions.

Sizes (`environment_plan`):

* smoke: the smoke selection (integration and isolation tests), the presets on SQLite and on
  PostgreSQL (baseline's recreate, transactional's rollback), the SQLite presets under `-n 2`;
  2 repetitions, no warm-up. Checks the pipeline, not the figures.
* standard: the quick selection (no crud, no jwt), every PostgreSQL strategy, serial and `-n 2`
  on both storages; 3 repetitions after 1 warm-up.
* full: the whole suite, the same variants, 1 warm-up + 4 repetitions (4 + 4 is the fewest for
  which a two-sided Mann-Whitney p can fall below 0.05).

Tables (`environment_tables`, from the run's files alone):

* `postgres_strategies`: per preset wiring and isolation strategy on PostgreSQL, the median
  per-test time, the suite's sum of test times, and the speedup over the baseline preset on
  PostgreSQL with its bootstrap interval and Mann-Whitney p (as everywhere else in the report);
* `storage_speedups`: the architecture speedup (baseline -> transactional) on each storage, and
  each preset's PostgreSQL / SQLite ratio;
* `parallel_speedups`: `quiz_study.speedup_table`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal, NamedTuple

import numpy as np
import pandas as pd

from quiz_architectures.architectures import parse_spec
from quiz_study import formatting, paths
from quiz_study.errors import StudyError
from quiz_study.variants import SERIAL, WORKERS_MARK, split_variant, variant_label
from suitebench import stats, store

Size = Literal["smoke", "standard", "full"]
SIZES: tuple[str, ...] = ("smoke", "standard", "full")
PROFILE_PREFIX = "environments-"
PRESETS: tuple[str, ...] = ("baseline", "transactional")
PG = "storage=postgres"
# The strategies each preset's wiring accepts on PostgreSQL (rollback needs injected sessions).
STRATEGIES: dict[str, tuple[str, ...]] = {
    "baseline": ("recreate", "truncate", "template"),
    "transactional": ("rollback", "recreate", "truncate", "template"),
}


def postgres_variant(preset: str, isolation: str | None = None) -> str:
    """`baseline+storage=postgres` (the preset's own isolation) or `...,isolation=truncate`."""
    own = parse_spec(preset).isolation
    return f"{preset}+{PG}" + ("" if isolation in (None, own) else f",isolation={isolation}")


SECTIONS: tuple[str, ...] = ("postgres", "parallel")


@dataclass(frozen=True)
class EnvironmentPlan:
    """What one size measures: the variants (serial and `@n=`), the selection, the repetitions."""

    size: str
    selection: Mapping[str, str]
    repetitions: int
    warmup: int
    strategies: Mapping[str, tuple[str, ...]]
    parallel_storages: tuple[str, ...]
    workers: tuple[str, ...] = ("2",)
    schedule: str = "random"
    timeout_s: float = 900.0
    sections: tuple[str, ...] = SECTIONS

    def variants(self) -> list[str]:
        """The presets serially; each preset's wiring under every strategy on PostgreSQL; the serial
        variants the parallel ones are compared with, and those under each worker count."""
        parallel_serial = list(PRESETS)
        if "parallel" in self.sections and "postgres" in self.parallel_storages:
            parallel_serial += [postgres_variant(p) for p in PRESETS]
        labels = list(PRESETS)
        if "postgres" in self.sections:
            labels += [postgres_variant(p, s) for p in PRESETS for s in self.strategies[p]]
        if "parallel" in self.sections:
            labels += parallel_serial
            labels += [f"{label}{WORKERS_MARK}{n}" for label in parallel_serial for n in self.workers]
        return list(dict.fromkeys(labels))


def environment_plan(size: Size, *, sections: Sequence[str] = SECTIONS) -> EnvironmentPlan:
    """The plan of one size for the chosen sections ("postgres", "parallel" or both)."""
    unknown = [s for s in sections if s not in SECTIONS]
    if unknown or not sections:
        raise StudyError(
            f"unknown environment section {unknown[0] if unknown else ''!r}; choose from {', '.join(SECTIONS)}"
        )
    sections = tuple(s for s in SECTIONS if s in sections)
    if size == "smoke":
        return EnvironmentPlan(
            size=size,
            selection={"marker": "integration or isolation"},
            repetitions=2,
            warmup=0,
            strategies={"baseline": ("recreate",), "transactional": ("rollback",)},
            parallel_storages=("sqlite",),
            sections=sections,
            timeout_s=300.0,
        )
    if size == "standard":
        return EnvironmentPlan(
            size=size,
            selection={"marker": "not crud and not jwt"},
            repetitions=3,
            warmup=1,
            strategies=STRATEGIES,
            parallel_storages=("sqlite", "postgres"),
            sections=sections,
        )
    if size == "full":
        return EnvironmentPlan(
            size=size,
            selection={},
            repetitions=4,
            warmup=1,
            strategies=STRATEGIES,
            parallel_storages=("sqlite", "postgres"),
            sections=sections,
        )
    raise StudyError(f"unknown size {size!r}; choose one of {', '.join(SIZES)}")


def run_environment_study(
    *,
    size: Size = "smoke",
    sections: Sequence[str] = SECTIONS,
    output_dir: Path | str = paths.RUNS,
    run_id: str,
    resume: bool = False,
    seed: int = 20240601,
    progress: bool = False,
    runner: Callable[..., object] | None = None,
):
    """Record (or resume) the environment run of one size; returns the runner's RunResult."""
    from quiz_study.variants import run_benchmark

    runner = runner or run_benchmark
    if resume and (Path(output_dir) / run_id / store.METADATA_FILE).exists():
        return runner(output_dir=output_dir, run_id=run_id, resume=True, progress=progress)
    plan = environment_plan(size, sections=sections)
    return runner(
        variants=plan.variants(),
        repetitions=plan.repetitions,
        warmup=plan.warmup,
        selection=dict(plan.selection) or None,
        output_dir=output_dir,
        run_id=run_id,
        seed=seed,
        schedule=plan.schedule,
        progress=progress,
        timeout_s=plan.timeout_s,
        profile=f"{PROFILE_PREFIX}{size}",
    )


# ---------------------------------------------------------------- tables from files

STRATEGY_COLUMNS: tuple[str, ...] = (
    "wiring_of",
    "isolation",
    "variant",
    "n_reps",
    "n_tests",
    "median_test_s",
    "median_suite_s",
    "speedup_vs_pg_baseline",
    "speedup_ci_low",
    "speedup_ci_high",
    "mw_p_value",
    "median_test_improvement_pct",
    "improvement_ci_low",
    "improvement_ci_high",
    "vs_sqlite_preset",
    "pg_over_sqlite",
    "pg_over_sqlite_ci_low",
    "pg_over_sqlite_ci_high",
)
# The columns of a suite comparison (`stats.compare_suite`) the storage table keeps.
_SUITE_COMPARISON_COLUMNS: tuple[str, ...] = (
    "median_base_s",
    "median_cand_s",
    "speedup",
    "speedup_ci_low",
    "speedup_ci_high",
    "mw_p_value",
    "cliffs_delta",
)
STORAGE_COLUMNS: tuple[str, ...] = (
    "storage",
    "baseline_variant",
    "candidate_variant",
    "measure",
    *_SUITE_COMPARISON_COLUMNS,
    "median_test_improvement_pct",
    "improvement_ci_low",
    "improvement_ci_high",
)


@dataclass(frozen=True)
class _Settings:
    seed: int
    n_resamples: int
    confidence_level: float = 0.95


def _settings(run: store.RunData, seed: int | None, n_resamples: int | None) -> _Settings:
    arguments = run.metadata.get("arguments") or {}
    stored_seed = arguments.get("seed")
    return _Settings(
        seed=seed if seed is not None else (int(stored_seed) if stored_seed is not None else 0),
        n_resamples=n_resamples or stats.DEFAULT_RESAMPLES,
    )


def _serial_labels(run: store.RunData) -> list[str]:
    labels = list(dict.fromkeys(map(str, run.measured_repetitions["variant"])))
    return [label for label in labels if split_variant(label).workers is None]


def _suite_comparison(
    run: store.RunData, base: str, cand: str, settings: _Settings, seed_offset: int
) -> dict[str, dict]:
    """compare_suite rows keyed by measure (sum of test totals, process wall time)."""
    frame = stats.compare_suite(
        run.timings,
        run.repetitions,
        baseline=base,
        candidate=cand,
        seed=settings.seed + seed_offset,
        n_resamples=settings.n_resamples,
        confidence_level=settings.confidence_level,
    )
    return {row["unit"]: row for row in frame.to_dict("records")}


class _MedianTest(NamedTuple):
    median_test_s: float
    n_tests: int


def _median_test(totals: pd.DataFrame, variant: str) -> _MedianTest:
    """The median over tests of each test's median seconds under `variant`."""
    rows = totals[totals["variant"] == variant]
    per_test = rows.groupby("test")["seconds"].median()
    return _MedianTest(median_test_s=float(per_test.median()) if len(per_test) else math.nan, n_tests=len(per_test))


def postgres_strategies(run: store.RunData, settings: _Settings) -> pd.DataFrame:
    serial = _serial_labels(run)
    pg_baseline = postgres_variant("baseline")
    totals = stats.measured_totals(run.timings, variants=serial)
    walls = stats.measured_repetitions(run.repetitions, variants=serial)
    rows = []
    for offset, label in enumerate(serial):
        arch = parse_spec(label.partition("@")[0])
        if arch.storage != "postgres":
            continue
        preset = label.partition("+")[0]
        median_test = _median_test(totals, label)
        row = {
            "wiring_of": preset,
            "isolation": arch.isolation,
            "variant": label,
            "n_reps": int((walls["variant"] == label).sum()),
            "n_tests": median_test.n_tests,
            "median_test_s": median_test.median_test_s,
            "median_suite_s": float(stats.repetition_sums(totals[totals["variant"] == label])["seconds"].median()),
        }
        if pg_baseline in serial and label != pg_baseline:
            suite = _suite_comparison(run, pg_baseline, label, settings, offset)[stats.SUITE_TESTS_SUM]
            improvement = stats.median_test_improvement(
                run.timings,
                baseline=pg_baseline,
                candidate=label,
                seed=settings.seed + offset,
                n_resamples=settings.n_resamples,
            )
            row.update(
                speedup_vs_pg_baseline=suite["speedup"],
                speedup_ci_low=suite["speedup_ci_low"],
                speedup_ci_high=suite["speedup_ci_high"],
                mw_p_value=suite["mw_p_value"],
                median_test_improvement_pct=improvement.improvement_pct,
                improvement_ci_low=improvement.ci_low,
                improvement_ci_high=improvement.ci_high,
            )
        elif label == pg_baseline:
            row.update(speedup_vs_pg_baseline=1.0)
        if preset in serial and label == postgres_variant(preset):
            # cand = SQLite, base = PostgreSQL: speedup = PostgreSQL time / SQLite time
            ratio = _suite_comparison(run, label, preset, settings, 100 + offset)[stats.SUITE_TESTS_SUM]
            row.update(
                vs_sqlite_preset=preset,
                pg_over_sqlite=ratio["speedup"],
                pg_over_sqlite_ci_low=ratio["speedup_ci_low"],
                pg_over_sqlite_ci_high=ratio["speedup_ci_high"],
            )
        rows.append(row)
    frame = pd.DataFrame(rows, columns=list(STRATEGY_COLUMNS))
    order = {p: i for i, p in enumerate(PRESETS)}
    return frame.sort_values(
        ["wiring_of", "median_suite_s"], key=lambda c: c.map(order) if c.name == "wiring_of" else c
    ).reset_index(drop=True)


def storage_speedups(run: store.RunData, settings: _Settings) -> pd.DataFrame:
    """The architecture speedup (baseline -> transactional preset) on each storage, serially."""
    serial = set(_serial_labels(run))
    pairs = [
        ("sqlite", "baseline", "transactional"),
        ("postgres", postgres_variant("baseline"), postgres_variant("transactional")),
    ]
    rows = []
    for offset, (storage, base, cand) in enumerate(pairs):
        if not {base, cand} <= serial:
            continue
        improvement = stats.median_test_improvement(
            run.timings,
            baseline=base,
            candidate=cand,
            seed=settings.seed + 200 + offset,
            n_resamples=settings.n_resamples,
        )
        for measure, row in _suite_comparison(run, base, cand, settings, 200 + offset).items():
            rows.append(
                {
                    "storage": storage,
                    "baseline_variant": base,
                    "candidate_variant": cand,
                    "measure": measure,
                    **{column: row[column] for column in _SUITE_COMPARISON_COLUMNS},
                    "median_test_improvement_pct": improvement.improvement_pct,
                    "improvement_ci_low": improvement.ci_low,
                    "improvement_ci_high": improvement.ci_high,
                }
            )
    return pd.DataFrame(rows, columns=list(STORAGE_COLUMNS))


def parallel_speedups(run: store.RunData, settings: _Settings) -> pd.DataFrame:
    """`speedup_table` per storage: each preset serial vs `@n=`, and transactional vs
    baseline at each worker count, on SQLite and on PostgreSQL (the preset's own isolation)."""
    labels = set(map(str, run.repetitions["variant"]))
    parts = []
    for storage, reference, presets in (
        ("sqlite", "baseline", PRESETS),
        ("postgres", postgres_variant("baseline"), tuple(postgres_variant(p) for p in PRESETS)),
    ):
        mine = {label for label in labels if split_variant(label).architecture in presets}
        if not any(split_variant(label).workers for label in mine):
            continue
        frame = speedup_table(
            run.repetitions[run.repetitions["variant"].isin(mine)],
            seed=settings.seed,
            reference=reference,
            n_resamples=settings.n_resamples,
        )
        parts.append(frame.assign(storage=storage))
    if not parts:
        return pd.DataFrame(columns=["storage", *SPEEDUP_COLUMNS])
    frame = pd.concat(parts, ignore_index=True)
    return frame[["storage", *SPEEDUP_COLUMNS]]


def is_environment_run(run: store.RunData) -> bool:
    """A run with PostgreSQL or `@n=` variants next to the SQLite presets."""
    labels = set(map(str, run.measured_repetitions["variant"]))
    return bool(labels & set(PRESETS)) and any(
        split_variant(label).workers is not None or PG in label for label in labels
    )


def environment_tables(
    run_dir: Path | str, *, seed: int | None = None, n_resamples: int | None = None
) -> dict[str, pd.DataFrame]:
    """Every table of the PostgreSQL and parallel sections, regenerated from the run's files.

    Returns
    -------
    dict of str to DataFrame
        `postgres_strategies`, `storage_speedups`, `parallel_speedups` (empty when the run has
        no such variants) and `environment_run` (id, selection, repetitions).

    Raises
    ------
    StudyError
        Not a run directory or no measured repetitions.
    """
    run = store.load_run(run_dir)
    if run.measured_repetitions.empty:
        raise StudyError(f"run {run.run_id} has no measured repetitions yet")
    settings = _settings(run, seed, n_resamples)
    arguments = run.metadata.get("arguments") or {}
    selection = arguments.get("selection") or {}
    speedups = parallel_speedups(run, settings)
    valid = stats.measured_repetitions(run.repetitions)
    return {
        "environment_run": pd.DataFrame(
            [
                {
                    "run_id": run.run_id,
                    "profile": run.metadata.get("profile"),
                    "status": run.metadata.get("status"),
                    "selection": " ".join(f"-{'m' if k == 'marker' else 'k'} {v!r}" for k, v in selection.items())
                    or "whole suite",
                    "variants": int(valid["variant"].nunique()),
                    "measured_repetitions_per_variant": int(valid.groupby("variant").size().min()) if len(valid) else 0,
                    "invalid_measured_repetitions": int((~run.repetitions["warmup"] & ~run.repetitions["valid"]).sum()),
                    "seed": settings.seed,
                    "n_resamples": settings.n_resamples,
                }
            ]
        ),
        "postgres_strategies": postgres_strategies(run, settings),
        "storage_speedups": storage_speedups(run, settings),
        "parallel_speedups": speedups,
    }


# ---------------------------------------------------------------- serial vs parallel

SPEEDUP_COLUMNS: tuple[str, ...] = (
    "comparison",
    "architecture",
    "workers",
    "baseline_variant",
    "candidate_variant",
    "n_base",
    "n_cand",
    "median_base_s",
    "median_cand_s",
    "speedup",
    "speedup_ci_low",
    "speedup_ci_high",
    "ci_method",
    "note",
)


def _workers_of(label: str) -> str:
    return split_variant(label).workers or SERIAL


def speedup_table(
    repetitions: pd.DataFrame,
    *,
    seed: int,
    reference: str | None = None,
    n_resamples: int = stats.DEFAULT_RESAMPLES,
    confidence_level: float = 0.95,
) -> pd.DataFrame:
    """Parallel speedup of each architecture next to the architecture speedup.

    Parameters
    ----------
    repetitions : DataFrame
        `repetitions.csv` of a run whose variants include serial and `@n=` variants.
    seed : int
        Seeds the bootstrap (`np.random.default_rng(seed)`).
    reference : str, optional
        Architecture the others are compared with (default `baseline` when measured, else the
        first architecture in the data).
    n_resamples, confidence_level
        Of the bootstrap interval.

    Returns
    -------
    DataFrame
        Columns SPEEDUP_COLUMNS. `comparison` = "parallel": `architecture` serial (baseline
        variant) against `architecture@n=workers` (candidate); `comparison` = "architecture":
        `reference` against `architecture`, both at the same `workers` ("serial" or a count).
        `speedup` = median wall of the baseline variant / median wall of the candidate (> 1:
        the candidate is faster), on valid measured repetitions only.
    """
    measured = stats.measured_repetitions(repetitions)
    labels = list(dict.fromkeys(map(str, measured["variant"])))
    architectures = list(dict.fromkeys(split_variant(label).architecture for label in labels))
    if not architectures:
        raise StudyError("no valid measured repetitions to compare")
    if reference is None:
        reference = "baseline" if "baseline" in architectures else architectures[0]
    if reference not in architectures:
        raise StudyError(f"reference architecture {reference!r} not in the data; available: {', '.join(architectures)}")
    walls = {label: measured.loc[measured["variant"] == label, "wall_s"].to_numpy(float) for label in labels}
    rng = np.random.default_rng(seed)
    rows = []

    def compare(comparison: str, architecture: str, workers: str, base: str, cand: str) -> None:
        result = stats.compare_two_samples(
            walls[base], walls[cand], rng=rng, n_resamples=n_resamples, confidence_level=confidence_level
        )
        values = asdict(result)
        rows.append(
            {
                "comparison": comparison,
                "architecture": architecture,
                "workers": workers,
                "baseline_variant": base,
                "candidate_variant": cand,
                **{column: values[column] for column in SPEEDUP_COLUMNS if column in values},
            }
        )

    for architecture in architectures:
        for label in labels:
            name, workers = split_variant(label)
            if name == architecture and workers is not None and architecture in walls:
                compare("parallel", architecture, workers, architecture, label)
    for workers in dict.fromkeys(map(_workers_of, labels)):
        base = variant_label(reference, None if workers == SERIAL else workers)
        for architecture in architectures:
            cand = variant_label(architecture, None if workers == SERIAL else workers)
            if architecture != reference and base in walls and cand in walls:
                compare("architecture", architecture, workers, base, cand)
    return pd.DataFrame(rows, columns=list(SPEEDUP_COLUMNS))


def format_speedup_table(frame: pd.DataFrame, *, style: str = "plain") -> list[str]:
    """Lines of the speedup table: one row per comparison, speedup with its interval."""
    if frame.empty:
        return ["no serial/parallel or architecture pairs to compare"]
    shown = pd.DataFrame(
        {
            "comparison": frame["comparison"],
            "architecture": frame["architecture"],
            "workers": frame["workers"],
            "baseline": frame["baseline_variant"],
            "candidate": frame["candidate_variant"],
            "median wall base (s)": frame["median_base_s"],
            "median wall cand (s)": frame["median_cand_s"],
            "speedup": frame["speedup"],
            "95% CI": [
                formatting.interval_cell(low, high, ".2f")
                for low, high in zip(frame["speedup_ci_low"], frame["speedup_ci_high"])
            ],
            "n": [f"{b}/{c}" for b, c in zip(frame["n_base"], frame["n_cand"])],
        }
    )
    return stats.format_table(
        shown, style=style, floatfmt={"speedup": ".2f", "median wall base (s)": ".2f", "median wall cand (s)": ".2f"}
    ).splitlines()
