"""Test isolation for the suite under study: one mechanism whose behaviour the switches choose.

`TestDatabase` owns the database and engine of one pytest process (or xdist worker): a SQLite
file, a SQLite `:memory:` database, or a PostgreSQL database `quiz_<worker>_<pid>` created on a
server it is given and dropped at `close()`. `prepare()` runs once per session; `isolated()`
wraps every test:

* recreate: drop + create the tables before the test;
* rollback: the test runs inside an outer transaction; code under test commits to SAVEPOINTs;
  teardown rolls the outer transaction back;
* truncate: empty the tables before the test (PostgreSQL `TRUNCATE ... RESTART IDENTITY`;
  SQLite has no TRUNCATE, so `DELETE FROM`, children first, which also restarts the ids
  SQLite hands out as max(id) + 1, and the AUTOINCREMENT tables' counters are deleted from
  `sqlite_sequence`);
* template: restore a copy of the database prepared once per session (PostgreSQL: drop the
  database and `CREATE DATABASE ... TEMPLATE`; SQLite file: copy the prepared file over it;
  SQLite memory: `deserialize` the prepared image into the one shared connection);
* none: nothing reset (the floor).

Reference data is seeded per test or relied on from the session's copy (then recreate and
truncate leave the reference tables alone, and the template already holds it). The scale knobs
add synthetic tables and reference rows.

Faults exist so the project's own tests can prove the isolation guards fire when isolation breaks.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal, get_args

from sqlalchemy import Column, DateTime, ForeignKey, Integer, MetaData, String, Table, bindparam, insert, text
from sqlalchemy.orm import Session

from quiz_api import models
from quiz_api.database import Base, create_quiz_engine, make_session_factory
from quiz_api.reference import seed_reference_data
from quiz_architectures import pg
from quiz_architectures.architectures import Switches
from quiz_architectures.errors import ArchitectureError

Fault = Literal["teardown-commit", "skip-recreate", "truncate-skip-table", "skip-template", "own-wiring"]
FAULTS: tuple[str, ...] = get_args(Fault)
FAULT_HELP = {
    "teardown-commit": "rollback isolation commits the outer transaction at teardown instead of rolling it back",
    "skip-recreate": "recreate isolation skips dropping and recreating the tables",
    "truncate-skip-table": "truncate isolation leaves the subjects table out",
    "skip-template": "template isolation skips restoring the template copy",
    "own-wiring": "the app's JWT helpers and middlewares open their own sessions whatever the switches say",
}
# The isolation strategy each fault breaks; a fault for another strategy would prove nothing.
FAULT_STRATEGY = {
    "teardown-commit": "rollback",
    "skip-recreate": "recreate",
    "truncate-skip-table": "truncate",
    "skip-template": "template",
}
# Referenced only by tables that are truncated with it, so leaving it out breaks isolation
# without making TRUNCATE (PostgreSQL) or DELETE (SQLite, foreign keys on) fail.
TRUNCATE_FAULT_TABLE = "subjects"


def check_faults(faults: frozenset[str], *, isolation: str | None = None) -> frozenset[str]:
    """`faults` when every one is known (and, given `isolation`, breaks that strategy)."""
    unknown = sorted(set(faults) - set(FAULTS))
    if unknown:
        raise ArchitectureError(f"unknown fault {unknown[0]!r}; faults are: {', '.join(FAULTS)}")
    for fault in sorted(faults):
        strategy = FAULT_STRATEGY.get(fault)
        if isolation is not None and strategy is not None and strategy != isolation:
            raise ArchitectureError(
                f"fault {fault!r} breaks isolation={strategy}, but the switches select isolation={isolation}"
            )
    return faults


class TestDatabase:
    """The database of one test process, isolated between tests as `switches` say.

    `postgres_admin_url` (an admin URL of a running server) is required for storage=postgres;
    `worker` (the pytest-xdist worker id, or "main") names the database there.
    """

    __test__ = False  # not a pytest test class

    def __init__(
        self,
        switches: Switches,
        *,
        workdir: Path,
        faults: frozenset[str] = frozenset(),
        postgres_admin_url: str | None = None,
        worker: str = "main",
    ) -> None:
        self.switches = switches
        self.faults = check_faults(faults, isolation=switches.isolation)
        self.path: Path | None = None
        self.database_name: str | None = None
        self._admin = None
        if switches.storage == "postgres":
            if not postgres_admin_url:
                raise ArchitectureError(f"storage=postgres needs a PostgreSQL server: {pg.INSTALL_HINT}")
            # The pid keeps processes sharing one server (parallel test runs) apart.
            self.database_name = f"quiz_{re.sub(r'[^a-z0-9]', '_', worker.lower())}_{os.getpid()}"
            self._admin = pg.admin_engine(postgres_admin_url)
            url = pg.database_url(postgres_admin_url, self.database_name)
        elif switches.storage == "disk":
            self.path = workdir / f"quiz-test-{os.getpid()}.db"
            url = f"sqlite:///{self.path}"
        else:
            url = "sqlite://"
        self.template_path = self.path.with_suffix(".template.db") if self.path else None
        self.template_name = f"{self.database_name}_template" if self.database_name else None
        self._template_image: bytes | None = None
        self.engine = create_quiz_engine(url, savepoints=switches.isolation == "rollback")
        self.session_factory = make_session_factory(self.engine)
        self.metadata, self.reference_catalogue = scaled_metadata(switches.extra_tables)
        reference_tables = {*models.REFERENCE_TABLES, self.reference_catalogue.name}
        # With reference data kept for the session, recreate and truncate leave those tables alone.
        self.reset_tables: list[Table] = [
            table
            for table in self.metadata.sorted_tables
            if switches.reference_data == "per_test" or table.name not in reference_tables
        ]

    def prepare(self) -> None:
        """Once per session: the database, the schema, the reference data when it is kept for the
        session, and the template copy when isolation restores one."""
        if self._admin is not None:
            pg.drop_database(self._admin, self.database_name)
            pg.create_database(self._admin, self.database_name)
        self.metadata.create_all(self.engine)
        if self.switches.reference_data == "per_session":
            with self.session_factory() as session:
                self._seed_reference(session)
                session.commit()
        if self.switches.isolation == "template":
            self._save_template()

    def _seed_reference(self, session: Session) -> None:
        seed_reference_data(session)
        if self.switches.reference_rows:
            session.execute(
                insert(self.reference_catalogue),
                [
                    {"code": f"item-{i:06d}", "label": f"Reference item {i}"}
                    for i in range(self.switches.reference_rows)
                ],
            )

    @contextmanager
    def isolated(self) -> Iterator[Session]:
        """The session of one test, isolated from every other test."""
        strategy = {
            "recreate": self._recreated,
            "rollback": self._rolled_back,
            "truncate": self._truncated,
            "template": self._restored,
            "none": self._not_reset,
        }
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
    def _truncated(self) -> Iterator[Session]:
        tables = self.reset_tables
        if "truncate-skip-table" in self.faults:
            tables = [table for table in tables if table.name != TRUNCATE_FAULT_TABLE]
        with self.engine.begin() as connection:
            if self.database_name is not None:
                names = ", ".join(connection.dialect.identifier_preparer.format_table(t) for t in tables)
                connection.execute(text(f"TRUNCATE TABLE {names} RESTART IDENTITY"))
            else:
                for table in reversed(tables):
                    connection.execute(table.delete())
                # AUTOINCREMENT tables keep their last id in sqlite_sequence: restart them too.
                if connection.exec_driver_sql("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence'").first():
                    connection.execute(
                        text("DELETE FROM sqlite_sequence WHERE name IN :names").bindparams(
                            bindparam("names", expanding=True)
                        ),
                        {"names": [table.name for table in tables]},
                    )
        with self._not_reset() as session:
            yield session

    def _save_template(self) -> None:
        if self.database_name is not None:
            # CREATE DATABASE ... TEMPLATE needs the source to have no connections.
            self.engine.dispose()
            pg.create_database(self._admin, self.template_name, template=self.database_name)
        elif self.template_path is not None:
            self.engine.dispose()
            shutil.copyfile(self.path, self.template_path)
        else:
            connection = self.engine.raw_connection()
            try:
                self._template_image = connection.driver_connection.serialize()
            finally:
                connection.close()

    @contextmanager
    def _restored(self) -> Iterator[Session]:
        if "skip-template" not in self.faults:
            if self.database_name is not None:
                self.engine.dispose()
                pg.drop_database(self._admin, self.database_name)
                pg.create_database(self._admin, self.database_name, template=self.template_name)
            elif self.template_path is not None:
                self.engine.dispose()
                shutil.copyfile(self.template_path, self.path)
            else:
                # The StaticPool's one connection: every session of the process sees the restored image.
                connection = self.engine.raw_connection()
                try:
                    connection.driver_connection.deserialize(self._template_image)
                finally:
                    connection.close()
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
        if self._admin is not None:
            for name in (self.database_name, self.template_name):
                pg.drop_database(self._admin, name)
            self._admin.dispose()
        for path in (self.path, self.template_path):
            if path is not None:
                path.unlink(missing_ok=True)


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
