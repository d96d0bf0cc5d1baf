"""The request-size limit, the blacklist and the authorization middlewares (pure ASGI).

The blacklist and authorization middlewares receive `get_db_func`, a callable returning a context
manager that yields a Session: the test architecture decides which session they read (the
test's, or one they open themselves). Their database work is blocking, so it runs in a worker
thread: on the event loop, one request waiting for a database lock would stall every other
request, /health included.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from quiz_api.settings import Settings
from quiz_api.tokens import (
    Principal,
    TokenError,
    bearer_token,
    decode_access_token,
    principal_from_claims,
    read_claims,
    revocation_reason,
)

GetDbFunc = Callable[[], AbstractContextManager[Session]]


def unauthorized_response(detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=401, headers={"WWW-Authenticate": "Bearer"})


class RequestSizeLimitMiddleware:
    """Answers 413 to a request whose body is larger than `max_body_bytes`, before any handler
    (or the JSON parser of the public /login) sees it. The body is read here, up to the limit,
    and handed on: a declared Content-Length is not trusted to be the whole story (chunked bodies
    declare none)."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            await self._too_large(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        pending: Message | None = None
        while True:
            message = await receive()
            if message["type"] != "http.request":
                pending = message  # the client went away: let the app see it
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                await self._too_large(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        replay: list[Message] = [pending or {"type": "http.request", "body": b"".join(chunks), "more_body": False}]

        async def replaying_receive() -> Message:
            return replay.pop() if replay else await receive()

        await self.app(scope, replaying_receive, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        detail = f"request body too large: at most {self.max_body_bytes} bytes"
        await JSONResponse({"detail": detail}, status_code=413, headers={"Connection": "close"})(scope, receive, send)


class BlacklistMiddleware:
    """Rejects any request that presents a revoked token (logout) or a token older than the user's
    last logout-all, on every path, before anything else sees it."""

    def __init__(self, app: ASGIApp, *, get_db_func: GetDbFunc, settings: Settings) -> None:
        self.app = app
        self.get_db_func = get_db_func
        self.settings = settings

    def _revocation_reason(self, claims: dict[str, Any]) -> str | None:
        with self.get_db_func() as db:
            return revocation_reason(claims, db)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            token = bearer_token(Headers(scope=scope).get("authorization"))
            if token is not None:
                claims = read_claims(token, settings=self.settings)
                reason = await run_in_threadpool(self._revocation_reason, claims)
                if reason:
                    await unauthorized_response(reason)(scope, receive, send)
                    return
        except TokenError as exc:
            await unauthorized_response(str(exc))(scope, receive, send)
            return
        await self.app(scope, receive, send)


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


class AuthorizationMiddleware:
    """Authenticates the bearer token on protected paths (401) and checks the role (403); puts the
    caller's Principal on `request.state.principal` for the handlers."""

    def __init__(self, app: ASGIApp, *, get_db_func: GetDbFunc, settings: Settings) -> None:
        self.app = app
        self.get_db_func = get_db_func
        self.settings = settings

    def _principal(self, token: str) -> Principal:
        with self.get_db_func() as db:
            return principal_from_claims(decode_access_token(token, db, settings=self.settings))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rule = matching_rule(scope["method"], scope["path"])
        if rule is not None and rule.roles is PUBLIC:
            await self.app(scope, receive, send)
            return
        try:
            token = bearer_token(Headers(scope=scope).get("authorization"))
            if token is None:
                await unauthorized_response("not authenticated")(scope, receive, send)
                return
            principal = await run_in_threadpool(self._principal, token)
        except TokenError as exc:
            await unauthorized_response(str(exc))(scope, receive, send)
            return
        required = rule.roles if rule is not None else AUTHENTICATED
        if required and principal.role not in required:
            forbidden = JSONResponse({"detail": f"requires role {' or '.join(sorted(required))}"}, status_code=403)
            await forbidden(scope, receive, send)
            return
        # What `request.state` reads in the handlers.
        scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)
