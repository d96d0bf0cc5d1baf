"""PostgreSQL (issue 7, section 1): the throwaway cluster starts and always goes away, and the
suite passes, with its isolation guards firing when isolation breaks, under every isolation
strategy on PostgreSQL.

Nothing here skips: without PostgreSQL these tests fail with the fix in the message (CI must run
them). Deselect them locally with `-m "not postgres"`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from sqlalchemy import text
from suite_process import run_suite, switch_args
from test_suite_proofs import COVERING_ROWS, row_args

from quiz_architectures import architectures, pg
from quiz_architectures.errors import ArchitectureError
from quiz_study import paths
from quiz_study import variants as study_variants
from suitebench import store
from suitebench.records import read_records

pytestmark = pytest.mark.postgres

LIMITATION_TESTS = {
    "test_integration.py::test_flushed_user_logs_in_and_calls_protected_endpoint",
    "test_integration.py::test_token_revoked_in_this_test_is_rejected_by_blacklist_middleware",
    "test_integration.py::test_no_second_connection_during_request_cycle",
    "test_integration.py::test_role_granted_in_this_test_is_seen_by_authorization_middleware",
}
# The presets with storage=postgres and each isolation strategy; rollback with the baseline's own
# sessions is refused (tested in test_architectures).
STRATEGIES = {
    "baseline": ("recreate", "truncate", "template"),
    "transactional": ("recreate", "rollback", "truncate", "template"),
}
FAULT_FOR = {
    "recreate": "skip-recreate",
    "rollback": "teardown-commit",
    "truncate": "truncate-skip-table",
    "template": "skip-template",
}
CHILD_WITH_CLUSTER = """
import json, time
from quiz_architectures import pg
with pg.throwaway_cluster() as cluster:
    print(json.dumps({"root": str(cluster.root_dir), "postmaster": cluster.postmaster_pid}), flush=True)
    time.sleep(600)
"""


def spec(preset: str, isolation: str) -> str:
    return f"{preset}+storage=postgres,isolation={isolation}"


def running(pid: int) -> bool:
    """True while `pid` is a live process (a zombie nobody reaped is not running)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in {"Z", "X"}


def wait_until(condition, timeout_s: float = 30.0) -> bool:  # noqa: ANN001
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


@pytest.fixture
def short_tmp():
    """A short private TMPDIR for a child (socket paths are limited to ~100 bytes)."""
    directory = Path(tempfile.mkdtemp(prefix="qt-", dir="/tmp"))
    directory.chmod(0o755)  # reachable by the unprivileged user the server runs as
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


# ---------------------------------------------------------------- the cluster


def test_throwaway_cluster_runs_unprivileged_with_default_durability_and_is_removed(tmp_path):
    with pg.throwaway_cluster() as cluster:
        assert running(cluster.postmaster_pid)
        settings = pg.check_connection(cluster.admin_url)
        assert settings["fsync"] == "on" and settings["synchronous_commit"] == "on"
        assert settings["server_version"].startswith(("1", "2"))
        owner = cluster.data_dir.stat().st_uid
        assert owner != 0 and owner == os.stat(cluster.socket_dir).st_uid
    assert not cluster.root_dir.exists()
    assert wait_until(lambda: not running(cluster.postmaster_pid), timeout_s=5)


