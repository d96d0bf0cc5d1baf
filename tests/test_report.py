"""`quiz_study.tables` on small synthetic runs: every table, its numbers, reproducibility, the HTML export;
and the figures and regression helpers built on it."""

from __future__ import annotations

import base64
import math
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import nbformat  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output  # noqa: E402
from scipy.stats import gmean  # noqa: E402

from quiz_study import (
    figures,
    formatting,
    html,
    pipeline,  # noqa: E402
    targets,
)
from quiz_study import tables as report_tables
from suitebench import store
from suitebench.errors import BenchError  # noqa: E402

API_TEST = targets.API_TEST
TESTS = {
    API_TEST: ("integration", 0.30),
    "test_integration.py::test_questions_api_lists_committed_content": ("integration", 0.25),
    "test_isolation.py::test_canary_left_db": ("isolation", 0.20),
    "test_isolation.py::test_canary_right_db": ("isolation", 0.22),
    "test_auth.py::test_login_returns_bearer_token": ("auth", 0.28),
}
ENVIRONMENT = {
    "python": {"version": "3.11.7", "implementation": "CPython", "executable": "/usr/bin/python3"},
    "cpu": {"model": "Test CPU", "logical_cores": 2, "usable_cores": 2},
    "platform": {"platform": "Linux-test"},
    "hostname": "test-host",
    "packages": {"pandas": "3.0"},
    "git": {"commit": "0" * 40, "dirty": False},
}


def write_synthetic_run(
    runs_dir: Path,
    run_id: str,
    *,
    profile: str | None = "smoke",
    started_at: str = "2025-01-01T10:00:00+00:00",
    candidate_scale: float = 0.2,
    repetitions: int = 6,
    seed: int = 0,
    invalid_repetition: int | None = None,
) -> Path:
    """A complete run of baseline and transactional: 1 warm-up block + `repetitions` measured blocks,
    five tests with log-normal noise; the candidate takes `candidate_scale` of the baseline's time."""
    rng = np.random.default_rng(seed)
    run_dir = Path(runs_dir) / run_id
    run_dir.mkdir(parents=True)
    variants = ("baseline", "transactional")
    schedule, rep_rows, timing_rows = [], [], []
    for block in range(repetitions + 1):
        for order, variant in enumerate(variants):
            repetition = len(schedule)
            warmup = block == 0
            schedule.append(
                {"repetition": repetition, "block": block, "order": order, "variant": variant, "warmup": warmup}
            )
            valid = repetition != invalid_repetition
            scale = 1.0 if variant == "baseline" else candidate_scale
            total_sum = 0.0
            for test, (category, seconds) in TESTS.items():
                total = seconds * scale * float(rng.lognormal(0, 0.05)) * (20 if not valid else 1)
                parts = {"setup": total * 0.6, "call": total * 0.3, "teardown": total * 0.1}
                counters = {
                    "sql_statements": 40 if variant == "baseline" else 10,
                    "ddl_statements": 20 if variant == "baseline" else 0,
                    "connections_opened": 3 if variant == "baseline" else 1,
                    "commits": 2 if variant == "baseline" else 0,
                    "rollbacks": 1,
                    "savepoints": 0 if variant == "baseline" else 2,
                }
                for phase, value in [*parts.items(), ("total", sum(parts.values()))]:
                    share = 1.0 if phase == "total" else 0.0
                    timing_rows.append(
                        {
                            "run_id": run_id,
                            "repetition": repetition,
                            "block": block,
                            "order": order,
                            "variant": variant,
                            "warmup": warmup,
                            "valid": valid,
                            "test": test,
                            "category": category,
                            "outcome": "passed",
                            "phase": phase,
                            "seconds": value,
                            **{k: int(v * share) for k, v in counters.items()},
                        }
                    )
                total_sum += sum(parts.values())
            timing_rows.append(
                {
                    "run_id": run_id,
                    "repetition": repetition,
                    "block": block,
                    "order": order,
                    "variant": variant,
                    "warmup": warmup,
                    "valid": valid,
                    "test": "<fixture:engine>",
                    "category": "session",
                    "outcome": "passed",
                    "phase": "setup",
                    "seconds": 0.05,
                    "sql_statements": 5,
                    "ddl_statements": 5,
                    "connections_opened": 1,
                    "commits": 1,
                    "rollbacks": 0,
                    "savepoints": 0,
                }
            )
            rep_rows.append(
                {
                    "run_id": run_id,
                    "repetition": repetition,
                    "block": block,
                    "order": order,
                    "variant": variant,
                    "warmup": warmup,
                    "valid": valid,
                    "invalid_reason": "" if valid else "exit code 1 (tests failed)",
                    "exit_code": 0 if valid else 1,
                    "wall_s": total_sum + 3.0,
                    "n_tests": len(TESTS),
                    "n_passed": len(TESTS) if valid else len(TESTS) - 1,
                    "n_failed": 0 if valid else 1,
                    "started_at": started_at,
                    "finished_at": started_at,
                }
            )
    metadata = {
        "schema_version": store.SCHEMA_VERSION,
        "run_id": run_id,
        "profile": profile,
        "status": "complete",
        "started_at": started_at,
        "finished_at": started_at,
        "arguments": {
            "variants": list(variants),
            "repetitions": repetitions,
            "warmup": 1,
            "selection": {},
            "seed": None,
            "schedule": "abab",
            "profile": profile,
        },
        "variants": [{"label": v, "spec": v, "pytest_args": ["--arch", v]} for v in variants],
        "seed": None,
        "schedule_kind": "abab",
        "schedule": schedule,
        "child_environment": {"PYTHONHASHSEED": "0"},
        "environment": ENVIRONMENT,
    }
    store.write_metadata(run_dir, metadata)
    store.append_frame(run_dir / store.TIMINGS_FILE, pd.DataFrame(timing_rows), columns=store.TIMING_COLUMNS)
    store.append_frame(run_dir / store.REPETITIONS_FILE, pd.DataFrame(rep_rows), columns=store.REPETITION_COLUMNS)
    return run_dir


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    runs_dir = tmp_path_factory.mktemp("data") / "runs"
    write_synthetic_run(runs_dir, "run-a", started_at="2025-01-01T10:00:00+00:00", seed=1)
    return runs_dir


