"""quiz_study.environments and quiz_study.sections: the PostgreSQL and parallel study recorded with a fake
suite whose times are known must give those speedups back; the report's sections find the runs
beside the main run, and say so when they are missing."""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import pytest
from fake_processes import FakeProcesses

from quiz_study import environments, pipeline, sections
from quiz_study import variants as study_variants
from quiz_study.profiles import get_profile
from suitebench import runner
from suitebench.errors import BenchError

# Per-test seconds of each storage / isolation under each wiring (the truth the tables must return).
TEST_SECONDS = {
    ("disk", "recreate"): 0.30,
    ("memory", "rollback"): 0.05,
    ("postgres", "recreate"): 0.40,
    ("postgres", "rollback"): 0.06,
    ("postgres", "truncate"): 0.12,
    ("postgres", "template"): 0.80,
}


def _seconds(rng: np.random.Generator, switches, test_index: int, workers: int) -> float:
    base = TEST_SECONDS[(switches.storage, switches.isolation)]
    # own wiring costs 20 % more on the strategies both wirings run
    if switches.session_wiring == "own" and switches.isolation != "recreate":
        base *= 1.2
    return base * (1 + 0.1 * test_index) * float(np.exp(rng.normal(0, 0.02)))


@pytest.fixture(scope="module")
def environment_run(tmp_path_factory):
    rng = np.random.default_rng(0)
    fake = FakeProcesses(functools.partial(_seconds, rng))
    output = tmp_path_factory.mktemp("runs")
    (output / "main").mkdir()
    result = environments.run_environment_study(
        size="standard",
        output_dir=output,
        run_id=sections.environment_run_id("main"),
        runner=functools.partial(study_variants.run_benchmark, executor=fake),
    )
    return output, result


def test_plans_measure_every_strategy_and_both_worker_counts():
    plan = environments.environment_plan("full")
    variants = plan.variants()
    assert plan.selection == {} and plan.repetitions >= 4
    for preset, strategies in environments.STRATEGIES.items():
        for strategy in strategies:
            assert environments.postgres_variant(preset, strategy) in variants
    assert {
        "baseline",
        "transactional",
        "baseline@n=2",
        "transactional@n=2",
        "baseline+storage=postgres@n=2",
        "transactional+storage=postgres@n=2",
    } <= set(variants)
    # rollback cannot run with the baseline's own sessions (the harness refuses it)
    assert "baseline+storage=postgres,isolation=rollback" not in variants
    assert environments.environment_plan("smoke", sections=["parallel"]).variants() == [
        "baseline",
        "transactional",
        "baseline@n=2",
        "transactional@n=2",
    ]
    with pytest.raises(BenchError, match="unknown environment section"):
        environments.environment_plan("smoke", sections=["gpu"])
    with pytest.raises(BenchError, match="unknown size"):
        environments.environment_plan("huge")


def test_postgres_strategies_recover_the_known_speedups(environment_run):
    output, result = environment_run
    assert result.status == "complete"
    tables = environments.environment_tables(result.run_dir)
    strategies = tables["postgres_strategies"].set_index(["wiring_of", "isolation"])
    assert len(strategies) == 7
    pg_baseline = TEST_SECONDS[("postgres", "recreate")]
    expected = {
        ("transactional", "rollback"): pg_baseline / TEST_SECONDS[("postgres", "rollback")],
        ("transactional", "truncate"): pg_baseline / TEST_SECONDS[("postgres", "truncate")],
        ("baseline", "truncate"): pg_baseline / (1.2 * TEST_SECONDS[("postgres", "truncate")]),
        ("baseline", "template"): pg_baseline / (1.2 * TEST_SECONDS[("postgres", "template")]),
    }
    for key, speedup in expected.items():
        row = strategies.loc[key]
        assert row["speedup_vs_pg_baseline"] == pytest.approx(speedup, rel=0.05), key
        assert row["speedup_ci_low"] <= row["speedup_vs_pg_baseline"] <= row["speedup_ci_high"]
    # median test time: the median of the two fake tests (1.0x and 1.1x the base)
    assert strategies.loc[("transactional", "rollback"), "median_test_s"] == pytest.approx(0.06 * 1.05, rel=0.05)
    ratio = strategies.loc[("baseline", "recreate"), "pg_over_sqlite"]
    assert ratio == pytest.approx(0.40 / 0.30, rel=0.05)
    storage = tables["storage_speedups"]
    sums = storage[storage["measure"] == "sum of test totals"].set_index("storage")["speedup"]
    assert sums["sqlite"] == pytest.approx(0.30 / 0.05, rel=0.05)
    assert sums["postgres"] == pytest.approx(0.40 / 0.06, rel=0.05)


