"""Run a pytest suite as interleaved, fresh pytest processes and record every repetition.

One repetition = one `python -m pytest` process for one variant (a label plus the pytest
arguments, environment and working directory that make it), started with an explicit
environment, timed as a whole by this process, with the timing plugin writing structured records
into the repetition's raw directory (never parsed from printed output). Repetitions are
interleaved in blocks (every variant once per block, and once per target when the run names
targets) so drift in machine load hits every variant alike. The planned schedule is stored before
the first process starts; each finished repetition is appended to the run's CSV files at once, so
an interrupted run keeps everything completed and `resume=True` continues it.

Services (a database server, say) are started once around the whole run, so their start-up is no
part of any repetition; the children get the environment each service yields.

A run's data stays whole: the plan stores a fingerprint of the measured code
(`suitebench.fingerprint`) that every repetition is checked against (and a resume must match);
one process at a time writes a run (`store.lock_run`); children die with the runner
(`suitebench.children`); a failed write (a full disk) stops the run with its status and reason
recorded and nothing completed lost; and every repetition has a time limit (`AUTO_TIMEOUT` unless
the caller gives one), so a hung test costs one invalid repetition, not the run.
"""

from __future__ import annotations

import datetime as dt
import errno
import os
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager, ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import pandas as pd
from tqdm import tqdm

from suitebench import children, fingerprint, store
from suitebench.errors import BenchError
from suitebench.metadata import collect_load_average, collect_metadata, describe_differences, metadata_differences
from suitebench.plugin import plugin_args as timing_plugin_args
from suitebench.records import read_records, records_to_frame

ScheduleKind = Literal["abab", "random"]
SCHEDULE_KINDS: tuple[str, ...] = ("abab", "random")

DEFAULT_REPETITIONS = 10
DEFAULT_WARMUP = 1

# The per-repetition time limit when the caller names none ("auto"): a variant's first repetition
# may take AUTO_FIRST_TIMEOUT_S; later ones AUTO_TIMEOUT_FACTOR times its slowest valid repetition
# so far, but never less than AUTO_MIN_TIMEOUT_S. A factor of 10 leaves room for a loaded machine
# and still ends a hung test in minutes rather than never; the first repetition has nothing to
# scale and gets half an hour (give `timeout_s` for suites slower than that).
AUTO_TIMEOUT = "auto"
AUTO_FIRST_TIMEOUT_S = 1800.0
AUTO_MIN_TIMEOUT_S = 60.0
AUTO_TIMEOUT_FACTOR = 10.0

# The engine's modules that run in every child (the timing plugin and what it imports) are always
# part of the measured code; the rest of the engine (statistics, this runner) never runs there.
ENGINE_SOURCES: tuple[Path, ...] = tuple(
    Path(__file__).resolve().parent / name for name in ("__init__.py", "plugin.py", "recorder.py", "counters.py")
)

# Fixed so that dict/set iteration order, and anything hashed, is the same in every process.
CHILD_HASH_SEED = "0"
SELECTION_KEYS: tuple[str, ...] = ("keyword", "marker")

# The child environment is built from nothing but these (pyperf's approach): what the suite
# sees must not depend on the shell the run was started from (PYTEST_ADDOPTS, ...); a variant
# adds what it needs explicitly.
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


class RunInterrupted(BenchError):
    """The run was stopped (Ctrl-C, SIGTERM, SIGHUP) before its schedule finished; its data is kept."""


# ---------------------------------------------------------------- plan


@dataclass(frozen=True)
class Variant:
    """One way to run the suite: its label (stored in the data), the pytest arguments that make it,
    and optionally extra environment variables and a working directory for its processes."""

    label: str
    pytest_args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: str | None = None

    def __post_init__(self) -> None:
        if not self.label or not self.label.strip():
            raise BenchError("a variant needs a non-empty label")
        object.__setattr__(self, "pytest_args", tuple(self.pytest_args))
        object.__setattr__(self, "env", dict(self.env))

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "pytest_args": list(self.pytest_args), "env": dict(self.env), "cwd": self.cwd}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Variant:
        return cls(
            label=str(data["label"]),
            pytest_args=tuple(data.get("pytest_args", ())),
            env=dict(data.get("env") or {}),
            cwd=data.get("cwd"),
        )


def parse_variant(text: str) -> Variant:
    """`NAME=PYTEST ARGS` (shell-quoted arguments) -> Variant; BenchError when malformed."""
    label, sep, args = text.partition("=")
    if not sep or not label.strip():
        raise BenchError(f'bad variant {text!r}: expected NAME="PYTEST ARGS", e.g. fast="-p no:randomly -x"')
    try:
        return Variant(label=label.strip(), pytest_args=tuple(shlex.split(args)))
    except ValueError as problem:
        raise BenchError(f"bad variant {text!r}: {problem}") from None


