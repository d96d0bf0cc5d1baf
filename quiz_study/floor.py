"""The floor: every test's time with no isolation work at all, and each architecture's time above it.

The floor configuration is the transactional preset with isolation=none: the same test bodies,
reference data seeded once at session start, nothing reset. It only runs one test per process
(the suite refuses more), so the floor is measured one pytest process per test - and so are
the architectures compared with it, in the same interleaved schedule, so that the cold-process
costs (the first request through a fresh app, first use of SQLAlchemy's compiled caches and of
argon2) hit all of them alike. **Caveat**: per-test times measured this way are cold-process
times, higher than the same tests' times inside a whole-suite run; the differences above the
floor are what this module reports, not the absolute times.

`measure_floor` is a run of the engine's runner (metadata.json, repetitions.csv, timings.csv,
raw/, the format of data/README.md): one repetition = one process = one (test, variant); the
metadata's schedule entries carry the test as `target`. Blocks repeat every (test, variant)
once; inside a block the tests come in a random order and each test's variants run back to back
in a random order (`np.random.default_rng(seed)`), so drift hits the variants of one test alike.
An interrupted floor run resumes like any other run. The processes can be forked from a
pre-imported interpreter (`quiz_study.forkserver`, `executor=`): per-test times are those of a
fresh pytest session either way.

**Intervals respect the pairing.** A block is the unit: within a block every test ran under the
floor and under each architecture back to back, so the difference architecture - floor is taken
within the block, per test; a group (a category, or all tests) gets one value per block (the
mean of its tests' differences, or the log of its summed time over its summed floor time), and
its interval is a t interval over blocks (df = blocks - 1). The tests are the ones measured (the
interval is about them, not about tests not drawn); drift that hits a whole block cancels in
the within-block differences.

The overhead tables take any run whose floor and architecture variants ran one test per process.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from quiz_architectures.architectures import parse_spec
from quiz_study import paths
from quiz_study.errors import StudyError
from quiz_study.variants import resolve_variants, run_benchmark
from suitebench import store
from suitebench.runner import Executor, child_environment, execute_process, selection_args
from suitebench.stats import TInterval, measured_totals, t_interval

FLOOR_SPEC = "transactional+isolation=none"
FLOOR_LABEL = parse_spec(FLOOR_SPEC).label
DEFAULT_FLOOR_VARIANTS: tuple[str, ...] = ("baseline", "transactional", FLOOR_SPEC)
DEFAULT_TIMEOUT_S = 120.0
ALL = "all"

CAVEAT = (
    "One pytest process per test for the floor and for every architecture alike: times are "
    "cold-process times (first request through a fresh app, first use of caches), higher than "
    "inside a whole-suite run; the overhead above the floor compares like with like."
)

_COLLECT_SCRIPT = """\
import json, sys
import pytest
from suitebench.plugin import category_of, plugin_args

class Collector:
    tests = []
    def pytest_collection_finish(self, session):
        categories = session.config.getini("suitebench_categories")
        Collector.tests = [
            [item.nodeid, category_of([m.name for m in item.iter_markers()], categories),
             sorted({m.name for m in item.iter_markers()})]
            for item in session.items
        ]

code = pytest.main(["--collect-only", "-q", "-p", "no:cacheprovider", "-p", "no:randomly", *plugin_args(),
                    *sys.argv[2:]], plugins=[Collector()])
with open(sys.argv[1], "w", encoding="utf-8") as handle:
    json.dump({"exit_code": int(code), "tests": Collector.tests}, handle)