def test_parallel_speedups_sit_next_to_the_architecture_speedup(environment_run):
    _, result = environment_run
    table = environments.environment_tables(result.run_dir)["parallel_speedups"]
    rows = {(r.storage, r.comparison, r.workers): r for r in table.itertuples()}
    assert set(rows) == {
        (s, c, w)
        for s in ("sqlite", "postgres")
        for c, w in (("parallel", "2"), ("architecture", "serial"), ("architecture", "2"))
    }
    parallel_rows = table[table["comparison"] == "parallel"].set_index("architecture")["speedup"]
    # fake wall: 1 s + the sum of the two tests' times (1.0x + 1.1x the base) / workers
    for architecture, key in (
        ("baseline", ("disk", "recreate")),
        ("transactional", ("memory", "rollback")),
        ("baseline+storage=postgres", ("postgres", "recreate")),
        ("transactional+storage=postgres", ("postgres", "rollback")),
    ):
        total = 2.1 * TEST_SECONDS[key]
        assert parallel_rows[architecture] == pytest.approx((1 + total) / (1 + total / 2), rel=0.02), architecture
    serial = rows[("sqlite", "architecture", "serial")]
    assert serial.speedup == pytest.approx((1 + 2.1 * 0.30) / (1 + 2.1 * 0.05), rel=0.02)


def test_report_sections_find_the_runs_beside_the_main_run(environment_run):
    output, _ = environment_run
    postgres = sections.postgres_blocks(output / "main")
    assert [b.kind for b in postgres][:3] == ["markdown", "html", "html"] and postgres[-1].kind == "png"
    assert "template" in postgres[2].content and "rollback" in postgres[2].content
    parallel = sections.parallel_blocks(output / "main")
    assert any("@n=2" in str(b.content) for b in parallel if b.kind == "html")
    lines = sections.summary_lines(output / "main")
    assert lines[0].startswith("PostgreSQL / parallel") and any("-n 2 vs serial" in line for line in lines)


def test_missing_sections_say_how_to_measure_them(tmp_path):
    (tmp_path / "lonely").mkdir()
    for blocks, name in (
        (sections.postgres_blocks, "postgres"),
        (sections.parallel_blocks, "parallel"),
        (sections.why_blocks, "why"),
    ):
        (block,) = blocks(tmp_path / "lonely")
        assert block.kind == "markdown" and f"--with {name}" in block.content
    assert sections.summary_lines(tmp_path / "lonely") == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("all", sections.SECTIONS),
        ("none", ()),
        ("", ()),
        ("parallel,why", ("why", "parallel")),
        (" postgres ", ("postgres",)),
    ],
)
def test_section_names_parse(text, expected):
    assert sections.parse_sections(text) == expected


def test_unknown_section_is_a_clear_error():
    with pytest.raises(BenchError, match="unknown section 'gpu'.*why, postgres, parallel"):
        sections.parse_sections("why,gpu")


def test_measure_sections_records_runs_named_after_the_main_run(tmp_path, monkeypatch):
    calls = []

    def fake_environment_study(**kwargs):
        calls.append(("environments", kwargs["run_id"], kwargs["size"], tuple(kwargs["sections"])))
        return runner.RunResult(
            run_id=kwargs["run_id"],
            run_dir=tmp_path / kwargs["run_id"],
            status="complete",
            planned_repetitions=0,
            completed_repetitions=0,
            executed_repetitions=0,
            invalid_measured_repetitions=0,
            median_wall_s={},
        )

    def fake_why_study(**kwargs):
        calls.append(("why", kwargs["run_prefix"], kwargs["profile_size"], kwargs["resume"]))
        return type("R", (), {"run_dirs": {"design": tmp_path / f"{kwargs['run_prefix']}-design"}})()

    monkeypatch.setattr(environments, "run_environment_study", fake_environment_study)
    from quiz_study import why

    monkeypatch.setattr(why, "run_why_study", fake_why_study)
    recorded = pipeline.measure_sections(
        ("why", "parallel"),
        run_id="r1",
        profile=get_profile("standard"),
        runs_dir=tmp_path,
        resume=True,
        progress=False,
    )
    assert calls == [
        ("environments", "r1-environments", "standard", ("parallel",)),
        ("why", "r1-why", "standard", True),
    ]
    assert set(recorded) == {"environments", "why"}
    assert pipeline.measure_sections((), run_id="r1", profile=get_profile("smoke"), runs_dir=tmp_path) == {}


def test_full_profile_measures_every_section_and_the_default_why_it_is_faster():
    assert get_profile("full").sections == sections.SECTIONS and get_profile("full").section_size == "full"
    assert get_profile("quick").sections == ()
    for name in ("smoke", "standard"):
        assert get_profile(name).sections == ("why",) and get_profile(name).section_size == name
    standard = get_profile("standard")
    # the why section, measured first, is the default main run's warm-up
    assert standard.main_warmup(why_measured_first=True) == 0 and standard.main_warmup(why_measured_first=False) == 1


def test_environment_tables_refuse_a_run_without_measurements(tmp_path):
    with pytest.raises(BenchError):
        environments.environment_tables(tmp_path / "nothing")


def test_tables_are_regenerated_identically_from_the_files(environment_run):
    _, result = environment_run
    first = environments.environment_tables(result.run_dir)
    again = environments.environment_tables(result.run_dir)
    for name in first:
        pd.testing.assert_frame_equal(first[name], again[name])
