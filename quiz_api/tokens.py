"""JWT access tokens. Both helpers take the database Session to use: the caller decides.

`decode_access_token` is the single place that says whether a presented token is acceptable:
signature and algorithm, required and well-typed claims, expiry, the user, the blacklist (`jti`)
and logout-all (the user's token version).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from sqlalchemy import select
from sqlalchemy.orm import Session

from quiz_api.models import RevokedToken, User
from quiz_api.params import MAX_ROW_ID
from quiz_api.settings import Settings

MAX_TOKEN_LENGTH = 4096
# What create_access_token issues (uuid4().hex); it must also fit revoked_tokens.jti.
JTI_PATTERN = re.compile(r"[0-9a-f]{32}")
REQUIRED_CLAIMS = ("sub", "uid", "role", "jti", "ver", "iat", "nbf", "exp", "type")


class TokenError(Exception):
    """The token is not acceptable; the message is safe to show to the client."""


@dataclass(frozen=True)
class Principal:
    """Who a valid token speaks for."""

    user_id: int
    username: str
    role: str
    jti: str
    expires_at: datetime


def create_access_token(
    data: dict[str, Any], db: Session, *, settings: Settings | None = None, expires_delta: timedelta | None = None
) -> str:
    """Sign an access token for the user named by `data["sub"]`, read through `db`."""
    settings = settings or Settings()
    user = db.scalar(select(User).where(User.username == data["sub"]))
    if user is None or not user.is_active:
        raise TokenError("unknown or inactive user")
    now = datetime.now(UTC)
    expires = now + (expires_delta if expires_delta is not None else timedelta(minutes=settings.access_token_minutes))
    claims = {
        **data,
        "uid": user.id,
        "role": user.role,
        "ver": user.token_version,
        "jti": uuid.uuid4().hex,
        "iat": now,
        "nbf": now,
        "exp": expires,
        "type": "access",
    }
    return jwt.encode(claims, settings.secret_key, algorithm=settings.algorithm)


def read_claims(token: str, *, settings: Settings | None = None) -> dict[str, Any]:
    """Verify signature, algorithm, time claims and claim types; no database access."""
    settings = settings or Settings()
    if not token or len(token) > MAX_TOKEN_LENGTH:
        raise TokenError("malformed token")
    try:
        claims = jwt.decode(
            token,
            settings.secret_key,
            algorithms=[settings.algorithm],
            options={"require": list(REQUIRED_CLAIMS)},
        )
    except jwt.ExpiredSignatureError as exc:
        raise TokenError("token expired") from exc
    except jwt.ImmatureSignatureError as exc:
        raise TokenError("token not yet valid") from exc
    except jwt.MissingRequiredClaimError as exc:
        raise TokenError(f"token is missing the {exc.claim!r} claim") from exc
    except jwt.InvalidSignatureError as exc:
        raise TokenError("invalid token signature") from exc
    except jwt.InvalidAlgorithmError as exc:
        raise TokenError("token algorithm not allowed") from exc
    except jwt.InvalidTokenError as exc:
        raise TokenError("malformed token") from exc
    types = {"sub": str, "uid": int, "role": str, "jti": str, "ver": int, "type": str}
    for name, expected in types.items():
        value = claims[name]
        if not isinstance(value, expected) or isinstance(value, bool):
            raise TokenError(f"token claim {name!r} has the wrong type")
    if claims["type"] != "access":
        raise TokenError("not an access token")
    # Even a correctly signed token must not carry values the database or datetime cannot take:
    # they would turn into driver errors (500s) instead of a 401.
    if not 1 <= claims["uid"] <= MAX_ROW_ID or not 0 <= claims["ver"] <= MAX_ROW_ID:
        raise TokenError("token claim out of range")
    if not JTI_PATTERN.fullmatch(claims["jti"]):
        raise TokenError("token claim 'jti' is malformed")
    try:
        datetime.fromtimestamp(claims["exp"], UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise TokenError("token claim out of range") from exc
    return claims


def revocation_reason(claims: dict[str, Any], db: Session) -> str | None:
    """Why the token's holder may no longer use it (revoked, logged out everywhere, gone), or None."""
    if db.scalar(select(RevokedToken.id).where(RevokedToken.jti == claims["jti"])) is not None:
        return "token has been revoked"
    user = db.get(User, claims["uid"])
    if user is None or user.username != claims["sub"] or not user.is_active:
        return "unknown or inactive user"
    if user.token_version != claims["ver"]:
        return "token was revoked by logout from all sessions"
    # Role changes bump token_version, so this only fires for a token the server did not issue
    # for the user's current role (a forged or replayed claim): never trust the claim alone.
    if user.role != claims["role"]:
        return "token role does not match the user's role"
    return None


def decode_access_token(token: str, db: Session, *, settings: Settings | None = None) -> dict[str, Any]:
    """Return the claims of an acceptable token, read through `db`; raise TokenError otherwise."""
    claims = read_claims(token, settings=settings)
    reason = revocation_reason(claims, db)
    if reason:
        raise TokenError(reason)
    return claims


def principal_from_claims(claims: dict[str, Any]) -> Principal:
    # Only for claims that passed `revocation_reason`, which checked the role against the user's.
    return Principal(
        user_id=claims["uid"],
        username=claims["sub"],
        role=claims["role"],
        jti=claims["jti"],
        expires_at=datetime.fromtimestamp(claims["exp"], UTC).replace(tzinfo=None),
    )


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header; None when absent; TokenError if malformed."""
    if authorization is None:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip() or " " in token.strip():
        raise TokenError("malformed Authorization header: expected 'Bearer <token>'")
    return token.strip()
