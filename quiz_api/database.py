"""Engines and sessions: SQLite pragmas, in-memory pooling and SAVEPOINT-capable transactions."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.pool import StaticPool


class Base(DeclarativeBase):
    pass


def is_memory_url(url: str) -> bool:
    return url in {"sqlite://", "sqlite:///:memory:"} or "mode=memory" in url


# The execution option that makes a SQLite transaction take the write lock at BEGIN.
BEGIN_OPTION = "quiz_sqlite_begin"
# How long a SQLite connection waits for another's write lock before "database is locked".
SQLITE_BUSY_TIMEOUT_S = 30.0


def create_quiz_engine(
    url: str, *, savepoints: bool = False, concurrent_writers: bool = False, echo: bool = False
) -> Engine:
    """Build an engine for `url`.

    SQLite gets `PRAGMA foreign_keys=ON` on every connection. An in-memory database lives in one
    connection, so it is shared through `StaticPool`. With `savepoints=True` the pysqlite driver's
    own transaction handling is switched off and SQLAlchemy emits BEGIN itself, the documented
    recipe that makes SAVEPOINT (and so rollback isolation) work on SQLite.

    `concurrent_writers=True` (the served app) prepares a SQLite file for requests in many
    threads: write-ahead logging (readers never wait for the writer), a long busy timeout, and
    BEGIN emitted by SQLAlchemy so that sessions from `make_session_factory(engine,
    write_lock=True)` can start with BEGIN IMMEDIATE. A deferred transaction that reads and then
    writes cannot wait for the write lock (SQLite answers "database is locked" at once, since
    waiting could deadlock or its snapshot is stale), so writing transactions take it first.

    PostgreSQL (`postgresql+psycopg://...`) needs none of this: foreign keys are always
    enforced, BEGIN/SAVEPOINT work as SQLAlchemy expects, and row locks are taken per statement.
    """
    is_sqlite = url.startswith("sqlite")
    kwargs: dict = {"echo": echo}
    if is_sqlite:
        # TestClient and uvicorn run handlers in worker threads; sessions are never used concurrently.
        kwargs["connect_args"] = {"check_same_thread": False}
        if concurrent_writers:
            kwargs["connect_args"]["timeout"] = SQLITE_BUSY_TIMEOUT_S
        if is_memory_url(url):
            kwargs["poolclass"] = StaticPool
    engine = create_engine(url, **kwargs)
    if is_sqlite:
        _configure_sqlite(
            engine,
            emit_begin=savepoints or concurrent_writers,
            write_ahead_log=concurrent_writers and not is_memory_url(url),
        )
    return engine


def _configure_sqlite(engine: Engine, *, emit_begin: bool, write_ahead_log: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        if emit_begin:
            dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        if write_ahead_log:
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()

    if emit_begin:

        @event.listens_for(engine, "begin")
        def _on_begin(connection):
            connection.exec_driver_sql(connection.get_execution_options().get(BEGIN_OPTION, "BEGIN"))


def make_session_factory(engine: Engine, *, write_lock: bool = False) -> sessionmaker[Session]:
    """Sessions on `engine`; with `write_lock`, SQLite transactions begin with BEGIN IMMEDIATE
    (where SQLAlchemy emits BEGIN: engines built with `savepoints` or `concurrent_writers`)."""
    bind = engine.execution_options(**{BEGIN_OPTION: "BEGIN IMMEDIATE"}) if write_lock else engine
    return sessionmaker(bind=bind, expire_on_commit=False)


@contextmanager
def open_session(session_factory: sessionmaker[Session]) -> Iterator[Session]:
    """A fresh session that is always closed: how production code opens its own session."""
    session = session_factory()
    try:
        yield session
    finally:
        session.close()
