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

import math
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
    passed; ``check_failed`` when ``check`` was asked for and one did not."""

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

    ``recorded_now`` is True when the baseline did not exist and was recorded from this run
    (the check then compares the run with itself and can only pass). ``check`` is None when
    the baseline was measured on another machine or Python (``environment_note`` says how).
    ``calibration`` is None when the run has too few repetitions (``calibration_note`` says so).
    """

    run_id: str
    variant: str
    baseline_name: str
    baseline_path: Path
    baseline_source_runs: tuple[str, ...]
    recorded_now: bool
    environment_note: str
    check: Any
    calibration: Any
    calibration_note: str
    trend: pd.DataFrame = field(repr=False)


def regression_section(
    *,
    run_dir: Path | str,
    baselines_dir: Path | str = paths.BASELINES,
    baseline_name: str = "",
    threshold: float = 0.2,
    alpha: float = 0.05,
    calibration_trials: int = 200,
    runs_dir: Path | str | None = None,
) -> RegressionSection:
    """Record a baseline from the run if none exists, check the run against it, calibrate the
    gate on the run's own repetitions and collect the trend across recorded runs.

    Parameters
    ----------
    run_dir : path
        The run to check.
    baselines_dir : path
        Store of baselines; a relative path is under the output root
        (:func:`quiz_study.paths.notebook_data_path`).
    baseline_name : str
        Empty: :func:`default_baseline_name` of the run's profile and candidate variant.
    threshold, alpha : float
        The gate, as in :func:`suitebench.regression.check_regressions`.
    calibration_trials : int
        Random splits for :func:`suitebench.regression.calibrate`; 0 skips the calibration.
    runs_dir : path, optional
        Runs for the trend (default: the run's parent); same profile only.
    """
    from quiz_study import tables
    from suitebench import regression
    from suitebench.metadata import COMPARABLE_KEYS, metadata_differences

    run_dir = Path(run_dir)
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
    recorded_on = baseline.metadata.get("environment") or {}
    differences = metadata_differences(recorded_on, run.metadata.get("environment") or {}, keys=COMPARABLE_KEYS)
    environment_note = "; ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in differences.items())
    check = None
    if not differences:
        check = regression.check_regressions(
            run.timings,
            baseline=baseline,
            variant=baseline.variant if baseline.variant in run.variants else variant,
            threshold=threshold,
            alpha=alpha,
            seed=settings.seed,
            n_resamples=settings.n_resamples,
        )
    calibration, note = None, ""
    if calibration_trials <= 0:
        note = "calibration skipped (calibration_trials = 0)"
    else:
        try:
            calibration = regression.calibrate(
                run.timings,
                variant=variant,
                threshold=threshold,
                alpha=alpha,
                n_trials=calibration_trials,
                seed=settings.seed,
            )
        except USER_ERRORS as problem:
            note = f"no calibration for this run: {problem} (profiles standard and full have enough)"
    trend = tables.trend_table(runs_dir if runs_dir is not None else run_dir.parent, profile=settings.profile)
    return RegressionSection(
        run_id=run.run_id,
        variant=variant,
        baseline_name=name,
        baseline_path=path,
        baseline_source_runs=tuple(baseline.source_run_ids),
        recorded_now=recorded_now,
        environment_note=environment_note,
        check=check,
        calibration=calibration,
        calibration_note=note,
        trend=trend,
    )


def regression_tables(section: RegressionSection) -> dict[str, pd.DataFrame]:
    """The regression notebook's tables: ``comparisons`` (per test, against the baseline; empty
    when not checked), ``findings``, ``calibration`` (rates; empty when not calibrated), ``trend``."""
    from dataclasses import asdict

    check = section.check
    comparisons = check.comparisons if check is not None else pd.DataFrame()
    findings = (
        pd.DataFrame([asdict(f) for f in check.findings]) if check is not None and check.findings else pd.DataFrame()
    )
    calibration = section.calibration.rates if section.calibration is not None else pd.DataFrame()
    return {"comparisons": comparisons, "findings": findings, "calibration": calibration, "trend": section.trend}


def format_regression(section: RegressionSection) -> list[str]:
    """What the regression check found, in plain lines."""
    from suitebench import regression

    lines = []
    if section.recorded_now:
        lines.append(
            f"Baseline '{section.baseline_name}' did not exist: recorded it now from this run ({section.variant}), "
            "so this first check compares the run with itself and cannot flag anything."
        )
    else:
        lines.append(
            f"Checked against stored baseline '{section.baseline_name}' (recorded from run(s) "
            f"{', '.join(section.baseline_source_runs)})."
        )
    if section.check is None:
        lines.append(f"No check: the baseline was measured on another machine or Python ({section.environment_note}).")
    else:
        lines += regression.format_check(section.check)
    if section.calibration is None:
        lines.append(section.calibration_note)
    else:
        lines += regression.format_calibration(section.calibration)
    return lines


# ---------------------------------------------------------------- the study


def new_run_id() -> str:
    """A fresh run id: local time stamp plus 4 random hex digits (sorts by start time)."""
    import datetime as dt

    return f"{dt.datetime.now().strftime('%Y%m%d-%H%M%S')}-{os.urandom(2).hex()}"


