"""The "why is it faster" study: attribution, floor and scaling runs, and every table from their files.

`run_why_study(profile_size=...)` records the runs of one size and returns their tables;
`why_tables(*run_dirs)` regenerates the same tables from run directories alone (each run's role
is read from its variants: factorial cells -> attribution, the floor variant -> floor, preset +
one scale knob -> scaling). Sizes (`why_plan`):

* smoke: the one-factor-at-a-time path design (5 cells) plus a 2-point sweep of extra_tables and
  copies on both presets in the same run, on 2 tests (auth, crud); the floor on 1 of them;
  1 repetition; 12 processes. Checks that everything runs (reference_rows is not swept); its
  intervals are not worth reading.
* standard: an 8-cell D-optimal fraction (all six switches) plus a 2-point sweep of every knob on
  both presets in the same run, on 4 tests (auth, crud, jwt, middleware); the floor on 1 of
  them; 1 repetition; 17 processes. Whole-suite slopes and the projection have no interval at
  this size (two points per knob, no residual degrees of freedom): full has them.
* full: the 48-cell factorial (3 repetitions, cell order random per block) on one test per
  category (7 tests); a 5-point sweep of every knob on the same 7 tests in its own run
  (extra_tables 0-100, reference_rows 0-10,000, copies 1-50, i.e. 7 to 350 tests; 2
  repetitions); the floor on the same 7 tests (3 repetitions). About half an hour on the study
  machine. The whole suite in all 48 cells would take hours: one test per category is the
  stated trade (the attribution is a per-test model, so it needs cells more than tests).

The small sizes select one established test per category with `-k` (`SUBSET_TESTS`); the floor
then runs on tests that passed under baseline in the design run. The selection is stored in
each run's metadata.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pandas as pd

from quiz_architectures.architectures import parse_spec
from quiz_study import attribution, floor, paths, scaling
from quiz_study import design as design_mod
from quiz_study.errors import USER_ERRORS, StudyError
from quiz_study.variants import run_benchmark
from suitebench import store

Size = Literal["smoke", "standard", "full"]
SIZES: tuple[str, ...] = ("smoke", "standard", "full")
PROFILE_PREFIX = "why-"
DEFAULT_TIMEOUT_S = 600.0


@dataclass(frozen=True)
class WhyPlan:
    """What one size of the study runs (see the module docstring).

    `subset_categories`: one test per category for the design and sweep runs (None = the whole
    suite); `sweep_joins_design`: the sweep's variants run in the design's run (same tests);
    else `sweep_selection` selects its own run's tests; `floor_tests`: how many of the subset
    the floor runs on (None = every test of the suite).
    """

    size: str
    design: design_mod.Design
    subset_categories: tuple[str, ...] | None
    design_repetitions: int
    sweep: scaling.Sweep
    sweep_joins_design: bool
    sweep_selection: Mapping[str, str] = field(default_factory=dict)
    sweep_repetitions: int = 1
    floor_tests: int | None = 1
    floor_repetitions: int = 1
    schedule: str = "random"
    timeout_s: float = DEFAULT_TIMEOUT_S


def why_plan(size: Size, *, seed: int = 0) -> WhyPlan:
    """The plan of one size (smoke, standard or full)."""
    if size == "smoke":
        return WhyPlan(
            size=size,
            design=design_mod.path_design(),
            subset_categories=("auth", "crud"),
            design_repetitions=1,
            sweep=scaling.Sweep(extra_tables=(0, 10), reference_rows=(0,), copies=(1, 3)),
            sweep_joins_design=True,
            floor_tests=1,
            floor_repetitions=1,
        )
    if size == "standard":
        return WhyPlan(
            size=size,
            design=design_mod.d_optimal_fraction(8, seed=seed),
            subset_categories=("auth", "crud", "jwt", "middleware"),
            design_repetitions=1,
            sweep=scaling.Sweep(extra_tables=(0, 15), reference_rows=(0, 10_000), copies=(1, 4)),
            sweep_joins_design=True,
            floor_tests=1,
            floor_repetitions=1,
        )
    if size == "full":
        every_category = tuple(SUBSET_TESTS)
        return WhyPlan(
            size=size,
            design=design_mod.full_factorial(),
            subset_categories=every_category,
            design_repetitions=3,
            sweep=scaling.Sweep(
                extra_tables=(0, 10, 25, 50, 100),
                reference_rows=(0, 10, 100, 1000, 10_000),
                copies=(1, 5, 10, 25, 50),
            ),
            sweep_joins_design=False,
            sweep_selection=subset_selection(every_category),
            sweep_repetitions=2,
            floor_tests=len(every_category),
            floor_repetitions=3,
        )
    raise StudyError(f"unknown size {size!r}; choose one of {', '.join(SIZES)}")


# ---------------------------------------------------------------- test subsets

# One established, unparametrized test per category for the small sizes, selected with -k
# (each name is contained in no other test's name). A name the suite no longer has selects
# nothing: that category is then simply missing from the run.
SUBSET_TESTS: dict[str, str] = {
    "auth": "test_login_returns_bearer_token",
    "crud": "test_build_and_read_hierarchy",
    "jwt": "test_token_roundtrip_carries_user_claims",
    "middleware": "test_role_change_invalidates_old_token",
    "workflow": "test_scores_start_at_zero",
    "isolation": "test_canary_left_db",
    "integration": "test_questions_api_lists_committed_content",
}


def subset_selection(categories: Sequence[str]) -> dict[str, str]:
    """The `-k` selection of `SUBSET_TESTS` for these categories."""
    unknown = [c for c in categories if c not in SUBSET_TESTS]
    if unknown:
        raise StudyError(f"no subset test for category {unknown[0]!r}; categories: {', '.join(SUBSET_TESTS)}")
    return {"keyword": " or ".join(SUBSET_TESTS[c] for c in categories)}


def measured_tests(run_dir: Path, *, variant: str = "baseline", categories: Sequence[str] = ()) -> list[str]:
    """Node ids that passed in `variant` in a run, in the order of `categories` (then the rest)."""
    run = store.load_run(run_dir)
    totals = run.measured_timings
    passed = totals[(totals["variant"] == variant) & (totals["phase"] == "total") & (totals["outcome"] == "passed")]
    found = passed.drop_duplicates("test")[["test", "category"]]
    rank = {category: i for i, category in enumerate(categories)}
    found = found.assign(rank=found["category"].map(rank).fillna(len(rank))).sort_values(["rank", "test"])
    return list(found["test"])


# ---------------------------------------------------------------- the study


@dataclass(frozen=True)
class WhyResult:
    """What `run_why_study` recorded and computed.

    `run_dirs`: role(s) -> run directory; `tables`: as `why_tables`; `part_wall_s`: wall time of
    each run; `elapsed_s`: the whole call.
    """

    size: str
    run_dirs: dict[str, Path]
    tables: dict[str, pd.DataFrame]
    part_wall_s: dict[str, float]
    elapsed_s: float


def _stamp() -> str:
    return dt.datetime.now().strftime("%Y%m%d-%H%M%S")


def _complete(run_dir: Path) -> bool:
    try:
        return store.read_metadata(run_dir).get("status") == "complete"
    except USER_ERRORS:
        return False


def _record(runner: Callable[..., object], *, resume: bool, output_dir: Path, run_id: str, progress: bool, **plan):
    """One benchmark part: continued when resuming and already started, else recorded anew."""
    if resume and (output_dir / run_id / store.METADATA_FILE).exists():
        return runner(output_dir=output_dir, run_id=run_id, resume=True, progress=progress)
    return runner(output_dir=output_dir, run_id=run_id, progress=progress, **plan)


def run_why_study(
    *,
    profile_size: Size = "smoke",
    output_dir: Path | str = paths.RUNS,
    seed: int = 0,
    progress: bool = False,
    run_prefix: str | None = None,
    resume: bool = False,
    runner: Callable[..., object] = run_benchmark,
    floor_runner: Callable[..., object] = floor.measure_floor,
    collector: Callable[..., pd.DataFrame] = floor.collect_tests,
) -> WhyResult:
    """Record the study's runs for one size and compute its tables.

    Parameters
    ----------
    profile_size : "smoke", "standard" or "full"
        See the module docstring and `why_plan`.
    output_dir : path
        Runs directory (default data/runs); the runs are `why-<size>-<stamp>-<part>`.
    seed : int
        Seeds the fraction, the schedules (random order per block) and the bootstrap.
    progress : bool
        Progress bars (tqdm) while processes run.
    run_prefix : str, optional
        Run id prefix instead of `why-<size>-<stamp>`.
    resume : bool
        With `run_prefix`: continue the parts already recorded under it (an interrupted floor
        run, which cannot be resumed, is kept under a new name and measured again).
    runner, floor_runner, collector
        Collaborators for tests (`run_benchmark`, `floor.measure_floor`, `floor.collect_tests`).

    Returns
    -------
    WhyResult

    Raises
    ------
    StudyError
        Bad size, a run that could not be recorded, or tables that cannot be computed.
    """
    started = time.perf_counter()
    plan = why_plan(profile_size, seed=seed)
    output_dir = Path(output_dir)
    prefix = run_prefix or f"{PROFILE_PREFIX}{profile_size}-{_stamp()}"
    profile = f"{PROFILE_PREFIX}{profile_size}"
    part_wall_s: dict[str, float] = {}
    run_dirs: dict[str, Path] = {}

    design_selection = subset_selection(plan.subset_categories) if plan.subset_categories is not None else {}

    variants = list(plan.design.variants)
    if plan.sweep_joins_design:
        variants += [v for v in plan.sweep.variants() if parse_spec(v).label not in set(variants)]
    part = "design" if plan.sweep_joins_design else "attribution"
    part_started = time.perf_counter()
    result = _record(
        runner,
        resume=resume,
        output_dir=output_dir,
        run_id=f"{prefix}-{part}",
        progress=progress,
        variants=variants,
        repetitions=plan.design_repetitions,
        warmup=0,
        selection=design_selection,
        seed=seed,
        schedule=plan.schedule,
        timeout_s=plan.timeout_s,
        profile=profile,
    )
    run_dirs[part] = Path(result.run_dir)
    part_wall_s[part] = time.perf_counter() - part_started

    if not plan.sweep_joins_design:
        part_started = time.perf_counter()
        result = _record(
            runner,
            resume=resume,
            output_dir=output_dir,
            run_id=f"{prefix}-scaling",
            progress=progress,
            variants=plan.sweep.variants(),
            repetitions=plan.sweep_repetitions,
            warmup=0,
            selection=dict(plan.sweep_selection),
            seed=seed,
            schedule=plan.schedule,
            timeout_s=plan.timeout_s,
            profile=profile,
        )
        run_dirs["scaling"] = Path(result.run_dir)
        part_wall_s["scaling"] = time.perf_counter() - part_started

    part_started = time.perf_counter()
    if plan.floor_tests is None:
        floor_tests = list(collector()["test"])
    else:
        floor_tests = measured_tests(run_dirs[part], categories=plan.subset_categories or ())[: plan.floor_tests]
    floor_dir = output_dir / f"{prefix}-floor"
    if resume and _complete(floor_dir):
        run_dirs["floor"] = floor_dir
    else:
        if resume and (floor_dir / store.METADATA_FILE).exists():
            # A floor run cannot be resumed; keep what it recorded under another name.
            floor_dir.rename(floor_dir.with_name(f"{floor_dir.name}.interrupted-{_stamp()}"))
        floor_result = floor_runner(
            tests=floor_tests,
            repetitions=plan.floor_repetitions,
            output_dir=output_dir,
            run_id=f"{prefix}-floor",
            seed=seed,
            profile=profile,
            progress=progress,
        )
        run_dirs["floor"] = Path(floor_result.run_dir)
    part_wall_s["floor"] = time.perf_counter() - part_started

    tables = why_tables(*run_dirs.values(), seed=seed)
    return WhyResult(
        size=profile_size,
        run_dirs=run_dirs,
        tables=tables,
        part_wall_s=part_wall_s,
        elapsed_s=time.perf_counter() - started,
    )


# ---------------------------------------------------------------- tables from files


def run_roles(run: store.RunData) -> tuple[str, ...]:
    """The study roles a run can play, read from its measured variants."""
    labels = sorted(set(run.measured_repetitions["variant"]))
    roles = []
    cells = design_mod.cells_from_variants(labels)
    if len(cells) >= 3:
        roles.append("attribution")
    if any((p := scaling.classify(label)) is not None and p.knob for label in labels):
        roles.append("scaling")
    if floor.FLOOR_LABEL in labels:
        roles.append("floor")
    return tuple(roles)


def latest_why_runs(runs_dir: Path | str = paths.RUNS, *, size: str | None = None) -> list[Path]:
    """Run directories of the most recent complete why-study (all parts complete), optionally of one size."""
    pattern = re.compile(rf"^({re.escape(PROFILE_PREFIX)}(?:{'|'.join(SIZES)})-\d{{8}}-\d{{6}})-(\w+)$")
    studies: dict[str, list[store.RunSummary]] = {}
    for summary in store.list_runs(runs_dir):
        match = pattern.match(summary.run_id)
        if match and (size is None or summary.profile == f"{PROFILE_PREFIX}{size}"):
            studies.setdefault(match.group(1), []).append(summary)
    complete = {
        prefix: runs
        for prefix, runs in studies.items()
        if any(r.run_id.endswith("-floor") for r in runs) and all(r.status == "complete" for r in runs)
    }
    if not complete:
        which = f" of size {size!r}" if size else ""
        raise StudyError(f"no complete why-study{which} in {runs_dir}; record one with quiz_study.why.run_why_study")
    latest = max(complete, key=lambda prefix: prefix.split("-", 2)[2])
    return [r.path for r in sorted(complete[latest], key=lambda r: r.run_id)]


def _one_run_per_role(runs: Sequence[store.RunData]) -> dict[str, store.RunData]:
    chosen: dict[str, store.RunData] = {}
    for run in runs:
        for role in run_roles(run):
            if role in chosen:
                raise StudyError(
                    f"runs {chosen[role].run_id!r} and {run.run_id!r} both hold {role} data; "
                    "runs are never pooled: pass one run per role"
                )
            chosen[role] = run
    return chosen


def _selection_text(metadata: Mapping[str, object]) -> str:
    arguments = metadata.get("arguments", {}) or {}
    if metadata.get("kind") == "floor":
        return f"{len(arguments.get('tests', []))} test(s), one process each"
    return str(arguments.get("selection") or "all tests")


def why_tables(*run_dirs: Path | str, alpha: float = 0.05, seed: int = 0) -> dict[str, pd.DataFrame]:
    """Every table of the study, computed from the runs' files only.

    Parameters
    ----------
    *run_dirs : path
        Run directories (`run_why_study`'s, or any runs with the right variants); at most one
        per role.
    alpha : float
        1 - confidence level of every interval.
    seed : int
        Seeds the floor's bootstrap.

    Returns
    -------
    dict of str to DataFrame
        runs (which run plays which role); attribution: attribution_fit, design, aliasing,
        effects, interactions, waterfall; floor: floor_tests, floor_categories, floor_overall,
        floor_phases; scaling: scaling_points, scaling_slopes, projection. A role without a run
        has no tables.
    """
    if not run_dirs:
        raise StudyError("give at least one run directory")
    runs = [store.load_run(path) for path in run_dirs]
    by_role = _one_run_per_role(runs)
    tables: dict[str, pd.DataFrame] = {
        "runs": pd.DataFrame(
            [
                {
                    "run_id": run.run_id,
                    "path": str(run.path),
                    "roles": ", ".join(run_roles(run)),
                    "profile": run.metadata.get("profile"),
                    "status": run.metadata.get("status"),
                    "selection": _selection_text(run.metadata),
                    "measured_processes": len(run.measured_repetitions),
                    "invalid_processes": int((~run.repetitions["valid"]).sum()),
                    "regenerate": f"quiz_study.why.why_tables({', '.join(repr(str(r.path)) for r in runs)})",
                }
                for run in runs
            ]
        )
    }
    if "attribution" in by_role:
        run = by_role["attribution"]
        data = attribution.attribution_data(run.timings)
        fit = attribution.fit_attribution(data)
        counts = run.measured_repetitions.groupby("variant").size()
        tables["attribution_fit"] = attribution.fit_summary(fit).assign(run_id=run.run_id)
        tables["design"] = fit.design.table().assign(
            n_processes=lambda t: t["variant"].map(counts).fillna(0).astype(int)
        )
        tables["aliasing"] = attribution.alias_table(fit)
        tables["effects"] = attribution.effects_table(fit, alpha=alpha)
        tables["interactions"] = attribution.interactions_table(fit, alpha=alpha)
        if all(f in fit.terms for f in design_mod.PATH_FACTORS):
            tables["waterfall"] = attribution.waterfall_table(fit, alpha=alpha)
    if "floor" in by_role:
        timings = by_role["floor"].timings
        tables["floor_tests"] = floor.overhead_tests(timings, alpha=alpha)
        tables["floor_categories"] = floor.overhead_groups(timings, by="category", alpha=alpha, seed=seed)
        tables["floor_overall"] = floor.overhead_groups(timings, by=None, alpha=alpha, seed=seed).assign(
            caveat=floor.CAVEAT
        )
        tables["floor_phases"] = floor.overhead_phases(timings)
    if "scaling" in by_role:
        run = by_role["scaling"]
        tables["scaling_points"] = scaling.sweep_points_table(run.timings, run.repetitions)
        tables["scaling_slopes"] = scaling.scaling_slopes(run.timings, run.repetitions, alpha=alpha)
        tables["projection"] = scaling.project_suite(run.timings, run.repetitions, alpha=alpha)
    return tables


def resolve_why_runs(
    *,
    runs_dir: Path | str = paths.RUNS,
    run_ids: Sequence[str] = (),
    size_if_none: str = "smoke",
    seed: int = 0,
    progress: bool = False,
    announce: Callable[[str], object] | None = None,
) -> list[Path]:
    """The run directories a notebook shows: `run_ids` when given, else the latest complete
    why-study in `runs_dir`, else (when `size_if_none` is a size) a new study of that size.

    A relative `runs_dir` is under the output root (`quiz_study.paths.notebook_data_path`). Before
    recording a study, `announce` (e.g. `print`) receives one line saying so and which command
    records it with the whole study instead.

    Raises StudyError when a given run is missing, or there is no study and `size_if_none` is "".
    """
    runs_dir = paths.notebook_data_path(runs_dir)
    if run_ids:
        return [store.find_run(run_id, runs_dir=runs_dir) for run_id in run_ids]
    try:
        return latest_why_runs(runs_dir)
    except USER_ERRORS:
        if not size_if_none:
            raise
    if announce is not None:
        announce(
            f"Recording a {size_if_none!r}-size why-study into {runs_dir} now, because none is recorded there "
            f"yet; this takes a while. For the whole study with this section run `python run_all.py --with why` "
            f"in the project root, then run this notebook again."
        )
    result = run_why_study(profile_size=size_if_none, output_dir=runs_dir, seed=seed, progress=progress)  # type: ignore[arg-type]
    return list(result.run_dirs.values())


# Columns worth reading, per table (the tables keep every column).
DISPLAY_COLUMNS: dict[str, tuple[str, ...]] = {
    "runs": ("run_id", "roles", "profile", "status", "selection", "measured_processes", "invalid_processes"),
    "attribution_fit": (
        "design",
        "n_cells",
        "n_processes",
        "n_tests",
        "terms",
        "not_estimable",
        "cov_type",
        "df",
        "ci_basis",
    ),
    "design": (
        "variant",
        "storage",
        "isolation",
        "reference_data",
        "session_wiring",
        "password_hash",
        "client",
        "n_processes",
    ),
    "effects": ("switch", "level_from", "level_to", "time_ratio", "ci_low", "ci_high", "p_value", "flag"),
    "interactions": ("interaction", "time_ratio", "ci_low", "ci_high", "p_value_holm", "distinguishable_from_zero"),
    "waterfall": (
        "step",
        "switch",
        "time_ratio",
        "ci_low",
        "ci_high",
        "share",
        "share_ci_low",
        "share_ci_high",
        "speedup",
        "speedup_ci_low",
        "speedup_ci_high",
        "flag",
    ),
    "floor_tests": (
        "architecture",
        "test",
        "category",
        "n_blocks",
        "time_s",
        "floor_s",
        "overhead_s",
        "ratio_to_floor",
    ),
    "floor_categories": (
        "architecture",
        "category",
        "n_tests",
        "time_s",
        "floor_s",
        "overhead_s",
        "overhead_ci_low_s",
        "overhead_ci_high_s",
        "ratio_to_floor",
        "ratio_ci_low",
        "ratio_ci_high",
    ),
    "floor_overall": (
        "architecture",
        "n_tests",
        "time_s",
        "floor_s",
        "overhead_s",
        "overhead_ci_low_s",
        "overhead_ci_high_s",
        "ratio_to_floor",
        "ratio_ci_low",
        "ratio_ci_high",
        "overhead_share",
    ),
    "floor_phases": ("architecture", "phase", "time_s", "floor_s", "overhead_s"),
    "scaling_points": (
        "architecture",
        "knob",
        "value",
        "x",
        "n_processes",
        "n_tests",
        "per_test_s",
        "suite_s",
        "wall_s",
    ),
    "scaling_slopes": (
        "architecture",
        "knob",
        "measure",
        "unit",
        "slope_s_per_unit",
        "ci_low_s_per_unit",
        "ci_high_s_per_unit",
        "df",
        "cov_type",
        "grows",
        "flat",
    ),
    "projection": (
        "kind",
        "architecture",
        "measure",
        "n_tests",
        "projected_s",
        "ci_low_s",
        "ci_high_s",
        "extrapolation_factor",
    ),
}


def display_table(tables: Mapping[str, pd.DataFrame], name: str, *, digits: int = 4) -> pd.DataFrame:
    """Table `name` with its `DISPLAY_COLUMNS`, floats to `digits` significant digits (for notebooks)."""
    if name not in tables:
        raise StudyError(f"no table {name!r}; tables: {', '.join(tables)}")
    frame = tables[name]
    columns = [c for c in DISPLAY_COLUMNS.get(name, tuple(frame.columns)) if c in frame.columns]
    shown = frame[columns].copy()
    for column in shown.columns:
        if pd.api.types.is_float_dtype(shown[column]):
            shown[column] = shown[column].map(lambda v: float(f"{v:.{digits}g}") if pd.notna(v) else v)
    return shown
