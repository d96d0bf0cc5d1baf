"""A run's data stays whole (issue 16): a resume measures the same code, one process writes a run,
no pytest process outlives its runner, a full disk stops a run cleanly, a hung test costs one
repetition.

Fault injection on tiny synthetic suites written into tmp_path: kill -9 and SIGHUP of a real
runner process, a file-size limit (RLIMIT_FSIZE) on a real runner, a test that hangs. The
bookkeeping faults (an edited suite, a second writer, a stale child) use a fake executor.
"""

from __future__ import annotations

import errno
import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from test_runner import FAST, FakeExecutor, as_variants

from suitebench import children, cli, fingerprint, runner, store
from suitebench.errors import BenchError

CONFTEST = """\
def pytest_addoption(parser):
    parser.addoption("--arch", default="ok")
"""

# `--arch hang` hangs in every process; `--arch hang-second` only in the run's second process.
# A hanging test first starts a grandchild in its process group (as a pytest-xdist worker would
# be) and writes both pids to `hung.txt`.
TESTS = """\
import os, pathlib, subprocess, time

STATE = pathlib.Path({state!r})

def test_sums():
    assert sum(range(1000)) == 499500

def test_may_hang(request):
    arch = request.config.getoption("--arch")
    number = len(list(STATE.glob("process-*")))
    (STATE / f"process-{{number}}").touch()
    if arch == "hang" or (arch == "hang-second" and number == 1):
        grandchild = subprocess.Popen(["sleep", "60"])
        (STATE / "hung.txt").write_text(f"{{os.getpid()}} {{grandchild.pid}}")
        time.sleep(60)
"""

MANY = """\
import pytest

@pytest.mark.parametrize("i", range({many}))
def test_many(i):
    assert i >= 0
"""


def write_suite(directory: Path, *, many: int = 0) -> Path:
    state = directory / "state"
    state.mkdir()
    suite = directory / "suite"
    suite.mkdir()
    (suite / "conftest.py").write_text(CONFTEST)
    (suite / "test_work.py").write_text(TESTS.format(state=str(state)))
    if many:
        (suite / "test_many.py").write_text(MANY.format(many=many))
    return suite


def running(pid: int) -> bool:
    """Alive and not a zombie (a container's pid 1 may never reap an orphan)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat[stat.rfind(")") + 2] != "Z"


def wait_for(condition, *, timeout_s: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def hung_pids(directory: Path) -> list[int]:
    path = directory / "state" / "hung.txt"
    assert wait_for(lambda: path.exists() and path.read_text().count(" ") == 1), "the test never hung"
    return [int(pid) for pid in path.read_text().split()]


def kill_all(pids: list[int]) -> None:
    """Test clean-up: whatever the assertions found, nothing started here keeps running."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def fake_run(tmp_path: Path, suite: Path, **options):
    options.setdefault("variants", as_variants("baseline", "transactional"))
    options.setdefault("repetitions", 2)
    options.setdefault("warmup", 0)
    options.setdefault("run_id", "r1")
    options.setdefault("executor", FakeExecutor())
    return runner.run_benchmark(output_dir=tmp_path / "runs", suite_path=suite, progress=False, **options)


def resume(tmp_path: Path, run_id: str = "r1", **options):
    return runner.run_benchmark(output_dir=tmp_path / "runs", run_id=run_id, resume=True, progress=False, **options)


def planned_once(run: store.RunData) -> bool:
    """Each planned repetition exactly once in both tidy tables."""
    planned = [entry["repetition"] for entry in run.metadata["schedule"]]
    timed = sorted(set(run.timings["repetition"]))
    return run.repetitions["repetition"].tolist() == planned and timed == planned


# ---------------------------------------------------------------- 1. the same code


