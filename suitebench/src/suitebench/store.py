"""The on-disk format of a measurement run (data/README.md): write it append-only, read it back tidy.

A run directory holds `metadata.json`, `raw/rep-NNNN/`, two append-only CSV files and `.lock`.
A repetition is complete exactly when its row is in `repetitions.csv`: the runner appends its
timing rows first and its repetition row last, so a run killed at any moment reads back as its
completed repetitions (a truncated last line or orphan timing rows are ignored). A write that
fails (a full disk) leaves the file as it was: an append is cut back to its old length, a
replaced file's temporary copy is removed. One process at a time writes a run: it holds
`lock_run`.

Schema versions: 1 (before repetitions carried `code_hash` and metadata a `fingerprint`) is
still read, with an empty `code_hash`; runs are written as 2.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import json
import os
import re
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from suitebench.errors import BenchError
from suitebench.records import COUNTER_COLUMNS

SCHEMA_VERSION = 2
# Versions this code reads: older runs keep loading (their tables are unchanged); only runs of
# the current version can be resumed (an older one has no fingerprint to check the code against).
READABLE_SCHEMA_VERSIONS: tuple[int, ...] = (1, 2)

# Where runs and baselines go when the caller names no directory (relative to the working
# directory, like pytest's own caches).
DEFAULT_RUNS_DIR = Path(".suitebench") / "runs"
DEFAULT_STORE_DIR = Path(".suitebench") / "baselines"

# A run id (and a baseline name) names a directory or file: no separators, no leading dot.
RUN_ID_PATTERN: re.Pattern[str] = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def check_name(text: str, *, what: str = "run id") -> str:
    """`text` when it is a safe run id or baseline name, else BenchError saying what is allowed."""
    if not RUN_ID_PATTERN.match(text):
        raise BenchError(
            f"bad {what} {text!r}: use letters, digits, '.', '_' and '-' (at most 100, not starting with '.')"
        )
    return text


def time_stamp() -> str:
    """The local time as `YYYYmmdd-HHMMSS`: names that sort by when they were made."""
    return dt.datetime.now().strftime("%Y%m%d-%H%M%S")


def new_run_id(prefix: str = "") -> str:
    """A fresh run id: `[prefix-]YYYYmmdd-HHMMSS-xxxx` (local time, 4 random hex digits)."""
    return f"{prefix}{'-' if prefix else ''}{time_stamp()}-{os.urandom(2).hex()}"


METADATA_FILE = "metadata.json"
REPETITIONS_FILE = "repetitions.csv"
TIMINGS_FILE = "timings.csv"
RAW_DIR = "raw"
LOCK_FILE = ".lock"

RUN_COLUMNS: tuple[str, ...] = ("run_id", "repetition", "block", "order", "variant", "warmup", "valid")
REPETITION_COLUMNS_V1: tuple[str, ...] = (
    "run_id",
    "repetition",
    "block",
    "order",
    "variant",
    "warmup",
    "valid",
    "invalid_reason",
    "exit_code",
    "wall_s",
    "n_tests",
    "n_passed",
    "n_failed",
    "started_at",
    "finished_at",
)
# `code_hash`: the fingerprint of the measured code when the repetition ended (suitebench.fingerprint).
REPETITION_COLUMNS: tuple[str, ...] = (*REPETITION_COLUMNS_V1, "code_hash")
TIMING_COLUMNS: tuple[str, ...] = (
    *RUN_COLUMNS,
    "test",
    "category",
    "outcome",
    "phase",
    "seconds",
    *COUNTER_COLUMNS,
)

_INT_COLUMNS = ("repetition", "block", "order")
_BOOL_COLUMNS = ("warmup", "valid")


def repetition_dir_name(repetition: int) -> str:
    return f"rep-{repetition:04d}"


def raw_dir(run_dir: Path, repetition: int) -> Path:
    return Path(run_dir) / RAW_DIR / repetition_dir_name(repetition)


# ---------------------------------------------------------------- metadata.json


@contextlib.contextmanager
def _replacing(path: Path, *, newline: str | None = None) -> Iterator[Any]:
    """A temporary file next to `path` that replaces it when the block ends; when anything fails
    (a full disk) the temporary file is removed and `path` is left as it was."""
    path = Path(path)
    handle = tempfile.NamedTemporaryFile(
        "w", dir=path.parent, prefix=f".{path.stem}-", suffix=".tmp", delete=False, newline=newline, encoding="utf-8"
    )
    try:
        with handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(handle.name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(handle.name)
        raise


def write_metadata(run_dir: Path, metadata: Mapping[str, Any]) -> None:
    """Replace metadata.json atomically, so a kill never leaves half a file."""
    text = json.dumps(dict(metadata), indent=2, sort_keys=False, default=str) + "\n"
    with _replacing(Path(run_dir) / METADATA_FILE) as handle:
        handle.write(text)


def read_metadata(run_dir: Path) -> dict[str, Any]:
    """metadata.json of a run, checked for a readable file and the supported schema_version."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise BenchError(f"no run at {run_dir}")
    path = run_dir / METADATA_FILE
    try:
        metadata = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BenchError(f"{run_dir} is not a run directory (no {METADATA_FILE})") from None
    except (OSError, ValueError) as problem:
        raise BenchError(f"cannot read {path}: {problem}") from None
    version = metadata.get("schema_version") if isinstance(metadata, dict) else None
    if version not in READABLE_SCHEMA_VERSIONS:
        readable = " and ".join(str(v) for v in READABLE_SCHEMA_VERSIONS)
        raise BenchError(
            f"{path} has schema_version {version!r}; this version of suitebench reads schema_version {readable}"
        )
    return metadata


