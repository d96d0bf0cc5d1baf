"""Run the suite under study as interleaved, fresh pytest processes and record every repetition.

One repetition = one `python -m pytest` process for one variant (architecture), started with an
explicit environment, timed as a whole by this process, with the timing plugin writing structured
records into the repetition's raw directory (never parsed from printed output). Repetitions are
interleaved in blocks (every variant once per block) so drift in machine load hits every variant
alike. The planned schedule is stored before the first process starts; each finished repetition
is appended to the run's CSV files at once, so an interrupted run keeps everything completed and
`resume=True` continues it.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import pandas as pd
from tqdm import tqdm

from harness import dataset, parallel, paths
from quiz_architectures import pg
from quiz_architectures.architectures import parse_spec
from harness.errors import USER_ERRORS, HarnessError
from harness.metadata import collect_load_average, collect_metadata, metadata_differences
from harness.timing_plugin import plugin_args as timing_plugin_args
from harness.timings_io import read_records, records_to_frame

ScheduleKind = Literal["abab", "random"]
SCHEDULE_KINDS: tuple[str, ...] = ("abab", "random")

DEFAULT_VARIANTS: tuple[str, ...] = ("baseline", "transactional")
DEFAULT_REPETITIONS = 10
DEFAULT_WARMUP = 1
# Fixed so that dict/set iteration order, and anything hashed, is the same in every process.
CHILD_HASH_SEED = "0"
SELECTION_KEYS: tuple[str, ...] = ("keyword", "marker")

# The child environment is built from nothing but these (pyperf's approach): what the suite
# sees must not depend on the shell the run was started from (QUIZ_*, PYTEST_ADDOPTS, ...).
INHERITED_ENVIRONMENT: tuple[str, ...] = (
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "LANG",
    "LANGUAGE",
    "TZ",
    "TMPDIR",
    "TEMP",
    "TMP",
    "SYSTEMROOT",
    "COMSPEC",
    "PATHEXT",
    "WINDIR",
    "VIRTUAL_ENV",
    "CONDA_PREFIX",
    "LD_LIBRARY_PATH",
)

_EXIT_CODES = {
    1: "tests failed",
    2: "interrupted",
    3: "internal error",
    4: "usage error",
    5: "no tests collected",
}
_FAILED_OUTCOMES = ("failed", "error")


class RunInterrupted(HarnessError):
    """The run was stopped (Ctrl-C, SIGTERM) before its schedule finished; its data is kept."""


# ---------------------------------------------------------------- plan


@dataclass(frozen=True)
class Variant:
    """One architecture to measure: its label (stored in the data) and the suite's arguments."""

    label: str
    spec: str
    pytest_args: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "spec": self.spec, "pytest_args": list(self.pytest_args)}


@dataclass(frozen=True)
class PlannedRepetition:
    repetition: int
    block: int
    order: int
    variant: str
    warmup: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PlannedRepetition:
        return cls(
            repetition=int(data["repetition"]),
            block=int(data["block"]),
            order=int(data["order"]),
            variant=str(data["variant"]),
            warmup=bool(data["warmup"]),
        )


def resolve_variants(specs: Iterable[str]) -> list[Variant]:
    """Parse architecture specs (`baseline`, `transactional+storage=disk`, optionally ending in
    `@n=WORKERS` for pytest-xdist, see `harness.parallel`); HarnessError if unknown or repeated."""
    variants: list[Variant] = []
    for spec in specs:
        architecture, workers = parallel.split_variant(spec)
        switches = parse_spec(architecture)
        variant = Variant(
            label=parallel.variant_label(switches.label, workers),
            spec=switches.spec(),
            pytest_args=(*switches.pytest_args(), *parallel.xdist_args(workers)),
        )
        if any(existing.label == variant.label for existing in variants):
            raise HarnessError(f"variant {variant.label!r} is given more than once")
        variants.append(variant)
    if not variants:
        raise HarnessError("no variants to run; give at least one architecture")
    return variants