def test_resume_after_an_edit_of_the_suite_is_refused_naming_the_file(tmp_path, capsys):
    suite = write_suite(tmp_path)
    with pytest.raises(runner.RunInterrupted):
        fake_run(tmp_path, suite, executor=FakeExecutor(interrupt_on=2))
    test_file = suite / "test_work.py"
    original = test_file.read_text()
    test_file.write_text(original + "\n# one more line\n")

    assert cli.main(["run", "--resume", "r1", "--runs-dir", str(tmp_path / "runs"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("error: cannot resume run 'r1': the code it measures changed since it was planned (")
    assert f"{suite}/test_work.py changed" in err

    # Restored, the same code again: the resume goes through and completes the run exactly.
    test_file.write_text(original)
    result = resume(tmp_path, executor=FakeExecutor())
    assert result.status == "complete"
    run = store.load_run(result.run_dir)
    assert planned_once(run) and run.repetitions["code_hash"].nunique() == 1
    assert run.repetitions["code_hash"].iloc[0] == run.metadata["fingerprint"]["code_hash"]


def test_code_changed_during_a_run_invalidates_that_repetition_and_stops_the_run(tmp_path):
    suite = write_suite(tmp_path)
    edit = FakeExecutor()

    def edits_during_the_second(command, **options):
        if len(edit.calls) == 1:
            (suite / "helper.py").write_text("VALUE = 1\n")
        return edit(command, **options)

    with pytest.raises(BenchError, match=r"stopped after 2 of 4 repetitions: the measured code changed during") as stop:
        fake_run(tmp_path, suite, executor=edits_during_the_second)
    assert f"{suite}/helper.py added" in str(stop.value) and "restore the code and continue with:" in str(stop.value)
    run = store.load_run(tmp_path / "runs" / "r1")
    assert run.repetitions["valid"].tolist() == [True, False]
    assert run.repetitions["invalid_reason"].iloc[1].startswith("the measured code changed while it ran")
    assert run.repetitions["code_hash"].iloc[0] == run.metadata["fingerprint"]["code_hash"]
    assert run.repetitions["code_hash"].iloc[1] != run.metadata["fingerprint"]["code_hash"]
    assert (run.metadata["status"], run.metadata["status_reason"].split(" (")[0]) == (
        "interrupted",
        "the measured code changed during the run",
    )
    with pytest.raises(BenchError, match="helper.py added"):
        resume(tmp_path, executor=FakeExecutor())
    (suite / "helper.py").unlink()
    assert resume(tmp_path, executor=FakeExecutor()).completed_repetitions == 4


def test_fingerprint_of_a_git_tree_is_head_plus_changed_and_untracked_files_not_ignored(tmp_path):
    repo = tmp_path / "repo"
    (repo / "pkg").mkdir(parents=True)
    (repo / "pkg" / "mod.py").write_text("A = 1\n")
    (repo / ".gitignore").write_text("*.db\nruns/\n")
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "one"], check=True)
    trees = fingerprint.resolve_trees([repo / "pkg"], exclude=[repo / "pkg" / "out"])
    assert list(trees.repositories) == [str(repo.resolve())] and trees.plain == ()
    clean = fingerprint.fingerprint(trees, plugin_args=["-p", "x"])
    assert clean["trees"][str(repo.resolve())]["changed"] == {}

    (repo / "pkg" / "quiz.db").write_text("ignored")
    (repo / "pkg" / "out").mkdir()
    (repo / "pkg" / "out" / "run.csv").write_text("the run's own output, excluded")
    assert fingerprint.fingerprint(trees, plugin_args=["-p", "x"])["code_hash"] == clean["code_hash"]

    (repo / "pkg" / "mod.py").write_text("A = 2\n")
    (repo / "pkg" / "new.py").write_text("B = 1\n")
    edited = fingerprint.fingerprint(trees, plugin_args=["-p", "x"])
    assert fingerprint.fingerprint_changes(clean, edited) == ["pkg/mod.py changed", "pkg/new.py changed"]
    again = fingerprint.fingerprint(trees, plugin_args=["-p", "y"])
    assert fingerprint.fingerprint_changes(edited, again) == ["timing plugin arguments ['-p', 'x'] -> ['-p', 'y']"]

    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "two"], check=True)
    committed = fingerprint.fingerprint(trees, plugin_args=["-p", "x"])
    (head_change,) = fingerprint.fingerprint_changes(clean, committed)
    assert head_change.startswith(f"git HEAD of {repo.resolve()} ")


def test_installed_distributions_come_from_dist_info_names(tmp_path):
    for name in ("pytest-8.3.2.dist-info", "SQLAlchemy-2.0.30.dist-info", "legacy_pkg-1.0-py3.11.egg-info", "pkg"):
        (tmp_path / name).mkdir()
    assert fingerprint.installed_distributions([tmp_path]) == {
        "legacy-pkg": "1.0",
        "pytest": "8.3.2",
        "sqlalchemy": "2.0.30",
    }
    old = {"code_hash": "a", "packages": {"pytest": "8.3.2", "gone": "1"}}
    new = {"code_hash": "b", "packages": {"pytest": "8.4.0", "added": "2"}}
    assert fingerprint.fingerprint_changes(old, new) == [
        "added 2 installed",
        "gone 1 uninstalled",
        "pytest 8.3.2 -> 8.4.0",
    ]
    assert fingerprint.describe_changes([f"f{i} changed" for i in range(7)]).endswith("f4 changed and 2 more")


