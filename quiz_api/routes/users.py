"""User administration (admin only; enforced by the authorization middleware)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Query, Response, status
from sqlalchemy import select
from sqlalchemy.orm import Session

from quiz_api.deps import (
    CurrentUser,
    SessionDep,
    SettingsDep,
    bump_token_version,
    commit_or_conflict,
    get_or_404,
)
from quiz_api.models import User
from quiz_api.params import Offset, PathId
from quiz_api.passwords import hash_password
from quiz_api.schemas import Message, UserCreate, UserOut, UserUpdate

router = APIRouter(prefix="/users", tags=["users"])


@router.post("", response_model=UserOut, status_code=status.HTTP_201_CREATED)
def create_user(body: UserCreate, db: SessionDep, settings: SettingsDep) -> User:
    if db.scalar(select(User.id).where((User.username == body.username) | (User.email == body.email))):
        raise HTTPException(status.HTTP_409_CONFLICT, detail="username or email already registered")
    user = User(
        username=body.username,
        email=body.email,
        role=body.role,
        hashed_password=hash_password(body.password, cost=settings.password_hash),
    )
    db.add(user)
    commit_or_conflict(db, "username or email already registered")
    return user


@router.get("", response_model=list[UserOut])
def list_users(db: SessionDep, limit: int = Query(50, ge=1, le=200), offset: Offset = 0) -> list[User]:
    return list(db.scalars(select(User).order_by(User.id).limit(limit).offset(offset)))


@router.get("/{user_id}", response_model=UserOut)
def read_user(user_id: PathId, db: SessionDep) -> User:
    return get_or_404(db, User, user_id)


def keep_an_active_admin(db: Session, user: User) -> None:
    """409 unless an active admin other than `user` remains. The active admins' rows are locked
    (PostgreSQL; SQLite's writers are serialized anyway) so that two admins demoting each other at
    once cannot both succeed."""
    admins = db.scalars(
        select(User.id).where(User.role == "admin", User.is_active).order_by(User.id).with_for_update()
    ).all()
    if set(admins) <= {user.id}:
        raise HTTPException(
            status.HTTP_409_CONFLICT, detail="cannot demote, deactivate or delete the last active admin"
        )


@router.patch("/{user_id}", response_model=UserOut, responses={409: {"model": Message}})
def update_user(user_id: PathId, body: UserUpdate, db: SessionDep, settings: SettingsDep) -> User:
    user = get_or_404(db, User, user_id)
    changes = body.model_dump(exclude_unset=True, exclude_none=True)
    new_role, new_active = changes.get("role", user.role), changes.get("is_active", user.is_active)
    if user.role == "admin" and user.is_active and (new_role != "admin" or not new_active):
        keep_an_active_admin(db, user)
    password_changed = "password" in changes
    if password_changed:
        user.hashed_password = hash_password(changes.pop("password"), cost=settings.password_hash)
    # Tokens carry the role: invalidate them when the password, the role or the account status changes.
    if password_changed or new_role != user.role or new_active != user.is_active:
        bump_token_version(db, user.id)
    for key, value in changes.items():
        setattr(user, key, value)
    commit_or_conflict(db, "email already registered")
    return user


@router.delete(
    "/{user_id}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response, responses={409: {"model": Message}}
)
def delete_user(user_id: PathId, admin: CurrentUser, db: SessionDep) -> None:
    user = get_or_404(db, User, user_id)
    if user.id == admin.id:
        raise HTTPException(status.HTTP_409_CONFLICT, detail="an admin cannot delete their own account")
    if user.role == "admin" and user.is_active:
        keep_an_active_admin(db, user)
    db.delete(user)
    commit_or_conflict(db, "user is still referenced")
