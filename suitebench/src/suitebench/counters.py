"""Deterministic database work counters, fed by SQLAlchemy events.

Wall time is noisy; the number of statements, connections and transactions a test causes is
not. These counters explain *why* one test architecture is faster than another. The listeners
are attached once to the `Engine` and `Pool` classes, so they see every engine in the process,
including engines created after `install()` and engines the app under test builds itself.

Counts are process-wide running totals, not per-thread: FastAPI's TestClient runs the app in
a portal thread, and its statements belong to the test that made the request.

SQLAlchemy is optional: in a process without it, `install()` attaches nothing and every count
stays zero (`is_available()` says which).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields

__all__ = ["Counters", "Counting", "counting", "install", "is_available", "is_installed", "snapshot"]


@dataclass(frozen=True)
class Counters:
    """Counts of database work; totals from `snapshot()`, differences by subtraction.

    sql_statements:     cursor executions (an executemany counts once); includes DDL.
    ddl_statements:     the subset of `sql_statements` that is CREATE / DROP / ALTER.
    connections_opened: SQLAlchemy `Connection` objects opened (each `engine.connect()`,
                        each ORM session transaction's checkout).
    commits, rollbacks: transaction ends on a `Connection`. Closing a connection whose
                        autobegun transaction was never committed counts as a rollback.
    savepoints:         SAVEPOINTs begun (`begin_nested()`).
    dbapi_connects:     new DBAPI connections the pools opened (a real `sqlite3.connect`).
    """

    sql_statements: int = 0
    ddl_statements: int = 0
    connections_opened: int = 0
    commits: int = 0
    rollbacks: int = 0
    savepoints: int = 0
    dbapi_connects: int = 0

    def __add__(self, other: Counters) -> Counters:
        if not isinstance(other, Counters):
            return NotImplemented
        return Counters(*(a + b for a, b in zip(_values(self), _values(other), strict=True)))

    def __sub__(self, other: Counters) -> Counters:
        if not isinstance(other, Counters):
            return NotImplemented
        return Counters(*(a - b for a, b in zip(_values(self), _values(other), strict=True)))

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Counters))
_INDEX = {name: i for i, name in enumerate(FIELDS)}

# A lock rather than per-field itertools.count: a snapshot must read all fields consistently.
_lock = threading.Lock()
_totals = [0] * len(FIELDS)
_installed = False

# Leading whitespace, `-- line` and `/* block */` comments before the first keyword.
_DDL_RE = re.compile(r"^(?:\s+|--[^\n]*(?:\n|$)|/\*.*?\*/)*(?:CREATE|DROP|ALTER)\b", re.I | re.S)


def _values(counters: Counters) -> tuple[int, ...]:
    return tuple(getattr(counters, name) for name in FIELDS)


def _bump(name: str, amount: int = 1) -> None:
    with _lock:
        _totals[_INDEX[name]] += amount


def is_ddl(statement: str, context: object = None) -> bool:
    """True when the statement changes schema: compiled DDL, or raw SQL starting with
    CREATE, DROP or ALTER (the suite's `exec_driver_sql("CREATE ...")` has no DDL context)."""
    return bool(getattr(context, "isddl", False)) or _DDL_RE.match(statement) is not None


def _before_cursor_execute(conn, cursor, statement, parameters, context, executemany) -> None:
    with _lock:
        _totals[_INDEX["sql_statements"]] += 1
        if is_ddl(statement, context):
            _totals[_INDEX["ddl_statements"]] += 1


def _engine_connect(conn) -> None:
    _bump("connections_opened")


def _commit(conn) -> None:
    _bump("commits")


def _rollback(conn) -> None:
    _bump("rollbacks")


def _savepoint(conn, name) -> None:
    _bump("savepoints")


def _pool_connect(dbapi_connection, connection_record) -> None:
    _bump("dbapi_connects")


_ENGINE_LISTENERS = (
    ("before_cursor_execute", _before_cursor_execute),
    ("engine_connect", _engine_connect),
    ("commit", _commit),
    ("rollback", _rollback),
    ("savepoint", _savepoint),
)


def is_available() -> bool:
    """True when SQLAlchemy can be imported, i.e. when there is anything to count."""
    import importlib.util

    return importlib.util.find_spec("sqlalchemy") is not None


def install() -> None:
    """Attach the listeners to the Engine and Pool classes; safe to call any number of times.
    Without SQLAlchemy it does nothing and the counts stay zero."""
    global _installed
    with _lock:
        if _installed:
            return
        if is_available():
            from sqlalchemy import event
            from sqlalchemy.engine import Engine
            from sqlalchemy.pool import Pool

            listeners = [(Engine, name, fn) for name, fn in _ENGINE_LISTENERS] + [(Pool, "connect", _pool_connect)]
            for target, identifier, fn in listeners:
                if not event.contains(target, identifier, fn):
                    event.listen(target, identifier, fn)
        _installed = True


def is_installed() -> bool:
    return _installed


def snapshot() -> Counters:
    """Process-wide running totals since `install()` (installs on first use)."""
    if not _installed:
        install()
    with _lock:
        return Counters(*_totals)


class Counting:
    """What `counting()` yields: `.delta` is the work done since entry (frozen at exit)."""

    def __init__(self) -> None:
        self.start = snapshot()
        self._end: Counters | None = None

    @property
    def delta(self) -> Counters:
        return (self._end if self._end is not None else snapshot()) - self.start

    def _stop(self) -> None:
        self._end = snapshot()


@contextmanager
def counting() -> Iterator[Counting]:
    """Count the database work done (in any thread) inside the block."""
    window = Counting()
    try:
        yield window
    finally:
        window._stop()
