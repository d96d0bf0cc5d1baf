"""`create_app`: builds the quiz API for a given session factory and session wiring."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from functools import partial
from typing import Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session, sessionmaker

from quiz_api.database import open_session
from quiz_api.middleware import AuthorizationMiddleware, BlacklistMiddleware
from quiz_api.routes import auth, content, play, users
from quiz_api.settings import Settings


def create_app(
    *,
    session_factory: sessionmaker[Session],
    settings: Settings | None = None,
    session_wiring: Literal["own", "injected"] = "injected",
    get_db_func: Callable[[], AbstractContextManager[Session]] | None = None,
) -> FastAPI:
    """Build the API.

    session_wiring="own": the JWT helpers and both middlewares open their own sessions from
    `session_factory` (the seed's Phase 1). "injected": the JWT helpers use the request's session
    (the `get_db` dependency, which tests override) and the middlewares use `get_db_func`, which
    defaults to opening a session from `session_factory` (what a deployment needs, since
    middlewares run outside FastAPI's dependency injection).
    """
    settings = settings or Settings()
    own_sessions = partial(open_session, session_factory)
    middleware_db = own_sessions if session_wiring == "own" or get_db_func is None else get_db_func

    app = FastAPI(title="Quiz API", version="1.0.0", description="Quiz backend under study.")
    app.state.settings = settings
    app.state.session_factory = session_factory
    app.state.session_wiring = session_wiring
    for module in (auth, users, content, play):
        app.include_router(module.router)
    # Starlette runs the last-added middleware first: blacklist, then authorization, then routes.
    app.add_middleware(AuthorizationMiddleware, get_db_func=middleware_db, settings=settings)
    app.add_middleware(BlacklistMiddleware, get_db_func=middleware_db, settings=settings)

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        # The default handler echoes the raw input, which may not be JSON-serialisable (bytes).
        errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")} for e in exc.errors()]
        return JSONResponse({"detail": errors}, status_code=422)

    return app
