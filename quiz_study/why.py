"""The "why is it faster" study: the factorial, the floor and the scaling runs, and every table from their files.

`run_why_study(profile_size=...)` records the runs of one size and returns their tables;
`why_tables(*run_dirs)` regenerates the same tables from run directories alone (each run's role
is read from its variants: the 12 design cells -> attribution, the floor variant -> floor,
preset + one scale knob -> scaling, exactly the two presets -> the main run's direct contrast).

Sizes (`why_plan`):

* smoke: the 12 cells once each on one test (auth), the floor on that test for one block,
  forked processes (`quiz_study.forkserver`): ~15 processes, a few seconds. Checks that
  everything runs; no interval (one process per cell leaves no residual df).
* standard (in the default report): the 12 cells x 3 processes, interleaved in random order,
  on a stratified sample of one test per category (7 tests, seeded, the strict-xfail tests
  excluded), each run after two unmeasured warm-up tests of its category (`choose_subset`), each
  test weighted by its category's size in the suite so the time-weighted value
  estimates the whole suite's summed time; the floor on the same 7 tests (floor and
  transactional, 3 blocks). Forked processes: 36 + 42 processes in about half a minute, where
  fresh interpreters would take ~4 minutes (start-up is ~3 s a process; the section would not
  fit the default budget). Residual df 24.
* full: the 12 cells x 5 fresh processes on the whole suite (no sampling: the shares are the
  suite's own); the floor on two tests per category under floor, transactional and baseline,
  5 blocks; the scaling sweep (5 points per knob on one test per category, 2 repetitions).
  About half an hour.

What the sample means: the intervals are conditional on the tests drawn (every cell runs the
same tests, so test-to-test variation is not in them); with one test per category the
weighted sums estimate the suite's, but a category's drawn test may be faster or slower than
its category's average. The full size measures the whole suite and so carries no such caveat.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from quiz_study import attribution, design, floor, formatting, paths, scaling
from quiz_study.errors import USER_ERRORS, StudyError
from quiz_study.forkserver import NO_PLUGIN_AUTOLOAD, ForkServer
from quiz_study.variants import run_benchmark
from suitebench import store

Size = Literal["smoke", "standard", "full"]
SIZES: tuple[str, ...] = ("smoke", "standard", "full")
PROFILE_PREFIX = "why-"
PARTS: tuple[str, ...] = ("factorial", "floor", "scaling")
DEFAULT_TIMEOUT_S = 600.0
CATEGORIES: tuple[str, ...] = ("auth", "jwt", "crud", "middleware", "workflow", "isolation", "integration")
# Tests that xfail (strictly) under the baseline's own wiring: they pass in no cell with it.
NOT_EVERYWHERE_MARKER = "needs_shared_transaction"
# The characters pytest's -k accepts in one name.
_K_NAME = re.compile(r"^[\w:+\-.\[\]\\/]+$")


@dataclass(frozen=True)
class WhyPlan:
    """What one size of the study runs (see the module docstring).

    `tests_per_category`: the factorial's stratified sample (None: the whole suite);
    `categories`: the categories sampled (None: all); `forked`: processes forked from a
    pre-imported interpreter (`quiz_study.forkserver`) instead of fresh interpreters;
    `warmup_tests`: unmeasured tests run before each sampled one (`choose_subset`).
    """

    size: str
    factorial_repetitions: int
    tests_per_category: int | None
    floor_tests_per_category: int
    floor_variants: tuple[str, ...]
    floor_repetitions: int
    forked: bool
    categories: tuple[str, ...] | None = None
    sweep: scaling.Sweep | None = None
    sweep_repetitions: int = 0
    warmup_tests: int = 2
    timeout_s: float = DEFAULT_TIMEOUT_S
    schedule: str = "random"

    @property
    def factorial_processes(self) -> int:
        return design.N_CELLS * self.factorial_repetitions


def why_plan(size: Size) -> WhyPlan:
    """The plan of one size (smoke, standard or full)."""
    if size == "smoke":
        return WhyPlan(
            size=size,
            factorial_repetitions=1,
            tests_per_category=1,
            categories=("auth",),
            floor_tests_per_category=1,
            floor_variants=("transactional", floor.FLOOR_SPEC),
            floor_repetitions=1,
            forked=True,
        )
    if size == "standard":
        return WhyPlan(
            size=size,
            factorial_repetitions=3,
            tests_per_category=1,
            floor_tests_per_category=1,
            floor_variants=("transactional", floor.FLOOR_SPEC),
            floor_repetitions=3,
            forked=True,
        )
    if size == "full":
        return WhyPlan(
            size=size,
            factorial_repetitions=5,
            tests_per_category=None,
            floor_tests_per_category=2,
            floor_variants=floor.DEFAULT_FLOOR_VARIANTS,
            floor_repetitions=5,
            forked=False,
            sweep=scaling.Sweep(
                extra_tables=(0, 10, 25, 50, 100),
                reference_rows=(0, 10, 100, 1000, 10_000),
                copies=(1, 5, 10, 25, 50),
            ),
            sweep_repetitions=2,
            timeout_s=1800.0,
        )
    raise StudyError(f"unknown size {size!r}; choose one of {', '.join(SIZES)}")


# ---------------------------------------------------------------- which tests


@dataclass(frozen=True)
class Subset:
    """A stratified sample of the suite: `tests` (node ids, the measured ones), `warmups` (run
    before them in the same process, not analysed), the `-k` expression that selects exactly
    both, and `strata` (category -> tests of that category in the whole suite)."""

    tests: tuple[str, ...]
    keyword: str
    strata: dict[str, int] = field(default_factory=dict)
    warmups: tuple[str, ...] = ()

    def describe(self) -> dict[str, object]:
        return {
            "tests": list(self.tests),
            "warmup_tests": list(self.warmups),
            "suite_tests_per_category": dict(self.strata),
        }


def _name(node_id: str) -> str:
    return node_id.rsplit("::", 1)[-1]


def selectable(collected: pd.DataFrame) -> pd.Series:
    """True for the tests `-k <name>` selects alone: a name pytest's -k accepts that occurs (case
    folded) in no other test's node id, and not marked `needs_shared_transaction`."""
    ids = [node.lower() for node in collected["test"]]
    markers = collected["markers"] if "markers" in collected.columns else pd.Series([()] * len(collected))
    flags = []
    for node, marks in zip(collected["test"], markers):
        name = _name(node).lower()
        flags.append(
            bool(_K_NAME.match(name))
            and sum(name in other for other in ids) == 1
            and NOT_EVERYWHERE_MARKER not in tuple(marks or ())
        )
    return pd.Series(flags, index=collected.index)