# ---------------------------------------------------------------- 2. one writer, no orphans


def test_a_second_concurrent_resume_is_refused(tmp_path):
    suite = write_suite(tmp_path)
    with pytest.raises(runner.RunInterrupted):
        fake_run(tmp_path, suite, executor=FakeExecutor(interrupt_on=2))
    first = FakeExecutor()
    refused = []

    def resumes_again_meanwhile(command, **options):
        try:
            resume(tmp_path, executor=FakeExecutor())
        except BenchError as problem:
            refused.append(str(problem))
        return first(command, **options)

    result = resume(tmp_path, executor=resumes_again_meanwhile)
    assert refused and all(
        message == f"run 'r1' is being written by another process (pid {os.getpid()}); "
        "wait for it to finish or stop it, then resume"
        for message in refused
    )
    assert result.completed_repetitions == 4 and planned_once(store.load_run(result.run_dir))


def test_resume_kills_a_stale_child_before_it_can_write_into_its_old_repetition(tmp_path):
    suite = write_suite(tmp_path)
    with pytest.raises(runner.RunInterrupted):
        fake_run(tmp_path, suite, executor=FakeExecutor(interrupt_on=2))
    # What a runner killed together with its watchdog leaves: repetition 1's process still
    # running, in its own session, with a grandchild, recorded in the repetition's raw directory.
    raw = store.raw_dir(tmp_path / "runs" / "r1", 1)
    raw.mkdir(parents=True, exist_ok=True)
    # By absolute path, as the timing plugin writes: into whatever directory has that name now.
    script = f"sleep 60 & echo $! > grandchild; while :; do echo stale >> {raw}/pytest.log; sleep 0.05; done"
    stale = subprocess.Popen(["sh", "-c", script], cwd=raw, start_new_session=True)
    try:
        children.record_child(raw, stale.pid)
        assert wait_for(lambda: (raw / "grandchild").exists() and (raw / "grandchild").read_text().strip())
        grandchild = int((raw / "grandchild").read_text())

        result = resume(tmp_path, executor=FakeExecutor())
        time.sleep(0.2)  # a stale writer would have written by now

        assert (raw / "pytest.log").read_text() == "fake\n" and not (raw / children.CHILD_FILE).exists()
        assert not running(stale.pid) and not running(grandchild)
        assert result.completed_repetitions == 4 and planned_once(store.load_run(result.run_dir))
    finally:
        kill_all([stale.pid])


RUNNER_SCRIPT = """\
import sys
from suitebench import runner

runner.run_benchmark(
    suite_path=sys.argv[1],
    output_dir=sys.argv[2],
    run_id="k9",
    variants=[runner.Variant(label="a", pytest_args=("--arch", "hang-second"))],
    repetitions=2,
    warmup=0,
    extra_pytest_args=sys.argv[3:],
    progress=False,
)
"""


