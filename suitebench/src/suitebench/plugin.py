"""pytest plugin: with `--suitebench-timings=DIR`, record every test's phase timings and counters.

Installed as the `suitebench` pytest11 entry point; it does nothing until the option is given.
Categories come from the markers listed in the ini option `suitebench_categories` (none by
default: every test is "uncategorized").

Thin glue: each hook is a one-line delegation to the object in `config.stash[TIMING_KEY]`, which
turns pytest's events into calls on a `TimingRecorder` (that knows nothing of pytest). Without
the option the stash holds a pass-through object: no listeners are installed, nothing is
measured or written. The record format is the contract in data/README.md.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Generator, Iterable, Mapping
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from suitebench.recorder import TimingRecorder

PLUGIN_NAME = "suitebench"
UNCATEGORIZED = "uncategorized"


def plugin_args() -> list[str]:
    """pytest arguments that load this plugin exactly once, installed or not.

    When the `pytest11` entry point is installed, `-p suitebench.plugin` would register the
    module a second time under another name and pytest refuses; `-p suitebench_timings` loads it
    through the entry point (and is harmless next to autoloading).
    """
    installed = any(ep.name == PLUGIN_NAME for ep in metadata.entry_points(group="pytest11"))
    return ["-p", PLUGIN_NAME if installed else __name__]


def timings_directory(value: str) -> Path:
    """`type=` parser for `--suitebench-timings`: an absolute, existing, writable directory.

    Absolute because pytest-xdist workers re-parse the same arguments, possibly elsewhere.
    """
    path = Path(value).expanduser().resolve()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise argparse.ArgumentTypeError(f"cannot create timings directory {value!r}: {exc}") from None
    if not os.access(path, os.W_OK):
        raise argparse.ArgumentTypeError(f"timings directory {value!r} is not writable")
    return path


def category_of(marker_names: Iterable[str], categories: Iterable[str]) -> str:
    """The first of the item's markers (closest first) that names a category."""
    wanted = set(categories)
    return next((name for name in marker_names if name in wanted), UNCATEGORIZED)


def outcome_of(reports: Mapping[str, pytest.TestReport]) -> str:
    """One outcome per test from its setup/call/teardown reports.

    An error in setup or teardown wins over the call's result, as the test's numbers are then
    not a normal run of it. A strict XPASS is reported failed by pytest and stays "failed".
    """
    setup, call, teardown = (reports.get(when) for when in ("setup", "call", "teardown"))
    if (setup is not None and setup.failed) or (teardown is not None and teardown.failed):
        return "error"
    for report in (setup, call):
        if report is not None and report.skipped:
            return "xfailed" if hasattr(report, "wasxfail") else "skipped"
    if call is None:
        return "error"
    if call.failed:
        return "failed"
    return "xpassed" if hasattr(call, "wasxfail") else "passed"