def choose_subset(
    collected: pd.DataFrame,
    *,
    per_category: int,
    seed: int | None,
    categories: Sequence[str] | None = None,
    warm_up: int = 0,
) -> Subset:
    """`per_category` tests drawn at random (`np.random.default_rng(seed)`) from each category's
    selectable tests (`selectable`), in collection order.

    With `warm_up` = k, each test is drawn from the tests that have k selectable tests of their
    category before them in collection order, and those k run first in the same process,
    unmeasured (`Subset.warmups`): in a process of a few tests, the one-off costs of a process
    (first login, first request, first SQL compilations) would otherwise fall on the measured
    tests, which in a whole-suite run share them with ~190 others.

    Raises
    ------
    StudyError
        A category asked for has no more than `warm_up` selectable tests.
    """
    chosen_categories = list(categories) if categories is not None else list(dict.fromkeys(collected["category"]))
    strata = {c: int(n) for c, n in collected.groupby("category")["test"].count().items() if c in chosen_categories}
    eligible = collected[selectable(collected)]
    rng = np.random.default_rng(seed)
    picked: set[str] = set()
    warmups: set[str] = set()
    for category in chosen_categories:
        names = list(eligible.loc[eligible["category"] == category, "test"])
        if len(names) <= warm_up:
            raise StudyError(
                f"category {category!r} has no {warm_up + 1} tests that can be selected on their own with -k "
                f"(each measured test runs after {warm_up} warm-up tests)"
                if warm_up
                else f"no test of category {category!r} can be selected on its own with -k"
            )
        count = min(per_category, len(names) - warm_up)
        drawn = sorted(warm_up + rng.choice(len(names) - warm_up, size=count, replace=False))
        picked.update(names[i] for i in drawn)
        warmups.update(names[j] for i in drawn for j in range(i - warm_up, i))
    warmups -= picked
    tests = tuple(t for t in collected["test"] if t in picked)
    run_first = tuple(t for t in collected["test"] if t in warmups)
    keyword = " or ".join(_name(t) for t in collected["test"] if t in picked | warmups)
    return Subset(tests=tests, keyword=keyword, strata=strata, warmups=run_first)