"""


# ---------------------------------------------------------------- which tests


def collect_tests(
    *,
    suite_path: Path | str = paths.SUITE,
    selection: Mapping[str, str] | None = None,
    environ: Mapping[str, str] | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    executor: Executor = execute_process,
) -> pd.DataFrame:
    """The suite's tests (node ids relative to the suite's directory), categories and markers,
    collected in a child process that writes them as JSON (no printed output is parsed).

    Returns
    -------
    DataFrame
        Columns test, category, markers (tuple of marker names), in collection order.
    """
    with tempfile.TemporaryDirectory(prefix="floor-collect-") as scratch:
        out = Path(scratch) / "tests.json"
        command = [sys.executable, "-c", _COLLECT_SCRIPT, str(out), str(suite_path), *selection_args(selection)]
        outcome = executor(
            command,
            env=child_environment(environ=environ),
            cwd=paths.ROOT,
            log_path=Path(scratch) / "collect.log",
            timeout_s=timeout_s,
        )
        log = (Path(scratch) / "collect.log").read_text(encoding="utf-8", errors="replace")
        result = json.loads(out.read_text(encoding="utf-8")) if out.exists() else {"exit_code": outcome.exit_code}
        # pytest's exit code 5: nothing collected (a selection that matches no test).
        if outcome.exit_code != 0 or result["exit_code"] not in (0, 5):
            lines = [line for line in log.strip().splitlines() if line.strip()]
            reason = next((line for line in lines if line.startswith("ERROR")), lines[-1] if lines else "no output")
            raise StudyError(f"collecting the tests of {suite_path} failed (exit {result['exit_code']}): {reason}")
    rows = [(test, category, tuple(markers)) for test, category, markers in result["tests"]]
    return pd.DataFrame(rows, columns=["test", "category", "markers"])


def sample_tests(tests: pd.DataFrame, *, per_category: int | None, seed: int | None) -> list[str]:
    """`per_category` tests drawn from every category (all when None or when a category has
    fewer), with `np.random.default_rng(seed)`; returned in collection order."""
    if per_category is None:
        return list(tests["test"])
    if per_category < 1:
        raise StudyError(f"per_category must be at least 1, got {per_category!r}")
    rng = np.random.default_rng(seed)
    chosen: set[str] = set()
    for _, group in tests.groupby("category", sort=True):
        names = list(group["test"])
        if len(names) <= per_category:
            chosen.update(names)
        else:
            chosen.update(names[i] for i in rng.choice(len(names), size=per_category, replace=False))
    return [name for name in tests["test"] if name in chosen]


# ---------------------------------------------------------------- the run


@dataclass(frozen=True)
class FloorRunResult:
    """What `measure_floor` left on disk."""

    run_id: str
    run_dir: Path
    status: str
    tests: tuple[str, ...]
    variants: tuple[str, ...]
    planned_processes: int
    invalid_processes: int
    wall_s: float


def measure_floor(
    *,
    tests: Sequence[str],
    variants: Sequence[str] = DEFAULT_FLOOR_VARIANTS,
    repetitions: int = 2,
    output_dir: Path | str = paths.RUNS,
    run_id: str | None = None,
    seed: int | None = 0,
    resume: bool = False,
    extra_pytest_args: Sequence[str] = (),
    timeout_s: float | None = DEFAULT_TIMEOUT_S,
    profile: str | None = None,
    progress: bool = False,
    executor: Executor = execute_process,
    environ: Mapping[str, str] | None = None,
    annotations: Mapping[str, object] | None = None,
) -> FloorRunResult:
    """Run every (test, variant) in its own pytest process, interleaved; write `output_dir/run_id/`.

    An ordinary run of the engine's runner (so it resumes like any other): the tests are its
    targets, one test per process (a process that ran another number is invalid); per block the
    tests come in random order and each test's variants back to back in random order.

    Parameters
    ----------
    tests : sequence of str
        Node ids relative to the suite's directory (`collect_tests`, `sample_tests`).
    variants : sequence of str
        Architecture specs; must include the floor (`FLOOR_SPEC`).
    repetitions : int
        Blocks; every (test, variant) runs once per block. No warm-up: every process is cold.
    seed : int or None
        Seeds the schedule's permutations (recorded).
    resume : bool
        Continue the interrupted floor run `run_id`.
    timeout_s : float or None
        Kill a process after this long; it is recorded as invalid.
    profile : str, optional
        Tag stored in metadata.json.
    executor, environ
        What runs one process (`quiz_study.forkserver.ForkServer` forks them), and the
        environment the child's is built from (see `suitebench.runner.run_benchmark`).
    annotations : mapping, optional
        More facts stored at the top of metadata.json (e.g. the process model).

    Returns
    -------
    FloorRunResult

    Raises
    ------
    StudyError
        Bad arguments, an existing run id, or RunInterrupted (data kept; resume it).
    """
    tests = list(dict.fromkeys(tests))
    if not resume:
        labels = [v.label for v in resolve_variants(variants)]
        if FLOOR_LABEL not in labels:
            raise StudyError(f"the floor variant {FLOOR_SPEC!r} must be among the variants")
        if not tests:
            raise StudyError("no tests to measure the floor on")
        if repetitions < 1:
            raise StudyError(f"repetitions must be a positive integer, got {repetitions!r}")
    started = time.perf_counter()
    result = run_benchmark(
        variants=None if resume else variants,
        repetitions=None if resume else repetitions,
        warmup=None if resume else 0,
        targets=None if resume else tests,
        expected_tests=None if resume else 1,
        output_dir=output_dir,
        run_id=run_id or (None if resume else store.new_run_id("floor")),
        seed=None if resume else seed,
        schedule=None if resume else "random",
        resume=resume,
        extra_pytest_args=None if resume else list(extra_pytest_args),
        timeout_s=None if resume else timeout_s,
        profile=None if resume else profile,
        annotations=None if resume else {"kind": "floor", "caveat": CAVEAT, **(annotations or {})},
        progress=progress,
        executor=executor,
        environ=environ,
    )
    metadata = store.read_metadata(result.run_dir)
    return FloorRunResult(
        run_id=result.run_id,
        run_dir=result.run_dir,
        status=result.status,
        tests=tuple(metadata["arguments"]["targets"]),
        variants=tuple(metadata["arguments"]["variants"]),
        planned_processes=result.planned_repetitions,
        invalid_processes=result.invalid_measured_repetitions,
        wall_s=time.perf_counter() - started,
    )


# ---------------------------------------------------------------- analysis


def floor_data(timings: pd.DataFrame, *, floor: str = FLOOR_LABEL) -> pd.DataFrame:
    """Per-test totals of the processes that ran exactly one passing test, for tests measured
    under the floor. Columns: variant, block, test, category, seconds (+ phase columns
    setup_s, call_s, teardown_s).

    Raises StudyError when the floor variant is missing.
    """
    if floor not in set(timings["variant"]):
        raise StudyError(f"no floor variant {floor!r} in the data")
    totals = measured_totals(timings)
    per_process = totals.groupby(["run_id", "repetition"])["test"].transform("nunique")
    totals = totals[(per_process == 1) & (totals["outcome"] == "passed")]
    measured = timings[timings["phase"].isin(["setup", "call", "teardown"])]
    phases = (
        measured.pivot_table(index=["run_id", "repetition", "test"], columns="phase", values="seconds", aggfunc="sum")
        .reindex(columns=["setup", "call", "teardown"])
        .fillna(0.0)
        .add_suffix("_s")
        .reset_index()
    )
    frame = totals.merge(phases, on=["run_id", "repetition", "test"], how="left")
    floor_tests = set(frame.loc[frame["variant"] == floor, "test"])
    frame = frame[frame["test"].isin(floor_tests)]
    columns = ["run_id", "variant", "block", "test", "category", "seconds", "setup_s", "call_s", "teardown_s"]
    return frame[columns].reset_index(drop=True)


def _paired(frame: pd.DataFrame, *, floor: str) -> pd.DataFrame:
    """One row per (architecture, test, block) with the floor's time of the same test and block."""
    floor_rows = frame[frame["variant"] == floor][
        ["run_id", "block", "test", "seconds", "setup_s", "call_s", "teardown_s"]
    ]
    floor_rows = floor_rows.rename(
        columns={
            "seconds": "floor_s",
            "setup_s": "floor_setup_s",
            "call_s": "floor_call_s",
            "teardown_s": "floor_teardown_s",
        }
    )
    arch = frame[frame["variant"] != floor].rename(columns={"variant": "architecture", "seconds": "time_s"})
    return arch.merge(floor_rows, on=["run_id", "block", "test"], how="inner")


