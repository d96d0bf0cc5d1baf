"""suitebench.runner: interleaved fresh-process repetitions, validity, and runs that survive interruption.

End-to-end tests run tiny synthetic suites (written into tmp_path, doing a little real work)
in real pytest processes; the bookkeeping tests (interrupt, resume, schedules) use a fake
executor that writes plugin records without starting a process.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd
import pytest

from suitebench import runner, store
from suitebench.errors import BenchError
from suitebench.runner import ProcessOutcome, Variant

CONFTEST = """\
import json, os

SEEN = {seen!r}

def pytest_addoption(parser):
    parser.addoption("--arch", default="transactional")
    parser.addoption("--switch", action="append", default=[])

def pytest_configure(config):
    with open(SEEN, "a") as handle:
        handle.write(json.dumps({{
            "arch": config.getoption("--arch"),
            "switch": config.getoption("--switch"),
            "quiz_env": sorted(name for name in os.environ if name.startswith("QUIZ_")),
            "hash_seed": os.environ.get("PYTHONHASHSEED"),
        }}) + "\\n")
"""

TESTS = """\
def test_sums():
    assert sum(range(1000)) == 499500

def test_sorts():
    assert sorted(str(i) for i in range(200))[:2] == ["0", "1"]
"""

FAILS_ON_BASELINE = """\
def test_refuses_baseline(request):
    assert request.config.getoption("--arch") != "baseline"
