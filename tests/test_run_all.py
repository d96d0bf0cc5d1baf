"""`run_all.py` end to end (the smoke profile, in a subprocess, under a temporary output root) and its
command line: exit codes, one-line errors, Ctrl-C."""

from __future__ import annotations

import functools
import html
import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
from fake_processes import FakeProcesses

from quiz_study import environments, paths, pipeline, profiles, sections
from quiz_study import variants as study_variants
from suitebench import store
from suitebench.errors import BenchError


def _load_run_all():
    """run_all.py is a script at the project root, not a package module: load it from its file."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("run_all", paths.ROOT / "run_all.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


RUN_ALL = paths.ROOT / "run_all.py"
RUN_ID = "smoke-e2e"
API_TEST = "test_integration.py::test_login_then_protected_endpoint"


def _run_all(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(RUN_ALL), *args],
        cwd=paths.ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _project_state() -> dict[str, object]:
    """What a smoke run would touch in the project's own data/ and reports/ (other engineers' runs
    may come and go meanwhile, so only these are compared)."""
    latest = paths.REPORTS / pipeline.LATEST_LINK
    baseline = paths.BASELINES / "study-smoke-transactional.json"
    return {
        "run": (paths.RUNS / RUN_ID).exists(),
        "report": (paths.REPORTS / RUN_ID).exists(),
        "latest": os.readlink(latest) if latest.is_symlink() else latest.exists(),
        "baseline": baseline.stat().st_mtime if baseline.exists() else None,
    }


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    root = tmp_path_factory.mktemp("study")
    before = _project_state()
    # Environment runs recorded beforehand (fake processes, seconds) beside the run-to-be, as a
    # `--with postgres,parallel` session would: the one report rendered shows every section.
    environments.run_environment_study(
        size="smoke",
        output_dir=root / "data" / "runs",
        run_id=sections.environment_run_id(RUN_ID),
        runner=functools.partial(study_variants.run_benchmark, executor=FakeProcesses(_environment_seconds)),
    )
    started = time.perf_counter()
    completed = _run_all("--profile", "smoke", "--output-root", str(root), "--run-id", RUN_ID, "--no-progress")
    elapsed = time.perf_counter() - started
    return root, completed, elapsed, before, _project_state()


def test_smoke_profile_runs_end_to_end(smoke):
    root, completed, elapsed, _, _ = smoke
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "acceptance criteria" in completed.stdout and "report:" in completed.stdout
    assert "speedup" in completed.stdout and "95 % CI" in completed.stdout
    report_dir = root / "reports" / RUN_ID
    assert (report_dir / "report.html").is_file()
    for name in pipeline.NOTEBOOKS:
        executed = json.loads((report_dir / f"{name}.ipynb").read_text())
        errors = [o for c in executed["cells"] for o in c.get("outputs", []) if o.get("output_type") == "error"]
        assert not errors, f"{name}: {errors[:1]}"
    assert (root / "reports" / "latest").is_symlink()
    assert (root / "reports" / "latest").resolve() == report_dir.resolve()
    assert (root / "data" / "baselines" / "study-smoke-transactional.json").is_file()
    assert (report_dir / "tables" / "verdicts.csv").is_file()
    print(f"smoke study took {elapsed:.1f} s")


def test_smoke_run_leaves_the_projects_data_and_reports_alone(smoke):
    _, completed, _, before, after = smoke
    assert completed.returncode == 0
    assert before == after
    assert before["run"] is False and before["report"] is False


def test_smoke_study_measures_why_first_on_the_real_suite_and_reports_it_first(smoke):
    """The smoke profile's why section (12 cells once, the floor once, forked processes on the real
    suite) is recorded before the main run, which then has no warm-up; the report's first screen
    shows the verdicts, the shares figure and the findings before the method."""
    root, completed, _, _, _ = smoke
    assert completed.returncode == 0
    runs = root / "data" / "runs"
    why_dirs = sections.why_runs(runs / RUN_ID)
    assert [p.name for p in why_dirs] == [f"{RUN_ID}-why-factorial", f"{RUN_ID}-why-floor"]
    main = store.load_run(runs / RUN_ID)
    for path in why_dirs:
        run = store.load_run(path)
        assert run.metadata["status"] == "complete" and run.repetitions["valid"].all(), run.repetitions
        assert run.metadata["started_at"] < main.metadata["started_at"]
        assert "forked" in run.metadata["process_model"]
    assert len(store.load_run(why_dirs[0]).measured_repetitions) == 12
    assert "why it is faster" in completed.stdout and "of the speedup" in completed.stdout
    page = (root / "reports" / RUN_ID / "report.html").read_text(encoding="utf-8")
    answer, method = page.index("The answer"), page.index("How the figures were obtained")
    assert answer < page.index('id="verdicts"') < method
    assert answer < page.index("of the speedup of the summed test time") < method
    assert "each switch's share of the baseline" in page


def test_report_shows_the_environment_sections_recorded_beside_the_run(smoke):
    """Environment runs recorded (with fake processes) beside the smoke run before it: the report
    and the end-of-study summary show their figures."""
    root, completed, _, _, _ = smoke
    assert completed.returncode == 0
    assert "PostgreSQL / parallel" in completed.stdout and "why it is faster" in completed.stdout
    report_dir = root / "reports" / RUN_ID
    page = (report_dir / "report.html").read_text()
    assert "Not measured in run" not in page
    for fragment in ("PostgreSQL, per isolation strategy", "serial vs parallel", "rollback", "baseline@n=2"):
        assert fragment in page, fragment
    assert not (report_dir / f"{pipeline.WHY_NOTEBOOK}.ipynb").exists(), "the smoke profile leaves notebook 05 out"


def _environment_seconds(switches, test_index: int, workers: int) -> float:
    storage = {"disk": 0.3, "memory": 0.05, "postgres": 0.4}[switches.storage]
    return storage * (0.3 if switches.isolation == "rollback" else 1.0) * (1 + 0.1 * test_index)


def _verdict_rows(page: str) -> dict[str, str]:
    table = re.search(r'<table[^>]*id="verdicts"[^>]*>(.*?)</table>', page, re.DOTALL)
    assert table, "the report has no verdict table"
    rows = {}
    for row in re.findall(r"<tr[^>]*>(.*?)</tr>", table.group(1), re.DOTALL):
        cells = [
            html.unescape(re.sub(r"<[^>]+>", "", cell)).strip()
            for cell in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row, re.DOTALL)
        ]
        rows[cells[0]] = " | ".join(cells)
    return rows


def _roundings(value: float, spec: str) -> set[str]:
    """The value as the report prints it, allowing for float summation order in the last digit."""
    return {format(value * (1 + e), spec) for e in (-1e-9, 0.0, 1e-9)}


def test_report_numbers_match_an_independent_recomputation(smoke):
    root, completed, _, _, _ = smoke
    assert completed.returncode == 0
    timings = pd.read_csv(root / "data" / "runs" / RUN_ID / "timings.csv")
    measured = timings[(timings["phase"] == "total") & timings["valid"] & ~timings["warmup"]]
    measured = measured[~measured["test"].str.startswith("<fixture:")]
    # The verdicts use geometric means over processes, on the tests that passed in every process of
    # both architectures (the baseline's strict-xfail tests are left out).
    processes = measured.groupby("variant")["repetition"].nunique()
    passed = measured[measured["outcome"] == "passed"].groupby(["test", "variant"])["repetition"].nunique().unstack()
    comparable = passed.index[
        (passed["baseline"] == processes["baseline"]) & (passed["transactional"] == processes["transactional"])
    ]
    api_times = measured[(measured["test"] == API_TEST) & (measured["variant"] == "transactional")]["seconds"]
    api_median = float(np.exp(np.log(api_times).mean()))
    sums = measured[measured["test"].isin(comparable)].groupby(["variant", "repetition"])["seconds"].sum()
    improvement = (1 - np.exp(np.log(sums["transactional"]).mean() - np.log(sums["baseline"]).mean())) * 100

    page = (root / "reports" / RUN_ID / "report.html").read_text(encoding="utf-8")
    rows = _verdict_rows(page)
    assert set(rows) >= {"criterion", "API test < 0.5 s", "suite improvement >= 70 %", "no failing tests"}
    api_row, suite_row = rows["API test < 0.5 s"], rows["suite improvement >= 70 %"]
    assert any(f"| {text} s |" in api_row for text in _roundings(api_median, ".4g")), (api_median, api_row)
    assert any(f"| {text} % |" in suite_row for text in _roundings(improvement, ".1f")), (improvement, suite_row)
    assert RUN_ID in page and 'tables_for_run("' in page
    assert "seed's claim" in page
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", page, re.IGNORECASE)


# ---------------------------------------------------------------- the command line


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--profile", "huge"], "invalid choice: 'huge'"),
        (["--run-id", "../escape"], "bad run id"),
        (["--no-such-option"], "unrecognized arguments"),
        (["--output-root", str(RUN_ALL)], "is not a directory"),
        (["--resume", "a", "--run-id", "b"], "name different runs"),
        (["--with", "why,gpu"], "unknown section 'gpu'"),
    ],
)
def test_bad_options_exit_2_with_one_line(args, fragment, capsys):
    # In-process: run_all.py's main is what `python run_all.py` calls (the script itself runs as a
    # command in the tests above and below).
    try:
        code = _load_run_all().main(args)
    except SystemExit as stop:
        code = stop.code
    captured = capsys.readouterr()
    assert code == 2
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], captured.err
    assert "Traceback" not in captured.err and captured.out == ""


def test_resuming_an_unknown_run_is_one_error_line(tmp_path):
    completed = _run_all("--resume", "nope", "--output-root", str(tmp_path), "--no-progress", timeout=120)
    assert completed.returncode == 2
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "nope" in lines[0], completed.stderr


class _FakeResult:
    def __init__(self, *, passed: bool, check: bool) -> None:
        self.check = check
        self.all_passed = passed
        self.check_failed = check and not passed


@pytest.mark.parametrize("passed, check, status", [(True, True, 0), (False, True, 1), (False, False, 0)])
def test_check_exits_1_only_when_a_criterion_fails(monkeypatch, capsys, passed, check, status):
    run_all = _load_run_all()

    seen = {}

    def fake_run_study(**kwargs):
        seen.update(kwargs)
        return _FakeResult(passed=passed, check=kwargs["check"])

    monkeypatch.setattr(pipeline, "run_study", fake_run_study)
    monkeypatch.setattr(pipeline, "format_summary", lambda result: ["summary"])
    argv = ["--profile", "smoke", "--no-progress"] + (["--check"] if check else [])
    assert run_all.main(argv) == status
    assert seen["profile"] == "smoke" and seen["check"] is check and seen["progress"] is False
    assert capsys.readouterr().out == "summary\n"


def test_library_errors_become_one_line_and_exit_2(monkeypatch, capsys):
    run_all = _load_run_all()

    def failing(**kwargs):
        raise BenchError("notebook 02_analysis.ipynb failed in cell [3]: ValueError: boom")

    monkeypatch.setattr(pipeline, "run_study", failing)
    assert run_all.main(["--no-progress"]) == 2
    captured = capsys.readouterr()
    assert captured.err == "error: notebook 02_analysis.ipynb failed in cell [3]: ValueError: boom\n"


def test_profiles_fit_their_purpose():
    smoke = profiles.get_profile("smoke")
    assert smoke.repetitions == 2 and smoke.warmup == 0 and smoke.marker and "integration" in smoke.marker
    assert profiles.DEFAULT_PROFILE == "standard"
    assert profiles.get_profile("full").repetitions > profiles.get_profile("standard").repetitions
    with pytest.raises(BenchError, match="choose one of smoke, quick, standard, full"):
        profiles.get_profile("nope")


@pytest.mark.skipif(not hasattr(signal, "SIGINT") or os.name != "posix", reason="POSIX signals")
def test_ctrl_c_exits_130_in_one_line_and_keeps_the_data(tmp_path):
    process = subprocess.Popen(
        [
            sys.executable,
            str(RUN_ALL),
            "--profile",
            "smoke",
            "--output-root",
            str(tmp_path),
            "--run-id",
            "stopped",
            "--no-progress",
            # interrupted in the main run (the why section, measured first, is left out)
            "--with",
            "none",
        ],
        cwd=paths.ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    metadata = tmp_path / "data" / "runs" / "stopped" / "metadata.json"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if metadata.exists() and json.loads(metadata.read_text()).get("status") == "running":
            break
        time.sleep(0.1)
    else:
        process.kill()
        pytest.fail("the run never started")
    time.sleep(0.5)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("interrupted: ") and "Traceback" not in stderr, stderr
    assert json.loads(metadata.read_text())["status"] == "interrupted"
    assert "--resume stopped" in lines[0]