def block_intervals(values: np.ndarray, *, alpha: float = 0.05) -> TInterval:
    """Means of one value per block and their t intervals over blocks, vectorised.

    Parameters
    ----------
    values : ndarray, shape (..., blocks)
        One value per block (the last axis); leading axes index independent data sets.
    alpha : float
        1 - confidence level.

    Returns
    -------
    TInterval
        ``estimate`` the mean over blocks, ``ci_low``, ``ci_high`` (each of shape (...)): t
        interval with blocks - 1 df (NaN bounds with fewer than two blocks).
    """
    values = np.asarray(values, dtype=float)
    blocks = values.shape[-1]
    mean = values.mean(axis=-1)
    se = values.std(axis=-1, ddof=1) / np.sqrt(blocks) if blocks > 1 else np.full(mean.shape, np.nan)
    return t_interval(mean, se, blocks - 1, confidence_level=1 - alpha)


def block_interval(values: np.ndarray, *, alpha: float = 0.05) -> TInterval:
    """`block_intervals` of one set of block values (NaN dropped), as floats."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return t_interval(np.nan, np.nan, 0)  # no block: no mean, no interval
    return block_intervals(values, alpha=alpha)


def overhead_tests(timings: pd.DataFrame, *, floor: str = FLOOR_LABEL, alpha: float = 0.05) -> pd.DataFrame:
    """Per test and architecture: mean time, floor time, overhead above the floor.

    Returns
    -------
    DataFrame
        architecture, test, category, n_blocks, time_s, floor_s, overhead_s (time_s - floor_s),
        overhead_ci_low_s, overhead_ci_high_s (paired t interval over blocks; NaN with one block),
        ratio_to_floor (time_s / floor_s).
    """
    paired = _paired(floor_data(timings, floor=floor), floor=floor)
    rows = []
    for (architecture, test), group in paired.groupby(["architecture", "test"], sort=True):
        overhead = block_interval((group["time_s"] - group["floor_s"]).to_numpy(), alpha=alpha)
        rows.append(
            {
                "architecture": architecture,
                "test": test,
                "category": group["category"].iloc[0],
                "n_blocks": len(group),
                "time_s": group["time_s"].mean(),
                "floor_s": group["floor_s"].mean(),
                "overhead_s": overhead.estimate,
                "overhead_ci_low_s": overhead.ci_low,
                "overhead_ci_high_s": overhead.ci_high,
                "ratio_to_floor": group["time_s"].mean() / group["floor_s"].mean(),
            }
        )
    return pd.DataFrame(rows)


def _complete_blocks(group: pd.DataFrame) -> pd.DataFrame:
    """The blocks in which every test of the group has its pair (a block missing one is dropped,
    so every block's value is over the same tests)."""
    tests = group["test"].nunique()
    per_block = group.groupby("block")["test"].nunique()
    return group[group["block"].isin(per_block[per_block == tests].index)]


def overhead_groups(
    timings: pd.DataFrame, *, by: str | None = "category", floor: str = FLOOR_LABEL, alpha: float = 0.05
) -> pd.DataFrame:
    """Per architecture and category (or overall with `by=None`): mean per-test overhead above the
    floor and the ratio to the floor, with t intervals over blocks (see the module docstring).

    Returns
    -------
    DataFrame
        architecture, category (`all` when by is None), n_tests, n_blocks, time_s, floor_s (mean
        per test), overhead_s, overhead_ci_low_s, overhead_ci_high_s, ratio_to_floor (summed
        time / summed floor time: geometric mean over blocks), ratio_ci_low, ratio_ci_high,
        overhead_share (overhead / time). NaN bounds with fewer than two complete blocks.
    """
    paired = _paired(floor_data(timings, floor=floor), floor=floor)
    if by is None:
        paired = paired.assign(category=ALL)
    rows = []
    for (architecture, category), group in paired.groupby(["architecture", "category"], sort=True):
        complete = _complete_blocks(group)
        blocks = complete.groupby("block")
        difference = blocks.apply(lambda b: float((b["time_s"] - b["floor_s"]).mean()), include_groups=False)
        log_ratio = blocks.apply(lambda b: float(np.log(b["time_s"].sum() / b["floor_s"].sum())), include_groups=False)
        overhead = block_interval(difference.to_numpy(), alpha=alpha)
        ratio = block_interval(log_ratio.to_numpy(), alpha=alpha)
        time_s, floor_s = float(complete["time_s"].mean()), float(complete["floor_s"].mean())
        rows.append(
            {
                "architecture": architecture,
                "category": category,
                "n_tests": group["test"].nunique(),
                "n_blocks": len(difference),
                "time_s": time_s,
                "floor_s": floor_s,
                "overhead_s": overhead.estimate,
                "overhead_ci_low_s": overhead.ci_low,
                "overhead_ci_high_s": overhead.ci_high,
                "ratio_to_floor": float(np.exp(ratio.estimate)),
                "ratio_ci_low": float(np.exp(ratio.ci_low)),
                "ratio_ci_high": float(np.exp(ratio.ci_high)),
                "overhead_share": overhead.estimate / time_s if time_s else float("nan"),
            }
        )
    return pd.DataFrame(rows)


def overhead_phases(timings: pd.DataFrame, *, floor: str = FLOOR_LABEL, alpha: float = 0.05) -> pd.DataFrame:
    """Where the overhead sits: per architecture and phase, mean per-test seconds of the
    architecture and of the floor (same tests and blocks) and their difference with a t interval
    over blocks.

    Returns
    -------
    DataFrame
        architecture, phase (setup, call, teardown), n_blocks, time_s, floor_s, overhead_s,
        overhead_ci_low_s, overhead_ci_high_s.
    """
    paired = _paired(floor_data(timings, floor=floor), floor=floor)
    rows = []
    for architecture, group in paired.groupby("architecture", sort=True):
        complete = _complete_blocks(group)
        for phase in ("setup", "call", "teardown"):
            difference = complete.groupby("block").apply(
                lambda b, phase=phase: float((b[f"{phase}_s"] - b[f"floor_{phase}_s"]).mean()), include_groups=False
            )
            overhead = block_interval(difference.to_numpy(), alpha=alpha)
            rows.append(
                {
                    "architecture": architecture,
                    "phase": phase,
                    "n_blocks": len(difference),
                    "time_s": float(complete[f"{phase}_s"].mean()),
                    "floor_s": float(complete[f"floor_{phase}_s"].mean()),
                    "overhead_s": overhead.estimate,
                    "overhead_ci_low_s": overhead.ci_low,
                    "overhead_ci_high_s": overhead.ci_high,
                }
            )
    return pd.DataFrame(rows)