def plan_schedule(
    *, variants: Sequence[str], repetitions: int, warmup: int, schedule: ScheduleKind, seed: int | None
) -> list[PlannedRepetition]:
    """Warm-up blocks, then measured blocks; every block runs every variant once.

    `abab` keeps the given variant order in every block; `random` permutes it per block with
    `np.random.default_rng(seed)`. Blocks are numbered in execution order, warm-up blocks first.
    """
    if schedule not in SCHEDULE_KINDS:
        raise HarnessError(f"unknown schedule {schedule!r}; choose one of {', '.join(SCHEDULE_KINDS)}")
    rng = np.random.default_rng(seed)
    planned: list[PlannedRepetition] = []
    for block in range(warmup + repetitions):
        order = list(variants)
        if schedule == "random":
            order = [order[i] for i in rng.permutation(len(order))]
        for position, variant in enumerate(order):
            planned.append(
                PlannedRepetition(
                    repetition=len(planned), block=block, order=position, variant=variant, warmup=block < warmup
                )
            )
    return planned


# ---------------------------------------------------------------- one process


@dataclass(frozen=True)
class ProcessOutcome:
    """How one pytest process ended; `exit_code` is negative for a signal (POSIX)."""

    exit_code: int
    wall_s: float
    timed_out: bool


class Executor(Protocol):
    def __call__(
        self, command: Sequence[str], *, env: Mapping[str, str], cwd: Path, log_path: Path, timeout_s: float | None
    ) -> ProcessOutcome: ...


