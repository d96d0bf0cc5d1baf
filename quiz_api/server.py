"""The deployed app: settings from the environment, schema and reference data created on start.

`uvicorn --factory quiz_api.server:build_server_app` works too. QUIZ_ADMIN_USERNAME and
QUIZ_ADMIN_PASSWORD create the first admin (see `ensure_admin`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

from sqlalchemy import Engine, inspect, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from quiz_api.app import create_app
from quiz_api.database import Base, create_quiz_engine, make_session_factory
from quiz_api.errors import QuizError
from quiz_api.models import User
from quiz_api.passwords import admin_password_problem, hash_password, verify_password
from quiz_api.reference import seed_reference_data
from quiz_api.settings import Settings

USERNAME_PATTERN = re.compile(r"[A-Za-z0-9_.-]{3,50}")


def build_server_app(settings: Settings | None = None, *, environ: Mapping[str, str] | None = None):
    """The served app; `settings` and the bootstrap admin come from `environ` (default: the
    process environment) unless `settings` is given."""
    environ = os.environ if environ is None else environ
    settings = settings or Settings.from_environment(environ)
    admin = admin_from_environment(environ)
    try:
        engine = create_quiz_engine(settings.database_url, savepoints=True, concurrent_writers=True)
        Base.metadata.create_all(engine)
        check_schema(engine, database_url=settings.database_url)
        session_factory = make_session_factory(engine)
        with session_factory() as session:
            seed_reference_data(session)
            if admin is not None:
                ensure_admin(session, settings, username=admin[0], password=admin[1])
            session.commit()
    except SQLAlchemyError as exc:
        raise QuizError(f"cannot prepare the database at {settings.database_url}: {exc}") from exc
    return create_app(
        session_factory=session_factory,
        write_session_factory=make_session_factory(engine, write_lock=True),
        serialize_writes=engine.dialect.name == "sqlite",
        settings=settings,
    )


def check_schema(engine: Engine, *, database_url: str) -> None:
    """Refuse a database made by an older version: `create_all` adds missing tables but never
    columns or indexes, and the handlers would fail on them (500s) instead of at start."""
    inspector = inspect(engine)
    for table in Base.metadata.sorted_tables:
        present = {column["name"] for column in inspector.get_columns(table.name)}
        indexes = {index["name"] for index in inspector.get_indexes(table.name)}
        missing = [column.name for column in table.columns if column.name not in present]
        missing += [index.name for index in table.indexes if index.name not in indexes]
        if missing:
            raise QuizError(
                f"the database at {database_url} was made by an older version of the quiz API: "
                f"table {table.name} lacks {', '.join(missing)} (recreate the database or migrate it)"
            )


def admin_from_environment(environ: Mapping[str, str]) -> tuple[str, str] | None:
    """The bootstrap admin's (username, password), or None when neither variable is set; checked
    before the database is touched."""
    username, password = environ.get("QUIZ_ADMIN_USERNAME", ""), environ.get("QUIZ_ADMIN_PASSWORD", "")
    if not username and not password:
        return None
    if not username or not password:
        raise QuizError("set both QUIZ_ADMIN_USERNAME and QUIZ_ADMIN_PASSWORD, or neither")
    if not USERNAME_PATTERN.fullmatch(username):
        raise QuizError("QUIZ_ADMIN_USERNAME must be 3 to 50 letters, digits, '_', '.' or '-'")
    problem = admin_password_problem(username, password)
    if problem:
        raise QuizError(f"QUIZ_ADMIN_PASSWORD {problem}")
    return username, password


def ensure_admin(session: Session, settings: Settings, *, username: str, password: str) -> None:
    """Create the admin `username`, or check that the existing account is that admin; anything
    else is an error the operator must resolve (the bootstrap never changes an existing account)."""
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        session.add(
            User(
                username=username,
                email=f"{username}@localhost",
                role="admin",
                hashed_password=hash_password(password, cost=settings.password_hash),
            )
        )
        return
    if user.role != "admin" or not user.is_active:
        state = "not an admin" if user.role != "admin" else "a deactivated admin"
        raise QuizError(
            f"QUIZ_ADMIN_USERNAME {username!r} names an existing user who is {state}; "
            "the bootstrap does not change existing accounts (choose another name)"
        )
    if not verify_password(password, user.hashed_password, cost=settings.password_hash):
        raise QuizError(
            f"admin {username!r} already exists with a different password; QUIZ_ADMIN_PASSWORD does not change it "
            "(give the current password, or unset QUIZ_ADMIN_USERNAME and QUIZ_ADMIN_PASSWORD)"
        )