class TimingSession:
    """What the hooks delegate to when timing is on."""

    def __init__(self, *, recorder: TimingRecorder, categories: Iterable[str], pytest_args: list[str]) -> None:
        self.recorder = recorder
        self.categories = tuple(categories)
        self.pytest_args = pytest_args
        self._reports: dict[str, pytest.TestReport] = {}

    @classmethod
    def from_config(cls, config: pytest.Config) -> TimingSession | None:
        directory = config.getoption("suitebench_timings")
        # The pytest-xdist controller runs no tests; only its workers write files.
        if directory is None or getattr(config.option, "dist", "no") != "no":
            return None
        # Imported only now: the entry point loads this module into every pytest process of
        # the environment, and SQLAlchemy alone takes ~0.2 s to import.
        from suitebench import counters
        from suitebench.recorder import TimingRecorder

        counters.install()
        recorder = TimingRecorder(directory=directory, worker=os.environ.get("PYTEST_XDIST_WORKER", "main"))
        return cls(
            recorder=recorder,
            categories=config.getini("suitebench_categories"),
            pytest_args=[str(arg) for arg in config.invocation_params.args],
        )

    def session_start(self) -> None:
        self.recorder.start_session()

    def session_finish(self, exitstatus: int) -> None:
        self.recorder.finish_session(exitstatus=exitstatus, pytest_args=self.pytest_args)

    def unconfigure(self) -> None:
        self.recorder.close()

    def runtest(self, item: pytest.Item) -> Generator[None, Any, Any]:
        names = (mark.name for mark in item.iter_markers())
        self.recorder.start_test(item.nodeid, category=category_of(names, self.categories))
        self._reports = {}
        try:
            return (yield)
        finally:
            self.recorder.finish_test(outcome=outcome_of(self._reports))

    def phase(self, name: str) -> Generator[None, Any, Any]:
        self.recorder.start_phase(name)
        try:
            return (yield)
        finally:
            self.recorder.stop_phase()

    def makereport(self) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        self._reports[report.when] = report
        return report

    def fixture_setup(self, fixturedef: pytest.FixtureDef[Any]) -> Generator[None, Any, Any]:
        # Function-scoped fixtures are part of the test's own set-up cost; broader ones are
        # paid by whichever test happens to come first, so they are charged separately.
        if fixturedef.scope == "function":
            return (yield)
        self.recorder.start_fixture(fixturedef.argname, scope=fixturedef.scope)
        outcome = "error"
        try:
            result = yield
            outcome = "passed"
            return result
        except pytest.skip.Exception:
            outcome = "skipped"
            raise
        finally:
            self.recorder.stop_fixture(outcome=outcome)


class _Inactive:
    """Stands in for `TimingSession` without `--suitebench-timings`: passes everything through."""

    def session_start(self) -> None:
        pass

    def session_finish(self, exitstatus: int) -> None:
        pass

    def unconfigure(self) -> None:
        pass

    def runtest(self, item: pytest.Item) -> Generator[None, Any, Any]:
        return (yield)

    def phase(self, name: str) -> Generator[None, Any, Any]:
        return (yield)

    def makereport(self) -> Generator[None, Any, Any]:
        return (yield)

    def fixture_setup(self, fixturedef: pytest.FixtureDef[Any]) -> Generator[None, Any, Any]:
        return (yield)


TIMING_KEY = pytest.StashKey["TimingSession | _Inactive"]()
_INACTIVE = _Inactive()


def _timing(config: pytest.Config) -> TimingSession | _Inactive:
    return config.stash.get(TIMING_KEY, _INACTIVE)


# -- hooks: one-line delegations -------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("suitebench", "per-test timings and database counters (suitebench)")
    group.addoption(
        "--suitebench-timings",
        dest="suitebench_timings",
        metavar="DIR",
        type=timings_directory,
        default=None,
        help="write per-test phase timings and database counters as JSON lines to DIR "
        "(one <pid>-<worker>.jsonl per process; created if missing)",
    )
    parser.addini(
        "suitebench_categories",
        type="args",
        default=[],
        help="markers that name a test's category for --suitebench-timings, first match wins",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.stash[TIMING_KEY] = TimingSession.from_config(config) or _INACTIVE


def pytest_unconfigure(config: pytest.Config) -> None:
    _timing(config).unconfigure()


def pytest_sessionstart(session: pytest.Session) -> None:
    _timing(session.config).session_start()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _timing(session.config).session_finish(exitstatus)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, Any, Any]:
    return (yield from _timing(item.config).runtest(item))


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, Any, Any]:
    return (yield from _timing(item.config).phase("setup"))


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, Any, Any]:
    return (yield from _timing(item.config).phase("call"))


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_teardown(item: pytest.Item) -> Generator[None, Any, Any]:
    return (yield from _timing(item.config).phase("teardown"))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item) -> Generator[None, Any, Any]:
    return (yield from _timing(item.config).makereport())


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(fixturedef: pytest.FixtureDef[Any], request: pytest.FixtureRequest):
    return (yield from _timing(request.config).fixture_setup(fixturedef))
