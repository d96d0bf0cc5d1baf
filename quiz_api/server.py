"""The deployed app: settings from the environment, schema and reference data created on start.

`uvicorn --factory quiz_api.server:build_server_app` works too. QUIZ_ADMIN_USERNAME and
QUIZ_ADMIN_PASSWORD create the first admin when no user of that name exists.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from quiz_api.errors import QuizError
from quiz_api.app import create_app
from quiz_api.database import Base, create_quiz_engine, make_session_factory
from quiz_api.models import User
from quiz_api.passwords import hash_password
from quiz_api.reference import seed_reference_data
from quiz_api.settings import Settings


def build_server_app(settings: Settings | None = None):  # noqa: ANN201
    settings = settings or Settings.from_environment()
    try:
        engine = create_quiz_engine(settings.database_url, savepoints=True)
        Base.metadata.create_all(engine)
        session_factory = make_session_factory(engine)
        with session_factory() as session:
            seed_reference_data(session)
            ensure_admin(session, settings, environ=os.environ)
            session.commit()
    except SQLAlchemyError as exc:
        raise QuizError(f"cannot prepare the database at {settings.database_url}: {exc}") from exc
    return create_app(session_factory=session_factory, settings=settings)


def ensure_admin(session: Session, settings: Settings, *, environ: Mapping[str, str]) -> None:
    username, password = environ.get("QUIZ_ADMIN_USERNAME"), environ.get("QUIZ_ADMIN_PASSWORD")
    if not username or not password:
        return
    if session.scalar(select(User.id).where(User.username == username)) is None:
        session.add(
            User(
                username=username,
                email=f"{username}@localhost",
                role="admin",
                hashed_password=hash_password(password, cost=settings.password_hash),
            )
        )
