"""quiz_study.floor: the one-test-per-process schedule, the run it writes (fake processes), overhead
tables that recover a known overhead, and the coverage of their block intervals by seeded simulation at
the default size (the real suite's floor runs in tests/test_run_all.py's smoke study)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from quiz_study import floor, paths
from suitebench import runner
from suitebench.errors import BenchError
from suitebench.store import load_run

TESTS = ("test_a.py::test_one", "test_a.py::test_two", "test_b.py::test_three")
CATEGORY = {"test_a.py::test_one": "auth", "test_a.py::test_two": "auth", "test_b.py::test_three": "crud"}
FLOOR_S = {"test_a.py::test_one": 0.010, "test_a.py::test_two": 0.020, "test_b.py::test_three": 0.030}
OVERHEAD_S = {"baseline": 0.040, "transactional": 0.004}


class FakeProcess:
    """Runs the node id it is given: its time = floor + the architecture's overhead (+ noise)."""

    def __init__(self, *, extra_test: bool = False, seed: int = 0):
        self.rng = np.random.default_rng(seed)
        self.extra_test = extra_test
        self.targets: list[tuple[str, str]] = []

    def __call__(self, command, *, env, cwd, log_path, timeout_s):
        target = command[3].removeprefix(f"{paths.SUITE}/")
        arch = command[command.index("--arch") + 1]
        switches = [command[i + 1] for i, arg in enumerate(command) if arg == "--switch"]
        label = arch + ("+" + ",".join(switches) if switches else "")
        self.targets.append((label, target))
        seconds = FLOOR_S[target] + OVERHEAD_S.get(label, 0.0) + self.rng.normal(0, 0.0005)
        raw = Path(next(arg for arg in command if arg.startswith("--suitebench-timings=")).split("=", 1)[1])
        nodes = [target] + (["test_b.py::test_extra"] if self.extra_test else [])
        with open(raw / "1-main.jsonl", "w") as handle:
            for node in nodes:
                phases = {
                    "setup": {"duration_ns": int(seconds * 0.5e9), "counters": {}},
                    "call": {"duration_ns": int(seconds * 0.5e9), "counters": {}},
                }
                record = {
                    "schema_version": 1,
                    "kind": "test",
                    "nodeid": node,
                    "category": CATEGORY.get(node, "crud"),
                    "outcome": "passed",
                    "phases": phases,
                }
                handle.write(json.dumps(record) + "\n")
        log_path.write_text("fake\n")
        return runner.ProcessOutcome(exit_code=0, wall_s=2.0 + seconds, timed_out=False)


def fake_floor(tmp_path: Path, **options) -> floor.FloorRunResult:
    options.setdefault("executor", FakeProcess())
    return floor.measure_floor(tests=TESTS, repetitions=3, output_dir=tmp_path, run_id="floor", seed=1, **options)


def test_plan_runs_every_test_and_variant_once_per_block_with_a_tests_variants_together():
    planned = runner.plan_schedule(
        targets=TESTS, variants=["a", "b", "c"], repetitions=2, warmup=0, schedule="random", seed=5
    )
    assert len(planned) == 18
    assert [p.repetition for p in planned] == list(range(18))
    for block in (0, 1):
        entries = [p for p in planned if p.block == block]
        assert sorted((p.target, p.variant) for p in entries) == sorted((t, v) for t in TESTS for v in "abc")
        targets = [p.target for p in entries]
        assert all(len(set(targets[i : i + 3])) == 1 for i in range(0, 9, 3))
    again = runner.plan_schedule(
        targets=TESTS, variants=["a", "b", "c"], repetitions=2, warmup=0, schedule="random", seed=5
    )
    assert planned == again


def test_floor_needs_tests_and_repetitions(tmp_path):
    with pytest.raises(BenchError, match="no tests"):
        floor.measure_floor(tests=[], output_dir=tmp_path, executor=FakeProcess())
    with pytest.raises(BenchError, match="positive"):
        floor.measure_floor(tests=TESTS, repetitions=0, output_dir=tmp_path, executor=FakeProcess())


def test_an_interrupted_floor_run_resumes(tmp_path):
    calls = []

    def interrupt_fifth(command, **options):
        if len(calls) == 4:
            raise KeyboardInterrupt
        calls.append(command)
        return FakeProcess()(command, **options)

    with pytest.raises(runner.RunInterrupted, match="after 4 of 27"):
        fake_floor(tmp_path, executor=interrupt_fifth)
    result = floor.measure_floor(tests=(), output_dir=tmp_path, run_id="floor", resume=True, executor=FakeProcess())
    assert result.status == "complete" and result.planned_processes == 27 and result.invalid_processes == 0
    assert load_run(result.run_dir).repetitions["repetition"].tolist() == list(range(27))


def test_measure_floor_writes_a_run_that_loads_like_any_other(tmp_path):
    executor = FakeProcess()
    result = fake_floor(tmp_path, executor=executor)
    assert result.planned_processes == 27 and result.invalid_processes == 0
    assert all(target in TESTS for _, target in executor.targets)
    run = load_run(result.run_dir)
    assert run.metadata["status"] == "complete" and run.metadata["kind"] == "floor"
    assert {entry["target"] for entry in run.metadata["schedule"]} == set(TESTS)
    assert set(run.repetitions["variant"]) == {"baseline", "transactional", floor.FLOOR_LABEL}
    assert (run.repetitions["n_tests"] == 1).all()
    assert run.metadata["caveat"] == floor.CAVEAT


def test_a_process_that_ran_more_than_one_test_is_invalid(tmp_path):
    result = fake_floor(tmp_path, executor=FakeProcess(extra_test=True))
    assert result.invalid_processes == 27
    reasons = load_run(result.run_dir).repetitions["invalid_reason"]
    assert reasons.str.contains("expected exactly 1").all()