def check_variants(variants: Sequence[Variant]) -> list[Variant]:
    """The variants as a list; BenchError when there are none or a label repeats."""
    variants = list(variants)
    if not variants:
        raise BenchError("no variants to run; give at least one")
    labels = [v.label for v in variants]
    repeated = sorted({label for label in labels if labels.count(label) > 1})
    if repeated:
        raise BenchError(f"variant {repeated[0]!r} is given more than once")
    return variants


@dataclass(frozen=True)
class Service:
    """Something started once around a whole run, e.g. a database server.

    `start(environ)` is a context manager that yields `(extra_env, description)`: the environment
    the children need to reach the service, and what metadata.json records about it (None for
    nothing). It is stopped when the run ends, however it ends.
    """

    name: str
    start: Callable[[Mapping[str, str]], AbstractContextManager[tuple[dict[str, str], dict[str, Any] | None]]]


@dataclass(frozen=True)
class PlannedRepetition:
    repetition: int
    block: int
    order: int
    variant: str
    warmup: bool
    target: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if self.target is None:
            del data["target"]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PlannedRepetition:
        return cls(
            repetition=int(data["repetition"]),
            block=int(data["block"]),
            order=int(data["order"]),
            variant=str(data["variant"]),
            warmup=bool(data["warmup"]),
            target=data.get("target"),
        )


