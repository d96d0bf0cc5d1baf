"""suitebench.plugin end to end: a tiny SQLite suite run by pytester in a subprocess."""

import os
import re
from pathlib import Path

import pytest

from quiz_study import paths
from suitebench.overhead import OverheadResult, measure_plugin_overhead
from suitebench.plugin import plugin_args
from suitebench.records import read_records

ROOT = paths.ROOT
SESSION_FIXTURE_SLEEP_S = 0.2

INI = """
[pytest]
markers =
    auth
    jwt
    crud
    isolation
    custom
suitebench_categories = auth jwt crud middleware workflow isolation integration
"""

CONFTEST = f"""
import time

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import StaticPool


@pytest.fixture(scope="session")
def engine():
    time.sleep({SESSION_FIXTURE_SLEEP_S})
    engine = create_engine("sqlite://", poolclass=StaticPool)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE item (id INTEGER PRIMARY KEY, name TEXT)"))
        conn.execute(text("INSERT INTO item (name) VALUES ('a')"))
        conn.execute(text("INSERT INTO item (name) VALUES ('b')"))
    yield engine
    engine.dispose()


@pytest.fixture
def conn(engine):
    with engine.connect() as connection:
        yield connection


@pytest.fixture
def broken(engine):
    raise RuntimeError("set-up fails")


@pytest.fixture
def failing_teardown():
    yield
    raise RuntimeError("teardown fails")
"""

SUITE = """
import pytest
from sqlalchemy import text


@pytest.mark.crud
def test_three_queries(conn):
    for _ in range(3):
        conn.execute(text("SELECT count(*) FROM item")).scalar_one()


@pytest.mark.isolation
def test_ddl(conn):
    conn.exec_driver_sql("  -- raw DDL\\n  create table other (x integer)")
    conn.execute(text("DROP TABLE other"))


class TestGrouped:
    pytestmark = pytest.mark.auth

    @pytest.mark.jwt
    def test_closest_marker_wins(self):
        pass

    def test_class_marker(self):
        pass


def test_fails(conn):
    conn.execute(text("SELECT 1"))
    assert False


@pytest.mark.xfail(reason="known")
def test_xfail():
    assert False


@pytest.mark.xfail(reason="unexpectedly fine")
def test_xpass():
    pass


def test_setup_error(broken):
    pass


@pytest.mark.skip(reason="not today")
def test_skipped():
    pass


def test_teardown_error(failing_teardown):
    pass


@pytest.mark.custom
def test_custom():
    pass
"""

ALL_TESTS = {
    "test_suite.py::test_three_queries",
    "test_suite.py::test_ddl",
    "test_suite.py::TestGrouped::test_closest_marker_wins",
    "test_suite.py::TestGrouped::test_class_marker",
    "test_suite.py::test_fails",
    "test_suite.py::test_xfail",
    "test_suite.py::test_xpass",
    "test_suite.py::test_setup_error",
    "test_suite.py::test_skipped",
    "test_suite.py::test_teardown_error",
    "test_suite.py::test_custom",
}
NO_WORK = {
    "sql_statements": 0,
    "ddl_statements": 0,
    "connections_opened": 0,
    "commits": 0,
    "rollbacks": 0,
    "savepoints": 0,
    "dbapi_connects": 0,
}