def _resume_command(
    run_id: str, study_paths: StudyPaths, output_root: Path | str | None, sections: Sequence[str] | None = None
) -> str:
    command = f"python run_all.py --resume {run_id}"
    if sections is not None:
        command += f" --with {','.join(sections) or 'none'}"
    return command + (f" --output-root {study_paths.output_root}" if output_root is not None else "")


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
        )
        recorded["why"] = list(result.run_dirs.values())
    return recorded


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
            "run_ids": [p.name for p in why_runs(run_dir)],
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
            "calibration_trials": profile.calibration_trials,
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
) -> tuple[Path, tuple[Path, ...], Path, dict[str, pd.DataFrame]]:
    """Execute the notebooks on a measured run, export the HTML report, write the tables as CSV.

    The notebooks only read the run (the regression notebook also writes its baseline, which no
    other notebook reads), so they run side by side, at most ``max_parallel`` kernels at a time
    (default: the number of usable cores, at most 4), while this process computes
    ``tables_for_run`` for the summary and ``reports/<run-id>/tables/*.csv``.

    Returns
    -------
    tuple
        ``(report directory, executed notebooks in NOTEBOOKS order, report.html, tables)``.

    Raises
    ------
    StudyError
        A notebook failed (every failure is named) or the export failed.
    """
    from concurrent.futures import ThreadPoolExecutor

    from quiz_study import html, notebooks, tables

    run_dir = Path(run_dir)
    report_dir = study_paths.reports_dir / run_dir.name
    report_dir.mkdir(parents=True, exist_ok=True)
    if max_parallel is None:
        try:
            max_parallel = len(os.sched_getaffinity(0))
        except (AttributeError, OSError):
            max_parallel = os.cpu_count() or 1
    from quiz_study.sections import why_runs

    names = NOTEBOOKS + ((WHY_NOTEBOOK,) if why_runs(run_dir) else ())
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
        tables = tables.tables_for_run(run_dir)
        write_tables(tables, report_dir / TABLES_DIR)
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
    html = html.export_html(
        report_dir / f"{REPORT_NOTEBOOK}.ipynb",
        report_dir / REPORT_FILE,
        title=f"Validation report, run {run_dir.name}",
    )
    return report_dir, tuple(executed[name] for name in names), html, tables


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
    from quiz_study import formatting, html, notebooks, tables
    from quiz_study import sections as report_sections
    from suitebench.runner import RunInterrupted

    chosen = profiles.get_profile(profile)
    if resume and not run_id:
        raise StudyError("resuming needs the id of the run to continue")
    study_paths = StudyPaths.under(output_root)
    # Named here, not by the runner, so an interruption can say how to resume.
    run_id = run_id or new_run_id()
    # Fail before measuring for minutes when the report cannot be produced at the end.
    notebooks.check_kernel(kernel_name)
    for name in NOTEBOOKS:
        notebooks.notebook_path(name)
    started = time.perf_counter()
    if on_step:
        on_step(f"measuring ({chosen.name}: {chosen.description})")
    try:
        result = measure(profile=chosen, runs_dir=study_paths.runs_dir, run_id=run_id, resume=resume, progress=progress)
    except RunInterrupted as interrupted:
        raise StudyInterrupted(
            f"{interrupted}; or finish the whole study with: "
            f"{_resume_command(run_id, study_paths, output_root, sections)}"
        ) from None
    run_dir = result.run_dir
    if resume:
        # A resumed run keeps the profile it was planned with.
        stored = store.read_metadata(run_dir).get("profile")
        chosen = profiles.PROFILES.get(stored, chosen) if isinstance(stored, str) else chosen
    wanted = tuple(chosen.sections if sections is None else sections)
    try:
        measure_sections(
            wanted,
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
            f"{_resume_command(result.run_id, study_paths, output_root, wanted)}"
        ) from None
    measured = time.perf_counter()
    try:
        report_dir, executed, html, tables = render_reports(
            run_dir, profile=chosen, study_paths=study_paths, kernel_name=kernel_name, on_step=on_step
        )
        tables_dir = report_dir / TABLES_DIR
        link = study_paths.reports_dir / LATEST_LINK
        _replace_link(link, report_dir.name)
    except KeyboardInterrupt:
        raise StudyInterrupted(
            f"interrupted while reporting on run {result.run_id}; its measurements are kept in {run_dir}; "
            f"make the report with: {_resume_command(result.run_id, study_paths, output_root)}"
        ) from None
    finished = time.perf_counter()
    return StudyResult(
        run_id=result.run_id,
        profile=chosen.name,
        run_dir=run_dir,
        report_dir=report_dir,
        report_html=html,
        latest_link=link,
        notebooks=executed,
        tables_dir=tables_dir,
        verdicts=tables["verdicts"],
        headline=tables["headline"],
        check=check,
        measure_s=measured - started,
        notebooks_s=finished - measured,
        total_s=finished - started,
        invalid_measured_repetitions=result.invalid_measured_repetitions,
        reproducibility=tuple(formatting.format_reproducibility(tables)),
        sections=tuple(report_sections.summary_lines(run_dir)),
    )


def _ci(low: float, high: float, spec: str) -> str:
    if math.isnan(low) or math.isnan(high):
        return "CI n/a"
    return f"95 % CI {format(low, spec)} to {format(high, spec)}"


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
            f"  {row.measure}: {row.speedup:.3g}x ({_ci(row.speedup_ci_low, row.speedup_ci_high, '.3g')}), "
            f"{row.improvement_pct:.1f} % faster ({_ci(row.improvement_pct_ci_low, row.improvement_pct_ci_high, '.1f')})"
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