@pytest.fixture(scope="module")
def tables(runs: Path) -> dict[str, pd.DataFrame]:
    return report_tables.tables_for_run(runs / "run-a")


def _measured_totals(run_dir: Path) -> pd.DataFrame:
    timings = pd.read_csv(run_dir / "timings.csv")
    keep = (timings["phase"] == "total") & timings["valid"] & ~timings["warmup"]
    return timings[keep & ~timings["test"].str.startswith("<fixture:")]


# ---------------------------------------------------------------- tables_for_run


def test_tables_for_run_returns_every_documented_table(tables):
    assert list(tables) == list(report_tables.TABLE_DESCRIPTIONS)
    assert all(isinstance(frame, pd.DataFrame) for frame in tables.values())
    assert tables["run"].iloc[0]["run_id"] == "run-a"


def test_tables_for_run_is_deterministic(runs, tables):
    again = report_tables.tables_for_run(runs / "run-a")
    for name in ("verdicts", "headline", "tests", "seed_claims"):
        pd.testing.assert_frame_equal(tables[name], again[name])


def test_verdict_numbers_match_an_independent_recomputation(runs, tables):
    totals = _measured_totals(runs / "run-a")
    sums = totals.groupby(["variant", "repetition"])["seconds"].sum()
    improvement = (1 - gmean(sums["transactional"]) / gmean(sums["baseline"])) * 100
    api = gmean(totals[(totals["test"] == API_TEST) & (totals["variant"] == "transactional")]["seconds"])
    verdicts = tables["verdicts"].set_index("criterion")
    assert verdicts.loc["suite improvement >= 70 %", "measured"] == pytest.approx(improvement, rel=1e-12)
    assert verdicts.loc["API test < 0.5 s", "measured"] == pytest.approx(api, rel=1e-12)
    assert (verdicts["verdict"] == "met").all() and verdicts["passed"].all()
    low, high = verdicts.loc["suite improvement >= 70 %", ["ci_low", "ci_high"]]
    assert low <= improvement <= high