@pytest.fixture
def suite(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """The synthetic suite, with this checkout importable by the pytest subprocess."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    # When these tests themselves run under xdist the child must not think it is a worker.
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    # Every installed plugin (hypothesis, anyio, ...) would add start-up time to every run;
    # the plugins under test are named with -p.
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    pytester.makeini(INI)
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_suite=SUITE)
    return pytester


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess(*plugin_args(), "-p", "no:cacheprovider", *args)


def by_nodeid(records: list[dict]) -> dict[str, dict]:
    tests = [record for record in records if record["kind"] == "test"]
    assert len(tests) == len({record["nodeid"] for record in tests}), "a test recorded twice"
    return {record["nodeid"]: record for record in tests}


@pytest.fixture
def timed(suite: pytest.Pytester) -> tuple[pytest.RunResult, list[dict], Path]:
    out = suite.path / "timings"
    result = run(suite, f"--suitebench-timings={out}")
    return result, read_records(out), out


def test_one_file_per_process_named_pid_and_worker(timed):
    result, records, out = timed
    files = sorted(out.glob("*.jsonl"))
    assert len(files) == 1
    assert re.fullmatch(r"\d+-main\.jsonl", files[0].name)
    assert all(record["schema_version"] == 1 for record in records)
    assert set(by_nodeid(records)) == ALL_TESTS


def test_every_phase_that_ran_has_a_positive_duration(timed):
    _, records, _ = timed
    for nodeid, record in by_nodeid(records).items():
        expected = (
            {"setup", "teardown"}
            if nodeid.endswith(("test_setup_error", "test_skipped"))
            else {"setup", "call", "teardown"}
        )
        assert set(record["phases"]) == expected, nodeid
        for phase, measured in record["phases"].items():
            assert measured["duration_ns"] > 0, (nodeid, phase)
            assert set(measured["counters"]) == set(NO_WORK)


def test_counters_are_exact_per_phase(timed):
    _, records, _ = timed
    tests = by_nodeid(records)
    queries = tests["test_suite.py::test_three_queries"]["phases"]
    # set-up opens the function-scoped connection; the session engine is charged elsewhere
    assert queries["setup"]["counters"] == {**NO_WORK, "connections_opened": 1}
    assert queries["call"]["counters"] == {**NO_WORK, "sql_statements": 3}
    # closing a connection whose autobegun transaction was not committed rolls it back
    assert queries["teardown"]["counters"] == {**NO_WORK, "rollbacks": 1}
    ddl = tests["test_suite.py::test_ddl"]["phases"]["call"]["counters"]
    assert ddl == {**NO_WORK, "sql_statements": 2, "ddl_statements": 2}


def test_session_fixture_recorded_separately_not_in_first_setup(timed):
    _, records, _ = timed
    fixtures = {record["name"]: record for record in records if record["kind"] == "fixture"}
    engine = fixtures["engine"]
    assert engine["scope"] == "session"
    assert engine["nodeid"] == "test_suite.py::test_three_queries"
    assert engine["outcome"] == "passed"
    assert engine["duration_ns"] >= SESSION_FIXTURE_SLEEP_S * 1e9
    assert engine["counters"] == {
        **NO_WORK,
        "sql_statements": 3,
        "ddl_statements": 1,
        "connections_opened": 1,
        "commits": 1,
        "dbapi_connects": 1,
    }
    first_setup = by_nodeid(records)["test_suite.py::test_three_queries"]["phases"]["setup"]
    assert first_setup["duration_ns"] < SESSION_FIXTURE_SLEEP_S * 1e9 / 2
    assert all(scope != "function" for scope in (r["scope"] for r in fixtures.values()))
    # Written when set up, so it precedes the record of the test that triggered it.
    kinds = [(r["kind"], r.get("name") or r.get("nodeid")) for r in records]
    assert kinds.index(("fixture", "engine")) < kinds.index(("test", "test_suite.py::test_three_queries"))


def test_outcomes_and_categories(timed):
    result, records, _ = timed
    tests = by_nodeid(records)
    outcomes = {nodeid.split("::")[-1]: record["outcome"] for nodeid, record in tests.items()}
    assert outcomes == {
        "test_three_queries": "passed",
        "test_ddl": "passed",
        "test_closest_marker_wins": "passed",
        "test_class_marker": "passed",
        "test_fails": "failed",
        "test_xfail": "xfailed",
        "test_xpass": "xpassed",
        "test_setup_error": "error",
        "test_skipped": "skipped",
        "test_teardown_error": "error",
        "test_custom": "passed",
    }
    categories = {nodeid.split("::")[-1]: record["category"] for nodeid, record in tests.items()}
    assert categories["test_three_queries"] == "crud"
    assert categories["test_ddl"] == "isolation"
    assert categories["test_closest_marker_wins"] == "jwt"
    assert categories["test_class_marker"] == "auth"
    assert categories["test_fails"] == "uncategorized"
    assert categories["test_custom"] == "uncategorized"
    session = [record for record in records if record["kind"] == "session"]
    assert len(session) == 1
    assert session[0]["exitstatus"] == result.ret == 1
    assert session[0]["finished_ns"] > session[0]["started_ns"] > 0
    assert any(arg.startswith("--suitebench-timings=") for arg in session[0]["pytest_args"])


def test_categories_configurable_in_ini(suite: pytest.Pytester):
    suite.makeini(
        INI.replace(
            "suitebench_categories = auth jwt crud middleware workflow isolation integration",
            "suitebench_categories = custom isolation",
        )
    )
    out = suite.path / "timings"
    run(suite, f"--suitebench-timings={out}", "-k", "custom or three_queries or ddl")
    categories = {r["nodeid"]: r["category"] for r in read_records(out) if r["kind"] == "test"}
    assert categories == {
        "test_suite.py::test_custom": "custom",
        "test_suite.py::test_ddl": "isolation",
        "test_suite.py::test_three_queries": "uncategorized",
    }


def test_killed_process_keeps_finished_tests(suite: pytest.Pytester):
    suite.makepyfile(
        test_killed="""
        import os
        from sqlalchemy import text

        def test_first(conn):
            conn.execute(text("SELECT 1"))

        def test_dies():
            os._exit(7)

        def test_never_runs():
            pass
        """
    )
    out = suite.path / "timings"
    result = run(suite, f"--suitebench-timings={out}", "test_killed.py")
    assert result.ret == 7
    [path] = out.glob("*.jsonl")
    path.write_text(path.read_text() + '{"schema_version": 1, "kind": "test", "nodei')
    records = read_records(out)
    assert [(r["kind"], r.get("nodeid")) for r in records] == [
        ("fixture", "test_killed.py::test_first"),
        ("test", "test_killed.py::test_first"),
    ]


def test_xdist_workers_write_one_file_each(suite: pytest.Pytester):
    pytest.importorskip("xdist")
    out = suite.path / "timings"
    run(suite, f"--suitebench-timings={out}", "-p", "xdist", "-n", "2")
    files = sorted(path.name for path in out.glob("*.jsonl"))
    assert len(files) == 2
    assert {re.fullmatch(r"\d+-(gw\d)\.jsonl", name).group(1) for name in files} == {"gw0", "gw1"}
    records = read_records(out)
    assert set(by_nodeid(records)) == ALL_TESTS
    assert sum(record["kind"] == "session" for record in records) == 2


def test_without_the_option_nothing_is_measured_or_written(suite: pytest.Pytester):
    suite.makepyfile(
        test_inactive="""
        from suitebench import counters

        def test_no_listeners(conn):
            assert not counters.is_installed()
        """
    )
    result = run(suite, "test_inactive.py")
    result.assert_outcomes(passed=1)
    assert list(suite.path.rglob("*.jsonl")) == []


def test_uncreatable_directory_is_a_usage_error(suite: pytest.Pytester):
    (suite.path / "blocker").write_text("a file, not a directory")
    result = run(suite, "--suitebench-timings=blocker/timings")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--suitebench-timings*cannot create timings directory*"])


def test_overhead_runs_both_variants_interleaved(suite: pytest.Pytester):
    suite.makepyfile(test_tiny="def test_nothing():\n    pass\n")
    result = measure_plugin_overhead(
        ["-q", "-p", "no:cacheprovider", "test_tiny.py"],
        repetitions=1,
        cwd=suite.path,
        warmup=0,
    )
    assert isinstance(result, OverheadResult)
    assert len(result.with_s) == len(result.without_s) == 1
    assert all(seconds > 0 for seconds in [*result.with_s, *result.without_s])
    assert isinstance(result.overhead_ratio, float)
    assert result.overhead_ratio == pytest.approx(result.median_with_s / result.median_without_s - 1)
    assert list(suite.path.rglob("*.jsonl")) == []  # timings went to a scratch directory
