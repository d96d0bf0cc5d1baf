"""The whole study in one call: measure, execute the notebooks, export the report, point `latest` at it.

``run_study`` measures both architectures with :func:`suitebench.runner.run_benchmark` in this
process (so the progress bar and Ctrl-C behave as in ``python -m harness run``), then executes
the four notebooks with papermill into ``reports/<run-id>/`` (the benchmark notebook describes
the run just measured; analysis, regression and validation report follow), exports the
validation report as self-contained HTML and replaces the ``reports/latest`` link atomically.
The helpers the notebooks call (``resolve_run``, ``regression_section``) live here too, so a
notebook run by hand does what the study does.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from quiz_study import paths, profiles
from quiz_study.errors import USER_ERRORS, StudyError
from suitebench import store

NOTEBOOKS: tuple[str, ...] = ("01_benchmark", "02_analysis", "03_regression", "04_validation_report")
REPORT_NOTEBOOK = "04_validation_report"
# Executed too when the run has why-study runs beside it (quiz_study.sections).
WHY_NOTEBOOK = "05_why_faster"
REPORT_FILE = "report.html"
LATEST_LINK = "latest"
TABLES_DIR = "tables"
VARIANTS: tuple[str, ...] = ("baseline", "transactional")


class StudyInterrupted(StudyError):
    """Ctrl-C (or SIGTERM) stopped the study; the measured data is kept."""


@dataclass(frozen=True)
class StudyPaths:
    """Where one study writes: runs, baselines and reports under one output root."""

    output_root: Path
    runs_dir: Path
    baselines_dir: Path
    reports_dir: Path

    @classmethod
    def under(cls, output_root: Path | str | None) -> StudyPaths:
        """``data/runs``, ``data/baselines`` and ``reports`` below ``output_root`` (default: the project)."""
        if output_root is None:
            return cls(paths.ROOT, paths.RUNS, paths.BASELINES, paths.REPORTS)
        root = Path(output_root).absolute()
        return cls(root, root / "data" / "runs", root / "data" / "baselines", root / "reports")


@dataclass(frozen=True)
class StudyResult:
    """What a study produced. ``verdicts`` is ``tables_for_run(run_dir)["verdicts"]``,
    ``headline`` its ``["headline"]``; ``all_passed`` is True when every acceptance criterion
    is met (undetermined is not met); ``check_failed`` when ``check`` was asked for and one was not."""

    run_id: str
    profile: str
    run_dir: Path
    report_dir: Path
    report_html: Path
    latest_link: Path
    notebooks: tuple[Path, ...]
    tables_dir: Path
    verdicts: pd.DataFrame = field(repr=False)
    headline: pd.DataFrame = field(repr=False)
    check: bool
    measure_s: float
    notebooks_s: float
    total_s: float
    invalid_measured_repetitions: int
    reproducibility: tuple[str, ...] = ()
    sections: tuple[str, ...] = ()

    @property
    def all_passed(self) -> bool:
        return bool(len(self.verdicts)) and bool(self.verdicts["passed"].astype(bool).all())

    @property
    def check_failed(self) -> bool:
        return self.check and not self.all_passed


@dataclass(frozen=True)
class RenderedReport:
    """What ``render_reports`` wrote for one run: the report directory, the executed notebooks (in
    ``NOTEBOOKS`` order), the HTML report, and the tables it computed (also written as CSV)."""

    report_dir: Path
    notebooks: tuple[Path, ...]
    report_html: Path
    tables: dict[str, pd.DataFrame] = field(repr=False)


# ---------------------------------------------------------------- helpers the notebooks call


def resolve_run(
    *,
    runs_dir: Path | str = paths.RUNS,
    run_id: str = "",
    profile_if_none: str = "smoke",
    measure_new: bool = False,
    progress: bool = False,
    announce: Callable[[str], object] | None = None,
) -> Path:
    """The run a notebook works on: ``run_id`` if given, else the latest complete run in
    ``runs_dir`` that measured both presets, else a new small run of ``profile_if_none``
    measured now (``measure_new``: always measure a new run of that profile).

    A relative ``runs_dir`` is under the output root (:func:`quiz_study.paths.notebook_data_path`).
    Before measuring, ``announce`` (e.g. ``print``) receives one line saying so and which
    command records the whole study instead, so a notebook's first output says what happens.

    Returns
    -------
    Path
        The run directory.
    """
    runs_dir = paths.notebook_data_path(runs_dir)
    if run_id and not measure_new:
        return store.find_run(run_id, runs_dir=runs_dir)
    if not measure_new:
        # Other studies store runs in the same directory, and some measure both presets among
        # other variants (why-study design and floor, environments): a main run measures exactly these two.
        comparable = [
            s for s in store.list_runs(runs_dir) if s.status == "complete" and set(s.variants) == set(VARIANTS)
        ]
        if comparable:
            return comparable[-1].path
    profile = profiles.get_profile(profile_if_none)
    if announce is not None:
        why = "as asked" if measure_new else "because no run of both architectures is recorded there yet"
        announce(
            f"Measuring a new {profile.name!r} run into {runs_dir} now, {why}; this takes a while. "
            f"For the whole study run `python run_all.py` in the project root, then run this notebook again."
        )
    return measure(profile=profile, runs_dir=runs_dir, progress=progress).run_dir


def measure(
    *,
    profile: profiles.Profile,
    runs_dir: Path | str,
    run_id: str | None = None,
    resume: bool = False,
    progress: bool = True,
):
    """Run the benchmark as ``profile`` says (both architectures, interleaved); a RunResult."""
    from quiz_study.variants import run_benchmark

    if resume:
        return run_benchmark(output_dir=runs_dir, run_id=run_id, resume=True, progress=progress)
    return run_benchmark(
        variants=list(VARIANTS),
        repetitions=profile.repetitions,
        warmup=profile.warmup,
        selection=profile.selection() or None,
        output_dir=runs_dir,
        run_id=run_id,
        seed=profile.seed,
        schedule=profile.schedule,
        progress=progress,
        timeout_s=profile.repetition_timeout_s,
        profile=profile.name,
    )


def default_baseline_name(profile: str | None, variant: str) -> str:
    """Baselines are per profile: runs of one profile select and repeat tests alike."""
    return f"study-{profile or 'adhoc'}-{variant}"


@dataclass(frozen=True)
class RegressionSection:
    """The regression notebook's content for one run.

    ``recorded_now`` is True when the baseline did not exist and was recorded from this run: it
    is then not checked (a run is never checked against a baseline recorded from itself; the
    next run of the profile is). ``check`` is None when there was nothing to check against or
    the check could not run (``check_note`` says why: recorded now, recorded from this run,
    another machine or Python, too few repetitions). ``calibration`` (enumerated, from the
    recorded sessions of this profile) and ``simulated`` (from this run's own noise) measure
    the gate's false alarms and power at this run's size; ``calibration_note`` says what could
    not be computed.
    """

    run_id: str
    variant: str
    baseline_name: str
    baseline_path: Path
    baseline_source_runs: tuple[str, ...]
    recorded_now: bool
    check_note: str
    check: Any
    calibration: Any
    simulated: pd.DataFrame = field(repr=False)
    calibration_note: str = ""
    trend: pd.DataFrame = field(repr=False, default_factory=pd.DataFrame)


def _commit(run: store.RunData) -> str:
    git = (run.metadata.get("environment") or {}).get("git") or {}
    return f"{git.get('commit')}{' (dirty)' if git.get('dirty') else ''}"


def _sessions_with_commits(
    runs_dir: Path, profile: str | None, variant: str, run: store.RunData
) -> list[tuple[Any, str]]:
    from suitebench import regression

    sessions = []
    for summary in store.list_runs(runs_dir, profile=profile):
        if summary.status != "complete" or summary.run_id == run.run_id or variant not in summary.variants:
            continue
        try:
            earlier = store.load_run(summary.path)
            sessions.append((regression.process_sample(earlier.timings, variant=variant), _commit(earlier)))
        except USER_ERRORS:
            continue
    return [*sessions, (regression.process_sample(run.timings, variant=variant), _commit(run))]


@dataclass(frozen=True)
class GateCalibrationSection:
    """The regression gate's false alarms and power at a run's size (see :func:`gate_calibration`):
    ``enumerated`` (a :class:`suitebench.regression.GateCalibration`, or None), ``simulated``
    (rates simulated from the run's own noise; empty when skipped) and ``notes``."""

    n_per_side: int
    enumerated: Any
    simulated: pd.DataFrame = field(repr=False)
    notes: tuple[str, ...] = ()

    @property
    def rates(self) -> pd.DataFrame:
        """Every rate: the enumerated ones first, then the simulated ones."""
        parts = [frame for frame in (getattr(self.enumerated, "rates", None), self.simulated) if frame is not None]
        parts = [frame for frame in parts if not frame.empty]
        return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()

    def lines(self) -> list[str]:
        from suitebench import regression

        lines = regression.format_calibration(self.enumerated) if self.enumerated is not None else []
        simulated = self.simulated
        if not simulated.empty:
            for source, rows in simulated.groupby("source", sort=False):
                aa = rows[rows["scenario"] == "A/A"]["rate"].iloc[0]
                call = rows[(rows["scenario"] == "call phase, every test") & (rows["slowdown_pct"] == 10.0)]
                cats = rows[(rows["scenario"] == "one category") & (rows["slowdown_pct"] == 50.0)]
                text = f"  {source}, {self.n_per_side} per side: false alarms {aa * 100:.1f} %"
                if len(call):
                    text += f", power for +10 % in every call phase {call['rate'].iloc[0] * 100:.0f} %"
                if len(cats):
                    text += (
                        f", for +50 % in one category {cats['rate'].min() * 100:.0f}-{cats['rate'].max() * 100:.0f} %"
                    )
                lines.append(text)
        return [*lines, *self.notes]


def gate_calibration(
    run_dir: Path | str,
    *,
    runs_dir: Path | str | None = None,
    alpha: float = 0.01,
    min_effect: float | None = None,
    simulation_draws: int = 2000,
) -> GateCalibrationSection:
    """False alarms and power of exactly the gate ``check`` runs, at this run's processes per side.

    Reads only (records nothing), so the report and the regression notebook can both call it.
    Enumerated: every split of a recorded session of this profile into two groups of the run's
    size, and every ordered pair of those sessions (:func:`suitebench.regression.calibrate_gate`);
    simulated: from this run's own noise (:func:`suitebench.regression.simulate_gate_calibration`,
    ``simulation_draws`` draws, 0 skips it). ``min_effect`` is the stored-baseline mode's (default
    :data:`suitebench.regression.DEFAULT_STORED_MIN_EFFECT`).
    """
    from quiz_study import tables
    from suitebench import regression

    run_dir = Path(run_dir)
    runs_dir = Path(runs_dir) if runs_dir is not None else run_dir.parent
    run = store.load_run(run_dir)
    settings = tables.analysis_settings(run)
    variant = settings.candidate
    n = int(run.measured_repetitions["variant"].eq(variant).sum())
    m = regression.DEFAULT_STORED_MIN_EFFECT if min_effect is None else min_effect
    enumerated, simulated, notes = None, pd.DataFrame(), []
    try:
        regression.check_design(n, n)
        found = _sessions_with_commits(runs_dir, settings.profile, variant, run)
        # Sessions of other tests (another selection, tests added since) would shrink the test set
        # the gate is calibrated on: only those with this run's tests are used.
        own = found[-1][0].passed_everywhere()
        same = [(sample, commit) for sample, commit in found[:-1] if sample.passed_everywhere() == own]
        if len(same) < len(found) - 1:
            notes.append(
                f"{len(found) - 1 - len(same)} recorded session(s) of this profile measured other tests: left out"
            )
        found = [*same, found[-1]]
        sessions = [sample for sample, _ in found]
        commits = {commit for _, commit in found}
        if len(found) > 1 and (len(commits) > 1 or any("dirty" in c for c in commits)):
            # A pair of sessions is an A/A comparison only if both measured the same code.
            notes.append(
                f"the {len(found)} recorded sessions of this profile measured {len(commits)} source state(s) "
                "(commits, or uncommitted changes): their pairs are A/A only where the code was the same"
            )
        enumerated = regression.calibrate_gate(
            sessions, n_per_side=n, alpha=alpha, min_effect_stored=m, seed=settings.seed
        )
        if simulation_draws > 0:
            simulated = regression.simulate_gate_calibration(
                sessions[-1], n_per_side=n, alpha=alpha, min_effect_stored=m, draws=simulation_draws, seed=settings.seed
            )
    except USER_ERRORS as problem:
        notes.append(f"no calibration of the regression gate for this run: {problem}")
    return GateCalibrationSection(n_per_side=n, enumerated=enumerated, simulated=simulated, notes=tuple(notes))


def regression_section(
    *,
    run_dir: Path | str,
    baselines_dir: Path | str = paths.BASELINES,
    baseline_name: str = "",
    alpha: float = 0.01,
    min_effect_pct: float | None = None,
    runs_dir: Path | str | None = None,
    simulation_draws: int = 2000,
) -> RegressionSection:
    """Check the run against the stored baseline of its profile (recording one from the run when
    none exists, and then not checking), calibrate the gate at the run's size, collect the trend.

    Parameters
    ----------
    run_dir : path
        The run to check.
    baselines_dir : path
        Store of baselines; a relative path is under the output root
        (:func:`quiz_study.paths.notebook_data_path`).
    baseline_name : str
        Empty: :func:`default_baseline_name` of the run's profile and candidate variant.
    alpha : float
        The gate's family-wise false-alarm rate.
    min_effect_pct : float, optional
        Minimum effect in percent; None: the baseline's calibration, else the default
        (:data:`suitebench.regression.DEFAULT_STORED_MIN_EFFECT`).
    runs_dir : path, optional
        Runs for the trend and the session pairs of the calibration (default: the run's parent);
        same profile only.
    simulation_draws : int
        Draws of the calibration simulated from this run's noise; 0 skips it.
    """
    from quiz_study import tables
    from suitebench import regression
    from suitebench.metadata import COMPARABLE_KEYS, metadata_differences

    run_dir = Path(run_dir)
    runs_dir = Path(runs_dir) if runs_dir is not None else run_dir.parent
    baselines_dir = paths.notebook_data_path(baselines_dir)
    run = store.load_run(run_dir)
    settings = tables.analysis_settings(run)
    variant = settings.candidate
    name = baseline_name or default_baseline_name(settings.profile, variant)
    path = regression.baseline_path(name, baselines_dir)
    recorded_now = not path.exists()
    if recorded_now:
        regression.record_baseline(
            run.timings,
            run.repetitions,
            name=name,
            store_dir=baselines_dir,
            variant=variant,
            metadata={
                "run_id": run.run_id,
                "profile": settings.profile,
                "environment": run.metadata.get("environment"),
                "arguments": run.metadata.get("arguments"),
            },
        )
    baseline = regression.load_baseline(name, baselines_dir)
    check, note = None, ""
    min_effect = None if min_effect_pct is None else min_effect_pct / 100.0
    if recorded_now:
        note = (
            f"Baseline '{name}' did not exist: recorded it now from this run ({variant}). A run is never checked "
            "against a baseline recorded from itself; the next run of this profile is checked against it."
        )
    elif run.run_id in baseline.source_run_ids:
        note = f"Baseline '{name}' was recorded from this run: nothing to check it against."
    else:
        recorded_on = baseline.metadata.get("environment") or {}
        differences = metadata_differences(recorded_on, run.metadata.get("environment") or {}, keys=COMPARABLE_KEYS)
        if differences:
            described = "; ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in differences.items())
            note = f"No check: the baseline was measured on another machine or Python ({described})."
        else:
            try:
                check = regression.check_regressions(
                    run.timings,
                    baseline=baseline,
                    variant=baseline.variant if baseline.variant in run.variants else variant,
                    alpha=alpha,
                    min_effect=min_effect,
                    calibration=regression.load_calibration(name, baselines_dir),
                )
            except USER_ERRORS as problem:
                note = f"No check: {problem}"
    used_m = check.gate.min_effect if check is not None else (min_effect or regression.DEFAULT_STORED_MIN_EFFECT)
    calibrated = gate_calibration(
        run_dir, runs_dir=runs_dir, alpha=alpha, min_effect=used_m, simulation_draws=simulation_draws
    )
    calibration, simulated = calibrated.enumerated, calibrated.simulated
    notes = list(calibrated.notes)
    trend = tables.trend_table(runs_dir, profile=settings.profile)
    return RegressionSection(
        run_id=run.run_id,
        variant=variant,
        baseline_name=name,
        baseline_path=path,
        baseline_source_runs=tuple(baseline.source_run_ids),
        recorded_now=recorded_now,
        check_note=note,
        check=check,
        calibration=calibration,
        simulated=simulated,
        calibration_note="; ".join(notes),
        trend=trend,
    )


def regression_tables(section: RegressionSection) -> dict[str, pd.DataFrame]:
    """The regression notebook's tables: ``gate`` (the components; empty when not checked),
    ``localisation`` (tests, only when the gate fired), ``counters`` (increases),
    ``calibration`` (enumerated rates and the rates simulated from this run's noise), ``trend``."""
    check = section.check
    empty = pd.DataFrame()
    calibration = GateCalibrationSection(
        n_per_side=section.calibration.n_per_side if section.calibration is not None else 0,
        enumerated=section.calibration,
        simulated=section.simulated,
    )
    return {
        "gate": check.gate.components if check is not None else empty,
        "localisation": check.localisation[check.localisation["flagged"]] if check is not None else empty,
        "counters": check.counters if check is not None else empty,
        "calibration": calibration.rates,
        "trend": section.trend,
    }


def format_regression(section: RegressionSection) -> list[str]:
    """What the regression check found, in plain lines."""
    from suitebench import regression

    lines = []
    if section.check is None:
        lines.append(section.check_note)
    else:
        lines.append(
            f"Checked against stored baseline '{section.baseline_name}' (recorded from run(s) "
            f"{', '.join(section.baseline_source_runs)})."
        )
        lines += regression.format_check(section.check)
    lines += GateCalibrationSection(
        n_per_side=section.calibration.n_per_side if section.calibration is not None else 0,
        enumerated=section.calibration,
        simulated=section.simulated,
        notes=(section.calibration_note,) if section.calibration_note else (),
    ).lines()
    lines.append(
        f"Minimum effect of the stored-baseline mode: {regression.DEFAULT_STORED_MIN_EFFECT * 100:.0f} % until "
        f"`python -m harness baseline calibrate {section.baseline_name} --run ...` has stored a calibration from at "
        f"least {regression.MIN_CALIBRATION_SESSIONS} A/A sessions; the same-session mode "
        "(`python -m harness check --against-rev REV`) needs none."
    )
    return lines


# ---------------------------------------------------------------- the study


def measure_sections(
    sections: Sequence[str],
    *,
    run_id: str,
    profile: profiles.Profile,
    runs_dir: Path,
    resume: bool = False,
    progress: bool = True,
    on_step: Callable[[str], None] | None = None,
) -> dict[str, list[Path]]:
    """Record the runs of the optional report sections beside main run ``run_id``
    (``quiz_study.sections`` names them); with ``resume``, continue those already started.

    Returns
    -------
    dict
        ``{"environments": [run dir], "why": [run dirs]}`` for the sections measured.
    """
    from quiz_study import environments, why
    from quiz_study import sections as report_sections

    unknown = [name for name in sections if name not in report_sections.SECTIONS]
    if unknown:
        raise StudyError(f"unknown section {unknown[0]!r}: choose from {', '.join(report_sections.SECTIONS)}")
    size = profile.section_size
    recorded: dict[str, list[Path]] = {}
    chosen = [name for name in environments.SECTIONS if name in sections]
    if chosen:
        if on_step:
            on_step(f"measuring {' and '.join(chosen)} ({size} size: quiz_study.environments)")
        result = environments.run_environment_study(
            size=size,
            sections=chosen,
            output_dir=runs_dir,
            run_id=report_sections.environment_run_id(run_id),
            resume=resume,
            seed=profile.seed,
            progress=progress,
        )
        recorded["environments"] = [Path(result.run_dir)]
    if "why" in sections:
        if on_step:
            on_step(f"measuring why it is faster ({size} size: quiz_study.why)")
        result = why.run_why_study(
            profile_size=size,
            output_dir=runs_dir,
            seed=profile.seed,
            progress=progress,
            run_prefix=report_sections.why_run_prefix(run_id),
            resume=resume,
            annotations={"main_profile": profile.name},
            compute_tables=False,
        )
        recorded["why"] = list(result.run_dirs.values())
    return recorded


def _main_run_started_before_why(study_paths: StudyPaths, run_id: str) -> bool:
    """True for a main run recorded before its why runs (as studies did before the why section
    moved first): resuming it keeps that order."""
    from quiz_study import sections as report_sections

    why_dirs = report_sections.why_runs(study_paths.runs_dir / run_id)
    if not why_dirs:
        return True
    main_started = str(store.read_metadata(study_paths.runs_dir / run_id).get("started_at") or "")
    return all(main_started < str(store.read_metadata(path).get("started_at") or "") for path in why_dirs)


def _replace_link(link: Path, target_name: str) -> None:
    """Point ``link`` at ``target_name`` (a sibling) by renaming a fresh link over it."""
    if link.exists() and not link.is_symlink():
        raise StudyError(f"{link} exists and is not a symbolic link; remove it so it can point at the latest report")
    temporary = link.with_name(f".{link.name}.{os.getpid()}.tmp")
    try:
        temporary.unlink(missing_ok=True)
        os.symlink(target_name, temporary, target_is_directory=True)
        os.replace(temporary, link)
    except OSError as problem:
        temporary.unlink(missing_ok=True)
        raise StudyError(f"cannot point {link} at {target_name}: {problem.strerror or problem}") from None


def _notebook_parameters(
    name: str, *, run_dir: Path, study_paths: StudyPaths, profile: profiles.Profile
) -> dict[str, Any]:
    if name == WHY_NOTEBOOK:
        from quiz_study.sections import why_runs

        return {
            "runs_dir": str(study_paths.runs_dir),
            # The main run too: the why tables show its directly measured speedup beside the model's.
            "run_ids": [p.name for p in why_runs(run_dir)] + [run_dir.name],
            "size_if_none": "",
            "seed": profile.seed,
        }
    common = {"runs_dir": str(study_paths.runs_dir), "run_id": run_dir.name}
    if name == "01_benchmark":
        return {**common, "profile": profile.name, "run_new": False}
    if name == "03_regression":
        return {
            **common,
            "baselines_dir": str(study_paths.baselines_dir),
            "baseline_name": "",
            "simulation_draws": profile.calibration_draws,
        }
    return common


def write_tables(tables: Mapping[str, pd.DataFrame], directory: Path) -> Path:
    """Every table as CSV (machine-readable companions of the report)."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, frame in tables.items():
        frame.to_csv(directory / f"{name}.csv", index=False)
    return directory


def render_reports(
    run_dir: Path | str,
    *,
    profile: profiles.Profile,
    study_paths: StudyPaths,
    kernel_name: str = "python3",
    on_step: Callable[[str], None] | None = None,
    max_parallel: int | None = None,
) -> RenderedReport:
    """Execute the notebooks on a measured run, export the HTML report, write the tables as CSV.

    The notebooks only read the run (the regression notebook also writes its baseline, which no
    other notebook reads), so they run side by side, at most ``max_parallel`` kernels at a time
    (default: the number of usable cores, at most 4), while this process computes
    ``tables_for_run`` for the summary and ``reports/<run-id>/tables/*.csv``.

    Returns
    -------
    RenderedReport

    Raises
    ------
    StudyError
        A notebook failed (every failure is named) or the export failed.
    """
    from concurrent.futures import ThreadPoolExecutor

    from quiz_study import html, notebooks, tables
    from quiz_study import sections as report_sections

    run_dir = Path(run_dir)
    report_dir = study_paths.reports_dir / run_dir.name
    report_dir.mkdir(parents=True, exist_ok=True)
    if max_parallel is None:
        try:
            max_parallel = len(os.sched_getaffinity(0))
        except (AttributeError, OSError):
            max_parallel = os.cpu_count() or 1
    from quiz_study.sections import why_runs

    names = NOTEBOOKS + ((WHY_NOTEBOOK,) if why_runs(run_dir) and profile.why_notebook else ())
    workers = max(1, min(max_parallel, len(names), 4))

    def execute(name: str) -> Path:
        return notebooks.execute_notebook(
            name,
            parameters=_notebook_parameters(name, run_dir=run_dir, study_paths=study_paths, profile=profile),
            output_dir=report_dir,
            kernel_name=kernel_name,
            timeout_s=profile.cell_timeout_s,
            cwd=paths.ROOT,
        )

    if on_step:
        on_step(f"executing notebooks {', '.join(names)} ({workers} at a time)")
    # The heaviest first, so the pool stays busy.
    order = sorted(names, key=lambda name: (name != REPORT_NOTEBOOK, name != "02_analysis", name))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="notebook") as pool:
        futures = {name: pool.submit(execute, name) for name in order}
        run_tables = tables.tables_for_run(run_dir)
        write_tables(run_tables, report_dir / TABLES_DIR)
        try:
            # Computed while the notebooks run, for the end-of-study summary (cached by the files' versions).
            report_sections.why_tables_for(run_dir)
        except USER_ERRORS:
            pass  # the summary says what went wrong
        failures = []
        executed = {}
        for name in names:
            try:
                executed[name] = futures[name].result()
            except USER_ERRORS as problem:
                failures.append(str(problem))
    if failures:
        raise StudyError(" | ".join(failures))
    if on_step:
        on_step("exporting the HTML report")
    report_html = html.export_html(
        report_dir / f"{REPORT_NOTEBOOK}.ipynb",
        report_dir / REPORT_FILE,
        title=f"Validation report, run {run_dir.name}",
    )
    return RenderedReport(
        report_dir=report_dir,
        notebooks=tuple(executed[name] for name in names),
        report_html=report_html,
        tables=run_tables,
    )


def run_study(
    *,
    profile: str = profiles.DEFAULT_PROFILE,
    output_root: Path | str | None = None,
    run_id: str | None = None,
    check: bool = False,
    resume: bool = False,
    progress: bool = True,
    kernel_name: str = "python3",
    on_step: Callable[[str], None] | None = None,
    sections: Sequence[str] | None = None,
) -> StudyResult:
    """Measure, analyse and report: the whole study.

    Parameters
    ----------
    profile : str
        ``smoke``, ``quick``, ``standard`` or ``full`` (:mod:`quiz_study.profiles`).
    output_root : path, optional
        Root of ``data/runs``, ``data/baselines`` and ``reports`` (default: the project).
    run_id : str, optional
        Name of the run (default: a timestamp).
    check : bool
        Record that the caller fails on a failed acceptance criterion (``check_failed``).
    resume : bool
        Continue the interrupted run ``run_id`` (or re-render a complete one) instead of
        starting a new one.
    progress : bool
        Progress bar of the measurement.
    kernel_name : str
        Jupyter kernel for the notebooks.
    on_step : callable, optional
        Called with a short description at each step (the CLI prints it).
    sections : sequence of str, optional
        Optional report sections to measure after the main run (``quiz_study.sections.SECTIONS``:
        why, postgres, parallel) at the profile's ``section_size``; default: the profile's.

    Returns
    -------
    StudyResult

    Raises
    ------
    StudyError
        Any step failed (the message names it); ``suitebench.runner.RunInterrupted`` or
        :class:`StudyInterrupted` (both StudyErrors) when interrupted, data kept.
    """
    from quiz_study import formatting, notebooks
    from quiz_study import sections as report_sections
    from suitebench.runner import RunInterrupted

    chosen = profiles.get_profile(profile)
    if resume and not run_id:
        raise StudyError("resuming needs the id of the run to continue")
    study_paths = StudyPaths.under(output_root)
    # Named here, not by the runner, so an interruption can say how to resume.
    run_id = run_id or store.new_run_id()
    # Fail before measuring for minutes when the report cannot be produced at the end.
    notebooks.check_kernel(kernel_name)
    for name in NOTEBOOKS:
        notebooks.notebook_path(name)
    started = time.perf_counter()
    main_exists = (study_paths.runs_dir / run_id / store.METADATA_FILE).is_file()
    if resume and not main_exists:
        from quiz_study.sections import why_runs

        measured_first = why_runs(study_paths.runs_dir / run_id)
        if not measured_first:
            # Neither the main run nor the why runs measured before it: nothing to resume.
            store.find_run(run_id, runs_dir=study_paths.runs_dir)
        # Interrupted in the why section: the study keeps the profile it was started with.
        stored = store.read_metadata(measured_first[0]).get("main_profile")
        chosen = profiles.PROFILES.get(stored, chosen) if isinstance(stored, str) else chosen
    if resume and main_exists:
        # A resumed run keeps the profile it was planned with.
        stored = store.read_metadata(study_paths.runs_dir / run_id).get("profile")
        chosen = profiles.PROFILES.get(stored, chosen) if isinstance(stored, str) else chosen
    wanted = tuple(chosen.sections if sections is None else sections)
    # The why section first: its processes warm the machine for the main run (Profile.warmup_after_why).
    why_first = "why" in wanted and not (resume and main_exists and _main_run_started_before_why(study_paths, run_id))
    try:
        if why_first:
            measure_sections(
                ("why",),
                run_id=run_id,
                profile=chosen,
                runs_dir=study_paths.runs_dir,
                resume=resume,
                progress=progress,
                on_step=on_step,
            )
        main_profile = dataclasses.replace(chosen, warmup=chosen.main_warmup(why_measured_first=why_first))
        if on_step:
            on_step(f"measuring ({chosen.name}: {chosen.description})")
        result = measure(
            profile=main_profile,
            runs_dir=study_paths.runs_dir,
            run_id=run_id,
            resume=resume and main_exists,
            progress=progress,
        )
        measure_sections(
            tuple(name for name in wanted if not (why_first and name == "why")),
            run_id=result.run_id,
            profile=chosen,
            runs_dir=study_paths.runs_dir,
            resume=resume,
            progress=progress,
            on_step=on_step,
        )
    except RunInterrupted as interrupted:
        raise StudyInterrupted(
            f"{interrupted}; or finish the whole study with: "
            f"{formatting.study_command(study_paths.runs_dir / run_id, sections=wanted)}"
        ) from None
    run_dir = result.run_dir
    measured = time.perf_counter()
    try:
        rendered = render_reports(
            run_dir, profile=chosen, study_paths=study_paths, kernel_name=kernel_name, on_step=on_step
        )
        link = study_paths.reports_dir / LATEST_LINK
        _replace_link(link, rendered.report_dir.name)
    except KeyboardInterrupt:
        raise StudyInterrupted(
            f"interrupted while reporting on run {result.run_id}; its measurements are kept in {run_dir}; "
            f"make the report with: {formatting.study_command(run_dir)}"
        ) from None
    finished = time.perf_counter()
    return StudyResult(
        run_id=result.run_id,
        profile=chosen.name,
        run_dir=run_dir,
        report_dir=rendered.report_dir,
        report_html=rendered.report_html,
        latest_link=link,
        notebooks=rendered.notebooks,
        tables_dir=rendered.report_dir / TABLES_DIR,
        verdicts=rendered.tables["verdicts"],
        headline=rendered.tables["headline"],
        check=check,
        measure_s=measured - started,
        notebooks_s=finished - measured,
        total_s=finished - started,
        invalid_measured_repetitions=result.invalid_measured_repetitions,
        reproducibility=tuple(formatting.format_reproducibility(rendered.tables)),
        sections=tuple(report_sections.summary_lines(run_dir)),
    )


def format_summary(result: StudyResult) -> list[str]:
    """The end-of-study summary: verdicts, the speedups with CIs, where the report is."""
    from quiz_study import formatting
    from suitebench import stats

    lines = [
        f"run {result.run_id} (profile {result.profile}): measured in {result.measure_s:.0f} s, "
        f"notebooks and report in {result.notebooks_s:.0f} s, {result.total_s:.0f} s in all",
        "",
        "acceptance criteria (the seed's targets):",
    ]
    display = formatting.verdicts_display(result.verdicts)[["criterion", "measured", "95 % CI", "target", "verdict"]]
    lines += ["  " + line for line in stats.format_table(display).splitlines()]
    lines += ["", "speedup of transactional over baseline:"]
    for row in result.headline.itertuples(index=False):
        lines.append(
            f"  {row.measure}: {row.speedup:.3g}x "
            f"({formatting.ci_text(row.speedup_ci_low, row.speedup_ci_high, '.3g')}), "
            f"{row.improvement_pct:.1f} % faster "
            f"({formatting.ci_text(row.improvement_pct_ci_low, row.improvement_pct_ci_high, '.1f')})"
        )
    if result.invalid_measured_repetitions:
        lines.append(
            f"warning: {result.invalid_measured_repetitions} measured repetition(s) invalid (failed tests or crash); "
            f"see {result.run_dir / store.REPETITIONS_FILE}"
        )
    if result.sections:
        lines += ["", *result.sections]
    lines += ["", *result.reproducibility, ""]
    lines.append(f"report: {result.report_html}")
    lines.append(f"        {result.latest_link / REPORT_FILE} (latest)")
    if result.check:
        lines.append(
            "check: "
            + ("all acceptance criteria pass" if result.all_passed else "FAILED: an acceptance criterion is not met")
        )
    return lines
