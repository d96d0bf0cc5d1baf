"""Test isolation for the suite under study: one mechanism whose behaviour the switches choose.

`TestDatabase` owns the engine of one pytest process (or xdist worker). `prepare()` runs once per
session; `isolated()` wraps every test: recreate (drop + create tables around the test) or rollback
(the test runs inside an outer transaction; code under test commits to SAVEPOINTs; teardown rolls
the outer transaction back), seeding reference data per test or relying on the session's copy.

Faults exist so the project's own tests can prove the isolation guards fire when isolation breaks.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal, get_args

from sqlalchemy import Table
from sqlalchemy.orm import Session

from harness.architectures import Switches
from harness.errors import HarnessError
from harness.quiz import models
from harness.quiz.database import Base, create_quiz_engine, make_session_factory
from harness.quiz.reference import seed_reference_data

Fault = Literal["teardown-commit", "skip-recreate", "own-wiring"]
FAULTS: tuple[str, ...] = get_args(Fault)
FAULT_HELP = {
    "teardown-commit": "rollback isolation commits the outer transaction at teardown instead of rolling it back",
    "skip-recreate": "recreate isolation skips dropping and recreating the tables",
    "own-wiring": "the app's JWT helpers and middlewares open their own sessions whatever the switches say",
}


def check_faults(faults: frozenset[str]) -> frozenset[str]:
    unknown = sorted(set(faults) - set(FAULTS))
    if unknown:
        raise HarnessError(f"unknown fault {unknown[0]!r}; faults are: {', '.join(FAULTS)}")
    return faults


class TestDatabase:
    """The database of one test process, isolated between tests as `switches` say."""

    __test__ = False  # not a pytest test class

    def __init__(self, switches: Switches, *, workdir: Path, faults: frozenset[str] = frozenset()) -> None:
        self.switches = switches
        self.faults = check_faults(faults)
        self.path = workdir / f"quiz-test-{os.getpid()}.db" if switches.storage == "disk" else None
        url = f"sqlite:///{self.path}" if self.path else "sqlite://"
        self.engine = create_quiz_engine(url, savepoints=switches.isolation == "rollback")
        self.session_factory = make_session_factory(self.engine)
        # With reference data kept for the session, recreate isolation must leave those tables alone.
        self.reset_tables: list[Table] = [
            table
            for table in Base.metadata.sorted_tables
            if switches.reference_data == "per_test" or table.name not in models.REFERENCE_TABLES
        ]

    def prepare(self) -> None:
        """Once per session: the schema, and the reference data when it is kept for the session."""
        Base.metadata.create_all(self.engine)
        if self.switches.reference_data == "per_session":
            with self.session_factory() as session:
                seed_reference_data(session)
                session.commit()

    @contextmanager
    def isolated(self) -> Iterator[Session]:
        """The session of one test, isolated from every other test."""
        if self.switches.isolation == "recreate":
            with self._recreated() as session:
                yield session
        else:
            with self._rolled_back() as session:
                yield session

    @contextmanager
    def _recreated(self) -> Iterator[Session]:
        if "skip-recreate" not in self.faults:
            with self.engine.begin() as connection:
                Base.metadata.drop_all(connection, tables=self.reset_tables)
                Base.metadata.create_all(connection, tables=self.reset_tables)
        session = self.session_factory()
        try:
            if self.switches.reference_data == "per_test":
                seed_reference_data(session)
                session.commit()
            yield session
        finally:
            session.close()

    @contextmanager
    def _rolled_back(self) -> Iterator[Session]:
        # SQLAlchemy's "Joining a Session into an External Transaction" recipe.
        connection = self.engine.connect()
        outer = connection.begin()
        session = Session(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)
        try:
            if self.switches.reference_data == "per_test":
                seed_reference_data(session)
                session.commit()
            yield session
        finally:
            session.close()
            if "teardown-commit" in self.faults:
                outer.commit()
            else:
                outer.rollback()
            connection.close()

    def close(self) -> None:
        self.engine.dispose()
        if self.path is not None:
            self.path.unlink(missing_ok=True)


class SessionSlot:
    """Holds the current test's session so an app built once per session can be given it.

    `dependency` overrides the app's `get_db`; `borrow` is the middlewares' `get_db_func`. Neither
    closes the session: the isolation fixture owns it.
    """

    def __init__(self) -> None:
        self.session: Session | None = None

    def current(self) -> Session:
        if self.session is None:
            raise RuntimeError("no test session is active")  # a request outside a test: a harness bug
        return self.session

    def dependency(self) -> Iterator[Session]:
        yield self.current()

    @contextmanager
    def borrow(self) -> Iterator[Session]:
        yield self.current()