def measured_tests(run_dir: Path, *, variant: str = "baseline", categories: Sequence[str] = ()) -> pd.DataFrame:
    """Tests (columns test, category) that passed in `variant` in a run, in the order of
    `categories` (then the rest); of a run that lists its sampled tests, only those (not the
    warm-up tests that ran before them)."""
    run = store.load_run(run_dir)
    totals = run.measured_timings
    passed = totals[(totals["variant"] == variant) & (totals["phase"] == "total") & (totals["outcome"] == "passed")]
    sampled = sampled_tests(run.metadata)
    if sampled is not None:
        passed = passed[passed["test"].isin(sampled)]
    found = passed.drop_duplicates("test")[["test", "category"]]
    rank = {category: i for i, category in enumerate(categories)}
    found = found.assign(rank=found["category"].map(rank).fillna(len(rank))).sort_values(["rank", "test"])
    return found[["test", "category"]].reset_index(drop=True)


def _per_category(tests: pd.DataFrame, count: int) -> list[str]:
    return list(tests.groupby("category", sort=False).head(count)["test"])


# ---------------------------------------------------------------- the study


@dataclass(frozen=True)
class WhyResult:
    """What `run_why_study` recorded and computed.

    `run_dirs`: part (factorial, floor, scaling) -> run directory; `tables`: as `why_tables`;
    `part_wall_s`: wall time of each part; `elapsed_s`: the whole call; `process_model`: how
    the processes were started.
    """

    size: str
    run_dirs: dict[str, Path]
    tables: dict[str, pd.DataFrame]
    part_wall_s: dict[str, float]
    elapsed_s: float
    process_model: str


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
    main_run: Path | str | None = None,
    annotations: Mapping[str, object] | None = None,
    runner: Callable[..., object] | None = None,
    floor_runner: Callable[..., object] | None = None,
    collector: Callable[..., pd.DataFrame] | None = None,
    compute_tables: bool = True,
) -> WhyResult:
    """Record the study's runs for one size and compute its tables.

    Parameters
    ----------
    profile_size : "smoke", "standard" or "full"
        See the module docstring and `why_plan`.
    output_dir : path
        Runs directory (default data/runs); the runs are `<prefix>-factorial`, `-floor`, `-scaling`.
    seed : int
        Seeds the test sample and the schedules (random order per block).
    progress : bool
        Progress bars (tqdm) while processes run.
    run_prefix : str, optional
        Run id prefix instead of `why-<size>-<stamp>`.
    resume : bool
        With `run_prefix`: continue the parts already recorded under it (an interrupted floor
        run, which cannot be resumed, is kept under a new name and measured again).
    main_run : path, optional
        A run of both presets (the main run) whose direct contrast the tables show.
    annotations : mapping, optional
        More facts stored in every part's metadata.json (e.g. the main run's profile).
    compute_tables : bool
        Compute `why_tables` at the end (False: `tables` is empty; the report computes them).
    runner, floor_runner, collector
        Collaborators for tests, each replacing its whole part: `quiz_study.variants.run_benchmark`,
        `floor.measure_floor` and `floor.collect_tests`, which by default run their processes as
        the plan says (forked or fresh); given ones run them their own way.

    Returns
    -------
    WhyResult

    Raises
    ------
    StudyError
        Bad size, a run that could not be recorded, or tables that cannot be computed.
    """
    started = time.perf_counter()
    plan = why_plan(profile_size)
    output_dir = Path(output_dir)
    prefix = run_prefix or f"{PROFILE_PREFIX}{profile_size}-{store.time_stamp()}"
    profile = f"{PROFILE_PREFIX}{profile_size}"
    part_wall_s: dict[str, float] = {}
    run_dirs: dict[str, Path] = {}
    with ExitStack() as stack:
        executor = stack.enter_context(ForkServer(child_env=NO_PLUGIN_AUTOLOAD)) if plan.forked else None
        process_model = str(executor.describe()["process_model"]) if executor else "fresh `python -m pytest` processes"
        options = {"executor": executor} if executor else {}
        run = runner or partial(run_benchmark, **options)
        run_floor = floor_runner or partial(floor.measure_floor, **options)
        collect = collector or partial(floor.collect_tests, **options)
        notes = {**(annotations or {}), "process_model": process_model}

        part_started = time.perf_counter()
        factorial_id = f"{prefix}-factorial"
        subset = None
        selection: dict[str, str] = {}
        collected = None
        needs_sample = plan.tests_per_category is not None or plan.floor_tests_per_category
        if not (resume and (output_dir / factorial_id / store.METADATA_FILE).exists()) and needs_sample:
            collected = collect()
            if plan.tests_per_category is not None:
                subset = choose_subset(
                    collected,
                    per_category=plan.tests_per_category,
                    seed=seed,
                    categories=plan.categories,
                    warm_up=plan.warmup_tests,
                )
                selection = {"keyword": subset.keyword}
        result = _record(
            run,
            resume=resume,
            output_dir=output_dir,
            run_id=factorial_id,
            progress=progress,
            variants=design.factorial_variants(),
            repetitions=plan.factorial_repetitions,
            warmup=0,
            selection=selection,
            seed=seed,
            schedule=plan.schedule,
            timeout_s=plan.timeout_s,
            profile=profile,
            annotations={**notes, "kind": "why-factorial", "subset": subset.describe() if subset else None},
        )
        run_dirs["factorial"] = Path(result.run_dir)
        part_wall_s["factorial"] = time.perf_counter() - part_started

        part_started = time.perf_counter()
        floor_dir = output_dir / f"{prefix}-floor"
        if resume and _complete(floor_dir):
            run_dirs["floor"] = floor_dir
        else:
            if plan.tests_per_category is not None:
                measured = measured_tests(run_dirs["factorial"], categories=CATEGORIES)
                floor_tests = _per_category(measured, plan.floor_tests_per_category)
            else:
                collected = collected if collected is not None else collect()
                floor_tests = list(
                    choose_subset(collected, per_category=plan.floor_tests_per_category, seed=seed).tests
                )
            if resume and (floor_dir / store.METADATA_FILE).exists():
                # A floor run cannot be resumed; keep what it recorded under another name.
                floor_dir.rename(floor_dir.with_name(f"{floor_dir.name}.interrupted-{store.time_stamp()}"))
            floor_result = run_floor(
                tests=floor_tests,
                variants=plan.floor_variants,
                repetitions=plan.floor_repetitions,
                output_dir=output_dir,
                run_id=floor_dir.name,
                seed=seed,
                profile=profile,
                progress=progress,
                annotations=notes,
            )
            run_dirs["floor"] = Path(floor_result.run_dir)
        part_wall_s["floor"] = time.perf_counter() - part_started

        if plan.sweep is not None:
            part_started = time.perf_counter()
            collected = collected if collected is not None else collect()
            sample = choose_subset(collected, per_category=1, seed=seed)
            result = _record(
                run,
                resume=resume,
                output_dir=output_dir,
                run_id=f"{prefix}-scaling",
                progress=progress,
                variants=plan.sweep.variants(),
                repetitions=plan.sweep_repetitions,
                warmup=0,
                selection={"keyword": sample.keyword},
                seed=seed,
                schedule=plan.schedule,
                timeout_s=plan.timeout_s,
                profile=profile,
                annotations={**notes, "kind": "why-scaling"},
            )
            run_dirs["scaling"] = Path(result.run_dir)
            part_wall_s["scaling"] = time.perf_counter() - part_started

    extra = [Path(main_run)] if main_run is not None else []
    tables = why_tables(*run_dirs.values(), *extra) if compute_tables else {}
    return WhyResult(
        size=profile_size,
        run_dirs=run_dirs,
        tables=tables,
        part_wall_s=part_wall_s,
        elapsed_s=time.perf_counter() - started,
        process_model=process_model,
    )