def test_suite_table_headline_and_verdict_show_one_interval(tables):
    verdict = tables["verdicts"].set_index("criterion").loc["suite improvement >= 70 %"]
    suite = tables["suite"].set_index("unit").loc["sum of test totals"]
    headline = tables["headline"].iloc[0]
    assert headline["improvement_pct"] == pytest.approx(verdict["measured"])
    for side in ("low", "high"):
        from_speedup = (1 - 1 / suite[f"speedup_ci_{side}"]) * 100
        assert from_speedup == pytest.approx(verdict[f"ci_{side}"], rel=1e-12)
        assert headline[f"improvement_pct_ci_{side}"] == pytest.approx(verdict[f"ci_{side}"], rel=1e-12)


def test_headline_and_phases_and_counters(runs, tables):
    totals = _measured_totals(runs / "run-a")
    api = totals[totals["test"] == API_TEST].groupby("variant")["seconds"].agg(gmean)
    headline = tables["headline"].set_index("measure")
    api_row = headline.loc[[m for m in headline.index if m.startswith("API test")][0]]
    assert api_row["speedup"] == pytest.approx(api["baseline"] / api["transactional"])
    phases = tables["phases"].set_index("variant")
    assert phases.loc["baseline", "setup_s"] == pytest.approx(0.6 * phases.loc["baseline", "tests_total_s"], rel=0.05)
    assert phases.loc["baseline", "session_fixtures_s"] == pytest.approx(0.05)
    counters = tables["counters"].set_index("counter")
    assert counters.loc["ddl_statements", "baseline_per_test"] == 20
    assert counters.loc["ddl_statements", "transactional_per_test"] == 0
    # per run: five tests plus the session fixture
    assert counters.loc["ddl_statements", "baseline_per_run"] == 5 * 20 + 5


def test_seed_claims_sit_beside_our_measurement(tables):
    claims = tables["seed_claims"]
    assert list(claims["seed_claim"]) == [c.claimed for c in targets.SEED_CLAIMS]
    assert claims["measured"].notna().all()
    display = formatting.display_frame(tables, "seed_claims")
    assert "the seed's claim (not measured here)" in display.columns


def test_invalid_repetitions_are_excluded_and_fail_the_correctness_criterion(tmp_path):
    run_dir = write_synthetic_run(tmp_path / "runs", "bad", invalid_repetition=5, seed=2)
    tables = report_tables.tables_for_run(run_dir)
    verdicts = tables["verdicts"].set_index("criterion")
    assert not verdicts.loc["no failing tests", "passed"]
    assert verdicts.loc["suite improvement >= 70 %", "passed"]  # the 20x slower invalid repetition is left out
    assert tables["repetitions"].set_index("variant").loc["transactional", "invalid"] == 1


def test_display_merges_intervals_and_formats_by_column(tables):
    display = formatting.display_frame(tables, "headline")
    assert "speedup 95 % CI" in display.columns and "speedup_ci_low" not in display.columns
    assert display["speedup 95 % CI"].str.match(r"^\[[\d.]+, [\d.]+\]$").all()
    verdicts = formatting.verdicts_display(tables["verdicts"])
    assert (verdicts["verdict"] == "met").all() and "primary measure" in verdicts.columns
    shown = formatting.display_frame(tables, "tests")
    assert {"welch_p_value", "p_bh", "speedup 95 % CI"} <= set(shown.columns)
    assert not {"mw_p_value", "mw_p_holm"} & set(shown.columns)
    html = formatting.table_html(tables, "verdicts")
    assert 'id="verdicts"' in html and "tables_for_run(" in html


