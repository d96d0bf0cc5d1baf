"""Turn phase and fixture measurements into the timing plugin's JSON-lines records.

Knows nothing of pytest: `suitebench.plugin` tells it when a test, phase or fixture starts
and stops. The record format (schema_version 1) is the contract in data/README.md. One file
per process, `<pid>-<worker>.jsonl`, flushed after every record so that a killed process
leaves every finished test readable.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from suitebench import counters as db_counters
from suitebench.counters import Counters

SCHEMA_VERSION = 1

Clock = Callable[[], int]
CounterSource = Callable[[], Counters]


@dataclass
class _Span:
    """An open measurement; nested non-function fixtures are excluded from it."""

    start_ns: int
    start: Counters
    excluded_ns: int = 0
    excluded: Counters = field(default_factory=Counters)

    def exclude(self, duration_ns: int, work: Counters) -> None:
        self.excluded_ns += duration_ns
        self.excluded = self.excluded + work


@dataclass
class _OpenFixture:
    name: str
    scope: str
    nodeid: str
    span: _Span


@dataclass
class _OpenTest:
    nodeid: str
    category: str
    phases: dict[str, dict[str, Any]] = field(default_factory=dict)
    phase: str | None = None
    span: _Span | None = None


class TimingRecorder:
    """Measures tests phase by phase and writes one JSON line per finished test or fixture.

    Parameters
    ----------
    directory
        Where `<pid>-<worker>.jsonl` is written; must exist.
    worker
        Worker label for the file name (`main`, or pytest-xdist's `gw0`, ...).
    clock, counters, wall_clock
        Collaborators, replaceable in tests: a monotonic ns clock for durations, a source of
        `Counters` totals, and an epoch ns clock for the session record.
    """

    def __init__(
        self,
        *,
        directory: Path,
        worker: str,
        pid: int | None = None,
        clock: Clock = time.perf_counter_ns,
        counters: CounterSource = db_counters.snapshot,
        wall_clock: Clock = time.time_ns,
    ) -> None:
        self.path = Path(directory) / f"{os.getpid() if pid is None else pid}-{worker}.jsonl"
        self._clock = clock
        self._counters = counters
        self._wall_clock = wall_clock
        self._file: IO[str] | None = None
        self._started_ns: int | None = None
        self._test: _OpenTest | None = None
        self._fixtures: list[_OpenFixture] = []
        # The recorder's own time (snapshots, serialising, writing), reported in the session
        # record so every run shows what measuring cost it.
        self._own_ns = 0

    # -- session -------------------------------------------------------------------------

    def start_session(self) -> None:
        self._started_ns = self._wall_clock()

    def finish_session(self, *, exitstatus: int, pytest_args: Sequence[str]) -> None:
        self._write(
            {
                "kind": "session",
                "started_ns": self._started_ns,
                "finished_ns": self._wall_clock(),
                "exitstatus": int(exitstatus),
                "pytest_args": list(pytest_args),
                "recorder_ns": self._own_ns,
            }
        )
        self.close()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    # -- tests and their phases ----------------------------------------------------------

    def start_test(self, nodeid: str, *, category: str) -> None:
        self._test = _OpenTest(nodeid=nodeid, category=category)

    def start_phase(self, phase: str) -> None:
        if self._test is None:
            return
        self._test.phase = phase
        own_started = time.perf_counter_ns()
        self._test.span = _Span(self._clock(), self._counters())
        self._own_ns += time.perf_counter_ns() - own_started

    def stop_phase(self) -> None:
        test = self._test
        if test is None or test.span is None or test.phase is None:
            return
        own_started = time.perf_counter_ns()
        end_ns, end = self._clock(), self._counters()
        span = test.span
        test.phases[test.phase] = {
            "duration_ns": end_ns - span.start_ns - span.excluded_ns,
            "counters": (end - span.start - span.excluded).as_dict(),
        }
        test.phase, test.span = None, None
        self._own_ns += time.perf_counter_ns() - own_started

    def finish_test(self, *, outcome: str) -> None:
        """Write the test record; phases that never ran (call after a failed setup) are absent."""
        test, self._test = self._test, None
        if test is None:
            return
        self._write(
            {
                "kind": "test",
                "nodeid": test.nodeid,
                "category": test.category,
                "outcome": outcome,
                "phases": test.phases,
            }
        )

    # -- fixtures broader than one test ------------------------------------------------

    def start_fixture(self, name: str, *, scope: str) -> None:
        nodeid = self._test.nodeid if self._test is not None else ""
        span = _Span(self._clock(), self._counters())
        self._fixtures.append(_OpenFixture(name=name, scope=scope, nodeid=nodeid, span=span))

    def stop_fixture(self, *, outcome: str = "passed") -> None:
        """Write the fixture record and take its cost out of whatever encloses it.

        A fixture that requests another one while it runs (`request.getfixturevalue`) is
        charged only for its own work, so fixture records add up without double counting.
        """
        if not self._fixtures:
            return
        end_ns, end = self._clock(), self._counters()
        fixture = self._fixtures.pop()
        span = fixture.span
        inclusive_ns, inclusive = end_ns - span.start_ns, end - span.start
        self._write(
            {
                "kind": "fixture",
                "name": fixture.name,
                "scope": fixture.scope,
                "nodeid": fixture.nodeid,
                "outcome": outcome,
                "duration_ns": inclusive_ns - span.excluded_ns,
                "counters": (inclusive - span.excluded).as_dict(),
            }
        )
        enclosing = self._fixtures[-1].span if self._fixtures else None
        if enclosing is None and self._test is not None:
            enclosing = self._test.span
        if enclosing is not None:
            enclosing.exclude(inclusive_ns, inclusive)

    # -- output --------------------------------------------------------------------------

    def _write(self, record: dict[str, Any]) -> None:
        # The recorder's own cost is timed with the real clock, never the injected one.
        started = time.perf_counter_ns()
        if self._file is None:
            # Append: a second session in the same process (pytester's in-process runs) must
            # not truncate the first one's records.
            self._file = open(self.path, "a", encoding="utf-8")
        self._file.write(json.dumps({"schema_version": SCHEMA_VERSION, **record}) + "\n")
        self._file.flush()
        self._own_ns += time.perf_counter_ns() - started