@contextlib.contextmanager
def lock_run(run_dir: Path) -> Iterator[None]:
    """Hold the run's lock (an exclusive `flock` on `.lock`) for the block: one writer per run.

    The kernel drops the lock when its holder dies, however it dies, so a stale lock cannot
    block a resume. Where `fcntl` is missing (Windows) nothing is locked.

    Raises
    ------
    BenchError
        Another process holds the lock; the message names its pid.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    path = Path(run_dir) / LOCK_FILE
    with open(path, "a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise BenchError(
                f"run {Path(run_dir).name!r} is being written by another process (pid {holder}); "
                "wait for it to finish or stop it, then resume"
            ) from None
        # The holder's pid, for the message above; the lock itself is what counts.
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


# ---------------------------------------------------------------- append-only CSV


def append_frame(path: Path, frame: pd.DataFrame, *, columns: Sequence[str]) -> None:
    """Append rows (header first when the file is new) and flush them to disk; when the write
    fails (a full disk, a file-size limit) the file is cut back to its old length, so no partial
    row stays behind for the next append to run into."""
    path = Path(path)
    size = path.stat().st_size if path.exists() else 0
    # Rendered first and written unbuffered: a buffered writer could still flush the rest of a
    # failed write on close, after the file was cut back.
    data = frame.reindex(columns=list(columns)).to_csv(header=size == 0, index=False, lineterminator="\n")
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        pending = memoryview(data.encode("utf-8"))
        while pending:
            pending = pending[os.write(descriptor, pending) :]
        os.fsync(descriptor)
    except BaseException as problem:
        with contextlib.suppress(OSError):
            os.ftruncate(descriptor, size)
        if isinstance(problem, OSError) and problem.filename is None:
            # os.write names no file; the message that reaches the user should.
            problem.filename = str(path)
        raise
    finally:
        os.close(descriptor)


def _complete_text(path: Path) -> str:
    """The file's text up to its last newline: a line cut short by a kill is not data."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return ""
    return text[: text.rfind("\n") + 1]


def read_complete_rows(
    path: Path, *, columns: Sequence[str], older: Sequence[Sequence[str]] = ()
) -> list[dict[str, str]]:
    """Rows of an append-only CSV with every field present; a missing or empty file gives [].
    A file with the `older` columns of an earlier schema gives rows without the newer keys."""
    text = _complete_text(path)
    if not text:
        return []
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header != list(columns) and header not in [list(o) for o in older]:
        raise BenchError(f"{path} has unexpected columns {header}; expected {list(columns)}")
    return [dict(zip(header, row)) for row in reader if len(row) == len(header)]


