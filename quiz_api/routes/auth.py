"""Login, logout, logout-all and the caller's own profile."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, status
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from quiz_api.deps import (
    CurrentUser,
    PrincipalDep,
    SessionDep,
    SettingsDep,
    auth_session,
    bump_token_version,
    reads_only,
    unauthorized,
)
from quiz_api.models import RevokedToken, User
from quiz_api.passwords import dummy_hash, verify_password
from quiz_api.schemas import LoginRequest, Message, TokenResponse, UserOut
from quiz_api.throttle import LoginThrottle
from quiz_api.tokens import TokenError, create_access_token

router = APIRouter(tags=["auth"])


@router.post(
    "/login",
    response_model=TokenResponse,
    responses={429: {"model": Message, "description": "too many failed logins from this username or address"}},
)
@reads_only
def login(body: LoginRequest, request: Request, db: SessionDep, settings: SettingsDep) -> TokenResponse:
    throttle: LoginThrottle = request.app.state.login_throttle
    address = request.client.host if request.client else "unknown"
    wait_s = throttle.retry_after_s(username=body.username, address=address)
    if wait_s is not None:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            detail=f"too many failed logins; try again in {wait_s} s",
            headers={"Retry-After": str(wait_s)},
        )
    user = db.scalar(select(User).where(User.username == body.username))
    usable = user is not None and user.is_active
    # The same argon2 work whether or not the account exists: the timing must not tell.
    hashed = user.hashed_password if usable else dummy_hash(settings.password_hash)
    if not verify_password(body.password, hashed, cost=settings.password_hash) or not usable:
        throttle.record_failure(username=body.username, address=address)
        raise unauthorized("incorrect username or password")
    throttle.record_success(username=body.username)
    try:
        with auth_session(request, db) as token_db:
            token = create_access_token({"sub": user.username}, token_db, settings=settings)
    except TokenError as exc:
        raise unauthorized(str(exc)) from exc
    return TokenResponse(access_token=token, expires_in=settings.access_token_minutes * 60)


@router.post("/logout", response_model=Message)
def logout(principal: PrincipalDep, db: SessionDep) -> Message:
    db.add(RevokedToken(jti=principal.jti, user_id=principal.user_id, expires_at=principal.expires_at))
    try:
        db.commit()
    except IntegrityError as exc:
        # The same token logged out by a concurrent request since the blacklist middleware looked.
        db.rollback()
        raise unauthorized("token has been revoked") from exc
    return Message(detail="logged out")


@router.post("/logout-all", response_model=Message)
def logout_all(user: CurrentUser, db: SessionDep) -> Message:
    bump_token_version(db, user.id)
    db.commit()
    return Message(detail="logged out from all sessions")


@router.get("/users/me", response_model=UserOut)
def read_me(user: CurrentUser) -> User:
    return user


@router.get("/health", response_model=Message, status_code=status.HTTP_200_OK)
def health() -> Message:
    return Message(detail="ok")
