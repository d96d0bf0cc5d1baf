"""quiz_study.forkserver: pytest processes forked from a pre-imported interpreter run as the runner asks
(command, environment, working directory, log, exit code, timeout), each a fresh pytest session; what it
cannot fork runs as a normal subprocess. A tiny suite and one zygote keep this to a few seconds; the real
suite is forked by tests/test_run_all.py's smoke study."""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

import pytest

from quiz_study import floor, paths
from quiz_study.forkserver import ForkServer, forkable
from suitebench.errors import BenchError
from suitebench.runner import child_environment

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")

TINY_TESTS = """\
import os, pathlib, random, time
import pytest

HERE = pathlib.Path(__file__).parent

@pytest.mark.crud
def test_env_and_cwd():
    assert os.environ["PYTHONHASHSEED"] == "0" and "TINY_PARENT_ONLY" not in os.environ
    assert os.environ["TINY_CHILD"] == "added"
    with open(HERE / "seen.txt", "a") as out:
        out.write(f"{os.getcwd()} {random.random()}\\n")

def test_sleepy():
    if (HERE / "sleep.flag").exists():
        time.sleep(30)
"""


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    suite = tmp_path_factory.mktemp("tiny")
    (suite / "test_tiny.py").write_text(TINY_TESTS)
    (suite / "conftest.py").write_text(
        "def pytest_configure(config):\n    config.addinivalue_line('markers', 'crud: category')\n"
    )
    (suite / "pytest.ini").write_text("[pytest]\nsuitebench_categories = crud auth\n")
    return suite


@pytest.fixture(scope="module")
def server():
    with ForkServer(preload=(), child_env={"TINY_CHILD": "added"}) as forks:
        yield forks


# What the runner gives its children: a whitelist of this process's environment, a fixed hash
# seed; the children run from the project root, like collect_tests' collection.
PARENT = {**os.environ, "TINY_PARENT_ONLY": "1"}


def _run(server: ForkServer, tiny: Path, log: Path, *args: str, env: dict | None = None, timeout_s: float = 60):
    command = [sys.executable, "-m", "pytest", str(tiny / "test_tiny.py"), "-p", "no:cacheprovider", "-q", *args]
    return server(
        command, env=env or child_environment(environ=PARENT), cwd=paths.ROOT, log_path=log, timeout_s=timeout_s
    )


def test_forked_processes_run_pytest_as_asked_and_each_is_fresh(server, tiny, tmp_path):
    outcomes = [_run(server, tiny, tmp_path / f"{i}.log", "-k", "env") for i in range(2)]
    assert [o.exit_code for o in outcomes] == [0, 0] and not any(o.timed_out for o in outcomes)
    assert "1 passed" in (tmp_path / "0.log").read_text()
    seen = [line.split() for line in (tiny / "seen.txt").read_text().splitlines()]
    assert [cwd for cwd, _ in seen] == [str(paths.ROOT)] * 2
    assert seen[0][1] != seen[1][1], "every child reseeds random"
    assert server.forked == 2 and server.started == 1 and server.import_s is not None


def test_a_forked_process_past_its_timeout_is_killed(server, tiny, tmp_path):
    (tiny / "sleep.flag").write_text("")
    try:
        outcome = _run(server, tiny, tmp_path / "s.log", "-k", "sleepy", timeout_s=2)
    finally:
        (tiny / "sleep.flag").unlink()
    assert outcome.timed_out and outcome.exit_code != 0 and outcome.wall_s < 20
    assert _run(server, tiny, tmp_path / "a.log", "-k", "sleepy").exit_code == 0, "the zygote survives a killed child"


def test_a_running_forked_child_is_recorded_for_the_watchdog_and_forgotten_after(server, tiny, tmp_path):
    """While a forked child runs, its group is in child.pid beside its log (what the run's watchdog
    and a resume kill, suitebench.children), as for the runner's own subprocesses."""
    (tiny / "sleep.flag").write_text("")
    log_dir = tmp_path / "rep-0"
    log_dir.mkdir()
    recorded: list[str] = []

    def watch() -> None:
        if _wait_for(log_dir / "child.pid"):
            recorded.append((log_dir / "child.pid").read_text())

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        outcome = _run(server, tiny, log_dir / "pytest.log", "-k", "sleepy", timeout_s=3)
    finally:
        (tiny / "sleep.flag").unlink()
        watcher.join()
    assert outcome.timed_out
    assert recorded, "the forked child was never recorded"
    assert not (log_dir / "child.pid").exists(), "the record outlived the child"


def _wait_for(path: Path, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if path.exists():
            return True
        time.sleep(0.01)
    return False


def test_collection_runs_in_a_fork_and_reports_markers(server, tiny, tmp_path):
    collected = floor.collect_tests(suite_path=tiny, executor=server, environ=PARENT)
    assert [name.split("::")[-1] for name in collected["test"]] == ["test_env_and_cwd", "test_sleepy"]
    assert list(collected["category"]) == ["crud", "uncategorized"]
    assert "crud" in collected["markers"].iloc[0]
    with pytest.raises(BenchError, match="collecting"):
        floor.collect_tests(suite_path=tmp_path / "missing", executor=server, environ=PARENT)
    assert server.started == 1, "the same environment and directory reuse the zygote"


def test_another_environment_restarts_the_zygote(server, tiny, tmp_path):
    failed = _run(server, tiny, tmp_path / "f.log", "-k", "env", env=PARENT)
    assert failed.exit_code == 1 and server.started == 2


def test_what_cannot_be_forked_runs_as_a_subprocess(tmp_path):
    assert forkable([sys.executable, "-m", "pytest", "suite"])
    assert not forkable([sys.executable, "-m", "pytest", "suite", "-n", "2"])
    assert not forkable(["/usr/bin/env", "python", "-m", "pytest"])
    with ForkServer(preload=()) as forks:
        command = ["/bin/sh", "-c", "echo plain; exit 3"]
        outcome = forks(command, env={}, cwd=tmp_path, log_path=tmp_path / "sh.log", timeout_s=10)
        assert outcome.exit_code == 3 and forks.started == 0
    assert (tmp_path / "sh.log").read_text().strip() == "plain"


def test_a_zygote_that_cannot_import_its_preload_is_one_clear_error(tmp_path):
    with (
        ForkServer(preload=("no_such_module_here",)) as forks,
        pytest.raises(BenchError, match="could not import") as error,
    ):
        forks(
            [sys.executable, "-c", "pass"], env=child_environment(), cwd=tmp_path, log_path=tmp_path / "x", timeout_s=10
        )
    kept = Path(str(error.value).rsplit(" ", 1)[-1])
    assert kept.is_file(), "the log the message names is kept"
    kept.unlink()