# ---------------------------------------------------------------- reproducibility


def test_no_previous_run_is_said_plainly(tables):
    assert tables["reproducibility"].empty
    assert "nothing to compare" in formatting.format_reproducibility(tables)[0]


def test_agreeing_previous_run(tmp_path):
    runs_dir = tmp_path / "runs"
    write_synthetic_run(runs_dir, "first", started_at="2025-01-01T10:00:00+00:00", seed=3)
    write_synthetic_run(runs_dir, "other-profile", profile="quick", started_at="2025-01-01T11:00:00+00:00", seed=4)
    second = write_synthetic_run(runs_dir, "second", started_at="2025-01-01T12:00:00+00:00", seed=5)
    tables = report_tables.tables_for_run(second)
    assert tables["run"].iloc[0]["previous_run_id"] == "first"
    summary = tables["reproducibility"]
    assert summary.loc[summary["kind"] == "verdict", "verdicts_agree"].all()
    lines = formatting.format_reproducibility(tables)
    assert "first" in lines[0]
    assert any("verdicts agree" in line for line in lines)
    assert not any("NOT" in line for line in lines)


def test_disagreeing_previous_run_is_said_plainly(tmp_path):
    runs_dir = tmp_path / "runs"
    write_synthetic_run(runs_dir, "slow", started_at="2025-01-01T10:00:00+00:00", candidate_scale=0.5, seed=6)
    fast = write_synthetic_run(runs_dir, "fast", started_at="2025-01-01T12:00:00+00:00", candidate_scale=0.1, seed=7)
    tables = report_tables.tables_for_run(fast)
    lines = formatting.format_reproducibility(tables)
    assert any("DISAGREE on 'suite improvement >= 70 %'" in line for line in lines)
    assert any("do NOT overlap" in line for line in lines)


# ---------------------------------------------------------------- figures and regression


def test_every_figure_renders(runs, tables):
    run = store.load_run(runs / "run-a")
    made = [
        figures.repetition_walls(run.repetitions),
        figures.distributions(run.timings),
        figures.ecdfs(run.timings),
        figures.speedup_forest(tables["tests"], highlight=API_TEST),
        figures.phase_breakdown(tables["phases"], tables["phases_by_category"]),
        figures.counters_chart(tables["counters"]),
        figures.trend(report_tables.trend_table(runs), highlight_run="run-a"),
        figures.power_curves(pd.DataFrame(), note="too few repetitions"),
    ]
    for figure in made:
        assert isinstance(figure, Figure)
        assert figures.png_bytes(figure).startswith(b"\x89PNG")


def test_regression_section_never_checks_a_run_against_its_own_baseline(tmp_path):
    runs_dir = tmp_path / "runs"
    first = write_synthetic_run(runs_dir, "r1", started_at="2025-01-01T10:00:00+00:00", repetitions=4, seed=8)
    second = write_synthetic_run(
        runs_dir, "r2", started_at="2025-01-01T11:00:00+00:00", repetitions=4, seed=9, candidate_scale=0.4
    )
    store = tmp_path / "baselines"
    recorded = pipeline.regression_section(run_dir=first, baselines_dir=store, simulation_draws=200)
    assert recorded.recorded_now and recorded.baseline_name == "study-smoke-transactional"
    assert recorded.check is None and "never checked against a baseline recorded from itself" in recorded.check_note
    again = pipeline.regression_section(run_dir=first, baselines_dir=store, simulation_draws=0)
    assert again.check is None and "recorded from this run" in again.check_note
    checked = pipeline.regression_section(run_dir=second, baselines_dir=store, simulation_draws=200)
    assert not checked.recorded_now
    assert checked.check.regressed and checked.check.gate.fired  # twice as slow: every test slower
    assert list(checked.trend["run_id"].unique()) == ["r1", "r2"]
    rates = pipeline.regression_tables(checked)["calibration"]
    # two sessions of 4: one stored-baseline pair each way, no 8-process session to split; simulated rows
    assert (rates.loc[rates["source"].str.startswith("session pairs"), "comparisons"] == 2).all()
    assert rates["source"].str.startswith("simulated").any()
    assert any("check --against-rev" in note for note in checked.calibration.notes)
    lines = pipeline.format_regression(checked)
    assert any("REGRESSED" in line for line in lines) and any("baseline calibrate" in line for line in lines)
    assert isinstance(figures.power_curves(rates), Figure)