# ---------------------------------------------------------------- tables from files


def run_roles(run: store.RunData) -> tuple[str, ...]:
    """The study roles a run can play, read from its measured variants."""
    labels = sorted(set(run.measured_repetitions["variant"]))
    roles = []
    cells = design.cells_from_variants(labels)
    if len(cells) >= 3:
        roles.append("attribution")
    if any((p := scaling.classify(label)) is not None and p.knob for label in labels):
        roles.append("scaling")
    if floor.FLOOR_LABEL in labels:
        roles.append("floor")
    if set(labels) == {"baseline", "transactional"} and not (run.metadata.get("arguments") or {}).get("targets"):
        roles.append("direct")
    return tuple(roles)


_WHY_RUN = re.compile(rf"^(.+)-({'|'.join(PARTS)})$")


def latest_why_runs(runs_dir: Path | str = paths.RUNS, *, size: str | None = None) -> list[Path]:
    """Run directories of the most recent complete why-study (its parts all complete, a floor
    among them), optionally of one size; studies recorded beside a main run come with it."""
    studies: dict[str, list[store.RunSummary]] = {}
    for summary in store.list_runs(runs_dir):
        match = _WHY_RUN.match(summary.run_id)
        if match and (summary.profile or "").startswith(PROFILE_PREFIX):
            if size is None or summary.profile == f"{PROFILE_PREFIX}{size}":
                studies.setdefault(match.group(1), []).append(summary)
    complete = {
        prefix: runs
        for prefix, runs in studies.items()
        if any(r.run_id.endswith("-floor") for r in runs) and all(r.status == "complete" for r in runs)
    }
    if not complete:
        which = f" of size {size!r}" if size else ""
        raise StudyError(f"no complete why-study{which} in {runs_dir}; record one with quiz_study.why.run_why_study")
    latest = max(complete, key=lambda prefix: max(str(r.started_at or "") for r in complete[prefix]))
    found = [r.path for r in sorted(complete[latest], key=lambda r: r.run_id)]
    main = Path(runs_dir) / latest.removesuffix("-why")
    if latest.endswith("-why") and (main / store.METADATA_FILE).is_file():
        found.append(main)
    return found


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
    targets = arguments.get("targets") or []
    if targets:
        return f"{len(targets)} test(s), one process each"
    subset = metadata.get("subset") or {}
    if subset:
        text = f"{len(subset.get('tests', []))} tests, stratified by category"
        if subset.get("warmup_tests"):
            text += f", each after unmeasured warm-up tests of its category ({len(subset['warmup_tests'])} in all)"
        return text
    return str(arguments.get("selection") or "whole suite")


