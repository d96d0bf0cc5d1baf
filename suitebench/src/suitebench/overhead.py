"""Measure what `--suitebench-timings` costs: whole pytest processes with and without it.

Each run is a fresh `python -m pytest` process (imports, collection and all), timed from the
parent. Runs alternate between the two variants so that drift (thermal, caches, other load)
hits both alike; the pair order flips every repetition (AB BA AB ...) so that neither variant
is always the one that runs first after the other.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from suitebench.errors import BenchError
from suitebench.plugin import plugin_args

# 0 all passed, 1 some tests failed, 5 nothing collected: the suite ran to its end. Anything
# else (interrupted, internal error, usage error) would time something other than the suite.
_FINISHED_EXIT_CODES = frozenset({0, 1, 5})


@dataclass(frozen=True)
class OverheadResult:
    """Wall times of whole pytest processes, in execution order within each variant.

    overhead_ratio: median(with_s) / median(without_s) - 1; 0.03 means 3 % slower with the
    option. Not a significance statement: look at the spread of both lists.
    """

    with_s: list[float]
    without_s: list[float]
    overhead_ratio: float

    @property
    def median_with_s(self) -> float:
        return statistics.median(self.with_s)

    @property
    def median_without_s(self) -> float:
        return statistics.median(self.without_s)


def _run_once(args: Sequence[str], *, cwd: Path, env: Mapping[str, str]) -> float:
    start = time.perf_counter()
    completed = subprocess.run(
        [sys.executable, "-m", "pytest", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    wall_s = time.perf_counter() - start
    if completed.returncode not in _FINISHED_EXIT_CODES:
        tail = "\n".join(completed.stdout.splitlines()[-20:])
        raise BenchError(f"pytest {' '.join(args)} exited with {completed.returncode}:\n{tail}")
    return wall_s


def measure_plugin_overhead(
    suite_args: list[str],
    *,
    repetitions: int,
    cwd: Path | str,
    warmup: int = 1,
    env: Mapping[str, str] | None = None,
) -> OverheadResult:
    """Time `python -m pytest *suite_args` with and without `--suitebench-timings`, interleaved.

    Both variants load the plugin (as the installed entry point always does), so the
    difference is the cost of measuring and writing, not of importing the module.

    Parameters
    ----------
    suite_args
        pytest arguments selecting the suite (paths, `-q`, `-p no:randomly`, ...).
    repetitions
        Timed runs per variant.
    cwd
        Working directory of every pytest process.
    warmup
        Untimed pairs run first, so file-system caches are warm for the first timed run.
    env
        Base environment of the children (default: this process's).

    Returns
    -------
    OverheadResult
    """
    if repetitions < 1:
        raise BenchError(f"repetitions must be at least 1, got {repetitions}")
    cwd = Path(cwd)
    child_env = dict(os.environ if env is None else env)
    base = [*plugin_args(), *suite_args]
    with_s: list[float] = []
    without_s: list[float] = []
    with tempfile.TemporaryDirectory(prefix="suitebench-overhead-") as scratch:
        for index in range(warmup + repetitions):
            timings_dir = Path(scratch) / f"run-{index:04d}"
            variants = [
                (with_s, [*base, f"--suitebench-timings={timings_dir}"]),
                (without_s, base),
            ]
            if index % 2:
                variants.reverse()
            for sink, args in variants:
                wall_s = _run_once(args, cwd=cwd, env=child_env)
                if index >= warmup:
                    sink.append(wall_s)
    ratio = statistics.median(with_s) / statistics.median(without_s) - 1.0
    return OverheadResult(with_s=with_s, without_s=without_s, overhead_ratio=ratio)
