"""Dependencies: the request session (the one override point), auth sessions and the caller.

`session_wiring` decides where the JWT helpers get their session: "injected" passes the request's
session (which a test architecture overrides), "own" opens a fresh one from the app's factory, as
the seed's Phase 1 code did with `next(get_db())`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager, nullcontext
from typing import Annotated, TypeVar

from fastapi import Depends, HTTPException, Request, status
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from quiz_api.database import open_session
from quiz_api.models import User
from quiz_api.settings import Settings
from quiz_api.tokens import Principal

T = TypeVar("T")
F = TypeVar("F", bound=Callable)
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def reads_only(endpoint: F) -> F:
    """Mark an endpoint that never writes although its method may (POST /login): its session need
    not hold SQLite's write lock, which it would keep through the password hashing."""
    endpoint.reads_only = True  # type: ignore[attr-defined]
    return endpoint


async def get_db(request: Request) -> AsyncIterator[Session]:
    """The request's session: a reading one for reads, else one from the write factory, after
    the app's write gate (when it has one) lets this request in."""
    state = request.app.state
    reads = request.method in READ_METHODS or getattr(request.scope.get("endpoint"), "reads_only", False)
    gate = None if reads else state.write_gate
    # Waiting here, on the event loop, holds no worker thread: waiters in threads could take
    # every thread of the pool while the request holding the gate needs one to finish.
    async with gate if gate is not None else nullcontext():
        session = (state.session_factory if reads else state.write_session_factory)()
        try:
            yield session
        finally:
            # Closing rolls back an open transaction: database work, kept off the event loop.
            await run_in_threadpool(session.close)


SessionDep = Annotated[Session, Depends(get_db)]


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


@contextmanager
def auth_session(request: Request, db: Session) -> Iterator[Session]:
    """The session the JWT helpers use for this request, according to the app's wiring."""
    if request.app.state.session_wiring == "own":
        with open_session(request.app.state.session_factory) as own:
            yield own
    else:
        yield db


def unauthorized(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail=detail, headers={"WWW-Authenticate": "Bearer"})


def current_principal(request: Request) -> Principal:
    principal = getattr(request.state, "principal", None)
    if principal is None:
        raise unauthorized("not authenticated")
    return principal


PrincipalDep = Annotated[Principal, Depends(current_principal)]


def current_user(principal: PrincipalDep, db: SessionDep) -> User:
    user = db.get(User, principal.user_id)
    if user is None or not user.is_active:
        raise unauthorized("unknown or inactive user")
    return user


CurrentUser = Annotated[User, Depends(current_user)]


@contextmanager
def conflicts_as_409(db: Session, conflict: str) -> Iterator[None]:
    """Turn a constraint violation inside the block (at a flush or the commit) into a 409, leaving
    the session usable."""
    try:
        yield
    except IntegrityError as exc:
        db.rollback()
        raise HTTPException(status.HTTP_409_CONFLICT, detail=conflict) from exc


def commit_or_conflict(db: Session, conflict: str) -> None:
    """Commit, turning a constraint violation into a 409 and leaving the session usable."""
    with conflicts_as_409(db, conflict):
        db.commit()


def get_or_404(db: Session, model: type[T], identifier: int) -> T:
    found = db.get(model, identifier)
    if found is None:
        kind = model.__tablename__.removesuffix("s").replace("_", " ")  # type: ignore[attr-defined]
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"{kind} {identifier} not found")
    return found


def get_or_422(db: Session, model: type[T], identifier: int) -> T:
    """A row referenced from a request body: a missing one makes the body invalid."""
    found = db.get(model, identifier)
    if found is None:
        kind = model.__tablename__.removesuffix("s").replace("_", " ")  # type: ignore[attr-defined]
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=f"{kind} {identifier} does not exist")
    return found


def bump_token_version(db: Session, user_id: int) -> None:
    """Invalidate the user's tokens in one statement (`token_version + 1` in SQL): a read-modify-
    write in Python loses an increment to a concurrent request at READ COMMITTED."""
    db.execute(
        update(User).where(User.id == user_id).values(token_version=User.token_version + 1),
        execution_options={"synchronize_session": "fetch"},
    )
