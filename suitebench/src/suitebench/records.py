"""Read the timing plugin's JSON-lines files back and shape them into tidy rows.

`read_records` tolerates what a killed pytest process leaves behind (a truncated last line);
`records_to_frame` produces the plugin-derived columns of data/README.md's timings.csv. The
run-level columns (run_id, repetition, ...) are the runner's business.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from suitebench.errors import BenchError
from suitebench.recorder import SCHEMA_VERSION

COUNTER_COLUMNS = (
    "sql_statements",
    "ddl_statements",
    "connections_opened",
    "commits",
    "rollbacks",
    "savepoints",
)
COLUMNS = ("test", "category", "outcome", "phase", "seconds", *COUNTER_COLUMNS)
PHASES = ("setup", "call", "teardown")
FIXTURE_CATEGORY = "session"


def read_records(directory: Path | str) -> list[dict[str, Any]]:
    """All records of every `*.jsonl` file in `directory`, file by file in name order.

    A last line that does not parse is dropped: the process was killed while writing it.
    Anything else that does not parse, or a record of another schema version, raises
    `BenchError`.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise BenchError(f"timings directory not found: {directory}")
    records: list[dict[str, Any]] = []
    for path in sorted(directory.glob("*.jsonl")):
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                if number == len(lines):
                    break
                raise BenchError(f"{path}:{number}: not a JSON record ({exc.msg})") from exc
            if not isinstance(record, dict):
                raise BenchError(f"{path}:{number}: not a JSON object")
            version = record.get("schema_version")
            if version != SCHEMA_VERSION:
                raise BenchError(f"{path}:{number}: schema_version {version!r}, expected {SCHEMA_VERSION}")
            records.append(record)
    return records


def _row(
    test: str, category: str, outcome: str, phase: str, duration_ns: int, counters: Mapping[str, int]
) -> dict[str, Any]:
    row = {"test": test, "category": category, "outcome": outcome, "phase": phase, "seconds": duration_ns / 1e9}
    row.update({name: int(counters.get(name, 0)) for name in COUNTER_COLUMNS})
    return row


def records_to_frame(records: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Tidy rows: per test one row per phase that ran plus `total` (their sum); per fixture
    broader than a test one `setup` row with `test="<fixture:NAME>"`, `category="session"`.

    Session records carry no per-test data and are skipped.
    """
    rows: list[dict[str, Any]] = []
    for record in records:
        kind = record.get("kind")
        if kind == "test":
            phases = record["phases"]
            total_ns, total = 0, dict.fromkeys(COUNTER_COLUMNS, 0)
            for phase in PHASES:
                if phase not in phases:
                    continue
                measured = phases[phase]
                rows.append(
                    _row(
                        record["nodeid"],
                        record["category"],
                        record["outcome"],
                        phase,
                        measured["duration_ns"],
                        measured["counters"],
                    )
                )
                total_ns += measured["duration_ns"]
                for name in COUNTER_COLUMNS:
                    total[name] += int(measured["counters"].get(name, 0))
            rows.append(_row(record["nodeid"], record["category"], record["outcome"], "total", total_ns, total))
        elif kind == "fixture":
            rows.append(
                _row(
                    f"<fixture:{record['name']}>",
                    FIXTURE_CATEGORY,
                    record.get("outcome", "passed"),
                    "setup",
                    record["duration_ns"],
                    record["counters"],
                )
            )
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    return frame.astype({"seconds": "float64", **dict.fromkeys(COUNTER_COLUMNS, "int64")})


def recorder_overhead(records: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Per process: the recorder's own time against the session's wall time.

    This is the in-process share (phase snapshots, serialising, writing). The whole-process
    cost of the option, SQLAlchemy listeners included, is measured A/B by `suitebench.overhead`.
    """
    rows = [
        {
            "recorder_s": record["recorder_ns"] / 1e9,
            "session_s": (record["finished_ns"] - record["started_ns"]) / 1e9,
        }
        for record in records
        if record.get("kind") == "session" and "recorder_ns" in record
    ]
    frame = pd.DataFrame(rows, columns=["recorder_s", "session_s"])
    frame["fraction"] = frame["recorder_s"] / frame["session_s"]
    return frame