# ---------------------------------------------------------------- export_html


def _executed_notebook(path: Path, *, extra_html: str = "") -> Path:
    figure = figures.message_figure("a chart")
    png = base64.b64encode(figures.png_bytes(figure)).decode()
    cells = [
        new_markdown_cell("# Report title\n\nSome prose with a [local link](#report-title)."),
        new_code_cell(
            "SECRET_SOURCE_MARKER = 1",
            execution_count=1,
            outputs=[
                new_output("display_data", data={"image/png": png, "text/plain": "<Figure>"}),
                new_output(
                    "display_data",
                    data={
                        "text/html": "<table id='verdicts'><tr><td>PASS</td></tr></table>" + extra_html,
                        "text/plain": "table",
                    },
                ),
                new_output("stream", name="stderr", text="STDERR_NOISE\n"),
                new_output("execute_result", data={"text/plain": "42"}, execution_count=1),
            ],
        ),
    ]
    notebook = new_notebook(cells=cells)
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, path)
    return path


def test_export_html_is_self_contained_with_code_hidden(tmp_path):
    source = _executed_notebook(tmp_path / "executed.ipynb")
    html_path = html.export_html(source, tmp_path / "out" / "report.html", title="Test report")
    text = html_path.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and "<title>Test report</title>" in text
    assert "SECRET_SOURCE_MARKER" not in text, "code cells must be hidden"
    assert not re.search(r"In&nbsp;\[|In \[\d*\]|Out\[", text), "prompts must be hidden"
    assert "STDERR_NOISE" not in text
    assert 'src="data:image/png;base64,' in text
    assert "<script" not in text.lower()
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", text, re.IGNORECASE)
    assert not re.search(r"https?://", text)
    assert "id='verdicts'" in text or 'id="verdicts"' in text


def test_export_html_refuses_external_resources(tmp_path):
    source = _executed_notebook(tmp_path / "executed.ipynb", extra_html='<img src="https://example.org/x.png">')
    with pytest.raises(BenchError, match="external resource"):
        html.export_html(source, tmp_path / "report.html")
    assert not (tmp_path / "report.html").exists()


def test_regeneration_text_names_the_run_and_the_call(tables, runs):
    text = formatting.format_regeneration(tables)
    assert 'tables_for_run("' in text and "run-a" in text
    assert "--resume run-a" in text
    assert not math.isnan(tables["run"].iloc[0]["seed"])


def test_notebooks_default_to_the_latest_run_of_both_presets(tmp_path):
    runs_dir = tmp_path / "runs"
    older = write_synthetic_run(runs_dir, "older", started_at="2025-01-01T10:00:00+00:00", seed=12)
    newer = write_synthetic_run(runs_dir, "newer", started_at="2025-01-01T11:00:00+00:00", seed=13)
    other = write_synthetic_run(runs_dir, "other-study", started_at="2025-01-01T12:00:00+00:00", seed=14)
    metadata = store.read_metadata(other)
    metadata["variants"] = [{"label": "transactional+storage=disk", "spec": "", "pytest_args": []}]
    store.write_metadata(other, metadata)
    assert pipeline.resolve_run(runs_dir=runs_dir) == newer
    assert pipeline.resolve_run(runs_dir=runs_dir, run_id="older") == older
    with pytest.raises(BenchError, match="no run 'missing'"):
        pipeline.resolve_run(runs_dir=runs_dir, run_id="missing")
