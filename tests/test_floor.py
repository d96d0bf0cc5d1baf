"""quiz_study.floor: the one-test-per-process schedule, the run it writes, overhead tables that
recover a known overhead, and a real smoke floor measurement on the suite under study."""

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


def test_overhead_tables_recover_the_known_overhead(tmp_path):
    run = load_run(fake_floor(tmp_path).run_dir)
    tests = floor.overhead_tests(run.timings).set_index(["architecture", "test"])
    for (architecture, test), row in tests.iterrows():
        assert row["n_blocks"] == 3
        assert row["overhead_ci_low_s"] <= OVERHEAD_S[architecture] <= row["overhead_ci_high_s"]
        assert row["ratio_to_floor"] == pytest.approx(
            (FLOOR_S[test] + OVERHEAD_S[architecture]) / FLOOR_S[test], rel=0.1
        )
    categories = floor.overhead_groups(run.timings, resamples=500).set_index(["architecture", "category"])
    auth = categories.loc[("baseline", "auth")]
    assert auth["n_tests"] == 2
    assert auth["overhead_s"] == pytest.approx(OVERHEAD_S["baseline"], abs=0.001)
    assert auth["overhead_ci_low_s"] <= OVERHEAD_S["baseline"] <= auth["overhead_ci_high_s"]
    assert np.isnan(categories.loc[("baseline", "crud"), "ratio_ci_low"])  # one test: no interval
    overall = floor.overhead_groups(run.timings, by=None, resamples=500).set_index("architecture")
    expected_ratio = (sum(FLOOR_S.values()) + 3 * OVERHEAD_S["transactional"]) / sum(FLOOR_S.values())
    assert overall.loc["transactional", "ratio_to_floor"] == pytest.approx(expected_ratio, rel=0.02)
    assert overall.loc["transactional", "ratio_ci_low"] <= overall.loc["transactional", "ratio_to_floor"]
    assert set(overall["category"]) == {floor.ALL}
    phases = floor.overhead_phases(run.timings).set_index(["architecture", "phase"])
    assert phases.loc[("baseline", "setup"), "overhead_s"] == pytest.approx(OVERHEAD_S["baseline"] / 2, abs=0.001)


def test_sample_tests_takes_per_category_in_collection_order():
    tests = pd.DataFrame({"test": list(TESTS), "category": [CATEGORY[t] for t in TESTS]})
    sample = floor.sample_tests(tests, per_category=1, seed=0)
    assert len(sample) == 2 and sample[-1] == "test_b.py::test_three"
    assert floor.sample_tests(tests, per_category=None, seed=0) == list(TESTS)


def test_collect_tests_reads_node_ids_and_categories_from_a_child_process(tmp_path):
    suite = tmp_path / "tiny"
    suite.mkdir()
    (suite / "test_tiny.py").write_text(
        "import pytest\n\n@pytest.mark.crud\ndef test_kept():\n    pass\n\ndef test_other():\n    pass\n"
    )
    (suite / "conftest.py").write_text(
        "def pytest_configure(config):\n    config.addinivalue_line('markers', 'crud: category')\n"
    )
    (suite / "pytest.ini").write_text("[pytest]\nsuitebench_categories = crud auth\n")
    collected = floor.collect_tests(suite_path=suite)
    assert [name.split("::")[-1] for name in collected["test"]] == ["test_kept", "test_other"]
    assert list(collected["category"]) == ["crud", "uncategorized"]
    with pytest.raises(BenchError, match="collecting"):
        floor.collect_tests(suite_path=tmp_path / "missing")


def test_smoke_floor_runs_on_the_real_suite(tmp_path):
    """baseline, transactional and the floor on one real test, one fresh process each."""
    result = floor.measure_floor(
        tests=["test_auth.py::test_login_returns_bearer_token"],
        repetitions=1,
        output_dir=tmp_path,
        run_id="smoke-floor",
        seed=0,
    )
    assert result.invalid_processes == 0, load_run(result.run_dir).repetitions["invalid_reason"].tolist()
    run = load_run(result.run_dir)
    tests = floor.overhead_tests(run.timings)
    assert set(tests["architecture"]) == {"baseline", "transactional"}
    assert (tests["floor_s"] > 0).all()
    overall = floor.overhead_groups(run.timings, by=None)
    assert np.isfinite(overall["ratio_to_floor"]).all()