def sampled_tests(metadata: Mapping[str, object]) -> tuple[str, ...] | None:
    """The tests a factorial run measured for analysis (its warm-up tests left out); None when
    it ran no stratified sample."""
    subset = metadata.get("subset") or {}
    if not isinstance(subset, Mapping) or not subset.get("tests"):
        return None
    return tuple(str(test) for test in subset["tests"])


def _strata(run: store.RunData) -> dict[str, int] | None:
    subset = run.metadata.get("subset") or {}
    strata = subset.get("suite_tests_per_category") if isinstance(subset, Mapping) else None
    return {str(k): int(v) for k, v in strata.items()} if strata else None


def why_tables(*run_dirs: Path | str, alpha: float = 0.05, seed: int = 0) -> dict[str, pd.DataFrame]:
    """Every table of the study, computed from the runs' files only.

    Parameters
    ----------
    *run_dirs : path
        Run directories (`run_why_study`'s, and optionally the main run of both presets for the
        direct contrast); at most one per role.
    alpha : float
        1 - confidence level of every interval.
    seed : int
        Kept for the notebooks' signature (nothing here is random).

    Returns
    -------
    dict of str to DataFrame
        runs (which run plays which role); attribution: attribution_fit, design,
        process_values, model (F tests of every term), effects (main effects and interactions),
        shares (each switch's range over the orders, both forms and views), share_orders,
        totals (the model's total beside the directly measured contrasts); floor: floor_tests,
        floor_categories, floor_overall, floor_phases; scaling: scaling_points, scaling_slopes,
        projection. A role without a run has no tables.
    """
    if not run_dirs:
        raise StudyError("give at least one run directory")
    runs = [store.load_run(path) for path in run_dirs]
    by_role = _one_run_per_role(runs)
    regenerate = f"quiz_study.why.why_tables({', '.join(repr(paths.display_path(r.path)) for r in runs)})"
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
                    "process_model": run.metadata.get("process_model") or "fresh `python -m pytest` processes",
                    "measured_processes": len(run.measured_repetitions),
                    "invalid_processes": int((~run.repetitions["valid"].astype(bool)).sum()),
                    "regenerate": regenerate,
                }
                for run in runs
            ]
        )
    }
    if "attribution" in by_role:
        run = by_role["attribution"]
        values = attribution.process_values(run.timings, strata=_strata(run), tests=sampled_tests(run.metadata))
        fits = {form: attribution.fit_factorial(values, form=form) for form in attribution.FORMS}
        counts = values.frame.groupby("cell").size().to_dict()
        tables["attribution_fit"] = pd.DataFrame(
            [
                {
                    **attribution.fit_summary(fit, values),
                    "weighting": values.weighting,
                    "process_model": run.metadata.get("process_model") or "fresh `python -m pytest` processes",
                    "run_id": run.run_id,
                }
                for fit in fits.values()
            ]
        )
        means = values.frame.groupby("cell").agg(
            mean_sum_s=("sum_s", "mean"), geomean_test_s=("mean_log_s", lambda v: float(np.exp(v.mean())))
        )
        tables["design"] = design.design_table(counts).join(means, on="cell")
        tables["process_values"] = values.frame
        tables["model"] = pd.concat([attribution.anova_table(fit) for fit in fits.values()], ignore_index=True)
        tables["effects"] = pd.concat(
            [attribution.effects_table(fit, alpha=alpha) for fit in fits.values()], ignore_index=True
        )
        if all((fit.fit.counts > 0).all() for fit in fits.values()):
            shares = [attribution.shares_tables(fit, alpha=alpha) for fit in fits.values()]
            tables["shares"] = pd.concat([part.shares for part in shares], ignore_index=True)
            tables["share_orders"] = pd.concat([part.share_orders for part in shares], ignore_index=True)
            direct = None
            if "direct" in by_role:
                direct = attribution.direct_contrasts(
                    by_role["direct"].timings,
                    tests=values.tests,
                    weights=values.weights,
                    alpha=alpha,
                    source=f"main run {by_role['direct'].run_id}",
                )
            tables["totals"] = attribution.totals_table(fits, direct=direct, alpha=alpha)
    if "floor" in by_role:
        timings = by_role["floor"].timings
        tables["floor_tests"] = floor.overhead_tests(timings, alpha=alpha)
        tables["floor_categories"] = floor.overhead_groups(timings, by="category", alpha=alpha)
        tables["floor_overall"] = floor.overhead_groups(timings, by=None, alpha=alpha).assign(caveat=floor.CAVEAT)
        tables["floor_phases"] = floor.overhead_phases(timings, alpha=alpha)
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
    why-study in `runs_dir` (with its main run when it was recorded beside one), else (when
    `size_if_none` is a size) a new study of that size.

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
            f"in the project root (the default profile includes it), then run this notebook again."
        )
    result = run_why_study(profile_size=size_if_none, output_dir=runs_dir, seed=seed, progress=progress)  # type: ignore[arg-type]
    return list(result.run_dirs.values())