def plan_schedule(
    *,
    variants: Sequence[str],
    repetitions: int,
    warmup: int,
    schedule: ScheduleKind,
    seed: int | None,
    targets: Sequence[str] | None = None,
) -> list[PlannedRepetition]:
    """Warm-up blocks, then measured blocks; every block runs every variant once per target.

    `abab` keeps the given variant order in every block; `random` permutes it per block (and per
    target) with `np.random.default_rng(seed)`. Blocks are numbered in execution order, warm-up
    blocks first. With `targets`, a block runs each target under every variant before the next
    target, so the variants of one target are measured side by side; `random` also permutes the
    targets within each block.
    """
    if schedule not in SCHEDULE_KINDS:
        raise BenchError(f"unknown schedule {schedule!r}; choose one of {', '.join(SCHEDULE_KINDS)}")
    rng = np.random.default_rng(seed)
    planned: list[PlannedRepetition] = []
    for block in range(warmup + repetitions):
        block_targets: list[str | None] = list(targets) if targets else [None]
        if targets and schedule == "random":
            block_targets = [block_targets[i] for i in rng.permutation(len(block_targets))]
        for target in block_targets:
            order = list(variants)
            if schedule == "random":
                order = [order[i] for i in rng.permutation(len(order))]
            for position, variant in enumerate(order):
                planned.append(
                    PlannedRepetition(
                        repetition=len(planned),
                        block=block,
                        order=position,
                        variant=variant,
                        warmup=block < warmup,
                        target=target,
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
    child's whole group (xdist workers included) before re-raising. While it runs, its group is
    recorded in `child.pid` beside the log (`suitebench.children`), so that the run's watchdog,
    or a later resume, can kill it should this process die first.
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
        record = None
        try:
            if hasattr(os, "killpg"):
                record = children.record_child(Path(log_path).parent, process.pid)
            exit_code = process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            wall_s = time.perf_counter() - started
            _kill_process_group(process)
            return ProcessOutcome(exit_code=process.returncode, wall_s=wall_s, timed_out=True)
        except BaseException:
            _kill_process_group(process)
            raise
        finally:
            if record is not None:
                children.forget_child(record)
        return ProcessOutcome(exit_code=exit_code, wall_s=time.perf_counter() - started, timed_out=False)


def child_environment(
    *, environ: Mapping[str, str] | None = None, extra_env: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The explicit environment of every pytest process: a short whitelist of `environ`, a fixed
    hash seed, and `extra_env` (what the run decides: the services' and the variant's variables)."""
    environ = os.environ if environ is None else environ
    env = {name: value for name, value in environ.items() if name in INHERITED_ENVIRONMENT or name.startswith("LC_")}
    env["PYTHONHASHSEED"] = CHILD_HASH_SEED
    env.update(extra_env or {})
    return env


def selection_args(selection: Mapping[str, str] | None) -> list[str]:
    """`-k` / `-m` arguments from {"keyword": ..., "marker": ...}."""
    selection = dict(selection or {})
    unknown = set(selection) - set(SELECTION_KEYS)
    if unknown:
        raise BenchError(
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
    target: str,
    variant: Variant,
    raw_dir: Path,
    selection: Mapping[str, str] | None = None,
    extra_pytest_args: Sequence[str] = (),
    plugin_args: Sequence[str] | None = None,
) -> list[str]:
    """The command of one repetition: `target` (the suite directory, a file or a node id)."""
    plugin_args = timing_plugin_args() if plugin_args is None else list(plugin_args)
    return [
        sys.executable,
        "-m",
        "pytest",
        target,
        "-p",
        "no:cacheprovider",
        "-q",
        *variant.pytest_args,
        *selection_args(selection),
        *plugin_args,
        f"--suitebench-timings={raw_dir}",
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


def invalid_reason(
    *,
    outcome: ProcessOutcome,
    counts: TestCounts,
    n_records: int,
    timeout_s: float | None,
    expected_tests: int | None = None,
) -> str:
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
    elif expected_tests is not None and counts.n_tests != expected_tests:
        reasons.append(f"{counts.n_tests} tests ran, expected exactly {expected_tests}")
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
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


def _check_writable(directory: Path) -> None:
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as problem:
        raise BenchError(f"output directory {directory} is not writable: {problem.strerror or problem}") from None


def resume_command(*, run_id: str, runs_dir: Path, command: str = "python -m suitebench run") -> str:
    """The command that continues run `run_id` (`command` is the tool that started it)."""
    return f"{command} --resume {shlex.quote(run_id)} --runs-dir {shlex.quote(str(runs_dir))}"


def _check_resume_arguments(stored: Mapping[str, Any], given: Mapping[str, Any], *, run_id: str) -> None:
    conflicts = [
        f"{name}={value!r} (run has {stored.get(name)!r})"
        for name, value in given.items()
        if value is not None and value != stored.get(name)
    ]
    if conflicts:
        raise BenchError(
            f"cannot resume run {run_id!r} with different settings: {', '.join(conflicts)}; "
            "resume without them or start a new run"
        )


def _discard_incomplete(run_dir: Path, schedule: Sequence[PlannedRepetition]) -> set[int]:
    """Keep completed repetitions only: drop truncated lines, orphan timing rows and their raw dirs."""
    rows = store.completed_repetition_rows(run_dir)
    planned = {p.repetition: p for p in schedule}
    for row in rows:
        entry = planned.get(int(row["repetition"]))
        if entry is None or entry.variant != row["variant"] or int(row["block"]) != entry.block:
            raise BenchError(
                f"{run_dir / store.REPETITIONS_FILE} does not match the run's schedule at repetition {row['repetition']}"
            )
    completed = {int(row["repetition"]) for row in rows}
    if rows or (run_dir / store.REPETITIONS_FILE).exists():
        store.rewrite_rows(run_dir / store.REPETITIONS_FILE, rows, columns=store.REPETITION_COLUMNS)
    if (run_dir / store.TIMINGS_FILE).exists():
        kept = store.timing_rows(run_dir, repetitions=completed)
        store.rewrite_rows(run_dir / store.TIMINGS_FILE, kept, columns=store.TIMING_COLUMNS)
    raw_root = run_dir / store.RAW_DIR
    for repetition in planned:
        if repetition not in completed:
            shutil.rmtree(store.raw_dir(run_dir, repetition), ignore_errors=True)
    if raw_root.is_dir():
        kept_names = {store.repetition_dir_name(r) for r in completed}
        for leftover in raw_root.iterdir():
            if leftover.is_dir() and leftover.name.startswith("rep-") and leftover.name not in kept_names:
                shutil.rmtree(leftover, ignore_errors=True)
    return completed


def _result(run_dir: Path, metadata: Mapping[str, Any], *, executed: int) -> RunResult:
    rows = store.completed_repetition_rows(run_dir)
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


def repetition_timeout_s(setting: float | str | None, *, previous_wall_s: Sequence[float]) -> float | None:
    """The time limit of one repetition: `setting` when it is a number, none when it is None (a
    run recorded before the default existed), else (`AUTO_TIMEOUT`) from the variant's valid
    repetitions so far: AUTO_FIRST_TIMEOUT_S for the first, then AUTO_TIMEOUT_FACTOR times the
    slowest, at least AUTO_MIN_TIMEOUT_S."""
    if setting is None or isinstance(setting, int | float):
        return setting
    if not previous_wall_s:
        return AUTO_FIRST_TIMEOUT_S
    return max(AUTO_MIN_TIMEOUT_S, AUTO_TIMEOUT_FACTOR * max(previous_wall_s))


def _check_timeout(timeout_s: float | str | None) -> None:
    if timeout_s is None or timeout_s == AUTO_TIMEOUT:
        return
    if isinstance(timeout_s, bool) or not isinstance(timeout_s, int | float) or not 0 < timeout_s < float("inf"):
        raise BenchError(f"timeout must be positive (seconds) or {AUTO_TIMEOUT!r}, got {timeout_s!r}")


@dataclass(frozen=True)
class _Settings:
    """What every repetition of a run shares, read from metadata.json."""

    suite_path: Path
    cwd: Path
    selection: Mapping[str, str]
    extra_pytest_args: tuple[str, ...]
    plugin_args: tuple[str, ...]
    env: Mapping[str, str]
    timeout_s: float | str | None
    expected_tests: int | None


@dataclass(frozen=True)
class _CodeWatch:
    """Checks the measured code against the run's stored fingerprint."""

    trees: fingerprint.SourceTrees
    plugin_args: tuple[str, ...]
    planned: Mapping[str, Any]

    def check(self) -> tuple[str, list[str]]:
        """The code hash now, and what changed since the run was planned ([] when nothing)."""
        now = fingerprint.fingerprint(self.trees, plugin_args=self.plugin_args)
        return now["code_hash"], fingerprint.fingerprint_changes(self.planned, now)


@dataclass(frozen=True)
class _Repetition:
    """What the loop needs to know about a repetition it ran."""

    valid: bool
    wall_s: float
    code_changes: list[str]


def _run_one(
    entry: PlannedRepetition,
    *,
    run_id: str,
    run_dir: Path,
    variant: Variant,
    settings: _Settings,
    executor: Executor,
    timeout_s: float | None,
    code: _CodeWatch,
) -> _Repetition:
    raw = store.raw_dir(run_dir, entry.repetition)
    shutil.rmtree(raw, ignore_errors=True)
    raw.mkdir(parents=True)
    target = str(settings.suite_path / entry.target) if entry.target else str(settings.suite_path)
    command = pytest_command(
        target=target,
        variant=variant,
        raw_dir=raw,
        selection=settings.selection,
        extra_pytest_args=settings.extra_pytest_args,
        plugin_args=settings.plugin_args,
    )
    cwd = Path(variant.cwd) if variant.cwd else settings.cwd
    env = {**settings.env, **variant.env}
    started_at = _now()
    outcome = executor(command, env=env, cwd=cwd, log_path=raw / "pytest.log", timeout_s=timeout_s)
    finished_at = _now()
    # Checked after the process (and before the next starts, which this same check serves): the
    # repetition was measured on the run's code only if the code is unchanged at its end too.
    code_hash, code_changes = code.check()
    try:
        records = read_records(raw)
        unreadable = ""
    except BenchError as problem:
        records, unreadable = [], f"unreadable timing records ({problem})"
    counts = count_tests(records)
    reason = invalid_reason(
        outcome=outcome,
        counts=counts,
        n_records=len(records),
        timeout_s=timeout_s,
        expected_tests=settings.expected_tests,
    )
    changed = f"the measured code changed while it ran ({fingerprint.describe_changes(code_changes)})"
    reason = "; ".join(filter(None, [reason, unreadable, changed if code_changes else ""])).replace("\n", " ")
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
            store.append_frame(run_dir / store.TIMINGS_FILE, timings, columns=store.TIMING_COLUMNS)
    # Written last: this row is what marks the repetition complete.
    row = {
        **run_columns,
        "invalid_reason": reason,
        "exit_code": outcome.exit_code,
        "wall_s": outcome.wall_s,
        **asdict(counts),
        "started_at": started_at,
        "finished_at": finished_at,
        "code_hash": code_hash,
    }
    store.append_frame(run_dir / store.REPETITIONS_FILE, pd.DataFrame([row]), columns=store.REPETITION_COLUMNS)
    return _Repetition(valid=not reason, wall_s=outcome.wall_s, code_changes=code_changes)


def run_benchmark(
    *,
    suite_path: Path | str | None = None,
    variants: Sequence[Variant] | None = None,
    repetitions: int | None = None,
    warmup: int | None = None,
    selection: Mapping[str, str] | None = None,
    targets: Sequence[str] | None = None,
    expected_tests: int | None = None,
    output_dir: Path | str = store.DEFAULT_RUNS_DIR,
    run_id: str | None = None,
    seed: int | None = None,
    schedule: ScheduleKind | None = None,
    resume: bool = False,
    extra_pytest_args: Sequence[str] | None = None,
    timeout_s: float | str | None = None,
    profile: str | None = None,
    cwd: Path | str | None = None,
    services: Sequence[Service] = (),
    metadata_packages: Sequence[str] = (),
    code_paths: Sequence[Path | str] = (),
    resume_hint: str = "python -m suitebench run",
    annotations: Mapping[str, Any] | None = None,
    progress: bool = True,
    executor: Executor = execute_process,
    environ: Mapping[str, str] | None = None,
) -> RunResult:
    """Measure the suite under each variant in interleaved fresh processes; write `output_dir/run_id/`.

    Parameters
    ----------
    suite_path
        The suite (a directory or file given to pytest). Required for a new run.
    variants
        What to measure: labels plus pytest arguments (and optionally environment and working
        directory). Required for a new run.
    repetitions, warmup
        Measured and warm-up blocks; each block runs every variant once per target (defaults 10 and 1).
    selection
        `{"keyword": <-k expression>, "marker": <-m expression>}`, either optional.
    targets
        Node ids or paths relative to `suite_path`, each run in processes of its own (one test
        per process, e.g.); None runs the whole suite in every process.
    expected_tests
        When set, a repetition that ran another number of tests is invalid.
    seed, schedule
        `abab` (same order every block, the default) or `random` (order permuted per block with
        `np.random.default_rng(seed)`; a seed is drawn and recorded when none is given).
    resume
        Continue run `run_id` from its stored schedule. Settings then come from the run;
        any that is given and differs raises BenchError, and so does a change of the measured
        code since the run was planned (see `code_paths`).
    extra_pytest_args
        Arguments appended to every pytest command.
    timeout_s
        Kill a repetition after this many seconds; it is recorded as invalid and the run goes
        on. None (the default) or `"auto"`: `AUTO_TIMEOUT`, a limit derived from the variant's
        earlier repetitions (see `repetition_timeout_s`).
    profile
        Free-form tag stored in metadata.json (`store.latest_run(profile=...)` filters on it).
    cwd
        Working directory of the processes (default: this process's); a variant's own wins.
    services
        Started once around the run (also around a resumed part); their environment reaches
        every child. A resumed run needs services of the same names.
    metadata_packages
        Packages whose versions are recorded besides the engine's own.
    code_paths
        Source trees the suite imports, fingerprinted with the suite itself and the engine's
        own source (`suitebench.fingerprint`): the fingerprint is stored with the plan, every
        repetition records its code hash, a change during the run stops it, and a resume
        after a change is refused.
    resume_hint
        The command that started the run, for the message that says how to continue it.
    annotations
        The caller's own facts about the run, stored at the top of metadata.json (e.g. a kind
        of run and its caveat); they may not replace the engine's keys.
    executor, environ
        Collaborators for tests: what runs one process, and the environment the child's is built from.

    Returns
    -------
    RunResult

    Raises
    ------
    BenchError
        Invalid arguments, a run another process is writing, a resume of changed code, a
        failed write (a full disk; the run is marked failed with the reason); RunInterrupted
        (a BenchError) when interrupted, after marking the run.
    """
    if repetitions is not None and (not isinstance(repetitions, int) or repetitions < 1):
        raise BenchError(f"repetitions must be a positive integer, got {repetitions!r}")
    if warmup is not None and (not isinstance(warmup, int) or warmup < 0):
        raise BenchError(f"warmup must be a non-negative integer, got {warmup!r}")
    _check_timeout(timeout_s)
    if schedule is not None and schedule not in SCHEDULE_KINDS:
        raise BenchError(f"unknown schedule {schedule!r}; choose one of {', '.join(SCHEDULE_KINDS)}")
    if run_id is not None:
        store.check_name(run_id)
    if targets is not None and not list(targets):
        raise BenchError("targets, when given, must name at least one test")
    selection_args(selection)
    checked = check_variants(variants) if variants is not None else None
    suite = Path(suite_path).resolve() if suite_path is not None else None
    # Absolute: the child runs elsewhere and must write where this process reads.
    output_dir = Path(output_dir).absolute()

    with ExitStack() as holding:
        try:
            if resume:
                if run_id is None:
                    raise BenchError("resume needs the id of the run to continue")
                given = {
                    "variants": [v.label for v in checked] if checked is not None else None,
                    "repetitions": repetitions,
                    "warmup": warmup,
                    "selection": dict(selection) if selection is not None else None,
                    "targets": list(targets) if targets is not None else None,
                    "seed": seed,
                    "schedule": schedule,
                    "suite_path": str(suite) if suite is not None else None,
                    "extra_pytest_args": list(extra_pytest_args) if extra_pytest_args is not None else None,
                    "timeout_s": timeout_s,
                    "profile": profile,
                }
                prepared = _prepare_resume(
                    output_dir=output_dir, run_id=run_id, given=given, services=services, holding=holding
                )
            else:
                if suite is None:
                    raise BenchError("name the suite to measure (suite_path)")
                if checked is None:
                    raise BenchError("name the variants to measure")
                schedule = schedule or "abab"
                if schedule == "random" and seed is None:
                    seed = int(np.random.SeedSequence().entropy % 2**32)
                prepared = _prepare_new_run(
                    output_dir=output_dir,
                    run_id=run_id or store.new_run_id(),
                    variants=checked,
                    services=services,
                    metadata_packages=metadata_packages,
                    annotations=annotations or {},
                    holding=holding,
                    arguments={
                        "repetitions": DEFAULT_REPETITIONS if repetitions is None else repetitions,
                        "warmup": DEFAULT_WARMUP if warmup is None else warmup,
                        "selection": dict(selection or {}),
                        "targets": list(targets) if targets is not None else None,
                        "expected_tests": expected_tests,
                        "seed": seed,
                        "schedule": schedule,
                        "suite_path": str(suite),
                        "cwd": str(Path(cwd).resolve() if cwd is not None else Path.cwd()),
                        "extra_pytest_args": list(extra_pytest_args or ()),
                        "timeout_s": AUTO_TIMEOUT if timeout_s is None else timeout_s,
                        "profile": profile,
                        "resume_hint": resume_hint,
                        "code_paths": [
                            str(p)
                            for p in dict.fromkeys(Path(p).resolve() for p in (suite, *code_paths, *ENGINE_SOURCES))
                        ],
                    },
                )
            if prepared.code is None:
                return _finish_without_running(prepared)
        except OSError as problem:
            # Before anything ran: a run directory that cannot be written (a full disk, say).
            raise BenchError(f"cannot prepare run {run_id or ''!r} in {output_dir}: {_os_problem(problem)}") from None
        return _execute_plan(
            prepared, output_dir=output_dir, progress=progress, executor=executor, environ=environ, services=services
        )


def _os_problem(problem: OSError) -> str:
    """An OSError as one phrase: a full disk and a file-size limit said in words, with the file."""
    meaning = {
        errno.ENOSPC: "no space left on the device",
        errno.EDQUOT: "disk quota exceeded",
        errno.EFBIG: "file too large (a file-size limit was reached)",
    }.get(problem.errno or 0, problem.strerror or str(problem))
    return f"{meaning} ({problem.filename})" if problem.filename else meaning


@dataclass
class _Prepared:
    run_dir: Path
    metadata: dict[str, Any]
    variants: list[Variant]
    planned: list[PlannedRepetition]
    completed: set[int]
    # None when nothing is left to run (a resume of a complete run).
    code: _CodeWatch | None


def _code_watch(*, code_paths: Sequence[str], output_dir: Path, plugin_args: Sequence[str]) -> _CodeWatch:
    # The runs directory is left out: the run writes into it, and it may lie inside a measured tree.
    trees = fingerprint.resolve_trees(code_paths, exclude=[output_dir])
    planned = fingerprint.fingerprint(trees, plugin_args=plugin_args)
    return _CodeWatch(trees=trees, plugin_args=tuple(plugin_args), planned=planned)


def _prepare_new_run(
    *,
    output_dir: Path,
    run_id: str,
    variants: list[Variant],
    services: Sequence[Service],
    metadata_packages: Sequence[str],
    annotations: Mapping[str, Any],
    arguments: dict[str, Any],
    holding: ExitStack,
) -> _Prepared:
    """Check the arguments, plan the schedule and store it in metadata.json before anything runs."""
    if not Path(arguments["suite_path"]).exists():
        raise BenchError(f"suite not found: {arguments['suite_path']}")
    _check_writable(output_dir)
    run_dir = output_dir / run_id
    exists = f"run {run_id!r} already exists in {output_dir}; continue it with --resume {run_id} or pick another id"
    if (run_dir / store.METADATA_FILE).exists():
        raise BenchError(exists)
    run_dir.mkdir(exist_ok=True)
    holding.enter_context(store.lock_run(run_dir))
    # Checked again under the lock: another process may have planned the same run id meanwhile.
    if (run_dir / store.METADATA_FILE).exists():
        raise BenchError(exists)
    planned = plan_schedule(
        variants=[v.label for v in variants],
        repetitions=arguments["repetitions"],
        warmup=arguments["warmup"],
        schedule=arguments["schedule"],
        seed=arguments["seed"],
        targets=arguments["targets"],
    )
    plugin_args = timing_plugin_args()
    code = _code_watch(code_paths=arguments["code_paths"], output_dir=output_dir, plugin_args=plugin_args)
    suite_path = Path(arguments["suite_path"])
    metadata = {
        "schema_version": store.SCHEMA_VERSION,
        "run_id": run_id,
        "profile": arguments["profile"],
        "status": "planned",
        "started_at": _now(),
        "finished_at": None,
        "arguments": {"variants": [v.label for v in variants], **arguments},
        "variants": [v.to_dict() for v in variants],
        "services": [service.name for service in services],
        "seed": arguments["seed"],
        "schedule_kind": arguments["schedule"],
        "schedule": [entry.to_dict() for entry in planned],
        "child_environment": {"PYTHONHASHSEED": CHILD_HASH_SEED},
        "plugin_args": plugin_args,
        "fingerprint": code.planned,
        "environment": collect_metadata(
            packages=metadata_packages, root=suite_path if suite_path.is_dir() else suite_path.parent
        ),
    }
    clashes = sorted(set(annotations) & set(metadata))
    if clashes:
        raise BenchError(f"annotations may not replace the run's own metadata: {', '.join(clashes)}")
    metadata.update(annotations)
    store.write_metadata(run_dir, metadata)
    return _Prepared(run_dir=run_dir, metadata=metadata, variants=variants, planned=planned, completed=set(), code=code)


def _prepare_resume(
    *, output_dir: Path, run_id: str, given: Mapping[str, Any], services: Sequence[Service], holding: ExitStack
) -> _Prepared:
    """Take the run's lock, stop what a dead runner left running, load the stored plan, refuse
    conflicting arguments, another machine or changed code, and drop partial work."""
    run_dir = output_dir / run_id
    if not (run_dir / store.METADATA_FILE).exists():
        raise BenchError(f"cannot resume: no run {run_id!r} in {output_dir}")
    _check_writable(run_dir)
    holding.enter_context(store.lock_run(run_dir))
    # First, before anything is checked or rewritten: a child of a dead runner still writing
    # into raw/rep-N would write into the directory this resume re-creates.
    try:
        children.reap_stale_children(run_dir)
    except (PermissionError, TimeoutError) as problem:
        raise BenchError(f"cannot resume run {run_id!r}: a process of its earlier part survives ({problem})") from None
    metadata = store.read_metadata(run_dir)
    _check_resume_arguments(metadata["arguments"], given, run_id=run_id)
    variants = [Variant.from_dict(v) for v in metadata["variants"]]
    planned = [PlannedRepetition.from_dict(entry) for entry in metadata["schedule"]]
    done = {int(row["repetition"]) for row in store.completed_repetition_rows(run_dir)}
    if {entry.repetition for entry in planned} <= done:
        # Nothing left to measure (run_all.py --resume re-renders a complete run's report so): no
        # code runs, so neither the code nor the services need to match, and no file is touched.
        return _Prepared(
            run_dir=run_dir, metadata=metadata, variants=variants, planned=planned, completed=done, code=None
        )
    if metadata.get("schema_version") != store.SCHEMA_VERSION:
        raise BenchError(
            f"cannot resume run {run_id!r}: it was recorded by an older suitebench (schema_version "
            f"{metadata.get('schema_version')}), which kept no fingerprint of the code it measured; start a new run"
        )
    # Only a run that still measures must finish on the machine and Python it started on; a
    # complete run's report can be rendered anywhere.
    differences = metadata_differences(metadata.get("environment", {}), collect_metadata())
    if differences:
        raise BenchError(
            f"cannot resume run {run_id!r} on a different machine or Python: {describe_differences(differences)}"
        )
    code = _code_watch(
        code_paths=metadata["arguments"]["code_paths"], output_dir=output_dir, plugin_args=timing_plugin_args()
    )
    changes = fingerprint.fingerprint_changes(metadata["fingerprint"], code.planned)
    if changes:
        raise BenchError(
            f"cannot resume run {run_id!r}: the code it measures changed since it was planned "
            f"({fingerprint.describe_changes(changes)}); restore it, or start a new run"
        )
    needed, offered = metadata.get("services", []), [service.name for service in services]
    if sorted(needed) != sorted(offered):
        hint = metadata["arguments"].get("resume_hint", "python -m suitebench run")
        raise BenchError(
            f"run {run_id!r} was measured with services {needed or 'none'}, not {offered or 'none'}; "
            f"resume it with the tool that started it: {resume_command(run_id=run_id, runs_dir=output_dir, command=hint)}"
        )
    completed = _discard_incomplete(run_dir, planned)
    metadata.setdefault("resumed_at", []).append(_now())
    return _Prepared(
        run_dir=run_dir,
        metadata=metadata,
        variants=variants,
        planned=planned,
        completed=completed,
        code=_CodeWatch(trees=code.trees, plugin_args=code.plugin_args, planned=metadata["fingerprint"]),
    )


def _finish_without_running(prepared: _Prepared) -> RunResult:
    """A resumed run with every planned repetition recorded: marked complete if it was not yet
    (stopped between its last row and its status), otherwise left exactly as it is."""
    metadata = prepared.metadata
    if metadata.get("status") != "complete":
        metadata["status"] = "complete"
        metadata.pop("status_reason", None)
        metadata["finished_at"] = _now()
        store.write_metadata(prepared.run_dir, metadata)
    return _result(prepared.run_dir, metadata, executed=0)


class _CodeChanged(Exception):
    """The measured code changed during the run (raised to stop the loop; never leaves the runner)."""


def _valid_walls(run_dir: Path) -> dict[str, list[float]]:
    """Wall times of the valid completed repetitions per variant (what "auto" timeouts scale)."""
    walls: dict[str, list[float]] = {}
    for row in store.completed_repetition_rows(run_dir):
        if row["valid"] == "True":
            walls.setdefault(row["variant"], []).append(float(row["wall_s"]))
    return walls


def _mark_stopped(run_dir: Path, metadata: dict[str, Any], *, status: str, reason: str) -> str:
    """Record why the run stopped; "" when recorded, else why it could not be (a full disk)."""
    metadata["status"] = status
    metadata["status_reason"] = reason
    metadata["stopped_at"] = _now()
    try:
        store.write_metadata(run_dir, metadata)
    except OSError as problem:
        return f"; its status could not be recorded either ({_os_problem(problem)})"
    return ""


def _execute_plan(
    prepared: _Prepared,
    *,
    output_dir: Path,
    progress: bool,
    executor: Executor,
    environ: Mapping[str, str] | None,
    services: Sequence[Service],
) -> RunResult:
    run_dir, metadata, planned, completed = prepared.run_dir, prepared.metadata, prepared.planned, prepared.completed
    run_id = metadata["run_id"]
    arguments = metadata["arguments"]
    by_label = {v.label: v for v in prepared.variants}
    environ = os.environ if environ is None else environ
    hint = resume_command(
        run_id=run_id, runs_dir=output_dir, command=arguments.get("resume_hint", "python -m suitebench run")
    )
    running = ExitStack()
    service_env: dict[str, str] = {}
    # Started once for the whole run, so their start-up is no part of any repetition.
    for service in services:
        extra_env, description = running.enter_context(service.start(environ))
        service_env.update(extra_env)
        if description is not None:
            metadata.setdefault("service_descriptions", {}).setdefault(service.name, []).append(description)
    settings = _Settings(
        suite_path=Path(arguments["suite_path"]),
        cwd=Path(arguments.get("cwd") or Path.cwd()),
        selection=arguments["selection"],
        extra_pytest_args=tuple(arguments["extra_pytest_args"]),
        plugin_args=tuple(metadata["plugin_args"]),
        env=child_environment(environ=environ, extra_env=service_env),
        timeout_s=arguments["timeout_s"],
        expected_tests=arguments.get("expected_tests"),
    )
    remaining = [entry for entry in planned if entry.repetition not in completed]
    walls = _valid_walls(run_dir)
    executed = 0
    current: PlannedRepetition | None = None
    bar = tqdm(total=len(planned), initial=len(completed), disable=not progress, unit="rep", desc=run_id)
    try:
        running.enter_context(children.watchdog(run_dir))
        metadata["status"] = "running"
        metadata.pop("status_reason", None)
        store.write_metadata(run_dir, metadata)
        for entry in remaining:
            current = entry
            bar.set_postfix_str(entry.variant + (" (warm-up)" if entry.warmup else ""))
            done = _run_one(
                entry,
                run_id=run_id,
                run_dir=run_dir,
                variant=by_label[entry.variant],
                settings=settings,
                executor=executor,
                timeout_s=repetition_timeout_s(settings.timeout_s, previous_wall_s=walls.get(entry.variant, [])),
                code=prepared.code,
            )
            current = None
            executed += 1
            bar.update(1)
            if done.valid:
                walls.setdefault(entry.variant, []).append(done.wall_s)
            if done.code_changes:
                raise _CodeChanged(fingerprint.describe_changes(done.code_changes))
        metadata["status"] = "complete"
        metadata["finished_at"] = _now()
        metadata["load_average_at_end"] = collect_load_average()
        store.write_metadata(run_dir, metadata)
    except KeyboardInterrupt:
        metadata["interrupted_at"] = _now()
        unrecorded = _mark_stopped(run_dir, metadata, status="interrupted", reason="interrupted (Ctrl-C or a signal)")
        raise RunInterrupted(
            f"run {run_id!r} interrupted after {len(completed) + executed} of {len(planned)} repetitions "
            f"(data kept in {run_dir}){unrecorded}; continue with: {hint}"
        ) from None
    except _CodeChanged as changed:
        reason = f"the measured code changed during the run ({changed})"
        unrecorded = _mark_stopped(run_dir, metadata, status="interrupted", reason=reason)
        raise BenchError(
            f"run {run_id!r} stopped after {len(completed) + executed} of {len(planned)} repetitions: {reason}; "
            f"the last one is invalid, the data is kept in {run_dir}{unrecorded}; restore the code and continue "
            f"with: {hint}, or start a new run"
        ) from None
    except OSError as problem:
        # A write of the run's data failed (a full disk, a file-size limit). Every append that
        # failed was cut back; the unfinished repetition's raw files go (a resume would discard
        # them anyway), which may also free the space the status needs.
        if current is not None:
            shutil.rmtree(store.raw_dir(run_dir, current.repetition), ignore_errors=True)
        reason = f"cannot write the run's data: {_os_problem(problem)}"
        unrecorded = _mark_stopped(run_dir, metadata, status="failed", reason=reason)
        raise BenchError(
            f"run {run_id!r} stopped after {len(completed) + executed} of {len(planned)} repetitions: {reason}; "
            f"the completed ones are kept in {run_dir}{unrecorded}; free space, then continue with: {hint}"
        ) from None
    except BaseException as problem:
        _mark_stopped(run_dir, metadata, status="failed", reason=f"{type(problem).__name__}: {problem}")
        raise
    finally:
        bar.close()
        running.close()
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
            f"see invalid_reason in {store.REPETITIONS_FILE}"
        )
    return lines