def test_kill_9_of_the_runner_mid_repetition_kills_its_child_and_resume_completes_the_run(tmp_path):
    suite = write_suite(tmp_path)
    runs = tmp_path / "runs"
    runner_process = subprocess.Popen(
        [sys.executable, "-c", RUNNER_SCRIPT, str(suite), str(runs), *FAST],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    pids: list[int] = []
    try:
        pids = hung_pids(tmp_path)  # repetition 1's pytest process and its grandchild, hanging
        assert (runs / "k9" / store.REPETITIONS_FILE).read_text().count("\n") == 2
        runner_process.kill()
        runner_process.wait(timeout=10)

        assert wait_for(lambda: not any(running(pid) for pid in pids), timeout_s=5), "orphans of the runner"
        assert store.read_metadata(runs / "k9")["status"] == "running"

        result = resume(tmp_path, "k9", executor=FakeExecutor())
        assert (result.status, result.executed_repetitions, result.completed_repetitions) == ("complete", 1, 2)
        run = store.load_run(result.run_dir)
        assert planned_once(run) and run.repetitions["valid"].all()
        assert run.timings[run.timings["phase"] == "total"].groupby("repetition").size().eq(2).all()
    finally:
        runner_process.kill()
        kill_all(pids)


def test_sighup_stops_a_run_like_sigterm_with_its_child_and_a_resume_hint(tmp_path):
    suite = write_suite(tmp_path)
    runs = tmp_path / "runs"
    command = [sys.executable, "-m", "suitebench", "run", "--suite", str(suite), "--variant", "a=--arch hang"]
    command += ["--repetitions", "1", "--warmup", "0", "--runs-dir", str(runs), "--run-id", "h1", "--no-progress"]
    command += [f"--pytest-arg={arg}" for arg in FAST]
    runner_process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    pids: list[int] = []
    try:
        pids = hung_pids(tmp_path)
        runner_process.send_signal(signal.SIGHUP)
        _, stderr = runner_process.communicate(timeout=30)

        assert runner_process.returncode == 130, stderr
        assert stderr.count("\n") == 1 and stderr.startswith("interrupted: run 'h1' interrupted after 0 of 1")
        assert stderr.rstrip().endswith(f"continue with: python -m suitebench run --resume h1 --runs-dir {runs}")
        metadata = store.read_metadata(runs / "h1")
        assert metadata["status"] == "interrupted" and metadata["status_reason"].startswith("interrupted")
        assert wait_for(lambda: not any(running(pid) for pid in pids), timeout_s=5)
    finally:
        runner_process.kill()
        kill_all(pids)


# ---------------------------------------------------------------- 3. a full disk


# The engine's command line, in a process of its own, with the executor replaced by one that
# writes the timing records of 100 passing tests (no pytest process: the runner's writes are the
# point): each repetition adds ~28 KB to timings.csv, and its raw file and metadata.json stay far
# below the limit the test sets.
FAKE_SUITE_CLI = """\
import json, sys
from functools import partial
from suitebench import cli, runner

def fake_process(command, *, env, cwd, log_path, timeout_s):
    raw = log_path.parent
    phase = {"duration_ns": 1000, "counters": {}}
    with open(raw / "1-main.jsonl", "w") as handle:
        for i in range(100):
            record = {"schema_version": 1, "kind": "test", "nodeid": f"t.py::test_{i}", "category": "crud",
                      "outcome": "passed", "phases": {"setup": phase, "call": phase, "teardown": phase}}
            handle.write(json.dumps(record) + "\\n")
    log_path.write_text("fake\\n")
    return runner.ProcessOutcome(exit_code=0, wall_s=0.01, timed_out=False)

runner.run_benchmark = partial(runner.run_benchmark, executor=fake_process)
sys.exit(cli.main(sys.argv[1:]))
"""


def test_a_write_beyond_the_file_size_limit_is_one_error_line_exit_2_and_keeps_earlier_data(tmp_path):
    suite = write_suite(tmp_path)
    runs = tmp_path / "runs"
    arguments = ["run", "--suite", str(suite), "--variant", "a=", "--repetitions", "3", "--warmup", "0"]
    arguments += ["--runs-dir", str(runs), "--run-id", "d1", "--no-progress"]
    limit = 42 * 1024

    def limit_file_size():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    completed = subprocess.run(
        [sys.executable, "-c", FAKE_SUITE_CLI, *arguments],
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=limit_file_size,
    )

    run_dir = runs / "d1"
    assert completed.returncode == 2, completed.stderr
    assert completed.stderr.count("\n") == 1 and "Traceback" not in completed.stderr
    assert completed.stderr.startswith(
        "error: run 'd1' stopped after 1 of 3 repetitions: cannot write the run's data: file too large"
    )
    assert f"({run_dir / store.TIMINGS_FILE})" in completed.stderr and "--resume d1" in completed.stderr
    metadata = store.read_metadata(run_dir)
    assert metadata["status"] == "failed" and "file too large" in metadata["status_reason"]
    assert not [path for path in run_dir.rglob("*") if path.name.endswith(".tmp")]
    assert not store.raw_dir(run_dir, 1).exists()
    timings_text = (run_dir / store.TIMINGS_FILE).read_text()
    assert timings_text.endswith("\n")
    before = store.load_run(run_dir)
    assert before.repetitions["repetition"].tolist() == [0] and before.repetitions["valid"].all()
    assert before.timings["repetition"].eq(0).all() and len(before.timings) == 4 * 100

    # With space again the run resumes and completes; what was recorded is unchanged.
    result = resume(tmp_path, "d1", executor=FakeExecutor())
    assert result.status == "complete" and planned_once(store.load_run(result.run_dir))
    assert (run_dir / store.TIMINGS_FILE).read_text().startswith(timings_text)


def test_failed_writes_leave_files_as_they_were_and_no_temporary_file(tmp_path, monkeypatch):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    store.write_metadata(run_dir, {"schema_version": store.SCHEMA_VERSION, "status": "running"})
    frame = pd.DataFrame([{"a": 1, "b": "x"}])
    store.append_frame(run_dir / "t.csv", frame, columns=["a", "b"])
    written = (run_dir / "t.csv").read_bytes()
    real_write = os.write

    def half_then_full(descriptor, data):
        real_write(descriptor, bytes(data[: len(data) // 2]))
        raise OSError(errno.ENOSPC, "No space left on device")

    def disk_full(descriptor):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", half_then_full)
    with pytest.raises(OSError, match="No space") as problem:
        store.append_frame(run_dir / "t.csv", pd.concat([frame] * 50), columns=["a", "b"])
    assert problem.value.filename == str(run_dir / "t.csv")
    assert (run_dir / "t.csv").read_bytes() == written
    monkeypatch.undo()

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError):
        store.write_metadata(run_dir, {"schema_version": store.SCHEMA_VERSION, "status": "failed"})
    with pytest.raises(OSError):
        store.rewrite_rows(run_dir / "t.csv", [], columns=["a", "b"])
    assert sorted(path.name for path in run_dir.iterdir()) == ["metadata.json", "t.csv"]
    assert store.read_metadata(run_dir)["status"] == "running" and (run_dir / "t.csv").read_bytes() == written


def test_a_full_disk_while_marking_the_run_says_its_status_could_not_be_recorded(tmp_path, monkeypatch):
    suite = write_suite(tmp_path)
    full = FakeExecutor()

    def disk_full_at_the_second(command, **options):
        if full.calls:
            monkeypatch.setattr(store, "append_frame", refuse)
            monkeypatch.setattr(store, "write_metadata", refuse)
        return full(command, **options)

    def refuse(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", "somewhere")

    with pytest.raises(BenchError) as stopped:
        fake_run(tmp_path, suite, executor=disk_full_at_the_second)
    message = str(stopped.value)
    assert "cannot write the run's data: no space left on the device (somewhere)" in message
    assert "its status could not be recorded either" in message and "\n" not in message
    monkeypatch.undo()
    assert store.load_run(tmp_path / "runs" / "r1").repetitions["repetition"].tolist() == [0]


# ---------------------------------------------------------------- 4. a hung test


def test_a_hung_test_times_out_by_default_and_the_run_goes_on(tmp_path, monkeypatch):
    # The default limit is "auto": AUTO_FIRST_TIMEOUT_S for a variant's first repetition (30
    # minutes in earnest; shortened here, yet ~3 times what one of these processes takes).
    monkeypatch.setattr(runner, "AUTO_FIRST_TIMEOUT_S", 3.0)
    suite = write_suite(tmp_path)
    limits = []
    later = FakeExecutor()

    def real_then_fake(command, *, timeout_s, **options):
        limits.append(timeout_s)
        if len(limits) == 1:  # the hanging repetition is a real pytest process
            return runner.execute_process(command, timeout_s=timeout_s, **options)
        return later(command, timeout_s=timeout_s, **options)

    result = runner.run_benchmark(
        suite_path=suite,
        variants=[runner.Variant(label="hang", pytest_args=("--arch", "hang")), runner.Variant(label="ok")],
        repetitions=2,
        warmup=0,
        output_dir=tmp_path / "runs",
        run_id="t1",
        extra_pytest_args=FAST,
        progress=False,
        executor=real_then_fake,
    )
    assert result.status == "complete" and result.invalid_measured_repetitions == 1
    run = store.load_run(result.run_dir)
    assert run.repetitions["valid"].tolist() == [False, True, True, True]
    assert run.repetitions["invalid_reason"].iloc[0].startswith("timed out after 3 s")
    # The second repetition of each variant: ten times its slowest valid one, at least a minute.
    assert limits == [3.0, 3.0, 3.0, runner.AUTO_MIN_TIMEOUT_S]
    assert run.metadata["arguments"]["timeout_s"] == runner.AUTO_TIMEOUT
    assert not any(running(pid) for pid in hung_pids(tmp_path))


def test_auto_timeout_scales_with_the_slowest_valid_repetition():
    auto = runner.AUTO_TIMEOUT
    assert runner.repetition_timeout_s(auto, previous_wall_s=[]) == runner.AUTO_FIRST_TIMEOUT_S == 1800
    assert runner.repetition_timeout_s(auto, previous_wall_s=[2.0, 3.0]) == runner.AUTO_MIN_TIMEOUT_S == 60
    assert runner.repetition_timeout_s(auto, previous_wall_s=[30.0, 12.0]) == 300
    assert runner.repetition_timeout_s(45.0, previous_wall_s=[300.0]) == 45.0
    assert runner.repetition_timeout_s(None, previous_wall_s=[]) is None  # a run recorded without a limit


def test_timeout_option_takes_seconds_or_auto_and_defaults_to_auto(tmp_path):
    assert cli.timeout_setting("auto") == "auto" and cli.timeout_setting("2.5") == 2.5
    for bad in ("soon", "0", "-1"):
        with pytest.raises(Exception, match="expected a positive number of seconds or auto"):
            cli.timeout_setting(bad)
    with pytest.raises(BenchError, match="timeout must be positive"):
        fake_run(tmp_path, write_suite(tmp_path), timeout_s="later")
    result = fake_run(tmp_path, tmp_path / "suite")
    assert json.loads((result.run_dir / store.METADATA_FILE).read_text())["arguments"]["timeout_s"] == "auto"


# ---------------------------------------------------------------- the format


def test_runs_of_schema_version_1_load_with_an_empty_code_hash_and_resume_only_when_complete(tmp_path):
    golden = Path(__file__).parent / "data" / "golden-small" / "run"
    run = store.load_run(golden)
    assert run.metadata["schema_version"] == 1 and list(run.repetitions.columns) == list(store.REPETITION_COLUMNS)
    assert run.repetitions["code_hash"].eq("").all()
    stored = pd.read_csv(golden / store.REPETITIONS_FILE, keep_default_na=False)
    assert list(stored.columns) == list(store.REPETITION_COLUMNS_V1)
    assert run.repetitions["wall_s"].tolist() == stored["wall_s"].tolist()

    copy = tmp_path / "runs" / "golden-small"
    copy.mkdir(parents=True)
    names = (store.METADATA_FILE, store.REPETITIONS_FILE, store.TIMINGS_FILE)
    for name in names:
        (copy / name).write_bytes((golden / name).read_bytes())
    # Complete: nothing to run, so nothing to check; the study re-renders reports this way.
    assert resume(tmp_path, "golden-small", executor=FakeExecutor()).executed_repetitions == 0
    assert all((copy / name).read_bytes() == (golden / name).read_bytes() for name in names)

    # Incomplete: there is no fingerprint to check the code against.
    lines = (golden / store.REPETITIONS_FILE).read_text().splitlines(keepends=True)
    (copy / store.REPETITIONS_FILE).write_text("".join(lines[:-1]))
    with pytest.raises(BenchError, match=r"older suitebench \(schema_version 1\).*start a new run"):
        resume(tmp_path, "golden-small", executor=FakeExecutor())
    assert (copy / store.REPETITIONS_FILE).read_text() == "".join(lines[:-1])


def test_resume_on_another_machine_is_refused_unless_the_run_is_complete(tmp_path):
    suite = write_suite(tmp_path)
    with pytest.raises(runner.RunInterrupted):
        fake_run(tmp_path, suite, executor=FakeExecutor(interrupt_on=2))
    run_dir = tmp_path / "runs" / "r1"
    metadata = store.read_metadata(run_dir)
    metadata["environment"]["cpu"]["model"] = "a CPU this machine does not have"
    store.write_metadata(run_dir, metadata)
    with pytest.raises(BenchError, match=r"on a different machine or Python: cpu\.model 'a CPU this machine"):
        resume(tmp_path, executor=FakeExecutor())

    # A complete run recorded elsewhere still re-renders: nothing is measured.
    fake_run(tmp_path, suite, run_id="r2")
    metadata = store.read_metadata(tmp_path / "runs" / "r2")
    metadata["environment"]["cpu"]["model"] = "a CPU this machine does not have"
    store.write_metadata(tmp_path / "runs" / "r2", metadata)
    assert resume(tmp_path, "r2", executor=FakeExecutor()).executed_repetitions == 0


def test_resume_of_a_complete_run_is_not_refused_after_an_edit(tmp_path):
    suite = write_suite(tmp_path)
    fake_run(tmp_path, suite)
    (suite / "test_work.py").write_text("def test_other():\n    pass\n")
    executor = FakeExecutor()
    result = resume(tmp_path, executor=executor)
    assert (result.status, result.completed_repetitions, executor.calls) == ("complete", 4, [])
