"""Test isolation for the suite under study: one mechanism whose behaviour the switches choose.

`TestDatabase` owns the engine of one pytest process (or xdist worker). `prepare()` runs once per
session; `isolated()` wraps every test: recreate (drop + create tables around the test), rollback
(the test runs inside an outer transaction; code under test commits to SAVEPOINTs; teardown rolls
the outer transaction back) or none (nothing reset: the floor), seeding reference data per test or
relying on the session's copy. The scale knobs add synthetic tables and reference rows.

Faults exist so the project's own tests can prove the isolation guards fire when isolation breaks.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal, get_args

from sqlalchemy import Column, DateTime, ForeignKey, Integer, MetaData, String, Table, insert
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
        self.metadata, self.reference_catalogue = scaled_metadata(switches.extra_tables)
        reference_tables = {*models.REFERENCE_TABLES, self.reference_catalogue.name}
        # With reference data kept for the session, recreate isolation must leave those tables alone.
        self.reset_tables: list[Table] = [
            table
            for table in self.metadata.sorted_tables
            if switches.reference_data == "per_test" or table.name not in reference_tables
        ]

    def prepare(self) -> None:
        """Once per session: the schema, and the reference data when it is kept for the session."""
        self.metadata.create_all(self.engine)
        if self.switches.reference_data == "per_session":
            with self.session_factory() as session:
                self._seed_reference(session)
                session.commit()

    def _seed_reference(self, session: Session) -> None:
        seed_reference_data(session)
        if self.switches.reference_rows:
            session.execute(
                insert(self.reference_catalogue),
                [{"code": f"item-{i:06d}", "label": f"Reference item {i}"} for i in range(self.switches.reference_rows)],
            )

    @contextmanager
    def isolated(self) -> Iterator[Session]:
        """The session of one test, isolated from every other test."""
        strategy = {"recreate": self._recreated, "rollback": self._rolled_back, "none": self._not_reset}
        with strategy[self.switches.isolation]() as session:
            yield session

    @contextmanager
    def _recreated(self) -> Iterator[Session]:
        if "skip-recreate" not in self.faults:
            with self.engine.begin() as connection:
                self.metadata.drop_all(connection, tables=self.reset_tables)
                self.metadata.create_all(connection, tables=self.reset_tables)
        with self._not_reset() as session:
            yield session

    @contextmanager
    def _not_reset(self) -> Iterator[Session]:
        session = self.session_factory()
        try:
            if self.switches.reference_data == "per_test":
                self._seed_reference(session)
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
                self._seed_reference(session)
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


def scaled_metadata(extra_tables: int) -> tuple[MetaData, Table]:
    """The quiz schema plus the scale sweep's tables: a synthetic reference table (empty unless
    reference_rows > 0) and `extra_tables` synthetic tables shaped like ordinary app tables."""
    metadata = MetaData()
    for table in Base.metadata.sorted_tables:
        table.to_metadata(metadata)
    catalogue = Table(
        "reference_catalogue",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("code", String(20), unique=True, nullable=False),
        Column("label", String(100), nullable=False),
    )
    for number in range(extra_tables):
        Table(
            f"synthetic_{number:03d}",
            metadata,
            Column("id", Integer, primary_key=True),
            Column("user_id", ForeignKey("users.id", ondelete="CASCADE")),
            Column("name", String(50), index=True),
            Column("value", Integer),
            Column("created_at", DateTime),
        )
    return metadata, catalogue


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