def _kill_process_group(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    try:
        if hasattr(os, "killpg"):
            os.killpg(process.pid, signal.SIGKILL)
        else:  # pragma: no cover - Windows
            process.kill()
    except (ProcessLookupError, PermissionError):
        pass
    process.wait()


def execute_process(
    command: Sequence[str], *, env: Mapping[str, str], cwd: Path, log_path: Path, timeout_s: float | None
) -> ProcessOutcome:
    """Run one process with output to `log_path`; wall time includes interpreter start-up.

    The child gets its own session so Ctrl-C reaches only this process, which then kills the
    child's whole group (xdist workers included) before re-raising.
    """
    with open(log_path, "wb") as log:
        started = time.perf_counter()
        process = subprocess.Popen(
            list(command),
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=hasattr(os, "killpg"),
        )
        try:
            exit_code = process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            wall_s = time.perf_counter() - started
            _kill_process_group(process)
            return ProcessOutcome(exit_code=process.returncode, wall_s=wall_s, timed_out=True)
        except BaseException:
            _kill_process_group(process)
            raise
        return ProcessOutcome(exit_code=exit_code, wall_s=time.perf_counter() - started, timed_out=False)


def child_environment(
    *,
    environ: Mapping[str, str] | None = None,
    project_root: Path = paths.ROOT,
    extra_env: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The explicit environment of every pytest process: a short whitelist, a fixed hash seed,
    the project root on PYTHONPATH so `harness` imports without an install, and `extra_env`
    (what the run itself decides, e.g. the QUIZ_POSTGRES_URL of the run's server)."""
    environ = os.environ if environ is None else environ
    env = {
        name: value
        for name, value in environ.items()
        if name in INHERITED_ENVIRONMENT or name.startswith("LC_")
    }
    env["PYTHONHASHSEED"] = CHILD_HASH_SEED
    env["PYTHONPATH"] = str(project_root)
    env.update(extra_env or {})
    return env


def _needs_postgres(variants: Iterable[Variant]) -> bool:
    return any(parse_spec(parallel.split_variant(v.label)[0]).storage == "postgres" for v in variants)


def selection_args(selection: Mapping[str, str] | None) -> list[str]:
    """`-k` / `-m` arguments from {"keyword": ..., "marker": ...}."""
    selection = dict(selection or {})
    unknown = set(selection) - set(SELECTION_KEYS)
    if unknown:
        raise HarnessError(
            f"unknown selection key(s) {', '.join(sorted(unknown))}; use {' and/or '.join(SELECTION_KEYS)}"
        )
    args: list[str] = []
    if selection.get("keyword"):
        args += ["-k", selection["keyword"]]
    if selection.get("marker"):
        args += ["-m", selection["marker"]]
    return args


def pytest_command(
    *,
    suite_path: Path,
    variant: Variant,
    raw_dir: Path,
    selection: Mapping[str, str] | None = None,
    extra_pytest_args: Sequence[str] = (),
    plugin_args: Sequence[str] | None = None,
) -> list[str]:
    plugin_args = timing_plugin_args() if plugin_args is None else list(plugin_args)
    return [
        sys.executable,
        "-m",
        "pytest",
        str(suite_path),
        "-p",
        "no:cacheprovider",
        "-p",
        "no:randomly",
        "-q",
        *variant.pytest_args,
        *selection_args(selection),
        *plugin_args,
        f"--harness-timings={raw_dir}",
        *extra_pytest_args,
    ]


@dataclass(frozen=True)
class TestCounts:
    n_tests: int
    n_passed: int
    n_failed: int


def count_tests(records: Iterable[Mapping[str, Any]]) -> TestCounts:
    """Tests, passes and failures (failed or error) among the plugin's `test` records."""
    outcomes = [record.get("outcome") for record in records if record.get("kind") == "test"]
    return TestCounts(
        n_tests=len(outcomes),
        n_passed=sum(outcome == "passed" for outcome in outcomes),
        n_failed=sum(outcome in _FAILED_OUTCOMES for outcome in outcomes),
    )


def invalid_reason(*, outcome: ProcessOutcome, counts: TestCounts, n_records: int, timeout_s: float | None) -> str:
    """Why a repetition must not count ("" when it is valid)."""
    reasons = []
    if outcome.timed_out:
        reasons.append(f"timed out after {timeout_s:g} s")
    elif outcome.exit_code != 0:
        meaning = _EXIT_CODES.get(outcome.exit_code)
        if outcome.exit_code < 0:
            meaning = f"killed by signal {-outcome.exit_code}"
        reasons.append(f"exit code {outcome.exit_code}" + (f" ({meaning})" if meaning else ""))
    if counts.n_failed:
        reasons.append(f"{counts.n_failed} test(s) failed or errored")
    if n_records == 0:
        reasons.append("no timing records")
    return "; ".join(reasons)


# ---------------------------------------------------------------- the run


@dataclass(frozen=True)
class RunResult:
    """What a call to `run_benchmark` left on disk."""

    run_id: str
    run_dir: Path
    status: str
    planned_repetitions: int
    completed_repetitions: int
    executed_repetitions: int
    invalid_measured_repetitions: int
    median_wall_s: dict[str, float]


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")


def _default_run_id() -> str:
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{os.urandom(2).hex()}"


def _check_writable(directory: Path) -> None:
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as problem:
        raise HarnessError(f"output directory {directory} is not writable: {problem.strerror or problem}") from None


def resume_command(*, run_id: str, output_dir: Path) -> str:
    command = f"python -m harness run --resume {run_id}"
    if output_dir.resolve() != paths.RUNS.resolve():
        command += f" --output-dir {output_dir}"
    return command


def _check_resume_arguments(stored: Mapping[str, Any], given: Mapping[str, Any], *, run_id: str) -> None:
    conflicts = [
        f"{name}={value!r} (run has {stored.get(name)!r})"
        for name, value in given.items()
        if value is not None and value != stored.get(name)
    ]
    if conflicts:
        raise HarnessError(
            f"cannot resume run {run_id!r} with different settings: {', '.join(conflicts)}; "
            "resume without them or start a new run"
        )


def _discard_incomplete(run_dir: Path, schedule: Sequence[PlannedRepetition]) -> set[int]:
    """Keep completed repetitions only: drop truncated lines, orphan timing rows and their raw dirs."""
    rows = dataset.completed_repetition_rows(run_dir)
    planned = {p.repetition: p for p in schedule}
    for row in rows:
        entry = planned.get(int(row["repetition"]))
        if entry is None or entry.variant != row["variant"] or int(row["block"]) != entry.block:
            raise HarnessError(
                f"{run_dir / dataset.REPETITIONS_FILE} does not match the run's schedule at repetition {row['repetition']}"
            )
    completed = {int(row["repetition"]) for row in rows}
    if rows or (run_dir / dataset.REPETITIONS_FILE).exists():
        dataset.rewrite_rows(run_dir / dataset.REPETITIONS_FILE, rows, columns=dataset.REPETITION_COLUMNS)
    if (run_dir / dataset.TIMINGS_FILE).exists():
        kept = dataset.timing_rows(run_dir, repetitions=completed)
        dataset.rewrite_rows(run_dir / dataset.TIMINGS_FILE, kept, columns=dataset.TIMING_COLUMNS)
    raw_root = run_dir / dataset.RAW_DIR
    for repetition in planned:
        if repetition not in completed:
            shutil.rmtree(dataset.raw_dir(run_dir, repetition), ignore_errors=True)
    if raw_root.is_dir():
        for leftover in raw_root.iterdir():
            if leftover.is_dir() and leftover.name.startswith("rep-") and leftover.name not in {
                dataset.repetition_dir_name(r) for r in completed
            }:
                shutil.rmtree(leftover, ignore_errors=True)
    return completed


def _result(run_dir: Path, metadata: Mapping[str, Any], *, executed: int) -> RunResult:
    rows = dataset.completed_repetition_rows(run_dir)
    measured = [row for row in rows if row["warmup"] == "False"]
    walls: dict[str, list[float]] = {}
    for row in measured:
        if row["valid"] == "True":
            walls.setdefault(row["variant"], []).append(float(row["wall_s"]))
    return RunResult(
        run_id=str(metadata["run_id"]),
        run_dir=run_dir,
        status=str(metadata["status"]),
        planned_repetitions=len(metadata["schedule"]),
        completed_repetitions=len(rows),
        executed_repetitions=executed,
        invalid_measured_repetitions=sum(row["valid"] != "True" for row in measured),
        median_wall_s={
            label: statistics.median(walls[label])
            for label in (v["label"] for v in metadata["variants"])
            if label in walls
        },
    )


def _run_one(
    entry: PlannedRepetition,
    *,
    run_id: str,
    run_dir: Path,
    variant: Variant,
    suite_path: Path,
    selection: Mapping[str, str] | None,
    extra_pytest_args: Sequence[str],
    plugin_args: Sequence[str],
    env: Mapping[str, str],
    timeout_s: float | None,
    executor: Executor,
) -> None:
    raw = dataset.raw_dir(run_dir, entry.repetition)
    shutil.rmtree(raw, ignore_errors=True)
    raw.mkdir(parents=True)
    command = pytest_command(
        suite_path=suite_path,
        variant=variant,
        raw_dir=raw,
        selection=selection,
        extra_pytest_args=extra_pytest_args,
        plugin_args=plugin_args,
    )
    started_at = _now()
    outcome = executor(command, env=env, cwd=paths.ROOT, log_path=raw / "pytest.log", timeout_s=timeout_s)
    finished_at = _now()
    try:
        records = read_records(raw)
        unreadable = ""
    except USER_ERRORS as problem:
        records, unreadable = [], f"unreadable timing records ({problem})"
    counts = count_tests(records)
    reason = invalid_reason(outcome=outcome, counts=counts, n_records=len(records), timeout_s=timeout_s)
    reason = "; ".join(filter(None, [reason, unreadable])).replace("\n", " ")
    run_columns = {
        "run_id": run_id,
        "repetition": entry.repetition,
        "block": entry.block,
        "order": entry.order,
        "variant": entry.variant,
        "warmup": entry.warmup,
        "valid": not reason,
    }
    if records:
        timings = records_to_frame(records)
        if len(timings):
            timings = timings.assign(**run_columns)
            dataset.append_frame(run_dir / dataset.TIMINGS_FILE, timings, columns=dataset.TIMING_COLUMNS)
    # Written last: this row is what marks the repetition complete.
    row = {
        **run_columns,
        "invalid_reason": reason,
        "exit_code": outcome.exit_code,
        "wall_s": outcome.wall_s,
        **asdict(counts),
        "started_at": started_at,
        "finished_at": finished_at,
    }
    dataset.append_frame(run_dir / dataset.REPETITIONS_FILE, pd.DataFrame([row]), columns=dataset.REPETITION_COLUMNS)


def run_benchmark(
    *,
    variants: Sequence[str] | None = None,
    repetitions: int | None = None,
    warmup: int | None = None,
    selection: Mapping[str, str] | None = None,
    output_dir: Path | str = paths.RUNS,
    run_id: str | None = None,
    seed: int | None = None,
    schedule: ScheduleKind | None = None,
    resume: bool = False,
    suite_path: Path | str | None = None,
    extra_pytest_args: Sequence[str] | None = None,
    progress: bool = True,
    timeout_s: float | None = None,
    profile: str | None = None,
    executor: Executor = execute_process,
    environ: Mapping[str, str] | None = None,
) -> RunResult:
    """Measure the suite under each variant in interleaved fresh processes; write `output_dir/run_id/`.

    Parameters
    ----------
    variants
        Architecture specs (`baseline`, `transactional+storage=disk`); default baseline and transactional.
    repetitions, warmup
        Measured and warm-up blocks; each block runs every variant once (defaults 10 and 1).
    selection
        `{"keyword": <-k expression>, "marker": <-m expression>}`, either optional.
    seed, schedule
        `abab` (same order every block, the default) or `random` (order permuted per block with
        `np.random.default_rng(seed)`; a seed is drawn and recorded when none is given).
    resume
        Continue run `run_id` from its stored schedule. Settings then come from the run;
        any that is given and differs raises HarnessError.
    suite_path, extra_pytest_args
        The suite under study (default `suite/`) and arguments appended to every pytest command.
    timeout_s
        Kill a repetition after this many seconds; it is recorded as invalid.
    profile
        Free-form tag stored in metadata.json (`dataset.latest_run(profile=...)` filters on it).
    executor, environ
        Collaborators for tests: what runs one process, and the environment the child's is built from.

    Returns
    -------
    RunResult

    Raises
    ------
    HarnessError
        Invalid arguments; RunInterrupted (a HarnessError) when interrupted, after marking the run.
    """
    if repetitions is not None and (not isinstance(repetitions, int) or repetitions < 1):
        raise HarnessError(f"repetitions must be a positive integer, got {repetitions!r}")
    if warmup is not None and (not isinstance(warmup, int) or warmup < 0):
        raise HarnessError(f"warmup must be a non-negative integer, got {warmup!r}")
    if timeout_s is not None and timeout_s <= 0:
        raise HarnessError(f"timeout must be positive, got {timeout_s!r}")
    if schedule is not None and schedule not in SCHEDULE_KINDS:
        raise HarnessError(f"unknown schedule {schedule!r}; choose one of {', '.join(SCHEDULE_KINDS)}")
    if run_id is not None and not paths.RUN_ID_PATTERN.match(run_id):
        raise HarnessError(f"bad run id {run_id!r}: use letters, digits, '.', '_' and '-'")
    selection_args(selection)
    resolved = resolve_variants(variants) if variants is not None else None
    suite = Path(suite_path).resolve() if suite_path is not None else None
    # Absolute: the child runs in the project root and must write where this process reads.
    output_dir = Path(output_dir).absolute()

    if resume:
        if run_id is None:
            raise HarnessError("resume needs the id of the run to continue")
        given = {
            "variants": [v.label for v in resolved] if resolved is not None else None,
            "repetitions": repetitions,
            "warmup": warmup,
            "selection": dict(selection) if selection is not None else None,
            "seed": seed,
            "schedule": schedule,
            "suite_path": str(suite) if suite is not None else None,
            "extra_pytest_args": list(extra_pytest_args) if extra_pytest_args is not None else None,
            "timeout_s": timeout_s,
            "profile": profile,
        }
        prepared = _prepare_resume(output_dir=output_dir, run_id=run_id, given=given)
    else:
        schedule = schedule or "abab"
        if schedule == "random" and seed is None:
            seed = int(np.random.SeedSequence().entropy % 2**32)
        prepared = _prepare_new_run(
            output_dir=output_dir,
            run_id=run_id or _default_run_id(),
            variants=resolved if resolved is not None else resolve_variants(DEFAULT_VARIANTS),
            arguments={
                "repetitions": DEFAULT_REPETITIONS if repetitions is None else repetitions,
                "warmup": DEFAULT_WARMUP if warmup is None else warmup,
                "selection": dict(selection or {}),
                "seed": seed,
                "schedule": schedule,
                "suite_path": str(suite if suite is not None else paths.SUITE.resolve()),
                "extra_pytest_args": list(extra_pytest_args or ()),
                "timeout_s": timeout_s,
                "profile": profile,
            },
        )
    return _execute_plan(prepared, output_dir=output_dir, progress=progress, executor=executor, environ=environ)


@dataclass
class _Prepared:
    run_dir: Path
    metadata: dict[str, Any]
    variants: list[Variant]
    planned: list[PlannedRepetition]
    completed: set[int]


def _prepare_new_run(
    *, output_dir: Path, run_id: str, variants: list[Variant], arguments: dict[str, Any]
) -> _Prepared:
    """Check the arguments, plan the schedule and store it in metadata.json before anything runs."""
    if not Path(arguments["suite_path"]).exists():
        raise HarnessError(f"suite not found: {arguments['suite_path']}")
    _check_writable(output_dir)
    run_dir = output_dir / run_id
    if (run_dir / dataset.METADATA_FILE).exists():
        raise HarnessError(
            f"run {run_id!r} already exists in {output_dir}; continue it with --resume {run_id} or pick another id"
        )
    run_dir.mkdir(exist_ok=True)
    planned = plan_schedule(
        variants=[v.label for v in variants],
        repetitions=arguments["repetitions"],
        warmup=arguments["warmup"],
        schedule=arguments["schedule"],
        seed=arguments["seed"],
    )
    metadata = {
        "schema_version": dataset.SCHEMA_VERSION,
        "run_id": run_id,
        "profile": arguments["profile"],
        "status": "planned",
        "started_at": _now(),
        "finished_at": None,
        "arguments": {"variants": [v.label for v in variants], **arguments},
        "variants": [v.to_dict() for v in variants],
        "seed": arguments["seed"],
        "schedule_kind": arguments["schedule"],
        "schedule": [entry.to_dict() for entry in planned],
        "child_environment": {"PYTHONHASHSEED": CHILD_HASH_SEED, "PYTHONPATH": str(paths.ROOT)},
        "environment": collect_metadata(),
    }
    dataset.write_metadata(run_dir, metadata)
    return _Prepared(run_dir=run_dir, metadata=metadata, variants=variants, planned=planned, completed=set())


def _prepare_resume(*, output_dir: Path, run_id: str, given: Mapping[str, Any]) -> _Prepared:
    """Load a run's stored plan, refuse conflicting arguments or another machine, drop partial work."""
    run_dir = output_dir / run_id
    if not (run_dir / dataset.METADATA_FILE).exists():
        raise HarnessError(f"cannot resume: no run {run_id!r} in {output_dir}")
    _check_writable(run_dir)
    metadata = dataset.read_metadata(run_dir)
    _check_resume_arguments(metadata["arguments"], given, run_id=run_id)
    differences = metadata_differences(metadata.get("environment", {}), collect_metadata(packages=()))
    if differences:
        described = ", ".join(f"{key} {old!r} -> {new!r}" for key, (old, new) in differences.items())
        raise HarnessError(f"cannot resume run {run_id!r} on a different machine or Python: {described}")
    variants = [Variant(v["label"], v["spec"], tuple(v["pytest_args"])) for v in metadata["variants"]]
    planned = [PlannedRepetition.from_dict(entry) for entry in metadata["schedule"]]
    completed = _discard_incomplete(run_dir, planned)
    metadata.setdefault("resumed_at", []).append(_now())
    return _Prepared(run_dir=run_dir, metadata=metadata, variants=variants, planned=planned, completed=completed)


def _execute_plan(
    prepared: _Prepared,
    *,
    output_dir: Path,
    progress: bool,
    executor: Executor,
    environ: Mapping[str, str] | None,
) -> RunResult:
    run_dir, metadata, planned, completed = prepared.run_dir, prepared.metadata, prepared.planned, prepared.completed
    run_id = metadata["run_id"]
    arguments = metadata["arguments"]
    by_label = {v.label: v for v in prepared.variants}
    servers = ExitStack()
    # One PostgreSQL server for the whole run, so its start-up is no part of any repetition.
    server_env, server = servers.enter_context(
        pg.server_environment(
            needed=_needs_postgres(prepared.variants), environ=os.environ if environ is None else environ
        )
    )
    if server is not None:
        metadata.setdefault("postgres", []).append(server)
    env = child_environment(environ=environ, extra_env=server_env)
    plugin_args = timing_plugin_args()
    metadata["plugin_args"] = plugin_args
    metadata["status"] = "running"
    dataset.write_metadata(run_dir, metadata)

    remaining = [entry for entry in planned if entry.repetition not in completed]
    executed = 0
    bar = tqdm(total=len(planned), initial=len(completed), disable=not progress, unit="rep", desc=run_id)
    try:
        for entry in remaining:
            bar.set_postfix_str(entry.variant + (" (warm-up)" if entry.warmup else ""))
            _run_one(
                entry,
                run_id=run_id,
                run_dir=run_dir,
                variant=by_label[entry.variant],
                suite_path=Path(arguments["suite_path"]),
                selection=arguments["selection"],
                extra_pytest_args=arguments["extra_pytest_args"],
                plugin_args=plugin_args,
                env=env,
                timeout_s=arguments["timeout_s"],
                executor=executor,
            )
            executed += 1
            bar.update(1)
    except KeyboardInterrupt:
        metadata["status"] = "interrupted"
        metadata["interrupted_at"] = _now()
        dataset.write_metadata(run_dir, metadata)
        done = len(completed) + executed
        raise RunInterrupted(
            f"run {run_id!r} interrupted after {done} of {len(planned)} repetitions (data kept in {run_dir}); "
            f"continue with: {resume_command(run_id=run_id, output_dir=output_dir)}"
        ) from None
    except BaseException:
        metadata["status"] = "failed"
        dataset.write_metadata(run_dir, metadata)
        raise
    finally:
        bar.close()
        servers.close()

    metadata["status"] = "complete"
    metadata["finished_at"] = _now()
    metadata["load_average_at_end"] = collect_load_average()
    dataset.write_metadata(run_dir, metadata)
    return _result(run_dir, metadata, executed=executed)


def format_run_result(result: RunResult) -> list[str]:
    """Lines summarising a finished run (the CLI prints them)."""
    lines = [
        f"run {result.run_id}: {result.status}, {result.completed_repetitions}/{result.planned_repetitions} "
        f"repetitions ({result.executed_repetitions} executed now) in {result.run_dir}"
    ]
    for variant, wall_s in result.median_wall_s.items():
        lines.append(f"  {variant:<40} median wall {wall_s:8.3f} s")
    if result.invalid_measured_repetitions:
        lines.append(
            f"  {result.invalid_measured_repetitions} measured repetition(s) invalid (failed tests, crash or timeout); "
            f"see invalid_reason in {dataset.REPETITIONS_FILE}"
        )
    return lines