# Columns worth reading, per table (the tables keep every column).
_OVERHEAD_COLUMNS = ("time_s", "floor_s", "overhead_s", "overhead_ci_low_s", "overhead_ci_high_s")
_RATIO_COLUMNS = ("ratio_to_floor", "ratio_ci_low", "ratio_ci_high")
DISPLAY_COLUMNS: dict[str, tuple[str, ...]] = {
    "runs": (
        "run_id",
        "roles",
        "profile",
        "status",
        "selection",
        "process_model",
        "measured_processes",
        "invalid_processes",
    ),
    "attribution_fit": (
        "form",
        "value",
        "n_cells",
        "processes_per_cell",
        "n_processes",
        "n_tests",
        "residual_df",
        "residual_sd_log",
        "ci_basis",
        "weighting",
    ),
    "design": (
        "variant",
        "preset",
        "storage",
        "reference_data",
        "isolation",
        "session_wiring",
        "n_processes",
        "mean_sum_s",
        "geomean_test_s",
    ),
    "model": ("form", "term", "df", "F", "p_value"),
    "effects": ("form", "term", "kind", "time_ratio", "ci_low", "ci_high", "p_value", "distinguishable_from_zero"),
    "shares": (
        "form",
        "view",
        "switch",
        "share_min",
        "share_max",
        "share_mean",
        "share_mean_ci_low",
        "share_mean_ci_high",
        "band_low",
        "band_high",
        "time_ratio_min",
        "time_ratio_max",
    ),
    "share_orders": ("form", "view", "order", "switch", "position", "share", "share_ci_low", "share_ci_high"),
    "totals": ("form", "source", "tests", "n_tests", "speedup", "speedup_ci_low", "speedup_ci_high", "note"),
    "floor_tests": ("architecture", "test", "category", "n_blocks", *_OVERHEAD_COLUMNS, "ratio_to_floor"),
    "floor_categories": ("architecture", "category", "n_tests", "n_blocks", *_OVERHEAD_COLUMNS, *_RATIO_COLUMNS),
    "floor_overall": ("architecture", "n_tests", "n_blocks", *_OVERHEAD_COLUMNS, *_RATIO_COLUMNS, "overhead_share"),
    "floor_phases": ("architecture", "phase", "n_blocks", *_OVERHEAD_COLUMNS),
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
        "assumptions",
    ),
}


