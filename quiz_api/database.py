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


def create_quiz_engine(url: str, *, savepoints: bool = False, echo: bool = False) -> Engine:
    """Build an engine for `url`.

    SQLite gets `PRAGMA foreign_keys=ON` on every connection. An in-memory database lives in one
    connection, so it is shared through `StaticPool`. With `savepoints=True` the pysqlite driver's
    own transaction handling is switched off and SQLAlchemy emits BEGIN itself, the documented
    recipe that makes SAVEPOINT (and so rollback isolation) work on SQLite.

    PostgreSQL (`postgresql+psycopg://...`) needs none of this: foreign keys are always
    enforced, and BEGIN/SAVEPOINT work as SQLAlchemy expects, so `savepoints` changes nothing.
    """
    is_sqlite = url.startswith("sqlite")
    kwargs: dict = {"echo": echo}
    if is_sqlite:
        # TestClient and uvicorn run handlers in worker threads; sessions are never used concurrently.
        kwargs["connect_args"] = {"check_same_thread": False}
        if is_memory_url(url):
            kwargs["poolclass"] = StaticPool
    engine = create_engine(url, **kwargs)
    if is_sqlite:
        _configure_sqlite(engine, savepoints=savepoints)
    return engine


def _configure_sqlite(engine: Engine, *, savepoints: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):  # noqa: ANN001
        if savepoints:
            dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    if savepoints:

        @event.listens_for(engine, "begin")
        def _on_begin(connection):  # noqa: ANN001
            connection.exec_driver_sql("BEGIN")


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def open_session(session_factory: sessionmaker[Session]) -> Iterator[Session]:
    """A fresh session that is always closed: how production code opens its own session."""
    session = session_factory()
    try:
        yield session
    finally:
        session.close()
