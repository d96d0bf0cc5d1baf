"""The blacklist and authorization middlewares.

Both receive `get_db_func`, a callable returning a context manager that yields a Session: the
test architecture decides which session they read (the test's, or one they open themselves).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass

from fastapi import Request
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.responses import Response
from starlette.types import ASGIApp

from quiz_api.settings import Settings
from quiz_api.tokens import TokenError, bearer_token, decode_access_token, principal_from_claims, read_claims, revocation_reason

GetDbFunc = Callable[[], AbstractContextManager[Session]]


def unauthorized_response(detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=401, headers={"WWW-Authenticate": "Bearer"})


class BlacklistMiddleware(BaseHTTPMiddleware):
    """Rejects any request that presents a revoked token (logout) or a token older than the user's
    last logout-all, on every path, before anything else sees it."""

    def __init__(self, app: ASGIApp, *, get_db_func: GetDbFunc, settings: Settings) -> None:
        super().__init__(app)
        self.get_db_func = get_db_func
        self.settings = settings

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        try:
            token = bearer_token(request.headers.get("authorization"))
            if token is not None:
                claims = read_claims(token, settings=self.settings)
                with self.get_db_func() as db:
                    reason = revocation_reason(claims, db)
                if reason:
                    return unauthorized_response(reason)
        except TokenError as exc:
            return unauthorized_response(str(exc))
        return await call_next(request)


@dataclass(frozen=True)
class AccessRule:
    """Paths starting with `prefix` (and `methods`, None = any) need one of `roles` (None = public,
    empty = any authenticated user)."""

    prefix: str
    methods: frozenset[str] | None
    roles: frozenset[str] | None


READ = frozenset({"GET", "HEAD", "OPTIONS"})
WRITE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
STAFF = frozenset({"editor", "admin"})
PUBLIC = None
AUTHENTICATED: frozenset[str] = frozenset()

# First match wins; anything unmatched needs authentication (deny by default).
ACCESS_RULES = (
    AccessRule("/login", frozenset({"POST"}), PUBLIC),
    AccessRule("/health", READ, PUBLIC),
    AccessRule("/docs", READ, PUBLIC),
    AccessRule("/redoc", READ, PUBLIC),
    AccessRule("/openapi.json", READ, PUBLIC),
    AccessRule("/time-periods", READ, PUBLIC),
    AccessRule("/leaderboard", READ, PUBLIC),
    AccessRule("/users/me", None, AUTHENTICATED),
    AccessRule("/users", None, frozenset({"admin"})),
    *(AccessRule(p, READ, PUBLIC) for p in ("/questions", "/question-sets", "/subjects", "/topics", "/subtopics")),
    *(AccessRule(p, WRITE, STAFF) for p in ("/questions", "/question-sets", "/subjects", "/topics", "/subtopics")),
)


def matching_rule(method: str, path: str) -> AccessRule | None:
    for rule in ACCESS_RULES:
        if (path == rule.prefix or path.startswith(rule.prefix + "/")) and (
            rule.methods is None or method in rule.methods
        ):
            return rule
    return None


class AuthorizationMiddleware(BaseHTTPMiddleware):
    """Authenticates the bearer token on protected paths (401) and checks the role (403); puts the
    caller's Principal on `request.state.principal` for the handlers."""

    def __init__(self, app: ASGIApp, *, get_db_func: GetDbFunc, settings: Settings) -> None:
        super().__init__(app)
        self.get_db_func = get_db_func
        self.settings = settings

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        rule = matching_rule(request.method, request.url.path)
        if rule is not None and rule.roles is PUBLIC:
            return await call_next(request)
        try:
            token = bearer_token(request.headers.get("authorization"))
            if token is None:
                return unauthorized_response("not authenticated")
            with self.get_db_func() as db:
                principal = principal_from_claims(decode_access_token(token, db, settings=self.settings))
        except TokenError as exc:
            return unauthorized_response(str(exc))
        required = rule.roles if rule is not None else AUTHENTICATED
        if required and principal.role not in required:
            return JSONResponse({"detail": f"requires role {' or '.join(sorted(required))}"}, status_code=403)
        request.state.principal = principal
        return await call_next(request)
