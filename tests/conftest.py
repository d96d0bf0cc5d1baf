"""Shared configuration of the project's own tests.

One PostgreSQL server serves the whole test session: the controlling pytest process starts a
throwaway cluster (~1 s) before any xdist worker exists and hands its admin URL to the workers
through the environment; the cluster's watchdog stops it when that process ends, however it ends.
"""

from __future__ import annotations

import os
from contextlib import ExitStack

import pytest
from suite_process import POSTGRES_URL_FOR_TESTS, SharedSuiteRuns

pytest_plugins = ["pytester"]

POSTGRES_PROBLEM_FOR_TESTS = "STUDY_TESTS_POSTGRES_PROBLEM"
_server_stack = pytest.StashKey[ExitStack]()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-slow", action="store_true", help="also run tests marked slow (minutes each)")


def pytest_configure(config: pytest.Config) -> None:
    if hasattr(config, "workerinput") or os.environ.get(POSTGRES_URL_FOR_TESTS):
        return  # an xdist worker, or a server given from outside: use the URL in the environment
    from quiz_architectures import pg
    from quiz_architectures.errors import ArchitectureError

    stack = ExitStack()
    try:
        # Correctness tests only, so the server skips fsync (template clones and commits stop
        # waiting on the disk); measurements never use this server.
        os.environ[POSTGRES_URL_FOR_TESTS] = stack.enter_context(pg.postgres_server(server_settings=pg.NO_DURABILITY))
    except ArchitectureError as problem:
        os.environ[POSTGRES_PROBLEM_FOR_TESTS] = str(problem)
    config.stash[_server_stack] = stack


def pytest_unconfigure(config: pytest.Config) -> None:
    stack = config.stash.get(_server_stack, None)
    if stack is not None:
        stack.close()
        os.environ.pop(POSTGRES_URL_FOR_TESTS, None)
        os.environ.pop(POSTGRES_PROBLEM_FOR_TESTS, None)


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    """The admin URL of the test session's PostgreSQL server (fails with the fix when there is none)."""
    url = os.environ.get(POSTGRES_URL_FOR_TESTS)
    if not url:
        pytest.fail(f"no PostgreSQL server for the tests: {os.environ.get(POSTGRES_PROBLEM_FOR_TESTS, 'not started')}")
    return url


@pytest.fixture(scope="session")
def suite_runs(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> SharedSuiteRuns:
    """Runs of the suite under study shared by every test and every xdist worker of the session."""
    base = tmp_path_factory.getbasetemp()
    # xdist workers' temporary roots sit side by side in one directory of this session.
    return SharedSuiteRuns((base if worker_id == "master" else base.parent) / "shared-suite-runs")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--run-slow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --run-slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
