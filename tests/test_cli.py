"""quiz_study.cli: arguments map to run_benchmark; every user error is one stderr line and exit 2."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from quiz_study import cli, paths
from quiz_study import variants as study_variants
from suitebench import cli as engine_cli
from suitebench import runner, store
from suitebench.errors import BenchError
from suitebench.metadata import collect_metadata

CONFTEST = """\
def pytest_addoption(parser):
    parser.addoption("--arch", default="transactional")
    parser.addoption("--switch", action="append", default=[])
"""

TESTS = """\
import json

def test_round_trips_json():
    data = {"numbers": list(range(300))}
    assert json.loads(json.dumps(data)) == data
"""


# Third-party plugins the synthetic suite does not need; blocking them keeps each process short.
FAST = ["--pytest-arg=-p", "--pytest-arg=no:hypothesispytest", "--pytest-arg=-p", "--pytest-arg=no:benchmark"]


@pytest.fixture
def suite(tmp_path: Path) -> Path:
    directory = tmp_path / "suite"
    directory.mkdir()
    (directory / "conftest.py").write_text(CONFTEST)
    (directory / "test_work.py").write_text(TESTS)
    return directory


def harness_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "harness", *args], cwd=paths.ROOT, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "--repetitions", "0"], "error: argument --repetitions: expected a positive integer, got '0'"),
        (["run", "--warmup", "-1"], "error: argument --warmup: expected a non-negative integer, got '-1'"),
        (["run", "--arch", "nonsense"], "error: argument --arch/--variant: unknown architecture 'nonsense'"),
        (["run", "--arch", "transactional+storage=floppy"], "unknown value 'floppy' for switch 'storage'"),
        (["run", "--switch", "storage=floppy"], "error: unknown value 'floppy' for switch 'storage'"),
        (["run", "--switch", "colour=blue"], "error: argument --switch: unknown switch 'colour'"),
        (
            ["run", "--timeout", "soon"],
            "error: argument --timeout: expected a positive number of seconds or auto, got 'soon'",
        ),
        (["run", "--run-id", "../x"], "error: argument --run-id: bad run id"),
        ([], "error: the following arguments are required: COMMAND"),
    ],
)
def test_bad_arguments_give_one_line_and_exit_2(args, message, capsys):
    # In-process (the entry point itself is run as a command just below): a subprocess each
    # would cost ~2 CPU-s of imports.
    try:
        code = cli.main(args)
    except SystemExit as stop:
        code = stop.code
    captured = capsys.readouterr()
    assert code == 2
    assert captured.err.count("\n") == 1 and message in captured.err
    assert "Traceback" not in captured.err and captured.out == ""


def test_the_entry_point_gives_the_same_one_line_error_as_a_command():
    completed = harness_cli("run", "--repetitions", "0")
    assert completed.returncode == 2
    assert completed.stderr == "error: argument --repetitions: expected a positive integer, got '0'\n"
    assert completed.stdout == ""


def test_library_error_gives_one_line_and_exit_2(tmp_path, capsys):
    assert cli.main(["run", "--resume", "nope", "--output-dir", str(tmp_path)]) == 2
    assert capsys.readouterr().err == f"error: cannot resume: no run 'nope' in {tmp_path}\n"


def test_run_records_a_run_and_prints_a_summary(tmp_path, suite):
    completed = harness_cli(
        "run",
        "--suite",
        str(suite),
        "--output-dir",
        str(tmp_path / "runs"),
        "--run-id",
        "c1",
        "--arch",
        "baseline",
        "--variant",
        "transactional",
        "--switch",
        "storage=disk",
        "--repetitions",
        "1",
        "--warmup",
        "0",
        "--no-progress",
        "--profile",
        "smoke",
        *FAST,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.startswith("run c1: complete, 2/2 repetitions")
    run = store.load_run(tmp_path / "runs" / "c1")
    assert run.repetitions["variant"].tolist() == ["baseline", "transactional+storage=disk"]
    assert run.repetitions["valid"].all()
    assert run.metadata["profile"] == "smoke"
    assert store.latest_run(tmp_path / "runs", profile="smoke") == tmp_path / "runs" / "c1"


def test_arguments_map_to_run_benchmark_keywords(monkeypatch, capsys, tmp_path):
    received = {}

    def fake_run_benchmark(**options):
        received.update(options)
        return runner.RunResult(
            run_id="x",
            run_dir=tmp_path,
            status="complete",
            planned_repetitions=2,
            completed_repetitions=2,
            executed_repetitions=2,
            invalid_measured_repetitions=0,
            median_wall_s={"baseline": 1.0},
        )

    monkeypatch.setattr(study_variants, "run_benchmark", fake_run_benchmark)
    status = cli.main(
        [
            "run",
            "--arch",
            "baseline",
            "-k",
            "login",
            "-m",
            "crud",
            "--seed",
            "3",
            "--schedule",
            "random",
            "--timeout",
            "30",
            "--pytest-arg=-x",
            "--no-progress",
            "--resume",
            "r9",
        ]
    )
    assert status == 0
    assert received == {
        "variants": ["baseline"],
        "repetitions": None,
        "warmup": None,
        "selection": {"keyword": "login", "marker": "crud"},
        "output_dir": paths.RUNS,
        "run_id": "r9",
        "seed": 3,
        "schedule": "random",
        "resume": True,
        "suite_path": None,
        "extra_pytest_args": ["-x"],
        "progress": False,
        "timeout_s": 30.0,
        "profile": None,
    }
    assert "median wall" in capsys.readouterr().out


def test_interrupted_run_prints_resume_command_and_exits_130(monkeypatch, capsys, tmp_path, suite):
    def interrupt(command, **options):
        raise KeyboardInterrupt

    real_run_benchmark = study_variants.run_benchmark
    monkeypatch.setattr(
        study_variants, "run_benchmark", lambda **options: real_run_benchmark(**options, executor=interrupt)
    )
    status = cli.main(["run", "--suite", str(suite), "--output-dir", str(tmp_path), "--run-id", "c2", "--no-progress"])
    err = capsys.readouterr().err
    assert status == 130
    assert err.count("\n") == 1
    assert err.startswith("interrupted: run 'c2' interrupted after 0 of 22 repetitions")
    assert err.rstrip().endswith(f"python -m harness run --resume c2 --runs-dir {tmp_path}")


def test_sigterm_stops_the_run_and_resume_finishes_it(tmp_path, suite):
    runs = tmp_path / "runs"
    command = [
        sys.executable,
        "-m",
        "harness",
        "run",
        "--suite",
        str(suite),
        "--output-dir",
        str(runs),
        "--run-id",
        "c3",
        "--repetitions",
        "2",
        "--warmup",
        "0",
        "--no-progress",
        *FAST,
    ]
    process = subprocess.Popen(command, cwd=paths.ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    repetitions = runs / "c3" / store.REPETITIONS_FILE
    try:
        while not (repetitions.exists() and repetitions.read_text().count("\n") >= 2):
            try:
                process.wait(timeout=0.05)
                break
            except subprocess.TimeoutExpired:
                pass
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, stderr
    assert stderr.startswith("interrupted: run 'c3' interrupted after") and "--resume c3" in stderr
    assert json.loads((runs / "c3" / store.METADATA_FILE).read_text())["status"] == "interrupted"

    completed = harness_cli("run", "--resume", "c3", "--output-dir", str(runs), "--no-progress")
    assert completed.returncode == 0, completed.stderr
    table = pd.read_csv(repetitions)
    assert table["repetition"].tolist() == list(range(4))
    assert table["variant"].tolist() == ["baseline", "transactional"] * 2


def test_validators_accept_good_values_and_reject_bad_ones():
    import argparse

    assert engine_cli.positive_int("3") == 3
    assert engine_cli.non_negative_int("0") == 0
    assert engine_cli.positive_float("0.5") == 0.5
    assert cli.architecture_spec(" transactional+storage=disk ") == "transactional+storage=disk"
    assert cli.switch_assignment("reference-data=per_test") == "reference_data=per_test"
    for validator, text in [
        (engine_cli.positive_int, "1.5"),
        (engine_cli.non_negative_int, "-2"),
        (engine_cli.positive_float, "nan"),
        (cli.architecture_spec, "fast"),
        (engine_cli.run_identifier, ".hidden"),
    ]:
        with pytest.raises(argparse.ArgumentTypeError):
            validator(text)


def test_switches_apply_to_every_architecture():
    assert cli.with_switches(["baseline", "transactional+storage=disk"], ["password_hash=production"]) == [
        "baseline+password_hash=production",
        "transactional+storage=disk,password_hash=production",
    ]
    assert cli.with_switches(["baseline"], []) == ["baseline"]


# ---------------------------------------------------------------- compare / baseline / check


def write_synthetic_run(run_dir: Path, *, candidate_scale: float, seed: int, repetitions: int = 6) -> None:
    """A run as the runner writes it, with lognormal noise: transactional ~5x faster than baseline
    when candidate_scale is 1."""
    rng = np.random.default_rng(seed)
    run_dir.mkdir(parents=True)
    labels = ["baseline", "transactional"]
    schedule, repetition_rows, timing_rows = [], [], []
    for block in range(repetitions):
        for order, variant in enumerate(labels):
            columns = {
                "run_id": run_dir.name,
                "repetition": len(schedule),
                "block": block,
                "order": order,
                "variant": variant,
                "warmup": False,
                "valid": True,
            }
            schedule.append({key: columns[key] for key in ("repetition", "block", "order", "variant", "warmup")})
            total = 0.0
            for i, (test, category) in enumerate(
                [("t.py::test_a", "crud"), ("t.py::test_b", "crud"), ("t.py::test_c", "auth")]
            ):
                seconds = (0.1 if variant == "baseline" else 0.02 * candidate_scale) * (i + 1) * rng.lognormal(0, 0.05)
                total += seconds
                for phase, value in (("setup", seconds / 2), ("call", seconds / 2), ("total", seconds)):
                    timing_rows.append(
                        {
                            **columns,
                            "test": test,
                            "category": category,
                            "outcome": "passed",
                            "phase": phase,
                            "seconds": value,
                            "sql_statements": 3,
                            "ddl_statements": 0,
                            "connections_opened": 1,
                            "commits": 1,
                            "rollbacks": 0,
                            "savepoints": 0,
                        }
                    )
            repetition_rows.append(
                {
                    **columns,
                    "invalid_reason": "",
                    "exit_code": 0,
                    "wall_s": total + 0.5,
                    "n_tests": 3,
                    "n_passed": 3,
                    "n_failed": 0,
                    "started_at": "",
                    "finished_at": "",
                }
            )
    store.write_metadata(
        run_dir,
        {
            "schema_version": store.SCHEMA_VERSION,
            "run_id": run_dir.name,
            "status": "complete",
            "started_at": f"2024-01-0{seed + 1}T00:00:00+00:00",
            "variants": [{"label": label} for label in labels],
            "schedule": schedule,
            "environment": collect_metadata(packages=[]),
        },
    )
    store.append_frame(run_dir / store.TIMINGS_FILE, pd.DataFrame(timing_rows), columns=store.TIMING_COLUMNS)
    store.append_frame(
        run_dir / store.REPETITIONS_FILE, pd.DataFrame(repetition_rows), columns=store.REPETITION_COLUMNS
    )


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    write_synthetic_run(tmp_path / "runs" / "good", candidate_scale=1.0, seed=0)
    write_synthetic_run(tmp_path / "runs" / "slow", candidate_scale=2.0, seed=1)
    write_synthetic_run(tmp_path / "runs" / "again", candidate_scale=1.0, seed=2)
    return tmp_path / "runs"


def test_compare_prints_suite_category_and_test_levels(runs, capsys):
    assert cli.main(["compare", "--runs-dir", str(runs), "--run", "good"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("run good (complete): transactional compared with baseline")
    assert "3 tests passed in every measured process" in out
    assert "\nsuite:\n" in out and "\ncategory:\n" in out and "\ntest:\n" in out and "t.py::test_c" in out


def test_compare_prints_markdown_table(runs, capsys):
    assert (
        cli.main(
            [
                "compare",
                "--runs-dir",
                str(runs),
                "--run",
                "good",
                "--level",
                "suite",
                "--format",
                "markdown",
            ]
        )
        == 0
    )
    table = [line for line in capsys.readouterr().out.splitlines() if line.startswith("|")]
    assert table[0].startswith("| unit") and "speedup_ci_low" in table[0]
    assert set(table[1]) <= set("|-: ")
    assert any("process wall time" in row for row in table[2:])


def test_compare_defaults_to_the_latest_run_and_rejects_unknown_variants(runs, capsys):
    assert cli.main(["compare", "--runs-dir", str(runs), "--level", "suite"]) == 0
    assert capsys.readouterr().out.startswith("run again ")
    assert cli.main(["compare", "--runs-dir", str(runs), "--candidate", "transactional+storage=disk"]) == 2
    assert capsys.readouterr().err == (
        "error: variant 'transactional+storage=disk' is not in the run; it has: baseline, transactional\n"
    )


def test_baseline_record_then_check_flags_a_slowdown_only(runs, tmp_path, capsys):
    store_dir = tmp_path / "baselines"
    assert (
        cli.main(
            ["baseline", "record", "main", "--runs-dir", str(runs), "--run", "good", "--store-dir", str(store_dir)]
        )
        == 0
    )
    assert "stored baseline 'main': transactional from run good" in capsys.readouterr().out
    assert cli.main(["baseline", "list", "--store-dir", str(store_dir)]) == 0
    assert capsys.readouterr().out == "main\n"

    check = ["check", "main", "--runs-dir", str(runs), "--store-dir", str(store_dir)]
    assert cli.main([*check, "--run", "again"]) == 0
    assert "no regression shown" in capsys.readouterr().out
    assert cli.main([*check, "--run", "slow"]) == 1
    assert "REGRESSED: timing gate fired" in capsys.readouterr().out
    assert cli.main([*check, "--run", "good"]) == 2
    assert (
        capsys.readouterr().err == "error: baseline 'main' was recorded from run good: check another run against it\n"
    )

    assert cli.main(["baseline", "record", "main", "--runs-dir", str(runs), "--store-dir", str(store_dir)]) == 2
    assert capsys.readouterr().err.startswith("error: baseline 'main' exists")


def test_check_refuses_a_run_from_another_machine(runs, tmp_path, capsys):
    store_dir = tmp_path / "baselines"
    assert (
        cli.main(
            ["baseline", "record", "main", "--runs-dir", str(runs), "--run", "good", "--store-dir", str(store_dir)]
        )
        == 0
    )
    path = runs / "slow" / store.METADATA_FILE
    metadata = json.loads(path.read_text())
    metadata["environment"]["cpu"]["model"] = "Some Other CPU"
    path.write_text(json.dumps(metadata))
    capsys.readouterr()

    check = ["check", "main", "--runs-dir", str(runs), "--run", "slow", "--store-dir", str(store_dir)]
    assert cli.main(check) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cpu.model" in err and "--allow-environment-change" in err
    assert cli.main([*check, "--allow-environment-change"]) == 1
    assert capsys.readouterr().out.startswith("warning: environment differs")


def test_comparison_pair_prefers_the_presets():
    presets = cli.STUDY_DEFAULTS.preferred_pair
    assert engine_cli.comparison_pair(["transactional", "x", "baseline"], preferred=presets) == (
        "baseline",
        "transactional",
    )
    assert engine_cli.comparison_pair(["a", "b"], preferred=presets) == ("a", "b")
    with pytest.raises(BenchError, match="need two different variants"):
        engine_cli.comparison_pair(["baseline"], preferred=presets)


def test_check_refuses_a_design_that_cannot_reach_its_level(runs, tmp_path, capsys):
    write_synthetic_run(runs / "tiny", candidate_scale=1.0, seed=3, repetitions=2)
    store_dir = tmp_path / "baselines"
    record = ["baseline", "record", "main", "--runs-dir", str(runs), "--run", "good", "--store-dir", str(store_dir)]
    assert cli.main(record) == 0
    capsys.readouterr()
    assert cli.main(["check", "main", "--runs-dir", str(runs), "--run", "tiny", "--store-dir", str(store_dir)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "at least 3 repetitions per side" in err
    assert cli.main(["check", "--against-rev", "HEAD", "--repetitions", "2", "--runs-dir", str(runs)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "at least 3 repetitions per side" in err


def test_baseline_calibrate_needs_ten_sessions_and_stores_the_minimum_effect(runs, tmp_path, capsys):
    store_dir = tmp_path / "baselines"
    record = ["baseline", "record", "main", "--runs-dir", str(runs), "--run", "good", "--store-dir", str(store_dir)]
    assert cli.main(record) == 0
    sessions = [f"aa-{i}" for i in range(10)]
    for i, name in enumerate(sessions):
        write_synthetic_run(runs / name, candidate_scale=1.0, seed=10 + i)
    calibrate = ["baseline", "calibrate", "main", "--runs-dir", str(runs), "--store-dir", str(store_dir)]
    assert cli.main([*calibrate, *[f"--run={name}" for name in sessions[:9]]]) == 2
    assert "at least 10 A/A sessions, got 9" in capsys.readouterr().err
    assert cli.main([*calibrate, *[f"--run={name}" for name in sessions]]) == 0
    out = capsys.readouterr().out
    assert "stored calibration for 'main'" in out and "of 90" in out
    assert cli.main(["check", "main", "--runs-dir", str(runs), "--run", "again", "--store-dir", str(store_dir)]) == 0
    assert "calibrated from 10 A/A sessions" in capsys.readouterr().out


def test_check_against_a_revision_from_the_command_line(tmp_path, monkeypatch, capsys):
    import functools
    import subprocess

    from test_regression import SpeedFromTree

    from suitebench import ab

    repo = tmp_path / "repo"
    (repo / "suite").mkdir(parents=True)
    (repo / "suite" / "test_a.py").write_text("def test_a():\n    pass\n")
    (repo / "speed.txt").write_text("1.0\n")
    for command in (["init", "-q"], ["add", "."], ["commit", "-q", "-m", "one"]):
        subprocess.run(["git", "-c", "user.email=t@t", "-c", "user.name=t", *command], cwd=repo, check=True)
    monkeypatch.setattr(
        ab, "measure_against_revision", functools.partial(ab.measure_against_revision, executor=SpeedFromTree())
    )
    argv = ["check", "--against-rev", "HEAD", "--suite", str(repo / "suite"), "--runs-dir", str(tmp_path / "runs")]
    argv += ["--repetitions", "4", "--warmup", "0", "--seed", "1", "--no-progress", "--run-id", "same"]
    assert engine_cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "same session: HEAD vs the working tree" in out and "no regression shown" in out
    (repo / "speed.txt").write_text("1.3\n")
    assert engine_cli.main([*argv[:-1], "slower"]) == 1
    assert "REGRESSED: timing gate fired" in capsys.readouterr().out