def rewrite_rows(path: Path, rows: Iterable[Mapping[str, str]], *, columns: Sequence[str]) -> None:
    """Replace a CSV file atomically with the given rows."""
    with _replacing(Path(path), newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


_TEXT_COLUMNS = (
    "run_id",
    "variant",
    "invalid_reason",
    "started_at",
    "finished_at",
    "test",
    "category",
    "outcome",
    "phase",
    "code_hash",
)


def _frame(text: str, *, columns: Sequence[str]) -> pd.DataFrame:
    if not text:
        return pd.DataFrame({column: pd.Series(dtype=object) for column in columns})
    text_dtypes = {column: str for column in _TEXT_COLUMNS if column in columns}
    frame = pd.read_csv(io.StringIO(text), keep_default_na=False, na_values=[""], dtype=text_dtypes)
    return frame.reindex(columns=list(columns))


def _rows_text(rows: Sequence[Mapping[str, str]], *, columns: Sequence[str]) -> str:
    if not rows:
        return ""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def as_bool(series: pd.Series) -> pd.Series:
    """Booleans as written by pandas or read back from CSV ("True"/"False", 1/0); anything else
    is a BenchError naming the column, never silently False."""
    if pd.api.types.is_bool_dtype(series):
        return series.astype(bool)
    text = series.astype(str).str.strip().str.lower()
    mapped = text.map({"true": True, "1": True, "1.0": True, "false": False, "0": False, "0.0": False})
    if mapped.isna().any():
        bad = sorted(set(series[mapped.isna()].astype(str)))[:5]
        raise BenchError(f"column {series.name!r} holds non-boolean values: {', '.join(bad)}")
    return mapped.astype(bool)


def _typed_repetitions(rows: Sequence[Mapping[str, str]]) -> pd.DataFrame:
    frame = _frame(_rows_text(rows, columns=REPETITION_COLUMNS), columns=REPETITION_COLUMNS)
    for column in (*_INT_COLUMNS, "n_tests", "n_passed", "n_failed", "exit_code"):
        frame[column] = pd.to_numeric(frame[column]).astype("Int64")
    for column in _BOOL_COLUMNS:
        frame[column] = as_bool(frame[column])
    frame["wall_s"] = pd.to_numeric(frame["wall_s"]).astype(float)
    for column in ("run_id", "variant", "invalid_reason", "started_at", "finished_at", "code_hash"):
        frame[column] = frame[column].fillna("").astype(str)
    return frame


def _typed_timings(rows: Sequence[Mapping[str, str]]) -> pd.DataFrame:
    frame = _frame(_rows_text(rows, columns=TIMING_COLUMNS), columns=TIMING_COLUMNS)
    for column in _INT_COLUMNS:
        frame[column] = pd.to_numeric(frame[column]).astype("Int64")
    for column in _BOOL_COLUMNS:
        frame[column] = as_bool(frame[column])
    frame["seconds"] = pd.to_numeric(frame["seconds"]).astype(float)
    for column in COUNTER_COLUMNS:
        frame[column] = pd.to_numeric(frame[column]).astype("Int64")
    for column in ("run_id", "variant", "test", "category", "outcome", "phase"):
        frame[column] = frame[column].fillna("").astype(str)
    return frame


def completed_repetition_rows(run_dir: Path) -> list[dict[str, str]]:
    """repetitions.csv rows of completed repetitions, first occurrence of each index."""
    rows = read_complete_rows(
        Path(run_dir) / REPETITIONS_FILE, columns=REPETITION_COLUMNS, older=(REPETITION_COLUMNS_V1,)
    )
    seen: set[str] = set()
    unique = []
    for row in rows:
        if row["repetition"] not in seen:
            seen.add(row["repetition"])
            unique.append(row)
    return unique


def timing_rows(run_dir: Path, *, repetitions: Iterable[int]) -> list[dict[str, str]]:
    """timings.csv rows that belong to the given (completed) repetitions."""
    keep = {str(repetition) for repetition in repetitions}
    rows = read_complete_rows(Path(run_dir) / TIMINGS_FILE, columns=TIMING_COLUMNS)
    return [row for row in rows if row["repetition"] in keep]


# ---------------------------------------------------------------- reading runs


@dataclass(frozen=True)
class RunData:
    """One run's metadata and tidy tables (completed repetitions only)."""

    run_id: str
    metadata: dict[str, Any]
    timings: pd.DataFrame
    repetitions: pd.DataFrame
    path: Path | None = field(default=None, compare=False)

    @property
    def variants(self) -> list[str]:
        """Variant labels in the order the run was asked for."""
        labels = [str(v["label"]) for v in self.metadata.get("variants", [])]
        return labels or sorted(set(self.repetitions["variant"]))

    @property
    def measured_repetitions(self) -> pd.DataFrame:
        """Repetitions that count for statistics: not warm-up, and valid."""
        return self.repetitions[~self.repetitions["warmup"] & self.repetitions["valid"]]

    @property
    def measured_timings(self) -> pd.DataFrame:
        return self.timings[~self.timings["warmup"] & self.timings["valid"]]


def load_run(run_dir: Path | str) -> RunData:
    """Read a run directory written by `suitebench.runner.run_benchmark`.

    Raises BenchError for a missing directory, an unsupported schema_version, or a run
    without any completed repetition.
    """
    run_dir = Path(run_dir)
    metadata = read_metadata(run_dir)
    rows = completed_repetition_rows(run_dir)
    if not rows:
        raise BenchError(f"run {metadata.get('run_id', run_dir.name)!r} has no completed repetitions ({run_dir})")
    repetitions = _typed_repetitions(rows)
    timings = _typed_timings(timing_rows(run_dir, repetitions=repetitions["repetition"].tolist()))
    return RunData(
        run_id=str(metadata.get("run_id", run_dir.name)),
        metadata=metadata,
        timings=timings.reset_index(drop=True),
        repetitions=repetitions.reset_index(drop=True),
        path=run_dir,
    )


@dataclass(frozen=True)
class RunSummary:
    run_id: str
    path: Path
    status: str
    profile: str | None
    started_at: str
    variants: tuple[str, ...]
    planned_repetitions: int
    completed_repetitions: int


def _summary(run_dir: Path) -> RunSummary | None:
    try:
        metadata = read_metadata(run_dir)
        completed = len(completed_repetition_rows(run_dir))
    except BenchError:
        return None
    return RunSummary(
        run_id=str(metadata.get("run_id", run_dir.name)),
        path=run_dir,
        status=str(metadata.get("status", "unknown")),
        profile=metadata.get("profile"),
        started_at=str(metadata.get("started_at") or ""),
        variants=tuple(v["label"] for v in metadata.get("variants", [])),
        planned_repetitions=len(metadata.get("schedule", [])),
        completed_repetitions=completed,
    )


def list_runs(runs_dir: Path | str = DEFAULT_RUNS_DIR, *, profile: str | None = None) -> list[RunSummary]:
    """Readable runs under runs_dir, oldest first; `profile` keeps only runs recorded with it."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        return []
    summaries = [s for d in runs_dir.iterdir() if d.is_dir() and (s := _summary(d)) is not None]
    if profile is not None:
        summaries = [s for s in summaries if s.profile == profile]
    return sorted(summaries, key=lambda s: (s.started_at, s.run_id))


def find_run(run_id: str | None = None, *, runs_dir: Path | str = DEFAULT_RUNS_DIR, profile: str | None = None) -> Path:
    """Directory of run `run_id` in runs_dir, or of the latest complete run (of `profile`) when None."""
    if run_id is None:
        return latest_run(runs_dir, profile=profile)
    check_name(run_id)
    run_dir = Path(runs_dir) / run_id
    if not run_dir.is_dir():
        raise BenchError(f"no run {run_id!r} in {runs_dir}")
    return run_dir


def latest_run(
    runs_dir: Path | str = DEFAULT_RUNS_DIR, *, profile: str | None = None, include_incomplete: bool = False
) -> Path:
    """Directory of the most recently started complete run (or any run with data, if include_incomplete)."""
    candidates = [
        s
        for s in list_runs(runs_dir, profile=profile)
        if s.status == "complete" or (include_incomplete and s.completed_repetitions > 0)
    ]
    if not candidates:
        which = f" with profile {profile!r}" if profile is not None else ""
        kind = "runs with data" if include_incomplete else "complete runs"
        raise BenchError(f"no {kind}{which} in {runs_dir}; record one with: python -m suitebench run")
    return candidates[-1].path