def test_the_floor_variant_is_required(tmp_path):
    with pytest.raises(BenchError, match="floor variant"):
        floor.measure_floor(
            tests=TESTS, variants=["baseline", "transactional"], output_dir=tmp_path, executor=FakeProcess()
        )


@pytest.fixture(scope="module")
def fake_run(tmp_path_factory):
    return load_run(fake_floor(tmp_path_factory.mktemp("floor")).run_dir)


def test_overhead_tables_recover_the_known_overhead(fake_run):
    run = fake_run
    tests = floor.overhead_tests(run.timings).set_index(["architecture", "test"])
    for (architecture, test), row in tests.iterrows():
        assert row["n_blocks"] == 3
        assert row["overhead_ci_low_s"] <= OVERHEAD_S[architecture] <= row["overhead_ci_high_s"]
        assert row["ratio_to_floor"] == pytest.approx(
            (FLOOR_S[test] + OVERHEAD_S[architecture]) / FLOOR_S[test], rel=0.1
        )
    categories = floor.overhead_groups(run.timings).set_index(["architecture", "category"])
    auth = categories.loc[("baseline", "auth")]
    assert auth["n_tests"] == 2 and auth["n_blocks"] == 3
    assert auth["overhead_s"] == pytest.approx(OVERHEAD_S["baseline"], abs=0.001)
    assert auth["overhead_ci_low_s"] <= OVERHEAD_S["baseline"] <= auth["overhead_ci_high_s"]
    crud = categories.loc[("baseline", "crud")]  # one test: still an interval over its 3 blocks
    assert crud["overhead_ci_low_s"] <= OVERHEAD_S["baseline"] <= crud["overhead_ci_high_s"]
    overall = floor.overhead_groups(run.timings, by=None).set_index("architecture")
    expected_ratio = (sum(FLOOR_S.values()) + 3 * OVERHEAD_S["transactional"]) / sum(FLOOR_S.values())
    assert overall.loc["transactional", "ratio_to_floor"] == pytest.approx(expected_ratio, rel=0.02)
    assert overall.loc["transactional", "ratio_ci_low"] <= overall.loc["transactional", "ratio_to_floor"]
    assert set(overall["category"]) == {floor.ALL}
    phases = floor.overhead_phases(run.timings).set_index(["architecture", "phase"])
    assert phases.loc[("baseline", "setup"), "overhead_s"] == pytest.approx(OVERHEAD_S["baseline"] / 2, abs=0.001)
    assert phases.loc[("baseline", "setup"), "overhead_ci_low_s"] <= OVERHEAD_S["baseline"] / 2


def test_a_block_missing_a_test_is_left_out_of_its_group(fake_run):
    timings = fake_run.timings
    gone = (timings["block"] == 1) & (timings["test"] == "test_a.py::test_one") & (timings["variant"] == "baseline")
    groups = floor.overhead_groups(timings[~gone]).set_index(["architecture", "category"])
    assert groups.loc[("baseline", "auth"), "n_blocks"] == 2
    assert groups.loc[("transactional", "auth"), "n_blocks"] == 3


def test_block_intervals_cover_at_the_default_size():
    """Seeded simulation of the standard floor (one test per category, 3 blocks): per test,
    floor and architecture share a block effect (drift) and differ by the overhead plus noise;
    the category's interval (one test) and the overall one (7 tests) over blocks cover, for the
    mean difference and for the log of the summed-time ratio."""
    from quiz_study import why

    plan = why.why_plan("standard")
    rng = np.random.default_rng(11)
    sims, tests, blocks = 4000, 7, plan.floor_repetitions
    floor_s = np.exp(rng.normal(np.log(0.03), 0.8, tests))
    overhead = rng.normal(0.002, 0.003, tests)
    drift = np.exp(rng.normal(0, 0.15, (sims, 1, blocks)))
    floor_times = floor_s[None, :, None] * drift * np.exp(rng.normal(0, 0.1, (sims, tests, blocks)))
    arch_times = (floor_s + overhead)[None, :, None] * drift * np.exp(rng.normal(0, 0.1, (sims, tests, blocks)))
    # one category = one test
    interval = floor.block_intervals(arch_times[:, 0, :] - floor_times[:, 0, :])
    truth = (floor_s[0] + overhead[0]) * np.exp(0.005) * np.exp(0.15**2 / 2) - floor_s[0] * np.exp(0.005) * np.exp(
        0.15**2 / 2
    )
    assert 0.93 < ((interval.ci_low <= truth) & (truth <= interval.ci_high)).mean() < 0.97
    # overall: block means of the tests' differences
    interval = floor.block_intervals((arch_times - floor_times).mean(axis=1))
    truth = overhead.mean() * np.exp(0.005 + 0.15**2 / 2)
    assert 0.93 < ((interval.ci_low <= truth) & (truth <= interval.ci_high)).mean() < 0.97
    # ratio to the floor: log of the summed times per block
    ratio = np.log(arch_times.sum(axis=1) / floor_times.sum(axis=1))
    interval = floor.block_intervals(ratio)
    truth = np.log((floor_s + overhead).sum() / floor_s.sum())
    assert 0.92 < ((interval.ci_low <= truth) & (truth <= interval.ci_high)).mean() < 0.98


def test_sample_tests_takes_per_category_in_collection_order():
    tests = pd.DataFrame({"test": list(TESTS), "category": [CATEGORY[t] for t in TESTS]})
    sample = floor.sample_tests(tests, per_category=1, seed=0)
    assert len(sample) == 2 and sample[-1] == "test_b.py::test_three"
    assert floor.sample_tests(tests, per_category=None, seed=0) == list(TESTS)