"""


# Third-party plugins the synthetic suites do not need; blocking them keeps each process short.
FAST = ["-p", "no:hypothesispytest", "-p", "no:benchmark", "-p", "no:anyio"]


def write_suite(directory: Path, *, failing: bool = False) -> Path:
    suite = directory / "suite"
    suite.mkdir()
    (suite / "conftest.py").write_text(CONFTEST.format(seen=str(directory / "seen.jsonl")))
    (suite / "test_work.py").write_text(TESTS)
    if failing:
        (suite / "test_fails.py").write_text(FAILS_ON_BASELINE)
    return suite


def seen(directory: Path) -> list[dict]:
    return [json.loads(line) for line in (directory / "seen.jsonl").read_text().splitlines()]


class FakeExecutor:
    """Stands in for a pytest process: writes two passing test records, remembers the command,
    and raises KeyboardInterrupt on call number `interrupt_on` (1-based) before doing anything."""

    def __init__(self, *, interrupt_on: int | None = None, outcome: str = "passed", timed_out: bool = False):
        self.calls: list[list[str]] = []
        self.interrupt_on = interrupt_on
        self.outcome = outcome
        self.timed_out = timed_out

    def __call__(self, command, *, env, cwd, log_path, timeout_s):
        if self.interrupt_on is not None and len(self.calls) + 1 == self.interrupt_on:
            raise KeyboardInterrupt
        self.calls.append(list(command))
        raw = Path(next(arg for arg in command if arg.startswith("--suitebench-timings=")).split("=", 1)[1])
        phase = {"duration_ns": 1000, "counters": {"sql_statements": 1}}
        with open(raw / "1-main.jsonl", "w") as handle:
            for name in ("test_a", "test_b"):
                record = {
                    "schema_version": 1,
                    "kind": "test",
                    "nodeid": f"t.py::{name}",
                    "category": "crud",
                    "outcome": self.outcome,
                    "phases": {"setup": phase, "call": phase, "teardown": phase},
                }
                handle.write(json.dumps(record) + "\n")
        log_path.write_text("fake\n")
        exit_code = -9 if self.timed_out else (0 if self.outcome == "passed" else 1)
        return ProcessOutcome(exit_code=exit_code, wall_s=0.01, timed_out=self.timed_out)

    def arches(self) -> list[str]:
        return [command[command.index("--arch") + 1] for command in self.calls]


def as_variants(*labels: str) -> list[Variant]:
    """Variants of the synthetic suites, which take `--arch NAME [--switch name=value ...]`:
    `"transactional+storage=disk"` -> `--arch transactional --switch storage=disk`."""
    variants = []
    for label in labels:
        arch, _, rest = label.partition("+")
        switches = [a for part in filter(None, rest.split(",")) for a in ("--switch", part)]
        variants.append(Variant(label=label, pytest_args=("--arch", arch, *switches)))
    return variants


def fake_run(tmp_path: Path, **options):
    options.setdefault("variants", as_variants("baseline", "transactional"))
    options.setdefault("repetitions", 2)
    options.setdefault("warmup", 1)
    options.setdefault("run_id", "r1")
    options.setdefault("executor", FakeExecutor())
    return runner.run_benchmark(output_dir=tmp_path / "runs", suite_path=tmp_path, progress=False, **options)


# ---------------------------------------------------------------- end to end, real processes


def test_interleaved_run_records_schedule_and_runs_it_in_order(tmp_path):
    suite = write_suite(tmp_path)
    result = runner.run_benchmark(
        variants=as_variants("baseline", "transactional+storage=disk"),
        repetitions=1,
        warmup=1,
        output_dir=tmp_path / "runs",
        run_id="abab",
        suite_path=suite,
        extra_pytest_args=FAST,
        progress=False,
        environ={"PATH": "/usr/bin:/bin", "QUIZ_ARCH": "baseline", "QUIZ_SWITCHES": "storage=memory"},
    )

    assert result.status == "complete"
    assert (result.completed_repetitions, result.executed_repetitions, result.invalid_measured_repetitions) == (4, 4, 0)
    run = store.load_run(result.run_dir)
    labels = ["baseline", "transactional+storage=disk"]
    planned = run.metadata["schedule"]
    assert [entry["variant"] for entry in planned] == labels * 2
    assert [entry["warmup"] for entry in planned] == [True, True, False, False]
    assert [(entry["block"], entry["order"]) for entry in planned] == [(0, 0), (0, 1), (1, 0), (1, 1)]

    repetitions = run.repetitions
    assert repetitions["variant"].tolist() == labels * 2
    assert repetitions["warmup"].tolist() == [True, True, False, False]
    assert repetitions["valid"].all() and (repetitions["exit_code"] == 0).all()
    assert (repetitions["n_tests"] == 2).all() and (repetitions["wall_s"] > 0).all()
    assert run.measured_repetitions["repetition"].tolist() == [2, 3]

    # What each process actually received, in execution order: the schedule, and nothing inherited.
    processes = seen(tmp_path)
    assert [(p["arch"], p["switch"]) for p in processes] == [("baseline", []), ("transactional", ["storage=disk"])] * 2
    assert all(p["quiz_env"] == [] and p["hash_seed"] == "0" for p in processes)

    totals = run.timings[run.timings["phase"] == "total"]
    assert sorted(set(totals["repetition"])) == list(range(4))
    assert totals.groupby("repetition").size().eq(2).all()
    assert totals["warmup"].tolist() == [True] * 4 + [False] * 4
    assert (raw := result.run_dir / "raw" / "rep-0003" / "pytest.log").exists() and "passed" in raw.read_text()


def test_failing_test_invalidates_its_repetition_but_keeps_the_data(tmp_path):
    suite = write_suite(tmp_path, failing=True)
    result = runner.run_benchmark(
        variants=as_variants("baseline", "transactional"),
        repetitions=1,
        warmup=0,
        output_dir=tmp_path / "runs",
        run_id="fails",
        suite_path=suite,
        extra_pytest_args=FAST,
        progress=False,
    )

    run = store.load_run(result.run_dir)
    baseline, transactional = (run.repetitions.set_index("variant").loc[v] for v in ("baseline", "transactional"))
    assert not baseline["valid"] and baseline["exit_code"] == 1 and baseline["n_failed"] == 1
    assert "1 test(s) failed or errored" in baseline["invalid_reason"]
    assert transactional["valid"] and transactional["invalid_reason"] == ""
    assert result.invalid_measured_repetitions == 1
    kept = run.timings[run.timings["variant"] == "baseline"]
    assert len(kept) > 0 and not kept["valid"].any()
    assert set(kept.loc[kept["phase"] == "total", "outcome"]) == {"passed", "failed"}


def test_interrupted_run_resumes_without_losing_or_repeating_repetitions(tmp_path):
    suite = write_suite(tmp_path)
    calls = []

    def interrupt_second(command, **options):
        if len(calls) == 1:
            raise KeyboardInterrupt
        calls.append(command)
        return runner.execute_process(command, **options)

    options = dict(output_dir=tmp_path / "runs", run_id="cut", suite_path=suite, extra_pytest_args=FAST, progress=False)
    with pytest.raises(runner.RunInterrupted, match=r"after 1 of 2 repetitions.*--resume cut"):
        runner.run_benchmark(
            variants=as_variants("baseline", "transactional"),
            repetitions=1,
            warmup=0,
            executor=interrupt_second,
            **options,
        )

    run_dir = tmp_path / "runs" / "cut"
    assert store.read_metadata(run_dir)["status"] == "interrupted"
    assert store.load_run(run_dir).repetitions["repetition"].tolist() == [0]

    result = runner.run_benchmark(resume=True, **options)
    assert (result.status, result.executed_repetitions, result.completed_repetitions) == ("complete", 1, 2)
    run = store.load_run(run_dir)
    assert run.repetitions["repetition"].tolist() == [0, 1]
    assert run.repetitions["variant"].tolist() == ["baseline", "transactional"]
    assert run.timings[run.timings["phase"] == "total"].groupby("repetition").size().eq(2).all()
    assert [p["arch"] for p in seen(tmp_path)] == ["baseline", "transactional"]


def test_execute_process_kills_a_process_that_exceeds_the_timeout(tmp_path):
    outcome = runner.execute_process(
        [sys.executable, "-c", "import threading; threading.Event().wait()"],
        env=runner.child_environment(),
        cwd=tmp_path,
        log_path=tmp_path / "log",
        timeout_s=0.3,
    )
    assert outcome.timed_out and outcome.exit_code != 0 and outcome.wall_s >= 0.3


# ---------------------------------------------------------------- bookkeeping, fake processes


def test_random_schedule_is_seeded_recorded_and_followed(tmp_path):
    executor = FakeExecutor()
    variants = ["baseline", "transactional", "transactional+storage=disk"]
    result = fake_run(
        tmp_path, variants=as_variants(*variants), repetitions=6, warmup=0, schedule="random", seed=7, executor=executor
    )

    metadata = store.read_metadata(result.run_dir)
    assert (metadata["seed"], metadata["schedule_kind"]) == (7, "random")
    planned = [entry["variant"] for entry in metadata["schedule"]]
    blocks = [planned[i : i + 3] for i in range(0, len(planned), 3)]
    assert all(sorted(block) == sorted(variants) for block in blocks)
    assert len({tuple(block) for block in blocks}) > 1
    again = runner.plan_schedule(variants=variants, repetitions=6, warmup=0, schedule="random", seed=7)
    assert [entry.variant for entry in again] == planned

    executed = pd.read_csv(result.run_dir / store.REPETITIONS_FILE)["variant"].tolist()
    assert executed == planned
    expected_arch = [variant.split("+")[0] for variant in planned]
    assert executor.arches() == expected_arch


def test_random_schedule_without_seed_records_the_seed_it_drew(tmp_path):
    result = fake_run(tmp_path, schedule="random")
    metadata = store.read_metadata(result.run_dir)
    assert isinstance(metadata["seed"], int)
    replanned = runner.plan_schedule(
        variants=["baseline", "transactional"], repetitions=2, warmup=1, schedule="random", seed=metadata["seed"]
    )
    assert [e.to_dict() for e in replanned] == metadata["schedule"]


def test_schedule_is_stored_before_the_first_repetition_runs(tmp_path):
    stored = []

    def look_then_interrupt(command, **options):
        stored.append(store.read_metadata(tmp_path / "runs" / "r1"))
        raise KeyboardInterrupt

    with pytest.raises(runner.RunInterrupted, match="after 0 of 6"):
        fake_run(tmp_path, executor=look_then_interrupt)
    assert len(stored[0]["schedule"]) == 6 and stored[0]["status"] == "running"
    assert stored[0]["arguments"]["repetitions"] == 2


def test_resume_discards_a_partially_written_repetition_and_reruns_it(tmp_path):
    with pytest.raises(runner.RunInterrupted, match="after 3 of 6"):
        fake_run(tmp_path, executor=FakeExecutor(interrupt_on=4))
    run_dir = tmp_path / "runs" / "r1"
    # A kill in the middle of repetition 3: raw files, some timing rows, half a repetition row.
    partial_raw = store.raw_dir(run_dir, 3)
    partial_raw.mkdir(parents=True, exist_ok=True)
    (partial_raw / "stale.jsonl").write_text('{"schema_version": 1, "kind": "te')
    timings = pd.read_csv(run_dir / store.TIMINGS_FILE)
    orphan = timings[timings["repetition"] == 2].assign(repetition=3, variant="transactional", order=1)
    store.append_frame(run_dir / store.TIMINGS_FILE, orphan, columns=store.TIMING_COLUMNS)
    with open(run_dir / store.TIMINGS_FILE, "a") as handle:
        handle.write("r1,3,1,1,transactional,False,True,t.py::te")
    with open(run_dir / store.REPETITIONS_FILE, "a") as handle:
        handle.write("r1,3,1,1,transactional,False,True,,0,0.0")

    executor = FakeExecutor()
    result = fake_run(
        tmp_path, resume=True, run_id="r1", variants=None, repetitions=None, warmup=None, executor=executor
    )

    assert result.executed_repetitions == 3 and executor.arches() == ["transactional", "baseline", "transactional"]
    repetitions = pd.read_csv(run_dir / store.REPETITIONS_FILE)
    assert repetitions["repetition"].tolist() == list(range(6))
    timings = pd.read_csv(run_dir / store.TIMINGS_FILE)
    assert timings.groupby("repetition").size().eq(2 * 4).all() and sorted(set(timings["repetition"])) == list(range(6))
    assert not (partial_raw / "stale.jsonl").exists() and (partial_raw / "1-main.jsonl").exists()
    metadata = store.read_metadata(run_dir)
    assert metadata["status"] == "complete" and len(metadata["resumed_at"]) == 1


def test_resume_of_a_complete_run_runs_nothing(tmp_path):
    fake_run(tmp_path)
    executor = FakeExecutor()
    result = fake_run(tmp_path, resume=True, variants=None, repetitions=None, warmup=None, executor=executor)
    assert executor.calls == [] and result.completed_repetitions == 6


def test_resume_with_conflicting_settings_is_refused(tmp_path):
    with pytest.raises(runner.RunInterrupted):
        fake_run(tmp_path, executor=FakeExecutor(interrupt_on=2))
    with pytest.raises(BenchError, match=r"cannot resume run 'r1' with different settings: repetitions=5"):
        fake_run(tmp_path, resume=True, variants=None, repetitions=5, warmup=None)
    with pytest.raises(BenchError, match="different settings: variants="):
        fake_run(tmp_path, resume=True, variants=as_variants("transactional"), repetitions=None, warmup=None)
    # The same settings given again are not a conflict.
    result = fake_run(tmp_path, resume=True)
    assert result.completed_repetitions == 6


def test_resume_of_a_missing_run_is_refused(tmp_path):
    with pytest.raises(BenchError, match="cannot resume: no run 'nope'"):
        fake_run(tmp_path, resume=True, run_id="nope")


def test_existing_run_id_is_not_overwritten(tmp_path):
    fake_run(tmp_path)
    with pytest.raises(BenchError, match="already exists.*--resume r1"):
        fake_run(tmp_path)


def test_failed_outcomes_timeouts_and_missing_records_invalidate(tmp_path):
    failed = fake_run(tmp_path, run_id="failed", executor=FakeExecutor(outcome="error"))
    timed_out = fake_run(tmp_path, run_id="slow", executor=FakeExecutor(timed_out=True), timeout_s=5)

    def silent(command, *, log_path, **options):
        return ProcessOutcome(exit_code=5, wall_s=0.01, timed_out=False)

    empty = fake_run(tmp_path, run_id="empty", executor=silent)

    reasons = {
        r.run_id: set(pd.read_csv(r.run_dir / store.REPETITIONS_FILE)["invalid_reason"])
        for r in (failed, timed_out, empty)
    }
    assert reasons["failed"] == {"exit code 1 (tests failed); 2 test(s) failed or errored"}
    assert reasons["slow"] == {"timed out after 5 s"}
    assert reasons["empty"] == {"exit code 5 (no tests collected); no timing records"}
    assert failed.invalid_measured_repetitions == timed_out.invalid_measured_repetitions == 4
    assert not (tmp_path / "runs" / "empty" / store.TIMINGS_FILE).exists()


def test_command_has_fresh_process_options_selection_and_variant_args(tmp_path):
    executor = FakeExecutor()
    fake_run(
        tmp_path,
        variants=as_variants("baseline+storage=memory"),
        repetitions=1,
        warmup=0,
        executor=executor,
        selection={"keyword": "login and not slow", "marker": "crud"},
        extra_pytest_args=["-x"],
    )
    command = executor.calls[0]
    assert command[:4] == [sys.executable, "-m", "pytest", str(tmp_path)]
    text = " ".join(command)
    assert "-p no:cacheprovider -q --arch baseline --switch storage=memory" in text
    assert command[command.index("-k") + 1] == "login and not slow"
    assert command[command.index("-m", 4) + 1] == "crud"
    assert command[-1] == "-x"
    assert any(arg.endswith("raw/rep-0000") and arg.startswith("--suitebench-timings=") for arg in command)


def test_child_environment_is_explicit():
    env = runner.child_environment(
        environ={
            "PATH": "/bin",
            "HOME": "/h",
            "LC_ALL": "C",
            "QUIZ_ARCH": "baseline",
            "PYTEST_ADDOPTS": "-x",
            "PYTHONPATH": "/elsewhere",
        }
    )
    assert env == {"PATH": "/bin", "HOME": "/h", "LC_ALL": "C", "PYTHONHASHSEED": "0"}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"variants": []}, "no variants to run"),
        ({"variants": as_variants("baseline", "baseline")}, "given more than once"),
        ({"variants": lambda: [Variant(label="plain"), Variant(label=" ")]}, "non-empty label"),
        ({"repetitions": 0}, "repetitions must be a positive integer"),
        ({"warmup": -1}, "warmup must be a non-negative integer"),
        ({"schedule": "zigzag"}, "unknown schedule 'zigzag'"),
        ({"selection": {"keywords": "x"}}, "unknown selection key"),
        ({"run_id": "../escape"}, "bad run id"),
        ({"timeout_s": 0}, "timeout must be positive"),
    ],
)
def test_bad_arguments_raise_one_clear_error(tmp_path, options, message):
    with pytest.raises(BenchError, match=message):
        fake_run(tmp_path, **{key: value() if callable(value) else value for key, value in options.items()})
    assert not (tmp_path / "runs").exists()


def test_unwritable_output_directory_is_a_clear_error(tmp_path):
    (tmp_path / "a-file").write_text("")
    with pytest.raises(BenchError, match="output directory .* is not writable"):
        runner.run_benchmark(
            output_dir=tmp_path / "a-file" / "runs", suite_path=tmp_path, variants=as_variants("a"), progress=False
        )


def test_missing_suite_is_a_clear_error(tmp_path):
    with pytest.raises(BenchError, match="suite not found"):
        runner.run_benchmark(
            output_dir=tmp_path / "runs", suite_path=tmp_path / "absent", variants=as_variants("a"), progress=False
        )


def test_format_run_result_reports_medians_and_invalid_count(tmp_path):
    result = fake_run(tmp_path, executor=FakeExecutor(outcome="failed"))
    lines = runner.format_run_result(result)
    assert lines[0].startswith("run r1: complete, 6/6 repetitions")
    assert "4 measured repetition(s) invalid" in lines[-1]
