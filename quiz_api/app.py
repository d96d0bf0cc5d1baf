"""`create_app`: builds the quiz API for a given session factory and session wiring."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from functools import partial
from typing import Literal

import anyio
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session, sessionmaker

from quiz_api.database import open_session
from quiz_api.middleware import (
    AuthorizationMiddleware,
    BlacklistMiddleware,
    RequestSizeLimitMiddleware,
)
from quiz_api.routes import auth, content, play, users
from quiz_api.settings import Settings
from quiz_api.throttle import LoginThrottle


def create_app(
    *,
    session_factory: sessionmaker[Session],
    settings: Settings | None = None,
    session_wiring: Literal["own", "injected"] = "injected",
    get_db_func: Callable[[], AbstractContextManager[Session]] | None = None,
    write_session_factory: sessionmaker[Session] | None = None,
    serialize_writes: bool = False,
) -> FastAPI:
    """Build the API.

    session_wiring="own": the JWT helpers and both middlewares open their own sessions from
    `session_factory` (the seed's Phase 1). "injected": the JWT helpers use the request's session
    (the `get_db` dependency, which tests override) and the middlewares use `get_db_func`, which
    defaults to opening a session from `session_factory` (what a deployment needs, since
    middlewares run outside FastAPI's dependency injection).

    `write_session_factory` (default: `session_factory`) serves the requests that may write; the
    served app gives one whose SQLite transactions take the write lock at BEGIN. With
    `serialize_writes` (the served app on SQLite, which has one writer at a time anyway) those
    requests wait their turn in order on the event loop instead of polling SQLite's busy lock,
    which starves some of them for seconds under load.
    """
    settings = settings or Settings()
    own_sessions = partial(open_session, session_factory)
    middleware_db = own_sessions if session_wiring == "own" or get_db_func is None else get_db_func

    app = FastAPI(title="Quiz API", version="1.0.0", description="Quiz backend under study.")
    app.state.settings = settings
    app.state.session_factory = session_factory
    app.state.write_session_factory = write_session_factory or session_factory
    app.state.write_gate = anyio.Lock() if serialize_writes else None
    app.state.session_wiring = session_wiring
    app.state.login_throttle = LoginThrottle(
        failures_per_username=settings.login_failures_per_username,
        failures_per_address=settings.login_failures_per_address,
        window_s=settings.login_failure_window_s,
        max_keys=settings.login_throttle_max_keys,
    )
    for module in (auth, users, content, play):
        app.include_router(module.router)
    # Starlette runs the last-added middleware first: size limit, blacklist, authorization, routes.
    app.add_middleware(AuthorizationMiddleware, get_db_func=middleware_db, settings=settings)
    app.add_middleware(BlacklistMiddleware, get_db_func=middleware_db, settings=settings)
    app.add_middleware(RequestSizeLimitMiddleware, max_body_bytes=settings.max_request_body_bytes)

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        # The default handler echoes the raw input, which may not be JSON-serialisable (bytes).
        errors = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")} for e in exc.errors()
        ]
        return JSONResponse({"detail": errors}, status_code=422)

    return app
