"""suitebench.counters: exact counts from SQLAlchemy events, process-wide, installed once."""

import subprocess
import sys
import textwrap
import threading

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, create_engine, text
from sqlalchemy.orm import Session
from sqlalchemy.pool import StaticPool

from quiz_study import paths
from suitebench import counters
from suitebench.counters import Counters, counting, is_ddl

ROOT = paths.ROOT


@pytest.fixture
def engine():
    counters.install()
    engine = create_engine("sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False})
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE item (id INTEGER PRIMARY KEY, name TEXT)"))
    yield engine
    engine.dispose()


def test_counters_subtract_and_add_field_by_field():
    a = Counters(sql_statements=5, commits=2, dbapi_connects=1)
    b = Counters(sql_statements=3, commits=1)
    assert a - b == Counters(sql_statements=2, commits=1, dbapi_connects=1)
    assert (a - b) + b == a
    assert list(a.as_dict()) == [
        "sql_statements",
        "ddl_statements",
        "connections_opened",
        "commits",
        "rollbacks",
        "savepoints",
        "dbapi_connects",
    ]


def test_three_statements_count_three(engine):
    with engine.connect() as conn:
        with counting() as window:
            for _ in range(3):
                conn.execute(text("SELECT count(*) FROM item")).scalar_one()
    assert window.delta == Counters(sql_statements=3)


def test_executemany_counts_once(engine):
    with engine.begin() as conn, counting() as window:
        conn.execute(text("INSERT INTO item (name) VALUES (:name)"), [{"name": "a"}, {"name": "b"}])
    assert window.delta.sql_statements == 1


def test_ddl_counted_for_compiled_and_raw_statements(engine):
    table = Table("compiled", MetaData(), Column("id", Integer, primary_key=True))
    with engine.begin() as conn, counting() as window:
        table.create(conn)
        conn.exec_driver_sql("  -- raw, after a comment\n  create index ix_name ON item (name)")
        conn.exec_driver_sql("/* block */ DROP INDEX ix_name")
        conn.execute(text("SELECT 'CREATE TABLE nope'"))
    assert window.delta.ddl_statements == 3
    assert window.delta.sql_statements >= 4


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        ("CREATE TABLE t (x INT)", True),
        ("\n\t alter table t add column y INT", True),
        ("-- a\n-- b\nDROP TABLE t", True),
        ("/* multi\nline */ create index i on t (x)", True),
        ("SELECT * FROM created", False),
        ("INSERT INTO t VALUES ('DROP')", False),
        ("CREATED_AT", False),
    ],
)
def test_is_ddl_reads_the_first_keyword(statement, expected):
    assert is_ddl(statement) is expected


def test_connections_transactions_and_savepoints(engine):
    with counting() as window:
        with engine.connect() as conn:  # read only: closing it rolls back the autobegun txn
            conn.execute(text("SELECT 1"))
        with engine.begin() as conn:
            nested = conn.begin_nested()
            conn.execute(text("INSERT INTO item (name) VALUES ('x')"))
            nested.rollback()
        with Session(engine) as session:
            session.execute(text("SELECT 1"))
            session.commit()
    # SAVEPOINT and ROLLBACK TO SAVEPOINT are statements too: 3 + 2.
    assert window.delta == Counters(sql_statements=5, connections_opened=3, commits=2, rollbacks=1, savepoints=1)


def test_dbapi_connects_counts_new_pool_connections():
    with counting() as window:
        engine = create_engine("sqlite://")
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
    assert window.delta.dbapi_connects == 1
    assert window.delta.connections_opened == 1


def test_work_in_another_thread_is_counted(engine):
    def query() -> None:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    with counting() as window:
        worker = threading.Thread(target=query)
        worker.start()
        worker.join()
    assert window.delta.sql_statements == 1


def test_delta_is_frozen_when_the_block_exits(engine):
    with counting() as window:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    assert window.delta.sql_statements == 1


def test_install_is_idempotent(engine):
    counters.install()
    counters.install()
    with engine.connect() as conn, counting() as window:
        conn.execute(text("SELECT 1"))
    assert window.delta.sql_statements == 1


def test_import_installs_nothing_and_engines_older_than_install_are_counted():
    # A fresh interpreter: in this one the listeners are already installed.
    script = textwrap.dedent(
        """
        from sqlalchemy import create_engine, event, text
        from sqlalchemy.engine import Engine
        from suitebench import counters

        before = create_engine("sqlite://")
        assert not counters.is_installed()
        assert not event.contains(Engine, "before_cursor_execute", counters._before_cursor_execute)
        with counters.counting() as window:
            with before.connect() as conn:
                conn.execute(text("SELECT 1"))
            with create_engine("sqlite://").connect() as conn:
                conn.execute(text("SELECT 1"))
        assert counters.is_installed()
        print(window.delta.sql_statements, window.delta.connections_opened)
        """
    )
    completed = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=False)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.split() == ["2", "2"]