@pytest.mark.parametrize("how", ["SIGINT", "SIGTERM", "SIGKILL", "SIGKILL to the process group"])
def test_no_server_is_left_behind_however_the_owner_ends(how):
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD_WITH_CLUSTER],
        cwd=paths.ROOT,
        env={**os.environ, "PYTHONPATH": str(paths.ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        started = json.loads(child.stdout.readline())
        root, postmaster = Path(started["root"]), started["postmaster"]
        assert running(postmaster) and root.exists()
        if how == "SIGKILL to the process group":
            os.killpg(child.pid, signal.SIGKILL)  # what the runner does to a repetition that hangs
        else:
            child.send_signal(getattr(signal, how))
        child.wait(timeout=60)
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
    assert wait_until(lambda: not running(postmaster) and not root.exists()), (
        f"server {postmaster} or {root} left behind"
    )


def test_missing_binaries_is_one_error_naming_the_fix(tmp_path):
    with pytest.raises(ArchitectureError, match=r"apt-get install postgresql.*QUIZ_POSTGRES_URL"):
        pg.find_binaries(path=str(tmp_path), search=str(tmp_path / "*" / "bin"))


def test_unreachable_server_is_one_line_usage_error(tmp_path):
    url = "postgresql://nobody:secret@/postgres?host=/nonexistent"
    run = run_suite("--switch", "storage=postgres", "--postgres-url", url, workdir=tmp_path)
    assert run.exit_code == 4 and run.records == []
    errors = [line for line in run.output.splitlines() if line.startswith("ERROR:")]
    assert len(errors) == 1 and "cannot connect to PostgreSQL" in errors[0] and "Traceback" not in run.output
    assert "secret" not in run.output


@pytest.mark.parametrize(
    ("url", "message"), [("sqlite://", "not a PostgreSQL URL"), ("no url at all", "bad PostgreSQL URL")]
)
def test_urls_that_are_not_postgres_are_refused(url, message):
    with pytest.raises(ArchitectureError, match=message):
        pg.check_connection(url)


def test_plain_postgresql_urls_use_psycopg():
    assert pg.normalize_url("postgresql://u:p@h:5/db") == "postgresql+psycopg://u:p@h:5/db"


def test_serial_run_starts_and_stops_its_own_cluster(short_tmp, monkeypatch):
    # No URL: the session fixture starts a cluster (its cost is that fixture's set-up) and stops it.
    monkeypatch.setenv("TMPDIR", str(short_tmp))
    run = run_suite("--switch", "storage=postgres", "-m", "isolation", workdir=short_tmp / "run")
    assert run.exit_code == 0, run.output[-2000:]
    fixtures = {r["name"] for r in run.records if r.get("kind") == "fixture"}
    assert "postgres_admin_url" in fixtures
    assert not list(short_tmp.glob("quiz-pg-*"))


def test_interrupted_parallel_run_leaves_no_server(short_tmp):
    command = [
        sys.executable,
        "-m",
        "pytest",
        str(paths.SUITE),
        "-q",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:randomly",
        "-n",
        "2",
        "--switch",
        "storage=postgres",
        "--switch",
        "isolation=template",
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUIZ_")}
    controller = subprocess.Popen(
        command,
        cwd=paths.ROOT,
        env={**env, "TMPDIR": str(short_tmp)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        assert wait_until(lambda: list(short_tmp.glob("quiz-pg-*/data/postmaster.pid")), timeout_s=60)
        (pid_file,) = short_tmp.glob("quiz-pg-*/data/postmaster.pid")
        postmaster = int(pid_file.read_text().split()[0])
        time.sleep(3)  # let the workers connect and run tests
        controller.send_signal(signal.SIGINT)  # Ctrl-C
        controller.wait(timeout=120)
    finally:
        if controller.poll() is None:
            os.killpg(controller.pid, signal.SIGKILL)
    assert controller.returncode == 2  # pytest's "interrupted"
    assert wait_until(lambda: not running(postmaster) and not list(short_tmp.glob("quiz-pg-*")))


def test_runner_starts_one_server_for_the_whole_run_and_records_its_settings(short_tmp, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(short_tmp))
    result = study_variants.run_benchmark(
        variants=["transactional+storage=postgres", "transactional+storage=postgres@n=2"],
        repetitions=1,
        warmup=0,
        selection={"keyword": "canary"},
        output_dir=short_tmp / "runs",
        run_id="pg-smoke",
        progress=False,
        environ={k: v for k, v in os.environ.items() if k != pg.POSTGRES_URL_ENV},
    )
    assert result.status == "complete" and result.invalid_measured_repetitions == 0
    metadata = store.read_metadata(result.run_dir)
    (server,) = metadata["service_descriptions"]["postgres"]
    assert server["source"] == "throwaway cluster" and server["settings"]["fsync"] == "on"
    # The children connected to the run's server: none started its own (that takes ~1 s).
    records = read_records(result.run_dir / store.RAW_DIR / "rep-0000")
    (fixture,) = [r for r in records if r.get("kind") == "fixture" and r["name"] == "postgres_admin_url"]
    assert fixture["duration_ns"] < 0.2e9
    assert not list(short_tmp.glob("quiz-pg-*"))


# ---------------------------------------------------------------- the suite on PostgreSQL
# The whole-suite runs on PostgreSQL are the covering array's rows (tests/test_suite_proofs.py),
# shared with this module: at least one row per isolation strategy, with both wirings among them.
# --run-slow adds the presets' own pairings of storage=postgres with every strategy.

POSTGRES_ROWS = {
    row["isolation"]: row
    for row, reason in sorted(COVERING_ROWS, key=lambda r: r[0]["password_hash"] == "test")
    if reason is None and row["storage"] == "postgres"
}
PRESET_PAIRINGS = [
    pytest.param(preset, isolation, marks=pytest.mark.slow)
    for preset, strategies in STRATEGIES.items()
    for isolation in strategies
]


def test_the_covering_rows_run_every_strategy_on_postgres_with_both_wirings():
    assert set(POSTGRES_ROWS) == set(FAULT_FOR)
    rows = [row for row, reason in COVERING_ROWS if reason is None and row["storage"] == "postgres"]
    assert {row["session_wiring"] for row in rows} == {"own", "injected"}


@pytest.mark.parametrize(("preset", "isolation"), PRESET_PAIRINGS)
def test_preset_passes_under_every_isolation_strategy_on_postgres(suite_runs, preset, isolation):
    run = suite_runs.get(*architectures.parse_spec(spec(preset, isolation)).pytest_args())
    assert run.exit_code == 0, (sorted(run.failed()), run.output[-3000:])
    expected_xfail = LIMITATION_TESTS if preset == "baseline" else set()
    assert {n for n, o in run.outcomes.items() if o == "xfailed"} == expected_xfail
    assert set(run.outcomes.values()) <= {"passed", "xfailed"}


@pytest.mark.parametrize("isolation", sorted(FAULT_FOR))
def test_isolation_guards_fire_when_each_strategy_breaks_on_postgres(suite_runs, isolation):
    row = POSTGRES_ROWS[isolation]
    control = suite_runs.get(*row_args(row))
    assert control.exit_code == 0, control.output[-2000:]
    broken = suite_runs.get(*switch_args(row), "-m", "isolation", "--inject-fault", FAULT_FOR[isolation])
    assert broken.exit_code == 1, broken.output[-2000:]
    assert len(broken.failed()) >= 3, broken.outcomes


def test_every_test_database_is_dropped_afterwards(suite_runs, postgres_admin_url):
    # The server is shared by the whole session, so other workers' databases may exist now:
    # what must not exist is a database whose process (quiz_<worker>_<pid>) has ended.
    for isolation in ("template", "truncate"):
        assert suite_runs.get(*row_args(POSTGRES_ROWS[isolation])).exit_code == 0
    engine = pg.admin_engine(postgres_admin_url)
    with engine.connect() as connection:
        names = set(connection.execute(text("SELECT datname FROM pg_database")).scalars())
    owners = {name: re.fullmatch(r"quiz_\w+?_(\d+)(_template)?", name) for name in names}
    leftovers = [name for name, owner in owners.items() if owner and not running(int(owner.group(1)))]
    assert not leftovers


def test_reset_strategies_do_their_work_in_setup_and_rollback_none(suite_runs):
    def setup_counts(isolation):
        frame = suite_runs.get(*row_args(POSTGRES_ROWS[isolation])).frame()
        return frame[~frame["test"].str.startswith("<fixture:") & (frame["phase"] == "setup")]

    assert (setup_counts("recreate")["ddl_statements"] > 0).all()
    # TRUNCATE is one statement, and not counted as DDL (CREATE/DROP/ALTER) by suitebench.counters.
    truncate = setup_counts("truncate")
    assert (truncate["ddl_statements"] == 0).all() and (truncate["sql_statements"] >= 1).all()
    # A template clone is DROP DATABASE + CREATE DATABASE on the admin connection.
    assert (setup_counts("template")["ddl_statements"] == 2).all()
    assert (setup_counts("rollback")["ddl_statements"] == 0).all()


def test_fault_for_another_strategy_is_refused(tmp_path):
    run = run_suite("--arch", "transactional", "--inject-fault", "skip-template", workdir=tmp_path)
    assert run.exit_code == 4 and run.records == []
    assert "breaks isolation=template, but the switches select isolation=rollback" in run.output
