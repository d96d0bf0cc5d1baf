"""Login, logout, logout-all and the caller's own profile."""

from __future__ import annotations

from fastapi import APIRouter, Request, status
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from quiz_api.deps import CurrentUser, PrincipalDep, SessionDep, SettingsDep, auth_session, unauthorized
from quiz_api.models import RevokedToken, User
from quiz_api.passwords import verify_password
from quiz_api.schemas import LoginRequest, Message, TokenResponse, UserOut
from quiz_api.tokens import TokenError, create_access_token

router = APIRouter(tags=["auth"])


@router.post("/login", response_model=TokenResponse)
def login(body: LoginRequest, request: Request, db: SessionDep, settings: SettingsDep) -> TokenResponse:
    user = db.scalar(select(User).where(User.username == body.username))
    if user is None or not user.is_active or not verify_password(body.password, user.hashed_password, cost=settings.password_hash):
        raise unauthorized("incorrect username or password")
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
    user.token_version += 1
    db.commit()
    return Message(detail="logged out from all sessions")


@router.get("/users/me", response_model=UserOut)
def read_me(user: CurrentUser) -> User:
    return user


@router.get("/health", response_model=Message, status_code=status.HTTP_200_OK)
def health() -> Message:
    return Message(detail="ok")
