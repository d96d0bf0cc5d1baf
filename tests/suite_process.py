"""Run the suite under study in a fresh pytest process and read its outcomes back (structured,
from the timing plugin's records, never from printed text).

`SharedSuiteRuns` lets every test of a session (and every pytest-xdist worker) share one run per
set of arguments: the first test that asks makes it under a file lock, the others read its stored
result. Tests that only read a run's results therefore cost nothing beyond the run itself.
"""

from __future__ import annotations

import atexit
import functools
import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from itertools import combinations
from pathlib import Path

from filelock import FileLock

from quiz_architectures import architectures
from quiz_study import paths
from quiz_study.forkserver import ForkServer
from suitebench.plugin import plugin_args
from suitebench.records import read_records, records_to_frame

POSTGRES_URL_FOR_TESTS = "STUDY_TESTS_POSTGRES_URL"


@dataclass(frozen=True)
class SuiteRun:
    exit_code: int
    output: str
    records: list[dict]

    @property
    def outcomes(self) -> dict[str, str]:
        return {r["nodeid"]: r["outcome"] for r in self.records if r.get("kind") == "test"}

    def frame(self):  # noqa: ANN201
        return records_to_frame(self.records)

    def failed(self) -> set[str]:
        return {node for node, outcome in self.outcomes.items() if outcome in {"failed", "error"}}


def postgres_args(args: Sequence[str]) -> list[str]:
    """`--postgres-url` of the test session's server when the arguments select storage=postgres
    and name no server themselves (the suite would otherwise start a cluster of its own)."""
    if "storage=postgres" not in " ".join(args) or "--postgres-url" in args:
        return []
    url = os.environ.get(POSTGRES_URL_FOR_TESTS)
    return ["--postgres-url", url] if url else []


@functools.cache
def _fork_server() -> ForkServer:
    """One zygote per test process (each xdist worker has its own), stopped at exit: a suite run
    forked from it skips the ~2 CPU-s of imports a fresh interpreter pays (quiz_study.forkserver
    says what else differs; nothing the suite asserts depends on it)."""
    server = ForkServer()
    atexit.register(server.close)
    return server


def run_suite(*args: str, workdir: Path, target: str | None = None, timeout: float = 600) -> SuiteRun:
    """Run `target` (default: the whole suite; or a node id relative to the suite's directory) in
    a fresh pytest session forked from a pre-imported interpreter (`-n` runs: a subprocess)."""
    timings = workdir / "timings"
    timings.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUIZ_") and k != "PYTEST_ADDOPTS"}
    # Order is fixed unless the caller asks for pytest-randomly explicitly.
    order = [] if any("randomly" in arg for arg in args) else ["-p", "no:randomly"]
    command = [
        sys.executable,
        "-m",
        "pytest",
        str(paths.SUITE / target) if target else str(paths.SUITE),
        "-p",
        "no:cacheprovider",
        "-q",
        *order,
        "-W",
        "ignore::DeprecationWarning",
        *plugin_args(),
        f"--suitebench-timings={timings}",
        *args,
    ]
    log = workdir / "output.log"
    outcome = _fork_server()(command, env=env, cwd=paths.ROOT, log_path=log, timeout_s=timeout)
    if outcome.timed_out:
        raise subprocess.TimeoutExpired(command, timeout)
    return SuiteRun(outcome.exit_code, log.read_text(errors="replace"), read_records(timings))


class SharedSuiteRuns:
    """One run of the suite per distinct argument list, shared through files under `root`;
    runs on PostgreSQL use the test session's server."""

    def __init__(self, root: Path):
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def get(self, *args: str, target: str | None = None) -> SuiteRun:
        key = json.dumps({"args": list(args), "target": target})
        digest = hashlib.sha1(key.encode()).hexdigest()[:16]
        workdir, stored = self.root / digest, self.root / f"{digest}.json"
        with FileLock(str(self.root / f"{digest}.lock")):
            if not stored.exists():
                run = run_suite(*args, *postgres_args(args), workdir=workdir, target=target)
                stored.write_text(json.dumps({"key": key, **asdict(run)}))
                return run
        data = json.loads(stored.read_text())
        return SuiteRun(data["exit_code"], data["output"], data["records"])


# ---------------------------------------------------------------- which switch combinations run


def switch_args(assignment: Mapping[str, str]) -> list[str]:
    """`--arch transactional --switch name=value ...` for any assignment, refused ones included."""
    return ["--arch", "transactional", *[a for k, v in assignment.items() for a in ("--switch", f"{k}={v}")]]


def assignment_of(spec: str) -> dict[str, str]:
    """The categorical switches of an architecture spec (`baseline+storage=postgres`)."""
    switches = architectures.parse_spec(spec)
    return {name: getattr(switches, name) for name in architectures.SWITCH_VALUES}


def value_pairs(rows: Sequence[Mapping[str, str]]) -> set[tuple[tuple[str, str], tuple[str, str]]]:
    """Every pair of (switch, value) settings that occurs together in some row."""
    return {pair for row in rows for pair in combinations(sorted(row.items()), 2)}


def covering_array(seeds: Sequence[Mapping[str, str]] = ()) -> list[tuple[dict[str, str], str | None]]:
    """Rows (assignment, refusal reason) in which every pair of switch values that occurs in the
    full product occurs at least once: the `seeds` first, then allpairspy's rows for the pairs
    they miss, among runnable combinations, then among refused ones (pairs such as
    isolation=none with each client occur only in refused combinations)."""
    from allpairspy import AllPairs

    names = list(architectures.SWITCH_VALUES)
    reasons = {tuple(a.values()): reason for a, reason in architectures.all_combinations()}
    rows = [tuple(seed[name] for name in names) for seed in seeds]
    for runnable in (True, False):
        allowed = [values for values, reason in reasons.items() if (reason is None) == runnable]
        earlier = set(rows)

        def extends_allowed(
            partial: list[str], allowed: list[tuple[str, ...]] = allowed, earlier: set = earlier
        ) -> bool:
            # allpairspy applies the filter to the earlier rows too: they stay acceptable.
            return tuple(partial) in earlier or any(values[: len(partial)] == tuple(partial) for values in allowed)

        rows += [
            tuple(row)
            for row in AllPairs(
                list(architectures.SWITCH_VALUES.values()), filter_func=extends_allowed, previously_tested=rows
            )
        ]
    unique = list(dict.fromkeys(rows))
    return [(dict(zip(names, values)), reasons[values]) for values in unique]