def shares_display(shares: pd.DataFrame) -> pd.DataFrame:
    """The shares table as the report shows it: percentages, one row per form, view and switch."""
    percent = partial(formatting.percent_text, suffix="")  # the column names carry the unit
    rows = []
    for row in shares.itertuples(index=False):
        rows.append(
            {
                "form": row.form,
                "view": row.view,
                "switch": f"{row.switch} ({row.level_from} → {row.level_to})",
                "share, range over the orders (%)": f"{percent(row.share_min)} to {percent(row.share_max)}",
                "mean over the orders (%)": percent(row.share_mean),
                "its 95 % CI (%)": f"[{percent(row.share_mean_ci_low)}, {percent(row.share_mean_ci_high)}]",
                "95 % band over the orders (%)": f"[{percent(row.band_low)}, {percent(row.band_high)}]",
                "step's time ratio over the orders": f"{row.time_ratio_min:.3g} to {row.time_ratio_max:.3g}",
                "orders": row.n_orders,
            }
        )
    return pd.DataFrame(rows)


def display_table(tables: Mapping[str, pd.DataFrame], name: str, *, digits: int = 4) -> pd.DataFrame:
    """Table `name` with its `DISPLAY_COLUMNS`, floats to `digits` significant digits (for notebooks);
    `shares` in percentages (`shares_display`)."""
    if name not in tables:
        raise StudyError(f"no table {name!r}; tables: {', '.join(tables)}")
    if name == "shares":
        return shares_display(tables[name])
    frame = tables[name]
    columns = [c for c in DISPLAY_COLUMNS.get(name, tuple(frame.columns)) if c in frame.columns]
    shown = frame[columns].copy()
    for column in shown.columns:
        if pd.api.types.is_float_dtype(shown[column]):
            shown[column] = shown[column].map(lambda v: float(f"{v:.{digits}g}") if pd.notna(v) else v)
    return shown
